//! Which compilation of a numeric kernel to run: the crate's one
//! instruction-set dispatch ([`dispatch!`]).
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

/// Runs `body` compiled for the instruction set `isa`: the crate's one
/// dispatch, expanded where a kernel is called. The arguments are declared
/// with their types and values (`name: type = value`) because `body` becomes
/// the body of two functions, a plain one and one compiled with
/// `#[target_feature(enable = "avx2")]`, into which `#[inline(always)]`
/// kernels are inlined and so compiled for that instruction set. Inside
/// `body`, the optional `<K>` names the [`vector::VectorOps`] of the
/// instruction set ([`vector::Portable`] or [`vector::Avx2`]).
///
/// ```ignore
/// dispatch!(isa, <K>(rows: &[f32] = chunk, out: &mut [f32] = &mut partial) {
///     accumulate::<K>(rows, out)
/// });
/// ```
macro_rules! dispatch {
    ($isa:expr, <$k:ident>($($arg:ident: $ty:ty = $value:expr),* $(,)?) -> $ret:ty $body:block) => {{
        fn portable($($arg: $ty),*) -> $ret {
            #[allow(dead_code)]
            type $k = $crate::isa::vector::Portable;
            $body
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn avx2($($arg: $ty),*) -> $ret {
            #[allow(dead_code)]
            type $k = $crate::isa::vector::Avx2;
            $body
        }
        match $isa {
            $crate::isa::Isa::Portable => portable($($value),*),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
            $crate::isa::Isa::Avx2 => unsafe { avx2($($value),*) },
        }
    }};
    ($isa:expr, <$k:ident>($($args:tt)*) $body:block) => {
        $crate::isa::dispatch!($isa, <$k>($($args)*) -> () $body)
    };
    ($isa:expr, ($($args:tt)*) $(-> $ret:ty)? $body:block) => {
        $crate::isa::dispatch!($isa, <ScalarCode>($($args)*) $(-> $ret)? $body)
    };
}
pub(crate) use dispatch;

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
