//! `Model` methods of the `mlx` feature: tensors as MLX arrays, and their cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::{has_dtype, storage_dtype, MlxArray};
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// MLX arrays a model keeps: by dtype, then tensor name. Cleared by `Model::release_all`.
#[derive(Default)]
pub struct MlxCache {
    arrays: Mutex<HashMap<Dtype, HashMap<Box<str>, MlxArray>>>,
}

impl MlxCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Dtype, HashMap<Box<str>, MlxArray>>> {
        self.arrays.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &str, dtype: Dtype) -> Option<Result<MlxArray>> {
        self.lock()
            .get(&dtype)
            .and_then(|m| m.get(name))
            .map(MlxArray::try_clone)
    }

    /// Keeps `array`, or returns the one another thread kept first.
    fn insert(&self, name: &str, dtype: Dtype, array: MlxArray) -> Result<MlxArray> {
        let mut arrays = self.lock();
        let by_name = arrays.entry(dtype).or_default();
        match by_name.get(name) {
            Some(kept) => kept.try_clone(),
            None => {
                let handle = array.try_clone()?;
                by_name.insert(name.into(), array);
                Ok(handle)
            }
        }
    }

    /// Drops every cached array (arrays handed out stay valid).
    pub fn clear(&self) {
        // Drop outside the lock: freeing MLX arrays may release mappings.
        let arrays = std::mem::take(&mut *self.lock());
        drop(arrays);
    }

    /// Number of cached arrays.
    pub fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// Whether no array is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MlxCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlxCache")
            .field("arrays", &self.len())
            .finish()
    }
}

impl Model {
    /// The tensor `name` as an MLX array, evaluated. With `None` (as stored) in the stored
    /// dtype, or as raw `U8` bytes for the one-byte FP8 types MLX lacks (as `mx.load` does);
    /// packed F4/F6 have no MLX form. With a dtype (one MLX has) the values are converted by
    /// stload's exact kernels straight into MLX memory, or by MLX's `astype` for the pairs
    /// stload does not convert (complex to real, ...).
    ///
    /// Served from the model's MLX cache when present (see [`Model::load_mlx`]); otherwise
    /// built and, when the options keep converted tensors, cached until
    /// [`Model::release_all`]. The array stays valid after the model is dropped.
    pub fn get_mlx(&self, name: &str, dtype: Option<Dtype>) -> Result<MlxArray> {
        let stored = self.info(name)?.dtype;
        let target = dtype.unwrap_or(stored);
        if let Some(hit) = self.mlx_cache.get(name, target) {
            return hit;
        }
        let array = self.build_mlx(name, stored, target)?;
        if self.options().cache_converted {
            return self.mlx_cache.insert(name, target, array);
        }
        Ok(array)
    }

    /// Materialises every tensor as an MLX array, like ollama's `ModelWeights.Load` with MLX:
    /// with `None` each as stored; with a float dtype every floating-point tensor stored in
    /// another dtype is converted (integer and boolean tensors stay as stored). Later
    /// [`Model::get_mlx`] calls for that dtype are served from the cache until
    /// [`Model::release_all`].
    ///
    /// `progress(done, total, name)` runs after each tensor; returning `false` stops with
    /// [`Error::Cancelled`] (arrays made so far stay cached).
    pub fn load_mlx(
        &self,
        dtype: Option<Dtype>,
        mut progress: impl FnMut(usize, usize, &str) -> bool,
    ) -> Result<()> {
        let total = self.len();
        for (i, name) in self.names().enumerate() {
            let stored = self.info(name)?.dtype;
            let target = match dtype {
                Some(d) if stored.is_float() && convertible(stored, d) => d,
                _ => stored,
            };
            if self.mlx_cache.get(name, target).is_none() {
                let array = self.build_mlx(name, stored, target)?;
                if !array.is_wrapped() {
                    // Copied or converted: the mapped source pages are not needed any more.
                    if let Ok(t) = self.get(name) {
                        release_resident(&t);
                    }
                }
                self.mlx_cache.insert(name, target, array)?;
            }
            if !progress(i + 1, total, name) {
                return Err(Error::Cancelled(format!(
                    "load cancelled after tensor \"{name}\""
                )));
            }
        }
        Ok(())
    }

    /// Number of MLX arrays the model keeps.
    pub fn mlx_cached(&self) -> usize {
        self.mlx_cache.len()
    }

    fn build_mlx(&self, name: &str, stored: Dtype, target: Dtype) -> Result<MlxArray> {
        let what = format!("tensor \"{name}\"");
        if target == stored {
            return MlxArray::from_tensor(&self.get(name)?, &what);
        }
        if !has_dtype(target) {
            return Err(Error::Unsupported(format!(
                "{what}: MLX has no {target} dtype"
            )));
        }
        if convert::is_supported(stored, target) {
            let threads = self.options().effective_threads();
            return MlxArray::convert_from(&self.get(name)?, target, threads, &what);
        }
        if has_dtype(stored) {
            return MlxArray::from_tensor(&self.get(name)?, &what)?.astype(target, &what);
        }
        Err(Error::Unsupported(format!(
            "{what}: no conversion from {stored} to {target}"
        )))
    }
}

/// Whether a tensor stored as `from` can become an MLX array of `to`.
fn convertible(from: Dtype, to: Dtype) -> bool {
    has_dtype(to)
        && (from == to
            || convert::is_supported(from, to)
            || (has_dtype(from) && storage_dtype(from) == Some(from)))
}

/// Lets the kernel drop this process's resident copy of a mapped tensor's whole pages, so a
/// load's peak memory stays near its output (the page cache keeps the file; a later read
/// faults the pages back in). Does nothing for tensors stload allocated.
fn release_resident(t: &Tensor) {
    if !t.is_mapped() {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let data = t.data();
    let start = (data.as_ptr() as usize).next_multiple_of(page);
    let end = (data.as_ptr() as usize + data.len()) / page * page;
    if end > start {
        // Failure only means the pages stay resident, so it is ignored.
        // SAFETY: the whole pages of [start, end) lie inside the tensor's range of a shared
        // read-only file mapping, which `t` keeps alive: DONTNEED drops this process's copy and
        // any later access reads the same bytes from the file again.
        let _ =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
