//! PyTorch checkpoints: the zip format `torch.save` has written since torch 1.6
//! (`pytorch_model.bin`, `pytorch_model-00001-of-00002.bin`, `consolidated.00.pth`).
//!
//! [`read_checkpoint`] reads the zip directory and the `data.pkl` record only, never tensor data.
//! `data.pkl` is decoded by a restricted unpickler (see `pickle.rs`) that understands what
//! `torch.save` writes for a state dict and refuses everything else: nothing in the file is ever
//! run. Each tensor becomes a [`TorchTensor`], a view into its storage record, checked against
//! that record's bounds. Storage records must be stored uncompressed (as `torch.save` writes them)
//! so contiguous tensors are served zero-copy from the file's mapping; non-contiguous views are
//! copied out with [`gather_strided`]. Legacy (pre-zip) files are refused as unsupported.

mod pickle;
mod zip;

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use crate::dtype::Dtype;
use crate::error::{Error, Result};

use self::pickle::{PickleLimits, PickledTensor, StorageRef, Value};
use self::zip::{Archive, Stored};

/// The file patterns ollama's `parseTensors` tries after `*.safetensors`, in its order.
pub const DIR_PATTERNS: [&str; 3] = [
    "pytorch_model-*-of-*.bin",
    "pytorch_model.bin",
    "consolidated.*.pth",
];

/// Bounds on what one checkpoint's `data.pkl` may make the reader do.
#[derive(Debug, Clone)]
pub struct TorchLimits {
    /// Largest `data.pkl` record read into memory, in bytes.
    pub max_pickle_bytes: u64,
    /// Deepest nesting of pickled containers (and most marks open at once).
    pub max_depth: usize,
    /// Most values on the unpickler's stack.
    pub max_stack: usize,
    /// Most memo entries. Each costs at most 64 bytes (values are shared, never copied), so
    /// this bounds the memo's memory: 128 MiB at the default of 2^21 entries, far above the
    /// eight or so entries `torch.save` writes per tensor.
    pub max_memo: usize,
    /// Most container items the unpickler builds in total.
    pub max_items: u64,
    /// Most dimensions of one tensor.
    pub max_rank: usize,
    /// Most tensors in one checkpoint.
    pub max_tensors: usize,
    /// Most bytes a view may have per byte of its storage: a stride-0 view of a few bytes
    /// could otherwise expand to gigabytes when materialised.
    pub max_view_expansion: u64,
}

/// The default of [`TorchLimits::max_view_expansion`].
pub const DEFAULT_MAX_VIEW_EXPANSION: u64 = 64;

impl Default for TorchLimits {
    fn default() -> TorchLimits {
        TorchLimits {
            max_pickle_bytes: 256 << 20,
            max_depth: 64,
            max_stack: 1 << 20,
            max_memo: 1 << 21,
            max_items: 1 << 25,
            max_rank: 64,
            max_tensors: 1 << 20,
            max_view_expansion: DEFAULT_MAX_VIEW_EXPANSION,
        }
    }
}

/// One tensor of a checkpoint: a strided view into a stored zip entry of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchTensor {
    /// The key of the state dict.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: Vec<u64>,
    /// Strides in elements, one per dimension.
    pub strides: Vec<u64>,
    /// Absolute byte offset in the file of element 0 of the view
    /// (= `storage_start` + storage offset × element size).
    pub data_offset: u64,
    /// Absolute byte offset in the file of the storage entry's first byte.
    pub storage_start: u64,
    /// Bytes of the storage the view may reach (`[storage_start, storage_start + storage_len)`).
    pub storage_len: u64,
    /// Whether the view is dense row-major: then its bytes are
    /// `[data_offset, data_offset + nbytes())` of the file.
    pub contiguous: bool,
}

impl TorchTensor {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of the tensor once dense (`numel × element size`).
    pub fn nbytes(&self) -> u64 {
        self.numel()
            .saturating_mul(self.dtype.byte_size().unwrap_or(0) as u64)
    }
}

/// The tensors of one checkpoint, in the order of its state dict.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Every tensor value of the top-level dict.
    pub tensors: Vec<TorchTensor>,
}

