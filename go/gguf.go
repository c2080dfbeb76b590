package stload

// #include <stdint.h>
// #include <stdlib.h>
// #include "stload.h"
// enum stload_status stloadgo_write_gguf(const stload_model *model, const char *path,
//                                        stload_gguf_type outtype, uintptr_t handle,
//                                        stload_error **err);
import "C"

import (
	"runtime"
	"unsafe"
)

// GGUFType is the tensor type of a GGUF file written by (*Model).WriteGGUF.
type GGUFType uint32

// The GGUF output types (the STLOAD_GGUF_* numbers of the C API).
const (
	// GGUFAuto is ollama's default: F32 for 1-D tensors, biases, *.ffn_gate_inp.weight and
	// token_types.weight; F16 for every other float tensor.
	GGUFAuto GGUFType = C.STLOAD_GGUF_AUTO
	// GGUFF32 writes every float tensor in F32.
	GGUFF32 GGUFType = C.STLOAD_GGUF_F32
	// GGUFF16 writes F16, except the tensors GGUFAuto keeps in F32.
	GGUFF16 GGUFType = C.STLOAD_GGUF_F16
	// GGUFBF16 writes BF16, except the tensors GGUFAuto keeps in F32.
	GGUFBF16 GGUFType = C.STLOAD_GGUF_BF16
	// GGUFQ8_0 writes Q8_0 where the innermost dimension is a multiple of 32 (else F16),
	// except the tensors GGUFAuto keeps in F32.
	GGUFQ8_0 GGUFType = C.STLOAD_GGUF_Q8_0
)

// WriteGGUF writes the model as a GGUF v3 file at path, for llama.cpp and ollama. Signed
// integer tensors keep their type; float tensors take the type outtype picks.
//
// The file is written under a temporary name beside path and renamed at the end: on an error
// or a cancel nothing is left at path. Writing onto one of the model's own files is an error
// matching ErrInvalidArgument. progress (may be nil) is called on the calling goroutine with
// the bytes written and the total; returning false stops with an error matching ErrCancelled.
// A panic in progress stops the write and is raised again by WriteGGUF. Safe for concurrent
// use with other methods of the model.
func (m *Model) WriteGGUF(path string, outtype GGUFType, progress func(done, total uint64) bool) error {
	p := m.ptr()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var bytes func(done, total int, _ string) bool
	if progress != nil {
		bytes = func(done, total int, _ string) bool { return progress(uint64(done), uint64(total)) }
	}
	state, handle, release := newLoadState(bytes)
	defer release()
	var cerr *C.stload_error
	status := C.stloadgo_write_gguf(p, cpath, C.stload_gguf_type(outtype), handle, &cerr)
	runtime.KeepAlive(m)
	return state.finish(status, cerr)
}
