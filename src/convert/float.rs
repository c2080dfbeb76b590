//! Bit-level conversions of single elements, with the rounding and NaN rules of numpy and
//! `ml_dtypes` (the oracle the tests compare against).
//!
//! NaN rules, as the oracle produces them (checked by the exhaustive tests):
//! - numpy's own casts among F16, F32 and F64 keep the sign and the top payload bits; F32 and F64
//!   sources and targets go through the FPU, which sets the quiet bit, while F16 sources and
//!   targets use numpy's software routines, which do not (a payload that would become zero is
//!   made 1 so the value stays a NaN).
//! - `ml_dtypes` keeps BF16 → F32 bit-exact, and produces the canonical quiet NaN (keeping only
//!   the sign) everywhere else: into BF16 and the FP8 types, and from BF16 into F16.
//! - FP8 NaNs decode to the canonical quiet NaN with their sign bit (the FNUZ NaN `0x80` has the
//!   sign bit set, so it becomes a negative NaN).

/// A binary floating-point format narrower than F64, described by its bit fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloatLayout {
    /// Explicit mantissa bits.
    pub man: u32,
    /// Exponent bits.
    pub exp: u32,
    /// Exponent bias.
    pub bias: i32,
    /// Whether the all-ones exponent with a zero mantissa is infinity. Without infinities
    /// (E4M3FN) the all-ones code is the only NaN and overflow becomes NaN, as in `ml_dtypes`.
    pub inf: bool,
    /// The canonical quiet NaN, without the sign.
    pub nan: u32,
}

impl FloatLayout {
    const fn sign_bit(&self) -> u32 {
        1 << (self.exp + self.man)
    }

    pub(crate) const fn inf_bits(&self) -> u32 {
        ((1 << self.exp) - 1) << self.man
    }

    /// Largest finite magnitude, as an encoding.
    const fn max_finite(&self) -> u64 {
        if self.inf {
            self.inf_bits() as u64 - 1
        } else {
            self.nan as u64 - 1
        }
    }
}

/// IEEE half precision.
pub(crate) const F16: FloatLayout = FloatLayout {
    man: 10,
    exp: 5,
    bias: 15,
    inf: true,
    nan: 0x7e00,
};
/// bfloat16 (the kernels round to it with integer arithmetic; tests cross-check with this).
#[cfg(test)]
pub(crate) const BF16: FloatLayout = FloatLayout {
    man: 7,
    exp: 8,
    bias: 127,
    inf: true,
    nan: 0x7fc0,
};
/// FP8 E4M3FN: no infinities, `0x7f`/`0xff` are NaN.
pub(crate) const E4M3: FloatLayout = FloatLayout {
    man: 3,
    exp: 4,
    bias: 7,
    inf: false,
    nan: 0x7f,
};
/// FP8 E5M2: IEEE-like.
pub(crate) const E5M2: FloatLayout = FloatLayout {
    man: 2,
    exp: 5,
    bias: 15,
    inf: true,
    nan: 0x7e,
};

const F64_SIGN: u64 = 1 << 63;
const F64_MAN: u64 = (1 << 52) - 1;

