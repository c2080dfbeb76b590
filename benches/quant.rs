//! Single-thread throughput of every quantisation kernel in `gguf::quant::TYPES`, in MB/s of
//! f32 input, next to a memcpy of the same bytes. A measurement, not a test: nothing is
//! asserted. Run with `cargo bench --bench quant` (one pass of 64 MiB per type).

use std::time::Instant;

fn main() {
    let n = 1usize << 24;
    // A fixed, cheap pseudo-random input, roughly the spread of model weights.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let x: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04
        })
        .collect();
    let mb = (n * 4) as f64 / 1e6;
    let mut copy = vec![0f32; n];
    let t = Instant::now();
    copy.copy_from_slice(&x);
    std::hint::black_box(&copy);
    println!(
        "{:<8} {:>8.0} MB/s",
        "memcpy",
        mb / t.elapsed().as_secs_f64()
    );
    for q in stload::gguf::quant::TYPES {
        let mut out = vec![0u8; q.bytes_for(n).unwrap_or(0)];
        let t = Instant::now();
        if let Err(e) = q.quantize(&x, &mut out) {
            println!("{:<8} {e}", q.name);
            continue;
        }
        std::hint::black_box(&out);
        println!("{:<8} {:>8.0} MB/s", q.name, mb / t.elapsed().as_secs_f64());
    }
}
