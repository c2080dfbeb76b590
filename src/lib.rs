//! stload: load model weights stored as safetensors.
//!
//! Index a model directory or a list of files by reading only their JSON headers, get tensors as
//! zero-copy views into memory-mapped files, and convert dtypes exactly at memory speed.
//! The C ABI in [`ffi`] wraps this Rust API; `include/stload.h` is generated from it.
//!
//! ```no_run
//! let model = stload::Model::open_dir("models/llama", &stload::Options::default())?;
//! let t = model.get("lm_head.weight")?;
//! println!("{} {:?} {} bytes", t.dtype(), t.shape(), t.data().len());
//! # Ok::<(), stload::Error>(())
//! ```
//!
//! ## Public API
//!
//! These items are the whole API; every other module is internal (`tests/public_api.rs`
//! checks that this list and the `pub` items of `lib.rs` agree).
//!
//! - [`Model`]: an opened model (`open_dir`, `open_files`, `get`, `get_as`, `get_slice`,
//!   `load`, `load_into`, `prefetch`, `verify`, `release_all`, `write_gguf`).
//! - [`TensorInfo`]: what the index knows of one tensor, without reading it.
//! - [`ArenaLayout`], [`ArenaSlot`]: where `Model::load_into` puts each tensor in one
//!   caller-owned buffer.
//! - [`Tensor`]: a tensor's bytes, a view into a mapped file or owned memory.
//! - [`Options`]: how a model is opened, with its setters; [`SplitRule`], [`StackRule`],
//!   [`Replacer`] and [`RemoteOptions`] (object-store settings for `s3://`, `gs://`, `az://` and
//!   `http(s)://` models; feature `remote`, on by default) are the types of its fields.
//! - [`Dtype`]: the element types. [`Shape`]: dimensions. [`Format`]: a file's format.
//! - [`Error`], [`Result`]: every failure, each variant a status of the C ABI.
//! - [`convert`]: exact dtype conversion of byte slices.
//! - [`gguf`]: GGUF export for custom converters: [`gguf::write_model`] with a
//!   [`gguf::GgufPlan`] (metadata as [`kv`] values, computed tensors, fix-ups), the type rule
//!   [`gguf::OutType`], the quantisation kernels and their table ([`gguf::quant`], the same
//!   bytes as llama.cpp's quantizer), and the reader the `stload inspect` command uses. [`Model::write_gguf`]
//!   is the whole converter; these are public deliberately, for engines with their own
//!   architectures.
//! - [`kv`]: GGUF metadata values ([`kv::Metadata`], [`kv::Value`]).
//! - [`ffi`]: the C ABI (its functions are `unsafe`: they take raw pointers).
//! - `mlx` (feature `mlx`): tensors as MLX arrays (`Model::get_mlx`, `Model::load_mlx`).
//!
//! The feature `remote` (default) reads models from object storage and HTTP through the
//! `object_store` crate; without it `open_dir` and `open_files` refuse a URL, and
//! `Options::set_remote` every key, as [`Error::Unsupported`].
//!
//! The feature `internals` (on with the default `cli` feature) adds a hidden `__private`
//! module through which the `stload` command, the integration tests, the fuzz targets and the
//! benches reach internal modules. It is not part of the API and may change at any time.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Modules in name order (cbindgen reads them in this order, and the header depends on it).
// Public: `convert`, `ffi`, `gguf`, `kv`, `mlx`, as listed in the crate documentation above.
// Every other module is internal: its `pub` items are reachable from outside only through
// `__private` (feature `internals`). Without that feature, what only the command and the tests
// use (the safetensors export and writer, the sample model, re-exports) is unused, hence the
// `allow`s.
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod arch;
pub(crate) mod buffer;
pub mod convert;
pub(crate) mod dtype;
pub(crate) mod error;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod export;
pub mod ffi;
pub(crate) mod file;
pub(crate) mod general_name;
pub mod gguf;
pub(crate) mod gguf_format;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod gguf_to_hf;
pub(crate) mod header;
pub(crate) mod hf_to_gguf;
pub(crate) mod identity;
pub(crate) mod index;
pub mod kv;
#[cfg(feature = "mlx")]
pub mod mlx;
pub(crate) mod model;
pub(crate) mod nulstr;
pub(crate) mod options;
mod parallel;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod remote;
pub(crate) mod rename;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod sample;
pub(crate) mod shape;
pub(crate) mod side_files;
mod source;
mod store;
pub(crate) mod tensor;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod tokenizer;
pub(crate) mod torch;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod transform;
pub(crate) mod type_overrides;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod write;

pub use dtype::Dtype;
pub use error::{Error, Result};
pub use file::Format;
pub use model::{ArenaLayout, ArenaSlot, Model, TensorInfo};
pub use options::{Options, SplitRule, StackRule};
#[cfg(feature = "remote")]
pub use remote::RemoteOptions;
pub use rename::Replacer;
pub use shape::Shape;
pub use tensor::Tensor;

/// Internal modules for the `stload` command, the integration tests, the fuzz targets and the
/// benches: not part of the API, no stability promise, hidden from the documentation. Only with
/// the feature `internals` (which the default `cli` feature enables for the command).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod __private {
    macro_rules! reexport {
        ($($name:ident),* $(,)?) => {$(
            #[doc(hidden)]
            pub mod $name {
                pub use crate::$name::*;
            }
        )*};
    }
    reexport!(
        arch, buffer, export, gguf_to_hf, header, hf_to_gguf, index, options, remote, sample,
        side_files, tokenizer, torch, transform, write,
    );
}