/// Reads the zip directory and `data.pkl` of the checkpoint at `path` (not the tensor data),
/// checking every tensor view against its storage entry.
///
/// Non-tensor values of the top-level dict (numbers, strings, None) are skipped. Errors name the
/// file and, where there is one, the tensor: `Unsupported` for legacy (pre-zip) files, compressed
/// entries, big-endian data and anything the restricted unpickler refuses; `Format` for a damaged
/// file; `Limit` when `limits` are reached.
pub fn read_checkpoint(path: &Path, limits: &TorchLimits) -> Result<Checkpoint> {
    let shown = path.display().to_string();
    let (mut file, meta) = crate::identity::open_regular(path)?;
    let file_len = meta.len();
    let mut head = [0u8; 512];
    let got = read_up_to(&mut file, &mut head).map_err(|e| Error::io(&shown, "cannot read", &e))?;
    check_magic(&shown, &head[..got])?;
    // The zip reader seeks on its own; start it from a fresh handle.
    let (file, _) = crate::identity::open_regular(path)?;
    let mut archive = Archive::open(file, &shown, file_len)?;

    if let Some(order) = archive.read("byteorder", 16)? {
        if order != b"little" {
            return Err(Error::Unsupported(format!(
                "{shown}: byteorder record is \"{}\"; only little-endian checkpoints are supported",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let Some(pkl) = archive.read("data.pkl", limits.max_pickle_bytes)? else {
        return Err(Error::format(
            &shown,
            None,
            format!(
                "zip archive has no {}data.pkl record: not a torch.save checkpoint",
                archive.prefix()
            ),
        ));
    };
    let ctx = format!("{shown}: data.pkl");
    let root = pickle::unpickle(
        &pkl,
        &ctx,
        PickleLimits {
            max_depth: limits.max_depth,
            max_stack: limits.max_stack,
            max_memo: limits.max_memo,
            max_items: limits.max_items,
            max_rank: limits.max_rank,
        },
    )?;
    let refs = state_dict_tensors(&ctx, &root, limits.max_tensors)?;

    let mut storages: HashMap<String, (Rc<StorageRef>, Stored)> = HashMap::new();
    let mut tensors = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        let stored = match storages.get(&t.storage.key) {
            Some((first, stored)) if **first == *t.storage => *stored,
            Some(_) => {
                return Err(Error::format(
                    &shown,
                    Some(&name),
                    format!(
                        "storage \"{}\" is declared twice with different types or sizes",
                        t.storage.key
                    ),
                ))
            }
            None => {
                let stored = storage_entry(&mut archive, &shown, &name, &t.storage)?;
                storages.insert(t.storage.key.clone(), (Rc::clone(&t.storage), stored));
                stored
            }
        };
        let v = view(&shown, name, &t, stored)?;
        if v.nbytes() > stored.len.saturating_mul(limits.max_view_expansion) {
            return Err(Error::Limit(format!(
                "{shown}: tensor \"{}\": the view is {} bytes over a storage of {} bytes, more \
                 than {} times larger (raise max_view_expansion to accept it)",
                v.name,
                v.nbytes(),
                stored.len,
                limits.max_view_expansion
            )));
        }
        tensors.push(v);
    }
    Ok(Checkpoint { tensors })
}

/// Fills `buf` from `file` as far as the file goes.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Zip local-header magic: what a `torch.save` checkpoint starts with.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Whether `head` starts like a legacy `torch.save` file: a pickle (protocol 2+) or a tar.
fn is_legacy(head: &[u8]) -> bool {
    let pickle = head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]);
    let tar = head.get(257..262) == Some(b"ustar".as_slice());
    pickle || tar
}

/// Checks that `head` (the first bytes of `shown`) starts a zip checkpoint; a legacy
/// `torch.save` file or anything else is refused, naming the file.
pub(crate) fn check_magic(shown: &str, head: &[u8]) -> Result<()> {
    if head.starts_with(ZIP_MAGIC) {
        return Ok(());
    }
    if is_legacy(head) {
        return Err(Error::Unsupported(format!(
            "{shown}: legacy (pre-zip) torch.save format, written by torch before 1.6 or with \
             _use_new_zipfile_serialization=False, is not supported: re-save it with a current \
             torch.save or convert it to safetensors"
        )));
    }
    Err(Error::format(
        shown,
        None,
        "not a torch.save checkpoint: the file does not start with a zip header",
    ))
}

/// The tensors of the top-level dict, with their names, in dict order.
fn state_dict_tensors(
    ctx: &str,
    root: &Value,
    max_tensors: usize,
) -> Result<Vec<(String, Rc<PickledTensor>)>> {
    let Value::Dict(dict) = root else {
        return Err(Error::Unsupported(format!(
            "{ctx}: the checkpoint holds a {}, not a state dict of tensors",
            root.kind()
        )));
    };
    let mut out = Vec::new();
    let mut nested = None;
    for (key, value) in &dict.items {
        let Value::Str(name) = key else {
            return Err(Error::Unsupported(format!(
                "{ctx}: a state dict key is a {}, not a string",
                key.kind()
            )));
        };
        match value {
            Value::Tensor(_) if name.contains('\0') => {
                return Err(Error::format(
                    ctx,
                    Some(&name.escape_debug().to_string()),
                    "name contains a NUL byte",
                ));
            }
            Value::Tensor(t) => {
                if out.len() >= max_tensors {
                    return Err(Error::Limit(format!(
                        "{ctx}: more than {max_tensors} tensors"
                    )));
                }
                out.push((name.to_string(), Rc::clone(t)));
            }
            Value::Dict(d)
                if nested.is_none()
                    && d.items.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) =>
            {
                nested = Some(name.to_string());
            }
            _ => {}
        }
    }
    if let (true, Some(key)) = (out.is_empty(), nested) {
        return Err(Error::Unsupported(format!(
            "{ctx}: tensors are nested under the key \"{key}\"; only a flat state dict of \
             tensors is supported"
        )));
    }
    let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Duplicate(format!(
            "{ctx}: tensor \"{}\" appears twice in the state dict",
            w[0]
        )));
    }
    Ok(out)
}