/// `sig >> shift` rounded to nearest, ties to even (`shift` in 1..=63).
fn shift_rne(sig: u64, shift: u32) -> u64 {
    let q = sig >> shift;
    let rem = sig & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// Rounds a non-NaN F64 (given as bits) to `f`: round to nearest even, subnormals kept,
/// overflow to infinity (or to NaN for formats without infinity, as `ml_dtypes` does).
pub(crate) fn round_f64(f: &FloatLayout, x: u64) -> u32 {
    let sign = if x & F64_SIGN != 0 { f.sign_bit() } else { 0 };
    let abs = x & !F64_SIGN;
    let biased = (abs >> 52) as i32;
    if biased == 0x7ff {
        // Infinity (the caller handles NaN).
        return sign | if f.inf { f.inf_bits() } else { f.nan };
    }
    if abs == 0 {
        return sign;
    }
    // value = sig * 2^e2, with the leading one of sig at bit `top`.
    let (sig, e2) = if biased == 0 {
        (abs, -1074)
    } else {
        ((abs & F64_MAN) | (1 << 52), biased - 1075)
    };
    let top = 63 - sig.leading_zeros() as i32;
    let lead = top + e2;
    let emin = 1 - f.bias;
    // Exponent of the target's last mantissa bit at this magnitude (fixed for subnormals).
    let scale = lead.max(emin);
    let quantum = scale - f.man as i32;
    // Always positive: every target has fewer mantissa bits and a narrower range than F64.
    let shift = (quantum - e2) as u32;
    let n = if shift >= 64 {
        0
    } else {
        shift_rne(sig, shift)
    };
    // A carry out of the mantissa moves into the exponent field, which is what IEEE wants.
    let enc = (((scale - emin) as u64) << f.man) + n;
    if enc > f.max_finite() {
        return sign | if f.inf { f.inf_bits() } else { f.nan };
    }
    sign | enc as u32
}

/// F16 → F32, exact; NaN keeps sign and payload without setting the quiet bit (numpy).
pub(crate) fn f16_to_f32(h: u16) -> u32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from(h >> 10) & 0x1f;
    let man = u32::from(h & 0x3ff);
    match exp {
        0 if man == 0 => sign,
        0 => {
            // Subnormal man * 2^-24: normalise so the leading one becomes the implicit bit.
            let top = 31 - man.leading_zeros();
            sign | ((top + 103) << 23) | ((man << (23 - top)) & 0x7f_ffff)
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    }
}

/// F16 → F64, exact; NaN keeps sign and payload without setting the quiet bit (numpy).
pub(crate) fn f16_to_f64(h: u16) -> u64 {
    if h & 0x7c00 == 0x7c00 && h & 0x3ff != 0 {
        return (u64::from(h & 0x8000) << 48)
            | 0x7ff0_0000_0000_0000
            | (u64::from(h & 0x3ff) << 42);
    }
    f64::from(f32::from_bits(f16_to_f32(h))).to_bits()
}

/// Whether F32 bits are a NaN.
pub(crate) fn f32_is_nan(x: u32) -> bool {
    x & 0x7fff_ffff > 0x7f80_0000
}

/// F32 → F64, exact; NaN gets the quiet bit and keeps its payload (as the FPU does).
pub(crate) fn f32_to_f64(x: u32) -> u64 {
    if f32_is_nan(x) {
        return (u64::from(x & 0x8000_0000) << 32)
            | 0x7ff8_0000_0000_0000
            | (u64::from(x & 0x7f_ffff) << 29);
    }
    f64::from(f32::from_bits(x)).to_bits()
}

/// F64 → F32, round to nearest even; NaN gets the quiet bit and keeps its top payload bits.
pub(crate) fn f64_to_f32(x: u64) -> u32 {
    let v = f64::from_bits(x);
    if v.is_nan() {
        return ((x >> 32) as u32 & 0x8000_0000) | 0x7fc0_0000 | ((x & F64_MAN) >> 29) as u32;
    }
    // Rust defines float narrowing `as` as round to nearest, ties to even.
    (v as f32).to_bits()
}

/// numpy's NaN into F16: sign, infinity exponent, top payload bits, never a zero payload.
fn f16_nan(sign: u16, payload: u16) -> u16 {
    sign | 0x7c00 | payload.max(1)
}

/// F32 → F16, round to nearest even; NaN as numpy's software cast does it.
pub(crate) fn f32_to_f16(x: u32) -> u16 {
    if f32_is_nan(x) {
        return f16_nan((x >> 16) as u16 & 0x8000, ((x >> 13) & 0x3ff) as u16);
    }
    round_f64(&F16, f32_to_f64(x)) as u16
}

/// F64 → F16, rounded once (numpy does not go through F32); NaN as numpy does it.
pub(crate) fn f64_to_f16(x: u64) -> u16 {
    if f64::from_bits(x).is_nan() {
        return f16_nan((x >> 48) as u16 & 0x8000, ((x >> 42) & 0x3ff) as u16);
    }
    round_f64(&F16, x) as u16
}

/// F32 → BF16, round to nearest even; every NaN becomes the canonical one (`ml_dtypes`).
pub(crate) fn f32_to_bf16(x: u32) -> u16 {
    if f32_is_nan(x) {
        return (x >> 16) as u16 & 0x8000 | 0x7fc0;
    }
    // Adding just under half an ulp, plus the kept lsb, rounds ties to even; a carry into the
    // exponent (and up to infinity) is the correct result.
    ((x + 0x7fff + ((x >> 16) & 1)) >> 16) as u16
}

/// BF16 → F16 (`ml_dtypes`): one rounding, canonical NaN.
pub(crate) fn bf16_to_f16(b: u16) -> u16 {
    let x = u32::from(b) << 16;
    if f32_is_nan(x) {
        return b & 0x8000 | 0x7e00;
    }
    f32_to_f16(x)
}

/// F32 → an FP8 format (`ml_dtypes`): round to nearest even, canonical NaN with its sign,
/// overflow to infinity or (E4M3FN) to NaN.
pub(crate) fn f32_to_f8(f: &FloatLayout, x: u32) -> u8 {
    if f32_is_nan(x) {
        return ((x >> 24) as u8 & 0x80) | f.nan as u8;
    }
    round_f64(f, f32_to_f64(x)) as u8
}

/// The FP8 flavours that decode to F32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum F8 {
    E4M3,
    E5M2,
    E8M0,
    E4M3Fnuz,
    E5M2Fnuz,
}

