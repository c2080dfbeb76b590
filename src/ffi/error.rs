//! Status codes and owned error objects.

use std::ffi::{c_char, CString};

use super::guard_value;
use crate::error::Error;

/// Result of every fallible function. The numbers are stable: retired ones stay reserved.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum stload_status {
    /// Success.
    STLOAD_OK = 0,
    /// A NULL or otherwise unusable argument.
    STLOAD_ERR_INVALID_ARGUMENT = 1,
    /// The operating system refused a file operation, or a file changed after open.
    STLOAD_ERR_IO = 2,
    /// A file breaks the safetensors format (or its index.json / config.json is wrong).
    STLOAD_ERR_FORMAT = 3,
    /// No tensor or key of that name.
    STLOAD_ERR_NOT_FOUND = 4,
    /// A request stload does not implement, e.g. a conversion without meaning.
    STLOAD_ERR_UNSUPPORTED = 5,
    /// Two tensors claim the same name.
    STLOAD_ERR_DUPLICATE = 6,
    /// A configured resource limit was reached.
    STLOAD_ERR_LIMIT = 7,
    /// A caller's buffer has the wrong size.
    STLOAD_ERR_BUFFER_SIZE = 8,
    /// Memory could not be allocated.
    STLOAD_ERR_OUT_OF_MEMORY = 9,
    /// A progress callback asked to stop.
    STLOAD_ERR_CANCELLED = 10,
    /// A bug in stload (a caught panic). Please report it.
    STLOAD_ERR_INTERNAL = 100,
}

/// An error: a status and a message naming the file, the tensor and the rule broken.
/// Owned by the caller; release with `stload_error_free`.
pub struct stload_error {
    status: stload_status,
    message: CString,
}

pub(crate) fn status_of(e: &Error) -> stload_status {
    use stload_status::*;
    match e {
        Error::InvalidArgument(_) => STLOAD_ERR_INVALID_ARGUMENT,
        Error::Io { .. } => STLOAD_ERR_IO,
        Error::Format(_) => STLOAD_ERR_FORMAT,
        Error::NotFound(_) => STLOAD_ERR_NOT_FOUND,
        Error::Unsupported(_) => STLOAD_ERR_UNSUPPORTED,
        Error::Duplicate(_) => STLOAD_ERR_DUPLICATE,
        Error::Limit(_) => STLOAD_ERR_LIMIT,
        Error::BufferSize(_) => STLOAD_ERR_BUFFER_SIZE,
        Error::OutOfMemory(_) => STLOAD_ERR_OUT_OF_MEMORY,
        Error::Cancelled(_) => STLOAD_ERR_CANCELLED,
    }
}

/// Stores a new error object in `*err` unless `err` is NULL.
pub(crate) fn store(err: *mut *mut stload_error, status: stload_status, message: &str) {
    if err.is_null() {
        return;
    }
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let boxed = Box::into_raw(Box::new(stload_error { status, message }));
    // SAFETY: `err` is non-NULL and, per the API contract, points to writable storage.
    unsafe { *err = boxed };
}

/// The status of an error. Returns `STLOAD_ERR_INVALID_ARGUMENT` when `err` is NULL.
#[doc = safety!(
    "- `err`: NULL or an error object this library stored, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_error_status(err: *const stload_error) -> stload_status {
    guard_value(stload_status::STLOAD_ERR_INTERNAL, || {
        // SAFETY: `err` is NULL or an error from stload that has not been freed.
        match unsafe { err.as_ref() } {
            Some(e) => e.status,
            None => stload_status::STLOAD_ERR_INVALID_ARGUMENT,
        }
    })
}

/// The UTF-8 message of an error, borrowed from it: valid until `stload_error_free(err)`.
/// Returns NULL when `err` is NULL.
#[doc = safety!(
    "- `err`: NULL or an error object this library stored, not yet freed.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_error_message(err: *const stload_error) -> *const c_char {
    // SAFETY: `err` is NULL or an error from stload that has not been freed.
    guard_value(std::ptr::null(), || match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => std::ptr::null(),
    })
}

/// Frees an error object. NULL is a no-op.
#[doc = safety!(
    "- `err`: NULL or an error object this library stored, not yet freed, and not used",
    "  after this call.",
)]
#[no_mangle]
pub unsafe extern "C" fn stload_error_free(err: *mut stload_error) {
    guard_value((), || {
        if !err.is_null() {
            // SAFETY: `err` came from `store` (Box::into_raw) and is freed only once by contract.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}
