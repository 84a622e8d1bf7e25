//! Hostile-peer tests: what an outsider can do to a node's discovery and
//! transport when it can reach the node's UDP port, holds only key pairs it
//! made itself and knows the network's name. One module per attack; each
//! test prints what it measured as greppable `hostile: ...` lines.

mod amplification;
mod common;
mod exchanges;
mod oversized_entry;
mod signature_flood;
mod unread_streams;
