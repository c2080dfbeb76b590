//! The GGUF parts of the `stload` command: `convert ... --out DST.gguf`, `inspect FILE.gguf...`
//! and `verify FILE.gguf`.

use std::io::Write;
use std::path::{Path, PathBuf};

use stload::gguf::tensor_types::{parse_ggml_type, TypeOverrides};
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

/// `stload convert SRC.gguf --out DIR --to-hf [--dtype f32|f16|bf16]`: the Hugging Face
/// directory rebuilt from a GGUF model.
pub fn to_hf(src: &Path, out: &Path, dtype: Option<&str>) -> Result<()> {
    use std::sync::atomic::Ordering;
    let target = match dtype.map(str::to_ascii_lowercase).as_deref() {
        None | Some("f32") => stload::Dtype::F32,
        Some("f16") => stload::Dtype::F16,
        Some("bf16") => stload::Dtype::BF16,
        Some(d) => {
            return Err(Error::InvalidArgument(format!(
                "--dtype \"{d}\": --to-hf writes f32, f16 or bf16"
            )))
        }
    };
    super::stop_on_signals()?;
    let model = super::open(&[PathBuf::from(src)], &Options::default())?;
    let written = stload::__private::gguf_to_hf::write_hf(&model, out, target, &mut |_| {
        !super::INTERRUPTED.load(Ordering::Relaxed)
    })?;
    for path in &written {
        println!("wrote {}", super::escaped(&path.display().to_string()));
    }
    println!(
        "hugging face: from {} GGUF tensors, as {}, in {}",
        model.len(),
        target.name(),
        out.display()
    );
    Ok(())
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

/// The `--outtype` help: every output type with the bits per weight of its main block type.
pub fn outtype_help() -> String {
    let mut help = String::from(
        "GGUF tensor types: auto (F16, small tensors F32), f32, f16, bf16, or a quantised file \
         type by llama-quantize's name, with llama.cpp's per-tensor types (bits per weight of \
         most tensors; the _M and _L mixes raise some):",
    );
    for t in OutType::ALL {
        if let Some(bpw) = t.bits_per_weight() {
            help.push_str(&format!(" {t} {bpw:.2},"));
        }
    }
    help.pop();
    help.push_str(". Aliases: q3_k, q4_k, q5_k (the _M mixes).");
    help
}

/// llama-quantize's overrides of the per-tensor types of a quantised `--outtype`.
#[derive(clap::Args, Debug, Default)]
pub struct QuantArgs {
    /// Quantised GGUF: the type of output.weight (and of a tied token embedding), by ggml's
    /// name (q8_0, q6_k, f16, ...), as llama-quantize's --output-tensor-type.
    #[arg(long, value_name = "TYPE")]
    pub output_tensor_type: Option<String>,
    /// Quantised GGUF: the type of token_embd.weight, as llama-quantize's
    /// --token-embedding-type.
    #[arg(long, value_name = "TYPE")]
    pub token_embedding_type: Option<String>,
    /// Quantised GGUF: tensors whose name the regular expression PATTERN matches take TYPE
    /// (the first matching one given wins); repeatable, as llama-quantize's --tensor-type.
    #[arg(long, value_name = "PATTERN=TYPE")]
    pub tensor_type: Vec<String>,
    /// Quantised GGUF: every quantised tensor in the file type's main type (no mix), as
    /// llama-quantize's --pure.
    #[arg(long)]
    pub pure: bool,
}

impl QuantArgs {
    /// Whether any of the four flags was given.
    pub fn given(&self) -> bool {
        self.output_tensor_type.is_some()
            || self.token_embedding_type.is_some()
            || !self.tensor_type.is_empty()
            || self.pure
    }

    /// The overrides, each value checked, the flag named in an error; refused with a float
    /// output type, which they do not change.
    pub fn overrides(&self, outtype: OutType) -> Result<TypeOverrides> {
        if self.given() && outtype.quantized().is_none() {
            return Err(Error::InvalidArgument(format!(
                "--output-tensor-type, --token-embedding-type, --tensor-type and --pure apply to a quantised --outtype, not {outtype}"
            )));
        }
        let ty = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|v| parse_ggml_type(v).map_err(|e| flagged(flag, &e)))
                .transpose()
        };
        Ok(TypeOverrides {
            output: ty("--output-tensor-type", &self.output_tensor_type)?,
            token_embedding: ty("--token-embedding-type", &self.token_embedding_type)?,
            tensor_types: self
                .tensor_type
                .iter()
                .map(|t| t.parse().map_err(|e| flagged("--tensor-type", &e)))
                .collect::<Result<_>>()?,
            pure: self.pure,
        })
    }
}

