//! What a file was when the model opened it, and whether it still is: size, inode and mtime.
//! A shard truncated or rewritten under a mapping is how users get SIGBUS crashes and silent
//! garbage; checking before data is served turns that into a clear error.

use std::fs::{File, Metadata};
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
    /// Status change time: an in-place rewrite that restores the mtime still moves it.
    ctime_ns: i128,
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
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
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
                ctime_ns: 0,
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
        } else if self.ctime_ns != now.ctime_ns {
            Some("file changed since open: rewritten or its attributes changed (status change time differs)".into())
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

/// An open handle on a file and its identity at open, for work that must stop when the file
/// changes (prefetch touching mapped pages): asks the handle itself (`fstat`), so it keeps
/// working after the model is freed and whatever the path now names.
#[derive(Debug)]
pub(crate) struct Guard {
    file: std::fs::File,
    identity: Identity,
}

impl Guard {
    /// Opens `path` and confirms it is still the file whose identity was `identity`.
    pub fn new(path: &Path, shown: &str, identity: Identity) -> Result<Guard> {
        let (file, meta) = open_regular(path)?;
        if let Some(change) = identity.change(&Identity::of(&meta)) {
            return Err(Error::Io {
                path: shown.to_string(),
                message: change,
            });
        }
        Ok(Guard { file, identity })
    }

    /// Whether the file is unchanged (false too when it cannot be asked).
    pub fn holds(&self) -> bool {
        self.file
            .metadata()
            .is_ok_and(|m| self.identity.change(&Identity::of(&m)).is_none())
    }
}

/// A process-wide time origin for the check timestamps.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Opens `path` for reading if it is a regular file, else refuses it with an error naming it.
/// The open does not block on a FIFO (`O_NONBLOCK`), and the type is checked on the open handle
/// (`fstat`), so a FIFO, device or directory is refused before anything is read from it.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata)> {
    checked(path, open_nonblocking(path))
}

/// Like [`open_regular`], but a path that does not exist (or a link to nothing) is `None`:
/// for optional files beside the weights, told apart from unreadable ones in one open, so no
/// file can appear between a test for it and the open.
pub fn open_regular_if_exists(path: &Path) -> Result<Option<(File, std::fs::Metadata)>> {
    match open_nonblocking(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        opened => checked(path, opened).map(Some),
    }
}

/// Like [`open_regular`], but a link at `path` itself is refused, never followed
/// (`O_NOFOLLOW`): for files whose name must be the file, such as a cache's copies.
// Only the remote cache opens copies.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub fn open_regular_nofollow(path: &Path) -> Result<(File, std::fs::Metadata)> {
    checked(path, open_with(path, libc::O_NOFOLLOW))
}

/// Opens `path` read-only without waiting for a FIFO's writer.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    open_with(path, 0)
}

/// Opens `path` read-only and non-blocking (`O_NONBLOCK`), with the open flags `extra` too.
fn open_with(path: &Path, extra: i32) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | extra);
    }
    options.open(path)
}

/// The opened file and its metadata if it is a regular file; else an error naming `path`.
fn checked(path: &Path, opened: std::io::Result<File>) -> Result<(File, std::fs::Metadata)> {
    let shown = path.display().to_string();
    let file = opened.map_err(|e| Error::io(&shown, "cannot open", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&shown, "cannot stat", &e))?;
    if !meta.is_file() {
        return Err(Error::Io {
            path: shown,
            message: format!(
                "not a regular file (it is a {}): refused",
                file_kind(&meta.file_type())
            ),
        });
    }
    Ok((file, meta))
}

/// A file type in words.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "fifo";
        }
        if t.is_char_device() || t.is_block_device() {
            return "device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_place_rewrite_that_restores_the_mtime_is_seen() {
        // Issue 16 item 9: same size, same inode, mtime put back; only the ctime moves.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345678").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let watch = Watch::new(Identity::of(&meta));
        std::thread::sleep(Duration::from_millis(30));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, b"abcdefgh").unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
        drop(file);
        let now = std::fs::metadata(&path).unwrap();
        assert_eq!(now.modified().unwrap(), meta.modified().unwrap());
        let err = watch
            .check(&path, "f", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("status change time"), "{err}");
    }

    #[test]
    fn a_guard_sees_truncation_through_its_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 8192]).unwrap();
        let identity = Identity::of(&std::fs::metadata(&path).unwrap());
        let guard = Guard::new(&path, "f", identity).unwrap();
        assert!(guard.holds());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        assert!(!guard.holds());
        assert!(Guard::new(&path, "f", identity).is_err());
    }

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
