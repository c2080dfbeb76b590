//! Tensor handles: dtype, shape and data of one tensor, valid on their own.

use std::ffi::c_void;

use super::dtype::stload_dtype;
use super::guard_value;
use crate::tensor::Tensor;

/// One tensor: a zero-copy view into a file mapping, or memory stload produced.
/// Owned by the caller; release with `stload_tensor_free`. It keeps its data alive on its own,
/// so it stays valid after `stload_model_free` and `stload_model_release_all`.
/// A `const stload_tensor*` may be read from many threads at once.
pub struct stload_tensor {
    pub(crate) inner: Tensor,
}

impl stload_tensor {
    pub(crate) fn into_raw(inner: Tensor) -> *mut stload_tensor {
        Box::into_raw(Box::new(stload_tensor { inner }))
    }
}

/// Pointer to the tensor's bytes (little-endian, row-major), valid until `stload_tensor_free`.
/// Read-only: the bytes may be a file mapping. NULL when `t` is NULL.
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_data(t: *const stload_tensor) -> *const c_void {
    tensor_value(t, std::ptr::null(), |t| t.data().as_ptr().cast())
}

/// Byte length of the data. 0 when `t` is NULL.
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_nbytes(t: *const stload_tensor) -> usize {
    tensor_value(t, 0, |t| t.data().len())
}

/// The tensor's dtype (never NATIVE). 0 when `t` is NULL.
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_dtype(t: *const stload_tensor) -> stload_dtype {
    tensor_value(t, 0, |t| t.dtype().code())
}

/// Number of dimensions (0 for a scalar). 0 when `t` is NULL.
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_rank(t: *const stload_tensor) -> usize {
    tensor_value(t, 0, |t| t.shape().len())
}

/// The dimensions, outermost first: `rank` values, valid until `stload_tensor_free`.
/// NULL when `t` is NULL; may be a dangling non-NULL pointer for rank 0 (read no element).
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_shape(t: *const stload_tensor) -> *const u64 {
    tensor_value(t, std::ptr::null(), |t| t.shape().as_ptr())
}

/// Frees a tensor handle; the data stays valid for other handles and for the model.
/// NULL is a no-op.
#[doc = safety!(
    "- `t`: NULL or a tensor from `stload_model_get` or `stload_model_get_slice`, not yet",
    "  freed, and not used after this call.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_tensor_free(t: *mut stload_tensor) {
    guard_value((), || {
        if !t.is_null() {
            // SAFETY: `t` came from stload (Box::into_raw) and is freed once by contract.
            drop(unsafe { Box::from_raw(t) });
        }
    })
}

fn tensor_value<T: Copy>(t: *const stload_tensor, fallback: T, f: impl FnOnce(&Tensor) -> T) -> T {
    guard_value(fallback, || {
        // SAFETY: `t` is NULL or a live tensor handle per the API contract.
        unsafe { t.as_ref() }.map_or(fallback, |t| f(&t.inner))
    })
}