/// `e`, an invalid argument, with the flag that gave it in front.
fn flagged(flag: &str, e: &Error) -> Error {
    Error::InvalidArgument(format!("{flag}: {e}"))
}

/// `stload convert SRC --out DST.gguf [--outtype T] [--arch A] [--split-max-size N]
/// [--split-max-tensors N]`: a Hugging Face directory to a GGUF llama.cpp runs (in shards
/// with a split limit); with `--arch none`, the tensors under their listed names and only the
/// `general.*` keys (for engines that look ggml tensors up by name).
// Each argument is one flag (or group) of the command, passed straight from clap.
#[allow(clippy::too_many_arguments)]
pub fn convert(
    src: &Path,
    out: &Path,
    force: bool,
    outtype: Option<&str>,
    dtype: Option<&str>,
    split: Option<Split>,
    quant: &QuantArgs,
    options: &Options,
) -> Result<()> {
    if dtype.is_some() {
        return Err(Error::InvalidArgument(
            "--dtype applies to safetensors output; for GGUF use --outtype (auto, f32, f16, bf16, q8_0, q4_k_m, ...)"
                .into(),
        ));
    }
    let outtype: OutType = outtype
        .unwrap_or("auto")
        .parse()
        .map_err(|e| flagged("--outtype", &e))?;
    let types = quant.overrides(outtype)?;
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
        stload::__private::hf_to_gguf::side_files(model.config_dir(), model.options().max_json_size)
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
                types,
                ..GgufPlan::new(NO_ARCH)
            };
            gguf::write_model(&model, out, outtype, plan, &mut progress)
        }
        (false, split) => model.write_gguf_with(out, outtype, split, types, &mut progress),
    };
    bar.finish_and_clear();
    let written = written?;
    if let Some(note) = (!raw).then(|| left_out_note(&model, &options)).flatten() {
        eprintln!("note: {note}");
    }
    for path in &written {
        println!("wrote {}", super::escaped(&path.display().to_string()));
    }
    remove_earlier_shards(&earlier, &written)?;
    for line in fallbacks(&written, outtype, &quant.overrides(outtype)?)? {
        println!("fallback: {}", super::escaped(&line));
    }
    println!("{}", summary(&written, outtype)?);
    Ok(())
}

/// The tensors of the files `written` whose rows are not whole blocks of the type llama.cpp's
/// rule picked and that fell back to another, as llama.cpp's quantizer warns: the rule run
/// again on the names, shapes and keys the files hold.
fn fallbacks(written: &[PathBuf], outtype: OutType, types: &TypeOverrides) -> Result<Vec<String>> {
    if outtype.quantized().is_none() {
        return Ok(Vec::new());
    }
    let files = written
        .iter()
        .map(|p| gguf::read(p))
        .collect::<Result<Vec<_>>>()?;
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let facts = gguf::tensor_types::ModelFacts::from_metadata(&first.metadata);
    let tensors: Vec<(&str, &[u64])> = files
        .iter()
        .flat_map(|f| &f.tensors)
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    Ok(gguf::tensor_types::choose(outtype, &facts, types, &tensors)?.fallbacks)
}

