//! One opened model file: its header, its identity at open, and the two ways to its data: a
//! shared read-only mapping, or positioned reads (`pread`) for read mode. Both are made on
//! first use and dropped again by `release`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::header::{self, Header};
use crate::identity::{open_regular, open_regular_if_exists, Identity, Watch};
use crate::nulstr::NulString;

/// Bytes of the little-endian header length that starts every file.
const LEN_BYTES: u64 = 8;

/// The format of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `.safetensors` file.
    Safetensors,
    /// A zip checkpoint written by PyTorch's `torch.save` (`.bin`, `.pth`, `.pt`).
    PyTorch,
    /// A GGUF file (llama.cpp's format), one that is no shard of a split set.
    Gguf,
}

impl Format {
    /// The format's name, as reported to callers.
    pub fn name(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::PyTorch => "pytorch",
            Format::Gguf => "gguf",
        }
    }
}

/// The default bound on JSON files read beside the weights: 16 MiB, far above any real
/// `config.json` or shard index.
pub const DEFAULT_MAX_JSON_SIZE: u64 = 16 << 20;

/// The bound on `tokenizer.json` and `tokenizer.model` (256 MiB, or `max_json_size` when that
/// is larger): the tokenizer of a large vocabulary is 10 to 35 MiB, past the JSON bound, and a
/// hostile file must still not exhaust memory.
pub const MAX_TOKENIZER_SIZE: u64 = 256 << 20;

/// How large a side file (a file beside the weights that is not a weight file) may be, given
/// `max_json_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideLimit {
    /// A JSON or text file (`config.json`, `tokenizer_config.json`, a chat template, ...):
    /// at most `max_json_size` bytes.
    Json(u64),
    /// `tokenizer.json` or `tokenizer.model`: at most [`MAX_TOKENIZER_SIZE`] bytes, or
    /// `max_json_size` when that is larger.
    Tokenizer(u64),
}

impl SideLimit {
    /// The most bytes the file may have.
    pub fn bytes(self) -> u64 {
        match self {
            SideLimit::Json(max_json) => max_json,
            SideLimit::Tokenizer(max_json) => max_json.max(MAX_TOKENIZER_SIZE),
        }
    }

    /// The refusal of `path`; `detail` says how it broke the limit.
    fn refuse(self, path: &str, detail: &str) -> Error {
        let limit = self.bytes();
        let which = match self {
            SideLimit::Json(_) => "JSON files beside the weights",
            SideLimit::Tokenizer(_) => "a tokenizer file",
        };
        Error::Limit(format!(
            "{path}: {detail}, larger than the limit of {limit} bytes for {which} \
             (raise max_json_size to accept it)"
        ))
    }
}

/// Reads the whole side file `path` (`config.json`, a tokenizer file, ...), `None` when it
/// does not exist. The one reader of every such file: only a regular file is read (a FIFO,
/// device, socket or directory is refused without blocking, a link is followed to what it
/// names), and one larger than `limit` is refused by its size before a byte is read, or when
/// it grows past it while being read.
pub fn read_side(path: &Path, limit: SideLimit) -> Result<Option<Vec<u8>>> {
    match open_regular_if_exists(path)? {
        None => Ok(None),
        Some((file, meta)) => read_opened(path, file, &meta, limit).map(Some),
    }
}

/// Reads the whole side file `path`, which must exist (`config.json`,
/// `model.safetensors.index.json`): [`read_side`] with a missing file an error; `what` says
/// who needs it.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let (file, meta) = open_regular(path).map_err(|e| match e {
        Error::Io { path, message } => Error::Io {
            path,
            message: format!("{what}: {message}"),
        },
        other => other,
    })?;
    read_opened(path, file, &meta, SideLimit::Json(limit))
}

fn read_opened(
    path: &Path,
    file: File,
    meta: &std::fs::Metadata,
    limit: SideLimit,
) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let max = limit.bytes();
    if meta.len() > max {
        return Err(limit.refuse(&shown, &format!("{} bytes", meta.len())));
    }
    // Sized by the stat (at most the limit); the limit holds even if the file grows while it
    // is read.
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|e| Error::io(&shown, "cannot read", &e))?;
    if text.len() as u64 > max {
        return Err(limit.refuse(&shown, "grew while being read"));
    }
    Ok(text)
}

