//! Tensors of remote files: parallel ranged GETs, each chunk converted into the output as its
//! bytes arrive (network and conversion overlap, and no copy of the stored dtype is kept).
//! `threads` workers each wait on the runtime for their share of `concurrency` requests and
//! convert what their requests receive. The output is handed out only once every byte of it
//! arrived; on any error it is dropped.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};

use crate::buffer::AlignedBuf;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::remote::object::Object;

/// A byte range of a remote object, in output order.
pub(crate) struct Part {
    /// The object.
    pub object: Arc<Object>,
    /// Bytes of the object.
    pub range: Range<u64>,
}

/// How reads are spread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Worker threads converting.
    pub threads: usize,
    /// Requests in flight at once, over all workers.
    pub concurrency: usize,
    /// Bytes per request.
    pub chunk_size: u64,
}

/// Concatenates `parts` (elements of `from`) converted to `to` into new memory.
pub(crate) fn fetch_convert(
    parts: &[Part],
    from: Dtype,
    to: Dtype,
    plan: Plan,
    tensor: &str,
) -> Result<AlignedBuf> {
    let unsupported = || {
        Error::Unsupported(format!(
            "tensor \"{tensor}\": no conversion from {from} to {to}"
        ))
    };
    if !convert::is_supported(from, to) {
        return Err(unsupported());
    }
    // Identity copies move bytes (any dtype, sub-byte too); conversions move whole elements.
    let (fs, ts) = match (from.byte_size(), to.byte_size()) {
        _ if from == to => (1, 1),
        (Some(fs), Some(ts)) => (fs, ts),
        _ => return Err(unsupported()),
    };
    let total = parts
        .iter()
        .try_fold(0u64, |acc, p| acc.checked_add(p.range.end - p.range.start))
        .and_then(|t| usize::try_from(t).ok())
        .ok_or_else(|| Error::OutOfMemory(format!("tensor \"{tensor}\" does not fit in memory")))?;
    let out_len = (total / fs)
        .checked_mul(ts)
        .ok_or_else(|| Error::OutOfMemory(format!("tensor \"{tensor}\": output size overflows")))?;
    let mut out = AlignedBuf::new_uninit(out_len).map_err(|e| {
        Error::OutOfMemory(format!(
            "tensor \"{tensor}\": cannot allocate {out_len} bytes: {e}"
        ))
    })?;
    // Whole 4096-element groups per request, so every output chunk starts cache-line aligned.
    let granule = 4096 * fs as u64;
    let chunk = (plan.chunk_size / granule).max(1) * granule;
    let mut work = Vec::new();
    let mut rest = out.as_mut_slice();
    for part in parts {
        let mut start = part.range.start;
        while start < part.range.end {
            let len = chunk.min(part.range.end - start);
            let (dst, tail) = std::mem::take(&mut rest).split_at_mut(len as usize / fs * ts);
            rest = tail;
            work.push((&*part.object, start..start + len, dst));
            start += len;
        }
    }
    let workers = plan.threads.clamp(1, work.len().max(1));
    let per_worker = plan.concurrency.div_ceil(workers).max(1);
    let queue = Mutex::new(work.into_iter());
    let failed = AtomicBool::new(false);
    let job = Job {
        from,
        to,
        fs,
        ts,
        tensor,
        what: format!("tensor \"{tensor}\""),
    };
    let next = || {
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        queue.lock().unwrap_or_else(|p| p.into_inner()).next()
    };
    let threads = plan.threads;
    crate::parallel::try_for_each(0..workers, workers, |_| {
        let run = futures::stream::iter(std::iter::from_fn(next))
            .map(|(object, range, dst)| fetch_chunk(object, range, dst, &job))
            .buffer_unordered(per_worker)
            .try_collect::<()>();
        let outcome = crate::remote::block_on(threads, run).and_then(|r| r);
        if outcome.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        outcome
    })?;
    Ok(out)
}

/// What every chunk of one tensor does.
struct Job<'a> {
    from: Dtype,
    to: Dtype,
    /// Bytes per source element (1 for an identity copy).
    fs: usize,
    /// Bytes per output element (1 for an identity copy).
    ts: usize,
    tensor: &'a str,
    /// `tensor "name"`, leading messages.
    what: String,
}

/// Fetches `range` of `object` and converts it into `dst` frame by frame as it arrives; an
/// element split between two frames waits in a small carry buffer.
async fn fetch_chunk(
    object: &Object,
    range: Range<u64>,
    dst: &mut [u8],
    job: &Job<'_>,
) -> Result<()> {
    let (fs, ts, what) = (job.fs, job.ts, job.what.as_str());
    let want = range.end - range.start;
    let mut body = object.body(range.clone(), what).await?;
    let mut got = 0u64;
    let mut at = 0usize;
    let mut carry = [0u8; 16];
    let mut carried = 0usize;
    let converted = |src: &[u8], dst: &mut [u8]| {
        convert::convert(src, job.from, dst, job.to).map_err(|e| e.in_tensor(job.tensor))
    };
    while let Some(frame) = body.next().await {
        let frame = frame.map_err(|e| object.broken(what, &range, got, e))?;
        got += frame.len() as u64;
        if got > want {
            return Err(object.too_long(what, &range));
        }
        let mut bytes = &frame[..];
        if carried > 0 {
            let take = (fs - carried).min(bytes.len());
            carry[carried..carried + take].copy_from_slice(&bytes[..take]);
            carried += take;
            bytes = &bytes[take..];
            if carried == fs {
                converted(&carry[..fs], &mut dst[at..at + ts])?;
                at += ts;
            } else {
                continue;
            }
        }
        let whole = bytes.len() / fs * fs;
        let out = whole / fs * ts;
        if whole > 0 {
            converted(&bytes[..whole], &mut dst[at..at + out])?;
            at += out;
        }
        let left = bytes.len() - whole;
        carry[..left].copy_from_slice(&bytes[whole..]);
        carried = left;
    }
    if got < want {
        return Err(object.short(what, &range, got));
    }
    Ok(())
}
