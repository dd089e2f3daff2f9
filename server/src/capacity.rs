//! Who may hold a connection, so that nobody can fill the server with sockets that do
//! nothing. Every accepted socket counts against its address (unless that is a trusted
//! proxy) and, until it authenticates, against a small budget for unauthenticated ones;
//! a buddy's share link holds a handful of connections (websockets and page event streams
//! together), and all shares together a quarter of the server; devices keep the rest.
//! When the unauthenticated are at their budget, a new socket does not wait behind them:
//! the oldest one still unauthenticated is told to go ([`Socket::evicted`]). An honest
//! device authenticates within milliseconds; a socket that sits there silent is the first
//! to leave. Counting only, with guards that give back what they took when dropped.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use nudge_protocol::TokenKind;

/// The caps (`Config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Sockets open at once from one address (0: no cap).
    pub per_address: usize,
    /// Sockets not yet authenticated (HTTP requests, handshakes in progress).
    pub unauthenticated: usize,
    /// Connections one share link may hold.
    pub per_share: usize,
    /// Connections all share links together may hold.
    pub shares: usize,
    /// How long a socket may wait unauthenticated before a newcomer may push it out.
    pub grace: std::time::Duration,
}

impl Caps {
    /// The caps for a server of `max_connections` sockets.
    pub fn for_server(max_connections: usize, per_address: usize) -> Self {
        Self {
            per_address,
            unauthenticated: (max_connections / 4).max(16),
            per_share: 8,
            shares: (max_connections / 4).max(8),
            grace: std::time::Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct Counts {
    per_address: HashMap<IpAddr, usize>,
    unauthenticated: usize,
    /// The sockets not authenticated now, oldest first, and how to tell each to go.
    waiting: BTreeMap<u64, (std::time::Instant, Arc<tokio::sync::Notify>)>,
    next: u64,
    per_share: HashMap<String, usize>,
    shares: usize,
}

/// The counts of a running server.
pub struct Capacity {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Its address holds as many sockets as it may.
    #[error("too many connections from your address")]
    Address,
    /// Too many sockets wait to authenticate, none of them for long yet.
    #[error("too many connections waiting to authenticate")]
    Unauthenticated,
    /// The share link holds as many connections as it may.
    #[error("this share link has too many open connections; close a page or two")]
    Share,
    /// All shares together hold as many as they may.
    #[error("too many share connections right now; try again in a minute")]
    Shares,
}

/// One accepted socket. Dropped, it gives back its place.
pub struct Socket {
    capacity: Arc<Capacity>,
    address: Option<IpAddr>,
    /// Its place among the waiting, while it waits.
    seq: std::sync::atomic::AtomicU64,
    evict: Arc<tokio::sync::Notify>,
}

/// A socket that authenticated (a websocket or an event stream), for as long as it lasts;
/// meanwhile it no longer counts as unauthenticated.
pub struct Authenticated {
    socket: Arc<Socket>,
    share: Option<String>,
}

impl Capacity {
    /// Counts under `caps`.
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a socket just accepted from `address` (`None`: a trusted proxy, which
    /// carries many clients).
    pub fn accept(self: &Arc<Self>, address: Option<IpAddr>) -> Result<Socket, Full> {
        let mut counts = self.counts();
        let held = address.map(|ip| counts.per_address.get(&ip).copied().unwrap_or(0));
        if held.is_some_and(|held| self.caps.per_address > 0 && held >= self.caps.per_address) {
            return Err(Full::Address);
        }
        if counts.unauthenticated >= self.caps.unauthenticated {
            // Room for the newcomer: the longest-waiting goes, if it has had its grace
            // (it gives its place back when its connection ends, a moment later).
            let now = std::time::Instant::now();
            match counts.waiting.first_key_value() {
                Some((&seq, (since, _))) if now.duration_since(*since) >= self.caps.grace => {
                    if let Some((_, oldest)) = counts.waiting.remove(&seq) {
                        oldest.notify_one();
                    }
                }
                _ => return Err(Full::Unauthenticated),
            }
        }
        if let (Some(ip), Some(held)) = (address, held) {
            counts.per_address.insert(ip, held + 1);
        }
        counts.unauthenticated += 1;
        let evict = Arc::new(tokio::sync::Notify::new());
        let seq = counts.next;
        counts.next += 1;
        counts
            .waiting
            .insert(seq, (std::time::Instant::now(), evict.clone()));
        Ok(Socket {
            capacity: self.clone(),
            address,
            seq: std::sync::atomic::AtomicU64::new(seq),
            evict,
        })
    }
}

impl Socket {
    /// Completes when the socket must go: it waited longest while newcomers needed room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// The socket authenticated with a token of `kind` (`token_id` for a share); while
    /// the answer lives it counts as that, not as unauthenticated.
    pub fn authenticated(
        self: &Arc<Self>,
        kind: TokenKind,
        token_id: &str,
    ) -> Result<Authenticated, Full> {
        let capacity = &self.capacity;
        let mut counts = capacity.counts();
        let share = if kind == TokenKind::Share {
            let held = counts.per_share.get(token_id).copied().unwrap_or(0);
            if held >= capacity.caps.per_share {
                return Err(Full::Share);
            }
            if counts.shares >= capacity.caps.shares {
                return Err(Full::Shares);
            }
            counts.per_share.insert(token_id.to_owned(), held + 1);
            counts.shares += 1;
            Some(token_id.to_owned())
        } else {
            None
        };
        counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
        counts
            .waiting
            .remove(&self.seq.load(std::sync::atomic::Ordering::Relaxed));
        Ok(Authenticated {
            socket: self.clone(),
            share,
        })
    }
}

impl Drop for Authenticated {
    fn drop(&mut self) {
        let mut counts = self.socket.capacity.counts();
        if let Some(token) = &self.share {
            counts.shares = counts.shares.saturating_sub(1);
            if let Some(held) = counts.per_share.get_mut(token) {
                *held -= 1;
                if *held == 0 {
                    counts.per_share.remove(token);
                }
            }
        }
        // Back to an unauthenticated socket (a keep-alive connection after an event
        // stream), the newest of the waiting; the socket's own drop takes that back.
        counts.unauthenticated += 1;
        let seq = counts.next;
        counts.next += 1;
        counts
            .waiting
            .insert(seq, (std::time::Instant::now(), self.socket.evict.clone()));
        self.socket
            .seq
            .store(seq, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let mut counts = self.capacity.counts();
        counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
        counts
            .waiting
            .remove(&self.seq.load(std::sync::atomic::Ordering::Relaxed));
        if let Some(ip) = self.address
            && let Some(held) = counts.per_address.get_mut(&ip)
        {
            *held -= 1;
            if *held == 0 {
                counts.per_address.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            per_address: 2,
            unauthenticated: 3,
            per_share: 2,
            shares: 3,
            grace: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn an_address_and_the_unauthenticated_have_budgets_of_their_own() {
        let capacity = Capacity::new(caps());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = capacity.accept(Some(a)).unwrap();
        let _second = capacity.accept(Some(a)).unwrap();
        assert_eq!(capacity.accept(Some(a)).err(), Some(Full::Address));
        let other = capacity.accept(Some(b)).unwrap();
        // The unauthenticated are full: a newcomer gets in, and the longest-waiting is
        // told to go.
        let newcomer = capacity.accept(None).unwrap();
        assert!(
            futures_util::FutureExt::now_or_never(first.evicted()).is_some(),
            "the oldest is told to go"
        );
        drop(first);
        drop(newcomer);
        let _again = capacity.accept(Some(a)).unwrap();
        // A device that authenticates frees its unauthenticated place.
        let other = Arc::new(other);
        let device = other.authenticated(TokenKind::Device, "d1").unwrap();
        let _proxied = capacity.accept(None).unwrap();
        drop(device);
        drop(other);
        assert_eq!(capacity.counts().unauthenticated, 3);
        assert_eq!(capacity.counts().waiting.len(), 3);
        assert!(!capacity.counts().per_address.contains_key(&b));
    }

    #[test]
    fn nobody_is_pushed_out_before_its_grace() {
        let capacity = Capacity::new(Caps {
            grace: std::time::Duration::from_secs(3600),
            ..caps()
        });
        let _held: Vec<Socket> = (0..3).map(|_| capacity.accept(None).unwrap()).collect();
        assert_eq!(capacity.accept(None).err(), Some(Full::Unauthenticated));
    }

    #[test]
    fn a_share_link_holds_a_handful_and_shares_together_a_share_of_the_server() {
        let capacity = Capacity::new(Caps {
            unauthenticated: 100,
            per_address: 0,
            ..caps()
        });
        let sockets: Vec<Arc<Socket>> = (0..6)
            .map(|_| Arc::new(capacity.accept(None).unwrap()))
            .collect();
        let one = sockets[0].authenticated(TokenKind::Share, "s1").unwrap();
        let _two = sockets[1].authenticated(TokenKind::Share, "s1").unwrap();
        assert_eq!(
            sockets[2].authenticated(TokenKind::Share, "s1").err(),
            Some(Full::Share)
        );
        let _three = sockets[2].authenticated(TokenKind::Share, "s2").unwrap();
        assert_eq!(
            sockets[3].authenticated(TokenKind::Share, "s3").err(),
            Some(Full::Shares)
        );
        // Devices are not held back by shares.
        let _device = sockets[4].authenticated(TokenKind::Device, "d").unwrap();
        drop(one);
        let _again = sockets[3].authenticated(TokenKind::Share, "s1").unwrap();
    }
}
