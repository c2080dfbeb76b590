//! The model index: every tensor of a directory or file list by name, its metadata, and the
//! caches of converted tensors. Opening reads headers only; data is mapped on first `get`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::buffer::AlignedBuf;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::file::{Format, ShardFile};
use crate::header::Header;
use crate::index::{ShardIndex, INDEX_FILE};
use crate::nulstr::NulString;
use crate::options::Options;
use crate::shape::Shape;
use crate::source::item::Item;
use crate::source::{Piece, Segment, Source};
use crate::tensor::Tensor;
use crate::transform;
use crate::{convert, materialize};

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
    files: Vec<ShardFile>,
    entries: Vec<Entry>,
    metadata: BTreeMap<NulString, NulString>,
    options: Options,
    converted: Mutex<HashMap<(usize, Dtype), Tensor>>,
    /// MLX arrays (feature `mlx`, methods in `src/mlx/model_ext.rs`).
    #[cfg(feature = "mlx")]
    pub(crate) mlx_cache: crate::mlx::MlxCache,
}

impl Model {
    /// Opens every `*.safetensors` file of `dir` in sorted order, or the shards named by its
    /// `model.safetensors.index.json` when that exists (and checks they agree with it).
    pub fn open_dir(dir: impl AsRef<Path>, options: &Options) -> Result<Model> {
        options.validate()?;
        let dir = dir.as_ref();
        let index_path = dir.join(INDEX_FILE);
        if index_path.is_file() {
            return Model::open_indexed(dir, &index_path, options);
        }
        let listing = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?;
        let mut paths = Vec::new();
        for item in listing {
            let item = item.map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?;
            let path = item.path();
            if path.extension().is_some_and(|x| x == "safetensors") && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            // Like ollama's parseTensors: PyTorch checkpoints when there is no safetensors file.
            let names: Vec<String> = std::fs::read_dir(dir)
                .map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?
                .filter_map(|item| item.ok()?.file_name().into_string().ok())
                .collect();
            paths = crate::torch::dir_patterns(&names)
                .iter()
                .map(|n| dir.join(n))
                .collect();
        }
        if paths.is_empty() {
            return Err(Error::NotFound(format!(
                "{}: no *.safetensors, pytorch_model*.bin or consolidated.*.pth files in this directory",
                dir.display()
            )));
        }
        paths.sort();
        Model::open_files(&paths, options)
    }

