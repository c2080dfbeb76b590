//! Writing a model as GGUF v3: header, metadata, tensor infos with aligned offsets, then every
//! tensor's data streamed from the model through the conversion kernels into the file.
//!
//! With a [`Split`] in the plan the output is cut into shards as llama.cpp's gguf-split does
//! ([`super::split`]).
//!
//! Every file is written under a temporary name in the destination directory and renamed at
//! the end, once all are written: on an error or a cancel the temporary files are removed and
//! nothing appears at the destination. Memory use is a few chunk buffers, not the model.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::kv::{Array, Metadata, Value};
use crate::model::Model;
use crate::write::temporary_output;

use super::mxfp4;
use super::q8_0;
use super::quant;
use super::tensor_types::{self, ModelFacts, TypeOverrides};
use super::types::{tensor_type, GgmlType, OutType};
use crate::gguf_format::{shard_keys, shard_path, Split};

pub use crate::gguf_format::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
/// The format version written.
pub const VERSION: u32 = 3;
/// Longest tensor name llama.cpp accepts, in bytes (its `GGML_MAX_NAME` less the terminator).
pub const MAX_NAME_BYTES: usize = 63;
/// `general.quantization_version` written.
pub const QUANTIZATION_VERSION: u32 = 2;

/// Elements converted per step: a multiple of the Q8_0 block, 4 MiB of f32.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// A per-tensor value fix-up applied in f32 before conversion (e.g. gemma's norm "+1").
pub type Adjust = fn(&mut [f32]);

pub use crate::kv::ComputedTensor;

/// A weight stored with one scale per block (an FP8 checkpoint's `weight_scale_inv`): its
/// values are multiplied in f32 by their block's scale before conversion, as llama.cpp's
/// converter dequantises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockScale {
    /// The model's tensor holding the scales: the weight's dimensions, the last two divided
    /// by `block` and rounded up (a partial block at the end has its own scale).
    pub tensor: String,
    /// Rows and columns of one block of the weight's last two dimensions.
    pub block: [u64; 2],
}

/// What to write besides the model's own tensors: filled by the architecture and tokenizer
/// code, so the writer knows nothing of either.
pub struct GgufPlan<'a> {
    /// Architecture and tokenizer keys; must hold `general.architecture`. The writer adds
    /// `general.name`, `general.file_type`, `general.quantization_version` and
    /// `general.alignment` when missing.
    pub metadata: Metadata,
    /// Tensors computed in f32, appended after the model's.
    pub extra: Vec<ComputedTensor>,
    /// For a tensor name, a fix-up applied to its values in f32 before conversion.
    pub adjust: &'a dyn Fn(&str) -> Option<Adjust>,
    /// Tensors of the model not written.
    pub skip: &'a dyn Fn(&str) -> bool,
    /// For a tensor name, the block scales its values are multiplied by first, if any.
    pub scale: &'a dyn Fn(&str) -> Option<BlockScale>,
    /// Write shards `PREFIX-00001-of-0000N.gguf` (even when one is enough) instead of one file.
    pub split: Option<Split>,
    /// Files besides the model's that this plan was built from (`config.json`, tokenizer
    /// files): like the model's files, no output may be one of them.
    pub inputs: Vec<PathBuf>,
    /// llama-quantize's overrides of the per-tensor types of a quantised output type
    /// (ignored by the float ones).
    pub types: TypeOverrides,
}

fn no_adjust(_: &str) -> Option<Adjust> {
    None
}

fn no_skip(_: &str) -> bool {
    false
}

fn no_scale(_: &str) -> Option<BlockScale> {
    None
}

impl GgufPlan<'static> {
    /// A plan with only `general.architecture` = `arch`: every tensor written as it is.
    pub fn new(arch: &str) -> GgufPlan<'static> {
        let mut metadata = Metadata::new();
        metadata.set("general.architecture", arch);
        GgufPlan {
            metadata,
            extra: Vec::new(),
            adjust: &no_adjust,
            skip: &no_skip,
            scale: &no_scale,
            split: None,
            inputs: Vec::new(),
            types: TypeOverrides::default(),
        }
    }
}