/// Where a file's bytes come from, chosen at open.
#[derive(Debug)]
enum Backend {
    /// A local file: mapped, or read with `pread`; its identity is re-checked before use.
    Local(Watch),
    /// An object in a remote store, read with conditional ranged GETs. Never made without the
    /// feature `remote` (its object type then has no values).
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    Remote(Arc<crate::remote::object::Object>),
}

/// One file of a model.
#[derive(Debug)]
pub struct ShardFile {
    format: Format,
    path: PathBuf,
    display: NulString,
    backend: Backend,
    data_start: u64,
    map: Mutex<Option<Arc<Mmap>>>,
    /// Open handle for read mode, made on first use like the mapping.
    handle: Mutex<Option<Arc<File>>>,
}

impl ShardFile {
    fn new(format: Format, path: &Path, identity: Identity, data_start: u64) -> ShardFile {
        ShardFile {
            format,
            path: path.to_path_buf(),
            display: NulString::new(&path.display().to_string()),
            backend: Backend::Local(Watch::new(identity)),
            data_start,
            map: Mutex::new(None),
            handle: Mutex::new(None),
        }
    }

    /// Opens a safetensors file, reads and validates its header (and nothing else).
    /// `max_header` bounds the JSON size, so a hostile length cannot make us allocate.
    pub fn open(path: &Path, max_header: u64) -> Result<(ShardFile, Header)> {
        let (file, meta) = open_regular(path)?;
        ShardFile::open_handle(path, file, &meta, max_header)
    }

    /// [`ShardFile::open`] of the regular file `path` opened already as `file` (`meta` its
    /// `fstat`): for opens that must not follow a link, such as a copy in the cache directory.
    pub(crate) fn open_handle(
        path: &Path,
        mut file: File,
        meta: &std::fs::Metadata,
        max_header: u64,
    ) -> Result<(ShardFile, Header)> {
        let display = path.display().to_string();
        let size = meta.len();
        let mut len_bytes = [0u8; LEN_BYTES as usize];
        if size >= LEN_BYTES {
            file.read_exact(&mut len_bytes)
                .map_err(|e| Error::io(&display, "cannot read", &e))?;
        }
        let n_usize = header_length(&display, size, &len_bytes, max_header)?;
        let mut json = vec![0u8; n_usize];
        file.read_exact(&mut json)
            .map_err(|e| Error::io(&display, "cannot read the header", &e))?;
        let data_start = LEN_BYTES + n_usize as u64;
        let header = header::parse(&display, &json, size - data_start)?;
        Ok((
            ShardFile::new(Format::Safetensors, path, Identity::of(meta), data_start),
            header,
        ))
    }

    /// A safetensors file in a remote store, from the first bytes its open fetched (the whole
    /// header when it fits the limit and the object): the header is checked with the rules of
    /// local files. Its path is its URL.
    #[cfg(feature = "remote")]
    pub(crate) fn open_remote(
        object: crate::remote::object::Object,
        first: &[u8],
        max_header: u64,
    ) -> Result<(ShardFile, Header)> {
        let display = object.url().to_string();
        let size = object.size();
        let mut len_bytes = [0u8; LEN_BYTES as usize];
        if let Some(b) = first.get(..LEN_BYTES as usize) {
            len_bytes.copy_from_slice(b);
        }
        let n = header_length(&display, size, &len_bytes, max_header)?;
        let end = LEN_BYTES as usize + n;
        let json = first
            .get(LEN_BYTES as usize..end)
            .ok_or_else(|| object.short("header", &(0..end as u64), first.len() as u64))?;
        let data_start = end as u64;
        let header = header::parse(&display, json, size - data_start)?;
        Ok((
            ShardFile::on_object(Format::Safetensors, object, data_start),
            header,
        ))
    }

