//go:build stload_mlx

package stload_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"stload.dev/stload"
	"stload.dev/stload/internal/fixtures"
)

// mxTensor is what Python's mx.load makes of one tensor (tests/python/mlx_expected.py).
type mxTensor struct {
	Dtype       string            `json:"dtype"`
	Shape       []uint64          `json:"shape"`
	Native      string            `json:"native"`
	As          map[string]string `json:"as"`
	Unsupported string            `json:"unsupported"`
}

// mxLoad runs the Python oracle on files, once per test binary per file list.
var (
	mxOnce     sync.Once
	mxExpected map[string]mxTensor
	mxErr      error
)

func mxLoad(t *testing.T) map[string]mxTensor {
	t.Helper()
	mxOnce.Do(func() {
		root, err := fixtures.RepoRoot()
		if err != nil {
			mxErr = err
			return
		}
		python, err := fixtures.Python(root)
		if err != nil {
			mxErr = err
			return
		}
		args := []string{filepath.Join(root, "tests", "python", "mlx_expected.py"),
			fx.Path(fx.Files["dtypes"])}
		shards, _ := filepath.Glob(fx.Path(fx.Files["sharded"], "*.safetensors"))
		args = append(args, shards...)
		out, err := exec.Command(python, args...).Output()
		if err != nil {
			mxErr = err
			return
		}
		mxErr = json.Unmarshal(out, &mxExpected)
	})
	if mxErr != nil {
		t.Fatalf("mx.load oracle (tests/python/mlx_expected.py, needs mlx in the venv): %v", mxErr)
	}
	return mxExpected
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openMLXFixtures(t *testing.T, opts ...stload.Option) *stload.Model {
	t.Helper()
	shards, _ := filepath.Glob(fx.Path(fx.Files["sharded"], "*.safetensors"))
	m, err := stload.OpenFiles(append([]string{fx.Path(fx.Files["dtypes"])}, shards...), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// GetMLX as stored and converted gives what mx.load and astype give.
func TestMLXGetMatchesMxLoad(t *testing.T) {
	want := mxLoad(t)
	m := openMLXFixtures(t)
	defer m.Close()
	checked := 0
	for name, w := range want {
		if w.Unsupported != "" {
			continue
		}
		a, err := m.GetMLX(name, stload.Native)
		if err != nil {
			t.Errorf("GetMLX(%s, Native): %v", name, err)
			continue
		}
		if a.Dtype().String() != w.Dtype || !sameShape(a.Shape(), w.Shape) {
			t.Errorf("%s: %v %v, mx.load gives %s %v", name, a.Dtype(), a.Shape(), w.Dtype, w.Shape)
		}
		if got := a.Bytes(); !bytes.Equal(got, unhex(t, w.Native)) || a.NBytes() != len(got) {
			t.Errorf("%s: bytes differ from mx.load's", name)
		}
		a.Close()
		for key, hexBytes := range w.As {
			dtype, err := stload.ParseDtype(key)
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.GetMLX(name, dtype)
			if err != nil {
				t.Errorf("GetMLX(%s, %s): %v", name, key, err)
				continue
			}
			if c.Dtype() != dtype || !bytes.Equal(c.Bytes(), unhex(t, hexBytes)) {
				t.Errorf("%s as %s: %v, values differ from mx astype", name, key, c.Dtype())
			}
			c.Close()
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("only %d tensors compared with mx.load", checked)
	}
	if _, err := m.GetMLX("t_f4", stload.Native); !errors.Is(err, stload.ErrUnsupported) {
		t.Errorf("GetMLX(t_f4): %v, want ErrUnsupported", err)
	}
	if _, err := m.GetMLX("missing", stload.Native); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("GetMLX(missing): %v, want ErrNotFound", err)
	}
	if _, err := m.GetMLX("a\x00b", stload.Native); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("GetMLX with a NUL byte: %v, want ErrInvalidArgument", err)
	}
}

// LoadMLX reports every tensor and fills the cache GetMLX then serves; cancelling and a
// panicking callback stop it.
func TestMLXLoad(t *testing.T) {
	want := mxLoad(t)
	m, err := stload.OpenFiles(func() []string {
		s, _ := filepath.Glob(fx.Path(fx.Files["sharded"], "*.safetensors"))
		return s
	}())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	calls := 0
	err = m.LoadMLX(stload.F16, func(done, total int, name string) bool {
		calls++
		if done != calls || total != m.Len() {
			t.Errorf("progress(%d, %d, %s) at call %d", done, total, name, calls)
		}
		return true
	})
	if err != nil || calls != m.Len() {
		t.Fatalf("LoadMLX: %v after %d calls", err, calls)
	}
	// The float tensor was converted; the integer one stays as stored.
	f, err := m.GetMLX("layers.0.w", stload.F16)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Bytes(), unhex(t, want["layers.0.w"].As["F16"])) {
		t.Error("layers.0.w after LoadMLX(F16) differs from mx astype")
	}
	f.Close()
	i, err := m.GetMLX("layers.1.w", stload.Native)
	if err != nil {
		t.Fatal(err)
	}
	if i.Dtype() != stload.I64 || !bytes.Equal(i.Bytes(), unhex(t, want["layers.1.w"].Native)) {
		t.Error("layers.1.w after LoadMLX(F16) is not the stored I64")
	}
	i.Close()

	err = m.LoadMLX(stload.BF16, func(done, total int, name string) bool { return false })
	if !errors.Is(err, stload.ErrCancelled) {
		t.Errorf("cancelled LoadMLX: %v, want ErrCancelled", err)
	}
	mustPanic(t, "LoadMLX with a panicking callback", func() {
		_ = m.LoadMLX(stload.F32, func(int, int, string) bool { panic("boom") })
	})
	if err := m.LoadMLX(stload.Native, nil); err != nil {
		t.Errorf("LoadMLX(Native, nil): %v", err)
	}
}

// Arrays outlive their model; Close is idempotent; use after Close panics; the finalizer
// frees forgotten arrays.
func TestMLXLifetime(t *testing.T) {
	want := mxLoad(t)
	m := openMLXFixtures(t)
	a, err := m.GetMLX("t_bf16", stload.Native)
	if err != nil {
		t.Fatal(err)
	}
	m.ReleaseAll()
	m.Close()
	runtime.GC()
	if !bytes.Equal(a.Bytes(), unhex(t, want["t_bf16"].Native)) {
		t.Error("array changed after ReleaseAll and Close of its model")
	}
	if a.Close() != nil || a.Close() != nil {
		t.Error("Close returned an error")
	}
	mustPanic(t, "Bytes after Close", func() { a.Bytes() })
	mustPanic(t, "MLXC after Close", func() { _, _ = a.MLXC() })

	m = openMLXFixtures(t, stload.WithCache(false))
	defer m.Close()
	for i := 0; i < 200; i++ {
		if _, err := m.GetMLX("t_f32", stload.BF16); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

// Many goroutines get, read and close arrays of one model at once (run with -race).
func TestMLXConcurrent(t *testing.T) {
	want := mxLoad(t)
	m := openMLXFixtures(t)
	defer m.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				dtype := []stload.Dtype{stload.Native, stload.F32, stload.BF16}[(g+i)%3]
				a, err := m.GetMLX("t_f16", dtype)
				if err != nil {
					t.Error(err)
					return
				}
				w := want["t_f16"].Native
				if dtype != stload.Native {
					w = want["t_f16"].As[dtype.String()]
				}
				if !bytes.Equal(a.Bytes(), unhex(t, w)) {
					t.Errorf("t_f16 as %v differs", dtype)
				}
				a.Close()
			}
		}(g)
	}
	wg.Wait()
}

