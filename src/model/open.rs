//! Opening a model: listing its files, parsing their headers in parallel, checking a shard
//! index against them, and building the index through the transforms.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Entry, Model};
use crate::error::{Error, Result};
use crate::file::ShardFile;
use crate::gguf_format::{check_set, set_paths, ShardInfo};
use crate::header::Header;
use crate::index::{ShardIndex, INDEX_FILE};
use crate::nulstr::NulString;
use crate::options::Options;
use crate::shape::Shape;
use crate::side_files::SideFiles;
use crate::source::item::Item;
use crate::source::{Segment, Source};
use crate::store::Store;
use crate::transform;

impl Model {
    /// Opens every `*.safetensors` file of `dir` in sorted order, or the shards named by its
    /// `model.safetensors.index.json` when that exists (and checks they agree with it); with
    /// neither, its `*.gguf` files (split sets checked whole), else its PyTorch checkpoints.
    ///
    /// `dir` may be a URL (`s3://`, `gs://`, `az://`, `http(s)://`, settings in [`crate::RemoteOptions`]):
    /// its prefix is listed with the same rules (a plain HTTP server cannot list: give a GGUF
    /// file's URL to [`Model::open_files`]).
    pub fn open_dir(dir: impl AsRef<Path>, options: &Options) -> Result<Model> {
        options.validate()?;
        let dir = dir.as_ref();
        if let Some(url) = dir.to_str().and_then(crate::remote::url_of) {
            return Model::open_remote_dir(url, options);
        }
        let index_path = dir.join(INDEX_FILE);
        if index_path.is_file() {
            return Model::open_indexed(dir, &index_path, options);
        }
        let mut paths = list_with_extension(dir, "safetensors")?;
        if paths.is_empty() {
            // No safetensors file: the GGUF files of the directory.
            paths = list_with_extension(dir, "gguf")?;
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
                "{}: no *.safetensors, *.gguf, pytorch_model*.bin or consolidated.*.pth files in this directory",
                dir.display()
            )));
        }
        paths.sort();
        Model::open_files(&paths, options)
    }

    /// Opens an explicit list of files (for blob stores without a directory layout):
    /// safetensors, GGUF (recognised by its magic), or PyTorch zip checkpoints (`.bin`, `.pth`,
    /// `.pt`) recognised by name and content. A GGUF shard of a split set brings every shard
    /// of its set, found by name beside it. Files may be URLs of safetensors or GGUF files
    /// (all of them, then), read by range; a remote GGUF header is read in growing pieces up
    /// to [`Options::max_header_size`].
    pub fn open_files<P: AsRef<Path>>(paths: &[P], options: &Options) -> Result<Model> {
        Model::open_files_with(paths, options, None)
    }

    /// [`Model::open_files`] with the side files an architecture reads given as `side` (read
    /// once already, or fetched from a remote prefix) rather than read beside the files.
    pub(crate) fn open_files_with<P: AsRef<Path>>(
        paths: &[P],
        options: &Options,
        side: Option<Arc<SideFiles>>,
    ) -> Result<Model> {
        options.validate()?;
        if paths.is_empty() {
            return Err(Error::InvalidArgument("no files given".into()));
        }
        let urls: Vec<&str> = paths
            .iter()
            .filter_map(|p| p.as_ref().to_str().and_then(crate::remote::url_of))
            .collect();
        if !urls.is_empty() {
            return Model::open_remote_files(&urls, paths.len(), options, side);
        }
        // Headers are parsed in parallel: a model may have a thousand shards.
        let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
        let listed = TensorCount::new(options.max_tensors);
        let opened = crate::parallel::map(&paths, options.effective_threads(), |&p| {
            listed.check(p, 0)?;
            if crate::gguf_format::is_gguf_file(p) {
                let (file, gguf) = ShardFile::open_gguf(p)?;
                listed.check(p, gguf.tensors.len())?;
                Ok((file, Contents::Gguf(gguf)))
            } else if crate::torch::is_torch_checkpoint(p) {
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
        let names = paths.iter().map(|p| p.to_path_buf()).collect();
        let opened = complete_gguf_sets(opened, names, |missing| {
            crate::parallel::map(missing, options.effective_threads(), |p| {
                let (file, gguf) = ShardFile::open_gguf(p)?;
                listed.check(p, gguf.tensors.len())?;
                Ok((file, Contents::Gguf(gguf)))
            })
            .into_iter()
            .collect()
        })?;
        // Files given one by one: config.json (for architectures) sits beside the first.
        let config_dir = paths[0].parent().unwrap_or(Path::new("."));
        Model::build(opened, options, config_dir, side)
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
        Model::build(opened, options, dir, None)
    }

    pub(super) fn build(
        opened: Vec<(ShardFile, Contents)>,
        options: &Options,
        config_dir: &Path,
        side: Option<Arc<SideFiles>>,
    ) -> Result<Model> {
        let mut files = Vec::with_capacity(opened.len());
        let mut items = Vec::new();
        let mut metadata = BTreeMap::new();
        let mut typed = BTreeMap::new();
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
                Contents::Gguf(gguf) => {
                    for (key, value) in gguf.metadata.into_pairs() {
                        if !metadata.contains_key(key.as_str()) {
                            let text = NulString::from(value_text(&value));
                            metadata.insert(NulString::new(&key), text);
                            typed.insert(key, value);
                        }
                    }
                    for t in gguf.tensors {
                        // The reader refuses a type it has no size of, and Dtype sizes them all.
                        let dtype = t.ty.as_dtype().ok_or_else(|| {
                            Error::format(file.display(), Some(&t.name), "unknown ggml type")
                        })?;
                        items.push(Item {
                            original: None,
                            dtype,
                            shape: Shape::from_slice(&t.shape),
                            name: t.name,
                            source: Source::Contiguous(Segment {
                                file: file_index,
                                offset: t.data_offset,
                                len: t.nbytes,
                            }),
                        });
                    }
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
        let items = transform::apply(items, options, config_dir, side)?;
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
            store: Store::new(files, options),
            entries,
            metadata,
            gguf_metadata: typed,
            options: options.clone(),
            config_dir: config_dir.to_path_buf(),
            converted: Mutex::new(HashMap::new()),
            attached: Mutex::new(HashMap::new()),
        };
        if options.prefetch {
            model.store.prefetch_in_background()?;
        }
        Ok(model)
    }
}

/// The regular files of `dir` whose names end in `.EXT`.
fn list_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?;
    let mut paths = Vec::new();
    for item in listing {
        let item = item.map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?;
        let path = item.path();
        if path.extension().is_some_and(|x| x == ext) && path.is_file() {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// A GGUF value as the metadata calls give it: a string as it is, a number or boolean as JSON
/// text, an array as a JSON array (f32 values as the f64 of the same value, which parses back
/// to the same f32; NaN and infinities as `null`).
fn value_text(value: &crate::kv::Value) -> String {
    match value {
        crate::kv::Value::String(s) => s.clone(),
        other => crate::gguf_format::value_json(other).to_string(),
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
pub(super) struct TensorCount {
    seen: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl TensorCount {
    pub(super) fn new(max: usize) -> TensorCount {
        TensorCount {
            seen: std::sync::atomic::AtomicUsize::new(0),
            max,
        }
    }

    /// Adds `n` tensors of `path`; an error once the total is over the limit.
    pub(super) fn check(&self, path: &Path, n: usize) -> Result<()> {
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

/// The GGUF split sets among `opened`, whole: a shard opens (with `open`, local files or
/// URLs, in order) every shard of its set that was not given, found by name as llama.cpp's
/// loader finds them, and each set is checked as that loader checks it
/// (`gguf_format::check_set`). Local paths are compared canonical, so a set given in full (a
/// directory's listing) opens no shard twice; URLs as they are spelled. `names` holds the
/// name each file of `opened` was given by, which shard names are formed from: its path, or
/// its URL (a cached copy's own path is named by hashes).
pub(super) fn complete_gguf_sets(
    mut opened: Vec<(ShardFile, Contents)>,
    mut names: Vec<PathBuf>,
    open: impl FnOnce(&[PathBuf]) -> Result<Vec<(ShardFile, Contents)>>,
) -> Result<Vec<(ShardFile, Contents)>> {
    let canonical = |p: &Path| match p.to_str().and_then(crate::remote::url_of) {
        Some(_) => p.to_path_buf(),
        None => std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
    };
    let mut known: HashMap<PathBuf, usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (canonical(name), i))
        .collect();
    // Each set once: the shard it was found from, its keys, and its shards' canonical paths
    // (each path canonicalised once: that is a system call per shard).
    let mut sets: Vec<(PathBuf, ShardInfo, Vec<PathBuf>)> = Vec::new();
    let mut missing: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (name, (_, contents)) in names.iter().zip(&opened) {
        let Contents::Gguf(gguf) = contents else {
            continue;
        };
        let Some(info) = gguf.shard else { continue };
        let paths = set_paths(name, info)?;
        let first = canonical(&paths[0]);
        if sets.iter().any(|(_, _, s)| s[0] == first) {
            continue;
        }
        let mut keys = Vec::with_capacity(paths.len());
        for p in paths {
            let key = if keys.is_empty() {
                first.clone()
            } else {
                canonical(&p)
            };
            // Placeholder until the missing shard is opened below.
            known.entry(key.clone()).or_insert_with(|| {
                missing.push((p, key.clone()));
                usize::MAX
            });
            keys.push(key);
        }
        sets.push((name.clone(), info, keys));
    }
    if !missing.is_empty() {
        let paths: Vec<PathBuf> = missing.iter().map(|(p, _)| p.clone()).collect();
        let found = open(&paths)?;
        if found.len() != missing.len() {
            return Err(Error::NotFound(format!(
                "{}: not every shard of its split set was opened",
                sets[0].0.display()
            )));
        }
        for ((p, key), shard) in missing.into_iter().zip(found) {
            known.insert(key, opened.len());
            opened.push(shard);
            names.push(p);
        }
    }
    for (given, info, keys) in &sets {
        let mut shards = Vec::with_capacity(keys.len());
        for key in keys {
            let i = known[key];
            match &opened[i] {
                (_, Contents::Gguf(gguf)) => shards.push((names[i].as_path(), gguf)),
                // A file named as a shard of the set but given as another format.
                (_, _) => {
                    return Err(Error::format(
                        names[i].display(),
                        None,
                        format!(
                            "named as a shard of {}'s split set, but not a GGUF file",
                            given.display()
                        ),
                    ))
                }
            }
        }
        check_set(given, *info, shards)?;
    }
    Ok(opened)
}

/// What one opened file holds.
pub(super) enum Contents {
    Safetensors(Header),
    Gguf(crate::gguf_format::GgufFile),
    Torch(crate::torch::Checkpoint),
}

/// Every tensor the index names must be in its shard, and every shard tensor must be named there.
pub(super) fn check_agreement(
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
