//! Failed credential attempts, rate-limited per source address (`governor`). Only failures
//! count, so an honest client is never slowed; an address that keeps presenting unknown
//! tokens, link codes or share links is answered 429 without any check until its budget
//! refills. Valid credentials are 256-bit (tokens) or 128-bit (codes) secrets, so this is
//! about load and log noise more than about guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed attempts an address may make per second, once its burst is spent.
const PER_SECOND: u32 = 5;
/// Failed attempts an address may make at once.
const BURST: u32 = 20;
/// Addresses remembered at most (older entries are forgotten first when over).
const MAX_TRACKED: usize = 65_536;

/// The peer address of a request, put into its extensions by `http.rs`.
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub IpAddr);

/// Failed attempts per address.
pub struct Throttle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for Throttle {
    fn default() -> Self {
        let quota = Quota::per_second(NonZeroU32::new(PER_SECOND).expect("non-zero"))
            .allow_burst(NonZeroU32::new(BURST).expect("non-zero"));
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            blocked: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    /// Whether `ip` must wait before presenting credentials again.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&ip) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                blocked.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        if let Err(not_until) = self.limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() >= MAX_TRACKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + wait.max(Duration::from_millis(200)));
        }
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_address_that_keeps_failing_is_held_back() {
        let throttle = Throttle::default();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let honest: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..BURST {
            throttle.failed(attacker);
        }
        assert!(!throttle.blocked(attacker), "the burst is allowed");
        throttle.failed(attacker);
        assert!(throttle.blocked(attacker));
        assert!(!throttle.blocked(honest));
    }
}
