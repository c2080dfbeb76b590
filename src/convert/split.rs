//! Splitting one conversion across scoped threads.

/// Inputs plus outputs smaller than this stay on the calling thread: spawning costs more.
const MIN_PARALLEL_BYTES: usize = 4 << 20;

/// Elements per part are a multiple of this, so every part of the output starts 64-byte
/// aligned relative to the whole.
const SPLIT_GRANULE: usize = 4096;

/// Runs `f` over matching parts of `src` and `dst` (elements of `src_size` and `dst_size`
/// bytes) on up to `threads` threads, the calling thread included. Each part is converted by
/// one thread, which is also the one that first touches (page-faults) that part of `dst`.
pub(crate) fn split<F>(
    src: &[u8],
    src_size: usize,
    dst: &mut [u8],
    dst_size: usize,
    threads: usize,
    f: F,
) where
    F: Fn(&[u8], &mut [u8]) + Sync,
{
    let n = src.len() / src_size;
    let threads = threads.clamp(1, n.div_ceil(SPLIT_GRANULE).max(1));
    if threads == 1 || src.len() + dst.len() < MIN_PARALLEL_BYTES {
        f(src, dst);
        return;
    }
    let per = n.div_ceil(threads).next_multiple_of(SPLIT_GRANULE);
    let parts = src
        .chunks(per * src_size)
        .zip(dst.chunks_mut(per * dst_size));
    let done = crate::parallel::try_for_each(parts, threads, |(s, d)| {
        f(s, d);
        Ok::<(), std::convert::Infallible>(())
    });
    let Ok(()) = done;
}
