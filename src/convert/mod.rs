//! Element conversion between dtypes, bit-exact with numpy + `ml_dtypes` `astype`.
//!
//! Supported: every integer, float and FP8 type into F32, F16, BF16 and F64; F32, F16 and BF16
//! into F8_E4M3 and F8_E5M2; and every dtype into itself (a plain copy). Each pair has a scalar
//! reference ([`convert_scalar`]); [`convert`] picks the fastest kernel the CPU supports
//! (AVX-512 with or without AVX512_BF16, or AVX2 + F16C on x86-64; table lookups for 8-bit
//! sources) and [`convert_parallel`]
//! also splits large inputs across threads. Every kernel is a single streaming pass.

pub mod dequant;
mod float;
mod lut;
pub mod quant;
mod scalar;
mod split;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::buffer::AlignedBuf;
use crate::Dtype;

/// Why a conversion could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pair of dtypes has no conversion.
    #[error("no conversion from {from} to {to}")]
    Unsupported {
        /// Source dtype.
        from: Dtype,
        /// Target dtype.
        to: Dtype,
    },
    /// The buffers do not hold the same whole number of elements.
    #[error("{}", length_message(*from, *to, *src_len, *dst_len))]
    Length {
        /// Source dtype.
        from: Dtype,
        /// Target dtype.
        to: Dtype,
        /// Source length in bytes.
        src_len: usize,
        /// Destination length in bytes.
        dst_len: usize,
    },
}

impl Error {
    /// This error as the library's, naming `tensor`.
    pub(crate) fn in_tensor(self, tensor: &str) -> crate::Error {
        crate::Error::Unsupported(format!("tensor \"{tensor}\": {self}"))
    }
}

/// The one mapping of a conversion error into the library's: `STLOAD_ERR_UNSUPPORTED`.
impl From<Error> for crate::Error {
    fn from(e: Error) -> crate::Error {
        crate::Error::Unsupported(e.to_string())
    }
}

fn length_message(from: Dtype, to: Dtype, src_len: usize, dst_len: usize) -> String {
    if let (true, Some((fs, ts))) = (from.is_block() && from != to, units(from, to)) {
        return format!(
            "converting {from} to {to}: source has {src_len} bytes, {}, which need {} \
             destination bytes, but destination has {dst_len}",
            if src_len.is_multiple_of(fs) {
                format!("{} blocks of {fs} bytes", src_len / fs)
            } else {
                format!("not whole blocks of {fs} bytes")
            },
            (src_len / fs).saturating_mul(ts)
        );
    }
    let (Some(fs), Some(ts)) = (from.byte_size(), to.byte_size()) else {
        return format!(
            "converting {from} to {to}: source has {src_len} bytes but destination has {dst_len} \
             (a copy needs equal lengths)"
        );
    };
    if !src_len.is_multiple_of(fs) {
        return format!(
            "converting {from} to {to}: source length {src_len} bytes is not a whole number of \
             {fs}-byte {from} elements"
        );
    }
    let n = src_len / fs;
    format!(
        "converting {from} to {to}: source has {n} elements ({src_len} bytes) which need {} \
         destination bytes, but destination has {dst_len}",
        n.saturating_mul(ts)
    )
}

/// An instruction-set level for the kernels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The scalar reference only ([`convert_scalar`]).
    Scalar,
    /// Portable fast paths (table lookups for 8-bit sources); no CPU-specific instructions.
    Portable,
    /// x86-64 AVX2 + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ + F16C.
    Avx512,
    /// x86-64 [`Isa::Avx512`] plus AVX512_BF16, whose `vcvtne2ps2bf16` narrows F32 into BF16.
    Avx512Bf16,
}

impl Isa {
    /// The highest level this CPU supports.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            x86::detected()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Isa::Portable
        }
    }
}

