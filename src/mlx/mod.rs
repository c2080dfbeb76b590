//! MLX arrays from safetensors tensors (feature `mlx`).
//!
//! A small C++ bridge (`bridge.cc`, C linkage) calls MLX's C++ API; this module owns the
//! bridge's array handles. [`MlxArray::from_tensor`] hands MLX the tensor's bytes through its
//! external-pointer constructor, with a deleter that releases a boxed clone of the [`Tensor`]
//! (and so of the file mapping) through [`release_tensor`]: MLX wraps the mapping where its
//! allocator can (unified memory) and copies it once otherwise (the CPU backend, which then
//! releases the mapping at once). Conversions write straight into memory MLX allocated.
//!
//! Every array this module hands out is evaluated (it holds its data), so reading it from
//! several threads at once is safe; evaluation of new graphs is serialised by a lock.

mod model_ext;

use std::ffi::{c_int, c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;

mod sys {
    use std::ffi::{c_char, c_int, c_void};

    pub(super) const OK: c_int = 0;
    pub(super) const INVALID: c_int = 1;
    pub(super) const NO_MEMORY: c_int = 2;

    pub(super) type ReleaseFn = extern "C" fn(ctx: *mut c_void);

    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn stload_mlx_bridge_wrap(
            data: *mut c_void,
            shape: *const i32,
            rank: usize,
            dtype: c_int,
            release: ReleaseFn,
            ctx: *mut c_void,
            out: *mut *mut c_void,
            wrapped: *mut c_int,
            msg: *mut c_char,
            msg_len: usize,
        ) -> c_int;
        pub fn stload_mlx_bridge_alloc(
            shape: *const i32,
            rank: usize,
            dtype: c_int,
            out: *mut *mut c_void,
            data: *mut *mut c_void,
            msg: *mut c_char,
            msg_len: usize,
        ) -> c_int;
        pub fn stload_mlx_bridge_astype(
            arr: *const c_void,
            dtype: c_int,
            out: *mut *mut c_void,
            msg: *mut c_char,
            msg_len: usize,
        ) -> c_int;
        pub fn stload_mlx_bridge_eval(arr: *mut c_void, msg: *mut c_char, msg_len: usize) -> c_int;
        pub fn stload_mlx_bridge_clone(arr: *const c_void) -> *mut c_void;
        pub fn stload_mlx_bridge_free(arr: *mut c_void);
        pub fn stload_mlx_bridge_dtype(arr: *const c_void) -> c_int;
        pub fn stload_mlx_bridge_ndim(arr: *const c_void) -> usize;
        pub fn stload_mlx_bridge_dim(arr: *const c_void, i: usize) -> i32;
        pub fn stload_mlx_bridge_nbytes(arr: *const c_void) -> usize;
        pub fn stload_mlx_bridge_data(arr: *const c_void) -> *const c_void;
        pub fn stload_mlx_bridge_version() -> *const c_char;
    }
}

/// The bridge's number for an MLX element type (see `bridge.h`), `None` when MLX has no
/// such type.
fn bridge_code(dtype: Dtype) -> Option<c_int> {
    Some(match dtype {
        Dtype::Bool => 0,
        Dtype::U8 => 1,
        Dtype::U16 => 2,
        Dtype::U32 => 3,
        Dtype::U64 => 4,
        Dtype::I8 => 5,
        Dtype::I16 => 6,
        Dtype::I32 => 7,
        Dtype::I64 => 8,
        Dtype::F16 => 9,
        Dtype::F32 => 10,
        Dtype::F64 => 11,
        Dtype::BF16 => 12,
        Dtype::C64 => 13,
        _ => return None,
    })
}

fn from_bridge_code(code: c_int) -> Option<Dtype> {
    Dtype::ALL
        .into_iter()
        .find(|&d| bridge_code(d) == Some(code))
}

/// Whether MLX has an element type for `dtype`.
pub fn has_dtype(dtype: Dtype) -> bool {
    bridge_code(dtype).is_some()
}

/// The MLX element type that holds a tensor stored as `dtype` without conversion: the same
/// type, or `U8` (the raw bytes) for the one-byte FP8 types MLX lacks, as `mx.load` does for
/// F8_E4M3 and F8_E8M0. `None` for the packed sub-byte types (F4, F6).
pub fn storage_dtype(dtype: Dtype) -> Option<Dtype> {
    if has_dtype(dtype) {
        Some(dtype)
    } else if dtype.byte_size() == Some(1) {
        Some(Dtype::U8)
    } else {
        None
    }
}

