//! Measures how fast stload opens and loads safetensors files, and the physical limits to compare
//! with. Each subcommand prints one JSON object on one line; `benches/load.py` runs every
//! measurement in a fresh process and builds the table of the README's "Load speed" section.
//!
//! ```text
//! load_bench open-list FILE [--reps N]        open + list names, dtypes, shapes (median of N)
//! load_bench json FILE [--reps N]             plain serde_json parse of the header (reference)
//! load_bench get FILE NAME [--batches B] [--calls N]
//!                                             stload_model_get(NATIVE) + stload_tensor_free
//!                                             through the C ABI, ns per call (median of batches)
//! load_bench load FILE --dtype f32|native [--read-mode] [--threads N] [--prefetch]
//!                                             open + Model::load once; wall time and peak RSS
//! load_bench memcpy BYTES [--threads N]       copy into fresh and into reused memory
//! load_bench touch FILE [--threads N] [--willneed]
//!                                             read one byte per page of a fresh mapping
//! load_bench prime BYTES                      write BYTES of fresh memory once (timed), then exit
//! ```
//!
//! `prime` exists for virtual machines whose host backs guest memory lazily and takes back
//! memory the guest freed a few seconds ago: there, the first process to touch a few GiB after
//! a pause pays host faults (measured: 9 s instead of 0.4 s for 4 GiB), whichever library it
//! runs. The bench script primes before every measured load so all of them start equal.
//!
//! Times are wall-clock seconds (`*_s`) or nanoseconds (`*_ns`); `peak_rss` is the process's
//! high-water mark in bytes (VmHWM), so `load` must run in a fresh process to mean anything.

use std::ffi::{c_char, CString};
use std::fs::File;
use std::io::Read;
use std::time::Instant;

use stload::ffi::dtype::stload_dtype;
use stload::ffi::model::{stload_model, stload_model_free, stload_model_get, stload_open_files};
use stload::ffi::stload_status;
use stload::ffi::tensor::{stload_tensor, stload_tensor_free};
use stload::{Dtype, Model, Options};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `STLOAD_DTYPE_NATIVE`: as stored, zero-copy.
const NATIVE: stload_dtype = 0;

fn main() -> Res<()> {
    // `cargo bench`-style runners may pass --bench; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let usage = "usage: load_bench (open-list|json|get|load|load-into|memcpy|touch) ARGS... (see the source)";
    let cmd = args.first().ok_or(usage)?.as_str();
    let rest = &args[1..];
    match cmd {
        "open-list" => open_list(rest),
        "json" => json_parse(rest),
        "get" => get(rest),
        "load" => load(rest),
        "load-into" => load_into(rest),
        "memcpy" => memcpy(rest),
        "touch" => touch(rest),
        "prime" => prime(rest),
        _ => Err(usage.into()),
    }
}

/// The value after `--flag`, parsed, or `default`.
fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Res<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value").into()),
    }
}

fn has(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn positional(args: &[String], i: usize, what: &str) -> Res<String> {
    args.get(i)
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .ok_or_else(|| format!("missing {what}").into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The process's peak resident set in bytes: VmHWM from /proc (Linux), else getrusage.
fn peak_rss() -> u64 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(kib) = line.strip_prefix("VmHWM:") {
                let kib = kib.trim().trim_end_matches("kB").trim();
                if let Ok(k) = kib.parse::<u64>() {
                    return k * 1024;
                }
            }
        }
    }
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    // ru_maxrss is in KiB on Linux (bytes on macOS, where /proc does not exist).
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    usage.ru_maxrss as u64 * scale
}