func TestMLXVersion(t *testing.T) {
	if v := stload.MLXVersion(); v == "" || v == "unknown" || !stload.HasMLX {
		t.Errorf("MLXVersion %q, HasMLX %v", v, stload.HasMLX)
	}
}

// GetMLX of a loaded tensor as stored: the engine's per-call cost after LoadMLX (a cache
// lookup and a new handle on the same MLX array).
func BenchmarkGetMLXNativeCached(b *testing.B) {
	m, err := stload.OpenFiles([]string{fx.Path(fx.Files["sharded"], "model-00001-of-00002.safetensors")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if err := m.LoadMLX(stload.Native, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := m.GetMLX("layers.0.w", stload.Native)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}

// GetMLX as stored without a cache, of a 12-element tensor: MLX's array construction (a copy
// of 48 bytes on the CPU backend) plus stload's part.
func BenchmarkGetMLXNativeUncached(b *testing.B) {
	m, err := stload.OpenFiles([]string{fx.Path(fx.Files["sharded"], "model-00001-of-00002.safetensors")},
		stload.WithCache(false))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := m.GetMLX("layers.0.w", stload.Native)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}

// LoadMLX(F32) of the 1024 x 1024 BF16 and F32 benchmark tensors (6 MiB in, 8 MiB out), from
// a fresh open each time; MB/s of output.
func BenchmarkLoadMLXF32(b *testing.B) {
	b.SetBytes(8 << 20)
	for i := 0; i < b.N; i++ {
		m, err := stload.OpenFiles([]string{fx.Path(fx.Files["bench"])})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.LoadMLX(stload.F32, nil); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
