//! What keeps a node's outgoing dials from becoming a flood that others
//! steer: entries are self-signed and identities are free, so anyone can
//! publish entries that list somebody else's address. Dials are therefore
//! capped in number at once, each (peer, address) pair that failed backs
//! off exponentially, and pairs never reached before draw on a small
//! per-second budget. A pair that was reached once backs off only briefly,
//! so an honest peer that restarts at its address is found again quickly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosaik_core::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::{Buckets, Limits};

/// Addresses of one peer tried per dial; an entry may list more.
pub const MAX_DIALLED_ADDRS: usize = 2;
/// Pause after the first failed dial of a pair.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause for a pair that was reached before.
const REACHED_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Pairs remembered as reached; beyond it the oldest are forgotten.
const MAX_REMEMBERED: usize = 8192;

type Pair = (PeerId, SocketAddr);

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    until: Instant,
}

struct State {
    failures: HashMap<Pair, Failures>,
    reached: HashMap<Pair, Instant>,
    new_pairs: Buckets<()>,
}

pub struct DialGuard {
    max_backoff: Duration,
    slots: Arc<Semaphore>,
    state: Mutex<State>,
}

/// Leave to dial one pair; report the outcome with `DialGuard::outcome`.
pub struct DialPermit {
    _slot: OwnedSemaphorePermit,
}

impl DialGuard {
    pub fn new(limits: &Limits) -> Self {
        let rate = f64::from(limits.new_address_dials_per_second);
        DialGuard {
            max_backoff: limits.max_dial_backoff,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_dials)),
            state: Mutex::new(State {
                failures: HashMap::new(),
                reached: HashMap::new(),
                new_pairs: Buckets::new(rate * 4.0, rate),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `peer` at `addr` may not be dialled now, if it may not.
    fn refusal(&self, pair: Pair, now: Instant) -> Option<&'static str> {
        let mut state = self.state();
        if state.failures.get(&pair).is_some_and(|f| now < f.until) {
            return Some("backing off after failed dials");
        }
        if !state.reached.contains_key(&pair) && !state.new_pairs.take((), now) {
            return Some("the budget for dialling new addresses is spent");
        }
        None
    }

    /// Waits for a dial slot for `peer` at `addr`, or says why not now.
    pub async fn permit(&self, peer: PeerId, addr: SocketAddr) -> Result<DialPermit, &'static str> {
        if let Some(why) = self.refusal((peer, addr), Instant::now()) {
            return Err(why);
        }
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "closed")?;
        Ok(DialPermit { _slot: slot })
    }

    /// Records how a dial of `peer` at `addr` ended.
    pub fn outcome(&self, peer: PeerId, addr: SocketAddr, ok: bool) {
        if ok {
            self.reached(peer, addr);
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        let cap = if state.reached.contains_key(&(peer, addr)) {
            REACHED_MAX_BACKOFF
        } else {
            self.max_backoff
        };
        if state.failures.len() >= MAX_REMEMBERED {
            state.failures.retain(|_, f| now < f.until);
        }
        let count = state.failures.get(&(peer, addr)).map_or(0, |f| f.count) + 1;
        let pause = FIRST_BACKOFF
            .saturating_mul(1 << (count - 1).min(16))
            .min(cap);
        state.failures.insert(
            (peer, addr),
            Failures {
                count,
                until: now + pause,
            },
        );
    }

    /// `peer` proved itself from `addr` (a dial or an incoming connection):
    /// the pair is reached and its back-off cleared.
    pub fn reached(&self, peer: PeerId, addr: SocketAddr) {
        let now = Instant::now();
        let mut state = self.state();
        state.failures.remove(&(peer, addr));
        if state.reached.len() >= MAX_REMEMBERED {
            let oldest = state
                .reached
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                state.reached.remove(&oldest);
            }
        }
        state.reached.insert((peer, addr), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(rate: u32) -> DialGuard {
        DialGuard::new(&Limits {
            new_address_dials_per_second: rate,
            ..Limits::default()
        })
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn new_addresses_draw_on_a_budget_and_reached_ones_do_not() {
        let g = guard(1);
        let p = PeerId([1; 32]);
        for port in 0..4 {
            g.permit(p, addr(port)).await.unwrap();
        }
        assert!(
            g.permit(p, addr(9)).await.is_err(),
            "burst of 4 x 1/s spent"
        );
        g.reached(p, addr(0));
        assert!(g.permit(p, addr(0)).await.is_ok(), "a reached pair is free");
    }

    #[tokio::test]
    async fn failed_pairs_back_off_and_a_proof_of_life_clears_it() {
        let g = guard(100);
        let p = PeerId([1; 32]);
        g.outcome(p, addr(1), false);
        assert_eq!(
            g.permit(p, addr(1)).await.err(),
            Some("backing off after failed dials")
        );
        assert!(g.permit(PeerId([2; 32]), addr(1)).await.is_ok(), "per pair");
        g.reached(p, addr(1));
        assert!(g.permit(p, addr(1)).await.is_ok());
    }

    #[test]
    fn back_off_doubles_up_to_its_cap_and_is_short_for_reached_pairs() {
        let g = guard(100);
        let (p, q) = (PeerId([1; 32]), PeerId([2; 32]));
        g.reached(q, addr(2));
        for _ in 0..20 {
            g.outcome(p, addr(1), false);
            g.outcome(q, addr(2), false);
        }
        let now = Instant::now();
        let state = g.state();
        let pause = |pair: &Pair| state.failures[pair].until.saturating_duration_since(now);
        assert!(pause(&(p, addr(1))) > Duration::from_secs(25));
        assert!(pause(&(p, addr(1))) <= Limits::default().max_dial_backoff);
        assert!(pause(&(q, addr(2))) <= REACHED_MAX_BACKOFF);
    }
}