/// A `/proc/self/status` field in bytes (Linux; 0 elsewhere).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Open + list: every name with its dtype and shape, as an engine does before loading.
fn open_list(args: &[String]) -> Res<()> {
    let file = positional(args, 0, "FILE")?;
    let reps: usize = flag(args, "--reps", 21)?;
    let opts = Options::default();
    let mut times = Vec::with_capacity(reps);
    let mut opens = Vec::with_capacity(reps);
    let mut tensors = 0usize;
    let mut check = 0u64;
    for _ in 0..reps {
        let t = Instant::now();
        let model = Model::open_files(&[&file], &opts)?;
        opens.push(t.elapsed().as_secs_f64());
        for info in model.infos() {
            // Use every field so nothing is optimised away.
            check = check
                .wrapping_add(info.name.len() as u64)
                .wrapping_add(info.dtype.bits() as u64)
                .wrapping_add(info.shape.iter().sum::<u64>());
        }
        tensors = model.len();
        times.push(t.elapsed().as_secs_f64());
        // Freeing the index is not part of listing it.
        drop(model);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{{\"kind\":\"open-list\",\"tensors\":{tensors},\"reps\":{reps},\"median_s\":{:.6},\"min_s\":{best:.6},\"open_median_s\":{:.6},\"check\":{check}}}",
        median(times),
        median(opens)
    );
    Ok(())
}

/// A plain `serde_json::Value` parse of the header bytes (read once), the reference any
/// validating parser is compared against, and stload's own parse + validation of them.
fn json_parse(args: &[String]) -> Res<()> {
    let file = positional(args, 0, "FILE")?;
    let reps: usize = flag(args, "--reps", 21)?;
    let mut f = File::open(&file)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)?;
    let mut json = vec![0u8; usize::try_from(u64::from_le_bytes(len))?];
    f.read_exact(&mut json)?;
    let mut times = Vec::with_capacity(reps);
    let mut keys = 0;
    for _ in 0..reps {
        times.push(time(|| {
            let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
            keys = v.as_object().map_or(0, |o| o.len());
        }));
    }
    let data_len = f.metadata()?.len() - 8 - json.len() as u64;
    let mut ours = Vec::with_capacity(reps);
    for _ in 0..reps {
        ours.push(time(|| {
            let h =
                stload::__private::header::parse("bench", &json, data_len).expect("valid header");
            assert_eq!(h.tensors.len() + usize::from(!h.metadata.is_empty()), keys);
        }));
    }
    println!(
        "{{\"kind\":\"json\",\"keys\":{keys},\"reps\":{reps},\"median_s\":{:.6},\"stload_parse_s\":{:.6}}}",
        median(times),
        median(ours)
    );
    Ok(())
}

/// `stload_model_get(NATIVE)` then `stload_tensor_free`, called as the C functions they are.
fn get(args: &[String]) -> Res<()> {
    let file = CString::new(positional(args, 0, "FILE")?)?;
    let name = CString::new(positional(args, 1, "NAME")?)?;
    let batches: usize = flag(args, "--batches", 31)?;
    let calls: usize = flag(args, "--calls", 20_000)?;
    let paths: [*const c_char; 1] = [file.as_ptr()];
    let mut model: *mut stload_model = std::ptr::null_mut();
    // SAFETY: one valid path string, default options, a writable local for the handle.
    let st = unsafe {
        stload_open_files(
            paths.as_ptr(),
            1,
            std::ptr::null(),
            &mut model,
            std::ptr::null_mut(),
        )
    };
    if st != stload_status::STLOAD_OK {
        return Err(format!("stload_open_files failed: {st:?}").into());
    }
    let once = || {
        let mut t: *mut stload_tensor = std::ptr::null_mut();
        // SAFETY: the live model opened above, a NUL-terminated name, a writable local.
        let st =
            unsafe { stload_model_get(model, name.as_ptr(), NATIVE, &mut t, std::ptr::null_mut()) };
        assert_eq!(st, stload_status::STLOAD_OK, "stload_model_get failed");
        // SAFETY: the tensor just returned, freed once.
        unsafe { stload_tensor_free(std::hint::black_box(t)) };
    };
    // The first get maps the file; that one-time cost is not what is measured here.
    once();
    let per_call: Vec<f64> = (0..batches)
        .map(|_| time(|| (0..calls).for_each(|_| once())) / calls as f64)
        .collect();
    // SAFETY: the model opened above, freed once after its last use.
    unsafe { stload_model_free(model) };
    let best = per_call.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{{\"kind\":\"get\",\"batches\":{batches},\"calls\":{calls},\"median_ns\":{:.1},\"min_ns\":{:.1}}}",
        median(per_call) * 1e9,
        best * 1e9
    );
    Ok(())
}

/// Open + `Model::load` once (run it in a fresh process): wall time split into open, load and
/// (with `--prefetch`, native mmap loads only make views) bringing every page in.
fn load(args: &[String]) -> Res<()> {
    let file = positional(args, 0, "FILE")?;
    let dtype = match flag(args, "--dtype", String::from("native"))?.as_str() {
        "native" => None,
        name => Some(
            Dtype::from_header_name(&name.to_uppercase())
                .ok_or_else(|| format!("unknown dtype {name}"))?,
        ),
    };
    let opts = {
        let mut o = Options::default();
        o.read_mode = has(args, "--read-mode");
        o.threads = flag(args, "--threads", 0)?;
        o
    };
    let t = Instant::now();
    let model = Model::open_files(&[&file], &opts)?;
    let open_s = t.elapsed().as_secs_f64();
    model.load(dtype, |_, _, _| true)?;
    let load_s = t.elapsed().as_secs_f64() - open_s;
    let mut prefetch_s = 0.0;
    if has(args, "--prefetch") {
        let p = Instant::now();
        model.prefetch(None, |_, _| true)?;
        prefetch_s = p.elapsed().as_secs_f64();
    }
    let total_s = t.elapsed().as_secs_f64();
    // Bytes the loaded model now serves, so the output size is known to the caller.
    let mut bytes = 0u64;
    for name in model.names() {
        let info = model.info(name)?;
        let target = match dtype {
            Some(d) if info.dtype.is_float() && stload::convert::is_supported(info.dtype, d) => d,
            _ => info.dtype,
        };
        bytes += target
            .bytes_for(info.shape.iter().product())
            .unwrap_or(info.nbytes);
    }
    println!(
        "{{\"kind\":\"load\",\"tensors\":{},\"bytes\":{bytes},\"threads\":{},\"open_s\":{open_s:.6},\"load_s\":{load_s:.6},\"prefetch_s\":{prefetch_s:.6},\"total_s\":{total_s:.6},\"peak_rss\":{},\"rss_anon\":{},\"rss_file\":{}}}",
        model.len(),
        opts.effective_threads(),
        peak_rss(),
        status_bytes("RssAnon"),
        status_bytes("RssFile")
    );
    Ok(())
}

/// Open + `Model::load_into` of FILE into one 4096-aligned buffer: one the process faults in
/// first (an engine's arena, reused from load to load: `--prefaulted`) or fresh memory.
fn load_into(args: &[String]) -> Res<()> {
    let file = positional(args, 0, "FILE")?;
    let dtype = match flag(args, "--dtype", String::from("native"))?.as_str() {
        "native" => None,
        name => Some(
            Dtype::from_header_name(&name.to_uppercase())
                .ok_or_else(|| format!("unknown dtype {name}"))?,
        ),
    };
    let mut opts = Options::default();
    opts.threads = flag(args, "--threads", 0)?;
    let model = Model::open_files(&[&file], &opts)?;
    let size = model.arena_layout(dtype, 4096)?.size as usize;
    let mut buf = stload::__private::buffer::AlignedBuf::new_uninit(size)?;
    let threads = opts.effective_threads();
    if has(args, "--prefaulted") {
        let per = size.div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for part in buf.as_mut_slice().chunks_mut(per) {
                s.spawn(move || part.fill(0));
            }
        });
    }
    let t = Instant::now();
    model.load_into(dtype, 4096, buf.as_mut_slice(), |_, _, _| true)?;
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"kind\":\"load_into\",\"tensors\":{},\"bytes\":{size},\"threads\":{threads},\"load_s\":{load_s:.6},\"peak_rss\":{}}}",
        model.len(),
        peak_rss()
    );
    Ok(())
}

