//! The zip container of a `torch.save` checkpoint: its directory and where each entry's bytes lie.
//!
//! The `zip` crate reads the central directory and the local headers; nothing is decompressed.
//! Every entry we use must be STORED (uncompressed), because tensor data is served in place from
//! the file's mapping. `torch.save` always writes stored entries (aligned to 64 bytes); an archive
//! re-packed with compression is refused with a message that says so, rather than inflated into
//! memory behind the caller's back. CRC-32 checksums are not verified: that would mean reading
//! every tensor byte at open.

use std::fs::File;
use std::io::{BufReader, Read};

use zip::{CompressionMethod, ZipArchive};

use crate::error::{Error, Result};

/// One stored entry: its bytes are `[start, start + len)` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Absolute offset of the first data byte in the file.
    pub(crate) start: u64,
    /// Number of data bytes.
    pub(crate) len: u64,
}

/// An opened checkpoint archive: the directory, the common entry prefix, the file size.
pub(crate) struct Archive {
    zip: ZipArchive<BufReader<File>>,
    /// What the messages call the file.
    shown: String,
    /// `"<archive name>/"`: torch puts every record under one top-level folder.
    prefix: String,
    file_len: u64,
}

impl Archive {
    /// Reads the directory of the zip `file` (already opened; `shown` names it in messages).
    pub(crate) fn open(file: File, shown: &str, file_len: u64) -> Result<Archive> {
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|e| {
            Error::format(
                shown,
                None,
                format!("not a readable zip archive (truncated or damaged?): {e}"),
            )
        })?;
        let first = zip.file_names().next().unwrap_or("");
        let Some(slash) = first.find('/') else {
            return Err(Error::format(
                shown,
                None,
                format!(
                    "zip entry \"{first}\" is not inside an archive folder, as torch.save writes"
                ),
            ));
        };
        let prefix = first[..=slash].to_string();
        Ok(Archive {
            zip,
            shown: shown.to_string(),
            prefix,
            file_len,
        })
    }

    /// The stored entry `<prefix><record>`, or `None` when the archive has no such record.
    pub(crate) fn find(&mut self, record: &str) -> Result<Option<Stored>> {
        let name = format!("{}{record}", self.prefix);
        let Some(index) = self.zip.index_for_name(&name) else {
            return Ok(None);
        };
        let entry = self.zip.by_index_raw(index).map_err(|e| {
            Error::format(
                &self.shown,
                None,
                format!("zip entry \"{name}\": cannot read its local header: {e}"),
            )
        })?;
        if entry.encrypted() {
            return Err(Error::Unsupported(format!(
                "{}: zip entry \"{name}\" is encrypted",
                self.shown
            )));
        }
        let method = entry.compression();
        if method != CompressionMethod::Stored {
            return Err(Error::Unsupported(format!(
                "{}: zip entry \"{name}\" is compressed ({method:?}); stload serves tensor data in \
                 place and reads only stored entries, as torch.save writes them: re-save the file \
                 with torch.save",
                self.shown
            )));
        }
        let stored = Stored {
            start: entry.data_start(),
            len: entry.compressed_size(),
        };
        if entry.size() != stored.len {
            return Err(Error::format(
                &self.shown,
                None,
                format!(
                    "zip entry \"{name}\" is stored but its sizes differ ({} and {} bytes)",
                    stored.len,
                    entry.size()
                ),
            ));
        }
        if stored
            .start
            .checked_add(stored.len)
            .is_none_or(|end| end > self.file_len)
        {
            return Err(Error::format(
                &self.shown,
                None,
                format!(
                    "zip entry \"{name}\": bytes [{}, +{}) run past the end of the {}-byte file",
                    stored.start, stored.len, self.file_len
                ),
            ));
        }
        Ok(Some(stored))
    }

    /// Reads the whole stored record `<prefix><record>` into memory, refusing more than `max`
    /// bytes. `None` when the archive has no such record.
    pub(crate) fn read(&mut self, record: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let Some(stored) = self.find(record)? else {
            return Ok(None);
        };
        if stored.len > max {
            return Err(Error::Limit(format!(
                "{}: {record} is {} bytes, over the limit of {max}",
                self.shown, stored.len
            )));
        }
        let name = format!("{}{record}", self.prefix);
        let index = self.zip.index_for_name(&name).unwrap_or(usize::MAX);
        let entry = self
            .zip
            .by_index_raw(index)
            .map_err(|e| Error::format(&self.shown, None, format!("zip entry \"{name}\": {e}")))?;
        let mut bytes = Vec::new();
        entry
            .take(stored.len)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&self.shown, &format!("cannot read {name}"), &e))?;
        if bytes.len() as u64 != stored.len {
            return Err(Error::format(
                &self.shown,
                None,
                format!(
                    "zip entry \"{name}\" is truncated: {} of {} bytes",
                    bytes.len(),
                    stored.len
                ),
            ));
        }
        Ok(Some(bytes))
    }

    /// The common entry prefix, e.g. `"pytorch_model/"`.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
}
