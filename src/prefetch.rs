//! Bringing tensor data into memory ahead of use: `madvise(WILLNEED)` so the kernel reads ahead,
//! then pages touched by several threads, because on network and FUSE file systems readahead
//! alone is weak and one thread waiting on each page fault is slow.

use std::ops::Range;
use std::sync::Arc;

use memmap2::{Advice, Mmap};

/// Bytes touched per unit of work.
const CHUNK: usize = 4 << 20;

/// A byte range of one mapping.
pub(crate) type MappedRange = (Arc<Mmap>, Range<usize>);

/// Advises and touches every range on up to `threads` threads. `progress(done, total)` (bytes)
/// runs on the calling thread between batches; returning false stops early (returns false).
pub(crate) fn touch(
    ranges: &[MappedRange],
    threads: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> bool {
    for (map, r) in ranges {
        // Only a hint: failure changes nothing but speed.
        let _ = map.advise_range(Advice::WillNeed, r.start, r.len());
    }
    let chunks: Vec<(&Mmap, Range<usize>)> = ranges
        .iter()
        .flat_map(|(map, r)| {
            r.clone()
                .step_by(CHUNK)
                .map(move |start| (&**map, start..(start + CHUNK).min(r.end)))
        })
        .collect();
    let total: u64 = chunks.iter().map(|(_, r)| r.len() as u64).sum();
    // Small models are touched faster than threads start.
    let threads = if total < 2 * CHUNK as u64 { 1 } else { threads };
    let mut done = 0u64;
    for batch in chunks.chunks(threads.max(1) * 4) {
        crate::parallel::map(batch, threads, |(map, r)| touch_pages(map, r.clone()));
        done += batch.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
        if !progress(done, total) {
            return false;
        }
    }
    true
}

/// Reads one byte of every page in `r`, so the page is resident when it is needed.
fn touch_pages(map: &Mmap, r: Range<usize>) -> u8 {
    let mut sum = 0u8;
    for i in r.step_by(4096) {
        // A volatile read, so the compiler cannot drop the access that faults the page in.
        // SAFETY: `i` is inside the mapping (ranges are checked against its length by callers).
        sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(map.as_ptr().add(i)) });
    }
    sum
}

/// Touches `ranges` on a background thread (the open option): the thread holds the mappings,
/// so it stays safe if the model is freed first, and it ends on its own.
pub(crate) fn spawn_background(ranges: Vec<MappedRange>, threads: usize) {
    let _ = std::thread::Builder::new()
        .name("stload-prefetch".into())
        .spawn(move || {
            touch(&ranges, threads, &mut |_, _| true);
        });
}
