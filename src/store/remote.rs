//! Tensors of remote files: parallel ranged GETs, each chunk converted into its output as its
//! bytes arrive (network and conversion overlap, and no copy of the stored dtype is kept).
//!
//! A list of tensors is cut into pieces of at most `chunk_size` bytes in output order, and the
//! pieces into requests: one ranged GET serves a run of pieces that follow each other in the
//! list and in the same object (gaps of at most [`MAX_GAP`] bytes are read and dropped), up
//! to `chunk_size` in all, so adjacent small tensors (norms, biases) cost one request between
//! them, not one each. The requests are one work queue. `threads` workers each wait on the
//! runtime for their share of `concurrency` requests (at most `concurrency` in flight over the
//! whole list) and convert what their requests receive, piece by piece, so the requests of the
//! next tensors start while the previous ones finish: a model of many small tensors is bound
//! by bandwidth, not by one round trip and one tail per tensor. The calling
//! thread hands each tensor out, in list order, once every byte of it arrived; on the first
//! error (or when the caller's hand-out fails) nothing more is handed out and every output not
//! handed out is dropped.
//!
//! Memory is bounded by a window: a request that starts a tensor waits until the stored bytes of
//! the tensors started and not yet handed out are under [`WINDOW_ROUNDS`] × `concurrency` ×
//! `chunk_size` (512 MiB with the defaults); the tensors it starts after its first piece's do
//! not wait (the request's own earlier pieces may be what holds the window back), but each of
//! them lies whole inside the request, so they exceed the window by less than one request. A
//! caller that drops each tensor once handed out (an MLX load) so holds at most the outputs of
//! the window plus one tensor (in the output dtype: twice the stored bytes for BF16 to F32).

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures::{StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::buffer::AlignedBuf;
use crate::convert;
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::remote::object::Object;

/// The window of a list: stored bytes of started tensors not yet handed out, in rounds of
/// `concurrency` × `chunk_size` (the bytes one round of requests brings). Four rounds keep
/// every request slot busy while a slow request holds back the hand-out of its tensor.
pub(crate) const WINDOW_ROUNDS: u64 = 4;

/// The most bytes between two pieces of one request that are read only to be dropped: at any
/// bandwidth a round trip costs more than 64 KiB (the rows of a tensor-parallel slice of a
/// small tensor so come in one request).
pub(crate) const MAX_GAP: u64 = 64 * 1024;

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
    /// Requests in flight at once, over all workers and all tensors of a list.
    pub concurrency: usize,
    /// Bytes per request.
    pub chunk_size: u64,
}

impl Plan {
    /// The window in stored bytes (see [`WINDOW_ROUNDS`]).
    fn window(&self) -> u64 {
        WINDOW_ROUNDS
            .saturating_mul(self.concurrency as u64)
            .saturating_mul(self.chunk_size)
            .max(1)
    }
}

/// One tensor of a list: `parts` (elements of `from`, concatenated in order) wanted as `to`.
pub(crate) struct Fetch<'a> {
    /// The tensor's name, for messages.
    pub name: &'a str,
    /// Its bytes.
    pub parts: Vec<Part>,
    /// The stored dtype.
    pub from: Dtype,
    /// The dtype handed out.
    pub to: Dtype,
}

