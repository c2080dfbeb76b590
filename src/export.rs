//! Writing a model (or part of it) back to safetensors, optionally in another dtype: the engine
//! of `stload convert`. Tensors stream through a small buffer, never the whole model in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::index::INDEX_FILE;
use crate::model::Model;
use crate::write::{write_streaming, TensorSpec};

/// Source bytes converted per write.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Writes the tensors `names` of `model` to one safetensors file at `path` with the model's
/// metadata, converting floats to `target`. `progress(bytes)` is told each tensor's output size.
pub fn write_tensors(
    model: &Model,
    names: &[&str],
    target: Option<Dtype>,
    path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
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
            out.write_all(source.data()).map_err(io)?;
        } else {
            let (Some(fs), Some(ts)) = (source.dtype().byte_size(), to.byte_size()) else {
                return Err(Error::Unsupported(format!(
                    "tensor \"{}\": no conversion to {to}",
                    names[i]
                )));
            };
            for chunk in source.data().chunks(CHUNK_ELEMENTS * fs) {
                buf.resize(chunk.len() / fs * ts, 0);
                convert::convert_parallel(chunk, source.dtype(), &mut buf, to, threads)
                    .map_err(|e| Error::Unsupported(format!("tensor \"{}\": {e}", names[i])))?;
                out.write_all(&buf).map_err(io)?;
            }
        }
        progress(specs[i].nbytes()?);
        Ok(())
    })
}

/// Converts the model directory (or file) `src` into `dst`: a file gives a file; a directory
/// gives a directory with the same shard names, its metadata, and an index.json when `src` had
/// one (with the new total size). Returns the files written.
pub fn export(
    model: &Model,
    src: &Path,
    target: Option<Dtype>,
    dst: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<PathBuf>> {
    if !src.is_dir() {
        let names: Vec<&str> = model.names().collect();
        write_tensors(model, &names, target, dst, progress)?;
        return Ok(vec![dst.to_path_buf()]);
    }
    std::fs::create_dir_all(dst)
        .map_err(|e| Error::io(dst.display(), "cannot create directory", &e))?;
    let mut written = Vec::new();
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
            progress(bytes);
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
        std::fs::write(&path, text).map_err(|e| Error::io(path.display(), "cannot write", &e))?;
        written.push(path);
    }
    Ok(written)
}
