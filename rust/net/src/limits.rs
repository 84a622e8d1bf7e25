//! The caps that bound what peers, honest or not, can make a node do: how
//! many connections it admits before they prove group membership, how many
//! refusals it answers, how fast it dials addresses it has never reached,
//! and how large its peer catalog grows. Every cap is defined here once.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::error::NetError;

/// Caps of one `Network`. The defaults suit a node with a few hundred peers
/// and a few thousand groups; see the security page of the docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Incoming connections not yet bonded (discovery exchanges and bond
    /// handshakes in progress), from all addresses together.
    pub max_pending_connections: usize,
    /// The same, from one IP address (an IPv6 /64 counts as one address).
    pub max_pending_connections_per_ip: usize,
    /// Incoming QUIC handshakes in progress above which a new one must
    /// first prove it owns its source address (a QUIC Retry round trip).
    pub retry_above_handshakes: usize,
    /// Probing refusals (another network, an unknown group, a bad proof)
    /// answered to one IP address per minute; past it that address's new
    /// connections are refused unanswered until the budget refills.
    pub refusals_per_ip_per_minute: u32,
    /// Outgoing dials in progress at once.
    pub max_concurrent_dials: usize,
    /// Dials per second to addresses this node has never reached (bursts
    /// of four times as many are allowed).
    pub new_address_dials_per_second: u32,
    /// Longest pause before an address whose dials failed is tried again.
    pub max_dial_backoff: Duration,
    /// Peers held in the catalog.
    pub max_peers: usize,
    /// Peers not known before that one discovery exchange may add.
    pub max_new_peers_per_exchange: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending_connections: 256,
            max_pending_connections_per_ip: 32,
            retry_above_handshakes: 64,
            refusals_per_ip_per_minute: 30,
            max_concurrent_dials: 16,
            new_address_dials_per_second: 4,
            max_dial_backoff: Duration::from_secs(30),
            max_peers: 4096,
            max_new_peers_per_exchange: 256,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), NetError> {
        let counts = [
            ("max_pending_connections", self.max_pending_connections),
            (
                "max_pending_connections_per_ip",
                self.max_pending_connections_per_ip,
            ),
            ("retry_above_handshakes", self.retry_above_handshakes),
            (
                "refusals_per_ip_per_minute",
                self.refusals_per_ip_per_minute as usize,
            ),
            ("max_concurrent_dials", self.max_concurrent_dials),
            (
                "new_address_dials_per_second",
                self.new_address_dials_per_second as usize,
            ),
            ("max_peers", self.max_peers),
            (
                "max_new_peers_per_exchange",
                self.max_new_peers_per_exchange,
            ),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
            return Err(NetError::Config(format!(
                "invalid limit {name} 0: must be at least 1"
            )));
        }
        if self.max_dial_backoff < Duration::from_secs(1) {
            return Err(NetError::Config(format!(
                "invalid limit max_dial_backoff {:?}: must be at least 1 s",
                self.max_dial_backoff
            )));
        }
        Ok(())
    }
}

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    /// Takes one token if there is one.
    fn take(&mut self, capacity: f64, per_second: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self, capacity: f64, per_second: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * per_second >= capacity
    }
}

/// Keys a `Buckets` remembers at most.
const MAX_BUCKETS: usize = 4096;

/// One token bucket per key, with a bounded number of keys: buckets that
/// have refilled completely are forgotten (they hold no information).
pub struct Buckets<K> {
    capacity: f64,
    per_second: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    pub fn new(capacity: f64, per_second: f64) -> Self {
        Buckets {
            capacity,
            per_second,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token of `key`'s bucket; false when it is empty.
    pub fn take(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&key) {
            let (c, r) = (self.capacity, self.per_second);
            self.buckets.retain(|_, b| !b.is_full(c, r, now));
            if self.buckets.len() >= MAX_BUCKETS {
                // Still crowded: forget half, whichever they are, rather
                // than scan the whole map on every take.
                let drop: Vec<K> = self.buckets.keys().take(MAX_BUCKETS / 2).copied().collect();
                for k in drop {
                    self.buckets.remove(&k);
                }
            }
        }
        let (c, r) = (self.capacity, self.per_second);
        self.buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(c, now))
            .take(c, r, now)
    }

    /// True when `key` has a token left (without taking it).
    pub fn has_token(&self, key: &K, now: Instant) -> bool {
        self.buckets.get(key).is_none_or(|b| {
            let mut b = *b;
            b.take(self.capacity, self.per_second, now)
        })
    }
}

/// The key rate limits use for an IP address: the address itself for
/// IPv4 (also when mapped into IPv6), its /64 network for IPv6 (one host
/// easily owns a whole /64). Bit 32 marks IPv6 keys, so that no IPv6
/// network shares a key with an IPv4 address.
pub fn ip_key(ip: std::net::IpAddr) -> u128 {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    match ip {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => (u128::from(v6) & !u128::from(u64::MAX)) | (1u128 << 32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_its_capacity_then_refills_at_its_rate() {
        let t = Instant::now();
        let mut b = Buckets::new(3.0, 1.0);
        assert!((0..3).all(|_| b.take(1u8, t)));
        assert!(!b.take(1u8, t));
        assert!(b.take(2u8, t), "keys have their own buckets");
        assert!(!b.take(1u8, t + Duration::from_millis(500)));
        assert!(b.take(1u8, t + Duration::from_millis(1600)));
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_key() {
        let a: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let c: std::net::IpAddr = "2001:db9::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        assert_ne!(
            ip_key("0.0.0.1".parse().unwrap()),
            ip_key("::1".parse().unwrap())
        );
    }

    #[test]
    fn zero_caps_are_refused() {
        let limits = Limits {
            max_peers: 0,
            ..Limits::default()
        };
        assert!(limits
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_peers"));
    }
}
