//! The CRC-32 of any stretch of a byte string, without reading the stretch.
//!
//! Why: the recovery scan checks a candidate record at every offset after a bad one, and each
//! candidate claims up to [`MAX_PAYLOAD`](super::MAX_PAYLOAD) bytes. Reading every claim made
//! the scan quadratic: a megabyte of plausible-looking lengths in a 128 MiB journal stalled
//! start-up for more than ten minutes.
//!
//! CRC-32 (IEEE, exactly what `crc32fast` computes) is affine over GF(2). For byte strings `A`
//! and `B`, `crc(A‖B) = shift(crc(A), |B|) ⊕ crc(B)`, where `shift(c, n)` multiplies `c` by
//! x^(8n) modulo the CRC polynomial (in CRC-32's reflected bit order). With prefix checksums
//! `S(i) = crc(data[..i])`, any stretch follows: `crc(data[s..e]) = S(e) ⊕ shift(S(s), e - s)`.
//! [`Prefix`] keeps `S` at every [`EVERY`]th offset and continues from the nearest one with
//! `crc32fast`; [`shift`] costs four table lookups per set bit of `n`.
//!
//! A CRC is not a MAC: a journal forged to have matching checksums at many offsets still costs
//! the scan a decode at each of them. Whoever can write the journal can destroy it anyway.

use crc32fast::Hasher;
use std::ops::Range;
use std::sync::OnceLock;

/// Distance between two kept prefix checksums: any prefix checksum costs at most this many
/// bytes of `crc32fast`, and the marks take 4 bytes per `EVERY` bytes of data.
pub const EVERY: usize = 256;

/// The CRC-32 polynomial, bit-reflected (the lowest-degree term is the top bit).
const POLY: u32 = 0xEDB8_8320;

/// `BYTE[b]`: the register after one zero byte pushes `b` (its low byte) through the polynomial.
const BYTE: [u32; 256] = byte_table();

const fn byte_table() -> [u32; 256] {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let mut c = b as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { POLY ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[b] = c;
        b += 1;
    }
    table
}

/// Multiplication by x^8: one zero byte through the register, without the CRC's pre- and
/// post-inversion (those cancel out of `shift`, which is linear).
fn times_x8(c: u32) -> u32 {
    (c >> 8) ^ BYTE[(c & 0xFF) as usize]
}

/// A GF(2)-linear map on 32-bit values, as one 256-entry table per input byte.
struct Linear([[u32; 256]; 4]);

impl Linear {
    /// Tabulates `f`, which must be linear (`f(a ^ b) == f(a) ^ f(b)`).
    fn from_fn(f: impl Fn(u32) -> u32) -> Self {
        let mut tables = [[0; 256]; 4];
        for (byte, table) in tables.iter_mut().enumerate() {
            for (v, entry) in table.iter_mut().enumerate() {
                *entry = f((v as u32) << (8 * byte));
            }
        }
        Linear(tables)
    }

    fn apply(&self, c: u32) -> u32 {
        let [t0, t1, t2, t3] = &self.0;
        t0[(c & 0xFF) as usize]
            ^ t1[((c >> 8) & 0xFF) as usize]
            ^ t2[((c >> 16) & 0xFF) as usize]
            ^ t3[(c >> 24) as usize]
    }
}

/// `powers()[k]` multiplies by x^(8·2^k). Thirty-two suffice for any length: x^(2^32) = x
/// modulo this polynomial, so the table for `k + 32` is the table for `k` (a test checks it).
fn powers() -> &'static [Linear] {
    static POWERS: OnceLock<Vec<Linear>> = OnceLock::new();
    POWERS.get_or_init(|| {
        let mut powers = vec![Linear::from_fn(times_x8)];
        while powers.len() < 32 {
            let last = powers.last().expect("one table at least");
            let squared = Linear::from_fn(|c| last.apply(last.apply(c)));
            powers.push(squared);
        }
        powers
    })
}

/// `c` multiplied by x^(8n): what the CRC `c` of some `A` contributes to the CRC of `A`
/// followed by `n` more bytes.
pub fn shift(mut c: u32, mut n: u64) -> u32 {
    let powers = powers();
    while n != 0 {
        c = powers[n.trailing_zeros() as usize % 32].apply(c);
        n &= n - 1;
    }
    c
}

/// Prefix checksums of one byte string, computed on demand: the data is read through once,
/// however many stretches are asked for and in whatever order, plus at most [`EVERY`] bytes per
/// question behind the furthest one.
pub struct Prefix<'a> {
    data: &'a [u8],
    /// `marks[j] = crc(data[..j * EVERY])` for every such offset up to `reach`.
    marks: Vec<u32>,
    /// How far the data has been read.
    reach: usize,
    /// `crc(data[..reach])`.
    at_reach: u32,
}

impl<'a> Prefix<'a> {
    /// Nothing is read yet.
    pub fn new(data: &'a [u8]) -> Self {
        Prefix {
            data,
            marks: vec![0],
            reach: 0,
            at_reach: 0,
        }
    }

    /// `crc(data[..end])`. Panics if `end` is past the data.
    pub fn upto(&mut self, end: usize) -> u32 {
        if end >= self.reach {
            self.read_to(end);
            return self.at_reach;
        }
        let mark = end / EVERY;
        let mut hasher = Hasher::new_with_initial(self.marks[mark]);
        hasher.update(&self.data[mark * EVERY..end]);
        hasher.finalize()
    }

