//go:build stload_mlx

package stload

// MLX arrays (build tag stload_mlx): the library must be built with `--features mlx`, into its
// own target directory (see link_mlx_static.go and link_mlx_shared.go).

// #cgo CFLAGS: -DSTLOAD_FEATURE_MLX
// #include <stdint.h>
// #include <stdlib.h>
// #include "stload.h"
//
// // stload_model_load_mlx with progress_mlx.c's trampoline; handle 0 means no callback.
// enum stload_status stloadgo_load_mlx(const stload_model *model, stload_dtype dtype,
//                                      uintptr_t handle, stload_error **err);
//
// // One cgo call for a get and everything Go reads of the array.
// typedef struct stloadgo_mlx {
//   stload_mlx_array *handle;
//   const void *data;
//   size_t nbytes;
//   stload_dtype dtype;
//   size_t rank;
//   const uint64_t *shape;
//   stload_error *err;
// } stloadgo_mlx;
//
// static inline enum stload_status stloadgo_get_mlx(const stload_model *m, const char *name,
//                                                   stload_dtype dtype, stloadgo_mlx *out) {
//   enum stload_status s = stload_model_get_mlx(m, name, dtype, &out->handle, &out->err);
//   if (s == STLOAD_OK) {
//     out->data = stload_mlx_array_data(out->handle);
//     out->nbytes = stload_mlx_array_nbytes(out->handle);
//     out->dtype = stload_mlx_array_dtype(out->handle);
//     out->rank = stload_mlx_array_rank(out->handle);
//     out->shape = stload_mlx_array_shape(out->handle);
//   }
//   return s;
// }
//
// // The mlx-c handle's ctx, or NULL with *err set.
// static inline enum stload_status stloadgo_to_mlx_c(const stload_mlx_array *arr, void **ctx,
//                                                    stload_error **err) {
//   struct { void *ctx; } out = {0};
//   enum stload_status s = stload_mlx_array_to_mlx_c(arr, (struct mlx_array_ *)(void *)&out, err);
//   *ctx = out.ctx;
//   return s;
// }
import "C"

import (
	"runtime"
	"strings"
	"unsafe"
)

// HasMLX reports whether the package was built with MLX (the stload_mlx build tag).
const HasMLX = true

// MLXVersion returns the version of the linked MLX library, e.g. "0.32.4".
func MLXVersion() string {
	return C.GoString(C.stload_mlx_version())
}

// MLXArray is an MLX array (an evaluated mlx::core::array) made by stload.
//
// An MLXArray holds its data on its own: it stays valid after ReleaseAll and Close of its
// Model. Close it when done; a finalizer closes a forgotten one. Methods other than Close
// panic after Close. An MLXArray may be read from many goroutines at once.
type MLXArray struct {
	// c holds the handle and its data, size, dtype and shape, read in the cgo call that made
	// the handle; c.handle is nil once closed.
	c C.stloadgo_mlx
}

