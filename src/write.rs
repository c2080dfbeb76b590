//! Writing safetensors files: header JSON padded to 8 bytes, then the data, streamed to a
//! temporary name and renamed, so a file that may be mapped elsewhere is never truncated.
//!
//! Outputs are created with mode `0666 & !umask`, like any file a program writes (the temporary
//! file already has it, so the rename keeps it). A write that fails or is cancelled removes its
//! temporary file and leaves an earlier file at the path untouched.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// One tensor to write, with its bytes in memory.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    /// Name in the header.
    pub name: &'a str,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: &'a [u64],
    /// Little-endian row-major bytes; length must match shape × dtype size.
    pub data: &'a [u8],
}

/// One tensor to write whose bytes are produced later, while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name in the header.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: Vec<u64>,
}

impl TensorSpec {
    /// Byte length of the tensor's data, or an error naming it on overflow.
    pub fn nbytes(&self) -> Result<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| self.dtype.bytes_for(n))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "tensor \"{}\": shape {:?} of {} has no byte size",
                    self.name, self.shape, self.dtype
                ))
            })
    }
}

/// Serialises the header for `tensors` (data laid out in the given order) and `metadata`,
/// padded with spaces to a multiple of 8 bytes as the reference writer does.
pub fn header_bytes(
    tensors: &[TensorSpec],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0u64;
    for t in tensors {
        if t.dtype.is_block() {
            return Err(Error::Unsupported(format!(
                "tensor \"{}\": {} is a GGML block type, which safetensors cannot store: \
                 convert it to F32, F16 or BF16",
                t.name, t.dtype
            )));
        }
        let end = offset + t.nbytes()?;
        if map
            .insert(
                t.name.clone(),
                json!({"dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end]}),
            )
            .is_some()
        {
            return Err(Error::Duplicate(format!(
                "tensor \"{}\" would be written twice",
                t.name
            )));
        }
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&Value::Object(map))
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

/// Writes a safetensors file at `path` atomically: the header for `tensors`, then for each
/// tensor in order whatever `emit(i, out)` writes, which must be exactly its byte length.
pub fn write_streaming(
    path: &Path,
    tensors: &[TensorSpec],
    metadata: &BTreeMap<String, String>,
    mut emit: impl FnMut(usize, &mut dyn Write) -> Result<()>,
) -> Result<()> {
    let header = header_bytes(tensors, metadata)?;
    let shown = path.display().to_string();
    let io = |what: &str, e: std::io::Error| Error::io(&shown, what, &e);
    // Dropped on every early return below, which removes the temporary file.
    let tmp = temporary_output(path, ".tmp")?;
    {
        let mut out = CountingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, tmp.as_file()),
            written: 0,
        };
        out.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(|e| io("cannot write", e))?;
        out.write_all(&header).map_err(|e| io("cannot write", e))?;
        for (i, t) in tensors.iter().enumerate() {
            let before = out.written;
            emit(i, &mut out)?;
            if out.written - before != t.nbytes()? {
                return Err(Error::InvalidArgument(format!(
                    "tensor \"{}\": {} bytes written but shape {:?} of {} needs {}",
                    t.name,
                    out.written - before,
                    t.shape,
                    t.dtype,
                    t.nbytes()?
                )));
            }
        }
        out.flush().map_err(|e| io("cannot write", e))?;
    }
    tmp.persist(path)
        .map_err(|e| io("cannot rename into place", e.error))?;
    Ok(())
}

/// The directory a file at `path` goes into (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary file beside `out`, in its directory, named `.stload-*` + `suffix` (removed when
/// dropped unless persisted), created with mode `0666 & !umask` rather than tempfile's private
/// 0600, since it becomes the output. An error names `out`, the path the caller asked for,
/// never the temporary name.
pub fn temporary_output(out: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(out);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".stload-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
        .tempfile_in(dir)
        .map_err(|e| cannot_create(out, dir, &e))
}

/// The error of a temporary file that could not be created for `out` in `dir`. tempfile's
/// message names the temporary file it tried, which the user never asked for: this one names
/// `out`, and the directory's own problem when it has one (missing, not a directory).
fn cannot_create(out: &Path, dir: &Path, e: &std::io::Error) -> Error {
    let message = match std::fs::metadata(dir) {
        Err(d) => format!("cannot create it: directory {}: {d}", dir.display()),
        Ok(m) if !m.is_dir() => format!("cannot create it: {} is not a directory", dir.display()),
        Ok(_) => format!(
            "cannot create it in {}: {}",
            dir.display(),
            std::io::Error::from(e.kind())
        ),
    };
    Error::Io {
        path: out.display().to_string(),
        message,
    }
}

/// Writes `bytes` to `path` atomically (temporary file + rename, mode `0666 & !umask`).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let shown = path.display().to_string();
    let mut tmp = temporary_output(path, ".tmp")?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .map_err(|e| Error::io(&shown, "cannot write", &e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(&shown, "cannot rename into place", &e.error))?;
    Ok(())
}

/// Writes a safetensors file at `path` atomically from tensors in memory.
pub fn write_file(
    path: &Path,
    tensors: &[TensorRef],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name.to_string(),
            dtype: t.dtype,
            shape: t.shape.to_vec(),
        })
        .collect();
    write_streaming(path, &specs, metadata, |i, out| {
        out.write_all(tensors[i].data)
            .map_err(|e| Error::io(path.display(), "cannot write", &e))
    })
}

