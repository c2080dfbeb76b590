//! Conversion exports: buffer to buffer, tensor into a caller's buffer, whole-model load.

use std::ffi::{c_char, c_void};

use super::dtype::{requested, stload_dtype};
use super::model::stload_model;
use super::tensor::stload_tensor;
use super::{arg, guard, out_arg, stload_error, stload_status};
use crate::convert;
use crate::dtype::Dtype;
use crate::error::Error;

/// Progress of a long operation: called by `stload_model_load` after each tensor with the count
/// done, the total and the tensor's name (borrowed for the call only), and by
/// `stload_model_prefetch` with bytes done and total and a NULL name; `user_data` is the
/// caller's. Return true to go on, false to stop with `STLOAD_ERR_CANCELLED`.
pub type stload_progress_fn = Option<
    extern "C" fn(user_data: *mut c_void, done: usize, total: usize, name: *const c_char) -> bool,
>;

fn dtype_arg(code: stload_dtype, what: &str) -> Result<Dtype, Error> {
    requested(code)?
        .ok_or_else(|| Error::InvalidArgument(format!("{what} must be a dtype, not NATIVE")))
}

/// Borrows `len` bytes at `p`; NULL is accepted only for zero bytes.
///
/// # Safety
/// `p` must be NULL or valid for `len` bytes for `'a`.
unsafe fn bytes<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and valid for `len` bytes per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), len) })
}

/// Mutable twin of [`bytes`].
///
/// # Safety
/// `p` must be NULL or valid for writes of `len` bytes for `'a`, aliasing nothing else in use.
unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], Error> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, writable for `len` bytes and unaliased per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), len) })
}

/// Converts `count` elements at `src` (dtype `from`) into `dst` (dtype `to`), bit-exact with
/// numpy/ml_dtypes `astype`. `dst` must hold `count` elements of `to`; the buffers must not
/// overlap. Pairs without a defined conversion return `STLOAD_ERR_UNSUPPORTED`. Runs on the
/// calling thread; allocates nothing. Thread-safe.
#[doc = safety!(
    "- `src`: points to `count` readable elements of `from`.",
    "- `dst`: points to `count` writable elements of `to`, overlapping nothing else in",
    "  use (not `src`).",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_convert(
    src: *const c_void,
    from: stload_dtype,
    dst: *mut c_void,
    to: stload_dtype,
    count: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        let (from, to) = (dtype_arg(from, "from")?, dtype_arg(to, "to")?);
        if !convert::is_supported(from, to) {
            return Err(Error::Unsupported(format!(
                "no conversion from {from} to {to}"
            )));
        }
        let size = |d: Dtype| {
            d.bytes_for(count as u64)
                .and_then(|b| usize::try_from(b).ok())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{count} elements of {d} do not fill whole bytes"
                    ))
                })
        };
        let (src_len, dst_len) = (size(from)?, size(to)?);
        // SAFETY: the caller provides `count` elements at `src` and room for them at `dst`.
        let (src, dst) = unsafe { (bytes(src, src_len, "src")?, bytes_mut(dst, dst_len, "dst")?) };
        convert::convert(src, from, dst, to).map_err(Error::from)
    })
}

/// Copies a tensor's values into the caller's buffer `dst` of `dst_len` bytes, converted to
/// `dtype` (`STLOAD_DTYPE_NATIVE`: the stored bytes). `dst_len` must equal the element count
/// times the size of `dtype` (else `STLOAD_ERR_BUFFER_SIZE`). Allocates nothing; large tensors
/// are converted by all cores. Thread-safe.
#[doc = safety!(
    "- `tensor`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`,",
    "  not yet freed.",
    "- `dst`: points to `dst_len` writable bytes, overlapping nothing else in use.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_copy_to(
    tensor: *const stload_tensor,
    dtype: stload_dtype,
    dst: *mut c_void,
    dst_len: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live tensor handle per the API contract.
        let t = unsafe { arg(tensor, "tensor") }?;
        let to = requested(dtype)?;
        // SAFETY: the caller provides `dst_len` writable bytes at `dst`.
        let dst = unsafe { bytes_mut(dst, dst_len, "dst") }?;
        t.inner.copy_to(to, dst, crate::options::available_cores())
    })
}

/// Materialises every tensor, like ollama's `ModelWeights.Load`. With `STLOAD_DTYPE_NATIVE`
/// every file is mapped. With a float dtype every floating-point tensor stored in another dtype
/// is converted, tensor by tensor so peak memory stays near the output size; integer and
/// boolean tensors stay as stored. The float dtypes accepted are F32, F16, BF16, F64, F8_E4M3
/// and F8_E5M2; any other dtype returns `STLOAD_ERR_UNSUPPORTED`. Later `stload_model_get(model, name, dtype)` calls are served
/// from memory until `stload_model_release_all`. `progress` may be NULL. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_load(
    model: *const stload_model,
    dtype: stload_dtype,
    progress: stload_progress_fn,
    user_data: *mut c_void,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        let dtype = requested(dtype)?;
        model
            .inner
            .load(dtype, progress_adapter(progress, user_data))
    })
}