impl std::fmt::Debug for GgufPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufPlan")
            .field("metadata", &self.metadata)
            .field("extra", &self.extra.len())
            .field("split", &self.split)
            .finish_non_exhaustive()
    }
}

/// Where a tensor's values come from.
enum Origin {
    Model,
    Extra(usize),
    /// An MXFP4 tensor joined from the model's blocks and scales tensors of these names.
    Mxfp4 {
        blocks: String,
        scales: String,
    },
}

/// One tensor as it will be written.
struct Planned {
    name: String,
    origin: Origin,
    /// Dimensions, outermost first (at least one).
    shape: Vec<u64>,
    ty: GgmlType,
    nbytes: u64,
    /// Offset in its file's data section.
    offset: u64,
}

/// Writes `model` as a GGUF v3 file at `path` with tensor types chosen by `outtype`, the
/// metadata and extra tensors of `plan`, and returns the files written: `path`, or with
/// `plan.split` the shards named after it ([`super::shard_path`]). `progress(done, total)` is
/// told the tensor bytes written so far; returning false cancels ([`Error::Cancelled`]).
/// Nothing is left at the destination on any error; no output may be one of the model's files.
pub fn write_model(
    model: &Model,
    path: &Path,
    outtype: OutType,
    plan: GgufPlan<'_>,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Vec<PathBuf>> {
    let shown = path.display().to_string();
    if let Some(split) = &plan.split {
        split.check(path)?;
    }
    let metadata = complete_metadata(model, &plan.metadata, outtype, &shown)?;
    let alignment = match metadata.get("general.alignment") {
        Some(Value::U32(a)) => u64::from(*a),
        _ => u64::from(DEFAULT_ALIGNMENT),
    };
    let mut tensors = plan_tensors(model, &plan, outtype, &metadata)?;
    let padded: Vec<u64> = tensors
        .iter()
        .map(|t| t.nbytes.next_multiple_of(alignment))
        .collect();
    let shards = match &plan.split {
        None => std::iter::once(0..tensors.len()).collect(),
        Some(split) => split.shards(&padded),
    };
    let mut headers = Vec::with_capacity(shards.len());
    for (no, range) in shards.iter().enumerate() {
        let mut offset = 0u64;
        for t in &mut tensors[range.clone()] {
            t.offset = offset;
            offset = offset
                .checked_add(t.nbytes)
                .map(|o| o.next_multiple_of(alignment))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("{shown}: tensor data past 2^64 bytes"))
                })?;
        }
        let mut m = if no == 0 {
            metadata.clone()
        } else {
            let mut m = Metadata::new();
            if alignment != u64::from(DEFAULT_ALIGNMENT) {
                m.set("general.alignment", alignment as u32);
            }
            m
        };
        if plan.split.is_some() {
            shard_keys(&shown, &mut m, no, shards.len(), tensors.len())?;
        }
        headers.push(header_bytes(&m, &tensors[range.clone()])?);
    }
    // The shard count fits in u16 now (shard_keys checked it).
    let paths: Vec<PathBuf> = match plan.split {
        None => vec![path.to_path_buf()],
        Some(_) => (1..=shards.len())
            .map(|no| shard_path(path, no as u32, shards.len() as u32))
            .collect(),
    };
    for p in &paths {
        refuse_input_files(model, &plan.inputs, p, &p.display().to_string())?;
    }
    let total: u64 = tensors.iter().map(|t| t.nbytes).sum();

    let mut stream = Stream::new(model.options().effective_threads());
    let mut done = 0u64;
    if !progress(0, total) {
        return Err(cancelled(&shown));
    }
    let mut written = Vec::with_capacity(shards.len());
    for ((range, header), p) in shards.iter().zip(&headers).zip(&paths) {
        let mut file = ShardFile {
            shown: p.display().to_string(),
            alignment,
            done: &mut done,
            total,
            progress: &mut *progress,
        };
        written.push(file.write(
            p,
            header,
            &tensors[range.clone()],
            &plan,
            model,
            &mut stream,
        )?);
    }
    persist_all(written, &paths)?;
    Ok(paths)
}

