//! The model index: every tensor of a directory or file list by name, its metadata, and the
//! caches of converted tensors. Opening reads headers only (`open.rs`); the bytes come from the
//! model's `Store` on first `get`.

mod arena;
mod attached;
mod load;
mod open;
#[cfg(feature = "remote")]
mod remote;
#[cfg(not(feature = "remote"))]
#[path = "remote_off.rs"]
mod remote;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use arena::{ArenaLayout, ArenaSlot};
use attached::Attached;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::file::{Format, ShardFile};
use crate::nulstr::NulString;
use crate::options::Options;
use crate::shape::Shape;
use crate::side_files::SideFiles;
use crate::source::Source;
use crate::store::Store;
use crate::tensor::Tensor;

/// One tensor of the index.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: NulString,
    /// The name in the file before renaming (the first part's, for stacked tensors).
    /// Set only when it differs from `name` (most tensors are not renamed).
    pub(crate) original: Option<NulString>,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Shape,
    pub(crate) nbytes: u64,
    /// Index into `Model::files` of the first byte.
    pub(crate) file: usize,
    /// Absolute offset of the first byte in that file.
    pub(crate) offset: u64,
    pub(crate) source: Source,
}

impl Entry {
    /// The name in the file before renaming.
    pub(crate) fn original_name(&self) -> &NulString {
        self.original.as_ref().unwrap_or(&self.name)
    }
}

/// What the index knows of one tensor, without reading its data.
#[derive(Debug, Clone, Copy)]
pub struct TensorInfo<'a> {
    /// Name as listed by the model.
    pub name: &'a str,
    /// Name in the file before renaming (the first part's, for stacked tensors).
    pub original_name: &'a str,
    /// Element type as stored.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: &'a [u64],
    /// Stored byte length.
    pub nbytes: u64,
    /// The file holding the data.
    pub file: &'a Path,
    /// Absolute offset of the data in that file.
    pub data_offset: u64,
    /// The format of that file.
    pub format: Format,
    /// `original_name`, NUL-terminated (the C API hands it out).
    pub(crate) original_nul: &'a NulString,
    /// The file as named in messages, NUL-terminated (the C API hands it out).
    pub(crate) file_display: &'a NulString,
}

/// An opened model: the tensor index of one or more safetensors files.
///
/// `Model` is `Send + Sync`: any number of threads may `get` at once.
#[derive(Debug)]
pub struct Model {
    /// The files and how their bytes are served.
    store: Store,
    entries: Vec<Entry>,
    /// `__metadata__` pairs, and GGUF keys as text ([`Model::metadata`]).
    metadata: BTreeMap<NulString, NulString>,
    /// GGUF keys with their types, the first file's where files share a key.
    gguf_metadata: BTreeMap<String, crate::kv::Value>,
    options: Options,
    /// Where `config.json` and the tokenizer files are: the directory opened, or the first
    /// file's directory.
    config_dir: PathBuf,
    converted: Mutex<HashMap<(usize, Dtype), Tensor>>,
    /// What layers above build from tensors and keep (MLX arrays, feature `mlx`), by tensor
    /// index, dtype and type. The model does not know those types; `release_all` drops them.
    attached: Mutex<Attached>,
}

