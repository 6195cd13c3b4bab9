//! A per-address rate limit for the witness endpoint, which takes no token: a token bucket per
//! address (IPv6 by its /64), in a table of bounded size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Requests an address may make in a burst.
pub const BURST: f64 = 20.0;
/// Requests per second an address earns back.
pub const PER_SECOND: f64 = 5.0;
/// Addresses tracked at once; when full, buckets that are full again are dropped, and if none
/// is, new addresses are refused until some are.
pub const MAX_ADDRESSES: usize = 16_384;

/// Token buckets by address.
#[derive(Debug, Default)]
pub struct RateLimit {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

fn scope(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
    }
}

impl RateLimit {
    /// Takes one request for `ip` at `now`; `false` when the address is over its rate.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let key = scope(ip);
        let mut buckets = self.buckets.lock().expect("rate limit");
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ADDRESSES {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * PER_SECOND < BURST
            });
            if buckets.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let (tokens, at) = buckets.entry(key).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * PER_SECOND).min(BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let limit = RateLimit::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..BURST as usize {
            assert!(limit.allow(a, t0));
        }
        assert!(!limit.allow(a, t0), "over the burst");
        assert!(limit.allow(b, t0), "another address has its own bucket");
        assert!(
            limit.allow(a, t0 + Duration::from_millis(250)),
            "earned back"
        );
        // One IPv6 /64 is one bucket.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for _ in 0..BURST as usize {
            assert!(limit.allow(v6("2001:db8::1"), t0));
        }
        assert!(!limit.allow(v6("2001:db8::2"), t0));
    }
}