/// One output file being written: its name in errors, and the progress of the whole output.
struct ShardFile<'a> {
    shown: String,
    alignment: u64,
    done: &'a mut u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64) -> bool,
}

impl ShardFile<'_> {
    /// Writes `header` and the data of `tensors` into a new temporary file beside `path`.
    fn write(
        &mut self,
        path: &Path,
        header: &[u8],
        tensors: &[Planned],
        plan: &GgufPlan<'_>,
        model: &Model,
        stream: &mut Stream,
    ) -> Result<tempfile::TempPath> {
        let shown = self.shown.as_str();
        let io = |what: &str, e: std::io::Error| Error::io(shown, what, &e);
        let tmp = temporary_output(path, ".gguf.tmp")?;
        let alignment = self.alignment;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let mut pos = header.len() as u64;
        out.write_all(header).map_err(|e| io("cannot write", e))?;
        pad(&mut out, &mut pos, alignment).map_err(|e| io("cannot write", e))?;
        let data_start = pos;
        for t in tensors {
            debug_assert_eq!(pos - data_start, t.offset);
            let before = pos;
            let (done, total) = (&mut *self.done, self.total);
            let progress = &mut *self.progress;
            let mut sink = |bytes: &[u8]| -> Result<()> {
                out.write_all(bytes).map_err(|e| io("cannot write", e))?;
                pos += bytes.len() as u64;
                *done += bytes.len() as u64;
                if progress(*done, total) {
                    Ok(())
                } else {
                    Err(cancelled(shown))
                }
            };
            let adjust = (plan.adjust)(&t.name);
            match &t.origin {
                Origin::Model => {
                    let scaling = match (plan.scale)(&t.name) {
                        Some(scale) => Some(Scaling::read(model, &t.name, &scale, stream.threads)?),
                        None => None,
                    };
                    let source = model.get(&t.name)?;
                    let edit = Edit {
                        scaling: scaling.as_ref(),
                        adjust,
                    };
                    stream.tensor(
                        &t.name,
                        source.dtype(),
                        source.data(),
                        t.ty,
                        edit,
                        &mut sink,
                    )?;
                    drop(source);
                    // Its bytes are in the output now: let the mapped input pages go, so the
                    // process holds about one tensor of the input, whatever the model's size.
                    model.release_source(model.entry(&t.name)?);
                }
                Origin::Extra(i) => {
                    let values: &[u8] = bytemuck::cast_slice(&plan.extra[*i].values);
                    let edit = Edit {
                        scaling: None,
                        adjust,
                    };
                    stream.tensor(&t.name, Dtype::F32, values, t.ty, edit, &mut sink)?;
                }
                Origin::Mxfp4 { blocks, scales } => {
                    stream.mxfp4(model, &t.name, blocks, scales, &mut sink)?;
                }
            }
            if pos - before != t.nbytes {
                return Err(Error::InvalidArgument(format!(
                    "{shown}: tensor \"{}\": {} bytes written but {} planned",
                    t.name,
                    pos - before,
                    t.nbytes
                )));
            }
            pad(&mut out, &mut pos, alignment).map_err(|e| io("cannot write", e))?;
        }
        out.flush().map_err(|e| io("cannot write", e))?;
        drop(out);
        // Closed, so a model of many shards holds one descriptor at a time; still removed on drop.
        Ok(tmp.into_temp_path())
    }
}

/// Renames every finished temporary file to its path. Should a rename fail, the files already
/// renamed are removed again, so the output is all there or not at all.
fn persist_all(files: Vec<tempfile::TempPath>, paths: &[PathBuf]) -> Result<()> {
    for (i, (tmp, p)) in files.into_iter().zip(paths).enumerate() {
        if let Err(e) = tmp.persist(p) {
            for done in &paths[..i] {
                let _ = std::fs::remove_file(done);
            }
            return Err(Error::io(p.display(), "cannot rename into place", &e.error));
        }
    }
    Ok(())
}

fn cancelled(shown: &str) -> Error {
    Error::Cancelled(format!("{shown}: writing cancelled"))
}