/// Where `stload_model_load_into` put one tensor of the model.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct stload_arena_slot {
    /// Offset from the start of the buffer: a multiple of the alignment asked for.
    pub offset: u64,
    /// Byte length of the tensor in `dtype`.
    pub nbytes: u64,
    /// The dtype the tensor was written in: the whole-model rule of `stload_model_load`.
    pub dtype: stload_dtype,
}

/// The bytes a buffer needs to hold every tensor of `model` as `stload_model_load_into`
/// writes them with `dtype` and `alignment` (a power of two): written to `*size`. The tensors
/// are packed in name order (`stload_model_name`), each at a multiple of `alignment`. Dtypes
/// as for `stload_model_load`. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `size`: NULL or points to a writable `uint64_t`.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_arena_size(
    model: *const stload_model,
    dtype: stload_dtype,
    alignment: usize,
    size: *mut u64,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        let size = out_arg(size, "size")?;
        let layout = model
            .inner
            .arena_layout(requested(dtype)?, alignment as u64)?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *size = layout.size };
        Ok(())
    })
}

/// Writes every tensor of `model` into the caller's buffer `buf` of `len` bytes: as stored
/// with `STLOAD_DTYPE_NATIVE`, else converted as `stload_model_load` converts (floats to
/// `dtype`, integers as stored), straight into the buffer by all threads, in one pass. The
/// tensors are packed in name order, each at a multiple of `alignment` (a power of two: 32 for
/// ggml, 64, 4096); `buf` must start at a multiple of `alignment` and hold
/// `stload_model_arena_size` bytes. The buffer may be any memory the caller made (pinned,
/// huge-paged, device-mapped); stload keeps no pointer to it and no copy, and it is not
/// counted against `max_load_bytes`. When `slots` is not NULL it receives one
/// `stload_arena_slot` per tensor, in name order (`stload_model_len` entries). `progress` may
/// be NULL; it is called as for `stload_model_load`, and a cancel leaves the tensors before it
/// written. Thread-safe (the buffer is the caller's to share).
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `buf`: NULL or points to `len` writable bytes that nothing else reads or writes",
    "  during the call.",
    "- `slots`: NULL or points to `stload_model_len(model)` writable `stload_arena_slot`s.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C signature: model, what, where, and the callbacks
pub unsafe extern "C" fn stload_model_load_into(
    model: *const stload_model,
    dtype: stload_dtype,
    alignment: usize,
    buf: *mut c_void,
    len: usize,
    slots: *mut stload_arena_slot,
    progress: stload_progress_fn,
    user_data: *mut c_void,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live model handle per the API contract.
        let model = unsafe { arg(model, "model") }?;
        let dtype = requested(dtype)?;
        // SAFETY: the caller provides `len` writable, unaliased bytes at `buf`.
        let buf = unsafe { bytes_mut(buf, len, "buf") }?;
        let layout = model.inner.load_into(
            dtype,
            alignment as u64,
            buf,
            progress_adapter(progress, user_data),
        )?;
        if !slots.is_null() {
            for (i, s) in layout.slots.iter().enumerate() {
                let slot = stload_arena_slot {
                    offset: s.offset,
                    nbytes: s.nbytes,
                    dtype: s.dtype.code(),
                };
                // SAFETY: `slots` holds `stload_model_len` entries per the API contract, one
                // per slot of the layout.
                unsafe { slots.add(i).write(slot) };
            }
        }
        Ok(())
    })
}

/// The Rust progress closure of a byte-counting task (a prefetch, a GGUF write) that calls the
/// C `progress` (when not NULL) with the bytes done and the total, and a NULL name.
pub(crate) fn byte_progress(
    progress: stload_progress_fn,
    user_data: *mut c_void,
) -> impl FnMut(u64, u64) -> bool {
    move |done, total| match progress {
        None => true,
        Some(f) => f(user_data, done as usize, total as usize, std::ptr::null()),
    }
}

/// The Rust progress closure of a load that calls the C `progress` (when not NULL) with a
/// NUL-terminated copy of each tensor name.
pub(crate) fn progress_adapter(
    progress: stload_progress_fn,
    user_data: *mut c_void,
) -> impl FnMut(usize, usize, &str) -> bool {
    let mut name_buf = Vec::new();
    move |done, total, name| match progress {
        None => true,
        Some(f) => {
            name_buf.clear();
            name_buf.extend_from_slice(name.as_bytes());
            name_buf.push(0);
            f(user_data, done, total, name_buf.as_ptr().cast())
        }
    }
}
