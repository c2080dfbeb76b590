//! The options builder handle.

use super::{guard, guard_value, stload_error, stload_status};
use crate::error::Error;
use crate::options::Options;

/// Settings for `stload_open_*`. Create with `stload_options_new`, free with
/// `stload_options_free`; opening copies them, so they may be freed right after.
pub struct stload_options {
    pub(crate) inner: Options,
}

/// Returns new options with defaults (100 MB header limit, all cores, converted-tensor cache on).
/// Owned by the caller: free with `stload_options_free`. NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn stload_options_new() -> *mut stload_options {
    guard_value(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(stload_options {
            inner: Options::default(),
        }))
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn stload_options_free(opts: *mut stload_options) {
    guard_value((), || {
        if !opts.is_null() {
            // SAFETY: `opts` came from stload_options_new and is freed once by contract.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

fn with_options(
    opts: *mut stload_options,
    err: *mut *mut stload_error,
    f: impl FnOnce(&mut Options) -> Result<(), Error>,
) -> stload_status {
    guard(err, || {
        // SAFETY: `opts` is NULL or a live handle no other thread uses during the call.
        let opts = unsafe { opts.as_mut() }
            .ok_or_else(|| Error::InvalidArgument("opts is NULL".into()))?;
        f(&mut opts.inner)
    })
}

/// Sets the largest accepted header (JSON bytes per file). A larger header is refused at open
/// with `STLOAD_ERR_LIMIT`. 0 is invalid. Not thread-safe on the same options.
#[no_mangle]
pub extern "C" fn stload_options_set_max_header_size(
    opts: *mut stload_options,
    bytes: u64,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        if bytes == 0 {
            return Err(Error::InvalidArgument(
                "max header size must be at least 1 byte".into(),
            ));
        }
        o.max_header_size = bytes;
        Ok(())
    })
}

/// Sets the number of threads that convert large tensors; 0 means one per available core.
#[no_mangle]
pub extern "C" fn stload_options_set_threads(
    opts: *mut stload_options,
    threads: usize,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.threads = threads;
        Ok(())
    })
}

/// Turns the cache of converted tensors on (default) or off. With it off, every converted get
/// converts again and the model keeps no converted memory.
#[no_mangle]
pub extern "C" fn stload_options_set_cache(
    opts: *mut stload_options,
    enabled: bool,
    err: *mut *mut stload_error,
) -> stload_status {
    with_options(opts, err, |o| {
        o.cache_converted = enabled;
        Ok(())
    })
}
