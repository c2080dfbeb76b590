//! One opened safetensors file: its header, its size, and a shared read-only mapping made on
//! first use (and dropped again by `release`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::header::{self, Header};
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
}

impl Format {
    /// The format's name, as reported to callers.
    pub fn name(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::PyTorch => "pytorch",
        }
    }
}

/// One file of a model.
#[derive(Debug)]
pub struct ShardFile {
    format: Format,
    path: PathBuf,
    display: NulString,
    size: u64,
    data_start: u64,
    map: Mutex<Option<Arc<Mmap>>>,
}

impl ShardFile {
    /// Opens `path`, reads and validates its header (and nothing else).
    /// `max_header` bounds the JSON size, so a hostile length cannot make us allocate.
    pub fn open(path: &Path, max_header: u64) -> Result<(ShardFile, Header)> {
        let display = path.display().to_string();
        let mut file = File::open(path).map_err(|e| Error::io(&display, "cannot open", &e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(&display, "cannot stat", &e))?
            .len();
        if size < LEN_BYTES {
            return Err(Error::format(
                &display,
                None,
                format!("file is {size} bytes, too small for the 8-byte header length"),
            ));
        }
        let mut len_bytes = [0u8; LEN_BYTES as usize];
        file.read_exact(&mut len_bytes)
            .map_err(|e| Error::io(&display, "cannot read", &e))?;
        let n = u64::from_le_bytes(len_bytes);
        if n > max_header {
            return Err(Error::Limit(format!(
                "{display}: header length {n} exceeds the limit of {max_header} bytes"
            )));
        }
        if n > size - LEN_BYTES {
            return Err(Error::format(
                &display,
                None,
                format!("header length {n} runs past the end of the {size}-byte file"),
            ));
        }
        // n ≤ size and ≤ the limit, so it fits in memory's address space on 64-bit targets.
        let n_usize = usize::try_from(n).map_err(|_| {
            Error::Limit(format!(
                "{display}: header length {n} does not fit in memory"
            ))
        })?;
        let mut json = vec![0u8; n_usize];
        file.read_exact(&mut json)
            .map_err(|e| Error::io(&display, "cannot read the header", &e))?;
        let data_start = LEN_BYTES + n;
        let header = header::parse(&display, &json, size - data_start)?;
        let shard = ShardFile {
            format: Format::Safetensors,
            path: path.to_path_buf(),
            display: NulString::new(&display),
            size,
            data_start,
            map: Mutex::new(None),
        };
        Ok((shard, header))
    }

    /// Opens a PyTorch zip checkpoint: reads its directory and `data.pkl` (never the data).
    pub fn open_torch(
        path: &Path,
        limits: &crate::torch::TorchLimits,
    ) -> Result<(ShardFile, crate::torch::Checkpoint)> {
        let display = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(&display, "cannot stat", &e))?
            .len();
        let checkpoint = crate::torch::read_checkpoint(path, limits)?;
        let shard = ShardFile {
            format: Format::PyTorch,
            path: path.to_path_buf(),
            display: NulString::new(&display),
            size,
            data_start: 0,
            map: Mutex::new(None),
        };
        Ok((shard, checkpoint))
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
        self.size
    }

    /// The file's mapping, made now if it does not exist yet. Views keep it alive on their own.
    pub fn mapping(&self) -> Result<Arc<Mmap>> {
        let mut slot = self.lock();
        if let Some(map) = slot.as_ref() {
            return Ok(Arc::clone(map));
        }
        let file =
            File::open(&self.path).map_err(|e| Error::io(&self.display, "cannot reopen", &e))?;
        let now = file
            .metadata()
            .map_err(|e| Error::io(&self.display, "cannot stat", &e))?
            .len();
        if now != self.size {
            return Err(Error::Io {
                path: self.display.to_string(),
                message: format!(
                    "file changed since open: {} bytes then, {now} now",
                    self.size
                ),
            });
        }
        // SAFETY: the mapping is read-only and private to us. Another process may still truncate
        // or rewrite the file; that risk of mmap is documented in the README (SECURITY).
        let map = unsafe { MmapOptions::new().map(&file) }
            .map_err(|e| Error::io(&self.display, "cannot map", &e))?;
        let map = Arc::new(map);
        *slot = Some(Arc::clone(&map));
        Ok(map)
    }

    /// Drops this file's mapping; views handed out keep theirs alive until they are freed.
    pub fn release(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Mmap>>> {
        // A panic while holding this lock cannot leave the Option half-written, so recover.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