/// MLX's version string, e.g. "0.32.4".
pub fn version() -> &'static str {
    // SAFETY: the bridge returns a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(sys::stload_mlx_bridge_version()) };
    s.to_str().unwrap_or("unknown")
}

pub(crate) fn version_ptr() -> *const std::ffi::c_char {
    // SAFETY: no arguments; returns a static string.
    unsafe { sys::stload_mlx_bridge_version() }
}

/// Serialises MLX graph evaluation (astype, eval) across threads.
static EVAL_LOCK: Mutex<()> = Mutex::new(());

fn eval_lock() -> std::sync::MutexGuard<'static, ()> {
    EVAL_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// An MLX array (`mlx::core::array`) on the C++ heap, owned by this value.
///
/// Arrays made by stload are evaluated before they are handed out and never change
/// afterwards, which is what makes `MlxArray` `Send + Sync`: MLX's array is a reference-counted
/// handle (atomic counts) whose data, once evaluated, is only read. Building new graphs from
/// the raw pointer ([`MlxArray::raw`]) is the host's business and its own thread rules apply.
pub struct MlxArray {
    ptr: NonNull<c_void>,
    dtype: Dtype,
    shape: Shape,
    wrapped: bool,
}

// SAFETY: see the type's documentation: the C++ object is a handle with atomic reference
// counts, destroyed through the bridge from any thread; stload's arrays are evaluated and
// read-only, and evaluation of new graphs holds `EVAL_LOCK`.
unsafe impl Send for MlxArray {}
// SAFETY: as above; `&MlxArray` methods only read evaluated data or take `EVAL_LOCK`.
unsafe impl Sync for MlxArray {}

/// Releases the boxed [`Tensor`] given to MLX as the deleter context of a wrapped array.
///
/// # Safety
/// `ctx` must come from `Box::into_raw(Box<Tensor>)` in [`MlxArray::from_tensor`] and is
/// released once (the bridge guarantees a single call).
extern "C" fn release_tensor(ctx: *mut c_void) {
    // No panic may unwind into C++; dropping a Tensor does not panic, but stay safe.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !ctx.is_null() {
            // SAFETY: `ctx` is the Box<Tensor> leaked by `from_tensor`, released once.
            drop(unsafe { Box::from_raw(ctx.cast::<Tensor>()) });
        }
    }));
}

/// Turns a bridge status and message into stload's error, naming `what`.
fn check(status: c_int, msg: &[u8], what: &str) -> Result<()> {
    if status == sys::OK {
        return Ok(());
    }
    let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
    let text = String::from_utf8_lossy(&msg[..end]);
    let message = format!("{what}: mlx: {text}");
    Err(match status {
        sys::INVALID => Error::InvalidArgument(message),
        sys::NO_MEMORY => Error::OutOfMemory(message),
        _ => Error::Unsupported(message),
    })
}

const MSG_LEN: usize = 512;

fn mlx_shape(shape: &[u64], what: &str) -> Result<Vec<i32>> {
    shape
        .iter()
        .map(|&d| {
            i32::try_from(d).map_err(|_| {
                Error::Limit(format!(
                    "{what}: dimension {d} exceeds MLX's 32-bit dimensions"
                ))
            })
        })
        .collect()
}