/// Removes the shards of an earlier split (another count) once the new set is in place: left
/// beside it, that set would still load as a model. Only files named as shards of the same
/// prefix were listed, and each passed the output checks (never an input; only with --force).
/// Which stored tensors the architecture left out (a multimodal model's vision tower), read
/// from the stored names: the model opened with `--arch` lists them no more. Only a note: the
/// file is written, so a failure here says nothing.
fn left_out_note(model: &stload::Model, options: &Options) -> Option<String> {
    use stload::__private::arch;
    // A remote model's config_dir is its URL, no local directory to read.
    let dir = model.config_dir().to_str()?;
    if stload::__private::remote::url_of(dir).is_some() {
        return None;
    }
    let arch = arch::resolve_limited(
        options.arch.as_deref().unwrap_or(arch::AUTO),
        model.config_dir(),
        options.max_json_size,
    )
    .ok()?;
    if !arch::leaves_out(arch) {
        return None;
    }
    if options.arch.is_none() {
        return arch::left_out(arch, model.infos().map(|i| i.name));
    }
    let files: Vec<&Path> = model.files().collect();
    let mut plain = options.clone();
    plain.arch = None;
    let stored = stload::Model::open_files(&files, &plain).ok()?;
    arch::left_out(arch, stored.infos().map(|i| i.name))
}

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
    let mut types: Vec<(String, usize)> = Vec::new();
    for (i, path) in written.iter().enumerate() {
        let file = gguf::read(path)?;
        tensors += file.tensors.len();
        for t in &file.tensors {
            let name = t.ty.to_string();
            match types.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => types.push((name, 1)),
            }
        }
        if i == 0 {
            if let Some(Value::String(a)) = file.metadata.get("general.architecture") {
                arch = super::escaped(a).into_owned();
            }
        }
        bytes += std::fs::metadata(path)
            .map_err(|e| Error::io(path.display(), "cannot read its size", &e))?
            .len();
    }
    let mut line = format!(
        "GGUF: architecture {arch}, type {outtype}, {tensors} tensors, {} ({bytes} bytes) in {} file{}",
        indicatif::HumanBytes(bytes),
        written.len(),
        if written.len() == 1 { "" } else { "s" }
    );
    if outtype.quantized().is_some() {
        // A mix: how many tensors took each type.
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let each: Vec<String> = types.iter().map(|(n, c)| format!("{n} {c}")).collect();
        line.push_str(&format!("; tensor types: {}", each.join(", ")));
    }
    Ok(line)
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

