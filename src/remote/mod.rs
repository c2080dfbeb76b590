//! Weights in object storage or behind HTTP: `s3://`, `gs://`, `az://` / `azure://`,
//! `http(s)://`, all through the `object_store` crate. This module owns the connection to a
//! store (`connect`), one remote file as it was at open (`object`: size and ETag, conditional
//! ranged reads), the local cache directory of complete copies (`cache`), the one async
//! runtime of the library (`runtime`), the TLS provider (`tls`) and the settings (`settings`). It knows nothing of
//! files, tensors, the store or models: `file` builds a `ShardFile` on an [`object::Object`]
//! or on a cached copy's path, and `store` asks it for byte ranges.
//!
//! All of it but the recognition of URLs ([`url_of`]) is the cargo feature `remote` (on by
//! default). Without it, `off` stands in: a URL or a remote setting is refused as unsupported,
//! and the object type of a remote file has no values, so no file is ever remote.

#[cfg(feature = "remote")]
mod cache;
#[cfg(feature = "remote")]
mod connect;
#[cfg(feature = "remote")]
pub(crate) mod object;
#[cfg(not(feature = "remote"))]
mod off;
#[cfg(feature = "remote")]
mod runtime;
#[cfg(feature = "remote")]
mod settings;
#[cfg(feature = "remote")]
mod tls;

#[cfg(feature = "remote")]
pub(crate) use cache::{local_copies, mirror, open_copy};
#[cfg(feature = "remote")]
pub(crate) use connect::{connect, Connection};
#[cfg(not(feature = "remote"))]
pub(crate) use off::{disabled, object};
#[cfg(feature = "remote")]
pub(crate) use runtime::block_on;
#[cfg(feature = "remote")]
pub use settings::RemoteOptions;

/// The URL schemes read as remote locations; any other string is a local path.
pub const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "http", "https",
];

/// Bytes fetched speculatively from the start of every remote file at open: the header and
/// often the first tensors, in one round trip.
#[cfg(feature = "remote")]
pub(crate) const HEADER_PREFETCH: u64 = 1 << 20;

/// The URL in `text` when it is one (`scheme://...` with a scheme of [`SCHEMES`]), else `None`:
/// the text is then a local path, exactly as before remote locations existed.
pub fn url_of(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once("://")?;
    (SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty()).then_some(text)
}

/// Whether `text` is a URL of a prefix (a directory of files) rather than of one file: a URL
/// whose last part does not name a `.safetensors`, `.gguf`, `.bin`, `.pth` or `.pt` file.
/// A query string or fragment is not part of the name (such URLs are refused at connect).
pub fn is_prefix_url(text: &str) -> bool {
    let path = text.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    url_of(text).is_some()
        && ![".safetensors", ".gguf", ".bin", ".pth", ".pt"]
            .iter()
            .any(|x| last.ends_with(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_schemes_are_urls() {
        assert!(url_of("s3://bucket/model/").is_some());
        assert!(url_of("HTTPS://host/m.safetensors").is_some());
        assert!(url_of("gs://b/p").is_some());
        assert!(url_of("models/llama").is_none());
        assert!(url_of("file://x").is_none());
        assert!(url_of("s3://").is_none());
        assert!(url_of("/tmp/s3://x").is_none());
        assert!(is_prefix_url("s3://b/llama-3.1/"));
        assert!(is_prefix_url("s3://b/llama-3.1"));
        assert!(!is_prefix_url("s3://b/m/model.safetensors"));
        assert!(!is_prefix_url("s3://b/m/model-00001-of-00002.gguf"));
        assert!(!is_prefix_url("models/llama"));
        // The query of a file URL does not make it a prefix.
        assert!(!is_prefix_url("https://h/m/model.safetensors?token=abc"));
        assert!(!is_prefix_url("https://h/m/model.safetensors#x"));
        assert!(is_prefix_url("https://h/m/?token=abc"));
    }
}