impl MlxArray {
    /// Takes ownership of a bridge handle, reading its dtype and shape.
    fn from_raw(ptr: *mut c_void, wrapped: bool, what: &str) -> Result<MlxArray> {
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| Error::OutOfMemory(format!("{what}: mlx returned no array")))?;
        // SAFETY: `ptr` is a live array from the bridge.
        let (code, rank) = unsafe {
            (
                sys::stload_mlx_bridge_dtype(ptr.as_ptr()),
                sys::stload_mlx_bridge_ndim(ptr.as_ptr()),
            )
        };
        let shape: Shape = (0..rank)
            // SAFETY: `i < rank` of a live array.
            .map(|i| unsafe { sys::stload_mlx_bridge_dim(ptr.as_ptr(), i) }.max(0) as u64)
            .collect();
        // Owned from here on: an error below frees the handle.
        let mut array = MlxArray {
            ptr,
            dtype: Dtype::Bool,
            shape,
            wrapped,
        };
        array.dtype = from_bridge_code(code).ok_or_else(|| {
            Error::Unsupported(format!("{what}: mlx returned an array of an unknown dtype"))
        })?;
        Ok(array)
    }

    /// An array over the tensor's bytes in [`storage_dtype`] of its dtype, through MLX's
    /// external-pointer constructor. The array keeps a clone of the tensor (and so the file
    /// mapping) for as long as MLX uses the bytes. `what` names the tensor in errors.
    pub fn from_tensor(tensor: &Tensor, what: &str) -> Result<MlxArray> {
        let dtype = storage_dtype(tensor.dtype()).ok_or_else(|| {
            Error::Unsupported(format!(
                "{what}: MLX has no {} dtype; ask for F32, F16 or BF16",
                tensor.dtype()
            ))
        })?;
        let code = bridge_code(dtype).unwrap_or_default();
        let shape = mlx_shape(tensor.shape(), what)?;
        let data = tensor.data().as_ptr().cast_mut().cast::<c_void>();
        let ctx = Box::into_raw(Box::new(tensor.clone())).cast::<c_void>();
        let mut out = std::ptr::null_mut();
        let mut wrapped: c_int = 0;
        let mut msg = [0u8; MSG_LEN];
        // SAFETY: `data` holds the tensor's bytes, kept alive by `ctx` until the bridge calls
        // `release_tensor(ctx)` exactly once (also on failure); MLX only reads them.
        let status = unsafe {
            sys::stload_mlx_bridge_wrap(
                data,
                shape.as_ptr(),
                shape.len(),
                code,
                release_tensor,
                ctx,
                &mut out,
                &mut wrapped,
                msg.as_mut_ptr().cast(),
                msg.len(),
            )
        };
        check(status, &msg, what)?;
        MlxArray::from_raw(out, wrapped != 0, what)
    }

    /// An array of `dtype` holding the tensor's values converted by stload's kernels, written
    /// straight into memory MLX allocated (one pass, no intermediate buffer), using up to
    /// `threads` threads.
    pub fn convert_from(
        tensor: &Tensor,
        dtype: Dtype,
        threads: usize,
        what: &str,
    ) -> Result<MlxArray> {
        MlxArray::filled(dtype, tensor.shape(), what, |dst| {
            tensor
                .copy_to(Some(dtype), dst, threads)
                .map_err(|e| Error::Unsupported(format!("{what}: {e}")))
        })
    }

    /// A new array of `dtype` and `shape` in memory MLX allocated, its bytes written by
    /// `fill` (given exactly `elements × size of dtype` bytes) before anything else sees it.
    pub(crate) fn filled(
        dtype: Dtype,
        shape: &[u64],
        what: &str,
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<MlxArray> {
        let code = bridge_code(dtype)
            .ok_or_else(|| Error::Unsupported(format!("{what}: MLX has no {dtype} dtype")))?;
        let dims = mlx_shape(shape, what)?;
        let needed = dtype
            .bytes_for(shape.iter().product())
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::Limit(format!("{what}: too large for this machine")))?;
        let mut out = std::ptr::null_mut();
        let mut data = std::ptr::null_mut();
        let mut msg = [0u8; MSG_LEN];
        // SAFETY: dims points to `dims.len()` dims; out-pointers are valid locals.
        let status = unsafe {
            sys::stload_mlx_bridge_alloc(
                dims.as_ptr(),
                dims.len(),
                code,
                &mut out,
                &mut data,
                msg.as_mut_ptr().cast(),
                msg.len(),
            )
        };
        check(status, &msg, what)?;
        let array = MlxArray::from_raw(out, false, what)?;
        if needed > 0 {
            // SAFETY: the bridge allocated `needed` bytes (elements × size of `dtype`) at
            // `data` for this new array, which nothing else references yet.
            let dst = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), needed) };
            fill(dst)?;
        }
        Ok(array)
    }

    /// MLX's `astype(self, dtype)`, evaluated.
    pub fn astype(&self, dtype: Dtype, what: &str) -> Result<MlxArray> {
        let code = bridge_code(dtype)
            .ok_or_else(|| Error::Unsupported(format!("{what}: MLX has no {dtype} dtype")))?;
        let mut out = std::ptr::null_mut();
        let mut msg = [0u8; MSG_LEN];
        let _lock = eval_lock();
        // SAFETY: `self.ptr` is live; out-pointers are valid locals.
        let status = unsafe {
            sys::stload_mlx_bridge_astype(
                self.ptr.as_ptr(),
                code,
                &mut out,
                msg.as_mut_ptr().cast(),
                msg.len(),
            )
        };
        check(status, &msg, what)?;
        MlxArray::from_raw(out, false, what)
    }

    /// Evaluates the array (a no-op for the evaluated arrays stload hands out).
    pub fn eval(&self) -> Result<()> {
        let mut msg = [0u8; MSG_LEN];
        let _lock = eval_lock();
        // SAFETY: `self.ptr` is live; evaluation is serialised by the lock.
        let status = unsafe {
            sys::stload_mlx_bridge_eval(self.ptr.as_ptr(), msg.as_mut_ptr().cast(), msg.len())
        };
        check(status, &msg, "array")
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Byte length of the elements.
    pub fn nbytes(&self) -> usize {
        // SAFETY: `self.ptr` is live.
        unsafe { sys::stload_mlx_bridge_nbytes(self.ptr.as_ptr()) }
    }

    /// Host pointer to the data, or NULL when the array is not evaluated or not contiguous.
    pub fn data_ptr(&self) -> *const c_void {
        // SAFETY: `self.ptr` is live.
        unsafe { sys::stload_mlx_bridge_data(self.ptr.as_ptr()) }
    }

    /// The data as bytes, when the array is evaluated and contiguous.
    pub fn bytes(&self) -> Option<&[u8]> {
        let p = self.data_ptr();
        let n = self.nbytes();
        if n == 0 {
            return Some(&[]);
        }
        // SAFETY: an evaluated contiguous array holds `nbytes` readable bytes at its data
        // pointer, alive while `self` holds the array; stload's arrays are never written.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) })
    }

    /// A new handle on the same MLX array (shares its data).
    pub fn try_clone(&self) -> Result<MlxArray> {
        // SAFETY: `self.ptr` is live.
        let p = unsafe { sys::stload_mlx_bridge_clone(self.ptr.as_ptr()) };
        let ptr = NonNull::new(p)
            .ok_or_else(|| Error::OutOfMemory("mlx: cannot copy an array handle".into()))?;
        Ok(MlxArray {
            ptr,
            dtype: self.dtype,
            shape: self.shape.clone(),
            wrapped: self.wrapped,
        })
    }

    /// A new `mlx::core::array*` on the C++ heap sharing this array's data, owned by the
    /// caller: exactly what mlx-c keeps in the `ctx` field of its `mlx_array`, so mlx-c's
    /// `mlx_array_free` (a C++ `delete`) releases it. Both sides allocate with the global
    /// `operator new` of the one libmlx they link, which is what makes the handover sound.
    pub fn to_mlx_c(&self) -> Result<NonNull<c_void>> {
        let copy = std::mem::ManuallyDrop::new(self.try_clone()?);
        Ok(copy.ptr)
    }

    /// Whether the array aliases the tensor's bytes (MLX wrapped them, no copy).
    pub fn is_wrapped(&self) -> bool {
        self.wrapped
    }

    /// The underlying `mlx::core::array*`, owned by this value (for C++ hosts).
    pub fn raw(&self) -> *mut c_void {
        self.ptr.as_ptr()
    }
}

