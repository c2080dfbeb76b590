//! Times stload's MLX loading for benches/mlx_load.py, one measurement per process.
//!
//! ```text
//! mlx_load_bench load DIR DTYPE   stload_model_load_mlx(DTYPE): prints seconds and peak RSS
//! mlx_load_bench convert DIR      per tensor to F32: stload kernel into MLX memory vs wrap +
//!                                 MLX astype + eval, and the native wrap alone
//! ```
//! Output is one JSON object on stdout.

use std::time::Instant;

use stload::mlx::MlxArray;
use stload::{Dtype, Model, Options};

fn peak_rss_bytes() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: mlx_load_bench load DIR DTYPE | convert DIR";
    let (mode, dir) = match (args.get(1), args.get(2)) {
        (Some(m), Some(d)) => (m.as_str(), d.as_str()),
        _ => return Err(usage.into()),
    };
    let start = Instant::now();
    let model = Model::open_dir(dir, &Options::default())?;
    match mode {
        "load" => {
            let dtype = args.get(3).and_then(|d| Dtype::from_name(d)).ok_or(usage)?;
            model.load_mlx(Some(dtype), |_, _, _| true)?;
            let seconds = start.elapsed().as_secs_f64();
            let bytes: usize = (0..model.len())
                .filter_map(|i| model.name(i))
                .map(|n| model.get_mlx(n, Some(dtype)).map_or(0, |a| a.nbytes()))
                .sum();
            println!(
                "{{\"seconds\": {seconds:.3}, \"peak_rss\": {}, \"array_bytes\": {bytes}}}",
                peak_rss_bytes()
            );
        }
        "convert" => {
            let threads = model.options().effective_threads();
            let (mut kernel, mut astype, mut wrap, mut wrapped) = (0.0, 0.0, 0.0, 0);
            let names: Vec<String> = model.names().map(str::to_owned).collect();
            for name in &names {
                let t = model.get(name)?;
                t.data().iter().step_by(4096).for_each(|b| {
                    std::hint::black_box(b);
                }); // fault the pages in before timing
                let s = Instant::now();
                let a = MlxArray::convert_from(&t, Dtype::F32, threads, name)?;
                kernel += s.elapsed().as_secs_f64();
                drop(a);
                let s = Instant::now();
                let native = MlxArray::from_tensor(&t, name)?;
                wrap += s.elapsed().as_secs_f64();
                wrapped += usize::from(native.is_wrapped());
                let s = Instant::now();
                let b = native.astype(Dtype::F32, name)?;
                astype += s.elapsed().as_secs_f64();
                drop((native, b));
            }
            println!(
                "{{\"kernel_seconds\": {kernel:.3}, \"wrap_plus_astype_seconds\": {:.3}, \
                 \"wrap_seconds\": {wrap:.3}, \"wrapped\": {wrapped}, \"tensors\": {}, \
                 \"threads\": {threads}}}",
                wrap + astype,
                names.len()
            );
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