    /// Opens an explicit list of files (for blob stores without a directory layout):
    /// safetensors, or PyTorch zip checkpoints (`.bin`, `.pth`, `.pt`) recognised by name and
    /// content.
    pub fn open_files<P: AsRef<Path>>(paths: &[P], options: &Options) -> Result<Model> {
        options.validate()?;
        if paths.is_empty() {
            return Err(Error::InvalidArgument("no files given".into()));
        }
        // Headers are parsed in parallel: a model may have a thousand shards.
        let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
        let listed = TensorCount::new(options.max_tensors);
        let opened = crate::parallel::map(&paths, options.effective_threads(), |&p| {
            listed.check(p, 0)?;
            if crate::torch::is_torch_checkpoint(p) {
                let limits = crate::torch::TorchLimits {
                    max_view_expansion: options.max_view_expansion,
                    ..Default::default()
                };
                let (file, checkpoint) = ShardFile::open_torch(p, &limits)?;
                listed.check(p, checkpoint.tensors.len())?;
                Ok((file, Contents::Torch(checkpoint)))
            } else {
                let (file, header) = ShardFile::open(p, options.max_header_size)?;
                listed.check(p, header.tensors.len())?;
                Ok((file, Contents::Safetensors(header)))
            }
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        // Files given one by one: config.json (for architectures) sits beside the first.
        let config_dir = paths[0].parent().unwrap_or(Path::new("."));
        Model::build(opened, options, config_dir)
    }

    fn open_indexed(dir: &Path, index_path: &Path, options: &Options) -> Result<Model> {
        let shown = index_path.display().to_string();
        let json = crate::file::read_limited(index_path, options.max_json_size, "shard index")?;
        let index = ShardIndex::parse(&shown, &json)?;
        let paths: Vec<PathBuf> = index.shards().iter().map(|s| dir.join(s)).collect();
        let listed = TensorCount::new(options.max_tensors);
        let opened = crate::parallel::map(&paths, options.effective_threads(), |p| {
            listed.check(p, 0)?;
            let (file, header) = ShardFile::open(p, options.max_header_size)?;
            listed.check(p, header.tensors.len())?;
            Ok((file, header))
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        check_agreement(&shown, &index, &opened)?;
        let opened: Vec<_> = opened
            .into_iter()
            .map(|(f, h)| (f, Contents::Safetensors(h)))
            .collect();
        Model::build(opened, options, dir)
    }

    fn build(
        opened: Vec<(ShardFile, Contents)>,
        options: &Options,
        config_dir: &Path,
    ) -> Result<Model> {
        let mut files = Vec::with_capacity(opened.len());
        let mut items = Vec::new();
        let mut metadata = BTreeMap::new();
        for (file_index, (file, contents)) in opened.into_iter().enumerate() {
            match contents {
                Contents::Safetensors(header) => {
                    for (key, value) in header.metadata {
                        metadata
                            .entry(NulString::new(&key))
                            .or_insert_with(|| NulString::new(&value));
                    }
                    items.extend(header.tensors.into_iter().map(|t| Item {
                        original: None,
                        name: t.name,
                        dtype: t.dtype,
                        shape: t.shape,
                        source: Source::Contiguous(Segment {
                            file: file_index,
                            offset: file.data_start() + t.start,
                            len: t.end - t.start,
                        }),
                    }));
                }
                Contents::Torch(checkpoint) => {
                    items.extend(checkpoint.tensors.into_iter().map(|t| Item {
                        original: None,
                        name: t.name.clone(),
                        dtype: t.dtype,
                        shape: Shape::from_slice(&t.shape),
                        source: Source::view(file_index, t),
                    }));
                }
            }
            files.push(file);
        }
        // Safetensors headers come sorted by name: one file needs no sort, shards only a merge.
        if !items.is_sorted_by(|a, b| a.name <= b.name) {
            items.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(w) = items.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::Duplicate(format!(
                "tensor \"{}\" is in both {} and {}",
                w[0].name,
                files[w[0].source.first().file].display(),
                files[w[1].source.first().file].display()
            )));
        }
        let items = transform::apply(items, options, config_dir)?;
        for item in &items {
            check_shape(item, &files)?;
        }
        if items.len() > options.max_tensors {
            return Err(Error::Limit(format!(
                "the model lists {} tensors, over the limit of {}",
                items.len(),
                options.max_tensors
            )));
        }
        let entries = items
            .into_iter()
            .map(|i| {
                let first = i.source.first();
                Entry {
                    original: i.original.map(NulString::from),
                    name: NulString::from(i.name),
                    dtype: i.dtype,
                    shape: i.shape,
                    nbytes: i.source.len(),
                    file: first.file,
                    offset: first.offset,
                    source: i.source,
                }
            })
            .collect();
        let model = Model {
            files,
            entries,
            metadata,
            options: options.clone(),
            converted: Mutex::new(HashMap::new()),
            #[cfg(feature = "mlx")]
            mlx_cache: crate::mlx::MlxCache::default(),
        };
        if options.prefetch && !options.read_mode {
            model.prefetch_in_background()?;
        }
        Ok(model)
    }

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
            file: self.files[e.file].path(),
            data_offset: e.offset,
            format: self.file_format(e.file),
            original_nul: e.original_name(),
            file_display: self.files[e.file].display(),
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
        mut progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        if let Some(target) = dtype {
            convert::check_whole_model_target(target)?;
        }
        let total = self.entries.len();
        let plan: Vec<(Dtype, bool)> = self
            .entries
            .iter()
            .map(|e| {
                let target = convert::whole_model_dtype(e.dtype, dtype);
                let zero_copy = target == e.dtype
                    && !self.options.read_mode
                    && matches!(e.source, Source::Contiguous(_));
                (target, zero_copy)
            })
            .collect();
        let new_bytes: u64 = self
            .entries
            .iter()
            .zip(&plan)
            .filter(|(_, (_, zero_copy))| !zero_copy)
            .map(|(e, (target, _))| {
                let elements: u64 = e.shape.iter().product();
                target.bytes_for(elements).unwrap_or(e.nbytes)
            })
            .sum();
        if new_bytes > self.options.max_load_bytes {
            return Err(Error::Limit(format!(
                "load would materialise {new_bytes} bytes, over the limit of {} bytes",
                self.options.max_load_bytes
            )));
        }
        for (index, (e, &(target, zero_copy))) in self.entries.iter().zip(&plan).enumerate() {
            if zero_copy {
                self.view(e)?;
            } else if !self.converted_cache().contains_key(&(index, target)) {
                let t = self.materialize(e, target, true)?;
                self.converted_cache().insert((index, target), t);
            }
            if !progress(index + 1, total, e.name.as_str()) {
                return Err(Error::Cancelled(format!(
                    "load cancelled after tensor \"{}\"",
                    e.name
                )));
            }
        }
        Ok(())
    }

    /// New memory holding entry `e` as `dtype`: converted from its mapping, or gathered from
    /// its segments. `drop_source` lets converted source pages go (see `materialize`).
    fn materialize(&self, e: &Entry, dtype: Dtype, drop_source: bool) -> Result<Tensor> {
        self.build_tensor(
            e.name.as_str(),
            e.dtype,
            &e.shape,
            &e.source,
            dtype,
            drop_source,
        )
    }

    /// New memory holding `source` (elements of `stored`, dimensions `shape`) as `dtype`.
    fn build_tensor(
        &self,
        name: &str,
        stored: Dtype,
        shape: &Shape,
        source: &Source,
        dtype: Dtype,
        drop_source: bool,
    ) -> Result<Tensor> {
        let Some(segments) = source.segments() else {
            let native = self.gather_pieces(name, stored, shape, &source.pieces())?;
            return self.convert_owned(name, &native, dtype);
        };
        if self.options.read_mode {
            let native = self.read_tensor(name, stored, shape, &segments)?;
            return self.convert_owned(name, &native, dtype);
        }
        let mut maps: Vec<(usize, Arc<memmap2::Mmap>)> = Vec::new();
        let mut parts = Vec::with_capacity(segments.len());
        for seg in &segments {
            let map = match maps.iter().find(|(f, _)| *f == seg.file) {
                Some((_, m)) => Arc::clone(m),
                None => {
                    let m = self.files[seg.file].mapping()?;
                    self.files[seg.file].check(self.options.check_interval)?;
                    maps.push((seg.file, Arc::clone(&m)));
                    m
                }
            };
            let (offset, len) = self.checked_range(&map, *seg, name)?;
            parts.push(materialize::Part {
                map,
                range: offset..offset + len,
            });
        }
        let threads = self.options.effective_threads();
        let buf = materialize::convert_parts(&parts, stored, dtype, threads, drop_source, name)?;
        Ok(Tensor::owned(dtype, shape.clone(), Arc::new(buf)))
    }

    /// Reads `segments` (read mode) into new memory, in the stored dtype.
    fn read_tensor(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &Shape,
        segments: &[Segment],
    ) -> Result<Tensor> {
        let total: u64 = segments.iter().map(|s| s.len).sum();
        let len = usize::try_from(total)
            .map_err(|_| Error::OutOfMemory(format!("tensor \"{name}\" does not fit in memory")))?;
        let mut buf = AlignedBuf::new_uninit(len).map_err(|e| {
            Error::OutOfMemory(format!(
                "tensor \"{name}\": cannot allocate {len} bytes: {e}"
            ))
        })?;
        let threads = self.options.effective_threads();
        let mut at = 0usize;
        for seg in segments {
            let file = &self.files[seg.file];
            file.check(self.options.check_interval)?;
            if seg
                .offset
                .checked_add(seg.len)
                .is_none_or(|end| end > file.size())
            {
                return Err(Error::Io {
                    path: file.display().to_string(),
                    message: format!("tensor \"{name}\": data lies outside the file"),
                });
            }
            let n = seg.len as usize;
            file.read_at(seg.offset, &mut buf.as_mut_slice()[at..at + n], threads)?;
            at += n;
        }
        Ok(Tensor::owned(dtype, shape.clone(), Arc::new(buf)))
    }

    /// `native` converted to `dtype` in new memory (itself when the dtype already matches).
    fn convert_owned(&self, name: &str, native: &Tensor, dtype: Dtype) -> Result<Tensor> {
        if native.dtype() == dtype {
            return Ok(native.clone());
        }
        let threads = self.options.effective_threads();
        let buf = convert::convert_to_new(native.data(), native.dtype(), dtype, threads)
            .map_err(|e| e.in_tensor(name))?;
        let shape = Shape::from_slice(native.shape());
        Ok(Tensor::owned(dtype, shape, Arc::new(buf)))
    }

    /// New memory holding `pieces` (byte ranges and strided views) in the stored dtype.
    fn gather_pieces(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &Shape,
        pieces: &[Piece],
    ) -> Result<Tensor> {
        let total = pieces
            .iter()
            .try_fold(0u64, |acc, p| acc.checked_add(p.len()));
        let len = total.and_then(|t| usize::try_from(t).ok()).ok_or_else(|| {
            Error::OutOfMemory(format!("tensor \"{name}\" does not fit in memory"))
        })?;
        let mut buf = AlignedBuf::new_uninit(len).map_err(|e| {
            Error::OutOfMemory(format!(
                "tensor \"{name}\": cannot allocate {len} bytes: {e}"
            ))
        })?;
        let mut at = 0usize;
        for piece in pieces {
            // Each piece's length fits: their sum does.
            let n = piece.len() as usize;
            let out = &mut buf.as_mut_slice()[at..at + n];
            match piece {
                Piece::Bytes(seg) => {
                    let bytes = Shape::from_slice(&[seg.len]);
                    let part = self.view_segment(name, Dtype::U8, bytes, *seg)?;
                    out.copy_from_slice(part.data());
                }
                Piece::View { file, view } => self.gather_view(*file, view, out)?,
            }
            at += n;
        }
        Ok(Tensor::owned(dtype, shape.clone(), Arc::new(buf)))
    }

    /// Copies the strided view `view` of `file` densely into `out` (`view.nbytes()` long).
    fn gather_view(
        &self,
        file: usize,
        view: &crate::torch::TorchTensor,
        out: &mut [u8],
    ) -> Result<()> {
        let shown = || self.files[file].display().to_string();
        self.files[file].check(self.options.check_interval)?;
        if self.options.read_mode {
            // Only the storage record is read; the view is then relative to it.
            let len = usize::try_from(view.storage_len).map_err(|_| {
                Error::OutOfMemory(format!(
                    "{}: storage of \"{}\" too large",
                    shown(),
                    view.name
                ))
            })?;
            let mut storage = vec![0u8; len];
            self.files[file].read_at(
                view.storage_start,
                &mut storage,
                self.options.effective_threads(),
            )?;
            let mut relative = view.clone();
            relative.data_offset = relative.data_offset.saturating_sub(view.storage_start);
            relative.storage_start = 0;
            crate::torch::gather_strided(&storage, &relative, out)
        } else {
            let map = self.files[file].mapping()?;
            crate::torch::gather_strided(&map, view, out)
        }
        .map_err(|e| Error::Format(format!("{}: {e}", shown())))
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
            return self.build_tensor(
                name,
                e.dtype,
                &shape,
                &Source::from_pieces(Vec::new()),
                target,
                false,
            );
        }
        // The open-time shape check bounds every product here by the tensor's byte length.
        let mut pieces = Vec::new();
        for o in 0..outer {
            let at = (o * dim + start) * inner_bytes;
            e.source.push_range(at, run, name, &mut pieces)?;
        }
        let source = Source::from_pieces(pieces);
        match source {
            Source::Contiguous(seg) if target == e.dtype => {
                self.view_segment(name, e.dtype, shape, seg)
            }
            _ => self.build_tensor(name, e.dtype, &shape, &source, target, false),
        }
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
        let threads = self.options.effective_threads();
        let mut ranges = Vec::new();
        let mut owners = Vec::new();
        let mut guards: Vec<(usize, Arc<crate::identity::Guard>)> = Vec::new();
        for e in entries {
            let segments: Vec<Segment> = e
                .source
                .pieces()
                .iter()
                .map(|p| match p {
                    Piece::Bytes(seg) => *seg,
                    Piece::View { file, view } => Segment {
                        file: *file,
                        offset: view.storage_start,
                        len: view.storage_len,
                    },
                })
                .collect();
            for seg in segments {
                if self.options.read_mode {
                    self.read_tensor(e.name.as_str(), e.dtype, &e.shape, &[seg])?;
                    continue;
                }
                let guard = match guards.iter().find(|(f, _)| *f == seg.file) {
                    Some((_, g)) => Arc::clone(g),
                    None => {
                        // The file is checked before anything of it is touched.
                        let g = Arc::new(self.files[seg.file].guard()?);
                        guards.push((seg.file, Arc::clone(&g)));
                        g
                    }
                };
                let map = self.files[seg.file].mapping()?;
                let (offset, len) = self.checked_range(&map, seg, e.name.as_str())?;
                ranges.push((map, offset..offset + len, guard));
                owners.push(seg.file);
            }
        }
        match crate::prefetch::touch(&ranges, threads, &mut progress) {
            crate::prefetch::Outcome::Done => Ok(()),
            crate::prefetch::Outcome::Cancelled => {
                Err(Error::Cancelled("prefetch cancelled".into()))
            }
            crate::prefetch::Outcome::Changed(k) => Err(Error::Io {
                path: self.files[owners[k]].display().to_string(),
                message: "file changed since open: prefetch stopped".into(),
            }),
        }
    }

    /// Starts touching every tensor's pages on a background thread (the `prefetch` option).
    fn prefetch_in_background(&self) -> Result<()> {
        let mut ranges = Vec::new();
        for f in &self.files {
            let guard = Arc::new(f.guard()?);
            let map = f.mapping()?;
            let start = (f.data_start() as usize).min(map.len());
            let end = map.len();
            ranges.push((map, start..end, guard));
        }
        crate::prefetch::spawn_background(ranges, self.options.effective_threads());
        Ok(())
    }

    /// Drops every cached tensor and every file mapping. The index stays: a later `get` maps
    /// again. Tensors already handed out stay valid.
    pub fn release_all(&self) {
        self.converted_cache().clear();
        #[cfg(feature = "mlx")]
        self.mlx_cache.clear();
        for f in &self.files {
            f.release();
        }
    }

    /// The options the model was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The files of the model, in open order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(ShardFile::path)
    }