/// Counts bytes so each tensor's output can be checked against its header entry.
struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let data = [1u8, 2, 3, 4, 5, 6];
        let t = [
            TensorRef {
                name: "a",
                dtype: Dtype::U8,
                shape: &[2],
                data: &data[..2],
            },
            TensorRef {
                name: "b",
                dtype: Dtype::I16,
                shape: &[2],
                data: &data[2..],
            },
        ];
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        write_file(&path, &t, &meta).unwrap();
        let m = crate::Model::open_files(&[&path], &crate::Options::default()).unwrap();
        assert_eq!(m.get("b").unwrap().data(), &[3, 4, 5, 6]);
        assert_eq!(m.metadata("format"), Some("pt"));
        let bad = [TensorRef {
            name: "x",
            dtype: Dtype::F32,
            shape: &[2],
            data: &data[..3],
        }];
        assert!(write_file(&path, &bad, &meta).is_err());
        // The failed write left the earlier file intact.
        assert!(crate::Model::open_files(&[&path], &crate::Options::default()).is_ok());
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_cancelled_write_removes_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let specs = [
            TensorSpec {
                name: "a".into(),
                dtype: Dtype::U8,
                shape: vec![4],
            },
            TensorSpec {
                name: "b".into(),
                dtype: Dtype::U8,
                shape: vec![4],
            },
        ];
        let result = write_streaming(&path, &specs, &BTreeMap::new(), |i, out| {
            out.write_all(&[0; 4]).unwrap();
            if i == 1 {
                return Err(Error::Cancelled("stopped".into()));
            }
            Ok(())
        });
        assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
        assert_eq!(listing(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_output_path_never_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/w.safetensors");
        let e = write_file(&missing, &[], &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&missing.display().to_string()), "{e}");
        assert!(e.contains("no/such: ") && !e.contains(".stload-"), "{e}");
        std::fs::write(dir.path().join("f"), b"").unwrap();
        let under_file = dir.path().join("f/x.json");
        let e = write_bytes(&under_file, b"{}").unwrap_err().to_string();
        assert!(e.starts_with(&under_file.display().to_string()), "{e}");
        assert!(
            e.contains("is not a directory") && !e.contains(".stload-"),
            "{e}"
        );
        assert_eq!(listing(dir.path()), ["f"]);
    }

    #[cfg(unix)]
    #[test]
    fn outputs_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // SAFETY: umask only swaps the process's mask; the old one is restored below. Other
        // tests of this binary that create files meanwhile get a narrower mode, never a wider.
        let old = unsafe { libc::umask(0o027) };
        let a = dir.path().join("a.safetensors");
        let b = dir.path().join("b.json");
        let written = write_file(&a, &[], &BTreeMap::new()).and_then(|()| write_bytes(&b, b"{}"));
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        written.unwrap();
        assert_eq!(mode(&a), 0o640);
        assert_eq!(mode(&b), 0o640);
        assert_eq!(listing(dir.path()), ["a.safetensors", "b.json"]);
    }
}
