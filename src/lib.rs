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

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod arch;
pub mod buffer;
pub mod convert;
pub mod dtype;
pub mod error;
pub mod export;
pub mod ffi;
pub mod file;
pub mod gguf;
pub mod header;
mod hf_to_gguf;
pub mod identity;
pub mod index;
pub mod kv;
#[cfg(feature = "mlx")]
pub mod mlx;
pub mod model;
pub mod nulstr;
pub mod options;
mod parallel;
pub mod remote;
pub mod rename;
pub mod sample;
pub mod shape;
mod source;
mod store;
pub mod tensor;
pub mod tokenizer;
pub mod torch;
pub mod transform;
pub mod write;

pub use dtype::Dtype;
pub use error::{Error, Result};
pub use model::{Model, TensorInfo};
pub use options::Options;
pub use shape::Shape;
pub use tensor::Tensor;