/// One conversion kernel.
#[derive(Clone, Copy)]
enum Stage {
    Copy,
    Scalar(scalar::KernelFn),
    /// Table lookup for a pair, with permutes from [`Isa::Avx512`] up.
    Lut(&'static lut::Table, (Dtype, Dtype), Isa),
    #[cfg(target_arch = "x86_64")]
    Simd(x86::Simd),
}

impl Stage {
    /// Converts `src` into `dst` (whole, matching elements). `stream` asks for stores that
    /// bypass the cache, worth it when the output is much larger than the caches.
    fn run(self, src: &[u8], dst: &mut [u8], stream: bool) {
        // Only the x86 kernels have streaming stores.
        #[cfg(not(target_arch = "x86_64"))]
        let _ = stream;
        match self {
            Stage::Copy => dst.copy_from_slice(src),
            Stage::Scalar(f) => with_default_fp_env(|| f(src, dst)),
            #[cfg(target_arch = "x86_64")]
            Stage::Lut(t, (from, to), Isa::Avx512 | Isa::Avx512Bf16) => {
                x86::lut_avx512(from, to, t, src, dst, stream)
            }
            Stage::Lut(t, (_, to), _) => match to.byte_size() {
                Some(2) => lut::lookup::<2>(t, src, dst),
                Some(4) => lut::lookup::<4>(t, src, dst),
                _ => lut::lookup::<8>(t, src, dst),
            },
            #[cfg(target_arch = "x86_64")]
            Stage::Simd(k) => with_default_fp_env(|| k.run(src, dst, stream)),
        }
    }
}

/// Elements per round of a two-stage conversion: the F32 intermediate (8 KiB) stays in L1.
const STAGE_ELEMENTS: usize = 2048;

/// A selected kernel for one pair: one stage, or two through F32 where the reference is itself
/// the composition of the two (e.g. integers into BF16 round to F32 first, as ml_dtypes does).
#[derive(Clone, Copy)]
enum Kernel {
    One(Stage),
    /// A block type dequantised to exact F32 in rounds that stay in L1, then `second` (a copy,
    /// or the narrowing into F16 or BF16).
    Dequant {
        kernel: fn(&[u8], &mut [f32]),
        block: (usize, usize),
        second: Stage,
        out_size: usize,
    },
    ViaF32 {
        first: Stage,
        second: Stage,
        sizes: (usize, usize),
    },
}

impl Kernel {
    fn run(self, src: &[u8], dst: &mut [u8], stream: bool) {
        let (first, second, (fs, ts)) = match self {
            Kernel::One(k) => return k.run(src, dst, stream),
            Kernel::Dequant {
                kernel,
                block: (values, bytes),
                second,
                out_size,
            } => {
                let per_round = (STAGE_ELEMENTS / values).max(1);
                let mut tmp = vec![0f32; per_round * values];
                for (s, d) in src
                    .chunks(per_round * bytes)
                    .zip(dst.chunks_mut(per_round * values * out_size))
                {
                    let t = &mut tmp[..s.len() / bytes * values];
                    with_default_fp_env(|| kernel(s, t));
                    second.run(bytemuck::cast_slice(t), d, stream);
                }
                return;
            }
            Kernel::ViaF32 {
                first,
                second,
                sizes,
            } => (first, second, sizes),
        };
        let mut tmp = [0u8; STAGE_ELEMENTS * 4];
        for (s, d) in src
            .chunks(STAGE_ELEMENTS * fs)
            .zip(dst.chunks_mut(STAGE_ELEMENTS * ts))
        {
            let t = &mut tmp[..s.len() / fs * 4];
            first.run(s, t, false);
            second.run(t, d, stream);
        }
    }
}

/// Pairs whose reference conversion is exactly "into F32, then into the target".
fn composes_through_f32(from: Dtype, to: Dtype) -> bool {
    use Dtype::*;
    match to {
        F16 | BF16 => {
            matches!(from, I16 | U16 | I32 | U32 | I64 | U64)
                || (from, to) == (F16, BF16)
                || (from, to) == (F64, BF16)
        }
        F64 => from == BF16,
        _ => false,
    }
}

/// Runs `f` with the FPU in its default mode (round to nearest, no flushing of subnormals):
/// the host may have changed it, and the hardware conversions depend on it.
fn with_default_fp_env<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        x86::with_default_mxcsr(f)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        f()
    }
}

