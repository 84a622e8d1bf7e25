//! A node's identity: its ed25519 key pair, the `PeerId` it gives, and the
//! self-signed X.509 certificate that carries the public key in TLS.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mosaik_core::PeerId;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::NetError;

/// PKCS#8 v1 wrapping of an ed25519 seed (RFC 8410): this prefix, then the
/// 32 seed bytes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key pair of one `Network` and its TLS certificate.
pub struct Identity {
    signing: SigningKey,
    peer_id: PeerId,
    cert: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl Identity {
    /// A fresh identity from the operating system's random source.
    pub fn generate() -> Result<Self, NetError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| NetError::Config(format!("no random source: {e}")))?;
        Self::from_seed(seed)
    }

    /// The identity whose ed25519 secret key is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, NetError> {
        let signing = SigningKey::from_bytes(&seed);
        let peer_id = PeerId(signing.verifying_key().to_bytes());
        let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let cert = self_signed_cert(&pkcs8)?;
        Ok(Identity {
            signing,
            peer_id,
            cert,
            pkcs8,
        })
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

fn self_signed_cert(pkcs8: &[u8]) -> Result<CertificateDer<'static>, NetError> {
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|e| NetError::Tls(format!("key pair: {e}")))?;
    let params = rcgen::CertificateParams::new(vec!["mosaik".to_string()])
        .map_err(|e| NetError::Tls(format!("certificate params: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| NetError::Tls(format!("self-signing: {e}")))?;
    Ok(cert.der().clone())
}

/// Checks an ed25519 signature made by `peer` over `message`, strictly:
/// weak keys (small-order points such as the identity, which "verify" one
/// signature for every message) and non-canonical signatures are refused.
pub fn verify_signature(peer: &PeerId, message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&peer.0) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_peer_id() {
        let a = Identity::from_seed([3; 32]).unwrap();
        let b = Identity::from_seed([3; 32]).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
    }

    #[test]
    fn signatures_verify_only_for_their_signer_and_message() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let sig = a.sign(b"hello");
        assert!(verify_signature(&a.peer_id(), b"hello", &sig));
        assert!(!verify_signature(&b.peer_id(), b"hello", &sig));
        assert!(!verify_signature(&a.peer_id(), b"hellO", &sig));
        assert!(!verify_signature(&a.peer_id(), b"hello", &sig[..10]));
    }

    #[test]
    fn the_identity_point_key_verifies_nothing() {
        // The identity point (y = 1) with the signature (R = identity, s = 0)
        // satisfies the plain ed25519 equation for every message.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let key = VerifyingKey::from_bytes(&identity_point).unwrap();
        let lax = ed25519_dalek::Verifier::verify(&key, b"any", &Signature::from_bytes(&sig));
        assert!(
            lax.is_ok(),
            "the lax check accepts it, else this test proves nothing"
        );
        for message in [&b"any"[..], b"other message"] {
            assert!(!verify_signature(&PeerId(identity_point), message, &sig));
        }
    }
}
