//! Model handles: open, list, describe, get, release.

use std::ffi::c_char;
use std::path::PathBuf;

use super::convert::byte_progress;
use super::dtype::{requested, stload_dtype};
use super::options::stload_options;
use super::tensor::stload_tensor;
use super::{arg, guard, guard_value, out_arg, stload_error, stload_status, str_arg};
use crate::error::Error;
use crate::file::Format;
use crate::model::Model;
use crate::options::Options;

/// An opened model: the index of its tensors. Create with `stload_open_dir` or
/// `stload_open_files`, free with `stload_model_free`. A `const stload_model*` may be used from
/// many threads at once; caches are synchronised inside.
pub struct stload_model {
    pub(crate) inner: Model,
}

/// What the index knows of one tensor. Pointers are borrowed from the model and live until
/// `stload_model_free` (they survive `stload_model_release_all`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct stload_tensor_info {
    /// The stored dtype.
    pub dtype: stload_dtype,
    /// Number of dimensions.
    pub rank: usize,
    /// `rank` dimensions, outermost first.
    pub shape: *const u64,
    /// Stored byte length.
    pub nbytes: u64,
    /// Path of the file that holds the data, NUL-terminated.
    pub file: *const c_char,
    /// Absolute offset of the data in that file.
    pub data_offset: u64,
    /// The name in the file before any renaming (equal to the listed name when none applies).
    pub original_name: *const c_char,
    /// The format of `file`: `STLOAD_FORMAT_SAFETENSORS`, `STLOAD_FORMAT_PYTORCH` or
    /// `STLOAD_FORMAT_GGUF`.
    pub format: u32,
}

/// `stload_tensor_info.format` of a `.safetensors` file.
pub const STLOAD_FORMAT_SAFETENSORS: u32 = 0;
/// `stload_tensor_info.format` of a PyTorch zip checkpoint (`.bin`, `.pth`, `.pt`).
pub const STLOAD_FORMAT_PYTORCH: u32 = 1;
/// `stload_tensor_info.format`: a GGUF file.
pub const STLOAD_FORMAT_GGUF: u32 = 2;

fn open_with(
    opts: *const stload_options,
    out: *mut *mut stload_model,
    err: *mut *mut stload_error,
    open: impl FnOnce(&Options) -> Result<Model, Error>,
) -> stload_status {
    guard(err, || {
        let out = out_arg(out, "model")?;
        let defaults = Options::default();
        // SAFETY: `opts` is NULL (defaults) or a live options handle.
        let options = unsafe { opts.as_ref() }.map_or(&defaults, |o| &o.inner);
        let model = open(options)?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = Box::into_raw(Box::new(stload_model { inner: model })) };
        Ok(())
    })
}

/// Opens a model directory: the shards named by `model.safetensors.index.json` when present
/// (each shard's header must agree with it), else every `*.safetensors` file in sorted order,
/// else every `*.gguf` file (a split set's shards checked as llama.cpp checks them), else
/// PyTorch checkpoints. Reads headers only. `opts` may be NULL for defaults; it is copied,
/// not kept. `dir` may be a URL (`s3://bucket/prefix/`, `gs://`, `az://`, `http(s)://`),
/// listed by the same rules (a plain HTTP server cannot list: it serves its index or
/// `model.safetensors`; give a GGUF file's URL to `stload_open_files`): see
/// `stload_options_set_remote`.
/// On success `*model` receives a handle owned by the caller (free with `stload_model_free`).
#[doc = safety!(
    "- `dir`: NULL or a NUL-terminated string.",
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed.",
    "- `model`: NULL or points to writable storage for a pointer.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_open_dir(
    dir: *const c_char,
    opts: *const stload_options,
    model: *mut *mut stload_model,
    err: *mut *mut stload_error,
) -> stload_status {
    open_with(opts, model, err, |o| {
        // SAFETY: NULL or a NUL-terminated string per the API contract.
        let dir = unsafe { str_arg(dir, "dir") }?;
        Model::open_dir(dir, o)
    })
}

