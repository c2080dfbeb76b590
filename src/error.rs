//! The one error type of the library. Every message names the file and tensor involved.

use std::io;

/// What went wrong, in the categories the C API reports as `stload_status`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller passed something unusable (bad name, null, out-of-range index...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The operating system refused a file operation, or a file changed under us.
    #[error("{path}: {message}")]
    Io {
        /// The file the operation was on.
        path: String,
        /// What failed, with the OS reason.
        message: String,
    },
    /// A file breaks the safetensors format (or an index.json or config.json is wrong).
    #[error("{0}")]
    Format(String),
    /// No tensor (or key) of that name.
    #[error("{0}")]
    NotFound(String),
    /// A valid request stload does not implement (e.g. a conversion without meaning).
    #[error("{0}")]
    Unsupported(String),
    /// Two tensors claim one name.
    #[error("{0}")]
    Duplicate(String),
    /// A configured resource limit was reached.
    #[error("{0}")]
    Limit(String),
    /// The caller's buffer has the wrong size.
    #[error("{0}")]
    BufferSize(String),
    /// Memory for an output could not be allocated.
    #[error("{0}")]
    OutOfMemory(String),
    /// A progress callback asked to stop.
    #[error("{0}")]
    Cancelled(String),
}

impl Error {
    /// An I/O error on `path`, keeping the OS message.
    pub fn io(path: impl std::fmt::Display, what: &str, err: &io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            message: format!("{what}: {err}"),
        }
    }

    /// A format error in `file`, optionally about `tensor`.
    pub fn format(
        file: impl std::fmt::Display,
        tensor: Option<&str>,
        rule: impl std::fmt::Display,
    ) -> Error {
        match tensor {
            Some(t) => Error::Format(format!("{file}: tensor \"{t}\": {rule}")),
            None => Error::Format(format!("{file}: {rule}")),
        }
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most bytes of a value from a file (a config value, a name) quoted in a message: a
/// hostile file's 10 MiB string must not become a 10 MB message.
pub(crate) const SHOWN_BYTES: usize = 80;

/// `text` for a message: whole when short, else its first [`SHOWN_BYTES`] bytes (cut at a
/// character boundary), an ellipsis and its length.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= SHOWN_BYTES {
        return text.into();
    }
    let cut = prefix(text.as_bytes(), SHOWN_BYTES);
    format!("{cut}... ({} bytes)", text.len()).into()
}

/// The JSON value `v` for a message, as JSON text shortened like [`shown`]; only the part
/// shown is serialized, so a huge value costs no more than a short one.
pub(crate) fn shown_json(v: &serde_json::Value) -> String {
    /// Keeps the first `cap` bytes written, then refuses more (which ends serialization).
    struct Capped(Vec<u8>, usize);
    impl io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let room = self.1 - self.0.len();
            if room == 0 {
                return Err(io::Error::other("enough shown"));
            }
            let n = buf.len().min(room);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::with_capacity(SHOWN_BYTES + 1), SHOWN_BYTES + 1);
    // An error only says the value was longer than what is kept.
    let _ = serde_json::to_writer(&mut out, v);
    if out.0.len() <= SHOWN_BYTES {
        String::from_utf8_lossy(&out.0).into_owned()
    } else {
        format!("{}...", prefix(&out.0, SHOWN_BYTES))
    }
}

/// The longest prefix of UTF-8 `bytes` of at most `max` bytes that ends on a character
/// boundary.
fn prefix(bytes: &[u8], max: usize) -> std::borrow::Cow<'_, str> {
    let mut end = max.min(bytes.len());
    // A continuation byte (10xxxxxx) is never the first byte of a character.
    while end > 0 && end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened_at_a_character_boundary() {
        assert_eq!(shown("short"), "short");
        let long = "é".repeat(1000);
        let s = shown(&long);
        assert!(
            s.len() < SHOWN_BYTES + 20 && s.ends_with("... (2000 bytes)"),
            "{s}"
        );
        assert!(s.starts_with("éé"));
        let v = serde_json::json!({"a": [1, 2, 3]});
        assert_eq!(shown_json(&v), r#"{"a":[1,2,3]}"#);
        let big = serde_json::Value::String("x".repeat(10 << 20));
        let s = shown_json(&big);
        assert!(s.len() <= SHOWN_BYTES + 3 && s.starts_with("\"xxx"), "{s}");
        let nested = serde_json::json!([vec!["é"; 100]]);
        assert!(shown_json(&nested).len() <= SHOWN_BYTES + 3);
    }
}