/// The fastest single kernel for a pair at `isa`.
fn stage(from: Dtype, to: Dtype, isa: Isa) -> Option<Stage> {
    if from == to {
        return Some(Stage::Copy);
    }
    let reference = scalar::kernel(from, to)?;
    if isa == Isa::Scalar {
        return Some(Stage::Scalar(reference));
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::kernel(from, to, isa) {
        return Some(Stage::Simd(k));
    }
    if let Some(t) = lut::table(from, to) {
        return Some(Stage::Lut(t, (from, to), isa));
    }
    Some(Stage::Scalar(reference))
}

fn select(from: Dtype, to: Dtype, isa: Isa) -> Option<Kernel> {
    let isa = isa.min(Isa::detected());
    if from.is_block() && DEQUANT_TARGETS.contains(&to) {
        let (values, bytes) = from.block();
        return Some(Kernel::Dequant {
            kernel: dequant::by_dtype(from)?.kernel,
            block: (values as usize, bytes as usize),
            second: stage(Dtype::F32, to, isa)?,
            out_size: to.byte_size()?,
        });
    }
    let direct = stage(from, to, isa)?;
    let simd_target = |k: Stage| !matches!(k, Stage::Scalar(_));
    if isa >= Isa::Avx2 && matches!(direct, Stage::Scalar(_)) && composes_through_f32(from, to) {
        let (first, second) = (stage(from, Dtype::F32, isa)?, stage(Dtype::F32, to, isa)?);
        if simd_target(second) {
            let sizes = (from.byte_size()?, to.byte_size()?);
            return Some(Kernel::ViaF32 {
                first,
                second,
                sizes,
            });
        }
    }
    Some(Kernel::One(direct))
}

/// The dtypes a block type dequantises into: exactly into F32, and from that F32 into F16 and
/// BF16 by the usual rounding.
pub const DEQUANT_TARGETS: [Dtype; 3] = [Dtype::F32, Dtype::F16, Dtype::BF16];

/// Whether [`convert`] supports converting `from` into `to`.
pub fn is_supported(from: Dtype, to: Dtype) -> bool {
    from == to
        || scalar::kernel(from, to).is_some()
        || (DEQUANT_TARGETS.contains(&to) && dequant::by_dtype(from).is_some())
}

/// The bytes of one unit of a supported conversion and of what it becomes: a block and its
/// values for a block type, an element otherwise, one byte for a copy (any dtype, sub-byte and
/// block types too). Buffers converted hold whole units; `None` for an unsupported pair.
pub fn units(from: Dtype, to: Dtype) -> Option<(usize, usize)> {
    if from == to {
        return Some((1, 1));
    }
    if !is_supported(from, to) {
        return None;
    }
    let ts = to.byte_size()?;
    if from.is_block() {
        let (values, bytes) = from.block();
        return Some((bytes as usize, (values as usize).checked_mul(ts)?));
    }
    Some((from.byte_size()?, ts))
}

/// The dtypes a whole model can be loaded or written as ([`whole_model_dtype`]'s targets): the
/// float types the kernels produce. Integers, booleans, C64, F8_E8M0, the FNUZ types, F4 and F6
/// are not produced, so asking for them is refused rather than silently keeping every tensor.
pub const WHOLE_MODEL_TARGETS: [Dtype; 6] = [
    Dtype::F32,
    Dtype::F16,
    Dtype::BF16,
    Dtype::F64,
    Dtype::F8E4M3,
    Dtype::F8E5M2,
];

/// Checks that a whole model can be converted to `target`: `Ok` for the
/// [`WHOLE_MODEL_TARGETS`], else an error naming the accepted dtypes.
pub fn check_whole_model_target(target: Dtype) -> crate::Result<()> {
    if WHOLE_MODEL_TARGETS.contains(&target) {
        return Ok(());
    }
    Err(crate::Error::Unsupported(format!(
        "a whole model cannot be converted to {target}: floats convert to one of {}",
        whole_model_target_names()
    )))
}

/// The [`WHOLE_MODEL_TARGETS`] as text, e.g. `"F32, F16, BF16, ..."`.
pub fn whole_model_target_names() -> String {
    WHOLE_MODEL_TARGETS
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dtype a tensor stored as `stored` takes when a whole model is loaded or written as
/// `target` (`None`: as stored): floating-point tensors convert, and block types dequantise into
/// F32, F16 and BF16; integers, booleans and floats without a conversion (F4, F6) keep their
/// dtype. `target` should be one of the
/// [`WHOLE_MODEL_TARGETS`] ([`check_whole_model_target`]).
pub fn whole_model_dtype(stored: Dtype, target: Option<Dtype>) -> Dtype {
    match target {
        Some(t) if (stored.is_float() || stored.is_block()) && is_supported(stored, t) => t,
        _ => stored,
    }
}

/// Picks the kernel and checks that both buffers hold the same number of whole elements.
fn prepare(src: &[u8], from: Dtype, dst: &[u8], to: Dtype, isa: Isa) -> Result<Kernel, Error> {
    let kernel = select(from, to, isa).ok_or(Error::Unsupported { from, to })?;
    let length = Error::Length {
        from,
        to,
        src_len: src.len(),
        dst_len: dst.len(),
    };
    let ok = match units(from, to) {
        Some((fs, ts)) => {
            src.len().is_multiple_of(fs) && (src.len() / fs).checked_mul(ts) == Some(dst.len())
        }
        None => false,
    };
    if ok {
        Ok(kernel)
    } else {
        Err(length)
    }
}

/// Outputs at least this large use cache-bypassing stores.
const STREAM_MIN_BYTES: usize = 16 << 20;

/// Converts `src` (elements of `from`) into `dst` (elements of `to`) on the calling thread.
///
/// Lengths must match exactly: `src.len() == n * size(from)` and `dst.len() == n * size(to)`
/// (for a copy of a sub-byte dtype, equal lengths).
pub fn convert(src: &[u8], from: Dtype, dst: &mut [u8], to: Dtype) -> Result<(), Error> {
    convert_with(src, from, dst, to, 1, Isa::detected())
}

/// Like [`convert`], but splits large inputs across up to `threads` scoped threads (the calling
/// thread is one of them); small inputs stay on the calling thread.
pub fn convert_parallel(
    src: &[u8],
    from: Dtype,
    dst: &mut [u8],
    to: Dtype,
    threads: usize,
) -> Result<(), Error> {
    convert_with(src, from, dst, to, threads, Isa::detected())
}

/// The scalar reference path, always available; the tests compare every faster path with it.
pub fn convert_scalar(src: &[u8], from: Dtype, dst: &mut [u8], to: Dtype) -> Result<(), Error> {
    convert_with(src, from, dst, to, 1, Isa::Scalar)
}

/// Like [`convert_parallel`], using kernels of at most the given instruction-set level (the
/// level is lowered to what the CPU supports). For tests and benchmarks of each level.
pub fn convert_with(
    src: &[u8],
    from: Dtype,
    dst: &mut [u8],
    to: Dtype,
    threads: usize,
    isa: Isa,
) -> Result<(), Error> {
    let stream = dst.len() >= STREAM_MIN_BYTES;
    run(src, from, dst, to, threads, isa, stream)
}

fn run(
    src: &[u8],
    from: Dtype,
    dst: &mut [u8],
    to: Dtype,
    threads: usize,
    isa: Isa,
    stream: bool,
) -> Result<(), Error> {
    let kernel = prepare(src, from, dst, to, isa)?;
    // Identity copies split on bytes; conversions on whole elements (or blocks).
    let (fs, ts) = units(from, to).unwrap_or((1, 1));
    split::split(src, fs, dst, ts, threads, |s, d| kernel.run(s, d, stream));
    Ok(())
}

/// Converts into a freshly allocated, aligned buffer. The threads that convert are the ones
/// that first touch their part of the new memory, so page faults run in parallel too.
pub fn convert_to_new(
    src: &[u8],
    from: Dtype,
    to: Dtype,
    threads: usize,
) -> Result<AlignedBuf, Error> {
    if !is_supported(from, to) {
        return Err(Error::Unsupported { from, to });
    }
    let len = match units(from, to) {
        Some((fs, ts)) if src.len().is_multiple_of(fs) => (src.len() / fs).checked_mul(ts),
        _ => None,
    };
    let len = len.ok_or(Error::Length {
        from,
        to,
        src_len: src.len(),
        dst_len: 0,
    })?;
    // Allocation failure is reported like a length the system cannot hold.
    let mut buf = AlignedBuf::new_uninit(len).map_err(|_| Error::Length {
        from,
        to,
        src_len: src.len(),
        dst_len: len,
    })?;
    // No streaming stores: a page the kernel has just zeroed is in the cache, and plain stores
    // overwrite it there instead of writing the zeros and the results to memory.
    run(
        src,
        from,
        buf.as_mut_slice(),
        to,
        threads,
        Isa::detected(),
        false,
    )?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_dtypes_and_lengths() {
        let mut dst = [0u8; 4];
        let e = convert(&[0; 4], Dtype::F32, &mut dst, Dtype::Bool).unwrap_err();
        assert_eq!(e.to_string(), "no conversion from F32 to BOOL");
        let e = convert(&[0; 6], Dtype::F32, &mut dst, Dtype::F16).unwrap_err();
        assert!(matches!(e, Error::Length { .. }), "{e}");
        assert!(
            e.to_string().contains("not a whole number of 4-byte F32"),
            "{e}"
        );
        let e = convert(&[0; 4], Dtype::F32, &mut dst[..3], Dtype::F16).unwrap_err();
        assert!(
            e.to_string()
                .contains("2 destination bytes, but destination has 3"),
            "{e}"
        );
    }

    #[test]
    fn identity_copies_every_dtype() {
        for d in Dtype::ALL {
            let src: Vec<u8> = (0..64).collect();
            let mut dst = vec![0u8; 64];
            convert(&src, d, &mut dst, d).unwrap();
            assert_eq!(src, dst, "{d}");
            assert!(is_supported(d, d));
        }
    }

    #[test]
    fn empty_input_converts() {
        convert(&[], Dtype::F32, &mut [], Dtype::BF16).unwrap();
        let b = convert_to_new(&[], Dtype::BF16, Dtype::F32, 2).unwrap();
        assert!(b.is_empty());
    }

    #[test]
    fn to_new_matches_into_buffer() {
        let src: Vec<u8> = (0..4096u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) as u16).to_le_bytes())
            .collect();
        let mut dst = vec![0u8; src.len() * 2];
        convert(&src, Dtype::BF16, &mut dst, Dtype::F32).unwrap();
        let b = convert_to_new(&src, Dtype::BF16, Dtype::F32, 2).unwrap();
        assert_eq!(b.as_slice(), &dst[..]);
    }
}
