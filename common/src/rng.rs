//! A tiny seeded PRNG (SplitMix64) so simulated faults are reproducible from `--seed`.
//!
//! Good enough for picking crash points and jitter; not for anything cryptographic.

/// SplitMix64: one `u64` of state, a full-period, well-mixed sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that yields the same sequence for the same seed.
    pub fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the process id and the wall clock.
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

    /// A random identity of printable characters, like the Guide's `s_set_id` ("XXXX-XXXX").
    pub fn identity(&mut self) -> String {
        let v = self.next_u64();
        format!("{:04X}-{:04X}", v & 0xFFFF, (v >> 16) & 0xFFFF)
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

    #[test]
    fn identity_is_printable_and_nine_chars() {
        let id = Rng::seeded(3).identity();
        assert_eq!(id.len(), 9);
        assert!(id.bytes().all(|b| b.is_ascii_graphic()));
    }
}
