//! x86-64 kernels (AVX2 + F16C, AVX-512), chosen at run time.

use super::Isa;
use crate::Dtype;

/// A SIMD kernel: converts whole elements; `stream` selects cache-bypassing stores.
pub(crate) type SimdFn = fn(&[u8], &mut [u8], bool);

/// The highest level this CPU supports.
pub(crate) fn detected() -> Isa {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("f16c")
    {
        Isa::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c") {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

/// The SIMD kernel for a pair at `isa`, if there is one.
pub(crate) fn kernel(_from: Dtype, _to: Dtype, _isa: Isa) -> Option<SimdFn> {
    None
}

/// Runs `f` with MXCSR in its default state (round to nearest, DAZ and FTZ off), restoring
/// the caller's state afterwards.
pub(crate) fn with_default_mxcsr<R>(f: impl FnOnce() -> R) -> R {
    f()
}