/// Concatenates `parts` (elements of `from`) converted to `to` into new memory.
pub(crate) fn fetch_convert(
    parts: Vec<Part>,
    from: Dtype,
    to: Dtype,
    plan: Plan,
    tensor: &str,
) -> Result<AlignedBuf> {
    let list = [Fetch {
        name: tensor,
        parts,
        from,
        to,
    }];
    let mut out = None;
    fetch_convert_many(&list, plan, &mut |_, buf| {
        out = Some(buf);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Io {
        path: "remote".into(),
        message: format!("tensor \"{tensor}\": the fetch ended without its bytes"),
    })
}

/// Fetches every tensor of `list` converted to its dtype and runs `each(k, output)` for tensor
/// `k` of the list, in list order, each once all its bytes arrived (see the module comment for
/// how requests are spread and how much memory is held). Every tensor is checked before the
/// first request. The first error, of a request or of `each`, stops the whole list.
pub(crate) fn fetch_convert_many(
    list: &[Fetch<'_>],
    plan: Plan,
    each: &mut dyn FnMut(usize, AlignedBuf) -> Result<()>,
) -> Result<()> {
    let (jobs, pieces, requests) = plan_list(list, plan.chunk_size)?;
    if jobs.is_empty() {
        return Ok(());
    }
    let (handed, handed_rx) = watch::channel(0u64);
    let workers = plan
        .threads
        .min(plan.concurrency)
        .min(requests.len())
        .max(1);
    let pipe = Pipe {
        state: Mutex::new(State {
            outputs: jobs.iter().map(|_| None).collect(),
            left: jobs.iter().map(|j| j.pieces).collect(),
            error: None,
            workers,
        }),
        jobs,
        pieces,
        requests,
        window: plan.window(),
        threads: plan.threads,
        queue: tokio::sync::Mutex::new(Queue {
            next: 0,
            current: None,
        }),
        handed: handed_rx,
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
    };
    // The requests of each worker: `concurrency` shared out, the first workers taking one more.
    let share = |w: usize| plan.concurrency / workers + usize::from(w < plan.concurrency % workers);
    if pipe.requests.is_empty() {
        // Only empty tensors: nothing to fetch.
        return pipe.hand_out(handed, each);
    }
    if pipe.jobs.len() == 1 {
        // One tensor has no window to wait for: the calling thread works too, then hands out
        // (or returns the error a worker recorded).
        let _recorded = crate::parallel::try_for_each(0..workers, workers, |w| pipe.work(share(w)));
        return pipe.hand_out(handed, each);
    }
    std::thread::scope(|s| {
        for w in 0..workers {
            let pipe = &pipe;
            let spawned = std::thread::Builder::new()
                .name("stload-fetch".into())
                .spawn_scoped(s, move || pipe.work(share(w)));
            if spawned.is_err() {
                // The others take its share of the queue (not of the requests).
                lock(&pipe.state).workers -= 1;
            }
        }
        let outcome = pipe.hand_out(handed, each);
        if outcome.is_err() {
            pipe.stop.store(true, Ordering::Relaxed);
        }
        outcome
    })
}

/// One tensor of a list, as planned.
struct Job<'a> {
    tensor: &'a str,
    /// `tensor "name"`, leading messages.
    what: String,
    from: Dtype,
    to: Dtype,
    /// Bytes per source element (1 for an identity copy).
    fs: usize,
    /// Bytes per output element (1 for an identity copy).
    ts: usize,
    /// Output bytes.
    out_len: usize,
    /// Stored bytes of the tensors before it in the list, and its own.
    start: u64,
    len: u64,
    /// Its pieces.
    pieces: usize,
}

/// Bytes `range` of an object, converted into `len` bytes at `at` of the output of tensor
/// `job`.
struct Piece<'a> {
    job: usize,
    object: &'a Object,
    range: Range<u64>,
    at: usize,
    len: usize,
}

/// One ranged GET: bytes `range` of `object`, which feed the pieces `pieces` (indices into the
/// list's pieces, in byte order; bytes between two of them are dropped).
struct Request<'a> {
    object: &'a Object,
    range: Range<u64>,
    pieces: Range<usize>,
}

/// The plan of a list: its tensors, their pieces in list order, and the requests serving them
/// in the same order.
type Planned<'a> = (Vec<Job<'a>>, Vec<Piece<'a>>, Vec<Request<'a>>);

