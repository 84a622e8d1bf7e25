//! Group secrets from what an operator types: high-entropy keys are taken as
//! they are, passphrases are stretched with Argon2id.
//!
//! A `GroupId` is a public function of the group secret (fast blake3 steps)
//! and is published in discovery entries, so whoever sees one can test
//! guesses of the secret offline. A random 32-byte key makes that hopeless;
//! a passphrase is only as strong as the cost of each guess, which is why it
//! goes through Argon2id with RFC 9106's second recommended parameter set
//! (64 MiB, 3 passes, 1 lane). The salt is fixed per network name, not
//! random: every member must derive the same key from the same passphrase
//! without talking to anyone first.

use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};
use crate::ids::{decode_hex32, Digest};

/// Memory of one derivation in KiB (64 MiB).
pub const MEMORY_KIB: u32 = 64 * 1024;
/// Passes over that memory.
pub const PASSES: u32 = 3;
/// Lanes (degree of parallelism).
pub const LANES: u32 = 1;
/// Length of the derived secret: one `Digest`.
pub const OUTPUT_LEN: usize = std::mem::size_of::<Digest>();
/// What the salt is the blake3 of, before the optional network name.
pub const SALT_DOMAIN: &[u8] = b"mosaik/group-key/passphrase/1";

/// The Argon2 parameters; invalid constants fail the build, not a call.
const PARAMS: Params = match Params::new(MEMORY_KIB, PASSES, LANES, Some(OUTPUT_LEN)) {
    Ok(params) => params,
    Err(_) => panic!("invalid Argon2 parameters"),
};

/// blake3(`SALT_DOMAIN` ‖ network name); no network is the empty name.
pub fn salt(network: Option<&str>) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(SALT_DOMAIN);
    hasher.update(network.unwrap_or_default().as_bytes());
    Digest(*hasher.finalize().as_bytes())
}

/// Argon2id of `passphrase` with the parameters above and `salt(network)`.
/// Takes about 150 ms of one core and 64 MiB; an empty passphrase is refused.
pub fn stretch(passphrase: &[u8], network: Option<&str>) -> Result<Digest> {
    if passphrase.is_empty() {
        return Err(Error::Config(
            "a group key passphrase must not be empty".into(),
        ));
    }
    let mut out = Digest::default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
        .hash_password_into(passphrase, salt(network).as_bytes(), &mut out.0)
        .map_err(|e| Error::Config(format!("cannot stretch the group key passphrase: {e}")))?;
    Ok(out)
}

/// A group secret given as text: 64 hex characters are the key itself, any
/// other text is a passphrase (UTF-8) and is stretched.
pub fn group_secret_from_text(text: &str, network: Option<&str>) -> Result<Digest> {
    match decode_hex32(text) {
        Some(raw) => Ok(Digest(raw)),
        None => stretch(text.as_bytes(), network),
    }
}

/// A group secret given as bytes: 32 bytes are the key itself, any other
/// length is a passphrase and is stretched.
pub fn group_secret_from_bytes(data: &[u8], network: Option<&str>) -> Result<Digest> {
    match <[u8; 32]>::try_from(data) {
        Ok(raw) => Ok(Digest(raw)),
        Err(_) => stretch(data, network),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &[u8] = b"correct horse battery staple";

    /// The same derivation written with the argon2 crate alone, every
    /// parameter spelled out here rather than taken from this module.
    fn reference(passphrase: &[u8], network: &[u8]) -> [u8; 32] {
        let mut salt = blake3::Hasher::new();
        salt.update(b"mosaik/group-key/passphrase/1");
        salt.update(network);
        let params = Params::new(65536, 3, 1, Some(32)).unwrap();
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, salt.finalize().as_bytes(), &mut out)
            .unwrap();
        out
    }

    #[test]
    fn stretch_is_argon2id_64mib_3_passes_1_lane_over_the_domain_salt() {
        let key = stretch(PASSPHRASE, None).unwrap();
        assert_eq!(key.0, reference(PASSPHRASE, b""));
        assert_eq!(
            key.to_hex(),
            "9674f5c28ae465463e78b04fe92abc0aa58bf00e6f5e8854caffb464b433f4dd",
            "known answer (cross-checked with the reference C implementation)"
        );
    }

    #[test]
    fn network_name_is_appended_to_the_salt_domain() {
        let mut cat = SALT_DOMAIN.to_vec();
        cat.extend_from_slice(b"my-app");
        assert_eq!(salt(Some("my-app")), Digest::of(&cat));
        assert_eq!(salt(None), Digest::of(SALT_DOMAIN));
        assert_eq!(salt(Some("")), salt(None));
        assert_ne!(salt(Some("my-app")), salt(Some("other-app")));
        assert_eq!(
            stretch(PASSPHRASE, Some("my-app")).unwrap().0,
            reference(PASSPHRASE, b"my-app")
        );
    }

    #[test]
    fn empty_passphrase_is_refused() {
        assert!(matches!(stretch(b"", None), Err(Error::Config(_))));
        assert!(matches!(
            group_secret_from_text("", None),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            group_secret_from_bytes(b"", None),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn hex_text_and_32_bytes_are_the_key_itself() {
        let raw = [0xabu8; 32];
        let hex = Digest(raw).to_hex();
        assert_eq!(group_secret_from_text(&hex, Some("n")).unwrap().0, raw);
        assert_eq!(
            group_secret_from_text(&hex.to_uppercase(), None).unwrap().0,
            raw
        );
        assert_eq!(group_secret_from_bytes(&raw, Some("n")).unwrap().0, raw);
    }

    #[test]
    fn other_text_and_other_lengths_are_stretched() {
        let text = "pass phrase";
        let stretched = stretch(text.as_bytes(), None).unwrap();
        assert_eq!(group_secret_from_text(text, None).unwrap(), stretched);
        assert_eq!(
            group_secret_from_bytes(text.as_bytes(), None).unwrap(),
            stretched
        );
        assert_ne!(stretched, Digest::from_text(text));
    }
}
