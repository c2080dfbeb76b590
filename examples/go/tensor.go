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
	p     *C.stload_tensor
	data  unsafe.Pointer // C memory owned by p
	n     int
	dtype Dtype
	shape []uint64
}

// newTensor wraps a handle the caller owns, described by v, and arms its finalizer.
func newTensor(p *C.stload_tensor, v *C.stloadgo_view) *Tensor {
	t := &Tensor{p: p, data: v.data, n: int(v.nbytes), dtype: Dtype(v.dtype)}
	rank := int(v.rank)
	t.shape = make([]uint64, rank)
	if rank > 0 { // for rank 0 the pointer may dangle
		copy(t.shape, unsafe.Slice((*uint64)(unsafe.Pointer(v.shape)), rank))
	}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t
}

// ptr returns the live handle, or panics if the tensor is closed.
func (t *Tensor) ptr() *C.stload_tensor {
	if t.p == nil {
		panic("stload: use of a closed Tensor")
	}
	return t.p
}

// Bytes returns the tensor's data (little-endian, row-major) without copying it.
//
// The slice aliases native memory, usually a read-only file mapping: never write to it (a
// write faults). It is valid until t is closed; because a finalizer closes an unreachable
// Tensor, keep t reachable while you use the slice, e.g. with runtime.KeepAlive(t) after
// the last use, or by calling t.Close() then. Copy it (bytes.Clone, append) to keep the data
// longer. An empty tensor gives an empty, non-nil slice.
func (t *Tensor) Bytes() []byte {
	t.ptr()
	if t.n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(t.data), t.n)
}

// NBytes returns the length of the data in bytes.
func (t *Tensor) NBytes() int {
	t.ptr()
	return t.n
}

// Dtype returns the element type of the data (never Native).
func (t *Tensor) Dtype() Dtype {
	t.ptr()
	return t.dtype
}

// Shape returns the dimensions, outermost first (empty for a scalar). The slice is a copy.
func (t *Tensor) Shape() []uint64 {
	t.ptr()
	return append([]uint64{}, t.shape...)
}

// Close releases the native handle. The data stays valid for other tensors and for the
// model. Close is idempotent and always returns nil; it must not run concurrently with
// other methods of t.
func (t *Tensor) Close() error {
	if t.p == nil {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	C.stload_tensor_free(t.p)
	t.p, t.data, t.n = nil, nil, 0
	return nil
}
