//go:build stload_mlx && stload_mlxc

// Command mlxbench times stload's MLX loading from Go for benches/mlx_load.py, one measurement
// per process, and prints one JSON object on stdout (with the process's peak RSS and its minor
// page faults, most of them first touches of new memory):
//
//	mlxbench load DIR         Open + LoadMLX(F32): seconds, peak RSS, bytes of the arrays
//	mlxbench memcpy DIR       the physical limit of that load: copy the output's size (the
//	                          stored bytes, repeated to the F32 size) from the file mapping,
//	                          faulted in beforehand, into new memory (malloc), on as many
//	                          goroutines as cores; only the allocations and copies are timed
//	mlxbench get DIR NAME N   nanoseconds per call of GetMLX(NAME, Native) without a cache and
//	                          from the model's cache, against MLX's own array construction
//	                          from the same host bytes through mlx-c (mlx_array_new_data and
//	                          mlx_array_new_data_managed, the constructor stload uses)
//
// Build with the tags stload_mlx and stload_mlxc and mlx-c on the cgo flags (see go/test.sh).
package main

// #cgo LDFLAGS: -lmlxc
// #include <stdlib.h>
// #include <string.h>
// #include <sys/resource.h>
// #include "mlx/c/mlx.h"
//
// static void noop_dtor(void *p) { (void)p; }
//
// // MLX's array from host bytes: copied (mlx_array_new_data), or through the constructor with
// // a deleter (mlx_array_new_data_managed, which copies on the CPU backend), then freed.
// static int construct_free(const void *data, const int *shape, int dim, mlx_dtype dtype,
//                           int managed) {
//   mlx_array a = managed ? mlx_array_new_data_managed((void *)data, shape, dim, dtype, noop_dtor)
//                         : mlx_array_new_data(data, shape, dim, dtype);
//   if (a.ctx == NULL) {
//     return 1;
//   }
//   mlx_array_free(a);
//   return 0;
// }
//
// static long peak_rss_kib(void) {
//   struct rusage u;
//   return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss : 0;
// }
//
// static long minor_faults(void) {
//   struct rusage u;
//   return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_minflt : 0;
// }
import "C"

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"stload.dev/stload"
)

func main() {
	usage := "usage: mlxbench load DIR | memcpy DIR | get DIR NAME N"
	if len(os.Args) < 3 {
		log.Fatal(usage)
	}
	var out map[string]any
	var err error
	switch dir := os.Args[2]; {
	case os.Args[1] == "load" && len(os.Args) == 3:
		out, err = load(dir)
	case os.Args[1] == "memcpy" && len(os.Args) == 3:
		out, err = memcpy(dir)
	case os.Args[1] == "get" && len(os.Args) == 5:
		n, perr := strconv.Atoi(os.Args[4])
		if perr != nil || n <= 0 {
			log.Fatal(usage)
		}
		out, err = get(dir, os.Args[3], n)
	default:
		log.Fatal(usage)
	}
	if err != nil {
		log.Fatal(err)
	}
	out["peak_rss"] = int64(C.peak_rss_kib()) * 1024
	out["minor_faults"] = int64(C.minor_faults())
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
}

