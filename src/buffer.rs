//! Aligned output memory for converted tensors.
//!
//! On Unix the memory is an anonymous private mapping: the kernel hands out zeroed pages on
//! first touch, so allocating costs nothing until the converting threads write, and each thread
//! faults in its own part. Large buffers are 2 MiB aligned and asked to use transparent huge
//! pages (Linux), which makes those faults 512 times fewer.

use std::io;
use std::ptr::NonNull;

/// Alignment of every buffer (a cache line, and enough for any SIMD store).
const ALIGN: usize = 64;
/// A type with the buffer alignment, for the dangling pointer of an empty buffer.
#[repr(align(64))]
struct CacheLine;
/// Buffers at least this large are aligned to, and advised to use, 2 MiB huge pages.
const HUGE: usize = 2 << 20;

/// Output memory for converted tensors: 64-byte aligned (2 MiB for large sizes), zero-filled
/// on first touch, freed on drop. A zero-length buffer allocates nothing.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes actually mapped or allocated, starting at `ptr` (0 for an empty buffer).
    capacity: usize,
}

// SAFETY: AlignedBuf owns its memory exclusively (like a Box<[u8]>); &self only reads it and
// &mut self is needed to write it.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above, shared references give read-only access.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A buffer of `len` bytes. The memory is zeroed by the system when first touched, so
    /// "uninit" only means the contents are not meant to be read before being written.
    pub fn new_uninit(len: usize) -> io::Result<AlignedBuf> {
        if len == 0 {
            // A dangling, aligned pointer is valid for zero-length slices.
            let ptr = NonNull::<CacheLine>::dangling().cast::<u8>();
            return Ok(AlignedBuf {
                ptr,
                len: 0,
                capacity: 0,
            });
        }
        let (ptr, capacity) = sys::alloc(len)?;
        Ok(AlignedBuf { ptr, len, capacity })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes (or dangling and aligned with len 0) and the memory
        // is initialised (zero-filled by the system or written since).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice, and &mut self makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pointer to the first byte (aligned to 64 bytes).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.capacity != 0 {
            sys::free(self.ptr, self.capacity);
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(unix)]
mod sys {
    use super::{ALIGN, HUGE};
    use std::io;
    use std::ptr::NonNull;

    fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p)
            .ok()
            .filter(|p| p.is_power_of_two() && *p >= ALIGN)
            .unwrap_or(4096)
    }

    fn too_large() -> io::Error {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            "buffer size overflows the address space",
        )
    }

    fn map(len: usize) -> io::Result<*mut u8> {
        // SAFETY: an anonymous private mapping at an address the kernel picks touches no
        // existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(p.cast())
    }

    fn unmap(p: *mut u8, len: usize) {
        if len != 0 {
            // SAFETY: callers pass whole pages of a mapping made by `map` that nothing refers to.
            unsafe { libc::munmap(p.cast(), len) };
        }
    }

    /// Maps at least `len` bytes; returns the start and the mapped length.
    pub(super) fn alloc(len: usize) -> io::Result<(NonNull<u8>, usize)> {
        let page = page_size();
        let size = len.checked_next_multiple_of(page).ok_or_else(too_large)?;
        if size < HUGE {
            let p = map(size)?;
            return NonNull::new(p).map(|p| (p, size)).ok_or_else(too_large);
        }
        // Over-map by one huge page, then trim both ends so the start is 2 MiB aligned.
        let size = size.checked_next_multiple_of(HUGE).ok_or_else(too_large)?;
        let raw_len = size.checked_add(HUGE).ok_or_else(too_large)?;
        let raw = map(raw_len)?;
        let head = (raw as usize).next_multiple_of(HUGE) - raw as usize;
        unmap(raw, head);
        let start = raw.wrapping_add(head);
        unmap(start.wrapping_add(size), raw_len - head - size);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: [start, start + size) is our own mapping. The advice is only a hint, so
            // its failure (e.g. huge pages disabled) is ignored.
            unsafe { libc::madvise(start.cast(), size, libc::MADV_HUGEPAGE) };
        }
        NonNull::new(start).map(|p| (p, size)).ok_or_else(too_large)
    }

    pub(super) fn free(p: NonNull<u8>, capacity: usize) {
        unmap(p.as_ptr(), capacity);
    }
}

#[cfg(not(unix))]
mod sys {
    use super::{ALIGN, HUGE};
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::io;
    use std::ptr::NonNull;

    fn layout(len: usize) -> io::Result<Layout> {
        let align = if len >= HUGE { HUGE } else { ALIGN };
        Layout::from_size_align(len, align).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "buffer size overflows the address space",
            )
        })
    }

    pub(super) fn alloc(len: usize) -> io::Result<(NonNull<u8>, usize)> {
        let layout = layout(len)?;
        // SAFETY: the layout has a nonzero size (empty buffers never get here).
        let p = unsafe { alloc_zeroed(layout) };
        NonNull::new(p)
            .map(|p| (p, len))
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
    }

    pub(super) fn free(p: NonNull<u8>, capacity: usize) {
        if let Ok(layout) = layout(capacity) {
            // SAFETY: p was allocated by alloc_zeroed with this same layout.
            unsafe { dealloc(p.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_alignment_and_zero_fill() {
        for len in [0usize, 1, 63, 4096, 5000, HUGE - 1, HUGE, 3 * HUGE + 17] {
            let mut b = AlignedBuf::new_uninit(len).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.is_empty(), len == 0);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            if len >= HUGE {
                assert_eq!(b.as_ptr() as usize % HUGE, 0);
            }
            assert!(b.as_slice().iter().all(|&x| x == 0));
            b.as_mut_slice().fill(7);
            assert!(b.as_slice().iter().all(|&x| x == 7));
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AlignedBuf>();
    }
}
