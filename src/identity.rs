//! What a file was when the model opened it, and whether it still is: size, inode and mtime.
//! A shard truncated or rewritten under a mapping is how users get SIGBUS crashes and silent
//! garbage; checking before data is served turns that into a clear error.

use std::fs::Metadata;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The facts that change when a file is truncated, rewritten or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    len: u64,
    device: u64,
    inode: u64,
    mtime_ns: i128,
}

impl Identity {
    /// The identity in `meta`.
    pub fn of(meta: &Metadata) -> Identity {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Identity {
                len: meta.len(),
                device: meta.dev(),
                inode: meta.ino(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Identity {
                len: meta.len(),
                device: 0,
                inode: 0,
                mtime_ns,
            }
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// What differs from `now`, in words, or `None` when nothing does.
    pub fn change(&self, now: &Identity) -> Option<String> {
        if (self.device, self.inode) != (now.device, now.inode) {
            Some("file changed since open: replaced by another file".into())
        } else if self.len != now.len {
            Some(format!(
                "file changed since open: {} bytes then, {} now",
                self.len, now.len
            ))
        } else if self.mtime_ns != now.mtime_ns {
            Some("file changed since open: rewritten (modification time differs)".into())
        } else {
            None
        }
    }
}

/// An identity plus when it was last confirmed, so checks can be rate-limited.
#[derive(Debug)]
pub struct Watch {
    identity: Identity,
    /// Nanoseconds since [`epoch`] of the last successful check, plus one (0 = never).
    last_ok: AtomicU64,
}

impl Watch {
    /// Watches a file whose identity at open was `identity`.
    pub fn new(identity: Identity) -> Watch {
        Watch {
            identity,
            last_ok: AtomicU64::new(0),
        }
    }

    /// The identity recorded at open.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Checks that `path` is still the file it was, unless that was confirmed less than
    /// `interval` ago. A vanished, truncated, rewritten or replaced file is an I/O error.
    pub fn check(&self, path: &Path, shown: &str, interval: Duration) -> Result<()> {
        let now = epoch().elapsed().as_nanos() as u64 + 1;
        let last = self.last_ok.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < interval.as_nanos() as u64 {
            return Ok(());
        }
        let meta =
            std::fs::metadata(path).map_err(|e| Error::io(shown, "file changed since open", &e))?;
        if let Some(change) = self.identity.change(&Identity::of(&meta)) {
            return Err(Error::Io {
                path: shown.to_string(),
                message: change,
            });
        }
        self.last_ok.store(now, Ordering::Relaxed);
        Ok(())
    }
}

/// A process-wide time origin for the check timestamps.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_truncation_rewrite_and_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345678").unwrap();
        let watch = Watch::new(Identity::of(&std::fs::metadata(&path).unwrap()));
        watch.check(&path, "f", Duration::ZERO).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4)
            .unwrap();
        let err = watch
            .check(&path, "f", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("8 bytes then, 4 now"), "{err}");
        // Within the interval the last good check stands; afterwards the change shows.
        let other = dir.path().join("g");
        std::fs::write(&other, b"abcdefgh").unwrap();
        let watch = Watch::new(Identity::of(&std::fs::metadata(&other).unwrap()));
        watch.check(&other, "g", Duration::ZERO).unwrap();
        std::fs::rename(&path, &other).unwrap();
        assert!(watch.check(&other, "g", Duration::from_secs(3600)).is_ok());
        let err = watch
            .check(&other, "g", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("replaced"), "{err}");
        std::fs::remove_file(&other).unwrap();
        assert!(watch.check(&other, "g", Duration::ZERO).is_err());
    }
}
