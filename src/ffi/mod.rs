//! The C ABI. Each export checks its arguments, calls the Rust API and maps the `Result`;
//! no logic lives here. Every export runs under `guard`, so no panic crosses into C.

//!
//! Every export that takes a raw pointer is an `unsafe extern "C" fn` whose `# Safety` section
//! states, argument by argument, what the pointer must be for the whole call. Those sections
//! are written with `safety!` rather than `///`: cbindgen copies only literal doc
//! comments into `include/stload.h`, whose prose already states the same contract in C terms,
//! so the header stays as it was.

#![allow(non_camel_case_types)]

/// The `# Safety` section of an export: one Markdown line per literal, under a fixed heading.
/// A macro, not `///`, so that cbindgen leaves it out of the generated header.
macro_rules! safety {
    ($($line:literal),+ $(,)?) => {
        concat!(
            "# Safety\n\nThe caller guarantees, for the whole call:\n\n",
            $($line, "\n"),+
        )
    };
}

pub mod convert;
pub mod dtype;
pub mod error;
pub mod gguf;
#[cfg(feature = "mlx")]
pub mod mlx;
pub mod model;
pub mod options;
pub mod tensor;

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::error::{Error, Result};
pub use error::{stload_error, stload_status};

/// Runs `f` for an export that returns a status: maps its error (or a panic) to a status and,
/// when `err` is not NULL, stores an owned error object there. Nothing is written on success.
pub(crate) fn guard(err: *mut *mut stload_error, f: impl FnOnce() -> Result<()>) -> stload_status {
    let failure = match quietly(f) {
        Ok(Ok(())) => return stload_status::STLOAD_OK,
        Ok(Err(e)) => (error::status_of(&e), e.to_string()),
        Err(panic) => (
            stload_status::STLOAD_ERR_INTERNAL,
            format!("internal error: {}", panic_text(&*panic)),
        ),
    };
    error::store(err, failure.0, &failure.1);
    failure.0
}

/// Runs `f` for an export that returns a plain value; a panic yields `fallback`.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    quietly(f).unwrap_or(fallback)
}

thread_local! {
    /// How many exports this thread is inside (a callback may re-enter the library).
    static IN_EXPORT: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`, catching a panic without printing it: the message goes into the returned error,
/// never onto the host's stderr. Panics outside exports are printed as before (the previous
/// hook is kept and called).
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_EXPORT.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    IN_EXPORT.with(|n| n.set(n.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_EXPORT.with(|n| n.set(n.get().saturating_sub(1)));
    result
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

/// Borrows the object behind a handle, or refuses NULL naming the argument.
///
/// # Safety
/// `p` must be NULL or point to a live `T` for `'a`.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the caller guarantees `p` is NULL or valid for 'a.
    unsafe { p.as_ref() }.ok_or_else(|| Error::InvalidArgument(format!("{what} is NULL")))
}

/// Borrows a C string argument as UTF-8, refusing NULL and invalid UTF-8.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string alive for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::InvalidArgument(format!("{what} is not valid UTF-8")))
}

/// Checks that an out-parameter is writable before any work is done.
pub(crate) fn out_arg<T>(p: *mut T, what: &str) -> Result<*mut T> {
    if p.is_null() {
        Err(Error::InvalidArgument(format!("{what} (output) is NULL")))
    } else {
        Ok(p)
    }
}

/// The library version ("MAJOR.MINOR.PATCH"), a static string. Thread-safe.
#[no_mangle]
pub extern "C" fn stload_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_inside_exports_reach_the_error_not_stderr() {
        // Issue 16 item 10: the panic text of an export was printed on the host's stderr.
        if std::env::var_os("STLOAD_PANIC_CHILD").is_some() {
            let mut err = std::ptr::null_mut();
            let status = guard(&mut err, || panic!("boom in an export"));
            assert_eq!(status, stload_status::STLOAD_ERR_INTERNAL);
            // SAFETY: `err` is the error object `guard` just stored, freed once.
            unsafe { error::stload_error_free(err) };
            assert_eq!(guard_value(7, || panic!("boom in an export")), 7);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ffi::tests::panics_inside_exports_reach_the_error_not_stderr",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("STLOAD_PANIC_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("boom"), "{stderr}");
    }
}
