//! The `stload` command: inspect, verify and convert models (safetensors and PyTorch in;
//! safetensors or GGUF out).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[path = "cli/gguf.rs"]
mod gguf;

use clap::{Parser, Subcommand};
use serde_json::json;
use stload::__private::arch;
use stload::__private::export::Inputs;
use stload::{Dtype, Model, Options, Tensor};

#[derive(Parser)]
#[command(
    name = "stload",
    version,
    about = "Inspect, verify and convert model weights: safetensors and PyTorch checkpoints, \
             to safetensors or to GGUF for llama.cpp and ollama (convert SRC --out MODEL.gguf)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every tensor: name, dtype, shape, bytes and first values. With no PATH, inspects
    /// the built-in sample model, written to the user's cache directory (the message says where).
    Inspect {
        /// A model directory, one or more .safetensors or PyTorch (.bin, .pth, .pt) files, or
        /// GGUF files (each shown on its own; shapes outermost first, the reverse of gguf-dump).
        paths: Vec<PathBuf>,
        /// Print JSON: {"tensors":[{name,dtype,shape,nbytes,file,data_offset}],"metadata":{}}.
        #[arg(long)]
        json: bool,
        // Help from the architecture registry, so it lists every architecture.
        #[arg(long, help = format!(
            "Show the names and layouts a built-in architecture maps to ({})",
            arch::help()
        ))]
        arch: Option<String>,
    },
    /// Write the built-in sample model (one small tensor of each common dtype) to
    /// DIR/sample.safetensors, creating DIR when needed.
    Sample {
        /// The directory to write sample.safetensors into.
        dir: PathBuf,
    },
    /// Write the model at SRC to --out: a GGUF file llama.cpp runs when --out ends in .gguf
    /// (or with --format gguf), else safetensors with floats converted to --dtype (a file gives
    /// a file; a directory gives a directory: shard names, metadata, index.json, config.json,
    /// tokenizer and the other non-weight files kept). Prints the files written and a summary.
    /// Ctrl-C stops it and removes the unfinished output.
    Convert {
        /// A model directory, or a .safetensors or PyTorch (.bin, .pth, .pt) file.
        src: PathBuf,
        /// Target dtype for floating-point tensors: f32, f16, bf16, f64, f8_e4m3 or f8_e5m2;
        /// integer and boolean tensors keep theirs. Default: keep every dtype.
        #[arg(long)]
        dtype: Option<String>,
        /// Output file or directory; never one of the input's files.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file, or write into a non-empty output directory.
        #[arg(long)]
        force: bool,
        #[arg(long, help = format!(
            "A built-in architecture ({}): its renames and transforms; for GGUF output, \"none\" \
             writes the tensors as listed with only general.* keys. GGUF output detects it from \
             config.json when unset.",
            arch::help()
        ))]
        arch: Option<String>,
        #[arg(long, help = gguf::outtype_help())]
        outtype: Option<String>,
        /// llama-quantize's per-tensor type overrides for a quantised --outtype.
        #[command(flatten)]
        quant: Box<gguf::QuantArgs>,
        /// Output format: gguf or safetensors. Default: gguf for an --out ending in .gguf,
        /// safetensors for any other.
        #[arg(long)]
        format: Option<String>,
        /// GGUF output in shards of at most N bytes of tensor data (N, NK, NM or NG: thousands,
        /// millions, billions), named as llama.cpp's gguf-split names them: OUT less ".gguf",
        /// then -00001-of-0000K.gguf. A tensor larger than N goes alone in a shard.
        #[arg(long, value_name = "N")]
        split_max_size: Option<String>,
        /// GGUF output in shards of at most N tensors (named as with --split-max-size).
        #[arg(long, value_name = "N")]
        split_max_tensors: Option<String>,
        /// GGUF output: write this llama.cpp pre-tokenizer type (llama-bpe, qwen2, gpt-2, ...)
        /// as tokenizer.ggml.pre instead of the one derived from tokenizer.json's pre-tokenizer,
        /// which is refused when no llama.cpp type splits text as it does.
        #[arg(long, value_name = "NAME")]
        tokenizer_pre: Option<String>,
        /// SRC is a GGUF model file: write a Hugging Face directory at --out (new or empty):
        /// model.safetensors under Hugging Face names (the inverse of stload's GGUF export),
        /// floats and quantised types as --dtype f32 (default), f16 or bf16, and config.json,
        /// tokenizer.json and tokenizer_config.json rebuilt from the GGUF keys.
        #[arg(long)]
        to_hf: bool,
    },
    /// Check every header and every tensor's data range; exit 0 when all are valid, 1 otherwise.
    Verify {
        /// Model directories, .safetensors (or PyTorch) files or GGUF files, each checked on its
        /// own (a shard of a split GGUF: every shard of its set, and that they agree).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Exit status after SIGINT or SIGTERM, as shells report a process killed by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away
    // (`stload inspect | head`) instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Inspect { paths, json, .. } if paths.iter().any(|p| gguf::is_gguf(p)) => {
            gguf::inspect(&paths, json)
        }
        Command::Inspect { paths, json, arch } => inspect(&paths, json, &options(arch)),
        Command::Sample { dir } => sample(&dir),
        Command::Verify { paths } => return verify(&paths),
        Command::Convert {
            src,
            dtype,
            out,
            force,
            arch,
            outtype,
            format,
            split_max_size,
            split_max_tensors,
            tokenizer_pre,
            quant,
            to_hf,
        } => {
            if to_hf {
                let given = [
                    ("--arch", arch.is_some()),
                    ("--outtype", outtype.is_some()),
                    ("--format", format.is_some()),
                    ("--split-max-size", split_max_size.is_some()),
                    ("--split-max-tensors", split_max_tensors.is_some()),
                    ("--tokenizer-pre", tokenizer_pre.is_some()),
                    ("--force", force),
                    (
                        "--output-tensor-type and the other quantisation flags",
                        quant.given(),
                    ),
                ];
                match given.iter().find(|(_, set)| *set) {
                    Some((flag, _)) => Err(stload::Error::InvalidArgument(format!(
                        "{flag} does not apply to --to-hf"
                    ))),
                    None => gguf::to_hf(&src, &out, dtype.as_deref()),
                }
            } else {
                match gguf::wanted(&out, format.as_deref()) {
            Ok(true) => gguf::split_arg(split_max_size.as_deref(), split_max_tensors.as_deref())
                .and_then(|split| {
                    let mut options = options(arch);
                    options.set_tokenizer_pre(tokenizer_pre.as_deref())?;
                    gguf::convert(
                        &src,
                        &out,
                        force,
                        outtype.as_deref(),
                        dtype.as_deref(),
                        split,
                        &quant,
                        &options,
                    )
                }),
            Ok(false) if tokenizer_pre.is_some() => Err(stload::Error::InvalidArgument(
                "--tokenizer-pre applies to GGUF output".into(),
            )),
            Ok(false) if quant.given() => Err(stload::Error::InvalidArgument(
                "--output-tensor-type, --token-embedding-type, --tensor-type and --pure apply to GGUF output".into(),
            )),
            Ok(false) if outtype.is_some() => Err(stload::Error::InvalidArgument(
                "--outtype applies to GGUF output; for safetensors use --dtype".into(),
            )),
            Ok(false) if split_max_size.is_some() || split_max_tensors.is_some() => {
                Err(stload::Error::InvalidArgument(
                    "--split-max-size and --split-max-tensors apply to GGUF output".into(),
                ))
            }
            Ok(false) => convert(
                &src,
                dtype.as_deref(),
                &out,
                force,
                format.is_none(),
                &options(arch),
            ),
            Err(e) => Err(e),
            }
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stload: {}", escaped(&e.to_string()));
            match e {
                stload::Error::Cancelled(_) => ExitCode::from(EXIT_INTERRUPTED),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn options(arch: Option<String>) -> Options {
    {
        let mut o = Options::default();
        o.arch = arch;
        o
    }
}

/// Opens a directory, or the listed files, as one model.
fn open(paths: &[PathBuf], options: &Options) -> stload::Result<Model> {
    let url = |p: &PathBuf| {
        p.to_str()
            .and_then(stload::__private::remote::url_of)
            .is_some()
    };
    let prefix = |p: &PathBuf| {
        p.to_str()
            .is_some_and(stload::__private::remote::is_prefix_url)
    };
    match paths {
        // A URL first: never read as the local path it spells (`http:/host/...`).
        [one] if url(one) && prefix(one) => Model::open_dir(one, options),
        [one] if !url(one) && one.is_dir() => Model::open_dir(one, options),
        files => Model::open_files(files, options),
    }
}

/// `text` with control characters (and the invisible ones that reorder or hide text) shown as
/// Rust escapes, so a hostile tensor name or metadata value cannot drive the terminal.
fn escaped(text: &str) -> Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn sample(dir: &Path) -> stload::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| stload::Error::io(dir.display(), "cannot create directory", &e))?;
    let path = stload::__private::sample::write_sample(dir)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Where `inspect` with no path keeps the sample: the user's cache directory (`stload/` under
/// `$XDG_CACHE_HOME` or `~/.cache` on Linux), or else a new directory under the temporary
/// directory that is kept. Either way the path printed stays valid after the command.
fn sample_dir() -> stload::Result<PathBuf> {
    if let Some(cache) = dirs::cache_dir() {
        let dir = cache.join("stload");
        if std::fs::create_dir_all(&dir).is_ok() {
            return Ok(dir);
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("stload-sample-")
        .tempdir()
        .map_err(|e| stload::Error::io("temporary directory", "cannot create", &e))?;
    Ok(dir.keep())
}

fn inspect(paths: &[PathBuf], as_json: bool, options: &Options) -> stload::Result<()> {
    let model = if paths.is_empty() {
        let path = stload::__private::sample::write_sample(&sample_dir()?)?;
        let note = format!(
            "no path given: inspecting the built-in sample, written to {} \
             (`stload sample DIR` writes it elsewhere)",
            path.display()
        );
        // JSON goes alone on stdout, so it stays parseable.
        if as_json {
            eprintln!("{note}");
        } else {
            println!("{note}\n");
        }
        open(&[path], options)?
    } else {
        open(paths, options)?
    };
    if as_json {
        print_json(&model)
    } else {
        print_table(&model)
    }
}

fn print_json(model: &Model) -> stload::Result<()> {
    let mut tensors = Vec::with_capacity(model.len());
    for name in model.names() {
        let info = model.info(name)?;
        tensors.push(json!({
            "name": info.name,
            "dtype": info.dtype.name(),
            "shape": info.shape,
            "nbytes": info.nbytes,
            "file": info.file.display().to_string(),
            "data_offset": info.data_offset,
        }));
    }
    let metadata: serde_json::Map<String, serde_json::Value> = model
        .metadata_pairs()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    println!("{}", json!({ "tensors": tensors, "metadata": metadata }));
    Ok(())
}

fn print_table(model: &Model) -> stload::Result<()> {
    let width = model
        .names()
        .map(|n| escaped(n).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<11}  {:<18}  {:>12}  FIRST VALUES",
        "NAME", "DTYPE", "SHAPE", "BYTES"
    );
    let mut total = 0u64;
    for name in model.names() {
        let t = model.get(name)?;
        total += t.data().len() as u64;
        println!(
            "{:<width$}  {:<11}  {:<18}  {:>12}  {}",
            escaped(name),
            t.dtype().name(),
            format!("{:?}", t.shape()),
            t.data().len(),
            preview(&t, 4)
        );
    }
    let files: Vec<&Path> = model.files().collect();
    println!(
        "\n{} tensors, {} bytes in {} file(s)",
        model.len(),
        total,
        files.len()
    );
    for (k, v) in model.metadata_pairs() {
        println!("metadata {} = {}", escaped(k), escaped(v));
    }
    Ok(())
}

/// The first `n` values of a tensor as text (raw hex bytes for dtypes shown as bits).
fn preview(t: &Tensor, n: usize) -> String {
    let data = t.data();
    let Some(size) = t.dtype().byte_size() else {
        return hex(&data[..data.len().min(n)]);
    };
    let values: Vec<String> = data
        .chunks_exact(size)
        .take(n)
        .map(|b| value(t.dtype(), b).unwrap_or_else(|| hex(b)))
        .collect();
    let more = if t.elements() > n as u64 { ", ..." } else { "" };
    format!("[{}{more}]", values.join(", "))
}

/// One element as text, or `None` for dtypes shown as raw bits.
fn value(dtype: Dtype, b: &[u8]) -> Option<String> {
    fn le<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.get(..N)?.try_into().ok()
    }
    Some(match dtype {
        Dtype::Bool | Dtype::U8 => b.first()?.to_string(),
        Dtype::I8 => i8::from_le_bytes(le(b)?).to_string(),
        Dtype::I16 => i16::from_le_bytes(le(b)?).to_string(),
        Dtype::U16 => u16::from_le_bytes(le(b)?).to_string(),
        Dtype::I32 => i32::from_le_bytes(le(b)?).to_string(),
        Dtype::U32 => u32::from_le_bytes(le(b)?).to_string(),
        Dtype::I64 => i64::from_le_bytes(le(b)?).to_string(),
        Dtype::U64 => u64::from_le_bytes(le(b)?).to_string(),
        Dtype::F16 => half::f16::from_le_bytes(le(b)?).to_string(),
        Dtype::BF16 => half::bf16::from_le_bytes(le(b)?).to_string(),
        Dtype::F32 => f32::from_le_bytes(le(b)?).to_string(),
        Dtype::F64 => f64::from_le_bytes(le(b)?).to_string(),
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `--dtype` of a whole-model conversion: a name of one of
/// [`stload::convert::WHOLE_MODEL_TARGETS`], else an error listing them.
fn whole_model_target(name: &str) -> stload::Result<Dtype> {
    let dtype = Dtype::from_name(name).ok_or_else(|| {
        stload::Error::InvalidArgument(format!(
            "unknown dtype \"{name}\": use one of {}",
            stload::convert::whole_model_target_names()
        ))
    })?;
    stload::convert::check_whole_model_target(dtype)?;
    Ok(dtype)
}

/// Set by the SIGINT/SIGTERM handler; the conversion's progress callback then cancels.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long a conversion asked to stop may take to clean up before the process exits anyway.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Makes SIGINT and SIGTERM (and SIGHUP) ask the running conversion to stop, so its writer
/// removes its temporary file; a second signal exits at once, and so does the first after
/// [`STOP_GRACE`]: a conversion waiting on something other than its write loop (a slow server
/// at open) checks no flag, and one signal must still end the process.
fn stop_on_signals() -> stload::Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        std::thread::spawn(|| {
            std::thread::sleep(STOP_GRACE);
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        });
    })
    .map_err(|e| stload::Error::InvalidArgument(format!("cannot handle signals: {e}")))
}

/// `stload convert` to safetensors; `implied` when no --format chose it (the summary then says
/// how to get GGUF instead).
fn convert(
    src: &Path,
    dtype: Option<&str>,
    out: &Path,
    force: bool,
    implied: bool,
    options: &Options,
) -> stload::Result<()> {
    let target = dtype.map(whole_model_target).transpose()?;
    stop_on_signals()?;
    let model = open(&[src.to_path_buf()], options)?;
    let inputs: Vec<&Path> = model.files().collect();
    check_output(src, &inputs, out, false, force)?;
    let total: u64 = model
        .names()
        .filter_map(|n| model.info(n).ok())
        .map(|i| {
            let to = stload::convert::whole_model_dtype(i.dtype, target);
            i.shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .and_then(|n| to.bytes_for(n))
                .unwrap_or(0)
        })
        .sum();
    // Drawn only when stderr is a terminal.
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let written = stload::__private::export::export(&model, src, target, out, &mut |bytes| {
        bar.inc(bytes);
        !INTERRUPTED.load(Ordering::Relaxed)
    });
    bar.finish_and_clear();
    let written = written?;
    let mut bytes = 0u64;
    for path in &written {
        println!("wrote {}", escaped(&path.display().to_string()));
        bytes += std::fs::metadata(path)
            .map_err(|e| stload::Error::io(path.display(), "cannot read its size", &e))?
            .len();
    }
    let floats = match target {
        Some(t) => format!("floats as {}", t.name()),
        None => "dtypes as stored".to_string(),
    };
    println!(
        "safetensors: {} tensors, {floats}, {} ({bytes} bytes) in {} file{}{}",
        model.len(),
        indicatif::HumanBytes(bytes),
        written.len(),
        if written.len() == 1 { "" } else { "s" },
        if implied {
            " (safetensors since --out does not end in .gguf; --format gguf writes GGUF)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Refuses an output that is, or would replace, one of the input's files (whatever the path
/// text: links, `./`, `..`, hard links), the input directory itself, or (without `force`) an
/// existing file or non-empty directory.
fn check_output(
    src: &Path,
    inputs: &[&Path],
    out: &Path,
    out_is_file: bool,
    force: bool,
) -> stload::Result<()> {
    let refuse =
        |rule: String| stload::Error::InvalidArgument(format!("--out {}: {rule}", out.display()));
    let Ok(meta) = std::fs::metadata(out) else {
        return Ok(());
    };
    // The input's files, and those with the source itself (a file again, or its directory).
    let files = Inputs::new(inputs.iter().copied());
    let ids = Inputs::new(inputs.iter().copied().chain([src]));
    if let Some(input) = ids.named(out) {
        return Err(refuse(format!(
            "is the input {}; write somewhere else",
            input.display()
        )));
    }
    // A URL names no local directory, whatever a local path spelled like it holds.
    let src_is_dir = src
        .to_str()
        .and_then(stload::__private::remote::url_of)
        .is_none()
        && src.is_dir();
    if !meta.is_dir() {
        if src_is_dir && !out_is_file {
            return Err(refuse(
                "is a file, but a directory converts into a directory".into(),
            ));
        }
        if !force {
            return Err(refuse("exists; pass --force to replace it".into()));
        }
        return Ok(());
    }
    if !src_is_dir || out_is_file {
        return Err(refuse("is a directory; name the output file".into()));
    }
    let entries = std::fs::read_dir(out)
        .map_err(|e| stload::Error::io(out.display(), "cannot list directory", &e))?;
    let mut empty = true;
    for entry in entries {
        let entry =
            entry.map_err(|e| stload::Error::io(out.display(), "cannot list directory", &e))?;
        empty = false;
        if let Some(input) = files.named(&entry.path()) {
            return Err(refuse(format!(
                "holds {}, which is the input {}; write somewhere else",
                entry.file_name().to_string_lossy(),
                input.display()
            )));
        }
    }
    if !empty && !force {
        return Err(refuse(
            "is a directory that is not empty; pass --force to write into it".into(),
        ));
    }
    Ok(())
}

fn verify(paths: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for path in paths {
        // Checks ranges without reading data: a small file may list views of gigabytes.
        let checked = if gguf::is_gguf(path) {
            gguf::verify(path)
        } else {
            open(std::slice::from_ref(path), &Options::default())
                .and_then(|model| model.verify().map(|()| format!("{} tensors", model.len())))
        };
        let shown = path.display().to_string();
        match checked {
            Ok(summary) => println!("ok: {} ({summary})", escaped(&shown)),
            Err(e) => {
                failed = true;
                println!("invalid: {}", escaped(&e.to_string()));
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
