//! What keeps a node's outgoing dials from becoming a flood that others
//! steer: entries are self-signed and identities are free, so anyone can
//! publish entries that list somebody else's address. Dials are therefore
//! capped in number at once, each (peer, address) pair that failed backs
//! off exponentially, and pairs never reached before draw on a small
//! per-second budget. An address is dialled for at most one unreached pair
//! at a time, and an address where such a dial failed backs off for every
//! unreached pair: however many identities list it, it sees one dial per
//! pause. A pair that was reached once (by a dial, or by a connection from
//! that peer at that address) skips all this and backs off only briefly,
//! so an honest peer that restarts at its address is found again quickly.

use std::collections::{HashMap, HashSet};
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

/// How a dial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialled {
    /// The peer proved itself: the pair is reached.
    Reached,
    /// Something answered but the dial failed (another key, a refusal):
    /// the address is alive, only this pair backs off.
    Answered,
    /// Nothing answered within the dial timeout: the address backs off for
    /// every unreached pair too.
    Silent,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    until: Instant,
}

struct State {
    failures: HashMap<Pair, Failures>,
    /// Addresses where a dial of an unreached pair failed.
    suspect: HashMap<SocketAddr, Failures>,
    /// Addresses with a dial of an unreached pair in flight.
    probing: HashSet<SocketAddr>,
    reached: HashMap<Pair, Instant>,
    new_pairs: Buckets<()>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct DialGuard {
    max_backoff: Duration,
    slots: Arc<Semaphore>,
    state: Shared,
}

/// Leave to dial one pair; report the outcome with `DialGuard::outcome`.
/// Dropping it (also when the dial is abandoned) frees its slot and, for an
/// unreached pair, its address.
pub struct DialPermit {
    _slot: OwnedSemaphorePermit,
    _probe: Probe,
}

/// An address marked as probed by an unreached pair; unmarked when dropped,
/// also when the dial is abandoned while it waits for a slot.
struct Probe(Option<(Shared, SocketAddr)>);

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some((state, addr)) = self.0.take() {
            lock(&state).probing.remove(&addr);
        }
    }
}

impl Failures {
    /// The record after one more failure, pausing at most `cap`.
    fn after(previous: Option<Failures>, cap: Duration, now: Instant) -> Failures {
        let count = previous.map_or(0, |f| f.count) + 1;
        let pause = FIRST_BACKOFF
            .saturating_mul(1 << (count - 1).min(16))
            .min(cap);
        Failures {
            count,
            until: now + pause,
        }
    }
}

impl DialGuard {
    pub fn new(limits: &Limits) -> Self {
        let rate = f64::from(limits.new_address_dials_per_second);
        DialGuard {
            max_backoff: limits.max_dial_backoff,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_dials)),
            state: Arc::new(Mutex::new(State {
                failures: HashMap::new(),
                suspect: HashMap::new(),
                probing: HashSet::new(),
                reached: HashMap::new(),
                new_pairs: Buckets::new(rate * 4.0, rate),
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Why `peer` at `addr` may not be dialled now, if it may not; marks
    /// the address as probed when the pair was never reached.
    fn refusal(&self, pair: Pair, now: Instant) -> Result<bool, &'static str> {
        let mut state = self.state();
        if state.failures.get(&pair).is_some_and(|f| now < f.until) {
            return Err("backing off after failed dials");
        }
        if state.reached.contains_key(&pair) {
            return Ok(false);
        }
        let addr = pair.1;
        if state.probing.contains(&addr) {
            return Err("another unreached peer at this address is being dialled");
        }
        if state.suspect.get(&addr).is_some_and(|f| now < f.until) {
            return Err("backing off from an address where dials failed");
        }
        if !state.new_pairs.take((), now) {
            return Err("the budget for dialling new addresses is spent");
        }
        state.probing.insert(addr);
        Ok(true)
    }

    /// Waits for a dial slot for `peer` at `addr`, or says why not now.
    pub async fn permit(&self, peer: PeerId, addr: SocketAddr) -> Result<DialPermit, &'static str> {
        let probe = Probe(
            self.refusal((peer, addr), Instant::now())?
                .then(|| (self.state.clone(), addr)),
        );
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "closed")?;
        Ok(DialPermit {
            _slot: slot,
            _probe: probe,
        })
    }

