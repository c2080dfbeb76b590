//! Writing a model as GGUF.

use std::ffi::{c_char, c_void};
use std::path::Path;

use super::convert::{byte_progress, stload_progress_fn};
use super::model::stload_model;
use super::{arg, guard, out_arg, stload_error, stload_status, str_arg};
use crate::error::Error;
use crate::gguf::{OutType, Split};

/// A GGUF output type: one of the `STLOAD_GGUF_*` numbers.
pub type stload_gguf_type = u32;

/// ollama's default: F32 for 1-D tensors, biases, `*.ffn_gate_inp.weight`,
/// `token_types.weight` and `position_embd.weight`; F16 for every other float tensor.
pub const STLOAD_GGUF_AUTO: stload_gguf_type = 0;
/// Every float tensor in F32.
pub const STLOAD_GGUF_F32: stload_gguf_type = 1;
/// F16, except the tensors AUTO keeps in F32.
pub const STLOAD_GGUF_F16: stload_gguf_type = 2;
/// BF16, except the tensors AUTO keeps in F32.
pub const STLOAD_GGUF_BF16: stload_gguf_type = 3;
/// Q8_0 where llama.cpp's quantiser puts it (F16 where a row is not a multiple of 32), F32
/// for the tensors it does not quantise (1-D tensors, norms, MoE routers, ...).
pub const STLOAD_GGUF_Q8_0: stload_gguf_type = 4;
/// llama.cpp's file type Q4_0: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q4_0: stload_gguf_type = 5;
/// llama.cpp's file type Q4_1: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q4_1: stload_gguf_type = 6;
/// llama.cpp's file type Q5_0: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q5_0: stload_gguf_type = 7;
/// llama.cpp's file type Q5_1: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q5_1: stload_gguf_type = 8;
/// llama.cpp's file type Q2_K: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q2_K: stload_gguf_type = 9;
/// llama.cpp's file type Q2_K_S: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q2_K_S: stload_gguf_type = 10;
/// llama.cpp's file type Q3_K_S: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q3_K_S: stload_gguf_type = 11;
/// llama.cpp's file type Q3_K_M: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q3_K_M: stload_gguf_type = 12;
/// llama.cpp's file type Q3_K_L: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q3_K_L: stload_gguf_type = 13;
/// llama.cpp's file type Q4_K_S: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q4_K_S: stload_gguf_type = 14;
/// llama.cpp's file type Q4_K_M: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q4_K_M: stload_gguf_type = 15;
/// llama.cpp's file type Q5_K_S: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q5_K_S: stload_gguf_type = 16;
/// llama.cpp's file type Q5_K_M: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q5_K_M: stload_gguf_type = 17;
/// llama.cpp's file type Q6_K: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_Q6_K: stload_gguf_type = 18;
/// llama.cpp's file type IQ4_NL: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_IQ4_NL: stload_gguf_type = 19;
/// llama.cpp's file type IQ4_XS: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_IQ4_XS: stload_gguf_type = 20;
/// llama.cpp's file type TQ1_0: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_TQ1_0: stload_gguf_type = 21;
/// llama.cpp's file type TQ2_0: each tensor's type by llama.cpp's quantiser's rule.
pub const STLOAD_GGUF_TQ2_0: stload_gguf_type = 22;

/// Writes `model` as a GGUF v3 file at `path` (UTF-8), for llama.cpp and ollama.
///
/// Float tensors take the type `outtype` picks (see `STLOAD_GGUF_*`; a quantised file type
/// gives each tensor the type llama.cpp's quantiser gives it from an F32 GGUF, and
/// `general.file_type` its `LLAMA_FTYPE_*` number); signed integer tensors
/// keep theirs; unsigned integers and booleans are an error. The metadata holds
/// `general.architecture` (the `arch` option of the model, or "unknown"), `general.name`,
/// `general.file_type`, `general.quantization_version` and `general.alignment` (32).
///
/// The file is written under a temporary name in the destination directory and renamed at
/// the end: on any error, or when `progress` returns false (`STLOAD_ERR_CANCELLED`), nothing
/// is left at `path` and an existing file there is unchanged. Writing onto one of the model's
/// own files, or onto a file the conversion reads beside them (`config.json`, the tokenizer
/// files, `generation_config.json`, ...), is `STLOAD_ERR_INVALID_ARGUMENT`. `progress` (may be
/// NULL) is called as (user_data, bytes done, bytes total, NULL) on the calling thread.
///
/// Does not take ownership of any argument. `model` and `path` must not be NULL. Thread-safe:
/// other threads may use the model meanwhile. Returns `STLOAD_OK`, or an error status with
/// `*err` set when `err` is not NULL (free it with `stload_error_free`).
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `path`: NULL or a NUL-terminated string.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_write_gguf(
    model: *const stload_model,
    path: *const c_char,
    outtype: stload_gguf_type,
    progress: stload_progress_fn,
    user_data: *mut c_void,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: NULL or a NUL-terminated string per the API contract.
        let path = unsafe { str_arg(path, "path") }?;
        let outtype = out_type(outtype)?;
        let mut report = byte_progress(progress, user_data);
        model
            .inner
            .write_gguf(Path::new(path), outtype, &mut report)
    })
}

