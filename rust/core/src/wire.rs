//! The messages the core exchanges with its peers, and their encoding:
//! one version byte (`WIRE_VERSION`) followed by the postcard encoding of a
//! [`Message`]. A decoder refuses other versions, malformed bodies and
//! trailing bytes, and never panics.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{Command, Entry, Index, LogPosition, Term};
use crate::error::{Error, Result};
use crate::ids::Digest;
use crate::storage::SnapshotMeta;

/// Version byte in front of every encoded message.
pub const WIRE_VERSION: u8 = 3;

/// Id a driver gives a proposal or a strong query: unique per node start
/// and growing (a leader that forgot old requests tells them apart by it).
pub type RequestId = u64;

/// A client request as peers see it: the asking node's incarnation (drawn
/// at random each time it starts, because a restarted driver counts its
/// request ids from the start again) and its request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ask {
    pub incarnation: u64,
    pub req: RequestId,
}

/// Everything one core sends to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Append(AppendEntries),
    AppendReply(AppendReply),
    RequestVote(RequestVote),
    Vote(VoteReply),
    /// Would you vote for me in `term`? Changes nothing on the receiver.
    PreVote(RequestVote),
    /// The answer to a `PreVote`; its `term` is the one asked about.
    PreVoteReply(VoteReply),
    /// Commands a follower forwards to the leader of `term`; a node that
    /// does not lead that very term refuses them (so a refusal is final).
    Forward {
        ask: Ask,
        term: Term,
        commands: Vec<Command>,
    },
    /// The answer to a `Forward`.
    ForwardReply {
        ask: Ask,
        outcome: ForwardOutcome,
    },
    /// A strong query's read-index request, forwarded to the leader.
    ReadIndex {
        ask: Ask,
    },
    /// The confirmed read index, or `None` if the receiver is not leading.
    ReadIndexReply {
        ask: Ask,
        index: Option<Index>,
    },
    Sync(SyncMessage),
}

/// Replication and heartbeat from the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    pub term: Term,
    /// Position right before `entries`, which the follower must hold.
    pub prev: LogPosition,
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub commit: Index,
    /// First index the leader's log holds (entries before are compacted).
    pub first: Index,
    /// Heartbeat round this message belongs to (read-index confirmation).
    pub round: u64,
    /// To a learner: you hold an entry this leader committed in its own
    /// term, and a quorum confirmed its leadership since; count from now on.
    pub admit: bool,
}

/// A follower's answer to [`AppendEntries`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    pub term: Term,
    /// Echo of the round of the message answered.
    pub round: u64,
    pub outcome: AppendOutcome,
    /// The sender is an observer and never counts toward a quorum.
    pub observer: bool,
    /// The sender is catching up with log replay; send it heartbeats only.
    pub syncing: bool,
    /// The sender is a learner (started empty, not caught up yet): it counts toward nothing.
    pub learner: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `last`.
    Accepted { last: Index },
    /// Mismatch; the leader should retry from `hint`.
    Rejected { hint: Index },
}

/// A candidate's request for votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVote {
    pub term: Term,
    pub last: LogPosition,
}

/// A voter's answer to [`RequestVote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    pub term: Term,
    pub vote: Vote,
    pub observer: bool,
    /// The sender is a learner: its vote counts only in a group's first
    /// election, or for the lineage that election began.
    pub learner: bool,
    /// The sender's life (`HardState::life`), recorded when it votes in a
    /// first election.
    pub life: u64,
}

/// Granted: same log, vote given. Abstained: the voter's log is behind, its
/// vote is bound to this candidate but it leaves the quorum denominator.
/// Denied: voted for another candidate this term, or the candidate is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    Granted,
    Denied,
    Abstained,
}

/// What became of forwarded commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardOutcome {
    /// The leader gave them these indices.
    Assigned(Assignment),
    /// Certainly not taken: the receiver does not lead the term they were
    /// sent to and never took them in it.
    Refused,
    /// The receiver no longer knows whether it took them.
    Unknown,
}

/// Indices `first..=last` the leader gave to forwarded commands, in `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub term: Term,
    pub first: Index,
    pub last: Index,
}

/// LogReplaySync traffic between a lagging node and its providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// Which committed range do you hold?
    AvailabilityRequest,
    /// The sender holds committed entries `first..=last` (`last` 0: none)
    /// and the snapshot `snapshot`, if it keeps one.
    Availability {
        first: Index,
        last: Index,
        snapshot: Option<SnapshotMeta>,
    },
    /// Send entries `from..=to`.
    Fetch { from: Index, to: Index },
    /// Entries starting at `from`; `prev_term` is the term at `from - 1`.
    /// Empty when the provider no longer has them.
    Batch {
        from: Index,
        prev_term: Term,
        entries: Vec<Entry>,
    },
    /// Send `len` bytes at `offset` of the snapshot with this digest.
    SnapshotFetch {
        digest: Digest,
        offset: u64,
        len: u64,
    },
    /// Bytes at `offset` of the snapshot; empty when the sender no longer has it.
    SnapshotPiece {
        digest: Digest,
        offset: u64,
        data: Bytes,
    },
}