const F32_QNAN: u32 = 0x7fc0_0000;

/// Bits of `man * 2^exp2` as F32, for a 3-bit or smaller mantissa (exact for every FP8 value).
fn small_to_f32(man: u32, exp2: i32) -> u32 {
    if man == 0 {
        return 0;
    }
    let top = 31 - man.leading_zeros();
    let e = exp2 + top as i32 + 127;
    if e <= 0 {
        // Only E8M0's 2^-127 lands below the F32 normal range; it is exact as a subnormal.
        return (man << (22 - top)) >> (-e) as u32;
    }
    ((e as u32) << 23) | ((man << (23 - top)) & 0x7f_ffff)
}

/// Decodes an IEEE-style FP8 byte with `m` mantissa bits and `bias` into F32 bits.
fn ieee_f8_to_f32(b: u8, m: u32, bias: i32) -> u32 {
    let sign = u32::from(b & 0x80) << 24;
    let b = u32::from(b & 0x7f);
    let exp = (b >> m) as i32;
    let man = b & ((1 << m) - 1);
    let bits = if exp == 0 {
        small_to_f32(man, 1 - bias - m as i32)
    } else {
        small_to_f32(man | (1 << m), exp - bias - m as i32)
    };
    sign | bits
}

/// FP8 → F32, exact; NaNs become the canonical quiet NaN with the byte's sign (`ml_dtypes`).
pub(crate) fn f8_to_f32(kind: F8, b: u8) -> u32 {
    let sign = u32::from(b & 0x80) << 24;
    match kind {
        F8::E4M3 if b & 0x7f == 0x7f => sign | F32_QNAN,
        F8::E4M3 => ieee_f8_to_f32(b, 3, 7),
        F8::E5M2 if b & 0x7c == 0x7c => sign | if b & 3 == 0 { 0x7f80_0000 } else { F32_QNAN },
        F8::E5M2 => ieee_f8_to_f32(b, 2, 15),
        F8::E4M3Fnuz | F8::E5M2Fnuz if b == 0x80 => sign | F32_QNAN,
        F8::E4M3Fnuz => ieee_f8_to_f32(b, 3, 8),
        F8::E5M2Fnuz => ieee_f8_to_f32(b, 2, 16),
        // E8M0 is unsigned: the byte is a biased power of two.
        F8::E8M0 if b == 0xff => F32_QNAN,
        F8::E8M0 => small_to_f32(1, i32::from(b) - 127),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_matches_half_for_every_non_nan() {
        for h in 0..=u16::MAX {
            let v = half::f16::from_bits(h);
            if v.is_nan() {
                continue;
            }
            assert_eq!(f16_to_f32(h), v.to_f32().to_bits(), "{h:#06x}");
            assert_eq!(f16_to_f64(h), v.to_f64().to_bits(), "{h:#06x}");
        }
    }

    #[test]
    fn f32_narrowing_matches_half_on_a_sweep() {
        // half's F32 → F16/BF16 is round to nearest even; only the NaN rules differ.
        let mut x: u32 = 0;
        loop {
            if !f32_is_nan(x) {
                assert_eq!(
                    f32_to_f16(x),
                    half::f16::from_f32(f32::from_bits(x)).to_bits(),
                    "{x:#010x}"
                );
                assert_eq!(
                    f32_to_bf16(x),
                    half::bf16::from_f32(f32::from_bits(x)).to_bits(),
                    "{x:#010x}"
                );
                assert_eq!(
                    u32::from(f32_to_bf16(x)),
                    round_f64(&BF16, f32_to_f64(x)),
                    "{x:#010x}"
                );
            }
            match x.checked_add(0x0001_0ffd) {
                Some(n) => x = n,
                None => break,
            }
        }
    }

    #[test]
    fn nan_rules() {
        assert_eq!(f32_to_f16(0x7f80_0001), 0x7c01);
        assert_eq!(f32_to_f16(0xffc0_0001), 0xfe00);
        assert_eq!(f64_to_f16(0x7ff0_0400_0000_0000), 0x7c01);
        assert_eq!(f16_to_f32(0x7c01), 0x7f80_2000);
        assert_eq!(f32_to_f64(0x7f80_0001), 0x7ff8_0000_2000_0000);
        assert_eq!(f64_to_f32(0xfff7_ffff_ffff_ffff), 0xffff_ffff);
        assert_eq!(f32_to_bf16(0xff80_0001), 0xffc0);
        assert_eq!(bf16_to_f16(0x7f81), 0x7e00);
        assert_eq!(f32_to_f8(&E4M3, 0x7f80_0000), 0x7f);
        assert_eq!(f32_to_f8(&E5M2, 0xffc0_0000), 0xfe);
    }

    #[test]
    fn fp8_edges() {
        // E4M3FN: 464 ties to the even 448, anything above becomes NaN.
        assert_eq!(f32_to_f8(&E4M3, 464f32.to_bits()), 0x7e);
        assert_eq!(f32_to_f8(&E4M3, 465f32.to_bits()), 0x7f);
        assert_eq!(f32_to_f8(&E5M2, 61440f32.to_bits()), 0x7c);
        assert_eq!(f32_to_f8(&E5M2, 61439f32.to_bits()), 0x7b);
        assert_eq!(f8_to_f32(F8::E4M3, 0x7e), 448f32.to_bits());
        assert_eq!(f8_to_f32(F8::E4M3, 0x01), (2f32.powi(-9)).to_bits());
        assert_eq!(f8_to_f32(F8::E5M2, 0x7c), f32::INFINITY.to_bits());
        assert_eq!(f8_to_f32(F8::E4M3Fnuz, 0x80), 0xffc0_0000);
        assert_eq!(f8_to_f32(F8::E4M3Fnuz, 0x7f), 240f32.to_bits());
        assert_eq!(f8_to_f32(F8::E8M0, 0), 0x0040_0000);
        assert_eq!(f8_to_f32(F8::E8M0, 127), 1f32.to_bits());
        assert_eq!(f8_to_f32(F8::E8M0, 0xff), 0x7fc0_0000);
    }

    #[test]
    fn f64_to_f16_rounds_once() {
        let above_tie = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(f64_to_f16(above_tie.to_bits()), 0x3c01);
        assert_eq!(f64_to_f16((1.0 + 2f64.powi(-11)).to_bits()), 0x3c00);
        assert_eq!(f64_to_f16(65520f64.to_bits()), 0x7c00);
        assert_eq!(f64_to_f16(2f64.powi(-25).to_bits()), 0);
        assert_eq!(f64_to_f16((2f64.powi(-25) * 1.5).to_bits()), 1);
    }
}
