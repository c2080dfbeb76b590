//! Stand-in for `remote.rs` in a build without the feature `remote`: no file is remote
//! (`Store::remote_parts` is always `None` and a [`Part`] has no values), so the store's code
//! for remote files compiles unchanged and never runs; were it reached, it would refuse.

use crate::buffer::AlignedBuf;
use crate::dtype::Dtype;
use crate::error::Result;

/// A byte range of a remote object: no value of it exists in this build.
pub(crate) enum Part {}

/// How reads are spread: nothing to say in this build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan;

/// One tensor of a list, as `remote.rs` has it.
#[allow(dead_code)] // built by the store, read by no one in this build
pub(crate) struct Fetch<'a> {
    /// The tensor's name, for messages.
    pub name: &'a str,
    /// Its bytes.
    pub parts: Vec<Part>,
    /// The stored dtype.
    pub from: Dtype,
    /// The dtype handed out.
    pub to: Dtype,
}

/// Refuses: this build reads no remote bytes.
pub(crate) fn fetch_convert(
    _: Vec<Part>,
    _: Dtype,
    _: Dtype,
    _: Plan,
    tensor: &str,
) -> Result<AlignedBuf> {
    Err(crate::remote::disabled(&format!("tensor \"{tensor}\"")))
}

/// Hands nothing out; refuses a list that is not empty (this build reads no remote bytes).
pub(crate) fn fetch_convert_many(
    list: &[Fetch<'_>],
    _: Plan,
    _: &mut dyn FnMut(usize, AlignedBuf) -> Result<()>,
) -> Result<()> {
    match list.first() {
        Some(fetch) => Err(crate::remote::disabled(&format!(
            "tensor \"{}\"",
            fetch.name
        ))),
        None => Ok(()),
    }
}
