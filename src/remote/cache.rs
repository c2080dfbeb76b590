//! The local cache directory of remote files (the `cache_dir` setting): complete copies keyed
//! by URL, ETag and size, so a second open of a remote model reads its files from disk.
//!
//! A copy is `DIR/U-K-LABEL`: `U` is 16 hex digits of the SHA-256 of the URL, `K` 32 hex digits
//! of the SHA-256 of URL, ETag and size, and `LABEL` the object's file name with every
//! character outside `[A-Za-z0-9._-]` replaced by `_` (at most 64), for people reading the
//! directory. No part of a path is taken from URL or ETag text, so neither can leave the
//! directory. A missing copy is downloaded with parallel conditional ranged GETs (the
//! object's `If-Match`, size and truncation checks) into a temporary file `DIR/.U-K.*.part`,
//! synced, and moved into place without replacing anything only when every byte arrived:
//! a failed or interrupted download leaves no file a later open takes as complete, and
//! processes filling the same directory at once each write their own temporary file. After a
//! download, copies of the same URL under other ETags or sizes (stale ones) are removed, and
//! so are its temporary files untouched for an hour (left by a process that died).
//! It knows local paths and remote objects, nothing of headers, tensors or models.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::object::Object;
use super::RemoteOptions;
use crate::error::{Error, Result};

/// Characters of the object's name kept in a copy's name.
const LABEL_CHARS: usize = 64;

/// The local copy of every object of `objects` in the cache directory `dir` (made when
/// missing), each complete for the object's URL, ETag and size: found there, or downloaded
/// now, all missing files' chunks in parallel (`settings`' concurrency and chunk size).
/// `check` sees the objects about to be downloaded before any byte of them is fetched into
/// the cache (it fetches and checks their headers), so a file the uncached path refuses after
/// its first bytes is refused here too, before it can fill the disk. An object listed twice is
/// downloaded once. `None` for an object without an ETag, which is not cached: a replacement of
/// the same size could not be told from it.
pub(crate) fn local_copies(
    dir: &Path,
    objects: Vec<Object>,
    settings: &RemoteOptions,
    threads: usize,
    check: &dyn Fn(&[&Object]) -> Result<()>,
) -> Result<Vec<Option<PathBuf>>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(dir.display(), "cannot create the cache directory", &e))?;
    let mut copies = Vec::with_capacity(objects.len());
    let mut missing: Vec<(CacheName, PathBuf, Object)> = Vec::new();
    for object in objects {
        let Some(etag) = object.etag() else {
            copies.push(None);
            continue;
        };
        let name = CacheName::new(object.identity(), object.url(), etag, object.size());
        let path = dir.join(name.file());
        copies.push(Some(path.clone()));
        if !is_complete(&path, object.size()) && !missing.iter().any(|(_, p, _)| *p == path) {
            missing.push((name, path, object));
        }
    }
    check(&missing.iter().map(|(_, _, o)| o).collect::<Vec<_>>())?;
    let missing = missing
        .into_iter()
        .map(|(name, path, object)| Download::start(dir, name, path, object))
        .collect::<Result<Vec<_>>>()?;
    download(&missing, settings, threads)?;
    for d in missing {
        d.finish(dir)?;
    }
    Ok(copies)
}

/// Whether `path` is itself (not through a link) a regular file of `size` bytes: a copy moved
/// into place, which is only ever done complete. Anything else under a copy's name (a
/// truncated file, a link, a directory) is damaged, and replaced by a download.
fn is_complete(path: &Path, size: u64) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && m.len() == size)
}

/// Opens the complete copy `path` for reading without following a link (`O_NOFOLLOW`), and
/// checks on the open handle that it is a regular file: a link planted under a copy's name
/// since it was checked is refused, never served. Returns the handle and its `fstat`.
pub(crate) fn open_copy(path: &Path) -> Result<(std::fs::File, std::fs::Metadata)> {
    crate::identity::open_regular_nofollow(path)
}

