package stload

// This file has an //export, so its preamble may only declare: the definitions are in
// progress.c.

// #include <stdint.h>
// #include "stload.h"
//
// // stload_model_load with progress.c's trampoline as the callback and handle (a
// // runtime/cgo.Handle) as its user_data; handle 0 means no callback.
// enum stload_status stloadgo_load(const stload_model *model, stload_dtype dtype,
//                                  uintptr_t handle, stload_error **err);
//
// // stload_model_load_into with the same callback.
// enum stload_status stloadgo_load_into(const stload_model *model, stload_dtype dtype,
//                                       size_t alignment, void *buf, size_t len,
//                                       stload_arena_slot *slots, uintptr_t handle,
//                                       stload_error **err);
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// CopyTo copies the tensor's values into dst, converted to dtype, bit-exact with numpy /
// ml_dtypes astype. With Native or the stored dtype it copies the stored bytes.
//
// len(dst) must be exactly the element count times the size of dtype, else the error matches
// ErrBufferSize; a pair stload does not convert (C64, F4 and F6 have no conversion) gives an
// error matching ErrUnsupported. dst is Go memory that C writes during the call only; it must
// not overlap the tensor's own bytes. Large tensors are converted by all cores. Safe for
// concurrent use.
func (t *Tensor) CopyTo(dst []byte, dtype Dtype) error {
	p := t.ptr()
	if overlaps(dst, t.c.data, int(t.c.nbytes)) {
		return invalidArg("CopyTo: the destination overlaps the tensor's own bytes")
	}
	var cerr *C.stload_error
	status := C.stload_tensor_copy_to(p, C.stload_dtype(dtype), bytesPtr(dst), C.size_t(len(dst)), &cerr)
	runtime.KeepAlive(t)
	runtime.KeepAlive(dst)
	if status != C.STLOAD_OK {
		return takeError(status, cerr)
	}
	return nil
}

// Float32s returns a copy of the tensor's values converted to float32 (CopyTo with F32) in
// a new Go slice, which stays valid after the tensor is closed. Dtypes without a conversion
// (C64, F4, F6) give an error matching ErrUnsupported.
func (t *Tensor) Float32s() ([]float32, error) {
	t.ptr()
	n := uint64(1)
	for _, d := range t.Shape() {
		if d != 0 && n > math.MaxInt/4/d {
			return nil, &Error{Status: StatusOutOfMemory,
				Message: "Float32s: the tensor has too many elements for a Go slice"}
		}
		n *= d
	}
	out := make([]float32, int(n))
	var dst []byte
	if n > 0 {
		dst = unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out))
	}
	if err := t.CopyTo(dst, F32); err != nil {
		return nil, err
	}
	if !littleEndian {
		// stload writes little-endian elements; a big-endian host reads them swapped.
		for i, v := range out {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], math.Float32bits(v))
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		}
	}
	return out, nil
}

