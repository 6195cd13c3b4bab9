//! A HyperLogLog sketch for `dc` across shards: a shard with more than
//! [`crate::distributed::DC_EXACT`] distinct values in a group sends this instead of the values.
//!
//! 2^12 registers of one byte: a relative standard error of 1.04 / √4096 ≈ 1.6 % (Flajolet et
//! al., with linear counting for small cardinalities). The hash is fixed (FNV-1a, then the
//! splitmix64 finaliser), so every node builds the same sketch from the same values.

/// Index bits.
const P: u32 = 12;
/// Registers.
pub(crate) const M: usize = 1 << P;
/// The relative standard error of an estimate, in percent, as the result's message states it.
pub const STANDARD_ERROR_PERCENT: f64 = 1.625;

/// A HyperLogLog sketch of distinct strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hll {
    registers: Vec<u8>,
}

fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

impl Hll {
    /// An empty sketch.
    pub(crate) fn new() -> Hll {
        Hll {
            registers: vec![0; M],
        }
    }

    /// Adds a value.
    pub(crate) fn insert(&mut self, value: &str) {
        let h = hash(value);
        let index = (h >> (64 - P)) as usize;
        let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// Merges another sketch (the union of their values).
    pub(crate) fn merge(&mut self, other: &Hll) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct values.
    pub(crate) fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }

    /// The registers as hex (what travels between nodes).
    pub(crate) fn to_hex(&self) -> String {
        self.registers.iter().map(|r| format!("{r:02x}")).collect()
    }

    /// A sketch from [`Hll::to_hex`]; `None` if it is not one.
    pub(crate) fn from_hex(hex: &str) -> Option<Hll> {
        if hex.len() != 2 * M || !hex.is_ascii() {
            return None;
        }
        let registers = (0..M)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        // A rank is at most 64 - P + 1.
        if registers.iter().any(|r| u32::from(*r) > 65 - P) {
            return None;
        }
        Some(Hll { registers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_within_the_stated_error_and_merge_as_unions() {
        for n in [0u64, 1, 10, 1000, 20_000, 200_000] {
            let mut a = Hll::new();
            let mut b = Hll::new();
            for i in 0..n {
                // Two halves overlapping by a third.
                if i < 2 * n / 3 {
                    a.insert(&format!("v{i}"));
                }
                if i >= n / 3 {
                    b.insert(&format!("v{i}"));
                }
            }
            a.merge(&b);
            let e = a.estimate() as f64;
            let error = (e - n as f64).abs() / (n.max(1) as f64) * 100.0;
            // Three standard errors.
            assert!(
                error <= 3.0 * STANDARD_ERROR_PERCENT,
                "{n}: {e} ({error:.2} %)"
            );
            assert_eq!(Hll::from_hex(&a.to_hex()), Some(a));
        }
        assert_eq!(Hll::from_hex("00"), None);
        assert_eq!(Hll::from_hex(&"ff".repeat(M)), None);
    }
}
