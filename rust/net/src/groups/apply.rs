//! The state machine port: the committed work the consensus worker hands to
//! a machine, the pool of threads that applies every group's work (each
//! machine's in order, on one thread at a time), the applied index it
//! publishes and the snapshots it hands back. A machine implements
//! [`Applier`]; the Python bindings implement it for Python classes, tests
//! for Rust ones.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

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

/// A state machine the worker drives, on the apply pool's threads.
pub trait Applier: Send + 'static {
    /// Applies `works` in order; for each work, the snapshot taken after it
    /// when it asked for one (`None` when it did not, or none was taken).
    fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt>;
}

/// The worker's side of a machine in the apply pool.
pub(crate) struct ApplyThread {
    pub work: ApplyQueue,
    /// The index the machine stands at; closed once the machine stopped.
    pub applied: watch::Receiver<u64>,
    pub on_applied: OnApplied,
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
    /// Callbacks by the index they wait for, run by the thread that
    /// publishes it (see [`OnApplied`]).
    waiting: Mutex<BTreeMap<u64, Vec<AppliedCallback>>>,
}

/// Run once the machine has applied an index (`true`), or when it stopped
/// before (`false`).
pub type AppliedCallback = Box<dyn FnOnce(bool) + Send>;

impl Published {
    fn new(applied: watch::Sender<u64>) -> Self {
        Published {
            epoch: Mutex::new(0),
            applied,
            waiting: Mutex::default(),
        }
    }

    fn restart(&self, epoch: u64) {
        let mut current = lock(&self.epoch);
        *current = epoch;
        self.applied.send_replace(0);
    }

    fn applied(&self, works: &[ApplyWork]) {
        // The callbacks due are taken under the epoch lock, so a restart
        // between publishing and taking them cannot have one answered from
        // the discarded epoch; they run once both locks are released.
        let due = {
            let current = lock(&self.epoch);
            let Some(work) = works.iter().rev().find(|w| w.epoch == *current) else {
                return;
            };
            self.applied.send_replace(work.last_index);
            let mut waiting = lock(&self.waiting);
            let later = waiting.split_off(&(work.last_index + 1));
            std::mem::replace(&mut *waiting, later)
        };
        run_callbacks(due.into_values().flatten(), true);
    }

    /// Runs `callback` once `index` is applied: now, if it is.
    fn on_applied(&self, index: u64, callback: AppliedCallback) {
        let mut waiting = lock(&self.waiting);
        if *self.applied.borrow() >= index {
            drop(waiting);
            return callback(true);
        }
        waiting.entry(index).or_default().push(callback);
    }
}

impl Drop for Published {
    /// The machine stopped: nothing it has not applied yet ever will be.
    fn drop(&mut self) {
        let waiting = std::mem::take(&mut *lock(&self.waiting));
        run_callbacks(waiting.into_values().flatten(), false);
    }
}

/// Runs each callback; one that panics does not keep the others from
/// running or take the pool thread down.
fn run_callbacks(callbacks: impl Iterator<Item = AppliedCallback>, applied: bool) {
    for callback in callbacks {
        if panic::catch_unwind(AssertUnwindSafe(|| callback(applied))).is_err() {
            log::error!("a callback waiting for an applied index panicked");
        }
    }
}

/// Where callers wait for the machine to apply an index without a task of
/// their own: the thread that publishes the index runs their callback.
#[derive(Clone)]
pub struct OnApplied(Weak<Published>);

impl OnApplied {
    /// Runs `callback(true)` once the machine has applied `index` (at once
    /// if it has), or `callback(false)` once it stopped without.
    pub fn then(&self, index: u64, callback: AppliedCallback) {
        match self.0.upgrade() {
            Some(published) => published.on_applied(index, callback),
            None => callback(false),
        }
    }
}

/// Threads of the process's apply pool: every group's machine is applied
/// on one of them, one batch at a time, so the thread count does not grow
/// with the number of groups. Python machines hold the GIL while they
/// apply, so more threads would only wait for it.
const POOL_THREADS: usize = 2;

/// The stack of an apply thread: what CPython's own threads get on Linux
/// (glibc's default, from `ulimit -s`) rather than Rust's 2 MiB. A state
/// machine's code runs here, and C-level recursion in it (a deep `repr`,
/// `json.dumps`, a decode at `mosaik.codec.MAX_DEPTH`) that works on the
/// main thread must not overflow here: that would kill every node at the
/// same index. Only the pages touched are ever committed.
const POOL_STACK_BYTES: usize = 8 << 20;

/// Most pieces of work one machine applies before the pool thread moves on
/// to the next machine ready.
const MAX_RUN: usize = 256;

/// One group's machine in the pool: the work queued for it and whether it
/// is in the pool's ready queue (or being applied), so that at most one
/// thread applies it at a time and its work stays in order.
struct Machine {
    label: String,
    queue: Mutex<Queued>,
    /// `None` once the machine stopped.
    applier: Mutex<Option<Box<dyn Applier>>>,
    /// The only strong reference: dropped when the machine stops, which
    /// ends every wait on its applied index.
    published: Mutex<Option<Arc<Published>>>,
    snapshots: mpsc::UnboundedSender<TakenSnapshot>,
}

