//! Times stload conversions (and memcpy) on an input file, printing one JSON object per line.
//!
//! Usage: convert_bench FILE FROM TO [REPS [THREADS...]]
//!        convert_bench FILE memcpy [REPS [THREADS...]]
//!        convert_bench FILE memset [REPS [THREADS...]]
//!
//! The file is read into memory first. For each thread count it reports the best of REPS runs
//! into a reused output buffer ("reuse") and into a freshly allocated one ("new", allocation
//! and page faults included), the runs of all cases interleaved; GB/s counts input plus output
//! bytes (memset: bytes written). benches/compare.py drives it.

use std::time::Instant;

use stload::__private::buffer::AlignedBuf;
use stload::convert;
use stload::Dtype;

/// Best time of each (thread count, mode) over `reps` rounds. Every round runs every case once,
/// in turn, after one untimed round: on a shared machine memory bandwidth changes from one
/// second to the next, and interleaving gives each case the same chance of a quiet moment.
fn best_interleaved(
    reps: usize,
    threads: &[usize],
    modes: &[&str],
    mut run: impl FnMut(usize, &str),
) -> Vec<Vec<f64>> {
    let mut best = vec![vec![f64::INFINITY; modes.len()]; threads.len()];
    for round in 0..=reps {
        for (ti, &t) in threads.iter().enumerate() {
            for (mi, &mode) in modes.iter().enumerate() {
                let start = Instant::now();
                run(t, mode);
                if round > 0 {
                    best[ti][mi] = best[ti][mi].min(start.elapsed().as_secs_f64());
                }
            }
        }
    }
    best
}

fn report(kind: &str, from: &str, to: &str, threads: usize, mode: &str, bytes: usize, secs: f64) {
    println!(
        "{{\"kind\":\"{kind}\",\"from\":\"{from}\",\"to\":\"{to}\",\"threads\":{threads},\"mode\":\"{mode}\",\
         \"bytes\":{bytes},\"seconds\":{secs:.6},\"gbps\":{:.3}}}",
        bytes as f64 / secs / 1e9
    );
}

/// Fills `dst` on `threads` threads (memset per part): the write bandwidth alone.
fn parallel_fill(dst: &mut [u8], threads: usize) {
    let per = dst.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for part in dst.chunks_mut(per) {
            s.spawn(move || part.fill(0x3c));
        }
    });
}

/// Copies `src` into `dst` on `threads` threads (memcpy per part).
fn parallel_copy(src: &[u8], dst: &mut [u8], threads: usize) {
    let per = src.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (a, b) in src.chunks(per).zip(dst.chunks_mut(per)) {
            s.spawn(move || b.copy_from_slice(a));
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let usage = "usage: convert_bench FILE (FROM TO | memcpy | memset) [REPS [THREADS...]]";
    let file = args.first().ok_or(usage)?;
    let data = std::fs::read(file)?;
    let mut src = AlignedBuf::new_uninit(data.len())?;
    src.as_mut_slice().copy_from_slice(&data);
    drop(data);
    let src = src.as_slice();
    let mode = args.get(1).map(String::as_str);
    let memcpy = mode == Some("memcpy");
    let memset = mode == Some("memset");
    let rest = if memcpy || memset {
        &args[2..]
    } else {
        args.get(3..).ok_or(usage)?
    };
    let reps: usize = rest.first().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let threads: Vec<usize> = match rest.get(1..) {
        Some(t) if !t.is_empty() => t.iter().map(|t| t.parse()).collect::<Result<_, _>>()?,
        _ => vec![1, 2],
    };
    if memset {
        // GB/s here counts the bytes written: conversions that widen are bound by this.
        let mut dst = AlignedBuf::new_uninit(src.len())?;
        let best = best_interleaved(reps, &threads, &["reuse"], |t, _| {
            parallel_fill(dst.as_mut_slice(), t)
        });
        for (&t, secs) in threads.iter().zip(&best) {
            report("memset", "", "", t, "reuse", src.len(), secs[0]);
        }
        return Ok(());
    }
    if memcpy {
        let mut dst = AlignedBuf::new_uninit(src.len())?;
        // "new": a copy into new memory, allocated and faulted exactly as conversions do it,
        // the least any conversion into new memory can take.
        let modes = ["reuse", "new"];
        let best = best_interleaved(reps, &threads, &modes, |t, mode| match mode {
            "reuse" => parallel_copy(src, dst.as_mut_slice(), t),
            _ => drop(convert::convert_to_new(src, Dtype::U8, Dtype::U8, t).expect("identity")),
        });
        for (&t, secs) in threads.iter().zip(&best) {
            for (mode, &secs) in modes.iter().zip(secs) {
                report("memcpy", "", "", t, mode, 2 * src.len(), secs);
            }
        }
        return Ok(());
    }
    let from = Dtype::from_name(&args[1]).ok_or("unknown FROM dtype")?;
    let to = Dtype::from_name(&args[2]).ok_or("unknown TO dtype")?;
    let (fs, ts) = (
        from.byte_size().ok_or("sub-byte FROM")?,
        to.byte_size().ok_or("sub-byte TO")?,
    );
    let n = src.len() / fs;
    let src = &src[..n * fs];
    let bytes = n * (fs + ts);
    let mut dst = AlignedBuf::new_uninit(n * ts)?;
    let mut result: Result<(), String> = Ok(());
    let modes = ["reuse", "new"];
    let best = best_interleaved(reps, &threads, &modes, |t, mode| {
        let done = match mode {
            "reuse" => convert::convert_parallel(src, from, dst.as_mut_slice(), to, t),
            _ => convert::convert_to_new(src, from, to, t).map(drop),
        };
        if let Err(e) = done {
            result = Err(e.to_string());
        }
    });
    result?;
    for (&t, secs) in threads.iter().zip(&best) {
        for (mode, &secs) in modes.iter().zip(secs) {
            report("stload", from.name(), to.name(), t, mode, bytes, secs);
        }
    }
    Ok(())
}