/// Checks every tensor of `list`, cuts it into pieces of about `chunk_size` bytes, and groups
/// the pieces into requests.
fn plan_list<'a>(list: &'a [Fetch<'a>], chunk_size: u64) -> Result<Planned<'a>> {
    let mut jobs = Vec::with_capacity(list.len());
    let mut pieces = Vec::with_capacity(list.len());
    let mut start = 0u64;
    for (index, f) in list.iter().enumerate() {
        let (tensor, from, to) = (f.name, f.from, f.to);
        let unsupported = || {
            Error::Unsupported(format!(
                "tensor \"{tensor}\": no conversion from {from} to {to}"
            ))
        };
        // Identity copies move bytes (any dtype, sub-byte too); conversions move whole elements
        // (or blocks).
        let (fs, ts) = convert::units(from, to).ok_or_else(unsupported)?;
        let too_large =
            || Error::OutOfMemory(format!("tensor \"{tensor}\" does not fit in memory"));
        let len = f
            .parts
            .iter()
            .try_fold(0u64, |acc, p| {
                acc.checked_add(p.range.end.checked_sub(p.range.start)?)
            })
            .ok_or_else(too_large)?;
        let out_len = usize::try_from(len)
            .ok()
            .and_then(|total| (total / fs).checked_mul(ts))
            .ok_or_else(too_large)?;
        // Whole 4096-element groups per piece, so every output piece starts cache-line aligned.
        let granule = 4096 * fs as u64;
        let step = (chunk_size / granule).max(1) * granule;
        let first = pieces.len();
        let mut at = 0usize;
        for part in &f.parts {
            let mut from_byte = part.range.start;
            while from_byte < part.range.end {
                let n = step.min(part.range.end - from_byte);
                // n <= len, which fits in usize.
                let out = n as usize / fs * ts;
                pieces.push(Piece {
                    job: index,
                    object: &part.object,
                    range: from_byte..from_byte + n,
                    at,
                    len: out,
                });
                at += out;
                from_byte += n;
            }
        }
        jobs.push(Job {
            tensor,
            what: format!("tensor \"{tensor}\""),
            from,
            to,
            fs,
            ts,
            out_len,
            start,
            len,
            pieces: pieces.len() - first,
        });
        start = start.saturating_add(len);
    }
    let requests = group(&pieces, &jobs, chunk_size);
    Ok((jobs, pieces, requests))
}

/// Groups `pieces` (of the tensors `jobs`) into requests: a piece joins the request before it
/// when it lies in the same object after that request's end, at most [`MAX_GAP`] bytes
/// further, and the request stays within `chunk_size` bytes; but the first piece of a tensor of
/// several pieces starts a request, so a tensor that starts inside a request (without waiting
/// for the window) is whole inside it.
fn group<'a>(pieces: &[Piece<'a>], jobs: &[Job<'_>], chunk_size: u64) -> Vec<Request<'a>> {
    let mut requests: Vec<Request<'a>> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let starts_many = piece.at == 0 && jobs[piece.job].pieces > 1;
        if let Some(last) = requests.last_mut().filter(|_| !starts_many) {
            let joins = std::ptr::eq(last.object, piece.object)
                && piece.range.start >= last.range.end
                && piece.range.start - last.range.end <= MAX_GAP
                && piece.range.end - last.range.start <= chunk_size;
            if joins {
                last.range.end = piece.range.end;
                last.pieces.end = i + 1;
                continue;
            }
        }
        requests.push(Request {
            object: piece.object,
            range: piece.range.clone(),
            pieces: i..i + 1,
        });
    }
    requests
}

/// A list being fetched: the work queue, the window, and what is ready to hand out.
struct Pipe<'a> {
    jobs: Vec<Job<'a>>,
    pieces: Vec<Piece<'a>>,
    requests: Vec<Request<'a>>,
    /// Stored bytes of started tensors not yet handed out before another may start.
    window: u64,
    /// Runtime workers, for the blocking calls.
    threads: usize,
    /// The next request to start. An async lock: a worker holds it while it waits for the
    /// window, so tensors start in list order.
    queue: tokio::sync::Mutex<Queue>,
    /// Stored bytes of the tensors handed out; closed when the hand-out stops.
    handed: watch::Receiver<u64>,
    state: Mutex<State>,
    /// Signals a change of `state` to the thread handing out.
    changed: Condvar,
    /// No more requests start (an error, or the hand-out stopped).
    stop: AtomicBool,
}

/// Where the queue is.
struct Queue {
    /// Index of the next request.
    next: usize,
    /// The tensor whose output the pieces being started write, and that output.
    current: Option<(usize, Region)>,
}

/// What the workers tell the thread handing out.
struct State {
    /// Outputs of started tensors not yet handed out.
    outputs: Vec<Option<AlignedBuf>>,
    /// Pieces of each tensor not yet done.
    left: Vec<usize>,
    /// The first error.
    error: Option<Error>,
    /// Workers still running.
    workers: usize,
}

