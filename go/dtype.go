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

// Dtypes returns every storable dtype (all but Native), in the order of their numbers.
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
// for Native and unknown numbers.
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
