//! The model index: every tensor of a directory or file list by name, its metadata, and the
//! caches of converted tensors. Opening reads headers only (`open.rs`); the bytes come from the
//! model's `Store` on first `get`.

mod open;
mod remote;

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::file::{Format, ShardFile};
use crate::nulstr::NulString;
use crate::options::Options;
use crate::shape::Shape;
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
    metadata: BTreeMap<NulString, NulString>,
    options: Options,
    /// Where `config.json` and the tokenizer files are: the directory opened, or the first
    /// file's directory.
    config_dir: PathBuf,
    converted: Mutex<HashMap<(usize, Dtype), Tensor>>,
    /// What layers above build from tensors and keep (MLX arrays, feature `mlx`), by tensor
    /// index, dtype and type. The model does not know those types; `release_all` drops them.
    attached: Mutex<Attached>,
}

/// Values kept for a tensor by a layer above the model, keyed by tensor index, dtype and type.
pub(crate) type Attached = HashMap<(usize, Dtype, TypeId), Box<dyn Any + Send + Sync>>;

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

    /// A `__metadata__` value of any file (the first file that has the key wins).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(NulString::as_str)
    }

    pub(crate) fn metadata_value(&self, key: &str) -> Option<&NulString> {
        self.metadata.get(key)
    }

    pub(crate) fn metadata_key_at(&self, i: usize) -> Option<&NulString> {
        self.metadata.keys().nth(i)
    }

    /// All `__metadata__` pairs, sorted by key.
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

    /// Materialises every tensor, like ollama's `ModelWeights.Load`: with `None` (as stored)
    /// every file is mapped (and tensors gathered by transforms are built); with a float dtype
    /// every floating-point tensor of another dtype is converted, tensor by tensor (integer and
    /// boolean tensors, and floats without a conversion such as F4, stay as stored). A dtype
    /// outside [`convert::WHOLE_MODEL_TARGETS`] (an integer, F4, ...) is refused.
    /// Later gets of that dtype are served from memory until [`Model::release_all`].
    ///
    /// `progress(done, total, name)` runs after each tensor; returning `false` stops the load
    /// with [`Error::Cancelled`] (tensors converted so far stay cached).
    pub fn load(
        &self,
        dtype: Option<Dtype>,
        progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        if let Some(target) = dtype {
            convert::check_whole_model_target(target)?;
        }
        self.load_each(
            |stored| convert::whole_model_dtype(stored, dtype),
            |index, e, target, zero_copy| {
                if zero_copy {
                    self.view(e)?;
                } else if !self.converted_cache().contains_key(&(index, target)) {
                    let t = self.materialize(e, target, true)?;
                    self.converted_cache().insert((index, target), t);
                }
                Ok(())
            },
            progress,
        )
    }

    /// The loop of every whole-model load ([`Model::load`], and `load_mlx` of the `mlx`
    /// feature): picks each tensor's dtype with `target(stored dtype)`, refuses a load whose
    /// new memory would pass `max_load_bytes`, then runs `step(index, entry, dtype, zero_copy)`
    /// for every tensor in name order (`zero_copy`: the stored bytes are served in place) and
    /// `progress(done, total, name)` after it; `false` stops with [`Error::Cancelled`].
    pub(crate) fn load_each(
        &self,
        target: impl Fn(Dtype) -> Dtype,
        mut step: impl FnMut(usize, &Entry, Dtype, bool) -> Result<()>,
        mut progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        let total = self.entries.len();
        let plan: Vec<(Dtype, bool)> = self
            .entries
            .iter()
            .map(|e| {
                let to = target(e.dtype);
                (to, to == e.dtype && self.store.zero_copy(&e.source))
            })
            .collect();
        let new_bytes: u64 = self
            .entries
            .iter()
            .zip(&plan)
            .filter(|(_, (_, zero_copy))| !zero_copy)
            .map(|(e, (to, _))| {
                let elements: u64 = e.shape.iter().product();
                to.bytes_for(elements).unwrap_or(e.nbytes)
            })
            .sum();
        if new_bytes > self.options.max_load_bytes {
            return Err(Error::Limit(format!(
                "load would materialise {new_bytes} bytes, over the limit of {} bytes",
                self.options.max_load_bytes
            )));
        }
        for (index, (e, &(to, zero_copy))) in self.entries.iter().zip(&plan).enumerate() {
            step(index, e, to, zero_copy)?;
            if !progress(index + 1, total, e.name.as_str()) {
                return Err(Error::Cancelled(format!(
                    "load cancelled after tensor \"{}\"",
                    e.name
                )));
            }
        }
        Ok(())
    }

    /// Writes entry `e` as `dtype` into `dst` (exactly its size in `dtype`) through the store:
    /// gathered, read and converted by all threads. `drop_source` lets converted source pages
    /// go, as a whole-model load does.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn materialize_into(
        &self,
        e: &Entry,
        dtype: Dtype,
        dst: &mut [u8],
        drop_source: bool,
    ) -> Result<()> {
        let name = e.name.as_str();
        self.store
            .materialize_into(name, &e.source, &e.shape, e.dtype, dtype, dst, drop_source)
    }

    /// Lets this process's resident copy of entry `e`'s mapped source pages go (the page cache
    /// keeps them): for a whole-model load once the bytes were copied elsewhere.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn release_source(&self, e: &Entry) {
        self.store.release_pages(&e.source);
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
    /// read once with parallel positioned reads, which fills the page cache.
    /// `progress(done, total)` counts bytes; returning false stops with [`Error::Cancelled`].
    pub fn prefetch(
        &self,
        names: Option<&[&str]>,
        mut progress: impl FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let entries: Vec<&Entry> = match names {
            None => self.entries.iter().collect(),
            Some(list) => list.iter().map(|n| self.entry(n)).collect::<Result<_>>()?,
        };
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

    /// What a layer above kept for tensor `index` as `dtype` with type `T`, seen through `f`.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attached_get<T: Any + Send + Sync, R>(
        &self,
        index: usize,
        dtype: Dtype,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let attached = self.attached();
        let value = attached.get(&(index, dtype, TypeId::of::<T>()))?;
        value.downcast_ref::<T>().map(f)
    }

    /// Keeps `value` for tensor `index` as `dtype`, unless another thread kept one first;
    /// returns `f` of the one kept (always `Some`: the key holds the value's type).
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attach<T: Any + Send + Sync, R>(
        &self,
        index: usize,
        dtype: Dtype,
        value: T,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let mut attached = self.attached();
        let kept = attached
            .entry((index, dtype, TypeId::of::<T>()))
            .or_insert_with(|| Box::new(value));
        kept.downcast_ref::<T>().map(f)
    }

    /// How many values of type `T` layers above keep.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attached_count<T: Any>(&self) -> usize {
        let id = TypeId::of::<T>();
        self.attached().keys().filter(|k| k.2 == id).count()
    }

    fn attached(&self) -> MutexGuard<'_, Attached> {
        self.attached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The options the model was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The directory holding the model's `config.json` and tokenizer files: the directory
    /// opened, or the directory of the first file given.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The path MLX arrays are filled by writes exactly what `get_as` returns, for every source
    /// kind (contiguous, strided PyTorch views, a stack gathered from two tensors), mapped and
    /// read, and refuses a buffer of the wrong length.
    #[test]
    fn materialize_into_writes_what_get_as_returns() {
        let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/views.pt");
        for read_mode in [false, true] {
            let mut options = Options {
                read_mode,
                ..Options::default()
            };
            options
                .add_stack(vec!["base".into(), "tied".into()], "pair")
                .unwrap();
            let model = Model::open_files(&[&views], &options).unwrap();
            assert!(model.entries.iter().any(|e| e.name.as_str() == "pair"));
            for e in &model.entries {
                for to in [e.dtype, Dtype::F32, Dtype::BF16] {
                    let want = model.get_as(e.name.as_str(), to).unwrap();
                    let mut got = vec![0u8; want.data().len()];
                    for drop_source in [false, true] {
                        model
                            .materialize_into(e, to, &mut got, drop_source)
                            .unwrap();
                        assert_eq!(got, want.data(), "{} as {to}, read {read_mode}", e.name);
                    }
                    let mut short = vec![0u8; want.data().len() + 1];
                    let err = model
                        .materialize_into(e, to, &mut short, false)
                        .unwrap_err();
                    assert!(err.to_string().contains(e.name.as_str()), "{err}");
                }
            }
        }
    }
}
