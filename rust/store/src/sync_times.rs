//! How long a store's syncs (fdatasync of segments and meta, fsync of the
//! directory) take: a histogram with fixed buckets, written by the store's
//! thread and read by whoever reports metrics, without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last bucket is +Inf).
pub const SYNC_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counts of syncs per bucket, their number and their total time.
#[derive(Debug, Default)]
pub struct SyncTimes {
    buckets: [AtomicU64; SYNC_BUCKETS.len() + 1],
    count: AtomicU64,
    total_nanos: AtomicU64,
}

impl SyncTimes {
    /// Records one sync that took `took`.
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = SYNC_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(SYNC_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Syncs per bucket (not cumulative; the last one above every bound),
    /// how many there were and their total seconds.
    pub fn read(&self) -> (Vec<u64>, u64, f64) {
        let buckets = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        let total = self.total_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, count, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sync_lands_in_the_first_bucket_that_holds_it() {
        let times = SyncTimes::default();
        times.record(Duration::from_micros(50));
        times.record(Duration::from_micros(100));
        times.record(Duration::from_millis(3));
        times.record(Duration::from_secs(10));
        let (buckets, count, total) = times.read();
        assert_eq!(buckets[0], 2);
        assert_eq!(buckets[5], 1);
        assert_eq!(buckets[SYNC_BUCKETS.len()], 1);
        assert_eq!(buckets.iter().sum::<u64>(), 4);
        assert_eq!(count, 4);
        assert!((total - 10.00315).abs() < 1e-9);
    }
}
