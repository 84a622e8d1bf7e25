//! Group hints: how a member tells the other holders of a group's key what
//! it runs under that key, so that two nodes whose settings differ (and
//! whose `GroupId`s therefore differ) learn why they never bond, and so
//! that a leader learns which machine versions its members run.
//!
//! Everything is keyed by a key derived from the group secret and bound to
//! the author's `PeerId` (and, but for the tag, to the hint's `GroupId` and
//! a nonce drawn for it): an outsider sees bytes that differ from peer to
//! peer, cannot link two members, test a guessed setting or see how two
//! versions differ. It can tell that two groups of one peer share a key
//! (their tags are equal), which lets a holder of the key find its hints
//! with one MAC per entry.

use mosaik_core::{Digest, GroupId, PeerId};

use crate::discovery::GroupHint;

/// Context of the hint key's derivation from a group secret.
const KEY_CONTEXT: &str = "mosaik groups 2026-12 config hint v1";

/// What a group is made of, besides its key: the three inputs of its
/// `GroupId` and the newest machine version this node's code applies
/// (which is not part of the `GroupId`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub consensus: Digest,
    pub machine: Digest,
    pub sync: Digest,
    pub machine_version: u32,
}

/// Names of the parts of [`Settings`] that enter the `GroupId`, in order.
pub const PARTS: [&str; 3] = ["consensus config", "machine signature", "sync settings"];

/// What a hint says to a holder of the key it was made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The [`PARTS`] whose value differs from ours.
    pub differs: Vec<&'static str>,
    /// The newest machine version the author runs.
    pub machine_version: u32,
}

/// The hint key of a group secret, with what it derives.
#[derive(Clone)]
pub struct HintKey(blake3::Hash);

impl HintKey {
    pub fn new(secret: &Digest) -> Self {
        HintKey(blake3::Hash::from(blake3::derive_key(
            KEY_CONTEXT,
            secret.as_bytes(),
        )))
    }

    fn mac(&self, label: &[u8], author: &PeerId, value: &[&[u8]]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(self.0.as_bytes());
        hasher.update(label);
        hasher.update(author.as_bytes());
        for part in value {
            hasher.update(part);
        }
        hasher.finalize()
    }

    /// The tag of every hint `author` makes with this key.
    pub fn tag(&self, author: &PeerId) -> [u8; 16] {
        prefix(self.mac(b"tag", author, &[]))
    }

    /// One 8-byte MAC per part of `settings`, bound to the author and the
    /// group the hint is about (so equal settings of two groups look
    /// different).
    fn settings(&self, author: &PeerId, group: &GroupId, settings: &Settings) -> [u8; 24] {
        let parts = [settings.consensus, settings.machine, settings.sync];
        let mut out = [0u8; 24];
        for (i, (chunk, part)) in out.chunks_mut(8).zip(parts).enumerate() {
            let mac = self.mac(
                b"part",
                author,
                &[group.as_bytes(), &[i as u8], part.as_bytes()],
            );
            chunk.copy_from_slice(&mac.as_bytes()[..8]);
        }
        out
    }

    /// What the version is masked with: fresh for every `nonce`, so two
    /// hints never show how two versions differ.
    fn version_pad(&self, author: &PeerId, group: &GroupId, nonce: &[u8; 8]) -> [u8; 4] {
        prefix(self.mac(b"version", author, &[group.as_bytes(), nonce]))
    }

    /// The hint `author` publishes for `group`, of these `settings`, with
    /// a `nonce` drawn for it.
    pub fn hint(
        &self,
        author: &PeerId,
        group: &GroupId,
        settings: &Settings,
        nonce: [u8; 8],
    ) -> GroupHint {
        let pad = self.version_pad(author, group, &nonce);
        let version = settings.machine_version.to_le_bytes();
        GroupHint {
            tag: self.tag(author),
            nonce,
            settings: self.settings(author, group, settings),
            version: std::array::from_fn(|i| version[i] ^ pad[i]),
        }
    }

