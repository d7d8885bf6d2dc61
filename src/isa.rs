//! Which compilation of a numeric kernel to run.
//!
//! The crate is built for generic x86-64, so hot loops are written once as
//! `#[inline(always)]` code and compiled twice: plainly (`Portable`) and
//! inside `#[target_feature(enable = "avx2")]` functions (`Avx2`), picked at
//! run time. Both give identical results: no FMA contraction and the same
//! summation order, so models and scores do not depend on the machine.

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