// Convert converts the elements in src, of dtype from, into dst, of dtype to, bit-exact with
// numpy / ml_dtypes astype (both buffers little-endian, as in safetensors). The element count
// is len(src) divided by the size of from; len(dst) must hold exactly that many elements of
// to, else the error matches ErrBufferSize. A pair without a conversion gives an error
// matching ErrUnsupported that names both dtypes (e.g. F32 to BOOL). Native is not a dtype
// here (ErrInvalidArgument), and the buffers must not overlap. Runs on the calling
// goroutine's thread and allocates nothing. Safe for concurrent use.
func Convert(src []byte, from Dtype, dst []byte, to Dtype) error {
	fromBits, toBits := uint64(from.Bits()), uint64(to.Bits())
	if fromBits == 0 {
		return invalidArg("Convert: source dtype %v is not a storable dtype", from)
	}
	if toBits == 0 {
		return invalidArg("Convert: destination dtype %v is not a storable dtype", to)
	}
	srcBits := uint64(len(src)) * 8
	count := srcBits / fromBits
	wantBits := count * toBits
	if srcBits%fromBits != 0 || wantBits%8 != 0 || wantBits/8 != uint64(len(dst)) {
		// An unsupported pair is the more basic error: report it first. With no elements
		// stload checks the pair and nothing else.
		if err := convert(nil, from, nil, to, 0); err != nil {
			return err
		}
		if srcBits%fromBits != 0 {
			return &Error{Status: StatusBufferSize, Message: fmt.Sprintf(
				"converting %v to %v: source length %d bytes is not a whole number of %v elements",
				from, to, len(src), from)}
		}
		if wantBits%8 != 0 {
			return &Error{Status: StatusBufferSize, Message: fmt.Sprintf(
				"converting %v to %v: %d elements of %v do not fill whole bytes", from, to, count, to)}
		}
		return &Error{Status: StatusBufferSize, Message: fmt.Sprintf(
			"converting %v to %v: source has %d elements (%d bytes) which need %d destination "+
				"bytes, but destination has %d", from, to, count, len(src), wantBits/8, len(dst))}
	}
	if len(src) > 0 && len(dst) > 0 && overlaps(dst, unsafe.Pointer(&src[0]), len(src)) {
		return invalidArg("Convert: source and destination overlap")
	}
	return convert(src, from, dst, to, count)
}

// convert is one stload_convert call.
func convert(src []byte, from Dtype, dst []byte, to Dtype, count uint64) error {
	var cerr *C.stload_error
	status := C.stload_convert(bytesPtr(src), C.stload_dtype(from), bytesPtr(dst),
		C.stload_dtype(to), C.size_t(count), &cerr)
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
	if status != C.STLOAD_OK {
		return takeError(status, cerr)
	}
	return nil
}

// Load materialises every tensor of the model, like ollama's ModelWeights.Load. With Native
// every file is mapped. With a float dtype every floating-point tensor stored in another
// dtype is converted, one tensor at a time so peak memory stays near the output size;
// integer and boolean tensors stay as stored. Later GetAs(name, dtype) calls (and Get for the
// tensors left as stored) are then served from memory, without converting again, until
// ReleaseAll or Close (with WithCache(false) nothing converted is kept).
//
// progress, if not nil, is called after each tensor, on the calling goroutine, with the
// number of tensors done, the total and the tensor's name. Returning false stops the load
// with an error matching ErrCancelled; the tensors done so far stay loaded. A panic in
// progress stops the load and is raised again by Load once stload has returned.
//
// Load may run concurrently with other methods of m, except Close.
func (m *Model) Load(dtype Dtype, progress func(done, total int, name string) bool) error {
	p := m.ptr()
	state, handle, release := newLoadState(progress)
	defer release()
	var cerr *C.stload_error
	status := C.stloadgo_load(p, C.stload_dtype(dtype), handle, &cerr)
	runtime.KeepAlive(m)
	return state.finish(status, cerr)
}

// ArenaSlot says where LoadInto put one tensor.
type ArenaSlot struct {
	// Offset is the tensor's start in the buffer: a multiple of the alignment.
	Offset uint64
	// NBytes is the tensor's length in Dtype.
	NBytes uint64
	// Dtype is what the tensor was written as: the whole-model rule of Load.
	Dtype Dtype
}

// ArenaSize returns the bytes a buffer needs to hold every tensor of the model as LoadInto
// writes them with dtype and alignment (a power of two: 32 for ggml, 64, 4096).
func (m *Model) ArenaSize(dtype Dtype, alignment int) (uint64, error) {
	if alignment <= 0 {
		return 0, invalidArg("alignment %d is not a power of two", alignment)
	}
	var size C.uint64_t
	var cerr *C.stload_error
	status := C.stload_model_arena_size(m.ptr(), C.stload_dtype(dtype), C.size_t(alignment), &size, &cerr)
	runtime.KeepAlive(m)
	if status != C.STLOAD_OK {
		return 0, takeError(status, cerr)
	}
	return uint64(size), nil
}