/// Opens an explicit list of `n` files (blob stores, no directory layout): safetensors, GGUF
/// (by its magic; a shard of a split set brings the other shards, found by name beside it),
/// or PyTorch checkpoints. Same ownership as `stload_open_dir`. The same tensor name in two
/// files is `STLOAD_ERR_DUPLICATE`, naming both files. The files may be URLs (all of them,
/// then; PyTorch checkpoints only in a prefix opened with a cache directory), read with
/// ranged GETs as local files are read from their mapping.
#[doc = safety!(
    "- `paths`: NULL or points to `n` pointers, each NULL or a NUL-terminated string.",
    "- `opts`: NULL or an options handle from `stload_options_new`, not yet freed.",
    "- `model`: NULL or points to writable storage for a pointer.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_open_files(
    paths: *const *const c_char,
    n: usize,
    opts: *const stload_options,
    model: *mut *mut stload_model,
    err: *mut *mut stload_error,
) -> stload_status {
    open_with(opts, model, err, |o| {
        if paths.is_null() {
            return Err(Error::InvalidArgument("paths is NULL".into()));
        }
        // SAFETY: `paths` points to `n` string pointers per the API contract.
        let list = unsafe { std::slice::from_raw_parts(paths, n) };
        let files = list
            .iter()
            // SAFETY: each element is NULL or a NUL-terminated string.
            .map(|&p| unsafe { str_arg(p, "paths[i]") }.map(PathBuf::from))
            .collect::<Result<Vec<_>, _>>()?;
        Model::open_files(&files, o)
    })
}

/// Frees a model: its index, caches and mappings. Tensors obtained from it stay valid.
/// Borrowed strings and shapes from it become invalid. NULL is a no-op.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed, and not used after this call.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_free(model: *mut stload_model) {
    guard_value((), || {
        if !model.is_null() {
            // SAFETY: `model` came from stload_open_* and is freed once by contract.
            drop(unsafe { Box::from_raw(model) });
        }
    })
}

/// Drops every cached tensor and file mapping of the model; the index stays and later gets
/// map again. Tensors already handed out stay valid. NULL is a no-op. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_release_all(model: *const stload_model) {
    guard_value((), || {
        // SAFETY: `model` is NULL or a live model handle.
        if let Some(m) = unsafe { model.as_ref() } {
            m.inner.release_all();
        }
    })
}

/// Number of tensors; 0 when `model` is NULL.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_len(model: *const stload_model) -> usize {
    // SAFETY: `model` is NULL or a live model handle.
    guard_value(0, || unsafe { model.as_ref() }.map_or(0, |m| m.inner.len()))
}

/// The `i`-th tensor name in sorted (byte-wise) order, borrowed from the model until
/// `stload_model_free`. NULL when `model` is NULL or `i >= stload_model_len(model)`.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_name(model: *const stload_model, i: usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: `model` is NULL or a live model handle.
        let entry = unsafe { model.as_ref() }.and_then(|m| m.inner.entry_at(i));
        entry.map_or(std::ptr::null(), |e| e.name.as_ptr())
    })
}

/// Describes tensor `name` without reading its data; on success fills `*info`.
/// Unknown names: `STLOAD_ERR_NOT_FOUND`.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `info`: NULL or points to a writable `stload_tensor_info`.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_info(
    model: *const stload_model,
    name: *const c_char,
    info: *mut stload_tensor_info,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        let info = out_arg(info, "info")?;
        let t = model.inner.info(name)?;
        let format = match t.format {
            Format::Safetensors => STLOAD_FORMAT_SAFETENSORS,
            Format::PyTorch => STLOAD_FORMAT_PYTORCH,
            Format::Gguf => STLOAD_FORMAT_GGUF,
        };
        let value = stload_tensor_info {
            format,
            dtype: t.dtype.code(),
            rank: t.shape.len(),
            shape: t.shape.as_ptr(),
            nbytes: t.nbytes,
            file: t.file_display.as_ptr(),
            data_offset: t.data_offset,
            original_name: t.original_nul.as_ptr(),
        };
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *info = value };
        Ok(())
    })
}

/// The `__metadata__` value for `key` (first file that has it), borrowed from the model until
/// `stload_model_free`. NULL when absent or when an argument is NULL.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `key`: NULL or a NUL-terminated string.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_metadata(
    model: *const stload_model,
    key: *const c_char,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let (Ok(model), Ok(key)) = (unsafe { arg(model, "model") }, unsafe {
            str_arg(key, "key")
        }) else {
            return std::ptr::null();
        };
        model
            .inner
            .metadata_value(key)
            .map_or(std::ptr::null(), |v| v.as_ptr())
    })
}