    /// Records how a dial of `peer` at `addr` ended.
    pub fn outcome(&self, peer: PeerId, addr: SocketAddr, how: Dialled) {
        if how == Dialled::Reached {
            self.reached(peer, addr);
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        if state.failures.len() >= MAX_REMEMBERED {
            state.failures.retain(|_, f| now < f.until);
            state.suspect.retain(|_, f| now < f.until);
        }
        let reached = state.reached.contains_key(&(peer, addr));
        if !reached && how == Dialled::Silent {
            let previous = state.suspect.get(&addr).copied();
            state
                .suspect
                .insert(addr, Failures::after(previous, self.max_backoff, now));
        }
        let cap = if reached {
            REACHED_MAX_BACKOFF
        } else {
            self.max_backoff
        };
        let previous = state.failures.get(&(peer, addr)).copied();
        state
            .failures
            .insert((peer, addr), Failures::after(previous, cap, now));
    }

    /// `peer` proved itself from `addr` (a dial, an accepted hello or bond),
    /// or the operator named it as a bootstrap peer: the pair is reached
    /// and its back-off cleared.
    pub fn reached(&self, peer: PeerId, addr: SocketAddr) {
        let now = Instant::now();
        let mut state = self.state();
        state.failures.remove(&(peer, addr));
        state.suspect.remove(&addr);
        if state.reached.len() >= MAX_REMEMBERED {
            // Forget the older half at once (amortized, not a scan per pair).
            let mut times: Vec<Instant> = state.reached.values().copied().collect();
            let (_, cutoff, _) = times.select_nth_unstable(MAX_REMEMBERED / 2);
            let cutoff = *cutoff;
            state.reached.retain(|_, t| *t > cutoff);
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
        g.outcome(p, addr(1), Dialled::Answered);
        assert_eq!(
            g.permit(p, addr(1)).await.err(),
            Some("backing off after failed dials")
        );
        g.reached(p, addr(1));
        assert!(g.permit(p, addr(1)).await.is_ok());
    }

    #[tokio::test]
    async fn many_identities_at_one_address_get_one_dial_at_a_time_and_share_its_back_off() {
        let g = guard(100);
        let victim = addr(1);
        let first = g.permit(PeerId([1; 32]), victim).await.unwrap();
        assert!(
            g.permit(PeerId([2; 32]), victim).await.is_err(),
            "one in flight"
        );
        assert!(
            g.permit(PeerId([2; 32]), addr(2)).await.is_ok(),
            "per address"
        );
        g.outcome(PeerId([1; 32]), victim, Dialled::Silent);
        drop(first);
        assert_eq!(
            g.permit(PeerId([3; 32]), victim).await.err(),
            Some("backing off from an address where dials failed")
        );
        g.reached(PeerId([9; 32]), victim);
        assert!(
            g.permit(PeerId([9; 32]), victim).await.is_ok(),
            "a reached peer at the address is dialled at once"
        );
    }

    #[tokio::test]
    async fn an_address_that_answers_with_another_key_is_not_suspect() {
        let g = guard(100);
        let (old, new) = (PeerId([1; 32]), PeerId([2; 32]));
        drop(g.permit(old, addr(1)).await.unwrap());
        g.outcome(old, addr(1), Dialled::Answered);
        assert!(
            g.permit(new, addr(1)).await.is_ok(),
            "a node restarted with a new key at the old address is dialled at once"
        );
    }

    #[tokio::test]
    async fn a_dial_abandoned_while_it_waits_for_a_slot_frees_its_address() {
        let g = DialGuard::new(&Limits {
            max_concurrent_dials: 1,
            ..Limits::default()
        });
        let busy = g.permit(PeerId([1; 32]), addr(1)).await.unwrap();
        let waiting = g.permit(PeerId([2; 32]), addr(2));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), waiting)
                .await
                .is_err(),
            "no slot while the first dial runs"
        );
        drop(busy);
        assert!(g.permit(PeerId([3; 32]), addr(2)).await.is_ok());
    }

    #[tokio::test]
    async fn an_abandoned_dial_frees_its_address() {
        let g = guard(100);
        let permit = g.permit(PeerId([1; 32]), addr(1)).await.unwrap();
        drop(permit);
        assert!(g.permit(PeerId([2; 32]), addr(1)).await.is_ok());
    }

    #[test]
    fn back_off_doubles_up_to_its_cap_and_is_short_for_reached_pairs() {
        let g = guard(100);
        let (p, q) = (PeerId([1; 32]), PeerId([2; 32]));
        g.reached(q, addr(2));
        for _ in 0..20 {
            g.outcome(p, addr(1), Dialled::Silent);
            g.outcome(q, addr(2), Dialled::Silent);
        }
        let now = Instant::now();
        let state = g.state();
        let pause = |pair: &Pair| state.failures[pair].until.saturating_duration_since(now);
        assert!(pause(&(p, addr(1))) > Duration::from_secs(25));
        assert!(pause(&(p, addr(1))) <= Limits::default().max_dial_backoff);
        assert!(pause(&(q, addr(2))) <= REACHED_MAX_BACKOFF);
    }
}
