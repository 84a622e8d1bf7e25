//! Admission of incoming connections, decided before any cryptography
//! runs: connections that have not bonded yet are capped in total and per
//! IP address, a flood of handshakes must prove its source addresses
//! (QUIC Retry), and an address that keeps probing (wrong network, unknown
//! group, bad proof) is refused unanswered once its refusal budget is spent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::close;
use crate::close::groups as codes;
use crate::limits::{ip_key, Buckets, Limits};
use crate::metrics::{Counter, Sample};

#[derive(Default, Debug)]
struct AdmissionMetrics {
    refused: Counter,
    retried: Counter,
    probes_silenced: Counter,
}

struct State {
    pending: usize,
    pending_per_ip: HashMap<u128, usize>,
    refusals: Buckets<u128>,
}

/// What to do with an incoming connection attempt.
pub enum Decision {
    /// Go on with the handshake; the slot is held until dropped.
    Admit(PendingSlot),
    /// Ask the client to prove its address first.
    Retry,
    /// Refuse without a handshake.
    Refuse,
    /// Do not answer at all (an address that spent its refusal budget).
    Ignore,
}

pub struct Admission {
    limits: Limits,
    state: Mutex<State>,
    handshaking: AtomicUsize,
    metrics: AdmissionMetrics,
}

/// True for the close codes that tell a prober something (which networks
/// and groups a node serves, whether a key is right).
pub fn is_probe_refusal(code: u32) -> bool {
    matches!(
        code,
        close::DIFFERENT_NETWORK | codes::GROUP_NOT_FOUND | codes::INVALID_PROOF
    )
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        let per_minute = f64::from(limits.refusals_per_ip_per_minute);
        Arc::new(Admission {
            state: Mutex::new(State {
                pending: 0,
                pending_per_ip: HashMap::new(),
                refusals: Buckets::new(per_minute, per_minute / 60.0),
            }),
            limits,
            handshaking: AtomicUsize::new(0),
            metrics: AdmissionMetrics::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides on a connection attempt from `ip`, whose source address is
    /// already validated (by a Retry) or not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, validated: bool) -> Decision {
        let key = ip_key(ip);
        let mut state = self.state();
        if !state.refusals.has_token(&key, Instant::now()) {
            self.metrics.probes_silenced.inc();
            return Decision::Ignore;
        }
        let here = state.pending_per_ip.get(&key).copied().unwrap_or(0);
        let crowded = state.pending >= self.limits.max_pending_connections
            || here >= self.limits.max_pending_connections_per_ip;
        // A source address is trusted only once a Retry proved it: spoofed
        // packets must not use up the slots of the address they claim.
        if !validated
            && (crowded
                || self.handshaking.load(Ordering::Relaxed) >= self.limits.retry_above_handshakes)
        {
            self.metrics.retried.inc();
            return Decision::Retry;
        }
        if crowded {
            self.metrics.refused.inc();
            return Decision::Refuse;
        }
        state.pending += 1;
        *state.pending_per_ip.entry(key).or_default() += 1;
        self.handshaking.fetch_add(1, Ordering::Relaxed);
        Decision::Admit(PendingSlot {
            admission: self.clone(),
            key,
            handshaking: true,
        })
    }

    /// Charges `ip` for a refusal with `code`; once probing refusals spent
    /// the budget, connections from `ip` get no answer until it refills.
    pub fn charge_refusal(&self, ip: IpAddr, code: u32) {
        if is_probe_refusal(code) {
            self.state().refusals.take(ip_key(ip), Instant::now());
        }
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let m = &self.metrics;
        vec![
            (
                "mosaik.net.connections.pending".into(),
                self.state().pending as f64,
            ),
            (
                "mosaik.net.connections.refused".into(),
                m.refused.get() as f64,
            ),
            (
                "mosaik.net.connections.retried".into(),
                m.retried.get() as f64,
            ),
            (
                "mosaik.net.probes.silenced".into(),
                m.probes_silenced.get() as f64,
            ),
        ]
    }
}

/// An admitted connection that has not bonded yet; dropping it frees the
/// slot.
pub struct PendingSlot {
    admission: Arc<Admission>,
    key: u128,
    handshaking: bool,
}

impl PendingSlot {
    /// The QUIC handshake is over (the connection still holds its slot).
    pub fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.admission.handshaking.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.handshake_done();
        let mut state = self.admission.state();
        state.pending -= 1;
        if let Some(n) = state.pending_per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                state.pending_per_ip.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_pending_connections: 3,
            max_pending_connections_per_ip: 2,
            retry_above_handshakes: 2,
            refusals_per_ip_per_minute: 2,
            ..Limits::default()
        }
    }

    fn admitted(d: Decision) -> PendingSlot {
        match d {
            Decision::Admit(slot) => slot,
            Decision::Retry => panic!("retry"),
            Decision::Refuse => panic!("refused"),
            Decision::Ignore => panic!("ignored"),
        }
    }

    #[test]
    fn pending_connections_are_capped_per_ip_and_in_total() {
        let a = Admission::new(limits());
        let (x, y, z) = (
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
            "127.0.0.4".parse().unwrap(),
        );
        let s1 = admitted(a.admit(x, true));
        let _s2 = admitted(a.admit(x, true));
        assert!(matches!(a.admit(x, true), Decision::Refuse));
        assert!(
            matches!(a.admit(x, false), Decision::Retry),
            "unproven: retry first"
        );
        let _s3 = admitted(a.admit(y, true));
        assert!(matches!(a.admit(z, true), Decision::Refuse), "total cap");
        drop(s1);
        let _s4 = admitted(a.admit(x, true));
    }

    #[test]
    fn a_flood_of_handshakes_must_prove_its_addresses() {
        let a = Admission::new(limits());
        let mut s1 = admitted(a.admit("127.0.0.2".parse().unwrap(), false));
        let _s2 = admitted(a.admit("127.0.0.3".parse().unwrap(), false));
        assert!(matches!(
            a.admit("127.0.0.4".parse().unwrap(), false),
            Decision::Retry
        ));
        assert!(matches!(
            a.admit("127.0.0.4".parse().unwrap(), true),
            Decision::Admit(_)
        ));
        s1.handshake_done();
        drop(s1);
        assert!(matches!(
            a.admit("127.0.0.5".parse().unwrap(), false),
            Decision::Admit(_)
        ));
    }

    #[test]
    fn an_address_that_keeps_probing_is_silenced_and_others_are_not() {
        let a = Admission::new(limits());
        let (x, y) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        a.charge_refusal(x, codes::ALREADY_BONDED);
        a.charge_refusal(x, codes::ALREADY_BONDED);
        a.charge_refusal(x, codes::ALREADY_BONDED);
        assert!(
            matches!(a.admit(x, true), Decision::Admit(_)),
            "not a probe"
        );
        a.charge_refusal(x, close::UNKNOWN_PEER);
        assert!(
            matches!(a.admit(x, true), Decision::Admit(_)),
            "not a probe either"
        );
        a.charge_refusal(x, codes::INVALID_PROOF);
        a.charge_refusal(x, close::DIFFERENT_NETWORK);
        assert!(matches!(a.admit(x, true), Decision::Ignore));
        assert!(matches!(a.admit(y, true), Decision::Admit(_)));
    }
}
