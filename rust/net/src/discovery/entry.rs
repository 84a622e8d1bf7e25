//! Signed peer entries: what a node says about itself on the network, and
//! the shape every entry must have (bounded addresses, groups and
//! signature) before anything else is done with it.

use std::net::SocketAddr;

use mosaik_core::{GroupId, NetworkId, PeerId};
use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, Identity};

/// Domain separation for entry signatures.
const SIGNING_CONTEXT: &[u8] = b"mosaik/discovery/peer-entry/1";

/// Addresses one entry may list.
pub const MAX_ENTRY_ADDRS: usize = 8;
/// Groups one entry may list (a node that joins more announces the first).
pub const MAX_ENTRY_GROUPS: usize = 1024;
/// Length of an ed25519 signature.
const SIGNATURE_LEN: usize = 64;
/// Upper bound of the postcard encoding of the fixed parts of a signed
/// entry: two ids, a version, a signature and the length prefixes.
const FIXED_ENCODING_BOUND: usize = 32 + 32 + 10 + SIGNATURE_LEN + 3 * 5;
/// Upper bound of one encoded address (IPv6: tag, 16 bytes, port).
const ADDR_ENCODING_BOUND: usize = 1 + 16 + 3;

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
    /// Within the bounds on addresses and groups, with a signature of the
    /// right length. Checked before the (costly) signature.
    pub fn well_formed(&self) -> bool {
        self.entry.addrs.len() <= MAX_ENTRY_ADDRS
            && self.entry.groups.len() <= MAX_ENTRY_GROUPS
            && self.signature.len() == SIGNATURE_LEN
    }

    /// An upper bound of this entry's encoded size, for packing frames.
    pub fn encoded_size_bound(&self) -> usize {
        FIXED_ENCODING_BOUND
            + self.entry.addrs.len() * ADDR_ENCODING_BOUND
            + self.entry.groups.len() * 32
    }

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
    fn encoded_size_bound_holds_for_the_largest_entries() {
        let id = Identity::generate().unwrap();
        let mut big = entry(&id);
        big.addrs = vec!["[ffff::ffff]:65535".parse().unwrap(); MAX_ENTRY_ADDRS];
        big.groups = vec![mosaik_core::Digest([0xff; 32]); MAX_ENTRY_GROUPS];
        big.version = u64::MAX;
        let signed = big.sign(&id);
        assert!(signed.well_formed());
        let encoded = postcard::to_allocvec(&signed).unwrap().len();
        assert!(encoded <= signed.encoded_size_bound(), "{encoded}");
    }

    #[test]
    fn entries_beyond_the_bounds_are_not_well_formed() {
        let id = Identity::generate().unwrap();
        let mut many_addrs = entry(&id);
        many_addrs.addrs = vec!["127.0.0.1:1".parse().unwrap(); MAX_ENTRY_ADDRS + 1];
        assert!(!many_addrs.sign(&id).well_formed());
        let mut many_groups = entry(&id);
        many_groups.groups = vec![mosaik_core::Digest([1; 32]); MAX_ENTRY_GROUPS + 1];
        assert!(!many_groups.sign(&id).well_formed());
        let mut long_signature = entry(&id).sign(&id);
        long_signature.signature.push(0);
        assert!(!long_signature.well_formed());
    }

    #[test]
    fn entry_signed_by_another_key_fails_verification() {
        let id = Identity::generate().unwrap();
        let other = Identity::generate().unwrap();
        assert!(!entry(&id).sign(&other).verify());
    }
}