/// Version byte plus postcard body.
pub fn encode(message: &Message) -> Result<Vec<u8>> {
    let out = vec![WIRE_VERSION];
    postcard::to_extend(message, out).map_err(|e| Error::Encode(e.to_string()))
}

/// Inverse of [`encode`]; refuses unknown versions and trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| Error::Decode("empty message".into()))?;
    if version != WIRE_VERSION {
        return Err(Error::Decode(format!("unsupported wire version {version}")));
    }
    let (message, rest) =
        postcard::take_from_bytes(body).map_err(|e| Error::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use crate::rng::Rng;

    fn samples() -> Vec<Message> {
        let entry = Entry {
            term: 3,
            index: 9,
            kind: EntryKind::Command(Bytes::from_static(b"cmd")),
        };
        vec![
            Message::Append(AppendEntries {
                term: 3,
                prev: LogPosition::new(2, 8),
                entries: vec![
                    entry.clone(),
                    Entry {
                        term: 3,
                        index: 10,
                        kind: EntryKind::Marker,
                    },
                ],
                commit: 7,
                first: 1,
                round: 4,
                admit: false,
            }),
            Message::AppendReply(AppendReply {
                term: 3,
                round: 4,
                outcome: AppendOutcome::Rejected { hint: 5 },
                observer: true,
                syncing: false,
                learner: true,
            }),
            Message::RequestVote(RequestVote {
                term: 4,
                last: LogPosition::new(3, 10),
            }),
            Message::Vote(VoteReply {
                term: 4,
                vote: Vote::Abstained,
                observer: false,
                learner: false,
                life: 9,
            }),
            Message::PreVote(RequestVote {
                term: 5,
                last: LogPosition::new(3, 10),
            }),
            Message::PreVoteReply(VoteReply {
                term: 5,
                vote: Vote::Granted,
                observer: false,
                learner: true,
                life: 9,
            }),
            Message::Forward {
                ask: Ask {
                    incarnation: 7,
                    req: 1,
                },
                term: 4,
                commands: vec![Command::from(Bytes::from_static(b"a"))],
            },
            Message::ForwardReply {
                ask: Ask {
                    incarnation: 7,
                    req: 1,
                },
                outcome: ForwardOutcome::Assigned(Assignment {
                    term: 4,
                    first: 11,
                    last: 11,
                }),
            },
            Message::ForwardReply {
                ask: Ask {
                    incarnation: 7,
                    req: 1,
                },
                outcome: ForwardOutcome::Unknown,
            },
            Message::ReadIndex {
                ask: Ask {
                    incarnation: 7,
                    req: 2,
                },
            },
            Message::ReadIndexReply {
                ask: Ask {
                    incarnation: 7,
                    req: 2,
                },
                index: None,
            },
            Message::Sync(SyncMessage::Availability {
                first: 1,
                last: 9,
                snapshot: None,
            }),
            Message::Sync(SyncMessage::Availability {
                first: 5,
                last: 9,
                snapshot: Some(SnapshotMeta {
                    position: LogPosition::new(2, 6),
                    digest: Digest::of(b"state"),
                    size: 5,
                }),
            }),
            Message::Sync(SyncMessage::SnapshotFetch {
                digest: Digest::of(b"state"),
                offset: 0,
                len: 5,
            }),
            Message::Sync(SyncMessage::SnapshotPiece {
                digest: Digest::of(b"state"),
                offset: 0,
                data: Bytes::from_static(b"state"),
            }),
            Message::Sync(SyncMessage::Batch {
                from: 9,
                prev_term: 2,
                entries: vec![entry],
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(decode(&encode(&message).unwrap()).unwrap(), message);
        }
    }

    #[test]
    fn other_versions_and_trailing_bytes_are_refused() {
        let mut bytes = encode(&Message::ReadIndex {
            ask: Ask {
                incarnation: 1,
                req: 1,
            },
        })
        .unwrap();
        bytes.push(0);
        assert!(decode(&bytes).is_err());
        bytes.pop();
        bytes[0] = WIRE_VERSION + 1;
        assert!(decode(&bytes).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        let mut rng = Rng::new(0xDEC0DE);
        let encoded: Vec<Vec<u8>> = samples().iter().map(|m| encode(m).unwrap()).collect();
        for round in 0..20_000u64 {
            let mut bytes = if round % 2 == 0 {
                let len = rng.below(64) as usize;
                (0..len).map(|_| rng.next_u64() as u8).collect()
            } else {
                encoded[rng.below(encoded.len() as u64) as usize].clone()
            };
            if !bytes.is_empty() {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next_u64() as u8;
                bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
            }
            let _ = decode(&bytes);
        }
    }
}
