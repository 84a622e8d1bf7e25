//! The apply thread of a group: the one place where committed commands
//! enter Python. Each wake-up takes the GIL once for every batch waiting,
//! hands them to the group's replica (`mosaik._replica.Replica.apply`, which
//! also restores and takes snapshots), passes the snapshots taken back to
//! the worker, and then publishes the index the machine stands at.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mosaik_net::groups::{ApplyWork, TakenSnapshot};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokio::sync::{mpsc, watch};

use crate::cursor::PyApplyContext;

/// The stack of an apply thread: what CPython's own threads get on Linux
/// (glibc's default, from `ulimit -s`) rather than Rust's 2 MiB. The state
/// machine's code runs here, and C-level recursion in it (a deep `repr`,
/// `json.dumps`, a decode at `mosaik.codec.MAX_DEPTH`) that works on the
/// main thread must not overflow here: that would kill every node at the
/// same index. Only the pages touched are ever committed.
const APPLY_STACK_BYTES: usize = 8 << 20;

/// Set when the interpreter exits; apply threads then stop before taking
/// the GIL again.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Called from an `atexit` hook.
#[pyfunction]
pub fn stop_appliers() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// True once the interpreter is exiting: threads must not take the GIL.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// What one group's apply thread works with.
pub struct Applier {
    pub label: String,
    /// `mosaik._replica.Replica` of the group.
    pub replica: Py<PyAny>,
    pub work: mpsc::UnboundedReceiver<ApplyWork>,
    pub applied: watch::Sender<u64>,
    pub snapshots: mpsc::UnboundedSender<TakenSnapshot>,
}

/// Starts the apply thread of one group.
pub fn spawn_applier(mut applier: Applier) -> std::io::Result<()> {
    let label = applier.label.clone();
    std::thread::Builder::new()
        .name(format!("mosaik-apply-{}", &label[..8.min(label.len())]))
        .stack_size(APPLY_STACK_BYTES)
        .spawn(move || {
            while let Some(first) = applier.work.blocking_recv() {
                let mut batch = vec![first];
                while let Ok(more) = applier.work.try_recv() {
                    batch.push(more);
                }
                if stopping() {
                    return;
                }
                let last = batch.last().map_or(0, |w| w.last_index);
                if !Python::attach(|py| applier.apply_all(py, batch)) {
                    // Dropping `applied` ends every wait on this machine
                    // with GroupTerminated instead of answering from a
                    // state nobody knows.
                    return;
                }
                applier.applied.send_replace(last);
            }
        })?;
    Ok(())
}

impl Applier {
    /// Applies the batch; false when the machine failed and stopped.
    fn apply_all(&self, py: Python<'_>, batch: Vec<ApplyWork>) -> bool {
        for work in batch {
            match self.apply_one(py, &work) {
                Ok(Some(snapshot)) => {
                    let _ = self.snapshots.send((work.epoch, work.last_index, snapshot));
                }
                Ok(None) => {}
                Err(err) => {
                    log::error!(
                        "group {}: applying up to index {} failed, the state machine on \
                         this node stops (leave and join the group again): {err}",
                        self.label,
                        work.last_index
                    );
                    return false;
                }
            }
        }
        true
    }

    /// `Replica.apply(rebuild, restore, entries, last, snapshot)`: the
    /// snapshot's bytes when one was asked for and taken.
    fn apply_one(&self, py: Python<'_>, work: &ApplyWork) -> PyResult<Option<Bytes>> {
        let entries = entries_list(py, work)?;
        let restore = work.restore.as_ref().map(|data| PyBytes::new(py, data));
        let args = (
            work.rebuild,
            restore,
            entries,
            work.last_index,
            work.snapshot,
        );
        let taken = self.replica.call_method1(py, "apply", args)?;
        let taken = taken.bind(py);
        if taken.is_none() {
            return Ok(None);
        }
        let bytes = taken.cast::<PyBytes>()?;
        Ok(Some(Bytes::copy_from_slice(bytes.as_bytes())))
    }
}

/// `[(ApplyContext, bytes), ...]` of the work's commands.
fn entries_list<'py>(py: Python<'py>, work: &ApplyWork) -> PyResult<Bound<'py, PyList>> {
    let items = work.entries.iter().map(|(index, term, data)| {
        let ctx = Bound::new(py, PyApplyContext::at(*term, *index))?.into_any();
        PyTuple::new(py, [ctx, PyBytes::new(py, data).into_any()])
    });
    PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
}
