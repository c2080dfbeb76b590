//! Where a listed tensor's bytes come from: one contiguous range of a file (zero-copy), or
//! several pieces gathered in order (permuted rows, stacked tensors, splits and slices: one copy).
//! A piece is a byte range of a file or a strided view into one (a non-contiguous PyTorch
//! tensor), so every kind of source can be cut into rows, permuted and stacked.
//! Sources are built at open, so `get` is a lookup; data is read only when asked for.

pub(crate) mod item;

use std::borrow::Cow;
use std::sync::Arc;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::torch::TorchTensor;

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

/// One piece of a gathered source, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A byte range, copied as is.
    Bytes(Segment),
    /// A strided view into one file: its elements in dense row-major order.
    View {
        /// Index into the model's files.
        file: usize,
        /// The view: shape, strides and bounds.
        view: Arc<TorchTensor>,
    },
}

impl Piece {
    /// Bytes this piece contributes.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(s) => s.len,
            Piece::View { view, .. } => view.nbytes(),
        }
    }

    /// A view as a piece: a byte range when the view is dense.
    fn of_view(file: usize, view: TorchTensor) -> Piece {
        if view.contiguous {
            Piece::Bytes(Segment {
                file,
                offset: view.data_offset,
                len: view.nbytes(),
            })
        } else {
            Piece::View {
                file,
                view: Arc::new(view),
            }
        }
    }
}

/// The bytes of one listed tensor.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// One range: served as a view into the mapping.
    Contiguous(Segment),
    /// Pieces concatenated in order (byte ranges and strided views): served as new memory.
    Gathered(Arc<[Piece]>),
}

impl Source {
    /// A strided view of `file` (a non-contiguous PyTorch tensor), or its range when dense.
    pub fn view(file: usize, view: TorchTensor) -> Source {
        match Piece::of_view(file, view) {
            // Even an empty dense view stays a (zero-copy) range.
            Piece::Bytes(s) => Source::Contiguous(s),
            piece => Source::Gathered(Arc::from(vec![piece])),
        }
    }

    /// The pieces, in output order.
    pub fn pieces(&self) -> Cow<'_, [Piece]> {
        match self {
            Source::Contiguous(s) => Cow::Owned(vec![Piece::Bytes(*s)]),
            Source::Gathered(parts) => Cow::Borrowed(parts),
        }
    }

    /// The byte ranges when every piece is one (no strided view), else `None`.
    pub fn segments(&self) -> Option<Vec<Segment>> {
        self.pieces()
            .iter()
            .map(|p| match p {
                Piece::Bytes(s) => Some(*s),
                Piece::View { .. } => None,
            })
            .collect()
    }

    /// The first byte (what `info` reports as the tensor's file and offset).
    pub fn first(&self) -> Segment {
        let first = match self {
            Source::Contiguous(s) => return *s,
            Source::Gathered(parts) => parts.first(),
        };
        match first {
            Some(Piece::Bytes(s)) => *s,
            Some(Piece::View { file, view }) => Segment {
                file: *file,
                offset: view.data_offset,
                len: view.nbytes(),
            },
            None => Segment {
                file: 0,
                offset: 0,
                len: 0,
            },
        }
    }

    /// Total bytes (saturating: the shape invariant checked at open refuses a saturated sum).
    pub fn len(&self) -> u64 {
        match self {
            Source::Contiguous(s) => s.len,
            Source::Gathered(parts) => parts.iter().fold(0u64, |a, p| a.saturating_add(p.len())),
        }
    }

    /// Total bytes, or `None` when the sum overflows 64 bits.
    pub fn checked_len(&self) -> Option<u64> {
        match self {
            Source::Contiguous(s) => Some(s.len),
            Source::Gathered(parts) => parts
                .iter()
                .try_fold(0u64, |acc, p| acc.checked_add(p.len())),
        }
    }

    /// Pieces concatenated, merging neighbouring ranges so contiguous results stay zero-copy.
    pub fn from_pieces(parts: Vec<Piece>) -> Source {
        let mut merged: Vec<Piece> = Vec::with_capacity(parts.len());
        for p in parts {
            if let (Some(Piece::Bytes(last)), Piece::Bytes(s)) = (merged.last_mut(), &p) {
                if last.file == s.file && last.offset.checked_add(last.len) == Some(s.offset) {
                    last.len += s.len;
                    continue;
                }
            }
            if p.len() > 0 {
                merged.push(p);
            }
        }
        match merged.as_slice() {
            [Piece::Bytes(one)] => Source::Contiguous(*one),
            _ => Source::Gathered(merged.into()),
        }
    }

    /// Rows `[start, stop)` along axis 0 of a tensor of `shape` and `dtype` stored here: a
    /// sub-range of the pieces (zero-copy when the source is contiguous).
    pub fn rows(
        &self,
        shape: &[u64],
        dtype: Dtype,
        start: u64,
        stop: u64,
        tensor: &str,
    ) -> Result<Source> {
        let row = row_bytes(shape, dtype, tensor)?;
        let (at, len) = start
            .checked_mul(row)
            .zip(stop.checked_sub(start).and_then(|n| n.checked_mul(row)))
            .ok_or_else(|| overflow(tensor, start, stop))?;
        self.byte_range(at, len, tensor)
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
            let at = r
                .checked_mul(row)
                .ok_or_else(|| overflow(tensor, r, r + 1))?;
            self.push_range(at, row, tensor, &mut parts)?;
        }
        Ok(Source::from_pieces(parts))
    }

    /// The bytes `[start, start + len)` of this source.
    pub fn byte_range(&self, start: u64, len: u64, tensor: &str) -> Result<Source> {
        let mut parts = Vec::new();
        self.push_range(start, len, tensor, &mut parts)?;
        Ok(Source::from_pieces(parts))
    }

    /// Appends the pieces of the bytes `[start, start + len)` to `out`.
    pub fn push_range(
        &self,
        start: u64,
        len: u64,
        tensor: &str,
        out: &mut Vec<Piece>,
    ) -> Result<()> {
        let past_end = || {
            Error::InvalidArgument(format!(
                "tensor \"{tensor}\": byte range [{start}, {start} + {len}) past the end of the \
                 tensor's {} bytes",
                self.len()
            ))
        };
        let end = start.checked_add(len).ok_or_else(past_end)?;
        if len == 0 {
            return if start <= self.len() {
                Ok(())
            } else {
                Err(past_end())
            };
        }
        if let Source::Contiguous(s) = self {
            if end > s.len {
                return Err(past_end());
            }
            out.push(Piece::Bytes(Segment {
                file: s.file,
                offset: s.offset + start,
                len,
            }));
            return Ok(());
        }
        let mut at = 0u64;
        for p in self.pieces().iter() {
            let plen = p.len();
            let (lo, hi) = (start.max(at), end.min(at.saturating_add(plen)));
            if lo < hi {
                let (a, b) = (lo - at, hi - at);
                match p {
                    Piece::Bytes(s) => out.push(Piece::Bytes(Segment {
                        file: s.file,
                        offset: s.offset + a,
                        len: b - a,
                    })),
                    Piece::View { file, view } => {
                        let elem = view.dtype.byte_size().unwrap_or(0) as u64;
                        if elem == 0 || a % elem != 0 || b % elem != 0 {
                            return Err(Error::Unsupported(format!(
                                "tensor \"{tensor}\": bytes [{a}, {b}) of the strided view \
                                 \"{}\" do not cut whole {} elements",
                                view.name, view.dtype
                            )));
                        }
                        push_subview(*file, view, a / elem, b / elem, out)?;
                    }
                }
            }
            at = at.saturating_add(plen);
            if at >= end {
                return Ok(());
            }
        }
        Err(past_end())
    }
}

