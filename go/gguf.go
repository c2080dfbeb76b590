package stload

// #include <stdint.h>
// #include <stdlib.h>
// #include "stload.h"
// enum stload_status stloadgo_write_gguf(const stload_model *model, const char *path,
//                                        stload_gguf_type outtype, uintptr_t handle,
//                                        stload_error **err);
// enum stload_status stloadgo_write_gguf_split(const stload_model *model, const char *path,
//                                              stload_gguf_type outtype, uint64_t max_bytes,
//                                              uint64_t max_tensors, uintptr_t handle,
//                                              stload_error **err);
import "C"

import (
	"runtime"
	"strings"
	"unsafe"
)

// GGUFType is the tensor type of a GGUF file written by (*Model).WriteGGUF.
type GGUFType uint32

// The GGUF output types (the STLOAD_GGUF_* numbers of the C API).
const (
	// GGUFAuto is ollama's default: F32 for 1-D tensors, biases, *.ffn_gate_inp.weight,
	// token_types.weight and position_embd.weight; F16 for every other float tensor.
	GGUFAuto GGUFType = C.STLOAD_GGUF_AUTO
	// GGUFF32 writes every float tensor in F32.
	GGUFF32 GGUFType = C.STLOAD_GGUF_F32
	// GGUFF16 writes F16, except the tensors GGUFAuto keeps in F32.
	GGUFF16 GGUFType = C.STLOAD_GGUF_F16
	// GGUFBF16 writes BF16, except the tensors GGUFAuto keeps in F32.
	GGUFBF16 GGUFType = C.STLOAD_GGUF_BF16
	// GGUFQ8_0 writes Q8_0 where llama.cpp's quantiser puts it (F16 where a row is not a
	// multiple of 32), F32 for the tensors it does not quantise.
	GGUFQ8_0 GGUFType = C.STLOAD_GGUF_Q8_0
	// The other quantised file types, by llama-quantize's names: each tensor takes the type
	// llama.cpp's quantiser gives it (see ParseGGUFType for the names).
	GGUFQ4_0  GGUFType = C.STLOAD_GGUF_Q4_0
	GGUFQ4_1  GGUFType = C.STLOAD_GGUF_Q4_1
	GGUFQ5_0  GGUFType = C.STLOAD_GGUF_Q5_0
	GGUFQ5_1  GGUFType = C.STLOAD_GGUF_Q5_1
	GGUFQ2K   GGUFType = C.STLOAD_GGUF_Q2_K
	GGUFQ2KS  GGUFType = C.STLOAD_GGUF_Q2_K_S
	GGUFQ3KS  GGUFType = C.STLOAD_GGUF_Q3_K_S
	GGUFQ3KM  GGUFType = C.STLOAD_GGUF_Q3_K_M
	GGUFQ3KL  GGUFType = C.STLOAD_GGUF_Q3_K_L
	GGUFQ4KS  GGUFType = C.STLOAD_GGUF_Q4_K_S
	GGUFQ4KM  GGUFType = C.STLOAD_GGUF_Q4_K_M
	GGUFQ5KS  GGUFType = C.STLOAD_GGUF_Q5_K_S
	GGUFQ5KM  GGUFType = C.STLOAD_GGUF_Q5_K_M
	GGUFQ6K   GGUFType = C.STLOAD_GGUF_Q6_K
	GGUFIQ4NL GGUFType = C.STLOAD_GGUF_IQ4_NL
	GGUFIQ4XS GGUFType = C.STLOAD_GGUF_IQ4_XS
	GGUFTQ1_0 GGUFType = C.STLOAD_GGUF_TQ1_0
	GGUFTQ2_0 GGUFType = C.STLOAD_GGUF_TQ2_0
)

// ParseGGUFType returns the output type named name, case-insensitively: "auto", "f32",
// "f16", "bf16", or llama-quantize's name of a file type ("q8_0", "q4_k_m", "Q5_K_S",
// "iq4_xs", ...). An unknown name is an error matching ErrNotFound that lists the known ones.
func ParseGGUFType(name string) (GGUFType, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return GGUFAuto, invalidArg("GGUF type name %q contains a NUL byte", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var out C.stload_gguf_type
	var cerr *C.stload_error
	if status := C.stload_gguf_type_from_name(cname, &out, &cerr); status != C.STLOAD_OK {
		return GGUFAuto, takeError(status, cerr)
	}
	return GGUFType(out), nil
}

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
	return m.writeGGUF(path, progress, func(p *C.stload_model, cpath *C.char, handle C.uintptr_t, cerr **C.stload_error) C.enum_stload_status {
		return C.stloadgo_write_gguf(p, cpath, C.stload_gguf_type(outtype), handle, cerr)
	})
}

// WriteGGUFSplit writes the model as GGUF shards the way llama.cpp's gguf-split cuts and names
// them: PREFIX-00001-of-0000N.gguf beside path, PREFIX being path less ".gguf". A shard closes
// before the tensor that would take its tensor data past maxBytes or its tensor count past
// maxTensors (0: no limit; at least one must be set); a tensor larger than maxBytes goes alone
// in a shard. The first shard holds all the metadata and llama.cpp loads the model from it.
// Tensor types, progress and errors are those of WriteGGUF; on any error or a cancel no shard
// is left. Safe for concurrent use with other calls on m.
func (m *Model) WriteGGUFSplit(path string, outtype GGUFType, maxBytes, maxTensors uint64, progress func(done, total uint64) bool) error {
	return m.writeGGUF(path, progress, func(p *C.stload_model, cpath *C.char, handle C.uintptr_t, cerr **C.stload_error) C.enum_stload_status {
		return C.stloadgo_write_gguf_split(p, cpath, C.stload_gguf_type(outtype), C.uint64_t(maxBytes), C.uint64_t(maxTensors), handle, cerr)
	})
}

// writeGGUF runs one of the C GGUF writers with the path as a C string and progress as a
// cgo handle, and turns its status into an error.
func (m *Model) writeGGUF(path string, progress func(done, total uint64) bool, write func(*C.stload_model, *C.char, C.uintptr_t, **C.stload_error) C.enum_stload_status) error {
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
	status := write(p, cpath, handle, &cerr)
	runtime.KeepAlive(m)
	return state.finish(status, cerr)
}

// GGUFValueType is the type of a GGUF metadata value, numbered as in the file (the gguf
// package's GGUFValueType).
type GGUFValueType int

// The GGUF value types.
const (
	ValueUint8   GGUFValueType = 0
	ValueInt8    GGUFValueType = 1
	ValueUint16  GGUFValueType = 2
	ValueInt16   GGUFValueType = 3
	ValueUint32  GGUFValueType = 4
	ValueInt32   GGUFValueType = 5
	ValueFloat32 GGUFValueType = 6
	ValueBool    GGUFValueType = 7
	ValueString  GGUFValueType = 8
	ValueArray   GGUFValueType = 9
	ValueUint64  GGUFValueType = 10
	ValueInt64   GGUFValueType = 11
	ValueFloat64 GGUFValueType = 12
)