/// `stload inspect FILE.gguf... [--json]`: each file's keys and tensors in turn (a heading
/// names each file when there are several); with `--json`, one object per file and line,
/// written element by element so a large array costs no more than the parsed file.
pub fn inspect(paths: &[PathBuf], as_json: bool) -> Result<()> {
    if let Some(other) = paths.iter().find(|p| !is_gguf(p)) {
        let why = if other.is_file() {
            "not a GGUF file: GGUF files are inspected on their own, not with other model files"
        } else {
            "no such file"
        };
        return Err(Error::InvalidArgument(format!(
            "{}: {why}",
            super::escaped(&other.display().to_string())
        )));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let failed = |e: std::io::Error| Error::io("standard output", "cannot write", &e);
    for (i, path) in paths.iter().enumerate() {
        let file = gguf::read(path)?;
        if as_json {
            file.write_json(&mut out).map_err(failed)?;
            writeln!(out).map_err(failed)?;
            continue;
        }
        if paths.len() > 1 {
            let gap = if i > 0 { "\n" } else { "" };
            let shown = path.display().to_string();
            writeln!(out, "{gap}== {} ==", super::escaped(&shown)).map_err(failed)?;
        }
        table(&file, &mut out).map_err(failed)?;
    }
    out.flush().map_err(failed)
}

/// Heading of the shape column: GGUF stores dimensions innermost first (ggml's `ne`, as
/// gguf-dump prints them); the table reverses them, as PyTorch and safetensors list them.
const SHAPE_HEADING: &str = "SHAPE (OUTERMOST FIRST)";

/// The table of one file: version and counts, its keys (long values shortened), its tensors.
fn table(file: &gguf::GgufFile, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "GGUF version {}, {} keys, {} tensors",
        file.version,
        file.metadata.len(),
        file.tensors.len()
    )?;
    if let Some(s) = &file.shard {
        writeln!(
            out,
            "shard {} of {} of a split model ({} tensors in all shards)",
            u32::from(s.no) + 1,
            s.count,
            s.tensors
        )?;
    }
    writeln!(out)?;
    for (k, v) in file.metadata.iter() {
        writeln!(out, "{} = {}", super::escaped(k), super::escaped(&short(v)))?;
    }
    let width = file
        .tensors
        .iter()
        .map(|t| super::escaped(&t.name).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let shape_width = SHAPE_HEADING.len();
    writeln!(
        out,
        "\n{:<width$}  {:<6}  {:<shape_width$}  {:>12}  {:>12}",
        "NAME", "TYPE", SHAPE_HEADING, "BYTES", "OFFSET"
    )?;
    for t in &file.tensors {
        writeln!(
            out,
            "{:<width$}  {:<6}  {:<shape_width$}  {:>12}  {:>12}",
            super::escaped(&t.name),
            t.ty.to_string(),
            format!("{:?}", t.shape),
            t.nbytes,
            t.data_offset
        )?;
    }
    Ok(())
}

/// `stload verify FILE.gguf`: the file's header, or that of every shard of its split set
/// (found by name from any of them), checked as llama.cpp's loader checks them; the summary
/// the "ok" line shows.
pub fn verify(path: &Path) -> Result<String> {
    let set = gguf::read_set(path)?;
    let tensors: usize = set.iter().map(|(_, f)| f.tensors.len()).sum();
    Ok(match set.first() {
        Some((_, f)) if f.shard.is_some() => {
            format!("GGUF split set of {} shards, {tensors} tensors", set.len())
        }
        _ => format!("GGUF, {tensors} tensors"),
    })
}

/// Elements of an array the table shows (of an array nested in it too).
const SHOWN: usize = 6;

/// Characters of a string the table shows: of a value, of an array's element.
const SHOWN_CHARS: usize = 200;
const SHOWN_ELEMENT_CHARS: usize = 40;

/// A value for the table: arrays show their first elements and their length, at every
/// nesting level, and long strings their start, so a line stays short whatever the file holds.
fn short(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("{} ({} elements)", array_text(a, 1), a.len()),
        Value::String(s) if s.chars().nth(SHOWN_CHARS).is_some() => string_text(s, SHOWN_CHARS),
        other => gguf::value_json(other).to_string(),
    }
}

/// `s` quoted, cut to `max` characters (then its length in bytes follows).
fn string_text(s: &str, max: usize) -> String {
    if s.chars().nth(max).is_none() {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(max).collect();
    format!("{head:?}... ({} bytes)", s.len())
}

/// The first elements of an array at nesting `depth` (1 for a key's value); past depth 2 an
/// array shows its length only.
fn array_text(a: &Array, depth: usize) -> String {
    fn list<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
        let head: Vec<String> = v.iter().take(SHOWN).map(f).collect();
        let more = if v.len() > SHOWN { ", ..." } else { "" };
        format!("[{}{more}]", head.join(", "))
    }
    fn debug<T: std::fmt::Debug>(x: &T) -> String {
        format!("{x:?}")
    }
    if depth > 2 {
        return format!("[{} elements]", a.len());
    }
    match a {
        Array::U8(a) => list(a, debug),
        Array::I8(a) => list(a, debug),
        Array::U16(a) => list(a, debug),
        Array::I16(a) => list(a, debug),
        Array::U32(a) => list(a, debug),
        Array::I32(a) => list(a, debug),
        Array::F32(a) => list(a, debug),
        Array::Bool(a) => list(a, debug),
        Array::String(a) => list(a, |s| string_text(s, SHOWN_ELEMENT_CHARS)),
        Array::U64(a) => list(a, debug),
        Array::I64(a) => list(a, debug),
        Array::F64(a) => list(a, debug),
        Array::Array(a) => list(a, |inner| array_text(inner, depth + 1)),
    }
}
