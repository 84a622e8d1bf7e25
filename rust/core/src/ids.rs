//! Identifiers: 32-byte blake3 `Digest`s and the ids built from them.
//!
//! `Digest::from_str`/`from_bytes` take a 64-char hex string or 32 raw bytes
//! as they are and hash anything else; `derive(x) = blake3(self ‖ x)` and
//! `hashed() = blake3(self)` are the two steps every derived id is made of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 32-byte blake3 value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Digest(pub [u8; 32]);

/// Same type as [`Digest`], under the name the API uses for random ids.
pub type UniqueId = Digest;
/// Digest of a network's name.
pub type NetworkId = Digest;
/// Digest derived from a group key, consensus config and state machine.
pub type GroupId = Digest;

impl Digest {
    /// blake3 of arbitrary bytes.
    pub fn of(data: &[u8]) -> Self {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// 32 bytes are taken as they are; anything else is hashed.
    pub fn from_bytes(data: &[u8]) -> Self {
        match <[u8; 32]>::try_from(data) {
            Ok(raw) => Digest(raw),
            Err(_) => Self::of(data),
        }
    }

    /// A 64-char hex string is decoded; anything else is hashed as UTF-8.
    pub fn from_text(text: &str) -> Self {
        match decode_hex32(text) {
            Some(raw) => Digest(raw),
            None => Self::of(text.as_bytes()),
        }
    }

    /// blake3(self ‖ info).
    pub fn derive(&self, info: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.0);
        hasher.update(info);
        Digest(*hasher.finalize().as_bytes())
    }

    /// blake3(self).
    pub fn hashed(&self) -> Self {
        Self::of(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..10])
    }
}

/// A node's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    /// Parses exactly 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        decode_hex32(text).map(PeerId)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..10])
    }
}

/// Lower-case hex of any byte string.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Decodes exactly 64 hex characters (either case) into 32 bytes.
pub fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let raw = text.as_bytes();
    if raw.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_two_bytes_are_taken_as_is() {
        let raw = [7u8; 32];
        assert_eq!(Digest::from_bytes(&raw).0, raw);
    }

    #[test]
    fn other_lengths_are_hashed() {
        assert_eq!(Digest::from_bytes(b"abc"), Digest::of(b"abc"));
        assert_eq!(Digest::from_text("abc"), Digest::of(b"abc"));
    }

    #[test]
    fn hex_round_trips() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::from_text(&d.to_hex()), d);
        assert_eq!(Digest::from_text(&d.to_hex().to_uppercase()), d);
    }

    #[test]
    fn derive_is_hash_of_concatenation() {
        let d = Digest::of(b"a");
        let mut cat = d.0.to_vec();
        cat.extend_from_slice(b"info");
        assert_eq!(d.derive(b"info"), Digest::of(&cat));
        assert_eq!(d.hashed(), Digest::of(&d.0));
    }
}
