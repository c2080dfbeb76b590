//! Opening a model in object storage or behind HTTP: the prefix listed with the rules of a
//! local directory (`model.safetensors.index.json` first, else `*.safetensors`, else `*.gguf`;
//! a plain HTTP server, which cannot list, serves `model.safetensors`), every file's header
//! fetched with one speculative ranged GET, in parallel (a GGUF header longer than that
//! first read is read on in growing pieces, up to `max_header_size`), and a GGUF shard's set
//! completed by name as a local one is. The model built is the same as for local files;
//! only its files' backend differs. With a cache directory, a prefix is copied into it with
//! the files beside the weights and opened as the local directory it then is (PyTorch
//! checkpoints and architectures at open included). Without one, GGUF export fetches the files
//! beside the weights it reads ([`Model::fetch_side_files`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;

use super::open::{check_agreement, complete_gguf_sets, Contents, TensorCount};
use super::Model;
use crate::error::{Error, Result};
use crate::file::ShardFile;
use crate::index::{ShardIndex, INDEX_FILE};
use crate::options::Options;
use crate::remote::object::Object;
use crate::remote::{connect, local_copies, mirror, open_copy, Connection};
use crate::side_files::{self, SideFiles};

/// The file a plain HTTP directory URL serves when it has no shard index.
const SINGLE_FILE: &str = "model.safetensors";

