//! The GGUF parts of the `stload` command: `convert ... --out DST.gguf` and
//! `inspect FILE.gguf`.

use std::path::{Path, PathBuf};

use stload::gguf::{self, GgufPlan, OutType, Split};
use stload::kv::{Array, Value};
use stload::{Error, Options, Result};

/// Whether `convert` writes GGUF: `--format gguf`, or no `--format` and a `.gguf` output.
pub fn wanted(out: &Path, format: Option<&str>) -> Result<bool> {
    match format.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(out
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))),
        Some("gguf") => Ok(true),
        Some("safetensors") => Ok(false),
        Some(f) => Err(Error::InvalidArgument(format!(
            "unknown --format \"{f}\" (known: gguf, safetensors)"
        ))),
    }
}

/// Whether `path` is a GGUF file (by its magic, so any file name works).
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == gguf::MAGIC
}

/// The split limits of `--split-max-size` and `--split-max-tensors`, if either is given.
pub fn split_arg(max_size: Option<&str>, max_tensors: Option<&str>) -> Result<Option<Split>> {
    if max_size.is_none() && max_tensors.is_none() {
        return Ok(None);
    }
    let max_bytes = max_size.map(gguf::parse_size).transpose()?.unwrap_or(0);
    let max_tensors = match max_tensors {
        None => 0,
        Some(t) => match t.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "--split-max-tensors \"{t}\": not a positive whole number"
                )))
            }
        },
    };
    Ok(Some(Split {
        max_bytes,
        max_tensors,
    }))
}

/// `stload convert SRC --out DST.gguf [--outtype T] [--arch A] [--split-max-size N]
/// [--split-max-tensors N]`: a Hugging Face directory to a GGUF llama.cpp runs (in shards
/// with a split limit); with `--arch none`, the tensors under their listed names and only the
/// `general.*` keys (for engines that look ggml tensors up by name).
pub fn convert(
    src: &Path,
    out: &Path,
    force: bool,
    outtype: Option<&str>,
    dtype: Option<&str>,
    split: Option<Split>,
    options: &Options,
) -> Result<()> {
    if dtype.is_some() {
        return Err(Error::InvalidArgument(
            "--dtype applies to safetensors output; for GGUF use --outtype (auto, f32, f16, bf16, q8_0)"
                .into(),
        ));
    }
    let outtype: OutType = outtype.unwrap_or("auto").parse()?;
    let raw = options.arch.as_deref() == Some(NO_ARCH);
    let options = {
        let mut o = options.clone();
        o.arch = if raw { None } else { options.arch.clone() };
        o
    };
    super::stop_on_signals()?;
    let model = super::open(&[PathBuf::from(src)], &options)?;
    // The files beside the weights that the conversion reads are inputs too (not with
    // --arch none, which reads none of them).
    let side = if raw {
        Vec::new()
    } else {
        stload::__private::hf_to_gguf::side_files(model.config_dir())
    };
    let inputs: Vec<&Path> = model
        .files()
        .chain(side.iter().map(PathBuf::as_path))
        .collect();
    let earlier = match split {
        Some(_) => existing_shards(out)?,
        None => Vec::new(),
    };
    if split.is_some() {
        // Every existing file with a shard name of this prefix (whatever its count) is checked
        // as the output would be: an input is refused, and the rest need --force.
        for shard in &earlier {
            super::check_output(src, &inputs, shard, true, force)?;
        }
    } else {
        super::check_output(src, &inputs, out, true, force)?;
    }
    // Drawn only when stderr is a terminal.
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        !super::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
    };
    let written = match (raw, split) {
        (true, split) => {
            let plan = GgufPlan {
                split,
                ..GgufPlan::new(NO_ARCH)
            };
            gguf::write_model(&model, out, outtype, plan, &mut progress)
        }
        (false, Some(split)) => model.write_gguf_split(out, outtype, split, &mut progress),
        (false, None) => model
            .write_gguf(out, outtype, &mut progress)
            .map(|()| vec![out.to_path_buf()]),
    };
    bar.finish_and_clear();
    let written = written?;
    for path in &written {
        println!("wrote {}", super::escaped(&path.display().to_string()));
    }
    remove_earlier_shards(&earlier, &written)?;
    println!("{}", summary(&written, outtype)?);
    Ok(())
}

/// Removes the shards of an earlier split (another count) once the new set is in place: left
/// beside it, that set would still load as a model. Only files named as shards of the same
/// prefix were listed, and each passed the output checks (never an input; only with --force).
fn remove_earlier_shards(earlier: &[PathBuf], written: &[PathBuf]) -> Result<()> {
    for old in earlier {
        if written.iter().any(|w| w.file_name() == old.file_name()) {
            continue;
        }
        std::fs::remove_file(old).map_err(|e| {
            Error::io(
                old.display(),
                "cannot remove this shard of an earlier split",
                &e,
            )
        })?;
        println!(
            "removed {} (a shard of an earlier split)",
            super::escaped(&old.display().to_string())
        );
    }
    Ok(())
}

