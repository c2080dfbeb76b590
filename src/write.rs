//! Writing safetensors files: header JSON padded to 8 bytes, then the data, written to a
//! temporary name and renamed so a file that may be mapped elsewhere is never truncated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// One tensor to write.
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

/// Serialises the header for `tensors` (data laid out in the given order) and `metadata`,
/// padded with spaces to a multiple of 8 bytes as the reference writer does.
pub fn header_bytes(tensors: &[TensorRef], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0u64;
    for t in tensors {
        let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let expected = elements.and_then(|n| t.dtype.bytes_for(n));
        if expected != Some(t.data.len() as u64) {
            return Err(Error::InvalidArgument(format!(
                "tensor \"{}\": {} data bytes do not match shape {:?} of {}",
                t.name,
                t.data.len(),
                t.shape,
                t.dtype
            )));
        }
        let end = offset + t.data.len() as u64;
        map.insert(
            t.name.to_string(),
            json!({"dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&Value::Object(map))
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

/// Writes a safetensors file at `path` atomically (temporary file in the same directory, then
/// rename).
pub fn write_file(
    path: &Path,
    tensors: &[TensorRef],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let header = header_bytes(tensors, metadata)?;
    let shown = path.display().to_string();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |what: &str, e: std::io::Error| Error::io(&shown, what, &e);
    let tmp = tempfile::Builder::new()
        .prefix(".stload-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io("cannot create a temporary file", e))?;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        out.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(|e| io("cannot write", e))?;
        out.write_all(&header).map_err(|e| io("cannot write", e))?;
        for t in tensors {
            out.write_all(t.data).map_err(|e| io("cannot write", e))?;
        }
        out.flush().map_err(|e| io("cannot write", e))?;
    }
    tmp.persist(path)
        .map_err(|e| io("cannot rename into place", e.error))?;
    Ok(())
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
    }
}
