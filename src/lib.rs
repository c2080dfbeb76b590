//! stload: load model weights stored as safetensors.
//!
//! Index a model directory or a list of files by reading only their JSON headers, get tensors as
//! zero-copy views into memory-mapped files, and convert dtypes exactly at memory speed.
//! The C ABI in [`ffi`] wraps this Rust API; `include/stload.h` is generated from it.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod buffer;
pub mod convert;
pub mod dtype;

pub use dtype::Dtype;