    /// What `hint`, published by `author` for `group`, says compared with
    /// our `settings`; `None` if it was not made with this key.
    pub fn read(
        &self,
        author: &PeerId,
        group: &GroupId,
        hint: &GroupHint,
        settings: &Settings,
    ) -> Option<Reading> {
        if hint.tag != self.tag(author) {
            return None;
        }
        let ours = self.settings(author, group, settings);
        let differs = PARTS
            .iter()
            .enumerate()
            .filter(|(i, _)| ours[i * 8..i * 8 + 8] != hint.settings[i * 8..i * 8 + 8])
            .map(|(_, name)| *name)
            .collect();
        let pad = self.version_pad(author, group, &hint.nonce);
        let version: [u8; 4] = std::array::from_fn(|i| hint.version[i] ^ pad[i]);
        Some(Reading {
            differs,
            machine_version: u32::from_le_bytes(version),
        })
    }
}

fn prefix<const N: usize>(hash: blake3::Hash) -> [u8; N] {
    std::array::from_fn(|i| hash.as_bytes()[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(machine: &str, version: u32) -> Settings {
        Settings {
            consensus: Digest::of(b"consensus"),
            machine: Digest::of(machine.as_bytes()),
            sync: Digest::of(b"sync"),
            machine_version: version,
        }
    }

    const GROUP: GroupId = Digest([7; 32]);

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    #[test]
    fn a_holder_of_the_key_reads_the_differing_parts_and_the_version() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let hint = key.hint(&peer(1), &GROUP, &settings("counter_v2", 7), [1; 8]);
        let reading = key.read(&peer(1), &GROUP, &hint, &settings("counter_v1", 1));
        assert_eq!(
            reading,
            Some(Reading {
                differs: vec!["machine signature"],
                machine_version: 7
            })
        );
    }

    #[test]
    fn the_same_settings_differ_in_nothing() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let hint = key.hint(&peer(1), &GROUP, &settings("m", 2), [1; 8]);
        let reading = key
            .read(&peer(1), &GROUP, &hint, &settings("m", 1))
            .unwrap();
        assert!(reading.differs.is_empty());
    }

    #[test]
    fn another_key_does_not_recognise_the_hint() {
        let hint =
            HintKey::new(&Digest::of(b"secret")).hint(&peer(1), &GROUP, &settings("m", 1), [1; 8]);
        let other = HintKey::new(&Digest::of(b"other secret"));
        assert_eq!(other.read(&peer(1), &GROUP, &hint, &settings("m", 1)), None);
    }

    #[test]
    fn a_hint_moved_to_another_author_is_not_recognised() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let hint = key.hint(&peer(1), &GROUP, &settings("m", 1), [1; 8]);
        assert_eq!(key.read(&peer(2), &GROUP, &hint, &settings("m", 1)), None);
    }

    #[test]
    fn hints_of_two_members_with_the_same_settings_share_no_bytes_an_outsider_could_link() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let a = key.hint(&peer(1), &GROUP, &settings("m", 1), [1; 8]);
        let b = key.hint(&peer(2), &GROUP, &settings("m", 1), [1; 8]);
        assert_ne!(a.tag, b.tag);
        assert_ne!(a.settings, b.settings);
        assert_ne!(a.version, b.version);
    }

    #[test]
    fn two_hints_of_one_member_hide_how_their_versions_differ() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let v1 = key.hint(&peer(1), &GROUP, &settings("m", 1), [1; 8]);
        let v2 = key.hint(&peer(1), &GROUP, &settings("m", 2), [2; 8]);
        let xor: Vec<u8> = v1
            .version
            .iter()
            .zip(v2.version)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_ne!(xor, [3, 0, 0, 0]);
        let read = |hint| key.read(&peer(1), &GROUP, hint, &settings("m", 1)).unwrap();
        assert_eq!(
            (read(&v1).machine_version, read(&v2).machine_version),
            (1, 2)
        );
    }

    #[test]
    fn equal_settings_of_two_groups_look_different() {
        let key = HintKey::new(&Digest::of(b"secret"));
        let a = key.hint(&peer(1), &GROUP, &settings("m", 1), [1; 8]);
        let b = key.hint(&peer(1), &Digest([9; 32]), &settings("m", 1), [1; 8]);
        assert_ne!(a.settings, b.settings);
    }
}
