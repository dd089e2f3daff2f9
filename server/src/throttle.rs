//! Failed credential attempts, rate-limited per client address (`governor`). Only failures
//! count, and a credential is always checked first: a valid token, link code or share link
//! is never throttled, so one misconfigured device behind the same address (a proxy, a
//! household's NAT) cannot lock anybody else out. An address that keeps presenting unknown
//! ones is answered 429 instead of 401/404 until its budget refills. Valid credentials are
//! 256-bit (tokens) or 128-bit (codes) secrets, so this is about load and log noise more
//! than about guessing.
//!
//! The client address is the socket's peer, unless that peer is a configured trusted proxy
//! (`--trusted-proxy`): then it is the nearest untrusted address of `X-Forwarded-For` (or
//! of `Forwarded: for=`), read from the right, since only the proxies we trust append there.

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

/// The client address of a request ([`client_ip`]), put into its extensions by `http.rs`.
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub IpAddr);

/// The client a request comes from: `peer` itself, or, when `peer` is one of `trusted`,
/// the nearest address in the forwarding headers that is not.
pub fn client_ip(peer: IpAddr, headers: &hyper::HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { continue };
        hops.extend(value.split(',').filter_map(|hop| parse_hop(hop.trim())));
    }
    if hops.is_empty() {
        for value in headers.get_all(hyper::header::FORWARDED) {
            let Ok(value) = value.to_str() else { continue };
            for element in value.split(',') {
                let hop = element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for").then_some(value)
                });
                if let Some(ip) = hop.and_then(|h| parse_hop(h.trim_matches('"'))) {
                    hops.push(ip);
                }
            }
        }
    }
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// One hop of a forwarding header: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:5678` or `::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')?.split(']').next()?.parse().ok()
}

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

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
        // Not trusted: the socket's peer, whatever it claims.
        assert_eq!(client_ip(proxy, &forwarded, &[]), proxy);
        // Trusted: the nearest hop our proxy saw (the leftmost can be forged by the client).
        assert_eq!(
            client_ip(proxy, &forwarded, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Our own proxies in the chain are skipped.
        let chained = headers(&[("x-forwarded-for", "198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(proxy, &chained, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let rfc7239 = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]);
        assert_eq!(
            client_ip(proxy, &rfc7239, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // A trusted proxy that forwards nothing: itself.
        assert_eq!(client_ip(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(
            client_ip(proxy, &headers(&[("x-forwarded-for", "garbage")]), &trusted),
            proxy
        );
    }

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