/// The stored entry of `storage`, checked to hold the bytes its persistent id declares.
fn storage_entry(
    archive: &mut Archive,
    shown: &str,
    tensor: &str,
    storage: &StorageRef,
) -> Result<Stored> {
    let record = format!("data/{}", storage.key);
    let Some(stored) = archive.find(&record)? else {
        return Err(Error::format(
            shown,
            Some(tensor),
            format!("storage record {}{record} is missing", archive.prefix()),
        ));
    };
    let declared = storage.numel.checked_mul(storage.kind.unit_size());
    match declared {
        Some(bytes) if bytes <= stored.len => Ok(Stored {
            start: stored.start,
            len: bytes,
        }),
        _ => Err(Error::format(
            shown,
            Some(tensor),
            format!(
                "storage \"{}\" declares {} units of {} bytes but its entry holds {} bytes",
                storage.key,
                storage.numel,
                storage.kind.unit_size(),
                stored.len
            ),
        )),
    }
}

/// Bytes from the first byte of element 0 to one past the last byte the view reaches
/// (0 for an empty tensor), or `None` on overflow.
fn view_span(shape: &[u64], strides: &[u64], elem: u64) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    let mut last = 0u64;
    for (&n, &s) in shape.iter().zip(strides) {
        last = last.checked_add((n - 1).checked_mul(s)?)?;
    }
    last.checked_add(1)?.checked_mul(elem)
}

/// Whether the strides are those of a dense row-major tensor of this shape (size-1 dimensions
/// may have any stride, as torch's `is_contiguous` allows).
pub(crate) fn is_contiguous(shape: &[u64], strides: &[u64]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1u64;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(n);
    }
    true
}

/// Checks the view of `t` inside its storage entry and builds the public description.
fn view(shown: &str, name: String, t: &PickledTensor, stored: Stored) -> Result<TorchTensor> {
    let bad = |rule: String| Error::format(shown, Some(&name), rule);
    let Some(elem) = t.dtype.byte_size().map(|s| s as u64) else {
        return Err(Error::Unsupported(format!(
            "{shown}: tensor \"{name}\": dtype {} has no whole-byte elements",
            t.dtype
        )));
    };
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &n| acc.checked_mul(n))
        .filter(|n| n.checked_mul(elem).is_some());
    if numel.is_none() {
        return Err(bad(format!("shape {:?} overflows 64 bits", t.shape)));
    }
    let start = t.offset.checked_mul(elem);
    let span = view_span(&t.shape, &t.strides, elem);
    let end = start.zip(span).and_then(|(a, b)| a.checked_add(b));
    if end.is_none_or(|end| end > stored.len) {
        return Err(bad(format!(
            "view (storage offset {}, shape {:?}, strides {:?}) reaches past the {} bytes of \
             storage \"{}\"",
            t.offset, t.shape, t.strides, stored.len, t.storage.key
        )));
    }
    let data_offset = stored.start + start.unwrap_or(0);
    Ok(TorchTensor {
        contiguous: is_contiguous(&t.shape, &t.strides),
        name,
        dtype: t.dtype,
        shape: t.shape.clone(),
        strides: t.strides.clone(),
        data_offset,
        storage_start: stored.start,
        storage_len: stored.len,
    })
}

