//! Bringing tensor data into memory ahead of use: `madvise(WILLNEED)` so the kernel reads ahead,
//! then pages touched by several threads, because on network and FUSE file systems readahead
//! alone is weak and one thread waiting on each page fault is slow.

use std::ops::Range;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use memmap2::{Advice, Mmap};

use crate::identity::Guard;

/// Bytes touched per unit of work: large enough that the per-chunk residency question and
/// bookkeeping cost little next to touching a cached chunk (tens of microseconds for 16 MiB
/// when the page cache holds the file in large folios).
const CHUNK: usize = 16 << 20;

/// A byte range of one mapping, with the guard of its file: no page is touched once the file
/// changed (a truncated file's pages would raise SIGBUS).
pub(crate) type MappedRange = (Arc<Mmap>, Range<usize>, Arc<Guard>);

/// How a prefetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every range was touched.
    Done,
    /// The progress callback asked to stop.
    Cancelled,
    /// A file changed: nothing more was touched. The index of the range whose file changed.
    Changed(usize),
}

/// Advises and touches every range on up to `threads` threads. `progress(done, total)` (bytes)
/// runs on the calling thread after each chunk it touches; returning false stops early (the
/// function then returns false).
pub(crate) fn touch(
    ranges: &[MappedRange],
    threads: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Outcome {
    let chunks: Vec<(&Mmap, Range<usize>, usize)> = ranges
        .iter()
        .enumerate()
        .flat_map(|(k, (map, r, _))| {
            r.clone()
                .step_by(CHUNK)
                .map(move |start| (&**map, start..(start + CHUNK).min(r.end), k))
        })
        .collect();
    let total: u64 = chunks.iter().map(|(_, r, _)| r.len() as u64).sum();
    // The range whose file changed, plus one (0: none).
    let changed = AtomicUsize::new(0);
    // Small models are touched faster than threads start.
    let threads = if total < 2 * CHUNK as u64 {
        1
    } else {
        threads.max(1)
    };
    // Read-ahead is requested one round ahead of the touching threads, so the file system
    // works while they fault; asking for everything up front only delays the first touch.
    let advise = |i: usize| {
        if let Some((map, r, _)) = chunks.get(i) {
            // Asking costs about as much as touching when the pages are cached already.
            if !resident(map, r.clone()) {
                // Only a hint: failure changes nothing but speed.
                let _ = map.advise_range(Advice::WillNeed, r.start, r.len());
            }
        }
    };
    (0..threads).for_each(advise);
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Claims and touches one chunk; false when none is left.
    let step = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((map, r, k)) = chunks.get(i) else {
            return false;
        };
        // Asked before every chunk: a file that shrank must not have its pages touched.
        if !ranges[*k].2.holds() {
            changed.store(k + 1, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
            return false;
        }
        advise(i + threads);
        touch_pages(map, r.clone());
        done.fetch_add(r.len() as u64, Ordering::Relaxed);
        true
    };
    let work = || {
        while !stop.load(Ordering::Relaxed) {
            if !step() {
                break;
            }
        }
    };
    // The calling thread touches too, and reports between its chunks.
    let lead = |progress: &mut dyn FnMut(u64, u64) -> bool| {
        while !stop.load(Ordering::Relaxed) && step() {
            if !progress(done.load(Ordering::Relaxed), total) {
                stop.store(true, Ordering::Relaxed);
            }
        }
    };
    if threads == 1 {
        lead(progress);
    } else {
        std::thread::scope(|s| {
            for _ in 1..threads {
                if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                    break;
                }
            }
            lead(progress);
        });
    }
    if let Some(k) = changed.load(Ordering::Relaxed).checked_sub(1) {
        return Outcome::Changed(k);
    }
    if stop.load(Ordering::Relaxed) || !progress(total, total) {
        return Outcome::Cancelled;
    }
    Outcome::Done
}

/// Whether `r` looks resident: its middle page is in memory (false when the system cannot
/// tell). One page, because asking for every page costs a page-cache lookup each, about as
/// much as touching them, and each question is a system call; a file's pages are cached or
/// evicted in runs, and a wrong guess only skips or repeats a read-ahead hint.
fn resident(map: &Mmap, r: Range<usize>) -> bool {
    r.is_empty() || page_resident(map, r.start + (r.end - r.start) / 2)
}

/// Whether the page holding byte `at` of the mapping is in memory.
fn page_resident(map: &Mmap, at: usize) -> bool {
    #[cfg(unix)]
    {
        let page = 4096;
        let start = at / page * page;
        let mut state = 0u8;
        // SAFETY: the page holding `at` lies inside the mapping (mappings start page-aligned
        // and `at` is inside it); one page needs one byte of `state`.
        let rc =
            unsafe { libc::mincore(map.as_ptr().add(start) as *mut libc::c_void, 1, &mut state) };
        rc == 0 && state & 1 == 1
    }
    #[cfg(not(unix))]
    {
        let _ = (map, at);
        false
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn nothing_is_touched_once_the_file_changed() {
        // Issue 16 item 9: truncation after the mapping was made, then prefetch (the background
        // thread runs this same loop): stop with Changed instead of dying of SIGBUS.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 3 * CHUNK]).unwrap();
        let identity = crate::identity::Identity::of(&std::fs::metadata(&path).unwrap());
        let guard = Arc::new(Guard::new(&path, "f", identity).unwrap());
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a private temporary file; the test truncates it on purpose and the guard
        // must keep the pages past the end from being touched.
        let map = Arc::new(unsafe { Mmap::map(&file) }.unwrap());
        let ranges = vec![(Arc::clone(&map), 0..map.len(), Arc::clone(&guard))];
        assert_eq!(touch(&ranges, 2, &mut |_, _| true), Outcome::Done);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        assert_eq!(touch(&ranges, 2, &mut |_, _| true), Outcome::Changed(0));
        assert_eq!(touch(&ranges, 1, &mut |_, _| true), Outcome::Changed(0));
    }

    #[test]
    fn touched_pages_are_seen_resident_and_sums_are_per_page() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[1u8; 3 * 4096 + 100]).unwrap();
        // SAFETY: a private temporary file nobody else changes.
        let map = unsafe { Mmap::map(&file) }.unwrap();
        // One byte of each of the four pages is read.
        assert_eq!(touch_pages(&map, 0..map.len()), 4);
        assert!(resident(&map, 0..map.len()));
        assert!(resident(&map, 4096..4097));
        assert!(resident(&map, 5..5), "an empty range needs nothing");
    }
}
