//! Which compilation of a numeric kernel to run: the crate's one
//! instruction-set dispatch.
//!
//! The crate is built for generic x86-64, so hot loops are written once as
//! `#[inline(always)]` code and compiled twice: plainly (`Portable`) and
//! inside `#[target_feature(enable = "avx2")]` functions (`Avx2`), picked at
//! run time. Both give identical results: no FMA contraction and the same
//! summation order, so models and scores do not depend on the machine.
//!
//! The one kernel family that may differ in rounding, the half-precision
//! candidate scan of `recommend::topk`, asks [`half_precision_scan`] and is
//! followed by an exact rescoring, so its results do not depend on the
//! machine either. Every CPU feature test of the crate lives here.

pub(crate) mod vector;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// Whether the CPU runs the half-precision scan kernels, which need AVX2,
/// FMA and F16C (the conversions between half and single precision).
#[cfg(target_arch = "x86_64")]
pub(crate) fn half_precision_scan() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}
