//! Values layers above the model keep per tensor (MLX arrays, feature `mlx`), keyed by tensor
//! index, dtype and type: the model stores them without knowing their types, and
//! `release_all` drops them with its caches.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::MutexGuard;

use super::Model;
use crate::dtype::Dtype;

/// Values kept for a tensor by a layer above the model, keyed by tensor index, dtype and type.
pub(crate) type Attached = HashMap<(usize, Dtype, TypeId), Box<dyn Any + Send + Sync>>;

impl Model {
    /// What a layer above kept for tensor `index` as `dtype` with type `T`, seen through `f`.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attached_get<T: Any + Send + Sync, R>(
        &self,
        index: usize,
        dtype: Dtype,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let attached = self.attached();
        let value = attached.get(&(index, dtype, TypeId::of::<T>()))?;
        value.downcast_ref::<T>().map(f)
    }

    /// Keeps `value` for tensor `index` as `dtype`, unless another thread kept one first;
    /// returns `f` of the one kept (always `Some`: the key holds the value's type).
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attach<T: Any + Send + Sync, R>(
        &self,
        index: usize,
        dtype: Dtype,
        value: T,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let mut attached = self.attached();
        let kept = attached
            .entry((index, dtype, TypeId::of::<T>()))
            .or_insert_with(|| Box::new(value));
        kept.downcast_ref::<T>().map(f)
    }

    /// How many values of type `T` layers above keep.
    #[cfg_attr(not(feature = "mlx"), allow(dead_code))] // used by the mlx layer
    pub(crate) fn attached_count<T: Any>(&self) -> usize {
        let id = TypeId::of::<T>();
        self.attached().keys().filter(|k| k.2 == id).count()
    }

    pub(super) fn attached(&self) -> MutexGuard<'_, Attached> {
        self.attached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
