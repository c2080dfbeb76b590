//! A whole-model load into one buffer the caller owns: its layout ([`Model::arena_layout`]:
//! each tensor's offset, size and dtype at a chosen alignment) and the pass that writes every
//! tensor there ([`Model::load_into`]), through the load loop every whole-model load runs.
//!
//! Engines allocate one buffer for all weights (a ggml backend buffer, an MLX or CUDA staging
//! arena, pinned or huge-paged memory); writing the model straight into it saves an allocation
//! per tensor and the copy out of it.

use super::Model;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Where [`Model::load_into`] puts one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaSlot {
    /// Offset from the start of the buffer: a multiple of the layout's alignment.
    pub offset: u64,
    /// Byte length of the tensor in `dtype`.
    pub nbytes: u64,
    /// The dtype the tensor is written in: the whole-model rule of [`Model::load`].
    pub dtype: Dtype,
}

/// The layout of a whole model in one buffer: one slot per tensor in name order (the order of
/// [`Model::names`]), each starting at a multiple of `alignment`, packed in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaLayout {
    /// Bytes the buffer needs: the end of the last slot.
    pub size: u64,
    /// The alignment of every slot's offset (and of the buffer's address).
    pub alignment: u64,
    /// Each tensor's slot, in name order.
    pub slots: Vec<ArenaSlot>,
}

impl Model {
    /// Where [`Model::load_into`] would put every tensor with `dtype` (`None`: as stored; a
    /// float dtype: by the whole-model rule of [`Model::load`], so integer tensors stay as
    /// stored) and offsets that are multiples of `alignment` (a power of two: 32 for ggml, 64
    /// for cache lines and AVX-512, 4096 for pages).
    pub fn arena_layout(&self, dtype: Option<Dtype>, alignment: u64) -> Result<ArenaLayout> {
        if let Some(target) = dtype {
            convert::check_whole_model_target(target)?;
        }
        if !alignment.is_power_of_two() {
            return Err(Error::InvalidArgument(format!(
                "arena alignment {alignment} is not a power of two"
            )));
        }
        let too_big = || Error::Limit("the model's arena would pass 2^64 bytes".to_string());
        let mut end = 0u64;
        let mut slots = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let to = convert::whole_model_dtype(e.dtype, dtype);
            let elements = e.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
            // Checked at open for the stored dtype; a wider target may not fit.
            let nbytes = elements.and_then(|n| to.bytes_for(n)).ok_or_else(too_big)?;
            let offset = end
                .checked_next_multiple_of(alignment)
                .ok_or_else(too_big)?;
            end = offset.checked_add(nbytes).ok_or_else(too_big)?;
            slots.push(ArenaSlot {
                offset,
                nbytes,
                dtype: to,
            });
        }
        Ok(ArenaLayout {
            size: end,
            alignment,
            slots,
        })
    }

    /// Writes every tensor into `buf`, laid out as [`Model::arena_layout`] says (returned):
    /// stored bytes copied, other dtypes converted straight into the buffer by all threads,
    /// source pages let go as they are written, as [`Model::load`] does. `buf` must start at a
    /// multiple of `alignment` and hold the layout's size; it is the caller's memory, so it is
    /// not counted against `max_load_bytes`, and nothing is kept by the model.
    ///
    /// `progress(done, total, name)` runs after each tensor; returning `false` stops with
    /// [`Error::Cancelled`] (the tensors before it are written).
    pub fn load_into(
        &self,
        dtype: Option<Dtype>,
        alignment: u64,
        buf: &mut [u8],
        progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<ArenaLayout> {
        let layout = self.arena_layout(dtype, alignment)?;
        if (buf.len() as u64) < layout.size {
            return Err(Error::InvalidArgument(format!(
                "the arena buffer holds {} bytes, the model needs {} at alignment {alignment}",
                buf.len(),
                layout.size
            )));
        }
        if layout.size > 0 && !(buf.as_ptr() as u64).is_multiple_of(alignment) {
            return Err(Error::InvalidArgument(format!(
                "the arena buffer's address is not a multiple of its alignment {alignment}"
            )));
        }
        self.load_each(
            |stored| convert::whole_model_dtype(stored, dtype),
            |_, _| false,
            false,
            |index, e, to, _, fetched| {
                let slot = layout.slots[index];
                // In range: the layout's size was checked against the buffer above.
                let dst = &mut buf[slot.offset as usize..(slot.offset + slot.nbytes) as usize];
                match fetched {
                    // Fetched ahead by the store (a remote model), already in `to`.
                    Some(t) => dst.copy_from_slice(t.data()),
                    None => self.materialize_into(e, to, dst, true)?,
                }
                Ok(())
            },
            progress,
        )?;
        Ok(layout)
    }
}
