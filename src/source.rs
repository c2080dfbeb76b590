//! Where a listed tensor's bytes come from: one contiguous range of a file (zero-copy), or
//! several ranges gathered in order (permuted rows, stacked tensors, strided slices: one copy).
//! Sources are built at open, so `get` is a lookup; data is read only when asked for.

use std::sync::Arc;

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// A byte range of one file of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index into the model's files.
    pub file: usize,
    /// Absolute offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The bytes of one listed tensor.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// One range: served as a view into the mapping.
    Contiguous(Segment),
    /// Ranges concatenated in order: served as new memory.
    Gathered(Arc<[Segment]>),
    /// A strided view into one file (a non-contiguous PyTorch tensor): copied out on get.
    Strided {
        /// Index into the model's files.
        file: usize,
        /// The view: shape, strides and bounds.
        view: Arc<crate::torch::TorchTensor>,
    },
}

impl Source {
    /// The ranges, in output order (empty for a strided view, which is not made of ranges).
    pub fn segments(&self) -> &[Segment] {
        match self {
            Source::Contiguous(s) => std::slice::from_ref(s),
            Source::Gathered(parts) => parts,
            Source::Strided { .. } => &[],
        }
    }

    /// The first byte (what `info` reports as the tensor's file and offset).
    pub fn first(&self) -> Segment {
        match self {
            Source::Strided { file, view } => Segment {
                file: *file,
                offset: view.data_offset,
                len: view.nbytes(),
            },
            _ => self.segments().first().copied().unwrap_or(Segment {
                file: 0,
                offset: 0,
                len: 0,
            }),
        }
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        match self {
            Source::Strided { view, .. } => view.nbytes(),
            _ => self.segments().iter().map(|s| s.len).sum(),
        }
    }

    /// Ranges concatenated, merging neighbours so contiguous results stay zero-copy.
    pub fn from_segments(parts: Vec<Segment>) -> Source {
        let mut merged: Vec<Segment> = Vec::with_capacity(parts.len());
        for p in parts {
            match merged.last_mut() {
                Some(last) if last.file == p.file && last.offset + last.len == p.offset => {
                    last.len += p.len
                }
                _ => merged.push(p),
            }
        }
        match merged.as_slice() {
            [one] => Source::Contiguous(*one),
            [] => Source::Gathered(Arc::from(Vec::new())),
            _ => Source::Gathered(merged.into()),
        }
    }

    /// Rows `[start, stop)` along axis 0 of a tensor of `shape` and `dtype` stored here: a
    /// sub-range of the segments (zero-copy when the source is contiguous).
    pub fn rows(
        &self,
        shape: &[u64],
        dtype: Dtype,
        start: u64,
        stop: u64,
        tensor: &str,
    ) -> Result<Source> {
        let row = row_bytes(shape, dtype, tensor)?;
        self.byte_range(start * row, (stop - start) * row)
    }

    /// Rows picked in the order of `order` (each an index along axis 0).
    pub fn permute_rows(
        &self,
        shape: &[u64],
        dtype: Dtype,
        order: &[u64],
        tensor: &str,
    ) -> Result<Source> {
        let row = row_bytes(shape, dtype, tensor)?;
        let mut parts = Vec::with_capacity(order.len());
        for &r in order {
            parts.extend_from_slice(self.byte_range(r * row, row)?.segments());
        }
        Ok(Source::from_segments(parts))
    }

    /// The bytes `[start, start + len)` of this source, as segments.
    pub fn byte_range(&self, start: u64, len: u64) -> Result<Source> {
        if let Source::Strided { view, .. } = self {
            return Err(Error::Unsupported(format!(
                "tensor \"{}\" is stored non-contiguously: it cannot be split, sliced or permuted",
                view.name
            )));
        }
        let mut parts = Vec::new();
        let (mut skip, mut want) = (start, len);
        for s in self.segments() {
            if want == 0 {
                break;
            }
            if skip >= s.len {
                skip -= s.len;
                continue;
            }
            let take = (s.len - skip).min(want);
            parts.push(Segment {
                file: s.file,
                offset: s.offset + skip,
                len: take,
            });
            want -= take;
            skip = 0;
        }
        if want > 0 {
            return Err(Error::InvalidArgument(format!(
                "byte range [{start}, {}) past the end of the tensor",
                start + len
            )));
        }
        Ok(Source::from_segments(parts))
    }
}

/// Bytes per row along axis 0 (whole bytes only: sub-byte rows cannot be cut).
pub(crate) fn row_bytes(shape: &[u64], dtype: Dtype, tensor: &str) -> Result<u64> {
    let per_row: u64 = shape.iter().skip(1).product();
    if shape.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "tensor \"{tensor}\" is a scalar: it has no rows"
        )));
    }
    dtype.bytes_for(per_row).ok_or_else(|| {
        Error::Unsupported(format!(
            "tensor \"{tensor}\": rows of {per_row} {dtype} elements do not fill whole bytes"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(offset: u64, len: u64) -> Segment {
        Segment {
            file: 0,
            offset,
            len,
        }
    }

    #[test]
    fn rows_of_a_contiguous_source_stay_contiguous() {
        let s = Source::Contiguous(seg(100, 40));
        let rows = s.rows(&[10, 2], Dtype::BF16, 2, 5, "t").unwrap();
        assert!(matches!(
            rows,
            Source::Contiguous(Segment {
                offset: 108,
                len: 12,
                ..
            })
        ));
    }

    #[test]
    fn permutation_gathers_and_merges_neighbours() {
        let s = Source::Contiguous(seg(0, 16));
        let p = s
            .permute_rows(&[4, 1], Dtype::F32, &[0, 1, 3, 2], "t")
            .unwrap();
        assert_eq!(p.segments(), &[seg(0, 8), seg(12, 4), seg(8, 4)]);
        let same = s
            .permute_rows(&[4, 1], Dtype::F32, &[0, 1, 2, 3], "t")
            .unwrap();
        assert!(matches!(same, Source::Contiguous(_)));
        assert!(s.rows(&[4], Dtype::F4, 0, 1, "t").is_err());
    }
}