/// Copies the (possibly non-contiguous) view `t` into `out`, densely in row-major order, from
/// `file`, the bytes of the whole checkpoint file (its mapping). `out.len()` must be
/// [`TorchTensor::nbytes`]. The view is checked again against its storage entry and `file`.
pub fn gather_strided(file: &[u8], t: &TorchTensor, out: &mut [u8]) -> Result<()> {
    let tensor_err = |rule: String| Error::Format(format!("tensor \"{}\": {rule}", t.name));
    let Some(elem) = t.dtype.byte_size() else {
        return Err(Error::Unsupported(format!(
            "tensor \"{}\": dtype {} has no whole-byte elements",
            t.name, t.dtype
        )));
    };
    if t.shape.len() != t.strides.len() {
        return Err(tensor_err(format!(
            "{} dimensions but {} strides",
            t.shape.len(),
            t.strides.len()
        )));
    }
    let nbytes = t
        .shape
        .iter()
        .try_fold(elem as u64, |acc, &n| acc.checked_mul(n));
    if nbytes.and_then(|n| usize::try_from(n).ok()) != Some(out.len()) {
        return Err(Error::BufferSize(format!(
            "tensor \"{}\": output buffer is {} bytes, the tensor needs {:?}",
            t.name,
            out.len(),
            nbytes
        )));
    }
    if out.is_empty() {
        return Ok(());
    }
    let storage_end = t.storage_start.checked_add(t.storage_len);
    let view_end = view_span(&t.shape, &t.strides, elem as u64)
        .and_then(|span| t.data_offset.checked_add(span));
    let inside = match (storage_end, view_end) {
        (Some(se), Some(ve)) => {
            t.data_offset >= t.storage_start && ve <= se && se <= file.len() as u64
        }
        _ => false,
    };
    if !inside {
        return Err(tensor_err(format!(
            "view at byte {} (shape {:?}, strides {:?}) is not inside its storage \
             [{}, +{}) of the {}-byte file",
            t.data_offset,
            t.shape,
            t.strides,
            t.storage_start,
            t.storage_len,
            file.len()
        )));
    }
    // Every offset below is inside [data_offset, view_end) ⊆ file, checked just above.
    let base = t.data_offset as usize;
    let rank = t.shape.len();
    // Copy runs along the last dimension when it is dense, else one element at a time.
    let (outer, run) = match (t.shape.last(), t.strides.last()) {
        (Some(&n), Some(&1)) => (rank - 1, n as usize * elem),
        _ => (rank, elem),
    };
    let mut index = vec![0u64; outer];
    for chunk in out.chunks_exact_mut(run) {
        let offset: u64 = index
            .iter()
            .zip(&t.strides)
            .map(|(&i, &s)| i * s)
            .sum::<u64>()
            * elem as u64;
        let at = base + offset as usize;
        chunk.copy_from_slice(&file[at..at + run]);
        for d in (0..outer).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(())
}

/// Whether `path` looks like a PyTorch checkpoint: a `.bin`, `.pth` or `.pt` name whose file
/// starts with a zip header, or like a legacy `torch.save` file (so that opening it reports a
/// clear "unsupported" instead of a safetensors format error).
pub fn is_torch_checkpoint(path: &Path) -> bool {
    let ext_ok = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["bin", "pth", "pt"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    });
    if !ext_ok {
        return false;
    }
    let mut head = [0u8; 512];
    // Not a regular file: not a checkpoint (opening it as safetensors then says why).
    let Ok((mut file, _)) = crate::identity::open_regular(path) else {
        return false;
    };
    let got = read_up_to(&mut file, &mut head);
    got.is_ok_and(|n| head[..n].starts_with(ZIP_MAGIC) || is_legacy(&head[..n]))
}