#[derive(Default)]
struct Queued {
    works: Vec<ApplyWork>,
    scheduled: bool,
}

impl Machine {
    /// Queues `work`, and the machine in the pool unless it is there.
    fn enqueue(self: &Arc<Self>, work: ApplyWork) {
        let schedule = {
            let mut queued = lock(&self.queue);
            queued.works.push(work);
            !std::mem::replace(&mut queued.scheduled, true)
        };
        if schedule {
            pool().ready(self.clone());
        }
    }

    /// Applies what is queued as one batch (at most `MAX_RUN` pieces, so
    /// that a machine catching up does not keep a thread from the others);
    /// back in the pool if more is queued.
    fn run(self: Arc<Self>) {
        let batch: Vec<ApplyWork> = {
            let mut queued = lock(&self.queue);
            let take = queued.works.len().min(MAX_RUN);
            queued.works.drain(..take).collect()
        };
        if !batch.is_empty() {
            self.apply(&batch);
        }
        let again = {
            let mut queued = lock(&self.queue);
            queued.scheduled = !queued.works.is_empty();
            queued.scheduled
        };
        if again {
            pool().ready(self);
        }
    }

    fn apply(&self, batch: &[ApplyWork]) {
        let applied = {
            let mut applier = lock(&self.applier);
            let Some(machine) = applier.as_mut() else {
                return;
            };
            // A machine that panics stops like one that failed, and the
            // pool thread lives on for the other groups.
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| machine.apply(batch)))
                .unwrap_or_else(|_| Err(Halt::Failed("the machine panicked".into())))
                .and_then(|taken| {
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
            if outcome.is_err() {
                *applier = None;
            }
            outcome
        };
        match applied {
            Ok(taken) => {
                for (w, snapshot) in batch.iter().zip(taken) {
                    if let Some(data) = snapshot.filter(|_| w.take_snapshot) {
                        let _ = self.snapshots.send((w.epoch, w.last_index, data));
                    }
                }
                let published = lock(&self.published).clone();
                if let Some(published) = published {
                    published.applied(batch);
                }
            }
            Err(halt) => {
                if let Halt::Failed(err) = halt {
                    log::error!(
                        "group {}: applying up to index {} failed, the state machine on this \
                         node stops (leave and join the group again): {err}",
                        self.label,
                        batch.last().map_or(0, |w| w.last_index)
                    );
                }
                // Dropping the published index ends every wait on this
                // machine instead of answering from a state nobody knows.
                let published = lock(&self.published).take();
                drop(published);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The apply threads and the machines ready for one of them, in the order
/// they became ready.
struct Pool {
    ready: Mutex<VecDeque<Arc<Machine>>>,
    available: Condvar,
}

impl Pool {
    fn ready(&self, machine: Arc<Machine>) {
        lock(&self.ready).push_back(machine);
        self.available.notify_one();
    }

    fn serve(&self) {
        loop {
            let machine = {
                let mut ready = lock(&self.ready);
                loop {
                    if let Some(machine) = ready.pop_front() {
                        break machine;
                    }
                    ready = self
                        .available
                        .wait(ready)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            machine.run();
        }
    }
}

/// The process's apply pool (`start_pool` starts its threads).
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        ready: Mutex::new(VecDeque::new()),
        available: Condvar::new(),
    })
}

/// Starts the pool's threads on first use; an error says why they could
/// not be (every later call says the same).
fn start_pool() -> std::io::Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        let pool = pool();
        (0..POOL_THREADS).try_for_each(|n| {
            std::thread::Builder::new()
                .name(format!("mosaik-apply-{n}"))
                .stack_size(POOL_STACK_BYTES)
                .spawn(move || pool.serve())
                .map(|_| ())
                .map_err(|e| format!("cannot start an apply thread: {e}"))
        })
    });
    started.clone().map_err(std::io::Error::other)
}

/// Where the worker queues work for its machine. Only the machine holds
/// the published index strongly: once it stops, the watch closes and every
/// wait on it ends. Work queued when the worker ends is still applied.
pub(crate) struct ApplyQueue {
    machine: Arc<Machine>,
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
        self.machine.enqueue(work);
    }
}

