//! Proofs of knowledge of the group secret, bound to one TLS session and to
//! the peer that presents them.
//!
//! Both sides export 32 bytes of keying material (RFC 5705) with the
//! `GroupId` as label and the ALPN as context. The proof of peer `P` is
//! `blake3(blake3(secret ‖ ekm) ‖ P)`. Another session has other keying
//! material (no replay) and the two sides have different ids (no
//! reflection). The bond id is the same export under another label: equal
//! on both sides, never sent.

use mosaik_core::{Digest, GroupId, PeerId};

use super::wire::Proof;
use crate::endpoint::GROUPS_ALPN;
use crate::error::NetError;

const BOND_ID_LABEL: &[u8] = b"mosaik.group.bond.id";

fn export(conn: &quinn::Connection, label: &[u8]) -> Result<[u8; 32], NetError> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, label, GROUPS_ALPN)
        .map_err(|_| NetError::Tls("keying material export failed".into()))?;
    Ok(out)
}

/// Keying material of this session for `group`.
pub fn session_material(conn: &quinn::Connection, group: &GroupId) -> Result<[u8; 32], NetError> {
    export(conn, group.as_bytes())
}

/// The bond id both sides of this session compute.
pub fn bond_id(conn: &quinn::Connection) -> Result<Digest, NetError> {
    export(conn, BOND_ID_LABEL).map(Digest)
}

/// The proof `peer` presents in a session with keying material `ekm`.
pub fn proof_for(secret: &Digest, ekm: &[u8; 32], peer: &PeerId) -> Proof {
    secret.derive(ekm).derive(&peer.0).0
}

/// Constant-time comparison of a received proof with the expected one.
pub fn proof_matches(secret: &Digest, ekm: &[u8; 32], sender: &PeerId, proof: &Proof) -> bool {
    let expected = proof_for(secret, ekm, sender);
    expected
        .iter()
        .zip(proof.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: Digest = Digest([9; 32]);
    const EKM: [u8; 32] = [4; 32];

    #[test]
    fn proof_is_blake3_of_blake3_secret_ekm_then_peer() {
        let peer = PeerId([1; 32]);
        let mut inner = SECRET.0.to_vec();
        inner.extend_from_slice(&EKM);
        let mut outer = Digest::of(&inner).0.to_vec();
        outer.extend_from_slice(&peer.0);
        assert_eq!(proof_for(&SECRET, &EKM, &peer), Digest::of(&outer).0);
    }

    #[test]
    fn reflected_proof_is_refused() {
        let (initiator, acceptor) = (PeerId([1; 32]), PeerId([2; 32]));
        let initiators_proof = proof_for(&SECRET, &EKM, &initiator);
        assert!(proof_matches(&SECRET, &EKM, &initiator, &initiators_proof));
        assert!(!proof_matches(&SECRET, &EKM, &acceptor, &initiators_proof));
    }

    #[test]
    fn proof_from_another_session_is_refused() {
        let peer = PeerId([1; 32]);
        let old = proof_for(&SECRET, &[5; 32], &peer);
        assert!(!proof_matches(&SECRET, &EKM, &peer, &old));
    }

    #[test]
    fn proof_with_another_secret_is_refused() {
        let peer = PeerId([1; 32]);
        let forged = proof_for(&Digest([8; 32]), &EKM, &peer);
        assert!(!proof_matches(&SECRET, &EKM, &peer, &forged));
    }
}
