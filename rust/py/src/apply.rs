//! The apply thread of a group: the one place where committed commands
//! enter Python. Each wake-up takes the GIL once for every batch waiting,
//! hands them to the group's replica (`mosaik._replica.Replica.apply`), and
//! then publishes the index the machine stands at.

use std::sync::atomic::{AtomicBool, Ordering};

use mosaik_net::groups::ApplyWork;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokio::sync::{mpsc, watch};

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

/// Starts the apply thread of one group.
pub fn spawn_applier(
    label: String,
    replica: Py<PyAny>,
    mut work: mpsc::UnboundedReceiver<ApplyWork>,
    applied: watch::Sender<u64>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("mosaik-apply-{}", &label[..8.min(label.len())]))
        .spawn(move || {
            while let Some(first) = work.blocking_recv() {
                let mut batch = vec![first];
                while let Ok(more) = work.try_recv() {
                    batch.push(more);
                }
                if stopping() {
                    return;
                }
                let last = batch.last().map_or(0, |w| w.last_index);
                Python::attach(|py| apply_all(py, &label, &replica, batch));
                applied.send_replace(last);
            }
        })?;
    Ok(())
}

fn apply_all(py: Python<'_>, label: &str, replica: &Py<PyAny>, batch: Vec<ApplyWork>) {
    for work in batch {
        let outcome = entries_list(py, &work).and_then(|entries| {
            replica.call_method1(py, "apply", (work.rebuild, entries, work.last_index))
        });
        if let Err(err) = outcome {
            log::error!(
                "group {label}: applying up to index {} failed: {err}",
                work.last_index
            );
        }
    }
}

fn entries_list<'py>(py: Python<'py>, work: &ApplyWork) -> PyResult<Bound<'py, PyList>> {
    let items = work.entries.iter().map(|(index, term, data)| {
        PyTuple::new(
            py,
            [
                index.into_pyobject(py)?.into_any(),
                term.into_pyobject(py)?.into_any(),
                PyBytes::new(py, data).into_any(),
            ],
        )
    });
    PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
}
