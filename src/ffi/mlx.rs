//! MLX arrays (feature `mlx`): tensors handed to the host as `mlx::core::array`s.

use std::ffi::{c_char, c_void};

use super::convert::{progress_adapter, stload_progress_fn};
use super::dtype::{requested, stload_dtype};
use super::model::stload_model;
use super::{arg, guard, guard_value, out_arg, stload_error, stload_status, str_arg};
use crate::mlx::MlxArray;

/// An MLX array (`mlx::core::array`) made by stload, evaluated. Owned by the caller; release
/// with `stload_mlx_array_free`. It keeps its data alive on its own, so it stays valid after
/// `stload_model_release_all` and `stload_model_free`. A `const stload_mlx_array*` may be read
/// from many threads at once.
pub struct stload_mlx_array {
    pub(crate) inner: MlxArray,
}

/// Gets tensor `name` as an evaluated MLX array. With `STLOAD_DTYPE_NATIVE` (or the stored
/// dtype) the array holds the stored values: MLX wraps the file mapping where it can (unified
/// memory) and copies it once otherwise (the CPU backend). One-byte FP8 tensors come as U8
/// arrays of their raw bytes, as `mx.load` gives them; F4/F6 tensors and GGUF block types
/// (`STLOAD_DTYPE_Q4_K`, ...) have no MLX form (`STLOAD_ERR_UNSUPPORTED`, naming the tensor;
/// ask for F32, F16 or BF16, into which block types are dequantised). With another dtype
/// (one MLX has) the values are converted.
/// Served from the model's MLX cache when `stload_model_load_mlx` (or an earlier get, when the
/// cache option is on) made the array. On success `*arr` receives a handle owned by the caller
/// (free with `stload_mlx_array_free`), valid after the model is freed. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `name`: NULL or a NUL-terminated string.",
    "- `arr`: NULL or points to writable storage for a pointer.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_get_mlx(
    model: *const stload_model,
    name: *const c_char,
    dtype: stload_dtype,
    arr: *mut *mut stload_mlx_array,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or live handle / NUL-terminated string per the API contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        let out = out_arg(arr, "arr")?;
        let array = model.inner.get_mlx(name, requested(dtype)?)?;
        let handle = Box::into_raw(Box::new(stload_mlx_array { inner: array }));
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Materialises every tensor as an MLX array, like `stload_model_load` does for tensors:
/// with `STLOAD_DTYPE_NATIVE` each as stored, with a float dtype every floating-point tensor
/// stored in another dtype is converted (GGUF block types dequantised; integer and boolean
/// tensors stay as stored). A tensor that would stay in a dtype with no MLX form (a block
/// type with NATIVE, F4, F6) makes it fail with `STLOAD_ERR_UNSUPPORTED`, naming the tensor,
/// before anything is loaded. Later
/// `stload_model_get_mlx(model, name, dtype)` calls are served from these arrays until
/// `stload_model_release_all`. `progress` may be NULL; it is called as for
/// `stload_model_load`. Thread-safe.
#[doc = safety!(
    "- `model`: NULL or a model handle from `stload_open_dir` or `stload_open_files`, not",
    "  yet freed.",
    "- `user_data`: what `progress` expects: it is handed to `progress` unchanged.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_model_load_mlx(
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
            .load_mlx(dtype, progress_adapter(progress, user_data))
    })
}

/// The array's dtype (`STLOAD_DTYPE_*`, never NATIVE). 0 when `arr` is NULL.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_dtype(arr: *const stload_mlx_array) -> stload_dtype {
    array_value(arr, 0, |a| a.dtype().code())
}

/// Number of dimensions (0 for a scalar). 0 when `arr` is NULL.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_rank(arr: *const stload_mlx_array) -> usize {
    array_value(arr, 0, |a| a.shape().len())
}

/// The dimensions, outermost first: `rank` values, valid until `stload_mlx_array_free`.
/// NULL when `arr` is NULL; may be a dangling non-NULL pointer for rank 0 (read no element).
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_shape(arr: *const stload_mlx_array) -> *const u64 {
    array_value(arr, std::ptr::null(), |a| a.shape().as_ptr())
}

/// Byte length of the elements. 0 when `arr` is NULL.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_nbytes(arr: *const stload_mlx_array) -> usize {
    array_value(arr, 0, MlxArray::nbytes)
}

/// Evaluates the array (MLX's `eval`). Arrays from stload are already evaluated, so this is
/// a no-op for them; it is there for hosts that follow MLX's usual pattern. Thread-safe
/// (evaluations are serialised).
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_eval(
    arr: *const stload_mlx_array,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live array handle per the API contract.
        let a = unsafe { arg(arr, "arr") }?;
        a.inner.eval()
    })
}

