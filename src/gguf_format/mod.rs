//! The GGUF container as input: the ggml type numbers ([`GgmlType`]), the header reader
//! ([`read`], [`parse`], [`read_set`] for split sets) and gguf-split's shard names and keys.
//! Bytes in, tables out: it knows no model, so the model can open GGUF files through it;
//! `gguf` (the output side, which uses the model) re-exports its public items. The block
//! types' values are `convert::dequant`'s.

mod ggml_type;
mod reader;
mod split;

pub use ggml_type::GgmlType;
#[cfg(test)]
pub(crate) use reader::MAX_ARRAY_DEPTH;
pub use reader::{
    check_set, parse, read, read_set, set_paths, value_json, GgufFile, GgufTensorInfo,
};
#[cfg_attr(not(feature = "remote"), allow(unused_imports))]
pub(crate) use reader::{parse_prefix, Prefix};
pub(crate) use split::shard_keys;
pub use split::{
    is_shard_of, parse_size, shard_path, ShardInfo, Split, KEY_SPLIT_COUNT, KEY_SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT,
};

/// The file's first four bytes, "GGUF".
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment written as `general.alignment` unless the plan sets another, and assumed by
/// the reader when a file has no such key.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// Most dimensions ggml tensors have.
pub const MAX_DIMS: usize = 4;

/// Whether `path` is a regular file starting with the GGUF magic (anything else, a FIFO
/// included, is left to the other formats' openers, which say why it is not theirs).
pub fn is_gguf_file(path: &std::path::Path) -> bool {
    use std::io::Read;
    let Ok((file, _)) = crate::identity::open_regular(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    file.take(4).read_exact(&mut head).is_ok() && head == MAGIC
}
