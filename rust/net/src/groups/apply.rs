//! The state machine port: the committed work the consensus worker hands to
//! a machine, the thread that applies it, the applied index it publishes and
//! the snapshots it hands back. A machine implements [`Applier`]; the
//! Python bindings implement it for Python classes, tests for Rust ones.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use mosaik_core::RequestKey;
use tokio::sync::{mpsc, watch};

/// Committed entries for the state machine, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyWork {
    /// Apply epoch (see `mosaik_core::Ready::epoch`): handed back with the
    /// snapshot this work asks for.
    pub epoch: u64,
    /// Start over from an empty machine: `entries` begin at index 1.
    pub rebuild: bool,
    /// Start over from this snapshot's state: `entries` continue after it.
    pub restore: Option<Bytes>,
    /// The committed commands, in order.
    pub entries: Vec<Committed>,
    /// Index the machine stands at once this work is applied.
    pub last_index: u64,
    /// Take a snapshot once this work is applied.
    pub take_snapshot: bool,
}

/// One committed command as the machine gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
    /// The request key it was proposed with, if any: the apply layer
    /// applies a key once within the group's `dedupe_window`.
    pub request: Option<RequestKey>,
}

/// A snapshot the apply side took: the apply epoch of the work it followed,
/// the index it stands at and its bytes.
pub type TakenSnapshot = (u64, u64, Bytes);

/// Why a machine stopped applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The machine failed (its state is unknown): logged as an error.
    Failed(String),
    /// The process is exiting.
    Exiting,
}

/// A state machine the worker drives, on a thread of its own.
pub trait Applier: Send + 'static {
    /// Applies `works` in order; for each work, the snapshot taken after it
    /// when it asked for one (`None` when it did not, or none was taken).
    fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt>;

    /// The stack size of the apply thread.
    fn stack_size(&self) -> usize {
        2 << 20
    }
}

/// The worker's side of a running apply thread.
pub(crate) struct ApplyThread {
    pub work: ApplyQueue,
    /// The index the machine stands at; closed once the machine stopped.
    pub applied: watch::Receiver<u64>,
    pub snapshots: mpsc::UnboundedReceiver<TakenSnapshot>,
}

/// The applied index as published, with the apply epoch it counts in: a
/// restart of the machine (restore or rebuild, a new epoch) takes the index
/// back to 0 at once, and work of an older epoch still queued publishes
/// nothing, so no one waiting for an index is answered from a discarded
/// branch of the log.
struct Published {
    epoch: Mutex<u64>,
    applied: watch::Sender<u64>,
}

impl Published {
    fn restart(&self, epoch: u64) {
        let mut current = self.epoch.lock().expect("not poisoned");
        *current = epoch;
        self.applied.send_replace(0);
    }

    fn applied(&self, works: &[ApplyWork]) {
        let current = self.epoch.lock().expect("not poisoned");
        if let Some(work) = works.iter().rev().find(|w| w.epoch == *current) {
            self.applied.send_replace(work.last_index);
        }
    }
}

/// Where the worker queues work for the apply thread. Only the thread
/// holds the published index strongly: once it stops, the watch closes and
/// every wait on it ends.
pub(crate) struct ApplyQueue {
    work: mpsc::UnboundedSender<ApplyWork>,
    published: Weak<Published>,
}

impl ApplyQueue {
    /// Queues `work`; one that restarts the machine first takes the
    /// published index back to 0.
    pub fn send(&self, work: ApplyWork) {
        if work.rebuild || work.restore.is_some() {
            if let Some(published) = self.published.upgrade() {
                published.restart(work.epoch);
            }
        }
        let _ = self.work.send(work);
    }
}

/// Starts the apply thread of group `label`.
pub(crate) fn spawn(label: &str, mut applier: Box<dyn Applier>) -> std::io::Result<ApplyThread> {
    let (work_tx, mut work) = mpsc::unbounded_channel::<ApplyWork>();
    let (applied_tx, applied) = watch::channel(0);
    let published = Arc::new(Published {
        epoch: Mutex::new(0),
        applied: applied_tx,
    });
    let queue = Arc::downgrade(&published);
    let (snapshots_tx, snapshots) = mpsc::unbounded_channel();
    let label = label.to_string();
    std::thread::Builder::new()
        .name(format!("mosaik-apply-{}", &label[..8.min(label.len())]))
        .stack_size(applier.stack_size())
        .spawn(move || {
            while let Some(first) = work.blocking_recv() {
                let mut batch = vec![first];
                while let Ok(more) = work.try_recv() {
                    batch.push(more);
                }
                let applied = applier.apply(&batch).and_then(|taken| {
                    if taken.len() == batch.len() {
                        Ok(taken)
                    } else {
                        Err(Halt::Failed(format!(
                            "the machine answered {} of {} pieces of work",
                            taken.len(),
                            batch.len()
                        )))
                    }
                });
                let taken = match applied {
                    Ok(taken) => taken,
                    Err(Halt::Exiting) => return,
                    // Dropping `applied` ends every wait on this machine
                    // instead of answering from a state nobody knows.
                    Err(Halt::Failed(err)) => {
                        return log::error!(
                            "group {label}: applying up to index {} failed, the state machine \
                             on this node stops (leave and join the group again): {err}",
                            batch.last().map_or(0, |w| w.last_index)
                        );
                    }
                };
                for (w, snapshot) in batch.iter().zip(taken) {
                    if let Some(data) = snapshot.filter(|_| w.take_snapshot) {
                        let _ = snapshots_tx.send((w.epoch, w.last_index, data));
                    }
                }
                published.applied(&batch);
            }
        })?;
    Ok(ApplyThread {
        work: ApplyQueue {
            work: work_tx,
            published: queue,
        },
        applied,
        snapshots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(epoch: u64, last_index: u64) -> ApplyWork {
        ApplyWork {
            epoch,
            rebuild: false,
            restore: None,
            entries: Vec::new(),
            last_index,
            take_snapshot: false,
        }
    }

    #[test]
    fn a_restart_takes_the_applied_index_back_and_older_work_publishes_nothing() {
        let (tx, rx) = watch::channel(0);
        let published = Published {
            epoch: Mutex::new(0),
            applied: tx,
        };
        published.applied(&[work(0, 120)]);
        assert_eq!(*rx.borrow(), 120);
        published.restart(1);
        assert_eq!(*rx.borrow(), 0, "nobody is answered from the cut branch");
        published.applied(&[work(0, 121)]);
        assert_eq!(*rx.borrow(), 0, "work of the discarded epoch");
        published.applied(&[work(0, 122), work(1, 90)]);
        assert_eq!(*rx.borrow(), 90);
    }
}
