package stload

// #include <stdlib.h>
// #include "stload.h"
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Dtype is an element type: one of the STLOAD_DTYPE_* numbers.
type Dtype uint32

// The element types, with the numbers of the C API. Native means "as stored" in GetAs.
const (
	Native     Dtype = C.STLOAD_DTYPE_NATIVE
	Bool       Dtype = C.STLOAD_DTYPE_BOOL
	U8         Dtype = C.STLOAD_DTYPE_U8
	I8         Dtype = C.STLOAD_DTYPE_I8
	I16        Dtype = C.STLOAD_DTYPE_I16
	U16        Dtype = C.STLOAD_DTYPE_U16
	I32        Dtype = C.STLOAD_DTYPE_I32
	U32        Dtype = C.STLOAD_DTYPE_U32
	I64        Dtype = C.STLOAD_DTYPE_I64
	U64        Dtype = C.STLOAD_DTYPE_U64
	F16        Dtype = C.STLOAD_DTYPE_F16
	BF16       Dtype = C.STLOAD_DTYPE_BF16
	F32        Dtype = C.STLOAD_DTYPE_F32
	F64        Dtype = C.STLOAD_DTYPE_F64
	C64        Dtype = C.STLOAD_DTYPE_C64
	F8E4M3     Dtype = C.STLOAD_DTYPE_F8_E4M3
	F8E5M2     Dtype = C.STLOAD_DTYPE_F8_E5M2
	F8E8M0     Dtype = C.STLOAD_DTYPE_F8_E8M0
	F8E4M3FNUZ Dtype = C.STLOAD_DTYPE_F8_E4M3FNUZ
	F8E5M2FNUZ Dtype = C.STLOAD_DTYPE_F8_E5M2FNUZ
	F4         Dtype = C.STLOAD_DTYPE_F4
	F6E2M3     Dtype = C.STLOAD_DTYPE_F6_E2M3
	F6E3M2     Dtype = C.STLOAD_DTYPE_F6_E3M2
)

// GGML's block-quantised types, which GGUF files store: a tensor holds whole blocks along its
// last axis (BlockSize values in BlockBytes bytes each). Numbered after the element types.
const (
	Q4_0    Dtype = C.STLOAD_DTYPE_Q4_0
	Q4_1    Dtype = C.STLOAD_DTYPE_Q4_1
	Q5_0    Dtype = C.STLOAD_DTYPE_Q5_0
	Q5_1    Dtype = C.STLOAD_DTYPE_Q5_1
	Q8_0    Dtype = C.STLOAD_DTYPE_Q8_0
	Q8_1    Dtype = C.STLOAD_DTYPE_Q8_1
	Q2_K    Dtype = C.STLOAD_DTYPE_Q2_K
	Q3_K    Dtype = C.STLOAD_DTYPE_Q3_K
	Q4_K    Dtype = C.STLOAD_DTYPE_Q4_K
	Q5_K    Dtype = C.STLOAD_DTYPE_Q5_K
	Q6_K    Dtype = C.STLOAD_DTYPE_Q6_K
	Q8_K    Dtype = C.STLOAD_DTYPE_Q8_K
	IQ2_XXS Dtype = C.STLOAD_DTYPE_IQ2_XXS
	IQ2_XS  Dtype = C.STLOAD_DTYPE_IQ2_XS
	IQ3_XXS Dtype = C.STLOAD_DTYPE_IQ3_XXS
	IQ1_S   Dtype = C.STLOAD_DTYPE_IQ1_S
	IQ4_NL  Dtype = C.STLOAD_DTYPE_IQ4_NL
	IQ3_S   Dtype = C.STLOAD_DTYPE_IQ3_S
	IQ2_S   Dtype = C.STLOAD_DTYPE_IQ2_S
	IQ4_XS  Dtype = C.STLOAD_DTYPE_IQ4_XS
	IQ1_M   Dtype = C.STLOAD_DTYPE_IQ1_M
	TQ1_0   Dtype = C.STLOAD_DTYPE_TQ1_0
	TQ2_0   Dtype = C.STLOAD_DTYPE_TQ2_0
	MXFP4   Dtype = C.STLOAD_DTYPE_MXFP4
	NVFP4   Dtype = C.STLOAD_DTYPE_NVFP4
	Q1_0    Dtype = C.STLOAD_DTYPE_Q1_0
)

// BlockDtypes returns GGML's block-quantised types, in the order of their numbers.
func BlockDtypes() []Dtype {
	return []Dtype{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ2_XXS,
		IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M, TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0}
}

// BlockSize returns the values in the smallest run of d that fills whole bytes: a block type's
// block (256 for Q4_K), 2 for F4, 4 for the F6 types, 1 for the others; 0 for Native and
// unknown numbers.
func (d Dtype) BlockSize() int {
	return int(C.stload_dtype_block_size(C.stload_dtype(d)))
}

// BlockBytes returns the bytes of the run BlockSize counts (144 for Q4_K, 2 for BF16); 0 for
// Native and unknown numbers.
func (d Dtype) BlockBytes() int {
	return int(C.stload_dtype_block_bytes(C.stload_dtype(d)))
}

// Dtypes returns every element dtype (all but Native and the block types), in the order of
// their numbers: the dtypes a safetensors file can store.
func Dtypes() []Dtype {
	return []Dtype{Bool, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, C64,
		F8E4M3, F8E5M2, F8E8M0, F8E4M3FNUZ, F8E5M2FNUZ, F4, F6E2M3, F6E3M2}
}

// String returns the safetensors spelling ("BF16", "F8_E4M3"), "NATIVE" for Native, or
// "Dtype(N)" for a number stload does not know.
func (d Dtype) String() string {
	if d == Native {
		return "NATIVE"
	}
	if name := C.stload_dtype_name(C.stload_dtype(d)); name != nil {
		return C.GoString(name)
	}
	return fmt.Sprintf("Dtype(%d)", uint32(d))
}

// Bits returns the size of one element in bits (4 for F4, 6 for F6, 16 for BF16...), or 0
// for Native, unknown numbers and the block types (see BlockSize and BlockBytes).
func (d Dtype) Bits() int {
	return int(C.stload_dtype_bits(C.stload_dtype(d)))
}

// ParseDtype parses a dtype name case-insensitively: the safetensors spelling ("BF16") or a
// common alias ("float32", "bfloat16", "half", "float8_e4m3fn", ...). Unknown names give an
// error matching ErrNotFound.
func ParseDtype(name string) (Dtype, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return Native, invalidArg("dtype name %q contains a NUL byte", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var out C.stload_dtype
	var cerr *C.stload_error
	if status := C.stload_dtype_from_name(cname, &out, &cerr); status != C.STLOAD_OK {
		return Native, takeError(status, cerr)
	}
	return Dtype(out), nil
}
