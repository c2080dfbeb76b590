package stload

// #include "shim.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Tensor is one tensor obtained from a Model: a zero-copy view of its bytes in the file
// mapping (or memory stload produced for a conversion), its dtype and its shape.
//
// A Tensor stays valid after its Model is closed. Close it when done; methods other than
// Close panic after Close. A Tensor may be read from many goroutines at once.
type Tensor struct {
	// c holds the handle and its data, size, dtype and shape, all read in the same cgo call
	// that made the handle; c.handle is nil once closed.
	c C.stloadgo_tensor
}

// ptr returns the live handle, or panics if the tensor is closed.
func (t *Tensor) ptr() *C.stload_tensor {
	if t.c.handle == nil {
		panic("stload: use of a closed Tensor")
	}
	return t.c.handle
}

// Bytes returns the tensor's data (little-endian, row-major) without copying it.
//
// The slice aliases native memory, usually a read-only file mapping: never write to it (a
// write faults). It is valid until t is closed; because a finalizer closes an unreachable
// Tensor, keep t reachable while you use the slice, e.g. with runtime.KeepAlive(t) after
// the last use, or by calling t.Close() then. Copy it (append([]byte(nil), b...)) to keep
// the data longer. An empty tensor gives an empty, non-nil slice.
func (t *Tensor) Bytes() []byte {
	t.ptr()
	if t.c.nbytes == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(t.c.data), int(t.c.nbytes))
}

// NBytes returns the length of the data in bytes.
func (t *Tensor) NBytes() int {
	t.ptr()
	return int(t.c.nbytes)
}

// Dtype returns the element type of the data (never Native).
func (t *Tensor) Dtype() Dtype {
	t.ptr()
	return Dtype(t.c.dtype)
}

// Shape returns the dimensions, outermost first (empty for a scalar). The slice is a copy.
func (t *Tensor) Shape() []uint64 {
	t.ptr()
	shape := make([]uint64, int(t.c.rank))
	if len(shape) > 0 { // for rank 0 the pointer may dangle
		copy(shape, unsafe.Slice((*uint64)(unsafe.Pointer(t.c.shape)), len(shape)))
	}
	return shape
}

// Close releases the native handle. The data stays valid for other tensors and for the
// model. Close is idempotent and always returns nil; it must not run concurrently with
// other methods of t.
func (t *Tensor) Close() error {
	if t.c.handle == nil {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	C.stload_tensor_free(t.c.handle)
	t.c = C.stloadgo_tensor{}
	return nil
}