/// Enters the machine of group `label` in the apply pool.
pub(crate) fn start(label: &str, applier: Box<dyn Applier>) -> std::io::Result<ApplyThread> {
    start_pool()?;
    let (applied_tx, applied) = watch::channel(0);
    let published = Arc::new(Published::new(applied_tx));
    let weak = Arc::downgrade(&published);
    let (snapshots_tx, snapshots) = mpsc::unbounded_channel();
    let machine = Arc::new(Machine {
        label: label.to_string(),
        queue: Mutex::default(),
        applier: Mutex::new(Some(applier)),
        published: Mutex::new(Some(published)),
        snapshots: snapshots_tx,
    });
    Ok(ApplyThread {
        work: ApplyQueue {
            machine,
            published: weak.clone(),
        },
        applied,
        on_applied: OnApplied(weak),
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
        let published = Published::new(tx);
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

#[cfg(test)]
mod pool_tests {
    use super::*;

    /// Records the last index of every work it applied, on shared state.
    struct Recorder(Arc<Mutex<Vec<u64>>>);

    impl Applier for Recorder {
        fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt> {
            lock(&self.0).extend(works.iter().map(|w| w.last_index));
            Ok(vec![None; works.len()])
        }
    }

    /// Fails at `at`.
    struct FailsAt(u64);

    impl Applier for FailsAt {
        fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt> {
            if works.iter().any(|w| w.last_index >= self.0) {
                return Err(Halt::Failed("boom".into()));
            }
            Ok(vec![None; works.len()])
        }
    }

    fn work(last_index: u64) -> ApplyWork {
        ApplyWork {
            epoch: 0,
            rebuild: false,
            restore: None,
            entries: Vec::new(),
            last_index,
            take_snapshot: false,
        }
    }

    fn wait_applied(rx: &mut watch::Receiver<u64>, index: u64) -> Result<(), ()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                rx.wait_for(|a| *a >= index),
            )
            .await
            .expect("applied within 10 s")
            .map(|_| ())
            .map_err(|_| ())
        })
    }

    #[test]
    fn many_machines_share_the_pool_and_each_applies_its_work_in_order() {
        let machines: Vec<_> = (0..64)
            .map(|n| {
                let seen = Arc::new(Mutex::new(Vec::new()));
                let thread = start(&format!("group{n}"), Box::new(Recorder(seen.clone()))).unwrap();
                (thread, seen)
            })
            .collect();
        for index in 1..=200 {
            for (thread, _) in &machines {
                thread.work.send(work(index));
            }
        }
        for (mut thread, seen) in machines {
            wait_applied(&mut thread.applied, 200).unwrap();
            assert_eq!(*lock(&seen), (1..=200).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_failed_machine_stops_alone_and_its_waits_end() {
        let mut failing = start("failing", Box::new(FailsAt(3))).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut healthy = start("healthy", Box::new(Recorder(seen.clone()))).unwrap();
        for index in 1..=5 {
            failing.work.send(work(index));
            healthy.work.send(work(index));
        }
        assert_eq!(wait_applied(&mut failing.applied, 5), Err(()));
        wait_applied(&mut healthy.applied, 5).unwrap();
        assert_eq!(*lock(&seen), vec![1, 2, 3, 4, 5]);
    }

    /// Panics at its first work.
    struct Panics;

    impl Applier for Panics {
        fn apply(&mut self, _: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt> {
            panic!("a bug in a Rust machine");
        }
    }

    #[test]
    fn a_machine_that_panics_stops_and_the_pool_serves_the_others() {
        let mut panicking = Vec::new();
        // More than the pool has threads: none of them may be lost.
        for n in 0..POOL_THREADS + 1 {
            let machine = start(&format!("panics{n}"), Box::new(Panics)).unwrap();
            machine.work.send(work(1));
            panicking.push(machine);
        }
        for machine in &mut panicking {
            assert_eq!(wait_applied(&mut machine.applied, 1), Err(()));
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut healthy = start("after", Box::new(Recorder(seen.clone()))).unwrap();
        healthy.work.send(work(1));
        wait_applied(&mut healthy.applied, 1).unwrap();
    }

    /// A callback that reports into `tx`.
    fn report(tx: &std::sync::mpsc::Sender<(u64, bool)>, index: u64) -> AppliedCallback {
        let tx = tx.clone();
        Box::new(move |applied| {
            let _ = tx.send((index, applied));
        })
    }

    #[test]
    fn callbacks_run_once_their_index_is_applied_or_the_machine_stops() {
        let timeout = std::time::Duration::from_secs(10);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut healthy = start("callbacks", Box::new(Recorder(Arc::default()))).unwrap();
        healthy.on_applied.then(3, report(&tx, 3));
        healthy.work.send(work(2));
        healthy.work.send(work(3));
        assert_eq!(rx.recv_timeout(timeout), Ok((3, true)));
        wait_applied(&mut healthy.applied, 3).unwrap();
        // Already applied: at once, on the caller's thread.
        healthy.on_applied.then(2, report(&tx, 2));
        assert_eq!(rx.try_recv(), Ok((2, true)));
        let failing = start("stops", Box::new(FailsAt(2))).unwrap();
        failing.on_applied.then(5, report(&tx, 5));
        failing.work.send(work(2));
        assert_eq!(rx.recv_timeout(timeout), Ok((5, false)));
        failing.on_applied.then(6, report(&tx, 6));
        assert_eq!(rx.try_recv(), Ok((6, false)));
    }
}