impl Pipe<'_> {
    /// One worker: takes requests from the queue, up to `requests` in flight, and converts
    /// what they receive. An error is recorded for the hand-out and stops the queue.
    fn work(&self, requests: usize) -> std::result::Result<(), ()> {
        let _alive = Alive(self);
        let run = futures::stream::unfold(self.handed.clone(), |mut handed| async move {
            let next = self.take(&mut handed).await?;
            Some((next, handed))
        })
        .map(|next| async move {
            let (k, regions) = next?;
            self.fetch(k, regions).await?;
            Ok::<usize, Error>(k)
        })
        .buffer_unordered(requests.max(1))
        .try_for_each(|k| {
            self.done(k);
            futures::future::ready(Ok(()))
        });
        match crate::remote::block_on(self.threads, run).and_then(|r| r) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stop();
                lock(&self.state).error.get_or_insert(e);
                self.changed.notify_all();
                Err(())
            }
        }
    }

    /// Stops the queue: no request starts after this.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The next request and the output bytes of each of its pieces; `None` when there is none
    /// or the list stopped. A request whose first piece starts a tensor waits until the window
    /// lets it start; every tensor a request starts gets its output allocated here.
    async fn take(
        &self,
        handed: &mut watch::Receiver<u64>,
    ) -> Option<Result<(usize, Vec<Region>)>> {
        let mut queue = self.queue.lock().await;
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let k = queue.next;
        let request = self.requests.get(k)?;
        let mut regions = Vec::with_capacity(request.pieces.len());
        for (n, piece) in self.pieces[request.pieces.clone()].iter().enumerate() {
            let job = &self.jobs[piece.job];
            if queue.current.as_ref().map(|(j, _)| *j) != Some(piece.job) {
                // Only the first piece waits: the tensors of later ones may wait for this very
                // request (see the module comment).
                if n == 0 {
                    let (start, window) = (job.start, self.window);
                    // An error: the hand-out stopped and closed the channel.
                    let open = handed
                        .wait_for(|&h| start < h.saturating_add(window))
                        .await
                        .is_ok();
                    if !open || self.stop.load(Ordering::Relaxed) {
                        return None;
                    }
                }
                let mut buf = match AlignedBuf::new_uninit(job.out_len) {
                    Ok(buf) => buf,
                    Err(e) => {
                        return Some(Err(Error::OutOfMemory(format!(
                            "{}: cannot allocate {} bytes: {e}",
                            job.what, job.out_len
                        ))))
                    }
                };
                let whole = Region::of(&mut buf);
                // The buffer stays in `outputs` (its bytes do not move) until every piece of
                // the tensor is done, or until the pipe is dropped after every worker ended.
                lock(&self.state).outputs[piece.job] = Some(buf);
                queue.current = Some((piece.job, whole));
            }
            let region = queue
                .current
                .as_ref()
                .and_then(|(_, whole)| whole.part(piece.at, piece.len));
            match region {
                Some(region) => regions.push(region),
                None => {
                    return Some(Err(Error::Io {
                        path: piece.object.url().to_string(),
                        message: format!("{}: a piece lies outside the output", job.what),
                    }))
                }
            }
        }
        queue.next += 1;
        Some(Ok((k, regions)))
    }

    /// Runs request `k`, converting each piece into its region.
    async fn fetch(&self, k: usize, regions: Vec<Region>) -> Result<()> {
        let request = &self.requests[k];
        let pieces = &self.pieces[request.pieces.clone()];
        let sinks = pieces
            .iter()
            .zip(regions)
            .map(|(piece, region)| Sink::new(&piece.range, &self.jobs[piece.job], region));
        fetch_request(request.object, request.range.clone(), sinks.collect()).await
    }

    /// Request `k` is done.
    fn done(&self, k: usize) {
        let mut state = lock(&self.state);
        let mut finished = false;
        for piece in &self.pieces[self.requests[k].pieces.clone()] {
            state.left[piece.job] -= 1;
            finished |= state.left[piece.job] == 0;
        }
        if finished {
            self.changed.notify_all();
        }
    }

    /// Hands every tensor out in order, each once all its pieces are done, moving the window
    /// on before `each` runs. Returns the first error; dropping `handed` on return wakes the
    /// workers waiting for the window.
    fn hand_out(
        &self,
        handed: watch::Sender<u64>,
        each: &mut dyn FnMut(usize, AlignedBuf) -> Result<()>,
    ) -> Result<()> {
        for (j, job) in self.jobs.iter().enumerate() {
            let buf = if job.pieces == 0 {
                AlignedBuf::new_uninit(0).map_err(|e| {
                    Error::OutOfMemory(format!("{}: cannot allocate: {e}", job.what))
                })?
            } else {
                let mut state = lock(&self.state);
                loop {
                    if let Some(e) = state.error.take() {
                        return Err(e);
                    }
                    if state.left[j] == 0 {
                        if let Some(buf) = state.outputs[j].take() {
                            break buf;
                        }
                    }
                    if state.workers == 0 {
                        return Err(Error::Io {
                            path: "remote".into(),
                            message: format!(
                                "{}: the fetching threads ended before its bytes arrived",
                                job.what
                            ),
                        });
                    }
                    state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            handed.send_replace(job.start.saturating_add(job.len));
            each(j, buf)?;
        }
        Ok(())
    }
}

/// Counts a worker out when it ends (also by a panic), so the hand-out never waits for a
/// worker that is gone.
struct Alive<'p, 'a>(&'p Pipe<'a>);

impl Drop for Alive<'_, '_> {
    fn drop(&mut self) {
        lock(&self.0.state).workers -= 1;
        self.0.changed.notify_all();
    }
}

/// Output bytes of a tensor that one piece writes alone, while other pieces write other parts
/// of the same output and the thread handing out waits for all of them.
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Region is the only access to its bytes while it exists (see `part`), like a
// `&mut [u8]`; the buffer it points into outlives it (see `Pipe::take`).
unsafe impl Send for Region {}

impl Region {
    /// The whole of `buf`. The buffer must not be read or written through another path until
    /// every part of this region is gone.
    fn of(buf: &mut AlignedBuf) -> Region {
        let bytes = buf.as_mut_slice();
        Region {
            ptr: NonNull::from(&mut *bytes).cast(),
            len: bytes.len(),
        }
    }

    /// Bytes `at..at + len` of the region, when they lie inside it. The planner gives every
    /// piece of a tensor its own bytes, so no two parts overlap.
    fn part(&self, at: usize, len: usize) -> Option<Region> {
        if at.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: at <= self.len, so the pointer stays inside (or one past) the allocation.
        let ptr = unsafe { self.ptr.add(at) };
        Some(Region { ptr, len })
    }

    /// The bytes, writable.
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for len bytes of a live buffer that nothing else accesses while
        // this region exists (see the Send impl); &mut self makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Locks a mutex; a panic while holding it leaves counts that the hand-out then reports.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the bytes of one piece go: converted into its region as they arrive; a unit (an
/// element, or a GGML block of up to a few hundred bytes) split between two frames waits in a
/// carry buffer of one unit.
struct Sink<'j> {
    /// The piece's bytes in its object.
    range: Range<u64>,
    job: &'j Job<'j>,
    region: Region,
    /// Output bytes written.
    at: usize,
    /// One unit (`job.fs` bytes), filled across frames.
    carry: Vec<u8>,
    carried: usize,
}

impl<'j> Sink<'j> {
    fn new(range: &Range<u64>, job: &'j Job<'j>, region: Region) -> Sink<'j> {
        Sink {
            range: range.clone(),
            job,
            region,
            at: 0,
            carry: vec![0; job.fs],
            carried: 0,
        }
    }

    /// Converts the next stored bytes of the piece.
    fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let (fs, ts, job) = (self.job.fs, self.job.ts, self.job);
        let dst = self.region.bytes();
        let converted = |src: &[u8], dst: &mut [u8]| {
            convert::convert(src, job.from, dst, job.to).map_err(|e| e.in_tensor(job.tensor))
        };
        if self.carried > 0 {
            let take = (fs - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < fs {
                return Ok(());
            }
            converted(&self.carry[..fs], &mut dst[self.at..self.at + ts])?;
            self.at += ts;
            self.carried = 0;
        }
        let whole = bytes.len() / fs * fs;
        let out = whole / fs * ts;
        if whole > 0 {
            converted(&bytes[..whole], &mut dst[self.at..self.at + out])?;
            self.at += out;
        }
        let left = bytes.len() - whole;
        self.carry[..left].copy_from_slice(&bytes[whole..]);
        self.carried = left;
        Ok(())
    }
}