fn out_type(outtype: stload_gguf_type) -> Result<OutType, Error> {
    OutType::ALL.get(outtype as usize).copied().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "unknown GGUF output type {outtype} (STLOAD_GGUF_AUTO = 0 to STLOAD_GGUF_TQ2_0 = {})",
            OutType::ALL.len() - 1
        ))
    })
}

/// Parses a GGUF output type by its name, case-insensitively: "auto", "f32", "f16", "bf16",
/// or llama-quantize's name of a file type ("q8_0", "q4_k_m", "Q5_K_S", "iq4_xs", ...; "q4_k"
/// is "q4_k_m"). On success writes its `STLOAD_GGUF_*` number to `*out`. Unknown names:
/// `STLOAD_ERR_NOT_FOUND`, the message listing the known ones. Thread-safe.
#[doc = safety!(
    "- `name`: NULL or a NUL-terminated string.",
    "- `out`: NULL or points to a writable `stload_gguf_type`.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_gguf_type_from_name(
    name: *const c_char,
    out: *mut stload_gguf_type,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a NUL-terminated string per the API contract.
        let name = unsafe { str_arg(name, "name") }?;
        let out = out_arg(out, "out")?;
        let t: OutType = name
            .parse()
            .map_err(|e: Error| Error::NotFound(e.to_string()))?;
        let number = OutType::ALL.iter().position(|&a| a == t).unwrap_or(0);
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = number as stload_gguf_type };
        Ok(())
    })
}

/// Writes `model` as GGUF in shards, as llama.cpp's gguf-split cuts and names them: files
/// `PREFIX-00001-of-0000N.gguf` in the directory of `path` (UTF-8), where PREFIX is `path`
/// less a ".gguf" extension (any other name is the prefix whole). llama.cpp loads the model
/// from the first shard, which holds all the metadata; every shard holds `split.no` (from 0),
/// `split.count` and `split.tensors.count`. The shard names are used even when one shard holds
/// everything.
///
/// A shard closes before the tensor that would take its tensor data past `max_bytes` bytes
/// (each tensor counted padded to the alignment; the metadata is not counted) or past
/// `max_tensors` tensors. 0 means no limit, but at least one must be set. A tensor larger than
/// `max_bytes` goes alone in a shard. Tensor types and metadata are those of
/// `stload_model_write_gguf`.
///
/// All shards are written under temporary names in the destination directory and renamed once
/// all are complete: on any error, or when `progress` returns false (`STLOAD_ERR_CANCELLED`),
/// no shard is left. Existing files with the shard names are replaced (other files, shards of
/// another count included, are left alone); writing onto one of the model's own files, or onto
/// a file the conversion reads beside them, is `STLOAD_ERR_INVALID_ARGUMENT`. `progress` (may
/// be NULL) is called as (user_data, bytes done, bytes total, NULL) on the calling thread, over
/// all shards.
///
/// Does not take ownership of any argument. `model` and `path` must not be NULL. Thread-safe:
/// other threads may use the model meanwhile. Returns `STLOAD_OK`, or an error status with
/// `*err` set when `err` is not NULL (free it with `stload_error_free`).
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `path`: NULL or a NUL-terminated string.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_write_gguf_split(
    model: *const stload_model,
    path: *const c_char,
    outtype: stload_gguf_type,
    max_bytes: u64,
    max_tensors: u64,
    progress: stload_progress_fn,
    user_data: *mut c_void,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: NULL or a NUL-terminated string per the API contract.
        let path = unsafe { str_arg(path, "path") }?;
        let outtype = out_type(outtype)?;
        let split = Split {
            max_bytes,
            max_tensors,
        };
        let mut report = byte_progress(progress, user_data);
        model
            .inner
            .write_gguf_split(Path::new(path), outtype, split, &mut report)
            .map(drop)
    })
}
