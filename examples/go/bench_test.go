package stload_test

import (
	"runtime"
	"testing"
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
