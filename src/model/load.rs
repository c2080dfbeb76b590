//! Whole-model loads: [`Model::load`], the one loop every whole-model load runs
//! ([`Model::load_each`], also used by `load_mlx` and `load_into`), and writing a tensor into memory a layer
//! above allocated.

use super::{Entry, Model};
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::store::Wanted;
use crate::tensor::Tensor;

impl Model {
    /// Materialises every tensor, like ollama's `ModelWeights.Load`: with `None` (as stored)
    /// every file is mapped (and tensors gathered by transforms are built); with a float dtype
    /// every floating-point tensor of another dtype is converted, tensor by tensor (integer and
    /// boolean tensors, and floats without a conversion such as F4, stay as stored). A dtype
    /// outside [`convert::WHOLE_MODEL_TARGETS`] (an integer, F4, ...) is refused.
    /// Later gets of that dtype are served from memory until [`Model::release_all`].
    ///
    /// `progress(done, total, name)` runs after each tensor; returning `false` stops the load
    /// with [`Error::Cancelled`] (tensors converted so far stay cached).
    pub fn load(
        &self,
        dtype: Option<Dtype>,
        progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        if let Some(target) = dtype {
            convert::check_whole_model_target(target)?;
        }
        self.load_each(
            |stored| convert::whole_model_dtype(stored, dtype),
            |index, target| self.converted_cache().contains_key(&(index, target)),
            true,
            |index, e, target, zero_copy, fetched| {
                if zero_copy {
                    self.view(e).map(drop)
                } else {
                    self.keep_loaded(index, e, target, fetched)
                }
            },
            progress,
        )
    }

    /// The loop of every whole-model load ([`Model::load`], and `load_mlx` of the `mlx`
    /// feature, and [`Model::load_into`]): picks each tensor's dtype with `target(stored dtype)`,
    /// refuses a load whose new memory would pass `max_load_bytes` (when `new_memory`: a load
    /// into the caller's buffer takes none), then runs
    /// `step(index, entry, dtype, zero_copy, fetched)` for every tensor in name order
    /// (`zero_copy`: the stored bytes are served in place) and `progress(done, total, name)`
    /// after it; `false` stops with [`Error::Cancelled`].
    ///
    /// The store may bring tensors ahead, while earlier steps run (a remote model's: the
    /// requests of many tensors in flight at once): `fetched` is then the tensor, complete, in
    /// `dtype`. Tensors served in place, those `kept(index, dtype)` says the caller already
    /// has, and those the kernels do not convert to `dtype` are not fetched ahead.
    pub(crate) fn load_each(
        &self,
        target: impl Fn(Dtype) -> Dtype,
        kept: impl Fn(usize, Dtype) -> bool,
        new_memory: bool,
        mut step: impl FnMut(usize, &Entry, Dtype, bool, Option<Tensor>) -> Result<()>,
        mut progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        let total = self.entries.len();
        let plan: Vec<(Dtype, bool)> = self
            .entries
            .iter()
            .map(|e| {
                let to = target(e.dtype);
                (to, to == e.dtype && self.store.zero_copy(&e.source))
            })
            .collect();
        // Tensors served in place or already kept take no new memory.
        let new_bytes: u64 = self
            .entries
            .iter()
            .zip(&plan)
            .enumerate()
            .filter(|&(index, (_, &(to, zero_copy)))| !zero_copy && !kept(index, to))
            .map(|(_, (e, (to, _)))| {
                let elements: u64 = e.shape.iter().product();
                to.bytes_for(elements).unwrap_or(e.nbytes)
            })
            .sum();
        if new_memory && new_bytes > self.options.max_load_bytes {
            return Err(Error::Limit(format!(
                "load would materialise {new_bytes} bytes, over the limit of {} bytes",
                self.options.max_load_bytes
            )));
        }
        let wanted: Vec<Wanted<'_>> = self
            .entries
            .iter()
            .zip(&plan)
            .enumerate()
            .map(|(index, (e, &(to, zero_copy)))| Wanted {
                name: e.name.as_str(),
                source: &e.source,
                shape: &e.shape,
                from: e.dtype,
                to: (!zero_copy && !kept(index, to) && convert::is_supported(e.dtype, to))
                    .then_some(to),
            })
            .collect();
        self.store.materialize_each(&wanted, |index, fetched| {
            let (e, (to, zero_copy)) = (&self.entries[index], plan[index]);
            step(index, e, to, zero_copy, fetched)?;
            if !progress(index + 1, total, e.name.as_str()) {
                return Err(Error::Cancelled(format!(
                    "load cancelled after tensor \"{}\"",
                    e.name
                )));
            }
            Ok(())
        })
    }