/// Refuses a destination that is one of the model's files or of `inputs` (same device and
/// inode), whatever path spells it: renaming over a weight file would break the mapping being
/// read, and over a side file (`config.json`, a tokenizer file) destroy the source.
fn refuse_input_files(model: &Model, inputs: &[PathBuf], path: &Path, shown: &str) -> Result<()> {
    let mut files = model.files().chain(inputs.iter().map(PathBuf::as_path));
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(dst) = std::fs::metadata(path) else {
            return Ok(());
        };
        let same = |file: &&Path| {
            std::fs::metadata(file)
                .is_ok_and(|src| (src.dev(), src.ino()) == (dst.dev(), dst.ino()))
        };
        if let Some(file) = files.find(same) {
            return Err(Error::InvalidArgument(format!(
                "{shown}: is an input file of the model ({}); write the GGUF elsewhere",
                file.display()
            )));
        }
    }
    #[cfg(not(unix))]
    {
        let dst = std::fs::canonicalize(path).ok();
        if dst.is_some() && files.any(|f| std::fs::canonicalize(f).ok() == dst) {
            return Err(Error::InvalidArgument(format!(
                "{shown}: is an input file of the model; write the GGUF elsewhere"
            )));
        }
    }
    Ok(())
}

/// The plan's metadata with `general.architecture` first and the generic keys added.
fn complete_metadata(
    model: &Model,
    plan: &Metadata,
    outtype: OutType,
    shown: &str,
) -> Result<Metadata> {
    let mut m = Metadata::new();
    match plan.get("general.architecture") {
        Some(Value::String(a)) if !a.is_empty() => m.set("general.architecture", a.as_str()),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{shown}: the metadata has no general.architecture string"
            )))
        }
    }
    if plan.get("general.name").is_none() {
        let first = model.files().next();
        let name = first
            .and_then(|f| f.parent())
            .and_then(|d| d.file_name())
            .or_else(|| first.and_then(|f| f.file_stem()))
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        m.set("general.name", name);
    }
    for (k, v) in plan.iter() {
        m.set(k, v.clone());
    }
    if m.get("general.file_type").is_none() {
        m.set("general.file_type", outtype.file_type());
    }
    if m.get("general.quantization_version").is_none() {
        m.set("general.quantization_version", QUANTIZATION_VERSION);
    }
    match m.get("general.alignment") {
        None => m.set("general.alignment", DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if *a > 0 && a.is_multiple_of(8) => {}
        Some(v) => {
            return Err(Error::InvalidArgument(format!(
                "{shown}: general.alignment {v:?} is not a u32 multiple of 8"
            )))
        }
    }
    Ok(m)
}