/// Splits `dst` (and `src`, same length) over `threads` threads and copies.
fn parallel_copy(src: &[u8], dst: &mut [u8], threads: usize) {
    let per = src.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (a, b) in src.chunks(per).zip(dst.chunks_mut(per)) {
            s.spawn(move || b.copy_from_slice(a));
        }
    });
}

/// memcpy of BYTES: into fresh memory (page faults included, 2 MiB aligned and advised to use
/// huge pages, as stload's output buffers are) and into memory already touched.
fn memcpy(args: &[String]) -> Res<()> {
    let bytes: usize = positional(args, 0, "BYTES")?.parse()?;
    let threads: usize = flag(
        args,
        "--threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )?;
    let mut src = stload::__private::buffer::AlignedBuf::new_uninit(bytes)?;
    src.as_mut_slice()
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    let mut dst = stload::__private::buffer::AlignedBuf::new_uninit(bytes)?;
    let fresh_s = time(|| parallel_copy(src.as_slice(), dst.as_mut_slice(), threads));
    let reused_s = (0..3)
        .map(|_| time(|| parallel_copy(src.as_slice(), dst.as_mut_slice(), threads)))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(dst.as_slice()[bytes - 1], (bytes - 1) as u8);
    println!(
        "{{\"kind\":\"memcpy\",\"bytes\":{bytes},\"threads\":{threads},\"fresh_s\":{fresh_s:.6},\"reused_s\":{reused_s:.6}}}"
    );
    Ok(())
}

/// Maps FILE afresh and reads one byte of every 4 KiB page on THREADS threads: the least any
/// load that makes the data resident in this process can take.
fn touch(args: &[String]) -> Res<()> {
    let file = positional(args, 0, "FILE")?;
    let threads: usize = flag(
        args,
        "--threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )?;
    let t = Instant::now();
    let f = File::open(&file)?;
    // SAFETY: a read-only mapping of a file nobody changes during the benchmark.
    let map = unsafe { memmap2::Mmap::map(&f)? };
    if has(args, "--willneed") {
        // What `Model::prefetch` asks first; here to tell its cost apart from the touching.
        map.advise(memmap2::Advice::WillNeed)?;
    }
    let per = map
        .len()
        .div_ceil(threads.max(1))
        .next_multiple_of(4096)
        .max(4096);
    let sum: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = map
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    let mut sum = 0u64;
                    for i in (0..part.len()).step_by(4096) {
                        // Volatile, so the read that faults the page in is not optimised away.
                        // SAFETY: i < part.len().
                        sum += u64::from(unsafe { std::ptr::read_volatile(part.as_ptr().add(i)) });
                    }
                    sum
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{{\"kind\":\"touch\",\"bytes\":{},\"threads\":{threads},\"seconds\":{secs:.6},\"peak_rss\":{},\"check\":{sum}}}",
        map.len(),
        peak_rss()
    );
    Ok(())
}

/// Writes BYTES of fresh memory on all cores and frees it (see the module docs).
fn prime(args: &[String]) -> Res<()> {
    let bytes: usize = positional(args, 0, "BYTES")?.parse()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut buf = stload::__private::buffer::AlignedBuf::new_uninit(bytes)?;
    let secs = time(|| {
        let per = bytes.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for part in buf.as_mut_slice().chunks_mut(per) {
                s.spawn(move || part.fill(1));
            }
        });
    });
    println!("{{\"kind\":\"prime\",\"bytes\":{bytes},\"seconds\":{secs:.6}}}");
    Ok(())
}