/// The type of metadata `key`: for a GGUF key, the `gguf` package's `GGUFValueType` number
/// (0 UINT8, 1 INT8, 2 UINT16, 3 INT16, 4 UINT32, 5 INT32, 6 FLOAT32, 7 BOOL, 8 STRING,
/// 9 ARRAY, 10 UINT64, 11 INT64, 12 FLOAT64); 8 (a string) for a safetensors `__metadata__`
/// value; -1 when absent or when an argument is NULL. `stload_model_metadata` gives every value
/// as text: a string as it is, a number or boolean as JSON text, an array as a JSON array
/// (a FLOAT32 written as the double of the same value, which reads back to the same float;
/// NaN and infinities as `null`), so a C host reads numbers with `strtoull` / `strtoll` /
/// `strtod` and arrays with a JSON parser.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `key`: NULL or a NUL-terminated string.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_metadata_type(
    model: *const stload_model,
    key: *const c_char,
) -> i32 {
    guard_value(-1, || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let (Ok(model), Ok(key)) = (unsafe { arg(model, "model") }, unsafe {
            str_arg(key, "key")
        }) else {
            return -1;
        };
        match model.inner.gguf_value(key) {
            Some(v) => v.value_type() as i32,
            None if model.inner.metadata(key).is_some() => crate::kv::ValueType::String as i32,
            None => -1,
        }
    })
}

/// Number of `__metadata__` keys; 0 when `model` is NULL.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_metadata_len(model: *const stload_model) -> usize {
    guard_value(0, || {
        // SAFETY: `model` is NULL or a live model handle.
        unsafe { model.as_ref() }.map_or(0, |m| m.inner.metadata_pairs().count())
    })
}

/// The `i`-th `__metadata__` key in sorted order, borrowed until `stload_model_free`;
/// NULL when out of range or `model` is NULL.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_metadata_key(
    model: *const stload_model,
    i: usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: `model` is NULL or a live model handle.
        let key = unsafe { model.as_ref() }.and_then(|m| m.inner.metadata_key_at(i));
        key.map_or(std::ptr::null(), |k| k.as_ptr())
    })
}

/// Gets tensor `name`. With `STLOAD_DTYPE_NATIVE` (or the stored dtype) the result is a
/// zero-copy view into the file mapping; with another dtype a converted tensor.
/// On success `*tensor` receives a handle owned by the caller (free with `stload_tensor_free`),
/// valid even after the model is freed. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `tensor`: NULL or points to writable storage for a pointer.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_get(
    model: *const stload_model,
    name: *const c_char,
    dtype: stload_dtype,
    tensor: *mut *mut stload_tensor,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        let out = out_arg(tensor, "tensor")?;
        let t = match requested(dtype)? {
            None => model.inner.get(name)?,
            Some(d) => model.inner.get_as(name, d)?,
        };
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = stload_tensor::into_raw(t) };
        Ok(())
    })
}

/// Gets indices `[start, stop)` along `axis` of tensor `name` (tensor-parallel shards), as
/// `dtype` (`STLOAD_DTYPE_NATIVE`: as stored). Along axis 0 of a stored tensor in its own
/// dtype this is a zero-copy view; other axes give a strided copy. Out-of-range slices:
/// `STLOAD_ERR_INVALID_ARGUMENT`. Ownership as `stload_model_get`. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `tensor`: NULL or points to writable storage for a pointer.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature: inputs, then outputs, then err
pub unsafe extern "C" fn stload_model_get_slice(
    model: *const stload_model,
    name: *const c_char,
    axis: usize,
    start: u64,
    stop: u64,
    dtype: stload_dtype,
    tensor: *mut *mut stload_tensor,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        let out = out_arg(tensor, "tensor")?;
        let t = model
            .inner
            .get_slice(name, axis, start, stop, requested(dtype)?)?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = stload_tensor::into_raw(t) };
        Ok(())
    })
}

/// Brings the data of `n` tensors `names` (every tensor when `names` is NULL) into memory ahead
/// of use: read-ahead is requested and all cores touch the pages (in read mode: parallel reads
/// that fill the page cache). `progress` (may be NULL) is called with bytes done and total as
/// (done, total, NULL); returning false stops with `STLOAD_ERR_CANCELLED`. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `names`: NULL or points to `n` pointers, each NULL or a NUL-terminated string.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_prefetch(
    model: *const stload_model,
    names: *const *const c_char,
    n: usize,
    progress: super::convert::stload_progress_fn,
    user_data: *mut std::ffi::c_void,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        let list = if names.is_null() {
            None
        } else {
            // SAFETY: `names` holds `n` string pointers per the API contract.
            let ptrs = unsafe { std::slice::from_raw_parts(names, n) };
            // SAFETY: each is NULL or a NUL-terminated string.
            Some(
                ptrs.iter()
                    .map(|&p| unsafe { str_arg(p, "names[i]") })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let report = byte_progress(progress, user_data);
        model.inner.prefetch(list.as_deref(), report)
    })
}
