package stload_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"

	"stload.dev/stload"
)

// openFixture opens the files of fixture roles and closes the model when the test ends.
func openFixture(t testing.TB, roles ...string) *stload.Model {
	t.Helper()
	var paths []string
	for _, r := range roles {
		paths = append(paths, fx.Path(fx.Files[r]))
	}
	m, err := stload.OpenFiles(paths)
	if err != nil {
		t.Fatalf("OpenFiles(%v): %v", roles, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkTensor compares a tensor from the model with what the fixture script wrote.
func checkTensor(t *testing.T, m *stload.Model, name string) {
	t.Helper()
	want := fx.Tensors[name]
	tensor, err := m.Get(name)
	if err != nil {
		t.Errorf("Get(%q): %v", name, err)
		return
	}
	defer tensor.Close()
	if got := tensor.Dtype().String(); got != want.Dtype {
		t.Errorf("%s: dtype %s, want %s", name, got, want.Dtype)
	}
	if got := tensor.Shape(); !equalShape(got, want.Shape) {
		t.Errorf("%s: shape %v, want %v", name, got, want.Shape)
	}
	if got := tensor.Bytes(); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%s: bytes %x, want %s", name, got, want.Hex)
	}
	if tensor.NBytes() != len(want.Bytes()) {
		t.Errorf("%s: NBytes %d, want %d", name, tensor.NBytes(), len(want.Bytes()))
	}
}

func equalShape(a, b []uint64) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func TestEveryDtypeMatchesPython(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	seen := map[string]bool{}
	for name, want := range fx.Tensors {
		if filepath.Dir(want.File) != "." { // sharded tensors: TestOpenDirSharded
			continue
		}
		checkTensor(t, m, name)
		seen[want.Dtype] = true
	}
	for _, d := range stload.Dtypes() {
		if !seen[d.String()] {
			t.Errorf("no fixture tensor of dtype %v", d)
		}
	}
	if got, want := m.Len(), len(m.Names()); got != want {
		t.Errorf("Len() = %d, len(Names()) = %d", got, want)
	}
}

func TestInfoMatchesFile(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	names := m.Names()
	if !sort.StringsAreSorted(names) {
		t.Errorf("Names() not sorted: %v", names)
	}
	for _, name := range names {
		want, ok := fx.Tensors[name]
		if !ok {
			t.Errorf("unexpected tensor %q", name)
			continue
		}
		info, err := m.Info(name)
		if err != nil {
			t.Fatalf("Info(%q): %v", name, err)
		}
		if info.Name != name || info.OriginalName != name {
			t.Errorf("Info(%q): Name %q, OriginalName %q", name, info.Name, info.OriginalName)
		}
		if info.Dtype.String() != want.Dtype || !equalShape(info.Shape, want.Shape) {
			t.Errorf("Info(%q): %v %v, want %s %v", name, info.Dtype, info.Shape, want.Dtype, want.Shape)
		}
		if filepath.Base(info.File) != filepath.Base(want.File) {
			t.Errorf("Info(%q).File = %q, want a path to %s", name, info.File, want.File)
		}
		raw, err := os.ReadFile(info.File)
		if err != nil {
			t.Fatal(err)
		}
		end := info.DataOffset + info.NBytes
		if end > uint64(len(raw)) || !bytes.Equal(raw[info.DataOffset:end], want.Bytes()) {
			t.Errorf("Info(%q): bytes at offset %d, length %d are not the tensor", name, info.DataOffset, info.NBytes)
		}
	}
}

func TestMetadata(t *testing.T) {
	m := openFixture(t, "dtypes")
	var keys []string
	for k, v := range fx.Metadata {
		keys = append(keys, k)
		if got, ok := m.Metadata(k); !ok || got != v {
			t.Errorf("Metadata(%q) = %q, %v; want %q", k, got, ok, v)
		}
	}
	sort.Strings(keys)
	if got := m.MetadataKeys(); !reflect.DeepEqual(got, keys) {
		t.Errorf("MetadataKeys() = %v, want %v", got, keys)
	}
	if v, ok := m.Metadata("no such key"); ok {
		t.Errorf("Metadata(missing) = %q, true", v)
	}
	if _, ok := m.Metadata("a\x00b"); ok {
		t.Error("Metadata with NUL found something")
	}
}

func TestOpenDirSharded(t *testing.T) {
	m, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := m.Names(), []string{"layers.0.w", "layers.1.w"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range m.Names() {
		checkTensor(t, m, name)
		info, err := m.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(info.File) != filepath.Base(fx.Tensors[name].File) {
			t.Errorf("%s is in %s, want %s", name, info.File, fx.Tensors[name].File)
		}
	}
	if v, ok := m.Metadata("format"); !ok || v != "pt" {
		t.Errorf("Metadata(format) = %q, %v", v, ok)
	}
}

func TestOptions(t *testing.T) {
	path := fx.Path(fx.Files["dtypes"])
	m, err := stload.OpenFiles([]string{path}, stload.WithThreads(2), stload.WithCache(false),
		stload.WithMaxHeaderSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, m, "t_f32")
	m.Close()
	if _, err := stload.OpenFiles([]string{path}, stload.WithMaxHeaderSize(16)); !errors.Is(err, stload.ErrLimit) {
		t.Errorf("header limit 16: error = %v, want ErrLimit", err)
	}
	if _, err := stload.OpenFiles([]string{path}, stload.WithMaxHeaderSize(0)); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("header limit 0: error = %v, want ErrInvalidArgument", err)
	}
	if _, err := stload.OpenFiles([]string{path}, stload.WithThreads(-1)); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("threads -1: error = %v, want ErrInvalidArgument", err)
	}
}

func TestConcurrentGet(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	names := m.Names()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				name := names[(g*7+i)%len(names)]
				tensor, err := m.Get(name)
				if err != nil {
					errs <- err
					return
				}
				ok := bytes.Equal(tensor.Bytes(), fx.Tensors[name].Bytes())
				tensor.Close()
				if !ok {
					errs <- errors.New(name + ": wrong bytes under concurrency")
					return
				}
				if i%25 == 0 {
					m.ReleaseAll()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// GetAs to another dtype converts exactly as numpy / ml_dtypes astype for every convertible
// pair, and refuses with ErrUnsupported only the dtypes without a conversion (C64, F4, F6)
// and targets that are not conversion targets. TestConvertedMatchesNumpy covers every pair.
func TestGetAs(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	cases := []struct {
		name string
		to   stload.Dtype
	}{
		{"t_f32", stload.F16}, {"t_f32", stload.BF16}, {"t_bf16", stload.F32},
		{"t_f16", stload.F32}, {"t_f8_e4m3", stload.F32}, {"t_i32", stload.F64},
		{"t_bool", stload.F16}, {"t_f32", stload.F8E5M2}, {"scalar_f32", stload.BF16},
		{"empty_f32", stload.F16},
	}
	for _, c := range cases {
		want := fx.Tensors[c.name]
		exp, ok := want.AsBytes(c.to.String())
		if !ok {
			t.Fatalf("no expected %v bytes for %s", c.to, c.name)
		}
		tensor, err := m.GetAs(c.name, c.to)
		if err != nil {
			t.Errorf("GetAs(%s, %v): %v", c.name, c.to, err)
			continue
		}
		if tensor.Dtype() != c.to || !equalShape(tensor.Shape(), want.Shape) ||
			tensor.NBytes() != len(exp) || !bytes.Equal(tensor.Bytes(), exp) {
			t.Errorf("GetAs(%s, %v) = %v %v %x, want %v %v %x", c.name, c.to,
				tensor.Dtype(), tensor.Shape(), tensor.Bytes(), c.to, want.Shape, exp)
		}
		tensor.Close()
	}
	unsupported := []struct {
		name string
		to   stload.Dtype
	}{
		{"t_c64", stload.F32}, {"t_f4", stload.F16}, {"t_f6_e2m3", stload.BF16},
		{"t_f6_e3m2", stload.F64}, {"t_f32", stload.Bool}, {"t_f64", stload.F8E4M3},
	}
	for _, c := range unsupported {
		tensor, err := m.GetAs(c.name, c.to)
		if !errors.Is(err, stload.ErrUnsupported) {
			t.Errorf("GetAs(%s, %v): error %v, want ErrUnsupported", c.name, c.to, err)
			if err == nil {
				tensor.Close()
			}
		}
	}
	// The stored dtype and Native are both the zero-copy view.
	for _, d := range []stload.Dtype{stload.Native, stload.F32} {
		tensor, err := m.GetAs("t_f32", d)
		if err != nil {
			t.Fatalf("GetAs(t_f32, %v): %v", d, err)
		}
		if tensor.Dtype() != stload.F32 || !bytes.Equal(tensor.Bytes(), fx.Tensors["t_f32"].Bytes()) {
			t.Errorf("GetAs(t_f32, %v) differs from the stored tensor", d)
		}
		tensor.Close()
	}
}
