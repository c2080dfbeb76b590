package stload_test

import (
	"runtime"
	"testing"

	"stload.dev/stload"
)

// BenchmarkGet measures one zero-copy Get plus Close of a small tensor.
func BenchmarkGet(b *testing.B) {
	m := openFixture(b, "dtypes")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := m.Get("t_f32")
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkGetParallel is BenchmarkGet from GOMAXPROCS goroutines on one model.
func BenchmarkGetParallel(b *testing.B) {
	m := openFixture(b, "dtypes")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := m.Get("t_f32")
			if err != nil {
				b.Error(err)
				return
			}
			t.Close()
		}
	})
}

// BenchmarkInfo measures one index lookup without data.
func BenchmarkInfo(b *testing.B) {
	m := openFixture(b, "dtypes")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Info("t_f32"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBytesCopy copies a 4 MiB F32 tensor out of the mapping into Go memory: the
// throughput (MB/s) of reading a zero-copy tensor.
func BenchmarkBytesCopy(b *testing.B) {
	m := openFixture(b, "bench")
	t, err := m.Get("big")
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	dst := make([]byte, t.NBytes())
	b.SetBytes(int64(t.NBytes()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(dst, t.Bytes())
	}
	runtime.KeepAlive(t)
}

// BenchmarkCopyToBF16ToF32 converts a 1024x1024 BF16 tensor into a Go buffer of F32; the
// throughput counts the bytes read plus the bytes written (2 + 4 MiB per op).
func BenchmarkCopyToBF16ToF32(b *testing.B) {
	m := openFixture(b, "bench")
	t, err := m.Get("big_bf16")
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	dst := make([]byte, t.NBytes()*2)
	b.SetBytes(int64(t.NBytes() + len(dst)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := t.CopyTo(dst, stload.F32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertBF16ToF32 is BenchmarkCopyToBF16ToF32 through Convert, buffer to buffer,
// on the calling thread only.
func BenchmarkConvertBF16ToF32(b *testing.B) {
	m := openFixture(b, "bench")
	t, err := m.Get("big_bf16")
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	src := append([]byte(nil), t.Bytes()...)
	dst := make([]byte, len(src)*2)
	b.SetBytes(int64(len(src) + len(dst)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := stload.Convert(src, stload.BF16, dst, stload.F32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetAs measures GetAs(F32) of the BF16 tensor plus Close: "cached" is served from
// the model's cache of converted tensors (ns/op); "uncached" (WithCache(false)) converts and
// allocates 4 MiB every time (MB/s over input plus output).
func BenchmarkGetAs(b *testing.B) {
	for _, cache := range []bool{true, false} {
		name := map[bool]string{true: "cached", false: "uncached"}[cache]
		b.Run(name, func(b *testing.B) {
			m, err := stload.OpenFiles([]string{fx.Path(fx.Files["bench"])}, stload.WithCache(cache))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			if !cache {
				info, err := m.Info("big_bf16")
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(info.NBytes * 3))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t, err := m.GetAs("big_bf16", stload.F32)
				if err != nil {
					b.Fatal(err)
				}
				t.Close()
			}
		})
	}
}