/// Given the file names of a directory (base names), the checkpoint files to open, as ollama's
/// `parseTensors` picks them: the sorted matches of the first of [`DIR_PATTERNS`] that matches
/// anything, or nothing. (ollama tries `*.safetensors` before these; that choice is the caller's.)
pub fn dir_patterns<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    for pattern in DIR_PATTERNS {
        let mut found: Vec<String> = names
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| glob_match(pattern, n))
            .map(str::to_string)
            .collect();
        if !found.is_empty() {
            found.sort();
            found.dedup();
            return found;
        }
    }
    Vec::new()
}

/// Go's `path.Match` for patterns whose only metacharacter is `*` (any run of characters other
/// than `/`).
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        let Some(at) = rest.find(part) else {
            return false;
        };
        if rest[..at].contains('/') {
            return false;
        }
        rest = &rest[at + part.len()..];
    }
    rest.len() >= last.len()
        && rest.ends_with(last)
        && !rest[..rest.len() - last.len()].contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_ollama_order() {
        let names = [
            "consolidated.00.pth",
            "pytorch_model-00002-of-00002.bin",
            "pytorch_model-00001-of-00002.bin",
            "pytorch_model.bin",
            "config.json",
        ];
        assert_eq!(
            dir_patterns(&names),
            [
                "pytorch_model-00001-of-00002.bin",
                "pytorch_model-00002-of-00002.bin"
            ]
        );
        assert_eq!(
            dir_patterns(&["consolidated.00.pth", "pytorch_model.bin"]),
            ["pytorch_model.bin"]
        );
        assert_eq!(
            dir_patterns(&["consolidated.01.pth", "consolidated.00.pth", "x.pth"]),
            ["consolidated.00.pth", "consolidated.01.pth"]
        );
        assert!(dir_patterns(&["model.safetensors", "consolidated.pth"]).is_empty());
    }

    #[test]
    fn glob_is_go_path_match_for_stars() {
        assert!(glob_match("a*b", "ab"));
        assert!(glob_match("a*b", "axxb"));
        assert!(!glob_match("a*b", "a/b"));
        assert!(glob_match("p-*-of-*.bin", "p-1-of-2.bin"));
        assert!(!glob_match("p-*-of-*.bin", "p-1-of-2.bin.tmp"));
        assert!(glob_match("x", "x"));
        assert!(!glob_match("x", "xy"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn spans_and_contiguity() {
        assert_eq!(view_span(&[2, 3], &[3, 1], 4), Some(24));
        assert_eq!(view_span(&[3, 2], &[1, 3], 4), Some(24));
        assert_eq!(view_span(&[0, 5], &[5, 1], 4), Some(0));
        assert_eq!(view_span(&[], &[], 2), Some(2));
        assert_eq!(view_span(&[u64::MAX, 2], &[u64::MAX, 1], 1), None);
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(!is_contiguous(&[3, 2], &[1, 3]));
        assert!(is_contiguous(&[1, 3], &[99, 1]));
        assert!(is_contiguous(&[], &[]));
    }

    #[test]
    fn gather_transposes_and_checks_bounds() {
        // A 2x3 u8 storage at byte 4 of an 10-byte "file"; the view is its 3x2 transpose.
        let file = [9, 9, 9, 9, 0, 1, 2, 3, 4, 5];
        let mut t = TorchTensor {
            name: "t".into(),
            dtype: Dtype::U8,
            shape: vec![3, 2],
            strides: vec![1, 3],
            data_offset: 4,
            storage_start: 4,
            storage_len: 6,
            contiguous: false,
        };
        let mut out = [0u8; 6];
        gather_strided(&file, &t, &mut out).unwrap();
        assert_eq!(out, [0, 3, 1, 4, 2, 5]);
        t.data_offset = 5;
        let err = gather_strided(&file, &t, &mut out).unwrap_err();
        assert!(err.to_string().contains("not inside its storage"), "{err}");
        let err = gather_strided(&file, &t, &mut [0u8; 5]).unwrap_err();
        assert!(matches!(err, Error::BufferSize(_)), "{err}");
    }
}
