//! Times stload conversions (and memcpy) on an input file, printing one JSON object per line.
//!
//! Usage: convert_bench FILE FROM TO [REPS [THREADS...]]
//!        convert_bench FILE memcpy [REPS [THREADS...]]
//!        convert_bench FILE memset [REPS [THREADS...]]
//!        convert_bench FILE move IN OUT [REPS [THREADS...]]
//!
//! The file is read into memory first. For each thread count it reports the best and the median
//! of REPS runs into a reused output buffer ("reuse") and into a freshly allocated one ("new", allocation
//! and page faults included), the runs of all cases interleaved; GB/s counts input plus output
//! bytes (memset: bytes written). `move` is the limit of a conversion from IN-byte to OUT-byte
//! elements (4 2 or 2 2): a loop that reads every input byte and writes OUT/IN as many with
//! streaming stores, as the kernels do (prefetch included), but converts nothing.
//! benches/compare.py drives it.

use std::time::Instant;

use stload::__private::buffer::AlignedBuf;
use stload::convert;
use stload::Dtype;

/// Best and median time of one case over the timed rounds.
#[derive(Clone, Copy)]
struct Times {
    best: f64,
    median: f64,
}

/// Times of each (thread count, mode) over `reps` rounds. Every round runs every case once, in
/// turn, after one untimed round: on a shared machine memory bandwidth changes from one second
/// to the next, and interleaving gives each case the same chance of a quiet moment.
fn best_interleaved(
    reps: usize,
    threads: &[usize],
    modes: &[&str],
    mut run: impl FnMut(usize, &str),
) -> Vec<Vec<Times>> {
    let mut all = vec![vec![Vec::new(); modes.len()]; threads.len()];
    for round in 0..=reps {
        for (ti, &t) in threads.iter().enumerate() {
            for (mi, &mode) in modes.iter().enumerate() {
                let start = Instant::now();
                run(t, mode);
                if round > 0 {
                    all[ti][mi].push(start.elapsed().as_secs_f64());
                }
            }
        }
    }
    all.into_iter()
        .map(|per_mode| {
            per_mode
                .into_iter()
                .map(|mut v: Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    Times {
                        best: v.first().copied().unwrap_or(f64::NAN),
                        median: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
                    }
                })
                .collect()
        })
        .collect()
}

/// One JSON line: the best time ("seconds", "gbps") and the median ("median_seconds",
/// "median_gbps").
fn report(kind: &str, from: &str, to: &str, threads: usize, mode: &str, bytes: usize, t: Times) {
    println!(
        "{{\"kind\":\"{kind}\",\"from\":\"{from}\",\"to\":\"{to}\",\"threads\":{threads},\"mode\":\"{mode}\",\
         \"bytes\":{bytes},\"seconds\":{:.6},\"gbps\":{:.3},\"median_seconds\":{:.6},\"median_gbps\":{:.3}}}",
        t.best,
        bytes as f64 / t.best / 1e9,
        t.median,
        bytes as f64 / t.median / 1e9
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

/// The `move` loop: reads all of `src` and writes `dst` (the same length or half of it) without
/// converting, with the kernels' memory access pattern: AVX-512 loads, the input prefetched
/// 4 KiB ahead into L2, 64-byte streaming stores. Plain copies elsewhere.
mod moves {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    /// Writes `dst` from `src` (`src.len()` is `dst.len()` or twice it).
    pub fn run(src: &[u8], dst: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") && (dst.as_ptr() as usize).is_multiple_of(64) {
            let whole = dst.len() / 64 * 64;
            let ratio = src.len() / dst.len().max(1);
            // SAFETY: the CPU has AVX-512F.
            unsafe { avx512(&src[..whole * ratio], &mut dst[..whole]) };
            return fallback(&src[whole * ratio..], &mut dst[whole..]);
        }
        fallback(src, dst);
    }

    fn fallback(src: &[u8], dst: &mut [u8]) {
        let ratio = src.len() / dst.len().max(1);
        for (d, s) in dst.iter_mut().zip(src.chunks_exact(ratio.max(1))) {
            *d = s[0];
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(src: &[u8], dst: &mut [u8]) {
        let ratio = src.len() / dst.len().max(1);
        for (s, d) in src.chunks_exact(64 * ratio).zip(dst.chunks_exact_mut(64)) {
            let ahead = s.as_ptr().wrapping_add(4096);
            // SAFETY: a prefetch never faults; `s` has 64 * ratio readable bytes; `d` has 64
            // writable bytes and is 64-byte aligned (`dst` is, and every step is 64 bytes).
            unsafe {
                std::arch::asm!("prefetcht1 [{}]", in(reg) ahead, options(nostack, readonly));
                let mut v = _mm512_loadu_si512(s.as_ptr().cast());
                if ratio == 2 {
                    std::arch::asm!("prefetcht1 [{}]", in(reg) ahead.wrapping_add(64), options(nostack, readonly));
                    v = _mm512_xor_si512(v, _mm512_loadu_si512(s.as_ptr().add(64).cast()));
                }
                _mm512_stream_si512(d.as_mut_ptr().cast(), v);
            }
        }
        _mm_sfence();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let usage =
        "usage: convert_bench FILE (FROM TO | memcpy | memset | move IN OUT) [REPS [THREADS...]]";
    let file = args.first().ok_or(usage)?;
    let data = std::fs::read(file)?;
    let mut src = AlignedBuf::new_uninit(data.len())?;
    src.as_mut_slice().copy_from_slice(&data);
    drop(data);
    let src = src.as_slice();
    let mode = args.get(1).map(String::as_str);
    let memcpy = mode == Some("memcpy");
    let memset = mode == Some("memset");
    let moving = mode == Some("move");
    let rest = if memcpy || memset {
        &args[2..]
    } else if moving {
        args.get(4..).ok_or(usage)?
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
    if moving {
        let sizes: (usize, usize) = (args[2].parse()?, args[3].parse()?);
        if sizes != (4, 2) && sizes != (2, 2) {
            return Err("move: IN OUT must be 4 2 or 2 2".into());
        }
        let n = src.len() / sizes.0;
        let src = &src[..n * sizes.0];
        let mut dst = AlignedBuf::new_uninit(n * sizes.1)?;
        let best = best_interleaved(reps, &threads, &["reuse"], |t, _| {
            let parts = n.div_ceil(t.max(1)).next_multiple_of(4096);
            std::thread::scope(|s| {
                for (a, b) in src
                    .chunks(parts * sizes.0)
                    .zip(dst.as_mut_slice().chunks_mut(parts * sizes.1))
                {
                    s.spawn(move || moves::run(a, b));
                }
            });
        });
        let (from, to) = (args[2].as_str(), args[3].as_str());
        for (&t, secs) in threads.iter().zip(&best) {
            report(
                "move",
                from,
                to,
                t,
                "reuse",
                n * (sizes.0 + sizes.1),
                secs[0],
            );
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