/// Every tensor to write, with its GGUF type and size (offsets are set per file later). A
/// quantised output type gives the float tensors llama.cpp's per-tensor types, from the facts
/// of the complete `metadata`.
fn plan_tensors(
    model: &Model,
    plan: &GgufPlan<'_>,
    outtype: OutType,
    metadata: &Metadata,
) -> Result<Vec<Planned>> {
    let mut tensors = Vec::new();
    let mut floats = Vec::new();
    for name in model.names() {
        if (plan.skip)(name) {
            continue;
        }
        let info = model.info(name)?;
        if info.dtype == Dtype::U8 {
            if let Some(stem) = mxfp4::stem(name) {
                let scales = mxfp4::scales_name(stem);
                let s = model.info(&scales).map_err(|_| {
                    Error::NotFound(format!(
                        "tensor \"{name}\": MXFP4 blocks without their scales tensor \"{scales}\""
                    ))
                })?;
                let shape = mxfp4::joined_shape(
                    (name, info.dtype, info.shape),
                    (&scales, s.dtype, s.shape),
                )?;
                // Kept as they are whatever the output type, as llama.cpp's converter keeps them.
                floats.push(false);
                let origin = Origin::Mxfp4 {
                    blocks: name.to_string(),
                    scales,
                };
                tensors.push((mxfp4::weight_name(stem), origin, shape, GgmlType::MXFP4));
                continue;
            }
            let paired = name
                .strip_suffix(".scales")
                .is_some_and(|stem| model.info(&format!("{stem}.blocks")).is_ok());
            if paired {
                continue;
            }
        }
        let ty = tensor_type(name, info.dtype, info.shape, outtype)?;
        floats.push(info.dtype.is_float());
        tensors.push((name.to_string(), Origin::Model, info.shape.to_vec(), ty));
    }
    for (i, t) in plan.extra.iter().enumerate() {
        let ty = tensor_type(&t.name, Dtype::F32, &t.shape, outtype)?;
        let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if elements != Some(t.values.len() as u64) {
            return Err(Error::InvalidArgument(format!(
                "computed tensor \"{}\": {} values for shape {:?}",
                t.name,
                t.values.len(),
                t.shape
            )));
        }
        floats.push(true);
        tensors.push((t.name.clone(), Origin::Extra(i), t.shape.to_vec(), ty));
    }
    if outtype.quantized().is_some() {
        let facts = ModelFacts::from_metadata(metadata);
        let shapes: Vec<(&str, &[u64])> = tensors
            .iter()
            .map(|(n, _, s, _)| (n.as_str(), s.as_slice()))
            .collect();
        let choice = tensor_types::choose(outtype, &facts, &plan.types, &shapes)?;
        for ((t, chosen), float) in tensors.iter_mut().zip(choice.types).zip(floats) {
            if let (Some(ty), true) = (chosen, float) {
                t.3 = ty;
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut planned = Vec::with_capacity(tensors.len());
    for (name, origin, mut shape, ty) in tensors {
        if !seen.insert(name.clone()) {
            return Err(Error::Duplicate(format!(
                "tensor \"{name}\" would be written twice"
            )));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidArgument(format!(
                "tensor \"{name}\": name longer than the {MAX_NAME_BYTES} bytes llama.cpp accepts"
            )));
        }
        if shape.len() > MAX_DIMS {
            return Err(Error::Unsupported(format!(
                "tensor \"{name}\": {} dimensions, GGUF tensors have at most {MAX_DIMS}",
                shape.len()
            )));
        }
        if shape.is_empty() {
            // A scalar is written as one element of one dimension.
            shape.push(1);
        }
        let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let inner = shape.last().copied().unwrap_or(1);
        let nbytes = elements.and_then(|n| ty.nbytes(inner, n)).ok_or_else(|| {
            let block = ty.block().map_or(1, |b| b.0);
            Error::InvalidArgument(if inner.is_multiple_of(block) {
                format!("tensor \"{name}\": shape {shape:?} has no {ty} byte size")
            } else {
                format!(
                    "tensor \"{name}\": a row of {inner} values is not a whole number of {ty} blocks of {block}"
                )
            })
        })?;
        planned.push(Planned {
            name,
            origin,
            shape,
            ty,
            nbytes,
            offset: 0,
        });
    }
    Ok(planned)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => put_array(out, a),
    }
}

/// Element type, count and elements; an inner array of an array of arrays likewise.
fn put_array(out: &mut Vec<u8>, a: &Array) {
    fn each<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], le: fn(T) -> [u8; N]) {
        v.iter().for_each(|&x| out.extend_from_slice(&le(x)));
    }
    out.extend_from_slice(&(a.element_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each(out, v, i8::to_le_bytes),
        Array::U16(v) => each(out, v, u16::to_le_bytes),
        Array::I16(v) => each(out, v, i16::to_le_bytes),
        Array::U32(v) => each(out, v, u32::to_le_bytes),
        Array::I32(v) => each(out, v, i32::to_le_bytes),
        Array::F32(v) => each(out, v, f32::to_le_bytes),
        Array::Bool(v) => v.iter().for_each(|&x| out.push(u8::from(x))),
        Array::String(v) => v.iter().for_each(|s| put_str(out, s)),
        Array::U64(v) => each(out, v, u64::to_le_bytes),
        Array::I64(v) => each(out, v, i64::to_le_bytes),
        Array::F64(v) => each(out, v, f64::to_le_bytes),
        Array::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
    }
}