impl Drop for MlxArray {
    fn drop(&mut self) {
        // SAFETY: `self.ptr` came from the bridge and is freed once, here.
        unsafe { sys::stload_mlx_bridge_free(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for MlxArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlxArray")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("wrapped", &self.wrapped)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The mlx-c handle is a second `mlx::core::array` on the same data: a new object whose
    /// data pointer is the array's own, valid after the `MlxArray` is dropped.
    #[test]
    fn to_mlx_c_shares_the_data_in_a_new_array() {
        let values: Vec<u8> = (0u8..24).collect();
        let tensor = Tensor::owned(
            Dtype::U8,
            [2u64, 3, 4].into_iter().collect(),
            Arc::new(values),
        );
        let array = MlxArray::from_tensor(&tensor, "t").expect("array");
        let ctx = array.to_mlx_c().expect("mlx-c handle");
        assert_ne!(ctx.as_ptr(), array.raw());
        // SAFETY: `ctx` is a live array from the bridge (what mlx-c keeps in `ctx`).
        let (data, nbytes) = unsafe {
            (
                sys::stload_mlx_bridge_data(ctx.as_ptr()),
                sys::stload_mlx_bridge_nbytes(ctx.as_ptr()),
            )
        };
        assert_eq!(data, array.data_ptr());
        assert_eq!(nbytes, 24);
        drop(array);
        // SAFETY: as above; the handle holds the data on its own.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), nbytes) };
        assert_eq!(bytes, tensor.data());
        // SAFETY: freed once, as mlx-c's mlx_array_free would.
        unsafe { sys::stload_mlx_bridge_free(ctx.as_ptr()) };
    }
}
