//! The Python side of the apply port (`mosaik_net::groups::Applier`): the
//! one place where committed commands enter Python. A thread of the network
//! layer's apply pool calls it with every batch waiting; it takes the GIL once and
//! hands them to the group's replica (`mosaik._replica.Replica.apply`, which
//! also restores and takes snapshots).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mosaik_net::groups::{Applier, ApplyWork, Halt};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use crate::cursor::PyApplyContext;

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

thread_local! {
    /// Whether this thread keeps a Python thread state of its own.
    static KEPT: Cell<bool> = const { Cell::new(false) };
}

/// Gives the calling thread (one of the apply pool's, which live as long as
/// the process) a Python thread state that outlives each attach. Without
/// one, every batch of work made a thread state and destroyed it again on
/// release: a `gettid` and its frame stack mapped and unmapped, each time,
/// on every node's path from commit to apply. It ends with the interpreter.
fn keep_thread_state() {
    KEPT.with(|kept| {
        if !kept.get() {
            // SAFETY: the interpreter is initialized and not exiting (the
            // caller checked `stopping()`), and an apply pool thread never
            // holds the GIL when it calls its machine. It takes the GIL with
            // a new thread state and releases it at once, which leaves that
            // state registered for the thread (its count stays at one), so
            // later attaches only take the GIL.
            unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            kept.set(true);
        }
    });
}

/// Drops what `threading.local` objects hold for this thread, as the end of
/// a thread state did when each batch had one: the next batch, perhaps
/// another group's, finds none of it.
fn forget_thread_locals(_py: Python<'_>) {
    // SAFETY: the thread is attached (`_py`), and the dictionary is borrowed.
    unsafe {
        let dict = ffi::PyThreadState_GetDict();
        if !dict.is_null() {
            ffi::PyDict_Clear(dict);
        }
    }
}

/// A group's Python state machine behind the apply port: its
/// `mosaik._replica.Replica`.
pub struct PyApplier {
    pub replica: Py<PyAny>,
}

impl Applier for PyApplier {
    /// Takes the GIL once for every batch waiting.
    fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt> {
        if stopping() {
            return Err(Halt::Exiting);
        }
        keep_thread_state();
        Python::attach(|py| {
            let taken = self.apply_all(py, works);
            forget_thread_locals(py);
            taken.map_err(|err| Halt::Failed(err.to_string()))
        })
    }
}

impl PyApplier {
    /// Applies every piece of work inside a new, empty `contextvars.Context`,
    /// so that what a machine sets in context variables (`decimal`'s context
    /// among them) lasts for this batch only and no other group's machine,
    /// run on this thread next, sees it.
    fn apply_all(&self, py: Python<'_>, works: &[ApplyWork]) -> PyResult<Vec<Option<Bytes>>> {
        static CONTEXT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        let run = CONTEXT
            .import(py, "contextvars", "Context")?
            .call0()?
            .getattr("run")?;
        let apply = self.replica.bind(py).getattr("apply")?;
        works
            .iter()
            .map(|work| apply_one(py, &run, &apply, work))
            .collect()
    }
}

/// `Replica.apply(rebuild, restore, entries, last, take_snapshot)`, called
/// through `run` (a context's): the snapshot's bytes when one was asked for
/// and taken.
fn apply_one(
    py: Python<'_>,
    run: &Bound<'_, PyAny>,
    apply: &Bound<'_, PyAny>,
    work: &ApplyWork,
) -> PyResult<Option<Bytes>> {
    let entries = entries_list(py, work)?;
    let restore = work.restore.as_ref().map(|data| PyBytes::new(py, data));
    let args = (
        apply,
        work.rebuild,
        restore,
        entries,
        work.last_index,
        work.take_snapshot,
    );
    let taken = run.call1(args)?;
    if taken.is_none() {
        return Ok(None);
    }
    let bytes = taken.cast::<PyBytes>()?;
    Ok(Some(Bytes::copy_from_slice(bytes.as_bytes())))
}

/// `[(ApplyContext, bytes, request), ...]` of the work's commands, where
/// `request` is `None` or the `(id, seq)` the command was proposed with.
fn entries_list<'py>(py: Python<'py>, work: &ApplyWork) -> PyResult<Bound<'py, PyList>> {
    let items = work.entries.iter().map(|committed| {
        let ctx = Bound::new(py, PyApplyContext::at(committed.term, committed.index))?.into_any();
        let request = match &committed.request {
            None => py.None().into_bound(py),
            Some(key) => (PyBytes::new(py, &key.id), key.seq)
                .into_pyobject(py)?
                .into_any(),
        };
        PyTuple::new(
            py,
            [ctx, PyBytes::new(py, &committed.data).into_any(), request],
        )
    });
    PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
}
