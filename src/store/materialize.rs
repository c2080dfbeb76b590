//! Building new memory for a tensor from mapped bytes: converting its dtype and/or gathering
//! its pieces (permuted rows, stacked tensors), in chunks spread over threads. Each thread
//! first-touches the output it writes, and converted source pages can be let go at once, so
//! peak memory stays at the output size.

use std::ops::Range;
use std::sync::Arc;

use memmap2::Mmap;

use crate::buffer::AlignedBuf;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Source bytes per unit of work: large enough that scheduling is noise, small enough that the
/// source pages held at once (one chunk per thread) stay far below 64 MiB.
const MAX_CHUNK: usize = 16 << 20;
/// Below this many source bytes everything runs on the calling thread.
const MIN_PARALLEL: usize = 4 << 20;

/// A range of a mapping, in output order.
pub(crate) struct Part {
    /// The mapping holding the bytes.
    pub map: Arc<Mmap>,
    /// Byte range in the mapping.
    pub range: Range<usize>,
}

/// Concatenates `parts` (elements of `from`) converted to `to` into a new buffer.
/// With `drop_source`, each converted chunk of the mappings is released from this process's
/// resident memory (the page cache keeps it; a later read faults it back in).
pub(crate) fn convert_parts(
    parts: &[Part],
    from: Dtype,
    to: Dtype,
    threads: usize,
    drop_source: bool,
    tensor: &str,
) -> Result<AlignedBuf> {
    let out_len = output_len(parts, from, to, tensor)?;
    let mut out = AlignedBuf::new_uninit(out_len).map_err(|e| {
        Error::OutOfMemory(format!(
            "tensor \"{tensor}\": cannot allocate {out_len} bytes: {e}"
        ))
    })?;
    convert_parts_into(
        parts,
        from,
        to,
        threads,
        drop_source,
        tensor,
        out.as_mut_slice(),
    )?;
    Ok(out)
}

/// The byte length of `parts` (elements of `from`) as `to`, or why they cannot convert.
pub(crate) fn output_len(parts: &[Part], from: Dtype, to: Dtype, tensor: &str) -> Result<usize> {
    let (fs, ts) = sizes(from, to, tensor)?;
    let total: usize = parts.iter().map(|p| p.range.len()).sum();
    (total / fs)
        .checked_mul(ts)
        .ok_or_else(|| Error::OutOfMemory(format!("tensor \"{tensor}\": output size overflows")))
}

/// The source and output unit sizes of a conversion ([`convert::units`]): bytes for identity
/// copies (any dtype, sub-byte too), whole elements for conversions, blocks for block types.
fn sizes(from: Dtype, to: Dtype, tensor: &str) -> Result<(usize, usize)> {
    let unsupported = || {
        Error::Unsupported(format!(
            "tensor \"{tensor}\": no conversion from {from} to {to}"
        ))
    };
    convert::units(from, to).ok_or_else(unsupported)
}

/// [`convert_parts`] into `out`, which must be exactly [`output_len`] bytes long.
pub(crate) fn convert_parts_into(
    parts: &[Part],
    from: Dtype,
    to: Dtype,
    threads: usize,
    drop_source: bool,
    tensor: &str,
    out: &mut [u8],
) -> Result<()> {
    let (fs, ts) = sizes(from, to, tensor)?;
    let total: usize = parts.iter().map(|p| p.range.len()).sum();
    if Some(out.len()) != (total / fs).checked_mul(ts) {
        return Err(Error::BufferSize(format!(
            "tensor \"{tensor}\": {total} bytes of {from} do not fill {} bytes of {to}",
            out.len()
        )));
    }
    let threads = if total < MIN_PARALLEL {
        1
    } else {
        threads.max(1)
    };
    // Chunks small enough that every thread gets several, in whole 4096-element groups so each
    // output chunk starts cache-line aligned.
    let granule = 4096 * fs;
    let chunk = (total / (threads * 4)).clamp(granule, MAX_CHUNK.max(granule)) / granule * granule;
    let work = chunks(parts, out, fs, ts, chunk);
    let converted = crate::parallel::try_for_each(work.into_iter(), threads, |(map, src, dst)| {
        convert::convert(&map[src.clone()], from, dst, to)?;
        if drop_source {
            release_pages(map, src.start, src.len());
        }
        Ok(())
    });
    if drop_source {
        // Each chunk released only the pages wholly inside it, and a thread faulting in the
        // start of its chunk maps neighbouring pages of a chunk already released (fault-around,
        // large page-cache folios). Measured on a 2 GiB BF16 model with 2 threads, those
        // leftovers added up to about 50 MiB of file pages at the end of `load`; one sweep
        // over the whole tensor lets them go, so they cannot accumulate from tensor to tensor.
        for part in parts {
            release_pages(&part.map, part.range.start, part.range.len());
        }
    }
    converted.map_err(|e: convert::Error| e.in_tensor(tensor))
}

/// Cuts the parts into units of at most `chunk` source bytes, each paired with its output.
fn chunks<'a>(
    parts: &'a [Part],
    mut out: &'a mut [u8],
    fs: usize,
    ts: usize,
    chunk: usize,
) -> Vec<(&'a Mmap, Range<usize>, &'a mut [u8])> {
    let mut work = Vec::new();
    for part in parts {
        let mut start = part.range.start;
        while start < part.range.end {
            let len = chunk.min(part.range.end - start);
            let (dst, rest) = std::mem::take(&mut out).split_at_mut(len / fs * ts);
            out = rest;
            work.push((&*part.map, start..start + len, dst));
            start += len;
        }
    }
    work
}

/// Tells the kernel this process no longer needs the mapped pages fully inside
/// `[start, start + len)`. Only whole pages are released, so neighbours are untouched.
pub(crate) fn release_pages(map: &Mmap, start: usize, len: usize) {
    let page = page_size();
    let first = start.next_multiple_of(page);
    let end = (start + len) / page * page;
    if end > first {
        // Failure only means the memory stays resident, so it is ignored.
        // SAFETY: the range lies inside the mapping, which is a shared read-only file mapping:
        // DONTNEED drops our copy of the pages and a later access reads them from the file again.
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
