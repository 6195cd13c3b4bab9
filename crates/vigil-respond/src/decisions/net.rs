//! Networks: what a ban covers.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::DecisionError;

/// A network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Net {
    /// First address.
    pub addr: IpAddr,
    /// Prefix length.
    pub bits: u8,
}

impl Net {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
    pub fn parse(text: &str) -> Result<Net, DecisionError> {
        let (a, b) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let wrong = |reason| DecisionError::NotANetwork {
            text: text.to_owned(),
            reason,
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| wrong("not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match b {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| {
                    wrong(if max == 32 {
                        "prefix must be 0..=32"
                    } else {
                        "prefix must be 0..=128"
                    })
                })?,
            None => max,
        };
        Ok(Net::new(addr, bits))
    }

    /// The network of `addr` with `bits` leading bits kept.
    pub fn new(addr: IpAddr, bits: u8) -> Net {
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits.min(32))
                };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits.min(128))
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Net { addr, bits }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip, self.addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Net::new(ip, self.bits).addr == self.addr
            }
            _ => false,
        }
    }

    /// Whether this is one address.
    pub fn is_single(&self) -> bool {
        self.bits == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// `1.2.3.4` for one address, `2001:db8::/64` for a range.
    pub fn text(&self) -> String {
        if self.is_single() {
            self.addr.to_string()
        } else {
            format!("{}/{}", self.addr, self.bits)
        }
    }
}