/// One line saying what the GGUF files `written` hold, read back from their headers:
/// architecture, output type, tensors and size.
fn summary(written: &[PathBuf], outtype: OutType) -> Result<String> {
    let (mut tensors, mut bytes, mut arch) = (0usize, 0u64, String::new());
    for (i, path) in written.iter().enumerate() {
        let file = gguf::read(path)?;
        tensors += file.tensors.len();
        if i == 0 {
            if let Some(Value::String(a)) = file.metadata.get("general.architecture") {
                arch = super::escaped(a).into_owned();
            }
        }
        bytes += std::fs::metadata(path)
            .map_err(|e| Error::io(path.display(), "cannot read its size", &e))?
            .len();
    }
    Ok(format!(
        "GGUF: architecture {arch}, type {outtype}, {tensors} tensors, {} ({bytes} bytes) in {} file{}",
        indicatif::HumanBytes(bytes),
        written.len(),
        if written.len() == 1 { "" } else { "s" }
    ))
}

/// The files beside `out` named as shards of its prefix.
fn existing_shards(out: &Path) -> Result<Vec<PathBuf>> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        // A missing directory: the writer reports it.
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display(), "cannot list directory", &e))?;
        if gguf::is_shard_of(out, &entry.file_name().to_string_lossy()) {
            // Spelled as the user spelled --out, as the shards written are.
            found.push(out.with_file_name(entry.file_name()));
        }
    }
    found.sort();
    Ok(found)
}

/// The `--arch` value that writes a GGUF without architecture or tokenizer.
const NO_ARCH: &str = "none";

/// `stload inspect FILE.gguf [--json]`.
pub fn inspect(path: &Path, as_json: bool) -> Result<()> {
    let file = gguf::read(path)?;
    if as_json {
        println!("{}", file.to_json());
        return Ok(());
    }
    println!(
        "GGUF version {}, {} keys, {} tensors",
        file.version,
        file.metadata.len(),
        file.tensors.len()
    );
    if let Some(s) = &file.shard {
        println!(
            "shard {} of {} of a split model ({} tensors in all shards)",
            u32::from(s.no) + 1,
            s.count,
            s.tensors
        );
    }
    println!();
    for (k, v) in file.metadata.iter() {
        println!("{} = {}", super::escaped(k), super::escaped(&short(v)));
    }
    let width = file
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "\n{:<width$}  {:<6}  {:<22}  {:>12}  {:>12}",
        "NAME", "TYPE", "SHAPE", "BYTES", "OFFSET"
    );
    for t in &file.tensors {
        println!(
            "{:<width$}  {:<6}  {:<22}  {:>12}  {:>12}",
            super::escaped(&t.name),
            t.ty.to_string(),
            format!("{:?}", t.shape),
            t.nbytes,
            t.data_offset
        );
    }
    Ok(())
}

/// A value for the table: arrays show their first elements and their length.
fn short(v: &Value) -> String {
    const SHOWN: usize = 6;
    fn list<T: std::fmt::Debug>(v: &[T]) -> String {
        let head: Vec<String> = v.iter().take(SHOWN).map(|x| format!("{x:?}")).collect();
        let more = if v.len() > SHOWN { ", ..." } else { "" };
        format!("[{}{more}] ({} elements)", head.join(", "), v.len())
    }
    match v {
        Value::Array(a) => match a {
            Array::U8(a) => list(a),
            Array::I8(a) => list(a),
            Array::U16(a) => list(a),
            Array::I16(a) => list(a),
            Array::U32(a) => list(a),
            Array::I32(a) => list(a),
            Array::F32(a) => list(a),
            Array::Bool(a) => list(a),
            Array::String(a) => list(a),
            Array::U64(a) => list(a),
            Array::I64(a) => list(a),
            Array::F64(a) => list(a),
            Array::Array(a) => {
                let head: Vec<String> = a
                    .iter()
                    .take(SHOWN)
                    .map(|x| gguf::value_json(&Value::Array(x.clone())).to_string())
                    .collect();
                let more = if a.len() > SHOWN { ", ..." } else { "" };
                format!("[{}{more}] ({} elements)", head.join(", "), a.len())
            }
        },
        Value::String(s) if s.chars().count() > 200 => {
            format!(
                "{:?}... ({} bytes)",
                s.chars().take(200).collect::<String>(),
                s.len()
            )
        }
        other => gguf::value_json(other).to_string(),
    }
}