/// A temporary file of the same URL not written for this long belongs to a download that
/// died with its process (a live one writes every frame, and gives up after `retry_timeout`).
const ABANDONED: Duration = Duration::from_secs(3600);

/// A copy's name, from hashes of what identifies the object's content.
#[derive(Debug, Clone, PartialEq)]
struct CacheName {
    /// Hex digits of the hash of the object's identity (URL, and endpoint when the settings
    /// name one): the prefix every copy of that object shares.
    url: String,
    /// Hex digits of the hash of identity, ETag and size.
    key: String,
    /// The object's name, made safe.
    label: String,
}

impl CacheName {
    /// The name of the copy of the object `identity` ([`Object::identity`]) at `url`, as it is
    /// with `etag` and `size`.
    fn new(identity: &str, url: &str, etag: &str, size: u64) -> CacheName {
        let mut key = Sha256::new();
        // Lengths first, so no two (identity, ETag) pairs hash the same bytes.
        key.update((identity.len() as u64).to_le_bytes());
        key.update(identity.as_bytes());
        key.update((etag.len() as u64).to_le_bytes());
        key.update(etag.as_bytes());
        key.update(size.to_le_bytes());
        let label = label(url.rsplit('/').next().unwrap_or_default());
        CacheName {
            url: hex(&Sha256::digest(identity.as_bytes()), 16),
            key: hex(&key.finalize(), 32),
            label,
        }
    }

    /// The file name of the complete copy.
    fn file(&self) -> String {
        format!("{}-{}-{}", self.url, self.key, self.label)
    }

    /// Whether `file` is a complete copy of the same URL under another key.
    fn is_stale(&self, file: &str) -> bool {
        file.strip_prefix(&self.url)
            .is_some_and(|rest| rest.starts_with('-'))
            && file != self.file()
    }