// GetMLX returns tensor name as an evaluated MLX array. With Native (or the stored dtype)
// the array holds the stored values: MLX wraps the file mapping where it can (unified memory)
// and copies it once otherwise (the CPU backend). One-byte FP8 tensors come as U8 arrays of
// their raw bytes, as Python's mx.load gives them; F4 and F6 tensors have no MLX form
// (ErrUnsupported). With another dtype MLX has, the values are converted by stload's exact
// kernels straight into MLX memory.
//
// Served from the model's MLX arrays when LoadMLX (or an earlier GetMLX, unless opened with
// WithCache(false)) made the array. The caller closes the array.
func (m *Model) GetMLX(name string, dtype Dtype) (*MLXArray, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, invalidArg("tensor name %q contains a NUL byte", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	a := new(MLXArray)
	status := C.stloadgo_get_mlx(m.ptr(), cname, C.stload_dtype(dtype), &a.c)
	runtime.KeepAlive(m)
	if status != C.STLOAD_OK {
		return nil, takeError(status, a.c.err)
	}
	runtime.SetFinalizer(a, (*MLXArray).Close)
	return a, nil
}

// LoadMLX makes every tensor an MLX array, like ollama's ModelWeights.Load with MLX: with
// Native each as stored; with a float dtype every floating-point tensor stored in another
// dtype is converted (integer and boolean tensors stay as stored). Later GetMLX calls are
// served from these arrays until ReleaseAll or Close.
//
// progress, if not nil, is called after each tensor as for Load; returning false stops with
// an error matching ErrCancelled (the arrays made so far stay). A panic in progress stops the
// load and is raised again by LoadMLX. LoadMLX may run concurrently with other methods of m,
// except Close.
func (m *Model) LoadMLX(dtype Dtype, progress func(done, total int, name string) bool) error {
	p := m.ptr()
	state, handle, release := newLoadState(progress)
	defer release()
	var cerr *C.stload_error
	status := C.stloadgo_load_mlx(p, C.stload_dtype(dtype), handle, &cerr)
	runtime.KeepAlive(m)
	return state.finish(status, cerr)
}

// ptr returns the live handle, or panics if the array is closed.
func (a *MLXArray) ptr() *C.stload_mlx_array {
	if a.c.handle == nil {
		panic("stload: use of a closed MLXArray")
	}
	return a.c.handle
}

// Dtype returns the array's element type (never Native).
func (a *MLXArray) Dtype() Dtype {
	a.ptr()
	return Dtype(a.c.dtype)
}

// Shape returns the dimensions, outermost first (empty for a scalar). The slice is a copy.
func (a *MLXArray) Shape() []uint64 {
	a.ptr()
	shape := make([]uint64, int(a.c.rank))
	if len(shape) > 0 { // for rank 0 the pointer may dangle
		copy(shape, unsafe.Slice((*uint64)(unsafe.Pointer(a.c.shape)), len(shape)))
	}
	return shape
}

// NBytes returns the byte length of the elements.
func (a *MLXArray) NBytes() int {
	a.ptr()
	return int(a.c.nbytes)
}

// Bytes returns the array's data in host memory (little-endian, row-major) without copying
// it. The slice aliases MLX's memory, which may be the read-only file mapping: never write to
// it. It is valid until a is closed; keep a reachable while you use it (runtime.KeepAlive(a)
// or a deferred Close), and copy what must outlive it. An empty array gives an empty, non-nil
// slice.
func (a *MLXArray) Bytes() []byte {
	a.ptr()
	if a.c.nbytes == 0 || a.c.data == nil {
		return []byte{}
	}
	return unsafe.Slice((*byte)(a.c.data), int(a.c.nbytes))
}

// Wrapped reports whether the array aliases the file mapping (MLX wrapped the bytes rather
// than copying them, as it does with unified memory).
func (a *MLXArray) Wrapped() bool {
	w := bool(C.stload_mlx_array_is_wrapped(a.ptr()))
	runtime.KeepAlive(a)
	return w
}

// Raw returns the underlying mlx::core::array* for C++ hosts, owned by a: valid until a is
// closed (copy the mlx::core::array, a cheap reference, to keep it longer).
func (a *MLXArray) Raw() unsafe.Pointer {
	p := C.stload_mlx_array_raw(a.ptr())
	runtime.KeepAlive(a)
	return p
}

// MLXC returns a new mlx-c handle on the array, for hosts that run MLX through mlx-c from
// cgo: the value is the ctx field of an mlx-c mlx_array, so in the host's cgo code
//
//	arr := C.mlx_array{ctx: a.MLXC()}  // after checking the error
//	defer C.mlx_array_free(arr)
//
// The handle is owned by the caller and released with mlx-c's mlx_array_free, never by
// stload. It shares the data and is independent of a and of the model: it stays valid after
// a.Close, ReleaseAll and Model.Close. Never write through its data (it may be a read-only
// file mapping). mlx-c and this package must link the same libmlx.
func (a *MLXArray) MLXC() (unsafe.Pointer, error) {
	var ctx unsafe.Pointer
	var cerr *C.stload_error
	status := C.stloadgo_to_mlx_c(a.ptr(), &ctx, &cerr)
	runtime.KeepAlive(a)
	if status != C.STLOAD_OK {
		return nil, takeError(status, cerr)
	}
	return ctx, nil
}

// Close releases the array handle; MLX frees the data when no array uses it any more. Close
// is idempotent and always returns nil; it must not run concurrently with other methods of a.
func (a *MLXArray) Close() error {
	if a.c.handle == nil {
		return nil
	}
	runtime.SetFinalizer(a, nil)
	C.stload_mlx_array_free(a.c.handle)
	a.c = C.stloadgo_mlx{}
	return nil
}
