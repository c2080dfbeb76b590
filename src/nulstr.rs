//! A UTF-8 string stored with a trailing NUL, so Rust sees a `&str` and C a `const char*`
//! without a second allocation.

use std::ffi::c_char;
use std::fmt;

/// Owned text followed by one NUL byte. The text itself never contains NUL.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NulString(Box<str>);

impl NulString {
    /// Copies `text`, cutting it at its first NUL byte (C would stop there anyway).
    pub fn new(text: &str) -> NulString {
        let text = text.split('\0').next().unwrap_or("");
        let mut owned = String::with_capacity(text.len() + 1);
        owned.push_str(text);
        owned.push('\0');
        NulString(owned.into_boxed_str())
    }

    /// The text, without the NUL.
    pub fn as_str(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    /// Pointer to the NUL-terminated text, valid while `self` lives.
    pub fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

impl From<String> for NulString {
    /// Takes `text` (cut at its first NUL byte), reusing its allocation where it has room.
    fn from(mut text: String) -> NulString {
        if let Some(at) = text.find('\0') {
            text.truncate(at);
        }
        text.push('\0');
        NulString(text.into_boxed_str())
    }
}

// Ordering the stored bytes equals ordering the text: NUL sorts before every other byte and
// only ever appears last, so borrowing as `str` keeps map lookups consistent.
impl std::borrow::Borrow<str> for NulString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for NulString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for NulString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_and_terminates() {
        let s = NulString::new("blk.0");
        assert_eq!(s.as_str(), "blk.0");
        // SAFETY: as_ptr points at "blk.0\0", alive while `s` is.
        let c = unsafe { std::ffi::CStr::from_ptr(s.as_ptr()) };
        assert_eq!(c.to_str().unwrap(), "blk.0");
        assert_eq!(NulString::new("a\0b").as_str(), "a");
    }
}
