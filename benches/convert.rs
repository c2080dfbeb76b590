//! Criterion benchmarks of the main conversion pairs, with memcpy of the same bytes as the
//! baseline. Throughput counts input plus output bytes.
//!
//! `cargo bench --bench convert`; `STLOAD_BENCH_MIB` sets the input size (default 64 MiB).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stload::__private::buffer::AlignedBuf;
use stload::convert;
use stload::Dtype;

const PAIRS: [(Dtype, Dtype); 8] = [
    (Dtype::BF16, Dtype::F32),
    (Dtype::F16, Dtype::F32),
    (Dtype::F32, Dtype::BF16),
    (Dtype::F32, Dtype::F16),
    (Dtype::F8E4M3, Dtype::F32),
    (Dtype::F8E5M2, Dtype::F32),
    (Dtype::F32, Dtype::F8E4M3),
    (Dtype::BF16, Dtype::F16),
];

/// Weight-like F32 values (roughly normal, small), from a fixed-seed generator.
fn weights(n: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(n * 4);
    for _ in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Sum of four uniform bytes: a cheap bell curve around zero.
        let s: i32 = (0..4)
            .map(|k| i32::from((state >> (16 + 8 * k)) as u8))
            .sum::<i32>()
            - 510;
        out.extend_from_slice(&(s as f32 / 2048.0).to_le_bytes());
    }
    out
}

fn input(from: Dtype, mib: usize) -> AlignedBuf {
    let size = from.byte_size().unwrap_or(1);
    let n = (mib << 20) / size;
    let f32s = weights(n);
    let mut buf = AlignedBuf::new_uninit(n * size).expect("allocate input");
    if from == Dtype::F32 {
        buf.as_mut_slice().copy_from_slice(&f32s);
    } else {
        convert::convert_parallel(&f32s, Dtype::F32, buf.as_mut_slice(), from, 2)
            .expect("make input");
    }
    buf
}

fn benches(c: &mut Criterion) {
    let mib: usize = std::env::var("STLOAD_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut group = c.benchmark_group("convert");
    group.sample_size(10);
    {
        let src = input(Dtype::F32, mib);
        let mut dst = AlignedBuf::new_uninit(src.len()).expect("allocate output");
        group.throughput(Throughput::Bytes(2 * src.len() as u64));
        group.bench_function("memcpy", |b| {
            b.iter(|| dst.as_mut_slice().copy_from_slice(src.as_slice()))
        });
    }
    for (from, to) in PAIRS {
        let src = input(from, mib);
        let n = src.len() / from.byte_size().unwrap_or(1);
        let mut dst =
            AlignedBuf::new_uninit(n * to.byte_size().unwrap_or(1)).expect("allocate output");
        group.throughput(Throughput::Bytes((src.len() + dst.len()) as u64));
        for threads in [1, 2] {
            let id = BenchmarkId::new(format!("{from}->{to}"), format!("{threads}t"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    convert::convert_parallel(src.as_slice(), from, dst.as_mut_slice(), to, threads)
                })
            });
        }
        let id = BenchmarkId::new(format!("{from}->{to}"), "new-2t");
        group.bench_function(id, |b| {
            b.iter(|| convert::convert_to_new(src.as_slice(), from, to, 2))
        });
    }
    group.finish();
}

criterion_group!(convert_benches, benches);
criterion_main!(convert_benches);
