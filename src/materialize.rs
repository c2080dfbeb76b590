//! Turning a mapped tensor into converted memory, chunk by chunk, so that the mapped source
//! pages can be let go as soon as they are converted: peak memory stays at the output size.

use std::ops::Range;

use memmap2::Mmap;

use crate::buffer::AlignedBuf;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Source bytes converted per step. Large enough that thread start-up is noise, small enough
/// that the source pages held at once stay far below the 64 MiB the load budget allows.
const CHUNK_BYTES: usize = 32 << 20;

/// Converts the bytes `range` of `map` (elements of `from`) into a new buffer of `to`.
/// With `drop_source`, each converted chunk of the mapping is released from this process's
/// resident memory (the page cache keeps it; a later read faults it back in).
pub(crate) fn convert_mapped(
    map: &Mmap,
    range: Range<usize>,
    from: Dtype,
    to: Dtype,
    threads: usize,
    drop_source: bool,
    tensor: &str,
) -> Result<AlignedBuf> {
    let unsupported = || {
        Error::Unsupported(format!(
            "tensor \"{tensor}\": no conversion from {from} to {to}"
        ))
    };
    let (Some(fs), Some(ts)) = (from.byte_size(), to.byte_size()) else {
        return Err(unsupported());
    };
    if !convert::is_supported(from, to) {
        return Err(unsupported());
    }
    let offset = range.start;
    let src = map.get(range).ok_or_else(|| {
        Error::Format(format!(
            "tensor \"{tensor}\": data lies outside the mapped file"
        ))
    })?;
    let elements = src.len() / fs;
    let out_len = elements.checked_mul(ts).ok_or_else(|| {
        Error::OutOfMemory(format!(
            "tensor \"{tensor}\": {elements} elements of {to} overflow"
        ))
    })?;
    let mut out = AlignedBuf::new_uninit(out_len).map_err(|e| {
        Error::OutOfMemory(format!(
            "tensor \"{tensor}\": cannot allocate {out_len} bytes: {e}"
        ))
    })?;
    let per_chunk = (CHUNK_BYTES / fs).max(1);
    for (i, (s, d)) in src
        .chunks(per_chunk * fs)
        .zip(out.as_mut_slice().chunks_mut(per_chunk * ts))
        .enumerate()
    {
        convert::convert_parallel(s, from, d, to, threads)
            .map_err(|e| Error::Unsupported(format!("tensor \"{tensor}\": {e}")))?;
        if drop_source {
            let start = offset + i * per_chunk * fs;
            release_pages(map, start, s.len());
        }
    }
    Ok(out)
}

/// Tells the kernel this process no longer needs the mapped pages fully inside
/// `[start, start + len)`. Only whole pages are released, so neighbours are untouched.
fn release_pages(map: &Mmap, start: usize, len: usize) {
    let page = page_size();
    let first = start.next_multiple_of(page);
    let end = (start + len) / page * page;
    if end > first {
        // The mapping is read-only and file-backed: dropping pages never loses data, a later
        // access reads them back from the page cache. Failure only means memory stays resident.
        // SAFETY: the range lies inside the mapping; DONTNEED on a shared read-only file mapping
        // keeps its contents (they are re-read from the file).
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first)
        };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}