impl Model {
    /// Opens the model under the URL prefix `url`.
    pub(super) fn open_remote_dir(url: &str, options: &Options) -> Result<Model> {
        let (conn, prefix) = connect(url, &options.remote, options.effective_threads())?;
        if let Some(dir) = options.remote.cache_dir() {
            if let Some(local) = cached_prefix(url, &conn, &prefix, &dir, options)? {
                return Model::open_dir(local, options);
            }
        }
        refuse_arch(url, options)?;
        let contents = PrefixContents::read(url, &conn, &prefix, options.max_json_size)?;
        if let Weights::Torch(_) = contents.weights {
            return Err(Error::Unsupported(format!(
                "{url}: PyTorch checkpoints are read from remote stores only through a cache \
                 directory (the remote option cache_dir, or STLOAD_CACHE_DIR), which copies \
                 them to local disk; or convert them to safetensors"
            )));
        }
        let paths = contents
            .weights
            .files()
            .into_iter()
            .map(|n| conn.join(&prefix, n))
            .collect::<Result<Vec<_>>>()?;
        let listed = TensorCount::new(options.max_tensors);
        let opened = open_objects(&conn, &paths, options, &listed)?;
        if let Weights::Indexed { index, shown } = &contents.weights {
            let headers = opened
                .into_iter()
                .map(|(f, c)| match c {
                    Contents::Safetensors(h) => Ok((f, h)),
                    _ => Err(Error::format(
                        f.display(),
                        None,
                        format!("named by {shown} but not a safetensors file"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            check_agreement(shown, index, &headers)?;
            let opened = headers
                .into_iter()
                .map(|(f, h)| (f, Contents::Safetensors(h)))
                .collect();
            return Model::build(opened, options, Path::new(url), None);
        }
        // A shard of a split GGUF set whose other shards the listing did not show.
        let names = paths.iter().map(|p| PathBuf::from(conn.url(p))).collect();
        let opened = complete_gguf_sets(opened, names, |missing| {
            let paths = missing
                .iter()
                .map(|p| object_path(&conn, p))
                .collect::<Result<Vec<_>>>()?;
            open_objects(&conn, &paths, options, &listed)
        })?;
        Model::build(opened, options, Path::new(url), None)
    }

    /// Opens the files `urls` (`given` paths were given: all must be URLs).
    pub(super) fn open_remote_files(
        urls: &[&str],
        given: usize,
        options: &Options,
        side: Option<Arc<SideFiles>>,
    ) -> Result<Model> {
        if urls.len() != given {
            return Err(Error::InvalidArgument(
                "a model's files must be all local paths or all URLs".into(),
            ));
        }
        let first = urls[0];
        if side.is_none() {
            refuse_arch(first, options)?;
        }
        // One connection per store; files on the same store share it (and its connections).
        let mut conns: Vec<Connection> = Vec::new();
        let listed = TensorCount::new(options.max_tensors);
        let opened = open_urls(&mut conns, urls, options, &listed)?;
        // The shards of a split GGUF set that were not given, found by name beside the given.
        let names = urls.iter().map(PathBuf::from).collect();
        let opened = complete_gguf_sets(opened, names, |missing| {
            let missing: Vec<String> = missing
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
            open_urls(&mut conns, &missing, options, &listed)
        })?;
        // Files given one by one: config.json would sit beside the first.
        let config_dir = first.rsplit_once('/').map_or(first, |(dir, _)| dir);
        Model::build(opened, options, Path::new(config_dir), side)
    }
}

impl Model {
    /// The side files of a remote model opened without a cache directory, fetched from the
    /// URL prefix `url` that holds its files: one small bounded GET each ([`side_files::limit`]
    /// of `max_json_size`, as a local read is bounded), a missing object absent.
    pub(super) fn fetch_side_files(url: &str, options: &Options) -> Result<SideFiles> {
        let (conn, prefix) = connect(url, &options.remote, options.effective_threads())?;
        let max_json = options.max_json_size;
        let fetch = |name: &str| {
            let path = conn.join(&prefix, name)?;
            conn.read_small(&path, side_files::limit(name, max_json).bytes())
        };
        let files = SideFiles::names()
            .into_iter()
            .map(|name| (name.to_string(), fetch(name)))
            .collect();
        Ok(SideFiles::from_parts(PathBuf::from(url), max_json, files).with_pooling(fetch))
    }
}

/// The object a URL made by a split set's naming (from a URL of `conn`) names on `conn`.
fn object_path(conn: &Connection, url: &Path) -> Result<ObjectPath> {
    let text = url.to_string_lossy();
    conn.path_of(&text).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{text}: not a location of the store it was found on"
        ))
    })
}

/// Opens the files `urls`, in order, each through the connection of its store among `conns`
/// (made and added there when none is yet), counting their tensors in `listed`.
fn open_urls(
    conns: &mut Vec<Connection>,
    urls: &[&str],
    options: &Options,
    listed: &TensorCount,
) -> Result<Vec<(ShardFile, Contents)>> {
    let threads = options.effective_threads();
    let mut groups: Vec<(usize, Vec<(usize, ObjectPath)>)> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        if is_torch_name(url) {
            return Err(Error::Unsupported(format!(
                "{url}: PyTorch checkpoints are read from remote stores only as a prefix \
                     opened with a cache directory (the remote option cache_dir, or \
                     STLOAD_CACHE_DIR); or convert them to safetensors"
            )));
        }
        let found = conns.iter().position(|c| c.path_of(url).is_some());
        let (c, path) = match found {
            Some(c) => (c, conns[c].path_of(url).unwrap_or_default()),
            None => {
                let (conn, path) = connect(url, &options.remote, threads)?;
                conns.push(conn);
                (conns.len() - 1, path)
            }
        };
        match groups.iter_mut().find(|(g, _)| *g == c) {
            Some((_, members)) => members.push((i, path)),
            None => groups.push((c, vec![(i, path)])),
        }
    }
    let mut slots: Vec<Option<(ShardFile, Contents)>> = (0..urls.len()).map(|_| None).collect();
    for (c, members) in groups {
        let paths: Vec<ObjectPath> = members.iter().map(|(_, p)| p.clone()).collect();
        let opened = open_objects(&conns[c], &paths, options, listed)?;
        for ((i, _), file) in members.into_iter().zip(opened) {
            slots[i] = Some(file);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Fetches and checks the headers of `paths` (in parallel), counting their tensors in
/// `listed`: safetensors or GGUF, told apart by their first bytes. With a cache directory,
/// each file with an ETag opens as its local copy there (downloaded first when missing), the
/// others as remote files.
fn open_objects(
    conn: &Connection,
    paths: &[ObjectPath],
    options: &Options,
    listed: &TensorCount,
) -> Result<Vec<(ShardFile, Contents)>> {
    let max_header = options.max_header_size;
    let copies = match options.remote.cache_dir() {
        Some(dir) => {
            let objects = conn.head_files(paths)?;
            let check = |missing: &[&Object]| check_first_bytes(conn, missing, max_header);
            let threads = options.effective_threads();
            local_copies(&dir, objects, &options.remote, threads, &check)?
        }
        None => vec![None; paths.len()],
    };
    let uncached: Vec<ObjectPath> = paths
        .iter()
        .zip(&copies)
        .filter(|(_, copy)| copy.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    let mut remote = if uncached.is_empty() {
        Vec::new()
    } else {
        conn.open_files(&uncached, max_header)?
    }
    .into_iter();
    copies
        .into_iter()
        .zip(paths)
        .map(|(copy, path)| {
            let (file, contents) = match copy {
                Some(local) => open_local_copy(&local, max_header)?,
                None => {
                    let (object, first) = remote.next().ok_or_else(|| Error::Io {
                        path: conn.url(path),
                        message: "cannot open: no response".into(),
                    })?;
                    if first.starts_with(&crate::gguf_format::MAGIC) {
                        let (file, gguf) = ShardFile::open_remote_gguf(object, first, max_header)?;
                        (file, Contents::Gguf(gguf))
                    } else {
                        let (file, header) = ShardFile::open_remote(object, &first, max_header)?;
                        (file, Contents::Safetensors(header))
                    }
                }
            };
            let tensors = match &contents {
                Contents::Safetensors(h) => h.tensors.len(),
                Contents::Gguf(g) => g.tensors.len(),
                Contents::Torch(c) => c.tensors.len(),
            };
            listed.check(file.path(), tensors)?;
            Ok((file, contents))
        })
        .collect()
}

/// Opens the cache's copy `local` (without following a link) as the format its first bytes
/// say: GGUF, else safetensors.
fn open_local_copy(local: &Path, max_header: u64) -> Result<(ShardFile, Contents)> {
    use std::io::{Read, Seek};
    let shown = local.display().to_string();
    let (mut file, meta) = open_copy(local)?;
    let mut head = [0u8; 4];
    let gguf =
        meta.len() >= 4 && file.read_exact(&mut head).is_ok() && head == crate::gguf_format::MAGIC;
    file.rewind()
        .map_err(|e| Error::io(&shown, "cannot read", &e))?;
    if gguf {
        let (file, gguf) = ShardFile::open_gguf_handle(local, &file, &meta)?;
        Ok((file, Contents::Gguf(gguf)))
    } else {
        let (file, header) = ShardFile::open_handle(local, file, &meta, max_header)?;
        Ok((file, Contents::Safetensors(header)))
    }
}

/// What a remote prefix holds, by the rules of a local directory: the shard index and its
/// shards, else every `*.safetensors` (a plain HTTP server, which cannot list, serves
/// `model.safetensors`), else the PyTorch checkpoints ollama's patterns pick.
struct PrefixContents {
    weights: Weights,
    /// The names directly under the prefix; `None` until something needs them (a listing is a
    /// round trip, and the weights of a prefix with an index need none).
    listing: Option<Vec<String>>,
}

/// The weight files of a prefix, by kind.
enum Weights {
    /// [`INDEX_FILE`] (at the URL `shown`) and the shards it names.
    Indexed { index: ShardIndex, shown: String },
    /// `*.safetensors` files without an index, sorted.
    Safetensors(Vec<String>),
    /// `*.gguf` files (there being no safetensors file), sorted.
    Gguf(Vec<String>),
    /// PyTorch checkpoints, sorted.
    Torch(Vec<String>),
}

impl Weights {
    /// The names (relative to the prefix) of the files holding tensors.
    fn files(&self) -> Vec<&str> {
        match self {
            Weights::Indexed { index, .. } => index.shards(),
            Weights::Safetensors(names) | Weights::Gguf(names) | Weights::Torch(names) => {
                names.iter().map(String::as_str).collect()
            }
        }
    }
}

impl PrefixContents {
    /// Reads what the prefix `prefix` of `conn` (shown as `url`) holds: the index when there is
    /// one (of at most `max_json` bytes; the prefix is then not listed), else what its listing
    /// shows. A prefix with none of the weight files is an error naming it.
    fn read(url: &str, conn: &Connection, prefix: &ObjectPath, max_json: u64) -> Result<Self> {
        let index_path = conn.join(prefix, INDEX_FILE)?;
        if let Some(json) = conn.read_small(&index_path, max_json)? {
            let shown = conn.url(&index_path);
            let index = ShardIndex::parse(&shown, &json)?;
            return Ok(PrefixContents {
                weights: Weights::Indexed { index, shown },
                listing: None,
            });
        }
        let listing = conn.list(prefix)?;
        let mut files: Vec<String> = listing
            .iter()
            .filter(|n| n.ends_with(".safetensors"))
            .cloned()
            .collect();
        if files.is_empty() && !conn.can_list() {
            files.push(SINGLE_FILE.to_string());
        }
        let mut gguf: Vec<String> = listing
            .iter()
            .filter(|n| n.ends_with(".gguf"))
            .cloned()
            .collect();
        let weights = if !files.is_empty() {
            files.sort_unstable();
            Weights::Safetensors(files)
        } else if !gguf.is_empty() {
            gguf.sort_unstable();
            Weights::Gguf(gguf)
        } else {
            let torch = crate::torch::dir_patterns(&listing);
            if torch.is_empty() {
                return Err(Error::NotFound(format!(
                    "{url}: no {INDEX_FILE}, no *.safetensors, no *.gguf and no PyTorch \
                     checkpoint under this prefix"
                )));
            }
            Weights::Torch(torch)
        };
        Ok(PrefixContents {
            weights,
            listing: Some(listing),
        })
    }

    /// The names (relative to the prefix) of every file a copy of the weights needs: the
    /// index first when there is one, then the files holding tensors.
    fn weight_copies(&self) -> Vec<String> {
        let index = match self.weights {
            Weights::Indexed { .. } => Some(INDEX_FILE),
            _ => None,
        };
        index
            .into_iter()
            .chain(self.weights.files())
            .map(str::to_string)
            .collect()
    }

    /// Those of [`side_files::ALL`] that may be beside the weights: the ones the listing
    /// shows (the prefix is listed now when the weights did not need it), or, where the store
    /// cannot list, all of them (whether each exists is found by asking for it).
    fn side_files(&mut self, conn: &Connection, prefix: &ObjectPath) -> Result<Vec<&'static str>> {
        if !conn.can_list() {
            return Ok(side_files::ALL.to_vec());
        }
        let listing = match &mut self.listing {
            Some(listing) => listing,
            empty => empty.insert(conn.list(prefix)?),
        };
        Ok(side_files::ALL
            .iter()
            .copied()
            .filter(|s| listing.iter().any(|n| n == s))
            .collect())
    }

    /// Where the prefix's weights are listed, for messages: the index, else the prefix.
    fn shown(&self, url: &str) -> String {
        match &self.weights {
            Weights::Indexed { shown, .. } => shown.clone(),
            _ => url.to_string(),
        }
    }
}

/// The prefix `url` as a local directory of the cache `dir`: its weights (by the local rules,
/// [`PrefixContents`]) and the files beside them (the list of [`side_files`], and the pooling
/// configuration `modules.json` names) copied into the cache (what is current there is not
/// fetched again; a weight file's header is fetched and checked before the file is) and linked
/// under their own names. `None` when an object has no ETag and so cannot be cached: the model
/// is then read remotely.
fn cached_prefix(
    url: &str,
    conn: &Connection,
    prefix: &ObjectPath,
    dir: &Path,
    options: &Options,
) -> Result<Option<PathBuf>> {
    let mut contents = PrefixContents::read(url, conn, prefix, options.max_json_size)?;
    let mut names = contents.weight_copies();
    let paths = names
        .iter()
        .map(|n| conn.join(prefix, n))
        .collect::<Result<Vec<_>>>()?;
    let mut objects = conn.head_files(&paths)?;
    // Beside the weights: what the listing shows, or (a plain HTTP server) what answers.
    let mut side: Vec<String> = contents
        .side_files(conn, prefix)?
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Some(twice) = side.iter().find(|s| names.contains(s)) {
        // Copied once as a weight and once beside them, the two would share a name.
        return Err(Error::Format(format!(
            "{}: names the file \"{twice}\" beside the weights as a file of tensors: refused",
            contents.shown(url)
        )));
    }
    if side.iter().any(|s| s == side_files::MODULES) {
        let modules = conn.join(prefix, side_files::MODULES)?;
        if let Some(json) = conn.read_small(&modules, options.max_json_size)? {
            let shown = conn.url(&modules);
            let value: serde_json::Value = serde_json::from_slice(&json)
                .map_err(|e| Error::format(&shown, None, format!("not valid JSON: {e}")))?;
            if let Some(pooling) = side_files::pooling_config(&shown, &value)? {
                side.push(pooling);
            }
        }
    }
    let side_paths = side
        .iter()
        .map(|n| conn.join(prefix, n))
        .collect::<Result<Vec<_>>>()?;
    for (name, object) in side.iter().zip(conn.head_existing(&side_paths)?) {
        if let Some(object) = object {
            // Refused before a byte is fetched, as the local readers refuse the file.
            let bound = side_files::limit(name, options.max_json_size).bytes();
            if object.size() > bound {
                return Err(Error::Limit(format!(
                    "{}: {} bytes, over the limit of {bound} bytes for a file beside the weights",
                    object.url(),
                    object.size(),
                )));
            }
            names.push(name.clone());
            objects.push(object);
        }
    }
    let threads = options.effective_threads();
    let check = |missing: &[&Object]| check_first_bytes(conn, missing, options.max_header_size);
    let copies = local_copies(dir, objects, &options.remote, threads, &check)?;
    let Some(copies) = copies.into_iter().collect::<Option<Vec<PathBuf>>>() else {
        return Ok(None);
    };
    let files: Vec<(String, PathBuf)> = names.into_iter().zip(copies).collect();
    mirror(dir, &conn.identity(url), url, &files).map(Some)
}

/// Fetches the first bytes of the weight files among `missing` (objects about to be copied
/// into the cache) and checks them as the uncached path does, a safetensors or GGUF header
/// with the local rules (at most `max_header` bytes) and a PyTorch checkpoint's zip
/// signature, so a file refused after its first bytes is never downloaded whole.
fn check_first_bytes(conn: &Connection, missing: &[&Object], max_header: u64) -> Result<()> {
    let weights: Vec<&Object> = missing
        .iter()
        .copied()
        .filter(|o| {
            let url = o.url();
            url.ends_with(".safetensors") || url.ends_with(".gguf") || is_torch_name(url)
        })
        .collect();
    if weights.is_empty() {
        return Ok(());
    }
    for (object, first) in weights.iter().zip(conn.read_headers(&weights, max_header)?) {
        if is_torch_name(object.url()) {
            crate::torch::check_magic(object.url(), &first)?;
        } else if first.starts_with(&crate::gguf_format::MAGIC) {
            ShardFile::open_remote_gguf((*object).clone(), first, max_header)?;
        } else {
            ShardFile::open_remote((*object).clone(), &first, max_header)?;
        }
    }
    Ok(())
}

/// Architectures read `config.json` beside the weights, which only a cached prefix brings
/// along: refused with a clear error rather than a confusing "cannot open".
fn refuse_arch(url: &str, options: &Options) -> Result<()> {
    match &options.arch {
        Some(arch) => Err(Error::Unsupported(format!(
            "{url}: architecture \"{arch}\" needs config.json, which a remote model brings \
             along only as a prefix opened with a cache directory (the remote option \
             cache_dir, or STLOAD_CACHE_DIR)"
        ))),
        None => Ok(()),
    }
}

/// Whether `url` names a PyTorch checkpoint by its extension.
fn is_torch_name(url: &str) -> bool {
    [".bin", ".pth", ".pt"].iter().any(|x| url.ends_with(x))
}
