//! The GGUF parts of the `stload` command: `convert ... --out DST.gguf` and
//! `inspect FILE.gguf`.

use std::path::{Path, PathBuf};

use stload::gguf::{self, GgufPlan, OutType};
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

/// `stload convert SRC --out DST.gguf [--outtype T] [--arch A]`: a Hugging Face directory to a
/// GGUF llama.cpp runs; with `--arch none`, the tensors under their listed names and only the
/// `general.*` keys (for engines that look ggml tensors up by name).
pub fn convert(
    src: &Path,
    out: &Path,
    force: bool,
    outtype: Option<&str>,
    dtype: Option<&str>,
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
    let inputs: Vec<&Path> = model.files().collect();
    super::check_output(src, &inputs, out, true, force)?;
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
    let written = if raw {
        gguf::write_model(&model, out, outtype, GgufPlan::new(NO_ARCH), &mut progress)
    } else {
        model.write_gguf(out, outtype, &mut progress)
    };
    bar.finish_and_clear();
    written?;
    println!("wrote {}", super::escaped(&out.display().to_string()));
    Ok(())
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
        "GGUF version {}, {} keys, {} tensors\n",
        file.version,
        file.metadata.len(),
        file.tensors.len()
    );
    for (k, v) in file.metadata.iter() {
        println!("{k} = {}", short(v));
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
            t.name,
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
        Value::Array(Array::String(a)) => list(a),
        Value::Array(Array::F32(a)) => list(a),
        Value::Array(Array::I32(a)) => list(a),
        Value::Array(Array::U32(a)) => list(a),
        Value::Array(Array::Bool(a)) => list(a),
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