    /// A GGUF file in a remote store, from its first bytes (`first`, the open's speculative
    /// read): the format has no header length, so the header is parsed from the bytes at hand
    /// and, while it goes on past them, more are fetched (at least twice as many each time, so
    /// round trips grow with the logarithm of its size), up to `max_header` bytes: a longer
    /// header is refused naming that limit, whatever the server sends. Checked with the rules
    /// of local GGUF files; its data stays remote. Its path is its URL.
    #[cfg(feature = "remote")]
    pub(crate) fn open_remote_gguf(
        object: crate::remote::object::Object,
        first: Vec<u8>,
        max_header: u64,
    ) -> Result<(ShardFile, crate::gguf_format::GgufFile)> {
        use crate::gguf_format::{parse_prefix, Prefix};
        let size = object.size();
        let mut bytes = first;
        let gguf = loop {
            match parse_prefix(object.url(), &bytes, size, max_header)? {
                Prefix::Header(gguf) => break gguf,
                // The parser asks for more only within the limit and the object.
                Prefix::Needs(n) => {
                    let have = bytes.len() as u64;
                    let want = n.max(have.saturating_mul(2)).min(size.min(max_header));
                    let more = object.read_blocking(have..want, "header")?;
                    bytes.extend_from_slice(&more);
                }
            }
        };
        let data_start = gguf.data_start;
        Ok((ShardFile::on_object(Format::Gguf, object, data_start), gguf))
    }

    /// A file of `format` whose bytes are the remote `object`'s; its path is its URL.
    #[cfg(feature = "remote")]
    fn on_object(format: Format, object: crate::remote::object::Object, data_start: u64) -> Self {
        let display = object.url().to_string();
        ShardFile {
            format,
            path: PathBuf::from(&display),
            display: NulString::new(&display),
            backend: Backend::Remote(Arc::new(object)),
            data_start,
            map: Mutex::new(None),
            handle: Mutex::new(None),
        }
    }

    /// Opens a GGUF file: reads and checks its header (every tensor's type, size and data range
    /// within the file) through a mapping that touches only the header's pages. A shard is
    /// one file: the model completes and checks its set.
    pub fn open_gguf(path: &Path) -> Result<(ShardFile, crate::gguf_format::GgufFile)> {
        let (file, meta) = open_regular(path)?;
        ShardFile::open_gguf_handle(path, &file, &meta)
    }

