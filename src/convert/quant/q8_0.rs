//! ggml's Q8_0 block format: 32 values share one F16 scale `d = max|x| / 127` and are stored
//! as `round(x * (1 / d))` in signed bytes, rounding half away from zero.
//!
//! Computed in f32 step by step as the `gguf` Python package's reference quantiser does, so
//! the bytes are identical to `gguf.quants.quantize(values, Q8_0)`: the scale is divided in
//! f32, its reciprocal taken in f32 (0 when the scale is 0), each value multiplied by it and
//! rounded. Non-finite input follows numpy's results on x86-64: a block holding a NaN gets
//! the canonical NaN scale (F16 0x7e00) and zero bytes (numpy's own scale keeps the payload of
//! a non-canonical NaN at some positions of the block and not at others, as its SIMD max
//! reduction happens to pick; for the canonical NaN every position gives 0x7e00); a block holding an infinity gets an infinite scale and zero bytes
//! (its finite values become `x * 0`); a block whose maximum is so small that the scale is
//! subnormal enough for `1 / d` to overflow also gets zero bytes.

/// Values per block.
pub const BLOCK: usize = 32;
/// Bytes per block: the F16 scale, then 32 signed bytes.
pub const BLOCK_BYTES: usize = 34;

/// Blocks below which quantising stays on the calling thread.
const PARALLEL_MIN_BLOCKS: usize = 1 << 14;

/// numpy's float → int8 cast on x86-64: truncation to a 32-bit integer (NaN and values out of
/// its range give `i32::MIN`), then the low byte.
fn to_i8_like_numpy(q: f32) -> u8 {
    if q.is_nan() || q.abs() >= 2_147_483_648.0 {
        0
    } else {
        (q as i32) as u8
    }
}

/// Quantises one block of 32 values into 34 bytes.
fn quantize_block(x: &[f32], out: &mut [u8]) {
    // numpy's max propagates NaN; its payload is not reproducible (see the module comment),
    // so every NaN block gets the canonical one.
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        if a.is_nan() {
            amax = f32::NAN;
            break;
        }
        if a > amax {
            amax = a;
        }
    }
    let d = amax / 127.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    out[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
    for (o, &v) in out[2..BLOCK_BYTES].iter_mut().zip(x) {
        // f32::round rounds half away from zero, like the reference's floor-based rounding.
        *o = to_i8_like_numpy((v * id).round());
    }
}

/// Quantises `src` (a whole number of blocks) into `dst` (34 bytes per block) on up to
/// `threads` threads. Panics if the lengths do not match: callers size both from one count.
pub fn quantize(src: &[f32], dst: &mut [u8], threads: usize) {
    assert!(
        src.len().is_multiple_of(BLOCK) && dst.len() == src.len() / BLOCK * BLOCK_BYTES,
        "q8_0: {} values into {} bytes",
        src.len(),
        dst.len()
    );
    let blocks = src.len() / BLOCK;
    let run = |s: &[f32], d: &mut [u8]| {
        for (x, out) in s.chunks_exact(BLOCK).zip(d.chunks_exact_mut(BLOCK_BYTES)) {
            quantize_block(x, out);
        }
    };
    if threads <= 1 || blocks < PARALLEL_MIN_BLOCKS {
        return run(src, dst);
    }
    let per = blocks.div_ceil(threads);
    std::thread::scope(|s| {
        let mut parts = src
            .chunks(per * BLOCK)
            .zip(dst.chunks_mut(per * BLOCK_BYTES));
        let first = parts.next();
        for (x, out) in parts {
            s.spawn(move || run(x, out));
        }
        if let Some((x, out)) = first {
            run(x, out);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / BLOCK * BLOCK_BYTES];
        quantize(x, &mut out, 1);
        out
    }

    #[test]
    fn a_block_scales_to_127_and_rounds_half_away() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = -127.0;
        let b = q(&x);
        assert_eq!(half::f16::from_le_bytes([b[0], b[1]]).to_f32(), 1.0);
        assert_eq!(b[2] as i8, 127);
        assert_eq!(b[3] as i8, 3);
        assert_eq!(b[4] as i8, -3);
        assert_eq!(b[5] as i8, -127);
    }

    #[test]
    fn zero_and_non_finite_blocks() {
        assert!(q(&[0.0; 32]).iter().all(|&b| b == 0));
        let mut x = [1.0f32; 32];
        x[7] = f32::NAN;
        let b = q(&x);
        assert!(half::f16::from_le_bytes([b[0], b[1]]).is_nan());
        assert!(b[2..].iter().all(|&v| v == 0));
        x[7] = f32::INFINITY;
        let b = q(&x);
        assert_eq!(half::f16::from_le_bytes([b[0], b[1]]), half::f16::INFINITY);
        assert!(b[2..].iter().all(|&v| v == 0));
    }

    #[test]
    fn threads_give_the_same_bytes() {
        let x: Vec<f32> = (0..PARALLEL_MIN_BLOCKS * 3 * BLOCK)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) as f32).sin())
            .collect();
        let mut one = vec![0u8; x.len() / BLOCK * BLOCK_BYTES];
        let mut four = one.clone();
        quantize(&x, &mut one, 1);
        quantize(&x, &mut four, 4);
        assert_eq!(one, four);
    }
}