impl Model {
    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the model has no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`-th tensor name in sorted order.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.entries.get(i).map(|e| e.name.as_str())
    }

    /// All tensor names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// A `__metadata__` value of any file (the first file that has the key wins), or a GGUF
    /// key's value as text: a string as it is, a number or boolean as JSON text, an array as a
    /// JSON array ([`Model::gguf_value`] gives it typed).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(NulString::as_str)
    }

    pub(crate) fn metadata_value(&self, key: &str) -> Option<&NulString> {
        self.metadata.get(key)
    }

    pub(crate) fn metadata_key_at(&self, i: usize) -> Option<&NulString> {
        self.metadata.keys().nth(i)
    }

    /// A GGUF key's value with its type (the first file's where shards share a key); `None`
    /// for a key no GGUF file of the model has.
    pub fn gguf_value(&self, key: &str) -> Option<&crate::kv::Value> {
        self.gguf_metadata.get(key)
    }

    /// All `__metadata__` pairs (GGUF keys as text), sorted by key.
    pub fn metadata_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// What the index knows of `name`.
    pub fn info(&self, name: &str) -> Result<TensorInfo<'_>> {
        Ok(self.info_of(self.entry(name)?))
    }

    /// What the index knows of the `i`-th tensor in name order (no lookup by name).
    pub fn info_at(&self, i: usize) -> Option<TensorInfo<'_>> {
        self.entries.get(i).map(|e| self.info_of(e))
    }

    /// Every tensor's info, in name order.
    pub fn infos(&self) -> impl Iterator<Item = TensorInfo<'_>> {
        self.entries.iter().map(|e| self.info_of(e))
    }

    fn info_of<'a>(&'a self, e: &'a Entry) -> TensorInfo<'a> {
        TensorInfo {
            name: e.name.as_str(),
            original_name: e.original_name().as_str(),
            dtype: e.dtype,
            shape: &e.shape,
            nbytes: e.nbytes,
            file: self.store.files()[e.file].path(),
            data_offset: e.offset,
            format: self.file_format(e.file),
            original_nul: e.original_name(),
            file_display: self.store.files()[e.file].display(),
        }
    }

    /// The tensor `name` as stored: a zero-copy view into its file's mapping (or, for tensors
    /// gathered from several places by a transform, new memory in the stored dtype).
    pub fn get(&self, name: &str) -> Result<Tensor> {
        let index = self.index_of(name)?;
        self.get_index_as(index, self.entries[index].dtype)
    }

    /// The tensor `name` in `dtype`: zero-copy when that is the stored dtype, else converted
    /// (and cached per name and dtype unless the options turn the cache off).
    pub fn get_as(&self, name: &str, dtype: Dtype) -> Result<Tensor> {
        let index = self.index_of(name)?;
        self.get_index_as(index, dtype)
    }

    fn get_index_as(&self, index: usize, dtype: Dtype) -> Result<Tensor> {
        let e = &self.entries[index];
        if e.dtype == dtype && matches!(e.source, Source::Contiguous(_)) {
            // Read mode and remote files copy: what `load` kept is served first.
            if !self.store.zero_copy(&e.source) {
                if let Some(t) = self.converted_cache().get(&(index, dtype)) {
                    return Ok(t.clone());
                }
            }
            return self.view(e);
        }
        if let Some(t) = self.converted_cache().get(&(index, dtype)) {
            return Ok(t.clone());
        }
        let t = self.materialize(e, dtype, false)?;
        if self.options.cache_converted {
            // Two threads may race to convert the same tensor; the first result is kept.
            return Ok(self
                .converted_cache()
                .entry((index, dtype))
                .or_insert(t)
                .clone());
        }
        Ok(t)
    }

    /// New memory holding entry `e` as `dtype`. `drop_source` lets converted source pages go.
    fn materialize(&self, e: &Entry, dtype: Dtype, drop_source: bool) -> Result<Tensor> {
        let name = e.name.as_str();
        self.store
            .materialize(name, &e.source, &e.shape, e.dtype, dtype, drop_source)
    }

    /// Entry `e` as stored: a view of its mapping when it is one range, else new memory.
    fn view(&self, e: &Entry) -> Result<Tensor> {
        let name = e.name.as_str();
        self.store.view(name, &e.source, e.dtype, e.shape.clone())
    }

    /// Part of tensor `name` along `axis`: indices `[start, stop)`, as `dtype` (`None`: as
    /// stored). Along axis 0 of a contiguous tensor in its stored dtype this is a zero-copy
    /// view; otherwise a (strided) copy. Not cached.
    pub fn get_slice(
        &self,
        name: &str,
        axis: usize,
        start: u64,
        stop: u64,
        dtype: Option<Dtype>,
    ) -> Result<Tensor> {
        let e = self.entry(name)?;
        let dim = e.shape.get(axis).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "tensor \"{name}\" has {} dimensions; axis {axis} does not exist",
                e.shape.len()
            ))
        })?;
        if start > stop || stop > dim {
            return Err(Error::InvalidArgument(format!(
                "tensor \"{name}\": slice [{start}, {stop}) is out of range for axis {axis} of size {dim}"
            )));
        }
        let mut shape = e.shape.clone();
        shape[axis] = stop - start;
        let inner: u64 = e.shape[axis + 1..].iter().product();
        let inner_bytes = e.dtype.bytes_for(inner).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor \"{name}\": {inner} {} elements do not fill whole bytes",
                e.dtype
            ))
        })?;
        let outer: u64 = e.shape[..axis].iter().product();
        let run = (stop - start) * inner_bytes;
        let target = dtype.unwrap_or(e.dtype);
        if run == 0 || outer == 0 {
            // Nothing to copy, however many outer rows there are: O(1).
            let empty = Source::from_pieces(Vec::new());
            return self
                .store
                .materialize(name, &empty, &shape, e.dtype, target, false);
        }
        // The open-time shape check bounds every product here by the tensor's byte length.
        let mut pieces = Vec::new();
        for o in 0..outer {
            let at = (o * dim + start) * inner_bytes;
            e.source.push_range(at, run, name, &mut pieces)?;
        }
        let source = Source::from_pieces(pieces);
        if target == e.dtype {
            return self.store.view(name, &source, e.dtype, shape);
        }
        self.store
            .materialize(name, &source, &shape, e.dtype, target, false)
    }

    /// Brings the data of `names` (every tensor when `None`) into memory ahead of use: the kernel
    /// is asked to read ahead and the pages are touched by all threads. In read mode the data is
    /// read once with parallel positioned reads, which fills the page cache. A remote model's
    /// tensors are fetched as stored and kept in memory as `load(None)` keeps them (until
    /// [`Model::release_all`]), so later `get`s make no request.
    /// `progress(done, total)` counts bytes; returning false stops with [`Error::Cancelled`].
    pub fn prefetch(
        &self,
        names: Option<&[&str]>,
        mut progress: impl FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let indices: Vec<usize> = match names {
            None => (0..self.entries.len()).collect(),
            Some(list) => list
                .iter()
                .map(|n| self.index_of(n))
                .collect::<Result<_>>()?,
        };
        if self.store.files().iter().any(|f| f.remote().is_some()) {
            return self.fetch_into_memory(&indices, &mut progress);
        }
        let entries: Vec<&Entry> = indices.iter().map(|&i| &self.entries[i]).collect();
        let sources: Vec<(&str, &Source)> = entries
            .iter()
            .map(|e| (e.name.as_str(), &e.source))
            .collect();
        self.store.prefetch(&sources, &mut progress)
    }

    /// Checks every tensor without reading its data: each file is still the one opened, and
    /// every tensor's bytes (a strided view's whole storage) lie inside its file. Headers, views
    /// and shapes were checked at open; this adds what may have changed since.
    pub fn verify(&self) -> Result<()> {
        self.store
            .verify(self.entries.iter().map(|e| (e.name.as_str(), &e.source)))
    }

    /// Drops every cached tensor and every file mapping. The index stays: a later `get` maps
    /// again. Tensors already handed out stay valid.
    pub fn release_all(&self) {
        self.converted_cache().clear();
        // Dropped outside the lock: freeing what a layer above kept may release mappings.
        let attached = std::mem::take(&mut *self.attached());
        drop(attached);
        self.store.release();
    }

    /// The options the model was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The directory holding the model's `config.json` and tokenizer files: the directory
    /// opened, or the directory of the first file given. For a model opened from a URL
    /// without a cache directory it is that URL (or its directory), which names no local
    /// directory: GGUF export then fetches the files beside the weights from it rather than
    /// read a local path spelled like the URL.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The files beside the weights ([`SideFiles`]), each read once within its bound: from
    /// [`Model::config_dir`], or for a remote model opened without a cache directory fetched
    /// from its URL prefix (small whole-object reads), never read as the local path the URL
    /// would spell (`http:/host/...`).
    pub(crate) fn side_files(&self) -> Result<SideFiles> {
        let text = self.config_dir.to_str().unwrap_or_default();
        match crate::remote::url_of(text) {
            Some(url) => Model::fetch_side_files(url, &self.options),
            None => Ok(SideFiles::read(
                &self.config_dir,
                self.options.max_json_size,
            )),
        }
    }

    /// The files of the model, in open order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.store.files().iter().map(ShardFile::path)
    }

    pub(crate) fn entry(&self, name: &str) -> Result<&Entry> {
        self.index_of(name).map(|i| &self.entries[i])
    }

    pub(crate) fn index_of(&self, name: &str) -> Result<usize> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .map_err(|_| Error::NotFound(format!("tensor \"{name}\" is not in the model")))
    }

    pub(crate) fn entry_at(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    pub(crate) fn file_format(&self, file: usize) -> Format {
        self.store.files()[file].format()
    }

    fn converted_cache(&self) -> MutexGuard<'_, HashMap<(usize, Dtype), Tensor>> {
        self.converted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