// LoadInto writes every tensor of the model into buf, one buffer the caller owns (a ggml or
// GPU staging arena, memory from syscall.Mmap, ...): as stored with Native, else converted as
// Load converts (floats to dtype, integers as stored), by all threads in one pass. The tensors
// are packed in the order of Names, each at a multiple of alignment (a power of two); buf must
// start at a multiple of alignment and hold ArenaSize bytes. It returns where each tensor is,
// in the order of Names. stload keeps no reference to buf and no copy; buf is not counted
// against WithMaxLoadBytes. progress is called as for Load; a cancel leaves the tensors before
// it written.
func (m *Model) LoadInto(dtype Dtype, alignment int, buf []byte, progress func(done, total int, name string) bool) ([]ArenaSlot, error) {
	if alignment <= 0 {
		return nil, invalidArg("alignment %d is not a power of two", alignment)
	}
	p := m.ptr()
	slots := make([]C.stload_arena_slot, int(C.stload_model_len(p)))
	var slotsPtr *C.stload_arena_slot
	if len(slots) > 0 {
		slotsPtr = &slots[0]
	}
	var bufPtr unsafe.Pointer
	if len(buf) > 0 {
		bufPtr = unsafe.Pointer(&buf[0])
	}
	state, handle, release := newLoadState(progress)
	defer release()
	var cerr *C.stload_error
	status := C.stloadgo_load_into(p, C.stload_dtype(dtype), C.size_t(alignment), bufPtr, C.size_t(len(buf)), slotsPtr, handle, &cerr)
	runtime.KeepAlive(m)
	runtime.KeepAlive(buf)
	if err := state.finish(status, cerr); err != nil {
		return nil, err
	}
	out := make([]ArenaSlot, len(slots))
	for i, s := range slots {
		out[i] = ArenaSlot{Offset: uint64(s.offset), NBytes: uint64(s.nbytes), Dtype: Dtype(s.dtype)}
	}
	return out, nil
}

// newLoadState prepares a call's progress callback for C: C receives an integer handle,
// never a Go pointer, and the trampoline turns it back. With a nil progress the state is nil
// and the handle 0 (no callback). release must run after the C call returns.
func newLoadState(progress func(done, total int, name string) bool) (*loadState, C.uintptr_t, func()) {
	if progress == nil {
		return nil, 0, func() {}
	}
	state := &loadState{progress: progress}
	h := cgo.NewHandle(state)
	return state, C.uintptr_t(h), h.Delete
}

// loadState is what one Load call shares with its progress callback.
type loadState struct {
	progress   func(done, total int, name string) bool
	panicked   bool
	panicValue interface{}
}

// finish ends a call that took a progress callback (state is nil without one): the status as
// an error, after raising again a panic the callback caught.
func (state *loadState) finish(status uint32, cerr *C.stload_error) error {
	var err error
	if status != C.STLOAD_OK {
		err = takeError(status, cerr)
	}
	if state != nil && state.panicked {
		panic(state.panicValue)
	}
	return err
}

// stloadgoProgress is the Go side of progress.c's trampoline: handle is the cgo.Handle of
// a *loadState. A panic in the user's function must not unwind through stload's frames, so
// it is caught here, stops the load, and Load raises it again.
//
//export stloadgoProgress
func stloadgoProgress(handle C.uintptr_t, done, total C.size_t, name *C.char) (goOn C.bool) {
	state := cgo.Handle(handle).Value().(*loadState)
	returned := false
	defer func() {
		if !returned {
			state.panicked = true
			state.panicValue = recover()
			goOn = false
		}
	}()
	ok := state.progress(int(done), int(total), C.GoString(name))
	returned = true
	return C.bool(ok)
}

// bytesPtr is the address of b's first byte, or nil for an empty slice.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// overlaps reports whether b shares a byte with the n bytes at p.
func overlaps(b []byte, p unsafe.Pointer, n int) bool {
	if len(b) == 0 || n == 0 || p == nil {
		return false
	}
	b0, p0 := uintptr(unsafe.Pointer(&b[0])), uintptr(p)
	return b0 < p0+uintptr(n) && p0 < b0+uintptr(len(b))
}

// littleEndian reports the host's byte order; stload's data is always little-endian.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
