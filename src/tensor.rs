//! A tensor handed to a caller: dtype, shape and bytes that stay valid on their own, either a
//! view into a file mapping (zero-copy) or memory owned by the tensor.

use std::fmt;
use std::sync::Arc;

use memmap2::Mmap;

use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::shape::Shape;

/// Bytes shared by every clone of a tensor.
#[derive(Clone)]
enum Bytes {
    /// A range of a file mapping; the `Arc` keeps the mapping alive after the model lets it go.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    /// Memory produced by stload (conversion, permutation, stacking).
    Owned(Arc<dyn AsRef<[u8]> + Send + Sync>),
}

/// A tensor's dtype, shape and data. Cheap to clone; valid independently of its model.
#[derive(Clone)]
pub struct Tensor {
    dtype: Dtype,
    shape: Shape,
    bytes: Bytes,
}

impl Tensor {
    /// A view of `len` bytes at `offset` in `map`. The caller has checked the range.
    pub(crate) fn mapped(
        dtype: Dtype,
        shape: Shape,
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    ) -> Tensor {
        debug_assert!(offset.checked_add(len).is_some_and(|end| end <= map.len()));
        Tensor {
            dtype,
            shape,
            bytes: Bytes::Mapped { map, offset, len },
        }
    }

    /// A tensor owning `data`.
    pub fn owned(dtype: Dtype, shape: Shape, data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Tensor {
        Tensor {
            dtype,
            shape,
            bytes: Bytes::Owned(data),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Number of elements (the product of the shape; 1 for a scalar).
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The raw little-endian bytes.
    pub fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
            Bytes::Owned(buf) => (**buf).as_ref(),
        }
    }

    /// Copies the values into `dst` as `dtype` (`None`: the stored bytes as they are), using up
    /// to `threads` threads for large tensors. `dst` must have exactly the needed length.
    /// Allocates nothing.
    pub fn copy_to(&self, dtype: Option<Dtype>, dst: &mut [u8], threads: usize) -> Result<()> {
        let to = dtype.unwrap_or(self.dtype);
        let Some((fs, ts)) = crate::convert::units(self.dtype, to) else {
            // An unsupported pair is refused as such, whatever the buffer's size.
            return convert::convert_parallel(self.data(), self.dtype, dst, to, threads)
                .map_err(|e| Error::Unsupported(e.to_string()));
        };
        let needed = self.data().len() / fs * ts;
        if dst.len() != needed {
            return Err(Error::BufferSize(format!(
                "{} elements of {to} need {needed} bytes but the buffer has {}",
                self.elements(),
                dst.len()
            )));
        }
        convert::convert_parallel(self.data(), self.dtype, dst, to, threads)
            .map_err(|e| Error::Unsupported(e.to_string()))
    }

    /// Whether the bytes alias a file mapping (no copy was made).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped { .. })
    }
}

impl AsRef<[u8]> for crate::buffer::AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("nbytes", &self.data().len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}