/// Host pointer to the evaluated data (row-major, `stload_mlx_array_nbytes` bytes), valid until
/// `stload_mlx_array_free`. Read-only: it may be the file mapping. NULL when `arr` is NULL or
/// the array is not evaluated or not contiguous.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_data(arr: *const stload_mlx_array) -> *const c_void {
    array_value(arr, std::ptr::null(), MlxArray::data_ptr)
}

/// Whether the array aliases the file mapping (MLX wrapped the bytes; false when it copied
/// them, as the CPU backend does, or when the values were converted). False when `arr` is NULL.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_is_wrapped(arr: *const stload_mlx_array) -> bool {
    array_value(arr, false, MlxArray::is_wrapped)
}

/// The underlying `mlx::core::array*` for C++ hosts, owned by the handle: valid until
/// `stload_mlx_array_free`; copy the `mlx::core::array` (a cheap reference) to keep it longer.
/// Never write through its data: it may be a read-only file mapping. NULL when `arr` is NULL.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_raw(arr: *const stload_mlx_array) -> *mut c_void {
    array_value(arr, std::ptr::null_mut(), MlxArray::raw)
}

/// mlx-c's array type, `mlx_array` of `mlx/c/array.h` (the struct tag `mlx_array_`): one
/// pointer to a heap `mlx::core::array`. Declared in the header only by its tag, so
/// `stload.h` does not need mlx-c's headers and a host that includes them passes its own
/// `mlx_array*`.
#[repr(C)]
pub struct MlxCArray {
    /// The `mlx::core::array*` (mlx-c's `ctx`).
    pub ctx: *mut c_void,
}

/// Gives the array to mlx-c (MLX's C API): on success `*out` becomes a new mlx-c `mlx_array`
/// that shares the data, for hosts that run their MLX code through mlx-c.
///
/// Ownership and lifetime: `*out` is owned by the caller and released with mlx-c's
/// `mlx_array_free(*out)` (it never needs stload to free it). It is independent of `arr`, of
/// the model and of the model's MLX cache: it stays valid after `stload_mlx_array_free(arr)`,
/// `stload_model_release_all` and `stload_model_free`, keeping the data (and, when MLX wrapped
/// it, the file mapping) alive until the last MLX array using it is gone. The stload library
/// must stay loaded until then (the data's deleter is stload code). `arr` is not changed and
/// stays owned by the caller.
///
/// Compatibility: mlx-c's `mlx_array` is `struct mlx_array_ { void *ctx; }`, with `ctx` a
/// heap `mlx::core::array*` (mlx-c 0.x for MLX 0.2x-0.3x); stload writes a `new
/// mlx::core::array` there. mlx-c and stload must link the same libmlx. Never write through
/// the array's data: it may be a read-only file mapping (MLX operations make new arrays and
/// do not write to their inputs). Using the handle follows MLX's own thread rules; stload's
/// evaluation lock does not cover graphs the host builds with mlx-c.
///
/// `out` must point to writable storage for one `mlx_array`; it is written only on success.
/// NULL `arr` or `out` is `STLOAD_ERR_INVALID_ARGUMENT`. Thread-safe.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed.",
    "- `out`: NULL or points to a writable `MlxCArray`.",
    "- `err`: NULL or points to writable storage for a pointer.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_to_mlx_c(
    arr: *const stload_mlx_array,
    out: *mut MlxCArray,
    err: *mut *mut stload_error,
) -> stload_status {
    guard(err, || {
        // SAFETY: NULL or a live array handle per the API contract.
        let a = unsafe { arg(arr, "arr") }?;
        let out = out_arg(out, "out")?;
        let ctx = a.inner.to_mlx_c()?;
        // SAFETY: checked non-NULL; the caller provides storage for one mlx_array.
        unsafe { out.write(MlxCArray { ctx: ctx.as_ptr() }) };
        Ok(())
    })
}

/// Frees an array handle; the data is released when MLX no longer uses it. NULL is a no-op.
#[doc = safety!(
    "- `arr`: NULL or an array from `stload_model_get_mlx`, not yet freed, and not used",
    "  after this call.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_mlx_array_free(arr: *mut stload_mlx_array) {
    guard_value((), || {
        if !arr.is_null() {
            // SAFETY: `arr` came from stload (Box::into_raw) and is freed once by contract.
            drop(unsafe { Box::from_raw(arr) });
        }
    })
}

/// The version of the linked MLX library ("0.32.4"), a static string. Thread-safe.
#[no_mangle]
pub extern "C" fn stload_mlx_version() -> *const c_char {
    guard_value(std::ptr::null(), crate::mlx::version_ptr)
}

fn array_value<T: Copy>(
    arr: *const stload_mlx_array,
    fallback: T,
    f: impl FnOnce(&MlxArray) -> T,
) -> T {
    guard_value(fallback, || {
        // SAFETY: `arr` is NULL or a live array handle per the API contract.
        unsafe { arr.as_ref() }.map_or(fallback, |a| f(&a.inner))
    })
}