// load times Open + LoadMLX(F32), as an engine starts.
func load(dir string) (map[string]any, error) {
	start := time.Now()
	m, err := stload.Open(dir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.LoadMLX(stload.F32, nil); err != nil {
		return nil, err
	}
	seconds := time.Since(start).Seconds()
	var bytes int
	for _, name := range m.Names() {
		a, err := m.GetMLX(name, stload.F32)
		if err != nil {
			return nil, err
		}
		bytes += a.NBytes()
		a.Close()
	}
	return map[string]any{"seconds": seconds, "array_bytes": bytes}, nil
}

// memcpy copies, for every tensor, its stored bytes into new memory of its F32 size (the
// stored bytes repeated), with one goroutine per core on disjoint parts: the least any
// LoadMLX(F32) must do, writing the output into new pages, with the source already mapped
// and faulted in (which LoadMLX also has to do, untimed here).
func memcpy(dir string) (map[string]any, error) {
	m, err := stload.Open(dir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var tensors []*stload.Tensor
	defer func() {
		for _, t := range tensors {
			t.Close()
		}
	}()
	var sum byte
	for _, name := range m.Names() {
		t, err := m.Get(name)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, t)
		b := t.Bytes()
		for i := 0; i < len(b); i += 4096 {
			sum += b[i]
		}
	}
	var buffers []unsafe.Pointer
	defer func() {
		for _, b := range buffers {
			C.free(b)
		}
	}()
	workers := runtime.NumCPU()
	total := 0
	start := time.Now()
	for _, t := range tensors {
		src := t.Bytes()
		n := len(src) * 32 / t.Dtype().Bits()
		p := C.malloc(C.size_t(n))
		if p == nil {
			return nil, fmt.Errorf("cannot allocate %d bytes", n)
		}
		buffers = append(buffers, p)
		dst := unsafe.Slice((*byte)(p), n)
		// Disjoint chunks of dst, each filled from the matching place of src.
		chunk := (n/workers + 4095) &^ 4095
		var wg sync.WaitGroup
		for lo := 0; lo < n; lo += chunk {
			hi := lo + chunk
			if hi > n {
				hi = n
			}
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				for at := lo; at < hi; {
					at += copy(dst[at:hi], src[at%len(src):])
				}
			}(lo, hi)
		}
		wg.Wait()
		total += n
	}
	seconds := time.Since(start).Seconds()
	return map[string]any{"seconds": seconds, "bytes": total, "workers": workers, "checksum": sum}, nil
}

// mlxcDtype is mlx-c's number of the dtypes the benchmark models use.
func mlxcDtype(d stload.Dtype) (C.mlx_dtype, error) {
	switch d {
	case stload.BF16:
		return C.MLX_BFLOAT16, nil
	case stload.F16:
		return C.MLX_FLOAT16, nil
	case stload.F32:
		return C.MLX_FLOAT32, nil
	}
	return 0, fmt.Errorf("no mlx-c dtype for %v in this benchmark", d)
}

// get times n calls of each way to make tensor name an MLX array as stored, after one
// untimed call of each (so pages are faulted in and the cache is filled).
func get(dir, name string, n int) (map[string]any, error) {
	uncached, err := stload.Open(dir, stload.WithCache(false))
	if err != nil {
		return nil, err
	}
	defer uncached.Close()
	cached, err := stload.Open(dir)
	if err != nil {
		return nil, err
	}
	defer cached.Close()
	t, err := cached.Get(name)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	dtype, err := mlxcDtype(t.Dtype())
	if err != nil {
		return nil, err
	}
	shape := t.Shape()
	cshape := (*C.int)(C.malloc(C.size_t(len(shape)+1) * C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(cshape))
	for i, d := range shape {
		unsafe.Slice(cshape, len(shape))[i] = C.int(d)
	}
	data := unsafe.Pointer(&t.Bytes()[0])

	timeIt := func(call func() error) (float64, error) {
		if err := call(); err != nil {
			return 0, err
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := call(); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n), nil
	}
	getMLX := func(m *stload.Model) func() error {
		return func() error {
			a, err := m.GetMLX(name, stload.Native)
			if err != nil {
				return err
			}
			return a.Close()
		}
	}
	construct := func(managed C.int) func() error {
		return func() error {
			if C.construct_free(data, cshape, C.int(len(shape)), dtype, managed) != 0 {
				return fmt.Errorf("mlx-c could not make an array of %q", name)
			}
			return nil
		}
	}
	out := map[string]any{"name": name, "nbytes": t.NBytes(), "calls": n}
	for _, c := range []struct {
		key  string
		call func() error
	}{
		{"getmlx_uncached_ns", getMLX(uncached)},
		{"getmlx_cached_ns", getMLX(cached)},
		{"mlxc_new_data_managed_ns", construct(1)},
		{"mlxc_new_data_ns", construct(0)},
	} {
		ns, err := timeIt(c.call)
		if err != nil {
			return nil, err
		}
		out[c.key] = ns
	}
	runtime.KeepAlive(t)
	return out, nil
}
