//! TLS 1.3 for QUIC with both sides authenticated by ed25519 keys and no CA.
//!
//! Each side shows a self-signed certificate whose subject key is its
//! ed25519 key; the key is the remote's `PeerId`. The dialer refuses any key
//! other than the one it dialled. Handshake signatures are checked with that
//! same key, so a peer cannot claim a key it does not hold. Session
//! resumption and early data are off on both sides, so that this check runs
//! in full on every connection.

use std::sync::Arc;

use mosaik_core::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme};
use x509_parser::oid_registry::OID_SIG_ED25519;

use crate::error::NetError;
use crate::identity::{verify_signature, Identity};

/// Server name put in every ClientHello; identity is checked by key, not name.
pub const SERVER_NAME: &str = "mosaik";

/// The `PeerId` carried by a certificate, after checking its self-signature.
pub fn peer_id_of_cert(der: &[u8]) -> Result<PeerId, TlsError> {
    let bad = |what: &str| TlsError::General(format!("peer certificate: {what}"));
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| bad("undecodable"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err(bad("key is not ed25519"));
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| bad("ed25519 key of wrong length"))?;
    let peer = PeerId(key);
    let self_signed = cert.signature_algorithm.algorithm == OID_SIG_ED25519
        && verify_signature(
            &peer,
            cert.tbs_certificate.as_ref(),
            &cert.signature_value.data,
        );
    if !self_signed {
        return Err(bad("self-signature does not verify"));
    }
    Ok(peer)
}

/// The `PeerId` the remote of an established connection proved.
pub fn remote_peer_id(conn: &quinn::Connection) -> Option<PeerId> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    peer_id_of_cert(certs.first()?.as_ref()).ok()
}

/// Accepts a certificate only when it is a valid self-signed ed25519
/// certificate and, if `expected` is set, carries exactly that key.
#[derive(Debug)]
struct PeerVerifier {
    expected: Option<PeerId>,
}

impl PeerVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), TlsError> {
        if !intermediates.is_empty() {
            return Err(TlsError::General(
                "unexpected intermediate certificates".into(),
            ));
        }
        let peer = peer_id_of_cert(end_entity.as_ref())?;
        match self.expected {
            Some(expected) if expected != peer => Err(TlsError::General(format!(
                "peer presented key {peer} but {expected} was dialled"
            ))),
            _ => Ok(()),
        }
    }

    fn verify_handshake_signature(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(TlsError::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        let peer = peer_id_of_cert(cert.as_ref())?;
        if verify_signature(&peer, message, dss.signature()) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(TlsError::InvalidCertificate(
                rustls::CertificateError::BadSignature,
            ))
        }
    }
}

/// The handshake-signature methods both verifier traits share: TLS 1.2 is
/// refused, TLS 1.3 signatures must be ed25519 by the certificate's key.
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, TlsError> {
            Err(TlsError::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOffered,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, TlsError> {
            Self::verify_handshake_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_checks!();
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_checks!();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

/// Server side: any authenticated peer may connect; `alpns` are served.
pub fn server_config(
    identity: &Identity,
    alpns: &[&[u8]],
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, NetError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(Arc::new(PeerVerifier { expected: None }))
        .with_single_cert(vec![identity.cert()], identity.private_key())
        .map_err(tls_err)?;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    tls.max_early_data_size = 0;
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_err)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport);
    Ok(config)
}

/// Client side for one dial: only `expected` is accepted as the server.
pub fn client_config(
    identity: &Identity,
    expected: PeerId,
    alpn: &[u8],
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, NetError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier {
            expected: Some(expected),
        }))
        .with_client_auth_cert(vec![identity.cert()], identity.private_key())
        .map_err(tls_err)?;
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_err)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_certificate_yields_own_peer_id() {
        let id = Identity::generate().unwrap();
        assert_eq!(peer_id_of_cert(id.cert().as_ref()).unwrap(), id.peer_id());
    }

    #[test]
    fn garbage_certificate_is_refused() {
        assert!(peer_id_of_cert(b"not a certificate").is_err());
    }

    #[test]
    fn tampered_certificate_is_refused() {
        let id = Identity::generate().unwrap();
        let mut der = id.cert().as_ref().to_vec();
        let n = der.len();
        der[n - 5] ^= 0x40;
        assert!(peer_id_of_cert(&der).is_err());
    }
}