/// Appends elements `[a, b)` (dense row-major order) of `view` as at most two pieces per
/// dimension: a partial first row, the whole rows between, a partial last row.
fn push_subview(
    file: usize,
    view: &TorchTensor,
    a: u64,
    b: u64,
    out: &mut Vec<Piece>,
) -> Result<()> {
    if a >= b {
        return Ok(());
    }
    let numel = view.numel();
    if a == 0 && b == numel {
        out.push(Piece::of_view(file, view.clone()));
        return Ok(());
    }
    // Here 0 < b <= numel and the range is not the whole view: the view has a first axis.
    let Some(&rows) = view.shape.first().filter(|&&n| n > 0 && b <= numel) else {
        return Err(Error::InvalidArgument(format!(
            "strided view \"{}\": elements [{a}, {b}) past its {numel}",
            view.name
        )));
    };
    let inner = numel / rows;
    let (ra, oa, rb, ob) = (a / inner, a % inner, b / inner, b % inner);
    if ra == rb {
        return push_subview(file, &row_range(view, ra, ra + 1, true)?, oa, ob, out);
    }
    let mut full = ra;
    if oa != 0 {
        push_subview(file, &row_range(view, ra, ra + 1, true)?, oa, inner, out)?;
        full += 1;
    }
    if rb > full {
        out.push(Piece::of_view(file, row_range(view, full, rb, false)?));
    }
    if ob != 0 {
        push_subview(file, &row_range(view, rb, rb + 1, true)?, 0, ob, out)?;
    }
    Ok(())
}

/// Rows `[start, stop)` along axis 0 of `view` (with `drop`, the single row without its axis).
fn row_range(view: &TorchTensor, start: u64, stop: u64, drop: bool) -> Result<TorchTensor> {
    let elem = view.dtype.byte_size().unwrap_or(0) as u64;
    let shift = view
        .strides
        .first()
        .and_then(|&s| s.checked_mul(start)?.checked_mul(elem));
    let data_offset = shift.and_then(|s| view.data_offset.checked_add(s));
    let Some(data_offset) = data_offset else {
        return Err(Error::Format(format!(
            "strided view \"{}\": row {start} lies past 64-bit offsets",
            view.name
        )));
    };
    let mut sub = view.clone();
    sub.data_offset = data_offset;
    if drop {
        sub.shape.remove(0);
        sub.strides.remove(0);
    } else {
        sub.shape[0] = stop - start;
    }
    sub.contiguous = crate::torch::is_contiguous(&sub.shape, &sub.strides);
    Ok(sub)
}

fn overflow(tensor: &str, start: u64, stop: u64) -> Error {
    Error::InvalidArgument(format!(
        "tensor \"{tensor}\": rows [{start}, {stop}) overflow 64-bit byte offsets"
    ))
}

/// Bytes per row along axis 0 (whole bytes only: sub-byte rows cannot be cut).
pub(crate) fn row_bytes(shape: &[u64], dtype: Dtype, tensor: &str) -> Result<u64> {
    let per_row = shape
        .iter()
        .skip(1)
        .try_fold(1u64, |a, &n| a.checked_mul(n));
    let Some(per_row) = per_row else {
        return Err(Error::InvalidArgument(format!(
            "tensor \"{tensor}\": shape {shape:?} overflows 64 bits"
        )));
    };
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
        assert_eq!(p.segments(), Some(vec![seg(0, 8), seg(12, 4), seg(8, 4)]));
        let same = s
            .permute_rows(&[4, 1], Dtype::F32, &[0, 1, 2, 3], "t")
            .unwrap();
        assert!(matches!(same, Source::Contiguous(_)));
        assert!(s.rows(&[4], Dtype::F4, 0, 1, "t").is_err());
    }
}