    /// `crc(head‖data[range])` from `head_crc = crc(head)`: what a frame's checksum covers is
    /// its length field and then its payload, with the checksum field between them left out.
    /// (`crc(data[range])` is `crc_after(0, range)`: the CRC of nothing is 0.)
    pub fn crc_after(&mut self, head_crc: u32, range: Range<usize>) -> u32 {
        let len = range.len() as u64;
        let start = self.upto(range.start);
        let end = self.upto(range.end);
        shift(head_crc ^ start, len) ^ end
    }

    fn read_to(&mut self, end: usize) {
        while self.reach < end {
            let next_mark = self.marks.len() * EVERY;
            let stop = next_mark.min(end);
            let mut hasher = Hasher::new_with_initial(self.at_reach);
            hasher.update(&self.data[self.reach..stop]);
            self.at_reach = hasher.finalize();
            self.reach = stop;
            if stop == next_mark {
                self.marks.push(self.at_reach);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::rng::Rng;

    fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }

    fn crc_of(parts: &[&[u8]]) -> u32 {
        let mut hasher = Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize()
    }

    #[test]
    fn shift_is_appending_zero_bytes_without_the_inversions() {
        let mut rng = Rng::seeded(1);
        for _ in 0..20 {
            let c = rng.next_u64() as u32;
            let mut slow = c;
            for n in 0..600u64 {
                assert_eq!(shift(c, n), slow, "n = {n}");
                slow = times_x8(slow);
            }
        }
        assert_eq!(shift(0, u64::MAX), 0);
    }

    #[test]
    fn thirty_two_power_tables_cover_every_length() {
        let powers = powers();
        let last = &powers[31];
        let wrapped = Linear::from_fn(|c| last.apply(last.apply(c)));
        assert!(wrapped.0 == powers[0].0, "x^(2^32) is not x");
        let mut rng = Rng::seeded(2);
        for _ in 0..100 {
            let (c, n) = (rng.next_u64() as u32, rng.next_u64() >> 20);
            // Shifting in two steps is shifting by the sum, past 2^32 bytes too.
            let split = rng.below(n + 1);
            assert_eq!(shift(c, n), shift(shift(c, split), n - split));
        }
    }

    #[test]
    fn crc_of_a_concatenation_is_the_first_shifted_plus_the_second() {
        let mut rng = Rng::seeded(3);
        let data = random_bytes(&mut rng, 70_000);
        let lengths = [0, 1, 2, 3, 4, 7, 8, 255, 256, 257, 1000, 65_536, 69_999];
        for &a in &lengths {
            for &b in &lengths {
                let (first, second) = data.split_at(a);
                let second = &second[..b.min(second.len())];
                assert_eq!(
                    shift(crc_of(&[first]), second.len() as u64) ^ crc_of(&[second]),
                    crc_of(&[first, second]),
                    "{a} + {b}"
                );
            }
        }
    }

    #[test]
    fn every_stretch_matches_crc32fast_whatever_the_order_of_questions() {
        let mut rng = Rng::seeded(4);
        let data = random_bytes(&mut rng, 20 * EVERY + 17);
        let n = data.len();
        let mut prefix = Prefix::new(&data);
        let mut ranges = vec![0..0, 0..n, n..n, EVERY..2 * EVERY, EVERY - 1..EVERY + 1];
        for _ in 0..2000 {
            let a = rng.below(n as u64 + 1) as usize;
            let b = rng.below(n as u64 + 1) as usize;
            ranges.push(a.min(b)..a.max(b));
        }
        // Short stretches right at the frontier of what has been read, as the scan asks.
        for start in (0..n - 20).step_by(97) {
            ranges.push(start..start + rng.below(20) as usize);
        }
        for range in ranges {
            let head = random_bytes(&mut rng, 4);
            assert_eq!(
                prefix.crc_after(0, range.clone()),
                crc_of(&[&data[range.clone()]])
            );
            assert_eq!(
                prefix.crc_after(crc_of(&[&head]), range.clone()),
                crc_of(&[&head, &data[range.clone()]]),
                "{range:?}"
            );
        }
        // A fresh prefix asked from the far end first: the data is read once, in order.
        let mut fresh = Prefix::new(&data);
        assert_eq!(fresh.upto(n), crc_of(&[&data]));
        assert_eq!(fresh.upto(3), crc_of(&[&data[..3]]));
    }

    #[test]
    fn a_max_payload_stretch_matches_crc32fast() {
        let len = super::super::MAX_PAYLOAD;
        // A random megabyte, tiled at a different rotation each time (cheap in a debug build).
        let mut rng = Rng::seeded(5);
        let block = random_bytes(&mut rng, 2 << 20);
        let mut data = Vec::with_capacity(len + (1 << 20));
        for k in 0.. {
            if data.len() >= len + 4 * EVERY + 5 {
                break;
            }
            let rotation = k * 7919 % (1 << 20);
            data.extend_from_slice(&block[rotation..rotation + (1 << 20)]);
        }
        let head = [1, 0, 0, 4];
        let mut prefix = Prefix::new(&data);
        for start in [0, 5, EVERY, 3 * EVERY + 1] {
            let range = start..start + len;
            assert_eq!(
                prefix.crc_after(crc_of(&[&head]), range.clone()),
                crc_of(&[&head, &data[range]]),
                "at {start}"
            );
        }
    }
}
