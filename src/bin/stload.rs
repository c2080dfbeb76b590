//! The `stload` command: inspect and verify safetensors models, convert them (also to GGUF).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "cli/gguf.rs"]
mod gguf;

use clap::{Parser, Subcommand};
use serde_json::json;
use stload::{Dtype, Model, Options, Tensor};

#[derive(Parser)]
#[command(
    name = "stload",
    version,
    about = "Inspect, verify and convert safetensors model weights"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every tensor: name, dtype, shape, bytes and first values. With no PATH, writes a
    /// built-in sample model to a temporary directory and inspects that.
    Inspect {
        /// A model directory, one or more .safetensors files, or one GGUF file.
        paths: Vec<PathBuf>,
        /// Print JSON: {"tensors":[{name,dtype,shape,nbytes,file,data_offset}],"metadata":{}}.
        #[arg(long)]
        json: bool,
        /// Show the names and layouts a built-in architecture maps to (llama, mixtral, phi3).
        #[arg(long)]
        arch: Option<String>,
    },
    /// Write the model at SRC to DST, floats converted to --dtype: a file gives a file, a
    /// directory gives a directory (shard names, metadata and index.json kept).
    Convert {
        /// A model directory or a .safetensors file.
        src: PathBuf,
        /// Target dtype for floating-point tensors (f32, f16, bf16, f64, f8_e4m3, ...);
        /// integer and boolean tensors keep theirs. Default: keep every dtype.
        #[arg(long)]
        dtype: Option<String>,
        /// Output file or directory.
        #[arg(long)]
        out: PathBuf,
        /// Apply a built-in architecture's renames and transforms (llama, mixtral, phi3).
        #[arg(long)]
        arch: Option<String>,
        /// GGUF tensor types: auto (F16, small tensors F32), f32, f16, bf16 or q8_0.
        #[arg(long)]
        outtype: Option<String>,
        /// Output format: gguf or safetensors. Default: gguf for a .gguf output.
        #[arg(long)]
        format: Option<String>,
    },
    /// Check every header and every tensor's data range; exit 0 when all are valid, 1 otherwise.
    Verify {
        /// Model directories or .safetensors files, each checked on its own.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Inspect { paths, json, .. } if paths.len() == 1 && gguf::is_gguf(&paths[0]) => {
            gguf::inspect(&paths[0], json)
        }
        Command::Inspect { paths, json, arch } => inspect(&paths, json, &options(arch)),
        Command::Verify { paths } => return verify(&paths),
        Command::Convert {
            src,
            dtype,
            out,
            arch,
            outtype,
            format,
        } => match gguf::wanted(&out, format.as_deref()) {
            Ok(true) => gguf::convert(
                &src,
                &out,
                outtype.as_deref(),
                dtype.as_deref(),
                &options(arch),
            ),
            Ok(false) if outtype.is_some() => Err(stload::Error::InvalidArgument(
                "--outtype applies to GGUF output; for safetensors use --dtype".into(),
            )),
            Ok(false) => convert(&src, dtype.as_deref(), &out, &options(arch)),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn options(arch: Option<String>) -> Options {
    Options {
        arch,
        ..Options::default()
    }
}

/// Opens a directory, or the listed files, as one model.
fn open(paths: &[PathBuf], options: &Options) -> stload::Result<Model> {
    match paths {
        [one] if one.is_dir() => Model::open_dir(one, options),
        files => Model::open_files(files, options),
    }
}

fn inspect(paths: &[PathBuf], as_json: bool, options: &Options) -> stload::Result<()> {
    let sample_dir;
    let model = if paths.is_empty() {
        sample_dir = tempfile::tempdir()
            .map_err(|e| stload::Error::io("temporary directory", "cannot create", &e))?;
        let path = stload::sample::write_sample(sample_dir.path())?;
        if !as_json {
            println!(
                "no path given: inspecting the built-in sample {}\n",
                path.display()
            );
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
    let width = model.names().map(str::len).max().unwrap_or(4).max(4);
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
            name,
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
        println!("metadata {k} = {v}");
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

fn convert(src: &Path, dtype: Option<&str>, out: &Path, options: &Options) -> stload::Result<()> {
    let target = dtype
        .map(|name| {
            Dtype::from_name(name)
                .ok_or_else(|| stload::Error::InvalidArgument(format!("unknown dtype \"{name}\"")))
        })
        .transpose()?;
    if out == src {
        return Err(stload::Error::InvalidArgument(
            "--out must differ from the source".into(),
        ));
    }
    let model = open(&[src.to_path_buf()], options)?;
    let total: u64 = model
        .names()
        .filter_map(|n| model.info(n).ok())
        .map(|i| {
            let to = stload::convert::whole_model_dtype(i.dtype, target);
            i.shape.iter().product::<u64>() * u64::from(to.bits()) / 8
        })
        .sum();
    // Drawn only when stderr is a terminal.
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let written = stload::export::export(&model, src, target, out, &mut |bytes| bar.inc(bytes))?;
    bar.finish_and_clear();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn verify(paths: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for path in paths {
        let checked = open(std::slice::from_ref(path), &Options::default()).and_then(|model| {
            for name in model.names() {
                model.get(name)?;
            }
            Ok(model)
        });
        match checked {
            Ok(model) => println!("ok: {} ({} tensors)", path.display(), model.len()),
            Err(e) => {
                failed = true;
                println!("invalid: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
