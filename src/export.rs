//! Writing a model (or part of it) back to safetensors, optionally in another dtype: the engine
//! of `stload convert`. Tensors stream through a small buffer, never the whole model in memory.
//!
//! Progress callbacks are told the output bytes of each chunk as it is written and return
//! whether to go on: `false` stops the write with [`Error::Cancelled`], and nothing of the
//! unfinished output stays behind (temporary files and, for a directory, the files written so
//! far are removed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::index::INDEX_FILE;
use crate::model::Model;
use crate::write::{temporary_output, write_bytes, write_streaming, TensorSpec};

/// Source bytes converted per write.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Extensions of files holding weights in some format: never copied into a converted directory.
const WEIGHT_EXTENSIONS: [&str; 10] = [
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "gguf",
    "h5",
    "msgpack",
    "onnx",
    "ot",
];

/// The error of a progress callback that returned `false` while writing `path`.
fn cancelled(path: &Path) -> Error {
    Error::Cancelled(format!("{}: conversion cancelled", path.display()))
}

/// Writes the tensors `names` of `model` to one safetensors file at `path` with the model's
/// metadata, converting floats to `target` (one of [`convert::WHOLE_MODEL_TARGETS`]).
/// `progress(bytes)` is told the output bytes of each chunk written; `false` cancels.
pub fn write_tensors(
    model: &Model,
    names: &[&str],
    target: Option<Dtype>,
    path: &Path,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<()> {
    if let Some(t) = target {
        convert::check_whole_model_target(t)?;
    }
    let threads = model.options().effective_threads();
    let specs = names
        .iter()
        .map(|&name| {
            let info = model.info(name)?;
            Ok(TensorSpec {
                name: name.to_string(),
                dtype: convert::whole_model_dtype(info.dtype, target),
                shape: info.shape.to_vec(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata: BTreeMap<String, String> = model
        .metadata_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut buf = Vec::new();
    let shown = path.display().to_string();
    write_streaming(path, &specs, &metadata, |i, out| {
        let source = model.get(names[i])?;
        let to = specs[i].dtype;
        let io = |e: std::io::Error| Error::io(&shown, "cannot write", &e);
        if to == source.dtype() {
            for chunk in source.data().chunks(CHUNK_ELEMENTS * 4) {
                out.write_all(chunk).map_err(io)?;
                if !progress(chunk.len() as u64) {
                    return Err(cancelled(path));
                }
            }
        } else {
            let Some((fs, ts)) = convert::units(source.dtype(), to) else {
                return Err(Error::Unsupported(format!(
                    "tensor \"{}\": no conversion to {to}",
                    names[i]
                )));
            };
            // Units are elements, or blocks of a block type: about CHUNK_ELEMENTS values a chunk.
            let per_chunk = (CHUNK_ELEMENTS / source.dtype().block().0 as usize).max(1);
            for chunk in source.data().chunks(per_chunk * fs) {
                buf.resize(chunk.len() / fs * ts, 0);
                convert::convert_parallel(chunk, source.dtype(), &mut buf, to, threads)
                    .map_err(|e| e.in_tensor(names[i]))?;
                out.write_all(&buf).map_err(io)?;
                if !progress(buf.len() as u64) {
                    return Err(cancelled(path));
                }
            }
        }
        Ok(())
    })
}

/// A file's identity: device and inode where there are some, else its canonical path.
#[derive(PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg_attr(unix, allow(dead_code))]
    Canonical(PathBuf),
}

/// The identity of the file or directory at `path` (symbolic links followed), if it exists.
fn file_id(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId::Inode(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        std::fs::canonicalize(path).ok().map(FileId::Canonical)
    }
}

/// The inputs of a conversion by identity, so that an output is recognised as one whatever
/// path spells it (`./`, `..`, symbolic or hard links).
pub struct Inputs<'a> {
    ids: Vec<(FileId, &'a Path)>,
}

impl<'a> Inputs<'a> {
    /// The inputs among `paths` that exist (the others cannot be overwritten by mistake).
    pub fn new(paths: impl IntoIterator<Item = &'a Path>) -> Inputs<'a> {
        let ids = paths
            .into_iter()
            .filter_map(|p| file_id(p).map(|id| (id, p)))
            .collect();
        Inputs { ids }
    }

    /// The input that the file or directory at `path` is, if it is one.
    pub fn named(&self, path: &Path) -> Option<&'a Path> {
        let id = file_id(path)?;
        self.ids.iter().find(|(i, _)| *i == id).map(|&(_, p)| p)
    }
}

/// Whether `path` is a URL (a remote model's location), never to be read as a local path.
fn is_url(path: &Path) -> bool {
    path.to_str().and_then(crate::remote::url_of).is_some()
}

/// Refuses a destination `dst` that is the source `src` or one of `model`'s files, or a
/// directory holding one of its files: writing there would replace an input being read.
pub fn refuse_inputs(model: &Model, src: &Path, dst: &Path) -> Result<()> {
    let refuse = |rule: String| Error::InvalidArgument(format!("{}: {rule}", dst.display()));
    let files = Inputs::new(model.files());
    // A URL source is no local path: only the model's files stand for it.
    let local_src = (!is_url(src)).then_some(src);
    let all = Inputs::new(model.files().chain(local_src));
    if let Some(input) = all.named(dst) {
        return Err(refuse(format!(
            "is the input {}; write somewhere else",
            input.display()
        )));
    }
    if !dst.is_dir() {
        return Ok(());
    }
    let entries = std::fs::read_dir(dst)
        .map_err(|e| Error::io(dst.display(), "cannot list directory", &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dst.display(), "cannot list directory", &e))?;
        if let Some(input) = files.named(&entry.path()) {
            return Err(refuse(format!(
                "holds {}, which is the input {}; write somewhere else",
                entry.file_name().to_string_lossy(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Converts the model directory (or file) `src` into `dst`: a file gives a file; a directory
/// gives a directory with the same shard names, its metadata, an index.json when `src` had one
/// (with the new total size), and copies of the directory's other files that are not weights
/// (`config.json`, tokenizer files, `generation_config.json`, ...), so the output is a usable
/// model. Returns the files written. On an error or a cancel, a directory output loses the
/// files written so far (and the directory itself when this call created it). A `dst` that
/// is an input is refused before anything is written ([`refuse_inputs`]).
pub fn export(
    model: &Model,
    src: &Path,
    target: Option<Dtype>,
    dst: &Path,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Vec<PathBuf>> {
    if let Some(t) = target {
        convert::check_whole_model_target(t)?;
    }
    refuse_inputs(model, src, dst)?;
    // A URL is never read as the local path it spells (`http:/host/...`): a remote prefix
    // converts into one file, as a file does.
    if is_url(src) || !src.is_dir() {
        let names: Vec<&str> = model.names().collect();
        write_tensors(model, &names, target, dst, progress)?;
        return Ok(vec![dst.to_path_buf()]);
    }
    let created = !dst.exists();
    std::fs::create_dir_all(dst)
        .map_err(|e| Error::io(dst.display(), "cannot create directory", &e))?;
    let mut written = Vec::new();
    let result = export_dir(model, src, target, dst, progress, &mut written);
    if result.is_err() {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        if created {
            let _ = std::fs::remove_dir(dst);
        }
    }
    result.map(|()| written)
}

/// The body of [`export`] for a directory; `written` collects each file as it lands.
fn export_dir(
    model: &Model,
    src: &Path,
    target: Option<Dtype>,
    dst: &Path,
    progress: &mut dyn FnMut(u64) -> bool,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    let files: Vec<&Path> = model.files().collect();
    for (i, &file) in files.iter().enumerate() {
        let names: Vec<&str> = model
            .names()
            .filter(|n| model.info(n).is_ok_and(|info| info.file == file))
            .collect();
        // Safetensors shards keep their names; other formats get Hugging Face's shard names.
        let file_name = match file.file_name() {
            Some(n) if file.extension().is_some_and(|x| x == "safetensors") => {
                n.to_string_lossy().into_owned()
            }
            _ if files.len() == 1 => "model.safetensors".to_string(),
            _ => format!("model-{:05}-of-{:05}.safetensors", i + 1, files.len()),
        };
        let out = dst.join(&file_name);
        write_tensors(model, &names, target, &out, &mut |bytes| {
            total_size += bytes;
            progress(bytes)
        })?;
        for name in &names {
            weight_map.insert(name.to_string(), file_name.clone());
        }
        written.push(out);
    }
    if src.join(INDEX_FILE).is_file() || files.len() > 1 {
        let index = json!({"metadata": {"total_size": total_size}, "weight_map": weight_map});
        let path = dst.join(INDEX_FILE);
        let text = serde_json::to_string_pretty(&index)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        write_bytes(&path, text.as_bytes())?;
        written.push(path);
    }
    copy_companions(src, &files, dst, written)
}

/// Copies `from` to `to` through a temporary file (streamed, never whole in memory).
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    // Listed as a regular file, but it may have been swapped since: never open a FIFO
    // blocking.
    let (mut input, _) = crate::identity::open_regular(from)?;
    let shown = to.display().to_string();
    let mut tmp = temporary_output(to, ".tmp")?;
    std::io::copy(&mut input, &mut tmp).map_err(|e| Error::io(&shown, "cannot copy", &e))?;
    tmp.persist(to)
        .map_err(|e| Error::io(&shown, "cannot rename into place", &e.error))?;
    Ok(())
}

/// Whether `name`, a file of a model directory, holds weights or a weight index (which a
/// converted directory replaces) rather than configuration, tokenizer or documentation.
pub fn is_weight_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".index.json")
        || Path::new(&lower)
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| WEIGHT_EXTENSIONS.contains(&x))
}

/// Copies the regular files of `src` that are neither weights nor `files` (the model's own)
/// nor hidden into `dst`, atomically each and with mode `0666 & !umask`; subdirectories are
/// not copied.
fn copy_companions(
    src: &Path,
    files: &[&Path],
    dst: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = std::fs::read_dir(src)
        .map_err(|e| Error::io(src.display(), "cannot list directory", &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(src.display(), "cannot list directory", &e))?;
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        let path = entry.path();
        // Symbolic links (as in a Hugging Face cache snapshot) count as the file they name.
        let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        if !regular || text.starts_with('.') || is_weight_file(text) || files.contains(&&*path) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        let (from, to) = (src.join(&name), dst.join(&name));
        copy_file(&from, &to)?;
        written.push(to);
    }
    Ok(())
}