    /// Whether `file` is a temporary file of the same URL that `untouched` (how long since it
    /// was last written) shows abandoned.
    fn is_abandoned(&self, file: &str, untouched: impl FnOnce() -> Option<Duration>) -> bool {
        file.strip_prefix('.')
            .and_then(|f| f.strip_prefix(&self.url))
            .is_some_and(|rest| rest.starts_with('-') && file.ends_with(".part"))
            && untouched().is_some_and(|age| age > ABANDONED)
    }
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`, at most
/// [`LABEL_CHARS`] of them: a file name for people reading the directory, never a path.
fn label(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(LABEL_CHARS)
        .collect()
}

/// The first `digits` hex digits of `bytes`.
fn hex(bytes: &[u8], digits: usize) -> String {
    let mut text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    text.truncate(digits);
    text
}

/// One object being copied into a temporary file of the cache directory.
struct Download {
    object: Object,
    name: CacheName,
    /// Where the copy goes once complete.
    target: PathBuf,
    /// Removed when dropped unless moved into place.
    tmp: NamedTempFile,
    /// `copy into the cache at TARGET`, leading messages.
    what: String,
}

impl Download {
    /// A new temporary file of the object's size in `dir`, named for it and for no other.
    fn start(dir: &Path, name: CacheName, target: PathBuf, object: Object) -> Result<Download> {
        let what = format!("copy into the cache at {}", target.display());
        let failed = |e: std::io::Error| object.error(&what, format!("cannot create a file: {e}"));
        let prefix = format!(".{}-{}.", name.url, name.key);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder.tempfile_in(dir).map_err(failed)?;
        tmp.as_file().set_len(object.size()).map_err(failed)?;
        Ok(Download {
            object,
            name,
            target,
            tmp,
            what,
        })
    }

    /// Fetches `range` of the object into the same bytes of the temporary file, frame by
    /// frame as they arrive.
    async fn fetch(&self, range: Range<u64>) -> Result<()> {
        let what = self.what.as_str();
        let mut body = self.object.body(range.clone(), what).await?;
        let mut at = range.start;
        while let Some(frame) = body.next().await {
            let frame = frame.map_err(|e| self.object.broken(what, &range, at - range.start, e))?;
            let end = at + frame.len() as u64;
            if end > range.end {
                return Err(self.object.too_long(what, &range));
            }
            write_all_at(self.tmp.as_file(), &frame, at).map_err(|e| {
                let tmp = self.tmp.path().display();
                self.object.error(what, format!("cannot write {tmp}: {e}"))
            })?;
            at = end;
        }
        if at < range.end {
            return Err(self.object.short(what, &range, at - range.start));
        }
        Ok(())
    }

    /// Syncs the complete temporary file and moves it into place (never over a file: when
    /// another process placed the same copy first, that one stays and this one is removed),
    /// then removes stale copies of the same URL.
    fn finish(self, dir: &Path) -> Result<()> {
        let Download {
            object,
            name,
            target,
            tmp,
            what,
        } = self;
        tmp.as_file()
            .sync_data()
            .map_err(|e| object.error(&what, format!("cannot sync the copy: {e}")))?;
        if let Err(e) = tmp.persist_noclobber(&target) {
            // Another process placed the same copy first: that one stays. Anything else under
            // the name is a damaged copy (truncated, a link, a directory), replaced now: left
            // there, it would make every later open download again and fail the same way.
            if !is_complete(&target, object.size()) {
                let moved = |e: std::io::Error| {
                    object.error(&what, format!("cannot move the copy into place: {e}"))
                };
                let tmp = e.file;
                if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    std::fs::remove_dir_all(&target).map_err(moved)?;
                }
                // A rename replaces a file or a link itself, never what a link names.
                tmp.persist(&target).map_err(|e| moved(e.error))?;
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let untouched = || {
                    let modified = entry.metadata().and_then(|m| m.modified());
                    modified.ok().and_then(|t| t.elapsed().ok())
                };
                // A copy another process still has mapped stays readable to it.
                if name.is_stale(&file) || name.is_abandoned(&file, untouched) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Fetches every download's object in chunks of the chunk size, `concurrency` requests in
/// flight at once over all of them.
fn download(all: &[Download], settings: &RemoteOptions, threads: usize) -> Result<()> {
    let chunk = settings.chunk_size.max(1);
    let mut work = Vec::new();
    for d in all {
        let size = d.object.size();
        let mut start = 0;
        while start < size {
            let end = start.saturating_add(chunk).min(size);
            work.push((d, start..end));
            start = end;
        }
    }
    if work.is_empty() {
        return Ok(());
    }
    // Futures made first (they start nothing), then polled a few at a time.
    let fetches: Vec<_> = work.into_iter().map(|(d, range)| d.fetch(range)).collect();
    super::block_on(threads, async {
        futures::stream::iter(fetches)
            .buffer_unordered(settings.concurrency.max(1))
            .try_collect::<()>()
            .await
    })?
}

/// A directory of the cache that holds `files` (name under the prefix, local copy) under
/// their own names, hard links to the copies (plain copies where the file system has no
/// links): the prefix `url` as a local directory, which every local rule then reads
/// (the shard index, PyTorch names, `config.json` and the tokenizer files beside the weights).
/// It is `DIR/models/U-K/NAME`, `U` from the prefix's `identity` (its URL, and the endpoint
/// when the settings name one), `K` from the names and copies and
/// `NAME` the prefix's last part (made safe as copies' labels are; what GGUF export takes as
/// the model's name), built under a temporary name and moved into place complete; other
/// directories of the same prefix (older versions) are removed, while a model open on them
/// keeps its files.
pub(crate) fn mirror(
    dir: &Path,
    identity: &str,
    url: &str,
    files: &[(String, PathBuf)],
) -> Result<PathBuf> {
    let models = dir.join("models");
    let failed = |path: &Path, what: &str, e: std::io::Error| Error::io(path.display(), what, &e);
    std::fs::create_dir_all(&models)
        .map_err(|e| failed(&models, "cannot create the cache directory", e))?;
    let mut key = Sha256::new();
    for (name, copy) in files {
        let copy = copy
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        for part in [name.as_str(), copy] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part.as_bytes());
        }
    }
    let prefix = hex(&Sha256::digest(identity.as_bytes()), 16);
    let target = models.join(format!("{prefix}-{}", hex(&key.finalize(), 32)));
    let name = match label(
        url.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default(),
    ) {
        n if n.is_empty() || n.chars().all(|c| c == '.') => "model".to_string(),
        n => n,
    };
    if let Some(twice) = files
        .iter()
        .enumerate()
        .find(|(i, (f, _))| files[..*i].iter().any(|(g, _)| g == f))
    {
        // Two copies linked under one name: the second would be written through the first.
        return Err(Error::Format(format!(
            "{url}: \"{}\" is named twice among the prefix's files: refused",
            twice.1 .0
        )));
    }
    // A directory changed since it was placed (a file replaced by a link, one added or
    // removed) is not served: it is built again.
    if target.is_dir() && !is_mirror(&target, &name, files) {
        std::fs::remove_dir_all(&target)
            .map_err(|e| failed(&target, "cannot remove a damaged directory", e))?;
    }
    if !target.is_dir() {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{prefix}-"))
            .tempdir_in(&models)
            .map_err(|e| failed(&models, "cannot create a directory", e))?;
        for (file, copy) in files {
            let link = tmp.path().join(&name).join(file);
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| failed(parent, "cannot create a directory", e))?;
            }
            if std::fs::hard_link(copy, &link).is_err() {
                copy_new(copy, &link)
                    .map_err(|e| failed(&link, "cannot link or copy the cached file", e))?;
            }
        }
        // Another process may have placed the same directory first: then that one serves.
        if let Err(e) = std::fs::rename(tmp.path(), &target) {
            if !target.is_dir() {
                return Err(failed(&target, "cannot move the directory into place", e));
            }
        } else {
            // Moved: nothing left for the guard to remove.
            let _ = tmp.keep();
        }
    }
    let current = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(&models) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if name != current
                && name
                    .strip_prefix(&prefix)
                    .is_some_and(|r| r.starts_with('-'))
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(target.join(name))
}

/// Whether `root` holds exactly the directory `name` of `files` as [`mirror`] builds it: every
/// file there itself (no link) the copy it names (the same inode; where the file system has no
/// links, a regular file of the copy's size), every directory a directory, and nothing else.
fn is_mirror(root: &Path, name: &str, files: &[(String, PathBuf)]) -> bool {
    let mut want: Vec<PathBuf> = vec![PathBuf::from(name)];
    for (file, _) in files {
        let mut at = PathBuf::from(name);
        for part in file.split('/') {
            at.push(part);
            if !want.contains(&at) {
                want.push(at.clone());
            }
        }
    }
    let mut found = Vec::new();
    if !walk(root, Path::new(""), &mut found) {
        return false;
    }
    found.sort();
    want.sort();
    if found != want {
        return false;
    }
    files.iter().all(|(file, copy)| {
        let (Ok(linked), Ok(copy)) = (
            std::fs::symlink_metadata(root.join(name).join(file)),
            std::fs::symlink_metadata(copy),
        ) else {
            return false;
        };
        linked.file_type().is_file() && same_file(&linked, &copy)
    })
}

/// Adds the paths under `dir` (relative, starting at `at`) to `found`; false when one is
/// neither a regular file nor a directory (a link), or the walk fails.
fn walk(dir: &Path, at: &Path, found: &mut Vec<PathBuf>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir.join(at)) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let Ok(kind) = entry.file_type() else {
            return false;
        };
        let path = at.join(entry.file_name());
        if kind.is_dir() {
            if !walk(dir, &path, found) {
                return false;
            }
        } else if !kind.is_file() {
            return false;
        }
        found.push(path);
    }
    true
}

/// Whether `a` is the file `b` (a hard link of it), or, where links are not available and a
/// copy was made, a file of its size.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
            return true;
        }
    }
    a.len() == b.len() && a.file_type().is_file() && b.file_type().is_file()
}

/// Copies `from` into a new file `to`, created here (`O_EXCL`): never written through a file
/// or a link already there, so a copy in the cache is never truncated by writing to its name.
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = match open_copy(from) {
        Ok((file, _)) => file,
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    std::io::copy(&mut source, &mut target)?;
    target.sync_data()
}

/// Writes all of `bytes` at `offset` of `file` (positioned, so chunks land in any order).
#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
}

/// Writes all of `bytes` at `offset` of `file` (positioned, so chunks land in any order).
#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "s3://b/m/model.safetensors";

    #[test]
    fn names_are_hashes_and_a_safe_label() {
        let a = CacheName::new(M, M, "\"abc\"", 10);
        assert_eq!(a.url.len(), 16);
        assert_eq!(a.key.len(), 32);
        assert!(a.file().ends_with("-model.safetensors"), "{}", a.file());
        // Another ETag or size is another key of the same URL: the old copy is stale.
        let b = CacheName::new(M, M, "\"abd\"", 10);
        let c = CacheName::new(M, M, "\"abc\"", 11);
        assert_eq!(a.url, b.url);
        assert_eq!(a.url, c.url);
        assert_ne!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert!(b.is_stale(&a.file()) && c.is_stale(&a.file()));
        assert!(!a.is_stale(&a.file()));
        let part = format!(".{}-{}.x.part", a.url, a.key);
        assert!(!a.is_stale(&part));
        // Temporary files of the URL go once untouched for an hour; others never.
        let old = || Some(ABANDONED * 2);
        assert!(a.is_abandoned(&part, old));
        assert!(!a.is_abandoned(&part, || Some(Duration::from_secs(60))));
        assert!(!a.is_abandoned(&part, || None));
        assert!(!a.is_abandoned(&a.file(), old));
        assert!(!a.is_abandoned(&format!(".{}-{}.x.part", "0".repeat(16), a.key), old));
        // The boundary between URL and ETag is part of the key.
        assert_ne!(
            CacheName::new("s3://b/x", "s3://b/x", "yz", 1).key,
            CacheName::new("s3://b/xy", "s3://b/xy", "z", 1).key
        );
        // The same URL at another endpoint is another object, whose copies are not stale
        // copies of this one's; the label still comes from the URL.
        let elsewhere = format!("{M} at http://127.0.0.1:9001");
        let d = CacheName::new(&elsewhere, M, "\"abc\"", 10);
        assert_ne!((&a.url, &a.key), (&d.url, &d.key));
        assert!(!d.is_stale(&a.file()) && !a.is_stale(&d.file()));
        assert!(d.file().ends_with("-model.safetensors"), "{}", d.file());
    }

    #[test]
    fn hostile_urls_and_etags_stay_inside_the_directory() {
        let dir = Path::new("/cache");
        for (url, etag) in [
            ("http://h/../../etc/passwd", "../../x"),
            ("http://h/a/..", "/"),
            ("http://h/%2e%2e%2f..%2fx", "\0\n"),
            ("http://h/", ""),
            ("http://h/\u{202e}evil/名前.safetensors", "\"x/y\\z\""),
        ] {
            let name = CacheName::new(url, url, etag, 1).file();
            let path = dir.join(&name);
            assert_eq!(path.parent(), Some(dir), "{url}: {name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{url}: {name}"
            );
            assert!(!name.starts_with('.'), "{url}: {name}");
            assert!(name.len() <= 16 + 1 + 32 + 1 + LABEL_CHARS, "{name}");
        }
    }
}
