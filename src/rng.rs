//! A small, fast, seedable random number generator shared by every stage that
//! needs randomness (generator, k-means++ seeding, ALS initialisation, sampling).
//!
//! Results must be reproducible for a `seed` across platforms and crate
//! versions, so we own the algorithm (SplitMix64 to expand the seed, then
//! xoshiro256**) instead of depending on a crate whose stream may change.

/// SplitMix64 step: used to turn one 64-bit seed into well-mixed state words,
/// and as a cheap stateless hash (`mix64`) for per-item deterministic streams.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hasher for integer keys, one [`mix64`] per key: the per-event maps of
/// the real-time replay (users, products, categories) are looked up several
/// times per event, where std's SipHash (built to resist chosen keys from a
/// network) costs more than the rest of the lookup. Iteration order is
/// never relied on.
#[derive(Clone, Copy, Debug, Default)]
pub struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix64(self.0 ^ u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix64(self.0 ^ v);
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

/// A `HashMap` keyed by integers through [`MixHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<MixHasher>>;
/// A `HashSet` of integers through [`MixHasher`].
pub type FastSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<MixHasher>>;

/// xoshiro256** generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut s = [0u64; 4];
        for w in s.iter_mut() {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *w = mix64(x);
        }
        Rng { s }
    }

    /// An independent stream for sub-task `stream` of a seeded computation,
    /// e.g. one per user or per parallel block, so results do not depend on
    /// how work is split across threads.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Rng::new(mix64(
            seed ^ mix64(stream.wrapping_add(0xD1B5_4A32_D192_ED03)),
        ))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); `n` must be > 0. Lemire's multiply-shift
    /// (bias below 2^-32 for the sizes used here, which is irrelevant to us).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal sample (Box-Muller; one of the pair is discarded to keep
    /// the generator state simple and the stream position predictable).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let (mut s, mut s2, mut below_max) = (0.0, 0.0, 0u64);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
            below_max = below_max.max(r.below(10));
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert_eq!(below_max, 9);
    }
}
