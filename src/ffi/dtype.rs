//! Dtype numbers, names and sizes.

use std::ffi::c_char;

use super::{guard, guard_value, out_arg, stload_error, stload_status, str_arg};
use crate::dtype::Dtype;
use crate::error::Error;

/// An element type: one of the `STLOAD_DTYPE_*` numbers.
pub type stload_dtype = u32;

/// "As stored": a get with this dtype returns a zero-copy view.
pub const STLOAD_DTYPE_NATIVE: stload_dtype = 0;
/// Boolean, one byte.
pub const STLOAD_DTYPE_BOOL: stload_dtype = 1;
/// Unsigned 8-bit integer.
pub const STLOAD_DTYPE_U8: stload_dtype = 2;
/// Signed 8-bit integer.
pub const STLOAD_DTYPE_I8: stload_dtype = 3;
/// Signed 16-bit integer.
pub const STLOAD_DTYPE_I16: stload_dtype = 4;
/// Unsigned 16-bit integer.
pub const STLOAD_DTYPE_U16: stload_dtype = 5;
/// Signed 32-bit integer.
pub const STLOAD_DTYPE_I32: stload_dtype = 6;
/// Unsigned 32-bit integer.
pub const STLOAD_DTYPE_U32: stload_dtype = 7;
/// Signed 64-bit integer.
pub const STLOAD_DTYPE_I64: stload_dtype = 8;
/// Unsigned 64-bit integer.
pub const STLOAD_DTYPE_U64: stload_dtype = 9;
/// IEEE half precision.
pub const STLOAD_DTYPE_F16: stload_dtype = 10;
/// bfloat16.
pub const STLOAD_DTYPE_BF16: stload_dtype = 11;
/// IEEE single precision.
pub const STLOAD_DTYPE_F32: stload_dtype = 12;
/// IEEE double precision.
pub const STLOAD_DTYPE_F64: stload_dtype = 13;
/// Complex of two F32.
pub const STLOAD_DTYPE_C64: stload_dtype = 14;
/// FP8 E4M3 (no infinities, "E4M3FN").
pub const STLOAD_DTYPE_F8_E4M3: stload_dtype = 15;
/// FP8 E5M2.
pub const STLOAD_DTYPE_F8_E5M2: stload_dtype = 16;
/// FP8 E8M0 (power-of-two scale).
pub const STLOAD_DTYPE_F8_E8M0: stload_dtype = 17;
/// FP8 E4M3 FNUZ.
pub const STLOAD_DTYPE_F8_E4M3FNUZ: stload_dtype = 18;
/// FP8 E5M2 FNUZ.
pub const STLOAD_DTYPE_F8_E5M2FNUZ: stload_dtype = 19;
/// MX FP4 (E2M1), 4 bits.
pub const STLOAD_DTYPE_F4: stload_dtype = 20;
/// MX FP6 E2M3, 6 bits.
pub const STLOAD_DTYPE_F6_E2M3: stload_dtype = 21;
/// MX FP6 E3M2, 6 bits.
pub const STLOAD_DTYPE_F6_E3M2: stload_dtype = 22;

/// Maps a C dtype number to `None` (NATIVE) or a dtype; refuses unknown numbers.
pub(crate) fn requested(dtype: stload_dtype) -> Result<Option<Dtype>, Error> {
    if dtype == STLOAD_DTYPE_NATIVE {
        return Ok(None);
    }
    Dtype::from_code(dtype)
        .map(Some)
        .ok_or_else(|| Error::InvalidArgument(format!("{dtype} is not a dtype number")))
}

/// Parses a dtype name, case-insensitively: the safetensors spelling ("BF16", "F8_E4M3") or an
/// alias ("float32", "bfloat16", "int64", "half", "float8_e4m3fn", ...).
/// On success writes the dtype to `*out`. Unknown names: `STLOAD_ERR_NOT_FOUND`.
/// Thread-safe.
#[doc = safety!(
    "- `name`: NULL or a NUL-terminated string.",
    "- `out`: NULL or points to a writable `stload_dtype`.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_dtype_from_name(
    name: *const c_char,
    out: *mut stload_dtype,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a NUL-terminated string per the API contract.
        let name = unsafe { str_arg(name, "name") }?;
        let out = out_arg(out, "out")?;
        let dtype = Dtype::from_name(name)
            .ok_or_else(|| Error::NotFound(format!("unknown dtype name \"{name}\"")))?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = dtype.code() };
        Ok(())
    })
}

/// The safetensors spelling of a dtype ("BF16"), a static string; NULL for NATIVE or an
/// unknown number. Thread-safe.
#[no_mangle]
pub extern "C" fn stload_dtype_name(dtype: stload_dtype) -> *const c_char {
    guard_value(std::ptr::null(), || {
        Dtype::from_code(dtype).map_or(std::ptr::null(), |d| d.name_nul().as_ptr().cast())
    })
}

/// Bits per element (4 for F4, 6 for F6, 16 for BF16...); 0 for NATIVE or an unknown number.
#[no_mangle]
pub extern "C" fn stload_dtype_bits(dtype: stload_dtype) -> u32 {
    guard_value(0, || Dtype::from_code(dtype).map_or(0, Dtype::bits))
}