    /// [`ShardFile::open_gguf`] of the regular file `path` opened already as `file` (`meta`
    /// its `fstat`): for opens that must not follow a link, such as a copy in the cache.
    pub(crate) fn open_gguf_handle(
        path: &Path,
        file: &File,
        meta: &std::fs::Metadata,
    ) -> Result<(ShardFile, crate::gguf_format::GgufFile)> {
        let display = path.display().to_string();
        // SAFETY: the mapping is read-only and dropped before returning; a file truncated while
        // the header is parsed is the documented risk of every mapped read.
        let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(&display, "cannot map", &e))?;
        if map.len() as u64 != meta.len() {
            return Err(Error::Io {
                path: display,
                message: "file changed while mapping it".into(),
            });
        }
        let gguf = crate::gguf_format::parse(&display, &map)?;
        let data_start = gguf.data_start;
        Ok((
            ShardFile::new(Format::Gguf, path, Identity::of(meta), data_start),
            gguf,
        ))
    }

    /// Opens a PyTorch zip checkpoint: reads its directory and `data.pkl` (never the data).
    pub fn open_torch(
        path: &Path,
        limits: &crate::torch::TorchLimits,
    ) -> Result<(ShardFile, crate::torch::Checkpoint)> {
        let (_, meta) = open_regular(path)?;
        let checkpoint = crate::torch::read_checkpoint(path, limits)?;
        Ok((
            ShardFile::new(Format::PyTorch, path, Identity::of(&meta), 0),
            checkpoint,
        ))
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The path as given at open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as text, NUL-terminated for C.
    pub fn display(&self) -> &NulString {
        &self.display
    }

    /// Offset of the first data byte in the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// File size recorded at open.
    pub fn size(&self) -> u64 {
        match &self.backend {
            Backend::Local(watch) => watch.identity().size(),
            Backend::Remote(object) => object.size(),
        }
    }

    /// The remote object holding this file's bytes, `None` for a local file.
    pub(crate) fn remote(&self) -> Option<&Arc<crate::remote::object::Object>> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Remote(object) => Some(object),
        }
    }

    /// Checks that the file is still the one opened (size, inode, mtime), unless that was
    /// confirmed less than `interval` ago. A remote file is asked now (size and ETag).
    pub fn check(&self, interval: Duration) -> Result<()> {
        match &self.backend {
            Backend::Local(watch) => watch.check(&self.path, self.display.as_str(), interval),
            Backend::Remote(object) => object.check(),
        }
    }

    /// A handle that tells whether this file is still the one opened, checked now.
    pub(crate) fn guard(&self) -> Result<crate::identity::Guard> {
        crate::identity::Guard::new(&self.path, self.display.as_str(), *self.local()?.identity())
    }

    /// The local file's watch, or an error for a remote file (which has no mapping or handle).
    fn local(&self) -> Result<&Watch> {
        match &self.backend {
            Backend::Local(watch) => Ok(watch),
            Backend::Remote(object) => Err(Error::Unsupported(format!(
                "{}: a remote file is not mapped or opened locally",
                object.url()
            ))),
        }
    }

    /// The file's mapping, made now (after checking the file is unchanged) if it does not
    /// exist yet. Views keep it alive on their own.
    pub fn mapping(&self) -> Result<Arc<Mmap>> {
        self.local()?;
        let mut slot = lock(&self.map);
        if let Some(map) = slot.as_ref() {
            return Ok(Arc::clone(map));
        }
        self.check(Duration::ZERO)?;
        let (file, _) = open_regular(&self.path)?;
        // SAFETY: the mapping is read-only. Another process may still truncate or rewrite the
        // file later; `check` catches that before data is served, and the README (SECURITY)
        // says what remains possible in mmap mode.
        let map = unsafe { MmapOptions::new().map(&file) }
            .map_err(|e| Error::io(&self.display, "cannot map", &e))?;
        if map.len() as u64 != self.size() {
            return Err(Error::Io {
                path: self.display.to_string(),
                message: "file changed while mapping it".into(),
            });
        }
        let map = Arc::new(map);
        *slot = Some(Arc::clone(&map));
        Ok(map)
    }

    /// The file opened for positioned reads (read mode), opened on first use and kept until
    /// `release`.
    pub(crate) fn handle(&self) -> Result<Arc<File>> {
        self.local()?;
        let mut slot = lock(&self.handle);
        if let Some(h) = slot.as_ref() {
            return Ok(Arc::clone(h));
        }
        let (file, _) = open_regular(&self.path)?;
        let h = Arc::new(file);
        *slot = Some(Arc::clone(&h));
        Ok(h)
    }

    /// Drops this file's mapping and read handle; views handed out keep theirs alive.
    pub fn release(&self) {
        *lock(&self.map) = None;
        *lock(&self.handle) = None;
    }
}

/// The header length a file's first 8 bytes `len_bytes` give, checked against the file's
/// `size` and `max_header` (a hostile length cannot make us allocate).
fn header_length(display: &str, size: u64, len_bytes: &[u8; 8], max_header: u64) -> Result<usize> {
    if size < LEN_BYTES {
        let rule = format!("file is {size} bytes, too small for the 8-byte header length");
        return Err(Error::format(display, None, rule));
    }
    let n = u64::from_le_bytes(*len_bytes);
    if (n > max_header || n > size - LEN_BYTES) && header::sniff(len_bytes).is_some() {
        return Err(header::not_safetensors(display, len_bytes));
    }
    if n > max_header {
        return Err(Error::Limit(format!(
            "{display}: header length {n} exceeds the limit of {max_header} bytes"
        )));
    }
    if n > size - LEN_BYTES {
        let rule = format!("header length {n} runs past the end of the {size}-byte file");
        return Err(Error::format(display, None, rule));
    }
    // n is at most the file size and the limit; on 32-bit targets it may still not fit.
    usize::try_from(n).map_err(|_| {
        Error::Limit(format!(
            "{display}: header length {n} does not fit in memory"
        ))
    })
}

/// Locks a slot; a panic while holding it cannot leave the Option half-written, so recover.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