    /// Prefetch of a model with remote files, which have no page cache to fill: the tensors
    /// `indices` are fetched as stored into memory and kept as `load(None)` keeps them (until
    /// [`Model::release_all`]; later `get`s are served from there), with the requests of many
    /// tensors in flight at once. `progress(done, total)` counts their stored bytes.
    pub(super) fn fetch_into_memory(
        &self,
        indices: &[usize],
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let mut wanted = vec![false; self.entries.len()];
        for &i in indices {
            wanted[i] = true;
        }
        let total: u64 = self
            .entries
            .iter()
            .zip(&wanted)
            .filter(|(_, &w)| w)
            .map(|(e, _)| e.nbytes)
            .sum();
        let done = std::cell::Cell::new(0u64);
        let mut reported = None;
        let outcome = self.load_each(
            |stored| stored,
            |index, dtype| !wanted[index] || self.converted_cache().contains_key(&(index, dtype)),
            true,
            |index, e, dtype, zero_copy, fetched| {
                if !wanted[index] {
                    return Ok(());
                }
                if !zero_copy {
                    self.keep_loaded(index, e, dtype, fetched)?;
                }
                done.set(done.get() + e.nbytes);
                Ok(())
            },
            |_, _, _| {
                let now = done.get();
                reported == Some(now) || {
                    reported = Some(now);
                    progress(now, total)
                }
            },
        );
        match outcome {
            Err(Error::Cancelled(_)) => Err(Error::Cancelled("prefetch cancelled".into())),
            other => other,
        }
    }

    /// Keeps entry `index` as `dtype` in memory for later gets, unless it is kept already: the
    /// tensor the store fetched ahead, else one materialised now.
    fn keep_loaded(
        &self,
        index: usize,
        e: &Entry,
        dtype: Dtype,
        fetched: Option<Tensor>,
    ) -> Result<()> {
        if !self.converted_cache().contains_key(&(index, dtype)) {
            let t = match fetched {
                Some(t) => t,
                None => self.materialize(e, dtype, true)?,
            };
            self.converted_cache().insert((index, dtype), t);
        }
        Ok(())
    }

    /// Writes entry `e` as `dtype` into `dst` (exactly its size in `dtype`) through the store:
    /// gathered, read and converted by all threads. `drop_source` lets converted source pages
    /// go, as a whole-model load does.
    pub(crate) fn materialize_into(
        &self,
        e: &Entry,
        dtype: Dtype,
        dst: &mut [u8],
        drop_source: bool,
    ) -> Result<()> {
        let name = e.name.as_str();
        self.store
            .materialize_into(name, &e.source, &e.shape, e.dtype, dtype, dst, drop_source)
    }

    /// Lets this process's resident copy of entry `e`'s mapped source pages go (the page cache
    /// keeps them): for a whole-model load or a GGUF export once the bytes were copied elsewhere.
    pub(crate) fn release_source(&self, e: &Entry) {
        self.store.release_pages(&e.source);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::options::Options;

    /// The path MLX arrays are filled by writes exactly what `get_as` returns, for every source
    /// kind (contiguous, strided PyTorch views, a stack gathered from two tensors), mapped and
    /// read, and refuses a buffer of the wrong length.
    #[test]
    fn materialize_into_writes_what_get_as_returns() {
        let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/views.pt");
        for read_mode in [false, true] {
            let mut options = Options {
                read_mode,
                ..Options::default()
            };
            options
                .add_stack(vec!["base".into(), "tied".into()], "pair")
                .unwrap();
            let model = Model::open_files(&[&views], &options).unwrap();
            assert!(model.entries.iter().any(|e| e.name.as_str() == "pair"));
            for e in &model.entries {
                for to in [e.dtype, Dtype::F32, Dtype::BF16] {
                    let want = model.get_as(e.name.as_str(), to).unwrap();
                    let mut got = vec![0u8; want.data().len()];
                    for drop_source in [false, true] {
                        model
                            .materialize_into(e, to, &mut got, drop_source)
                            .unwrap();
                        assert_eq!(got, want.data(), "{} as {to}, read {read_mode}", e.name);
                    }
                    let mut short = vec![0u8; want.data().len() + 1];
                    let err = model
                        .materialize_into(e, to, &mut short, false)
                        .unwrap_err();
                    assert!(err.to_string().contains(e.name.as_str()), "{err}");
                }
            }
        }
    }
}