/// `tensor "name"` of the sink `due` (the last one once all are done), for messages.
fn due_tensor<'s>(sinks: &'s [Sink<'_>], due: usize) -> &'s str {
    sinks
        .get(due)
        .or(sinks.last())
        .map_or("remote", |s| s.job.what.as_str())
}

/// Fetches `range` of `object` and hands each byte to the sink of the piece it belongs to, in
/// order, as frames arrive; bytes between pieces are dropped. Errors name the tensor whose
/// bytes were due.
async fn fetch_request(object: &Object, range: Range<u64>, mut sinks: Vec<Sink<'_>>) -> Result<()> {
    // The sink whose bytes are due.
    let mut due = 0;
    let want = range.end - range.start;
    let mut body = object.body(range.clone(), due_tensor(&sinks, due)).await?;
    let mut got = 0u64;
    while let Some(frame) = body.next().await {
        let frame = frame.map_err(|e| object.broken(due_tensor(&sinks, due), &range, got, e))?;
        // Offset in the object of the frame's first byte.
        let mut pos = range.start + got;
        got += frame.len() as u64;
        if got > want {
            return Err(object.too_long(due_tensor(&sinks, due), &range));
        }
        let mut bytes = &frame[..];
        while let Some(s) = sinks.get_mut(due).filter(|_| !bytes.is_empty()) {
            // Bytes before the piece (a gap) are dropped; then the piece takes what is its.
            let skip = s.range.start.saturating_sub(pos).min(bytes.len() as u64);
            let take = (s.range.end - (pos + skip)).min(bytes.len() as u64 - skip);
            s.write(&bytes[skip as usize..(skip + take) as usize])?;
            bytes = &bytes[(skip + take) as usize..];
            pos += skip + take;
            if pos == s.range.end {
                due += 1;
            }
        }
    }
    if got < want {
        return Err(object.short(due_tensor(&sinks, due), &range, got));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn object(name: &str) -> Arc<Object> {
        Arc::new(Object::new(
            Arc::new(InMemory::new()),
            name.into(),
            format!("memory://{name}"),
            format!("memory://{name}"),
            1 << 30,
            None,
            "30s".into(),
            1,
        ))
    }

    /// A list is cut into pieces in list order: each tensor's parts covered in order by pieces
    /// of whole 4096-element groups (at most `chunk_size`, the last of a part shorter),
    /// writing its output from 0 to its end without gaps; `start` counts the stored bytes before
    /// it. A conversion the kernels lack is refused before any request.
    #[test]
    fn a_list_is_cut_into_pieces_in_order() {
        let object = object("m");
        let part = |range: Range<u64>| Part {
            object: Arc::clone(&object),
            range,
        };
        let list = [
            Fetch {
                name: "a",
                parts: vec![part(1000..1000 + 3 * 65536 + 2)],
                from: Dtype::BF16,
                to: Dtype::F32,
            },
            Fetch {
                name: "b",
                parts: vec![part(64..68), part(8..12), part(200_000..300_001)],
                from: Dtype::U8,
                to: Dtype::U8,
            },
            Fetch {
                name: "c",
                parts: Vec::new(),
                from: Dtype::F16,
                to: Dtype::F32,
            },
        ];
        let (jobs, pieces, _) = plan_list(&list, 65536).unwrap();
        assert_eq!(jobs.len(), 3);
        let mut start = 0;
        let mut seen = 0;
        for (j, (job, fetch)) in jobs.iter().zip(&list).enumerate() {
            assert_eq!(job.start, start, "{}", job.tensor);
            let mine: Vec<&Piece> = pieces[seen..seen + job.pieces].iter().collect();
            assert!(mine.iter().all(|c| c.job == j));
            seen += job.pieces;
            // The pieces, joined, are the parts in order; the outputs follow each other.
            let mut ranges = fetch.parts.iter().map(|p| p.range.clone());
            let mut want = ranges.next();
            let mut at = 0;
            for c in &mine {
                let w = want.clone().unwrap();
                assert_eq!(c.range.start, w.start);
                assert!(c.range.end <= w.end);
                let n = c.range.end - c.range.start;
                assert!(n <= 65536 && (n % (4096 * job.fs as u64) == 0 || c.range.end == w.end));
                assert_eq!(c.at, at);
                assert_eq!(c.len, n as usize / job.fs * job.ts);
                at += c.len;
                want = if c.range.end == w.end {
                    ranges.next()
                } else {
                    Some(c.range.end..w.end)
                };
            }
            assert!(want.is_none(), "{}: parts left", job.tensor);
            assert_eq!(at, job.out_len);
            start += job.len;
        }
        assert_eq!(seen, pieces.len());
        assert_eq!((jobs[0].pieces, jobs[0].out_len), (4, (3 * 65536 + 2) * 2));
        assert_eq!((jobs[1].pieces, jobs[1].out_len), (4, 100_009));
        assert_eq!((jobs[2].pieces, jobs[2].out_len), (0, 0));

        let refused = [Fetch {
            name: "d",
            parts: vec![part(0..16)],
            from: Dtype::F4,
            to: Dtype::F32,
        }];
        let err = plan_list(&refused, 65536).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("tensor \"d\"")),
            "{err:?}"
        );
    }

    /// Pieces that follow each other in the list and in one object share a request up to
    /// `chunk_size` bytes, across tensors and across a gap of at most `MAX_GAP` bytes; another
    /// object, a piece before the request's end, a longer gap, a full request or the first of
    /// a tensor's several pieces start a new one. Every piece is in exactly one request, in order, inside its range.
    #[test]
    fn adjacent_pieces_share_requests() {
        let (a, b) = (object("a"), object("b"));
        let fetch = |name: &'static str, object: &Arc<Object>, range: Range<u64>| Fetch {
            name,
            parts: vec![Part {
                object: Arc::clone(object),
                range,
            }],
            from: Dtype::U8,
            to: Dtype::U8,
        };
        let list = [
            fetch("t0", &a, 0..1000),
            fetch("t1", &a, 1000..3000),
            fetch("t2", &a, 3000 + MAX_GAP..4000 + MAX_GAP), // a gap of MAX_GAP: joins
            fetch("t3", &a, 5001 + 2 * MAX_GAP..6000 + 2 * MAX_GAP), // one byte more: new
            fetch("t4", &b, 6000 + 2 * MAX_GAP..7000 + 2 * MAX_GAP), // another object: new
            fetch("t5", &b, 0..100),                         // before the end: new
            fetch("t6", &b, 100..300_000),                   // two pieces, the first a full request
            fetch("t7", &b, 300_000..300_010),               // joins the second
            Fetch {
                // Two pieces (two parts): its first starts a request, its second joins it.
                parts: vec![
                    Part {
                        object: Arc::clone(&b),
                        range: 300_010..300_020,
                    },
                    Part {
                        object: Arc::clone(&b),
                        range: 300_020..300_030,
                    },
                ],
                ..fetch("t8", &b, 0..0)
            },
            fetch("t9", &b, 300_030..300_040), // one piece: joins
        ];
        let chunk = 4 * MAX_GAP;
        let (_, pieces, requests) = plan_list(&list, chunk).unwrap();
        let tensors = |r: &Request| -> Vec<&str> {
            let mut names: Vec<&str> = pieces[r.pieces.clone()]
                .iter()
                .map(|p| list[p.job].name)
                .collect();
            names.dedup();
            names
        };
        let grouped: Vec<Vec<&str>> = requests.iter().map(tensors).collect();
        assert_eq!(
            grouped,
            [
                vec!["t0", "t1", "t2"],
                vec!["t3"],
                vec!["t4"],
                vec!["t5"],
                vec!["t6"],
                vec!["t6", "t7"],
                vec!["t8", "t9"],
            ]
        );
        let mut next = 0;
        for r in &requests {
            assert_eq!(r.pieces.start, next);
            next = r.pieces.end;
            assert!(r.range.end - r.range.start <= chunk);
            for p in &pieces[r.pieces.clone()] {
                assert!(std::ptr::eq(p.object, r.object));
                assert!(r.range.start <= p.range.start && p.range.end <= r.range.end);
            }
            assert_eq!(r.range.start, pieces[r.pieces.start].range.start);
            assert_eq!(r.range.end, pieces[r.pieces.end - 1].range.end);
        }
        assert_eq!(next, pieces.len());
    }
}
