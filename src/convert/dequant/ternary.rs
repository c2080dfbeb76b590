//! The ternary types, values -1, 0 and 1 times an F16 scale: TQ1_0 packs five trits in a
//! byte as a fixed-point fraction (1.6 bits a value), TQ2_0 stores two bits a value.

use super::k_quants::two_bits;
use super::{each_block, f16_at, QK_K};

const TQ1_0_BYTES: usize = 54;
const TQ2_0_BYTES: usize = 66;

/// The trit that multiplying by `pow` (a power of three, wrapping in 8 bits) brings to the
/// top of byte `q`.
#[inline(always)]
fn trit(q: u8, pow: u8) -> f32 {
    let top = q.wrapping_mul(pow);
    f32::from(((u16::from(top) * 3) >> 8) as i8 - 1)
}

pub(super) fn tq1_0(src: &[u8], dst: &mut [f32]) {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    each_block::<TQ1_0_BYTES, QK_K>(src, dst, |b, y| {
        let (qs, qh) = (&b[..48], &b[48..52]);
        let d = f16_at(b, 52);
        // 32 bytes of 5 trits give values 0..160, 16 bytes the next 80, the 4 bytes of qh
        // (4 trits each) the last 16; within each run, trit m of byte l is value m*len + l.
        for (m, &p) in POW3.iter().enumerate() {
            for l in 0..32 {
                y[32 * m + l] = d * trit(qs[l], p);
            }
            for l in 0..16 {
                y[160 + 16 * m + l] = d * trit(qs[32 + l], p);
            }
        }
        for (m, &p) in POW3[..4].iter().enumerate() {
            for l in 0..4 {
                y[240 + 4 * m + l] = d * trit(qh[l], p);
            }
        }
    });
}

pub(super) fn tq2_0(src: &[u8], dst: &mut [f32]) {
    each_block::<TQ2_0_BYTES, QK_K>(src, dst, |b, y| {
        let qs = &b[..64];
        let d = f16_at(b, 64);
        for (f, v) in y.iter_mut().enumerate() {
            *v = d * f32::from(two_bits(qs, f) as i8 - 1);
        }
    });
}
