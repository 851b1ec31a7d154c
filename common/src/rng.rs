//! A tiny seeded PRNG (SplitMix64) so simulated faults are reproducible from `--seed`.
//!
//! For fault schedules only: crash points, jitter, chaos timelines. Never for an identifier
//! whose secrecy or uniqueness matters (request ids, socket identities): a seed from the clock
//! and the pid can be guessed, and SplitMix64's next output follows from its last one. Those come
//! from [`crate::ids`], which reads the operating system's random source.

/// SplitMix64: one `u64` of state, a full-period, well-mixed sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that yields the same sequence for the same seed.
    pub fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the process id and the wall clock, for a fault schedule the user
    /// did not seed (`--random-faults` without `--seed`): different on every run, and that is
    /// all it promises. Guessable, so never for identifiers ([`crate::ids`]).
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` must be positive).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(Rng::seeded(1).below(10) < 10);
    }
}