    pub(crate) fn entry(&self, name: &str) -> Result<&Entry> {
        self.index_of(name).map(|i| &self.entries[i])
    }

    fn index_of(&self, name: &str) -> Result<usize> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .map_err(|_| Error::NotFound(format!("tensor \"{name}\" is not in the model")))
    }

    pub(crate) fn entry_at(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    pub(crate) fn file_format(&self, file: usize) -> Format {
        self.files[file].format()
    }

    fn view(&self, e: &Entry) -> Result<Tensor> {
        let seg = Segment {
            file: e.file,
            offset: e.offset,
            len: e.nbytes,
        };
        self.view_segment(e.name.as_str(), e.dtype, e.shape.clone(), seg)
    }

    /// A zero-copy view of one byte range.
    fn view_segment(&self, name: &str, dtype: Dtype, shape: Shape, seg: Segment) -> Result<Tensor> {
        let file = &self.files[seg.file];
        if self.options.read_mode {
            return self.read_tensor(name, dtype, &shape, std::slice::from_ref(&seg));
        }
        let map = file.mapping()?;
        file.check(self.options.check_interval)?;
        let (offset, len) = self.checked_range(&map, seg, name)?;
        Ok(Tensor::mapped(dtype, shape, map, offset, len))
    }

    /// The segment as a `usize` range inside `map`, or an I/O error naming file and tensor.
    fn checked_range(
        &self,
        map: &memmap2::Mmap,
        seg: Segment,
        name: &str,
    ) -> Result<(usize, usize)> {
        mapped_range(map, seg.offset, seg.len).ok_or_else(|| Error::Io {
            path: self.files[seg.file].display().to_string(),
            message: format!("tensor \"{name}\": data lies outside the mapped file"),
        })
    }

    fn converted_cache(&self) -> MutexGuard<'_, HashMap<(usize, Dtype), Tensor>> {
        self.converted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The invariant of every listed tensor: `product(shape) × dtype size == nbytes`, in
/// overflow-checked arithmetic (a transform or a file that breaks it is refused at open).
fn check_shape(item: &Item, files: &[ShardFile]) -> Result<()> {
    let elements = item
        .shape
        .iter()
        .try_fold(1u64, |acc, &n| acc.checked_mul(n));
    let want = elements.and_then(|n| item.dtype.bytes_for(n));
    let have = item.source.checked_len();
    if want.is_some() && want == have {
        return Ok(());
    }
    let file = files
        .get(item.source.first().file)
        .map_or_else(String::new, |f| f.display().to_string());
    let want = want.map_or("more than 2^64".into(), |w| w.to_string());
    let have = have.map_or("more than 2^64".into(), |h| h.to_string());
    Err(Error::format(
        file,
        Some(&item.name),
        format!(
            "shape {:?} of {} needs {want} bytes but its data is {have} bytes",
            item.shape, item.dtype
        ),
    ))
}

/// Tensors listed by the files parsed so far, against `max_tensors`: checked as each header is
/// parsed, so a model over the limit stops before its other headers are read.
struct TensorCount {
    seen: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl TensorCount {
    fn new(max: usize) -> TensorCount {
        TensorCount {
            seen: std::sync::atomic::AtomicUsize::new(0),
            max,
        }
    }

    /// Adds `n` tensors of `path`; an error once the total is over the limit.
    fn check(&self, path: &Path, n: usize) -> Result<()> {
        use std::sync::atomic::Ordering;
        let total = self.seen.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if total > self.max {
            return Err(Error::Limit(format!(
                "{}: the model lists {total} tensors, over the limit of {} (counted as each \
                 file's header is read)",
                path.display(),
                self.max
            )));
        }
        Ok(())
    }
}

/// What one opened file holds.
enum Contents {
    Safetensors(Header),
    Torch(crate::torch::Checkpoint),
}

/// `[offset, offset + len)` as `usize`s when it lies inside `map`.
fn mapped_range(map: &memmap2::Mmap, offset: u64, len: u64) -> Option<(usize, usize)> {
    let offset = usize::try_from(offset).ok()?;
    let len = usize::try_from(len).ok()?;
    (offset.checked_add(len)? <= map.len()).then_some((offset, len))
}

/// Every tensor the index names must be in its shard, and every shard tensor must be named there.
fn check_agreement(
    index_path: &str,
    index: &ShardIndex,
    opened: &[(ShardFile, Header)],
) -> Result<()> {
    let shards = index.shards();
    for (shard_name, (file, header)) in shards.iter().zip(opened) {
        for t in &header.tensors {
            match index.weight_map.get(&t.name) {
                Some(listed) if listed == shard_name => {}
                Some(listed) => {
                    return Err(Error::format(
                        file.display(),
                        Some(&t.name),
                        format!("{index_path} places this tensor in \"{listed}\""),
                    ))
                }
                None => {
                    return Err(Error::format(
                        file.display(),
                        Some(&t.name),
                        format!("tensor is missing from the weight_map of {index_path}"),
                    ))
                }
            }
        }
    }
    let total: usize = opened.iter().map(|(_, h)| h.tensors.len()).sum();
    if total != index.weight_map.len() {
        // Some listed tensor was not found in its shard: name the first.
        for (name, shard) in &index.weight_map {
            let pos = shards.iter().position(|s| s == shard);
            let found = pos.is_some_and(|p| opened[p].1.tensors.iter().any(|t| &t.name == name));
            if !found {
                return Err(Error::format(
                    index_path,
                    Some(name),
                    format!("listed in shard \"{shard}\" but that file's header does not have it"),
                ));
            }
        }
    }
    Ok(())
}
