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
/// GGML Q4_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q4_0: stload_dtype = 23;
/// GGML Q4_1 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q4_1: stload_dtype = 24;
/// GGML Q5_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q5_0: stload_dtype = 25;
/// GGML Q5_1 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q5_1: stload_dtype = 26;
/// GGML Q8_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q8_0: stload_dtype = 27;
/// GGML Q8_1 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q8_1: stload_dtype = 28;
/// GGML Q2_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q2_K: stload_dtype = 29;
/// GGML Q3_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q3_K: stload_dtype = 30;
/// GGML Q4_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q4_K: stload_dtype = 31;
/// GGML Q5_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q5_K: stload_dtype = 32;
/// GGML Q6_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q6_K: stload_dtype = 33;
/// GGML Q8_K blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q8_K: stload_dtype = 34;
/// GGML IQ2_XXS blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ2_XXS: stload_dtype = 35;
/// GGML IQ2_XS blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ2_XS: stload_dtype = 36;
/// GGML IQ3_XXS blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ3_XXS: stload_dtype = 37;
/// GGML IQ1_S blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ1_S: stload_dtype = 38;
/// GGML IQ4_NL blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ4_NL: stload_dtype = 39;
/// GGML IQ3_S blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ3_S: stload_dtype = 40;
/// GGML IQ2_S blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ2_S: stload_dtype = 41;
/// GGML IQ4_XS blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ4_XS: stload_dtype = 42;
/// GGML IQ1_M blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_IQ1_M: stload_dtype = 43;
/// GGML TQ1_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_TQ1_0: stload_dtype = 44;
/// GGML TQ2_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_TQ2_0: stload_dtype = 45;
/// GGML MXFP4 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_MXFP4: stload_dtype = 46;
/// GGML NVFP4 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_NVFP4: stload_dtype = 47;
/// GGML Q1_0 blocks (`stload_dtype_block_size` values in `stload_dtype_block_bytes` bytes).
pub const STLOAD_DTYPE_Q1_0: stload_dtype = 48;

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

/// Bits per element (4 for F4, 6 for F6, 16 for BF16...); 0 for NATIVE, an unknown number or a
/// GGML block type (whose size `stload_dtype_block_size` and `stload_dtype_block_bytes` give).
#[no_mangle]
pub extern "C" fn stload_dtype_bits(dtype: stload_dtype) -> u32 {
    guard_value(0, || Dtype::from_code(dtype).map_or(0, Dtype::bits))
}

/// Values in the smallest run of a dtype that fills whole bytes: a GGML block type's block
/// (256 for `STLOAD_DTYPE_Q4_K`), 2 for F4, 4 for the F6 types, 1 for the others; 0 for NATIVE
/// or an unknown number. A tensor of a block type holds whole blocks along its last axis.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn stload_dtype_block_size(dtype: stload_dtype) -> u64 {
    guard_value(0, || Dtype::from_code(dtype).map_or(0, |d| d.block().0))
}

/// Bytes of the run `stload_dtype_block_size` counts (144 for `STLOAD_DTYPE_Q4_K`, 1 for F4,
/// 2 for BF16); 0 for NATIVE or an unknown number. Thread-safe.
#[no_mangle]
pub extern "C" fn stload_dtype_block_bytes(dtype: stload_dtype) -> u64 {
    guard_value(0, || Dtype::from_code(dtype).map_or(0, |d| d.block().1))
}
