//! Behaviour of `DiskLogStore` through its public API and its files.

mod common;
mod model;
mod open_errors;
mod privacy;
mod recovery;
mod round_trip;
mod snapshots;
