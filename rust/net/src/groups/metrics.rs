//! Counters of the groups subsystem: bond traffic and refused handshakes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::close::{self, groups as codes};
use crate::metrics::{Counter, Sample};

#[derive(Default, Debug)]
pub struct BondMetrics {
    pub bytes_sent: Counter,
    pub bytes_received: Counter,
    pub messages_sent: Counter,
    pub messages_received: Counter,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

/// The reason counted when a peer holds a group's key with other settings.
pub const CONFIG_MISMATCH: &str = "config_mismatch";

/// The metric label of a refusal's close code.
pub fn reason_name(code: u32) -> &'static str {
    match code {
        codes::INVALID_HANDSHAKE => "invalid_handshake",
        codes::GROUP_NOT_FOUND => "group_not_found",
        codes::INVALID_PROOF => "invalid_proof",
        codes::TIMEOUT => "timeout",
        codes::ALREADY_BONDED => "already_bonded",
        close::DIFFERENT_NETWORK => "different_network",
        close::UNKNOWN_PEER => "unknown_peer",
        close::PROTOCOL_VIOLATION => "protocol_violation",
        _ => "other",
    }
}

impl BondMetrics {
    pub fn reject(&self, code: u32) {
        self.reject_named(reason_name(code));
    }

    /// Counts a refusal under `reason`.
    pub fn reject_named(&self, reason: &'static str) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        *rejected.entry(reason).or_default() += 1;
    }

    pub fn record_sent(&self, bytes: usize) {
        self.messages_sent.inc();
        self.bytes_sent.add(bytes as u64);
    }

    pub fn record_received(&self, bytes: usize) {
        self.messages_received.inc();
        self.bytes_received.add(bytes as u64);
    }

    pub fn samples(&self) -> Vec<Sample> {
        let mut out = vec![
            (
                "mosaik.groups.bonds.bytes.sent".into(),
                self.bytes_sent.get() as f64,
            ),
            (
                "mosaik.groups.bonds.bytes.received".into(),
                self.bytes_received.get() as f64,
            ),
            (
                "mosaik.groups.bonds.messages.sent".into(),
                self.messages_sent.get() as f64,
            ),
            (
                "mosaik.groups.bonds.messages.received".into(),
                self.messages_received.get() as f64,
            ),
        ];
        let rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(rejected.iter().map(|(reason, n)| {
            (
                format!("mosaik.groups.bonds.rejected{{reason={reason}}}"),
                *n as f64,
            )
        }));
        out
    }
}
