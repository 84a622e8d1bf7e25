//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong inside mosaik-core.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A configuration value is out of range; the message names the parameter.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The log store failed; the group cannot go on safely.
    #[error("log storage failed: {0}")]
    Storage(String),
    /// Bytes from the network are not a message of a supported version.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A message could not be serialized.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
