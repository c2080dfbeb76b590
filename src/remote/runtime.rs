//! The library's one async runtime: `object_store` is async, stload's API is not. Built on
//! first use with as many workers as the first remote model's thread option asks for; every
//! blocking call of the library waits on it with [`block_on`].

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::{Error, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The runtime, built now with `threads` workers (at least 2) if it does not exist yet.
fn runtime(threads: usize) -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.clamp(2, 64))
                .thread_name("stload-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Io {
            path: "remote".into(),
            message: format!("cannot start the i/o runtime: {e}"),
        })
}

/// Runs `future` to completion on the library's runtime and returns its output. Called from
/// inside another tokio runtime (a Rust caller's async code), it waits on a new thread, since
/// a runtime's thread cannot block on another runtime.
pub(crate) fn block_on<F>(threads: usize, future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime(threads)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(future));
    }
    std::thread::scope(|s| {
        s.spawn(|| rt.block_on(future))
            .join()
            .map_err(|_| Error::Io {
                path: "remote".into(),
                message: "an i/o thread panicked".into(),
            })
    })
}
