//! mosaik-store: a durable `LogStore` for mosaik kept in one directory.
//!
//! [`DiskLogStore`] keeps the log in segment files of checksummed records,
//! the hard state and log base in a two-slot `meta` file and the latest
//! snapshot in a snapshot file. Opening it takes the directory's lock,
//! cuts a torn tail off the log and refuses a log damaged anywhere else.

mod cache;
mod dir;
mod error;
mod file;
mod index;
mod meta;
mod record;
mod recovery;
mod segment;
mod snapshot_file;
mod store;
mod sync_times;

pub use error::StoreError;
pub use recovery::{Recovery, TornTail};
pub use store::{DiskLogStore, DiskOptions};
pub use sync_times::{SyncTimes, SYNC_BUCKETS};