/// Magic, version, counts, metadata and tensor infos (dimensions innermost first).
fn header_bytes(metadata: &Metadata, tensors: &[Planned]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata.iter() {
        put_str(&mut out, k);
        out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
        put_value(&mut out, v);
    }
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.0.to_le_bytes());
        out.extend_from_slice(&t.offset.to_le_bytes());
    }
    Ok(out)
}

/// Writes zeros up to the next multiple of `alignment`.
fn pad(out: &mut impl Write, pos: &mut u64, alignment: u64) -> std::io::Result<()> {
    let n = pos.next_multiple_of(alignment) - *pos;
    out.write_all(&vec![0u8; n as usize])?;
    *pos += n;
    Ok(())
}

/// Reused buffers for converting one chunk at a time.
struct Stream {
    threads: usize,
    f32s: Vec<f32>,
    out: Vec<u8>,
}

impl Stream {
    fn new(threads: usize) -> Stream {
        Stream {
            threads,
            f32s: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Sends the MXFP4 tensor `name` joined from the model's tensors `blocks` and `scales` to
    /// `sink` in ggml's block layout.
    fn mxfp4(
        &mut self,
        model: &Model,
        name: &str,
        blocks: &str,
        scales: &str,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let (b, s) = (model.get(blocks)?, model.get(scales)?);
        let (b_data, s_data) = (b.data(), s.data());
        if s_data.len().checked_mul(mxfp4::CODES) != Some(b_data.len()) {
            return Err(Error::InvalidArgument(format!(
                "tensor \"{name}\": {} bytes of blocks in \"{blocks}\" for {} scales in \"{scales}\"",
                b_data.len(),
                s_data.len()
            )));
        }
        // A chunk of blocks at a time, as the other tensors are converted.
        let per_chunk = CHUNK_ELEMENTS / mxfp4::BLOCK as usize;
        for (codes, exps) in b_data
            .chunks(per_chunk * mxfp4::CODES)
            .zip(s_data.chunks(per_chunk))
        {
            self.out.resize(exps.len() * (mxfp4::CODES + 1), 0);
            mxfp4::repack(codes, exps, &mut self.out);
            sink(&self.out)?;
        }
        drop((b, s));
        model.release_source(model.entry(blocks)?);
        model.release_source(model.entry(scales)?);
        Ok(())
    }

    /// Sends the tensor `data` (elements of `from`) to `sink` as `ty`, chunk by chunk, with
    /// the values edited in f32 on the way when `edit` says so.
    fn tensor(
        &mut self,
        name: &str,
        from: Dtype,
        data: &[u8],
        ty: GgmlType,
        edit: Edit<'_>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let Edit { scaling, adjust } = edit;
        let fail = |e: convert::Error| Error::Unsupported(format!("tensor \"{name}\": {e}"));
        let fs = from.byte_size().ok_or_else(|| {
            Error::Unsupported(format!("tensor \"{name}\": {from} has no GGUF type"))
        })?;
        let target = ty.dtype();
        let unedited = adjust.is_none() && scaling.is_none();
        // Straight from the mapping when nothing changes the bytes.
        if unedited && target == Some(from) {
            return sink(data);
        }
        if let (true, Some(to)) = (unedited, target) {
            let ts = to.byte_size().unwrap_or(4);
            for chunk in data.chunks(CHUNK_ELEMENTS * fs) {
                self.out.resize(chunk.len() / fs * ts, 0);
                convert::convert_parallel(chunk, from, &mut self.out, to, self.threads)
                    .map_err(fail)?;
                sink(&self.out)?;
            }
            return Ok(());
        }
        // Through f32: block scales, a fix-up, or Q8_0.
        if !from.is_float() {
            return Err(Error::Unsupported(format!(
                "tensor \"{name}\": a value fix-up or {ty} needs a float tensor, not {from}"
            )));
        }
        for (no, chunk) in data.chunks(CHUNK_ELEMENTS * fs).enumerate() {
            let n = chunk.len() / fs;
            self.f32s.resize(n, 0.0);
            convert::convert_parallel(
                chunk,
                from,
                bytemuck::cast_slice_mut(&mut self.f32s),
                Dtype::F32,
                self.threads,
            )
            .map_err(fail)?;
            if let Some(s) = scaling {
                s.apply_parallel(
                    (no * CHUNK_ELEMENTS) as u64,
                    &mut self.f32s,
                    name,
                    self.threads,
                )?;
            }
            if let Some(f) = adjust {
                f(&mut self.f32s);
            }
            match target {
                Some(Dtype::F32) => sink(bytemuck::cast_slice(&self.f32s))?,
                Some(to) => {
                    let ts = to.byte_size().unwrap_or(4);
                    self.out.resize(n * ts, 0);
                    convert::convert_parallel(
                        bytemuck::cast_slice(&self.f32s),
                        Dtype::F32,
                        &mut self.out,
                        to,
                        self.threads,
                    )
                    .map_err(fail)?;
                    sink(&self.out)?;
                }
                None if ty == GgmlType::Q8_0 => {
                    self.out.resize(n / q8_0::BLOCK * q8_0::BLOCK_BYTES, 0);
                    q8_0::quantize(&self.f32s, &mut self.out, self.threads);
                    sink(&self.out)?;
                }
                // A chunk is a whole number of blocks: CHUNK_ELEMENTS is a multiple of every
                // block size, and a row of every tensor (planned so) too.
                None => match quant::by_type(ty) {
                    Some(q) => {
                        self.out.resize(q.bytes_for(n).unwrap_or(0), 0);
                        q.quantize_threads(&self.f32s, &mut self.out, self.threads)
                            .map_err(|e| {
                                Error::InvalidArgument(format!("tensor \"{name}\": {e}"))
                            })?;
                        sink(&self.out)?;
                    }
                    None => {
                        return Err(Error::Unsupported(format!(
                            "tensor \"{name}\": no writer for {ty}"
                        )))
                    }
                },
            }
        }
        Ok(())
    }
}

/// How a tensor's values change on their way to the file.
struct Edit<'a> {
    /// Block scales multiplied in first.
    scaling: Option<&'a Scaling>,
    /// A fix-up applied after.
    adjust: Option<Adjust>,
}

/// A weight's block scales in f32, with the sizes that find an element's block.
struct Scaling {
    values: Vec<f32>,
    /// The weight's last two dimensions.
    rows: u64,
    cols: u64,
    /// The scale's last two dimensions.
    scale_rows: u64,
    scale_cols: u64,
    block: [u64; 2],
}

impl Scaling {
    /// The scales of weight `name` from the model, checked against the weight's shape.
    fn read(model: &Model, name: &str, scale: &BlockScale, threads: usize) -> Result<Scaling> {
        let weight = model.info(name)?;
        let info = model.info(&scale.tensor)?;
        let [br, bc] = scale.block;
        let shape = weight.shape;
        let (lead, rows, cols) = match shape {
            [lead @ .., r, c] => (lead, *r, *c),
            [c] => (&[][..], 1, *c),
            [] => (&[][..], 1, 1),
        };
        let mut want: Vec<u64> = lead.to_vec();
        if shape.len() >= 2 {
            want.push(rows.div_ceil(br.max(1)));
        }
        want.push(cols.div_ceil(bc.max(1)));
        if br == 0 || bc == 0 || info.shape != want.as_slice() || !info.dtype.is_float() {
            return Err(Error::format(
                info.file.display(),
                Some(info.original_name),
                format!(
                    "is {} {:?}, not the float scales {want:?} of the {:?} blocks of tensor \"{}\" {shape:?}",
                    info.dtype, info.shape, scale.block, weight.original_name
                ),
            ));
        }
        let source = model.get(&scale.tensor)?;
        let count = want.iter().product::<u64>() as usize;
        let mut values = vec![0f32; count];
        convert::convert_parallel(
            source.data(),
            source.dtype(),
            bytemuck::cast_slice_mut(&mut values),
            Dtype::F32,
            threads,
        )
        .map_err(|e| Error::Unsupported(format!("tensor \"{}\": {e}", scale.tensor)))?;
        Ok(Scaling {
            values,
            rows,
            cols,
            scale_rows: rows.div_ceil(br),
            scale_cols: cols.div_ceil(bc),
            block: scale.block,
        })
    }

