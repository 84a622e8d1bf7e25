//! Signed peer entries: what a node says about itself on the network.

use std::net::SocketAddr;

use mosaik_core::{GroupId, NetworkId, PeerId};
use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, Identity};

/// Domain separation for entry signatures.
const SIGNING_CONTEXT: &[u8] = b"mosaik/discovery/peer-entry/1";

/// A node's self-description. `version` grows with every change and every
/// refresh, so the newest entry of a peer always wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    pub peer_id: PeerId,
    pub network_id: NetworkId,
    pub addrs: Vec<SocketAddr>,
    pub groups: Vec<GroupId>,
    pub version: u64,
}

/// A `PeerEntry` with its author's ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    pub entry: PeerEntry,
    pub signature: Vec<u8>,
}

impl PeerEntry {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = SIGNING_CONTEXT.to_vec();
        // Encoding a plain struct into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Signs the entry; `identity` must be the entry's own peer.
    pub fn sign(self, identity: &Identity) -> SignedEntry {
        let signature = identity.sign(&self.signing_bytes()).to_vec();
        SignedEntry {
            entry: self,
            signature,
        }
    }

    /// Same addresses and groups: a newer version that only refreshes.
    pub fn same_content(&self, other: &PeerEntry) -> bool {
        self.addrs == other.addrs && self.groups == other.groups
    }
}

impl SignedEntry {
    /// True when the entry's own peer signed exactly these contents.
    pub fn verify(&self) -> bool {
        verify_signature(
            &self.entry.peer_id,
            &self.entry.signing_bytes(),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(identity: &Identity) -> PeerEntry {
        PeerEntry {
            peer_id: identity.peer_id(),
            network_id: NetworkId::of(b"net"),
            addrs: vec!["127.0.0.1:1".parse().unwrap()],
            groups: vec![],
            version: 1,
        }
    }

    #[test]
    fn signed_entry_verifies() {
        let id = Identity::generate().unwrap();
        assert!(entry(&id).sign(&id).verify());
    }

    #[test]
    fn altered_entry_fails_verification() {
        let id = Identity::generate().unwrap();
        let mut signed = entry(&id).sign(&id);
        signed.entry.version = 2;
        assert!(!signed.verify());
    }

    #[test]
    fn entry_signed_by_another_key_fails_verification() {
        let id = Identity::generate().unwrap();
        let other = Identity::generate().unwrap();
        assert!(!entry(&id).sign(&other).verify());
    }
}
