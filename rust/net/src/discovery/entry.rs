//! Signed peer entries: what a node says about itself on the network, and
//! the shape every entry must have (bounded addresses, groups, hints and
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
const FIXED_ENCODING_BOUND: usize = 32 + 32 + 10 + SIGNATURE_LEN + 4 * 5;
/// Encoded size of one group hint.
const HINT_ENCODING: usize = 16 + 8 + 24 + 4;
/// Upper bound of one encoded address (IPv6: tag, 16 bytes, port).
const ADDR_ENCODING_BOUND: usize = 1 + 16 + 3;

/// A node's self-description. `version` grows with every change and every
/// refresh, so the newest entry of a peer always wins. `hints[i]` describes
/// `groups[i]` to the holders of that group's key (`groups::hint`); to
/// anybody else its bytes are noise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    pub peer_id: PeerId,
    pub network_id: NetworkId,
    pub addrs: Vec<SocketAddr>,
    pub groups: Vec<GroupId>,
    pub hints: Vec<GroupHint>,
    pub version: u64,
}

/// What a member says about one of its groups, keyed by the group's secret:
/// a tag that only the key's holders recognise, digests of the group's
/// settings and the newest machine version the member runs (masked with a
/// pad of the nonce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupHint {
    pub tag: [u8; 16],
    pub nonce: [u8; 8],
    pub settings: [u8; 24],
    pub version: [u8; 4],
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

    /// Same addresses, groups and hints: a newer version that only refreshes.
    pub fn same_content(&self, other: &PeerEntry) -> bool {
        self.addrs == other.addrs && self.groups == other.groups && self.hints == other.hints
    }

    /// The hint of `group`, if the entry lists it with one.
    pub fn hint_of(&self, group: &GroupId) -> Option<&GroupHint> {
        let at = self.groups.iter().position(|g| g == group)?;
        self.hints.get(at)
    }
}

impl SignedEntry {
    /// Within the bounds on addresses and groups, one hint per group (or
    /// none), with a signature of the right length. Checked before the
    /// (costly) signature.
    pub fn well_formed(&self) -> bool {
        let hints = self.entry.hints.len();
        self.entry.addrs.len() <= MAX_ENTRY_ADDRS
            && self.entry.groups.len() <= MAX_ENTRY_GROUPS
            && (hints == 0 || hints == self.entry.groups.len())
            && self.signature.len() == SIGNATURE_LEN
    }

    /// An upper bound of this entry's encoded size, for packing frames.
    pub fn encoded_size_bound(&self) -> usize {
        FIXED_ENCODING_BOUND
            + self.entry.addrs.len() * ADDR_ENCODING_BOUND
            + self.entry.groups.len() * 32
            + self.entry.hints.len() * HINT_ENCODING
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
            hints: vec![],
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
        let hint = GroupHint {
            tag: [0xff; 16],
            nonce: [0xff; 8],
            settings: [0xff; 24],
            version: [0xff; 4],
        };
        big.hints = vec![hint; MAX_ENTRY_GROUPS];
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
        let mut fewer_hints = entry(&id);
        fewer_hints.groups = vec![mosaik_core::Digest([1; 32]); 2];
        fewer_hints.hints = vec![
            GroupHint {
                tag: [0; 16],
                nonce: [0; 8],
                settings: [0; 24],
                version: [0; 4],
            };
            1
        ];
        assert!(!fewer_hints.sign(&id).well_formed());
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