    /// [`Scaling::apply`] on up to `threads` threads, in parts of 64 Ki elements.
    fn apply_parallel(
        &self,
        start: u64,
        values: &mut [f32],
        name: &str,
        threads: usize,
    ) -> Result<()> {
        const PART: usize = 1 << 16;
        let parts = values.chunks_mut(PART).enumerate();
        crate::parallel::try_for_each(parts, threads, |(i, part)| {
            self.apply(start + (i * PART) as u64, part, name)
        })
    }

    /// Multiplies `values`, the weight's elements from element `start` on, by their blocks'
    /// scales.
    fn apply(&self, start: u64, values: &mut [f32], name: &str) -> Result<()> {
        let [br, bc] = self.block;
        let mut at = start;
        let mut rest = values;
        while !rest.is_empty() {
            let (row, col) = (at / self.cols, at % self.cols);
            let (lead, r) = (row / self.rows, row % self.rows);
            let n = ((self.cols - col) as usize).min(rest.len());
            let first = ((lead * self.scale_rows + r / br) * self.scale_cols) as usize;
            let scales = self
                .values
                .get(first..first + self.scale_cols as usize)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "tensor \"{name}\": element {at} lies past its block scales"
                    ))
                })?;
            let (now, later) = rest.split_at_mut(n);
            for (i, x) in now.iter_mut().enumerate() {
                *x *= scales[((col + i as u64) / bc) as usize];
            }
            rest = later;
            at += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_scales_follow_rows_columns_partial_blocks_and_stacked_experts() {
        // Two stacked [3, 5] weights in blocks of 2x2: scales [2, 2, 3], the last row and
        // column blocks partial. Scale value = 100 × expert + 10 × block row + block column.
        let (experts, rows, cols, br, bc) = (2u64, 3u64, 5u64, 2u64, 2u64);
        let (sr, sc) = (rows.div_ceil(br), cols.div_ceil(bc));
        let values = (0..experts * sr * sc)
            .map(|i| (100 * (i / (sr * sc)) + 10 * (i / sc % sr) + i % sc) as f32)
            .collect();
        let scaling = Scaling {
            values,
            rows,
            cols,
            scale_rows: sr,
            scale_cols: sc,
            block: [br, bc],
        };
        let n = (experts * rows * cols) as usize;
        let want: Vec<f32> = (0..n as u64)
            .map(|e| {
                let (x, r, c) = (e / (rows * cols), e / cols % rows, e % cols);
                (100 * x + 10 * (r / br) + c / bc) as f32
            })
            .collect();
        // Whole, and cut into chunks that start mid-row, as the writer's chunks may.
        for cut in [n, 7, 4, 1] {
            let mut got = vec![1f32; n];
            for (i, chunk) in got.chunks_mut(cut).enumerate() {
                scaling.apply((i * cut) as u64, chunk, "w").unwrap();
            }
            assert_eq!(got, want, "chunks of {cut}");
        }
        let mut got = vec![1f32; n];
        scaling.apply_parallel(0, &mut got, "w", 4).unwrap();
        assert_eq!(got, want, "on 4 threads");
        // Parts of the parallel split start mid-row: rows of 70001, blocks of 2x128.
        let (rows, cols) = (3u64, 70001u64);
        let (sr, sc) = (rows.div_ceil(2), cols.div_ceil(128));
        let wide = Scaling {
            values: (0..sr * sc).map(|i| i as f32).collect(),
            rows,
            cols,
            scale_rows: sr,
            scale_cols: sc,
            block: [2, 128],
        };
        let mut got = vec![1f32; (rows * cols) as usize];
        wide.apply_parallel(0, &mut got, "w", 4).unwrap();
        let at = |e: u64| ((e / cols / 2) * sc + e % cols / 128) as f32;
        assert!(got.iter().enumerate().all(|(e, &x)| x == at(e as u64)));
        // Past the scales: an error naming the tensor, never a panic.
        let err = scaling.apply(n as u64, &mut [1.0], "w").unwrap_err();
        assert!(err.to_string().contains("\"w\""), "{err}");
    }
}
