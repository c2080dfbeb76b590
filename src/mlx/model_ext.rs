//! `Model` methods of the `mlx` feature: tensors as MLX arrays. The bytes come from the core:
//! a view of the model ([`Model::get`]), or the store's materialize path writing straight into
//! memory MLX allocated; a whole-model load runs the model's load loop ([`Model::load_each`])
//! and lets source pages go through the store. The arrays are kept by the model as attached
//! values, so [`Model::release_all`] drops them without the model knowing MLX.

use super::{has_dtype, storage_dtype, MlxArray};
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::model::{Entry, Model};

impl Model {
    /// The tensor `name` as an MLX array, evaluated. With `None` (as stored) in the stored
    /// dtype, or as raw `U8` bytes for the one-byte FP8 types MLX lacks (as `mx.load` does);
    /// packed F4/F6 and GGML's block types (a GGUF model's `Q4_K`, `Q8_0`, ...) have no MLX
    /// form: refused with [`Error::Unsupported`] naming the tensor, before any byte is read,
    /// rather than widened unasked. With a dtype (one MLX has) the values are converted by
    /// stload's exact kernels straight into MLX memory (a block type dequantised into F32,
    /// F16 or BF16, the values of [`Model::get_as`]), or by MLX's `astype` for the pairs
    /// stload does not convert (complex to real, ...).
    ///
    /// Served from the model's MLX cache when present (see [`Model::load_mlx`]); otherwise
    /// built and, when the options keep converted tensors, cached until
    /// [`Model::release_all`]. The array stays valid after the model is dropped.
    pub fn get_mlx(&self, name: &str, dtype: Option<Dtype>) -> Result<MlxArray> {
        let index = self.index_of(name)?;
        let Some(e) = self.entry_at(index) else {
            return Err(Error::NotFound(format!(
                "tensor \"{name}\" is not in the model"
            )));
        };
        let target = dtype.unwrap_or(e.dtype);
        if let Some(hit) = self.attached_get(index, target, MlxArray::try_clone) {
            return hit;
        }
        let array = self.build_mlx(e, target, false)?;
        if self.options().cache_converted {
            return self.keep_mlx(index, target, array);
        }
        Ok(array)
    }

    /// Materialises every tensor as an MLX array, like ollama's `ModelWeights.Load` with MLX,
    /// through the loop of [`Model::load`]: with `None` each as stored; with a float dtype
    /// every floating-point tensor stored in another dtype is converted as `load` converts it
    /// (block types dequantised; integer and boolean tensors stay as stored, and so do all
    /// tensors when MLX lacks the dtype). A tensor that would stay in a dtype with no MLX
    /// form (a block type with `None`, F4, F6) is refused, naming it, before anything is
    /// loaded: ask for F32, F16 or BF16. Converted and copied tensors let their mapped source pages go, so peak memory
    /// stays near the arrays' size. Later [`Model::get_mlx`] calls for that dtype are served
    /// from the cache until [`Model::release_all`].
    ///
    /// `progress(done, total, name)` runs after each tensor; returning `false` stops with
    /// [`Error::Cancelled`] (arrays made so far stay cached).
    pub fn load_mlx(
        &self,
        dtype: Option<Dtype>,
        progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        let target = |stored| match convert::whole_model_dtype(stored, dtype) {
            to if has_dtype(to) => to,
            _ => stored,
        };
        if let Some(info) = self
            .infos()
            .find(|i| target(i.dtype) == i.dtype && storage_dtype(i.dtype).is_none())
        {
            return Err(no_mlx_form(info.name, info.dtype));
        }
        self.load_each(
            target,
            |index, target| {
                self.attached_get(index, target, |_: &MlxArray| ())
                    .is_some()
            },
            true,
            |index, e, target, _, fetched| {
                if self
                    .attached_get(index, target, |_: &MlxArray| ())
                    .is_none()
                {
                    let array = match fetched {
                        // Fetched ahead by the store (a remote model), in `target`.
                        Some(t) => MlxArray::from_tensor(&t, &format!("tensor \"{}\"", e.name))?,
                        None => self.build_mlx(e, target, true)?,
                    };
                    self.keep_mlx(index, target, array)?;
                }
                Ok(())
            },
            progress,
        )
    }

    /// Number of MLX arrays the model keeps.
    pub fn mlx_cached(&self) -> usize {
        self.attached_count::<MlxArray>()
    }

    /// Keeps `array` for tensor `index` as `dtype` (or the one another thread kept first) and
    /// returns a handle on it.
    fn keep_mlx(&self, index: usize, dtype: Dtype, array: MlxArray) -> Result<MlxArray> {
        self.attach(index, dtype, array, MlxArray::try_clone)
            .unwrap_or_else(|| {
                Err(Error::Unsupported(
                    "mlx: the array cache lost a type".into(),
                ))
            })
    }

    /// Entry `e` as an MLX array of `target`. `whole_load`: a whole-model load, which lets the
    /// source pages go once MLX holds its own copy of the bytes.
    fn build_mlx(&self, e: &Entry, target: Dtype, whole_load: bool) -> Result<MlxArray> {
        let name = e.name.as_str();
        let what = format!("tensor \"{name}\"");
        let stored = e.dtype;
        if target == stored && storage_dtype(stored).is_none() {
            return Err(no_mlx_form(name, stored));
        }
        if target == stored {
            let array = MlxArray::from_tensor(&self.get(name)?, &what)?;
            if whole_load && !array.is_wrapped() {
                // MLX copied the bytes (the CPU backend): the mapped pages are not needed.
                self.release_source(e);
            }
            return Ok(array);
        }
        if !has_dtype(target) {
            return Err(Error::Unsupported(format!(
                "{what}: MLX has no {target} dtype"
            )));
        }
        if convert::is_supported(stored, target) {
            return MlxArray::filled(target, &e.shape, &what, |dst| {
                self.materialize_into(e, target, dst, whole_load)
            });
        }
        if has_dtype(stored) {
            return MlxArray::from_tensor(&self.get(name)?, &what)?.astype(target, &what);
        }
        Err(Error::Unsupported(format!(
            "{what}: no conversion from {stored} to {target}"
        )))
    }
}

/// The refusal of tensor `name` as stored in `dtype`, which has no MLX form (a GGML block
/// type, F4, F6): MLX gets the values of those it converts, in a float dtype the caller picks.
fn no_mlx_form(name: &str, dtype: Dtype) -> Error {
    let advice = if convert::is_supported(dtype, Dtype::F32) {
        "; ask for F32, F16 or BF16, into which its values are converted"
    } else {
        ", and stload converts it into none that MLX has"
    };
    Error::Unsupported(format!(
        "tensor \"{name}\": MLX has no {dtype} dtype{advice}"
    ))
}
