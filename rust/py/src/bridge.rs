//! Hands Rust futures to asyncio without ever taking the GIL on a tokio
//! thread.
//!
//! A native call spawns its future on the shared tokio runtime at once, or
//! hands a `Completer` to whoever answers it (the consensus worker calls it
//! back), and returns a `Pending`. `mosaik._bridge.watch`, the one way Python awaits
//! it, attaches it to the event loop's `Bridge`: when the future finishes,
//! its outcome is queued as a closure and one byte is written to a socket
//! the loop watches. The loop thread, which holds the GIL anyway, drains the
//! queue, turns outcomes into Python objects and resolves asyncio futures.
//! Cancelling the asyncio future aborts the tokio task, which drops the
//! Rust future.

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mosaik_net::tasks::Counted;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::Failure;

/// Turns a finished future's outcome into a Python object, on the loop thread.
type Completion = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// The tokio runtime every `Network` in this process shares.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("mosaik-io")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Native operations whose outcome was neither delivered nor dropped.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Completions waiting for the loop, and the socket that wakes it.
struct Queue {
    ready: Mutex<Vec<(u64, Completion)>>,
    wake: UnixStream,
}

impl Queue {
    fn push(&self, id: u64, completion: Completion) {
        let was_empty = {
            let mut ready = lock(&self.ready);
            ready.push((id, completion));
            ready.len() == 1
        };
        if was_empty {
            // A full socket already holds a wake-up; nothing is lost.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

enum Slot {
    Running,
    Done(Completion),
    Watched(Arc<Queue>, u64),
    Delivered,
}

/// An operation's slot, and its count in `IN_FLIGHT` until it is delivered,
/// cancelled or dropped.
struct Shared {
    slot: Slot,
    in_flight: Option<Counted>,
}

/// A native operation in flight. Python awaits it through
/// `mosaik._bridge.watch`, which attaches it to its loop's `Bridge`.
#[pyclass(module = "mosaik._native", frozen)]
pub struct Pending {
    shared: Arc<Mutex<Shared>>,
    /// The task to abort on cancel, for an operation that runs as one.
    abort: Option<AbortHandle>,
}

/// Delivers one operation's outcome to its `Pending`, from any thread: the
/// end of a tokio task, or a callback the consensus worker or the apply
/// pool runs (so that no task has to wake up just to pass it on).
pub struct Completer {
    shared: Arc<Mutex<Shared>>,
}

impl Completer {
    /// Hands `outcome` over, unless the operation was cancelled; it is
    /// converted to Python on the loop thread.
    pub fn complete<T>(self, outcome: Result<T, Failure>)
    where
        T: for<'py> IntoPyObject<'py> + Send + 'static,
    {
        self.deliver(move || {
            Box::new(move |py| match outcome {
                Ok(value) => value.into_bound_py_any(py).map(Bound::unbind),
                Err(failure) => Err(failure.into_err()),
            })
        });
    }

    /// Delivers the completion `make` gives, unless the operation already
    /// has its outcome or was cancelled.
    fn deliver(&self, make: impl FnOnce() -> Completion) {
        let mut shared = lock(&self.shared);
        if shared.in_flight.take().is_none() {
            return;
        }
        let completion = make();
        match std::mem::replace(&mut shared.slot, Slot::Delivered) {
            Slot::Watched(queue, id) => queue.push(id, completion),
            Slot::Running => shared.slot = Slot::Done(completion),
            other => shared.slot = other,
        }
    }
}

impl Drop for Completer {
    /// A completer dropped before it completed (whoever was to answer
    /// stopped first: the worker that held its callback, the runtime that
    /// held its task) ends the operation with `Failure::Terminated`, so no
    /// caller waits forever. After `complete` or a cancel this does nothing.
    fn drop(&mut self) {
        self.deliver(|| Box::new(|_| Err(Failure::Terminated.into_err())));
    }
}

/// An operation that no task runs: its outcome comes through the
/// `Completer`, from whatever thread holds it.
pub fn pending() -> (Pending, Completer) {
    let shared = Arc::new(Mutex::new(Shared {
        slot: Slot::Running,
        in_flight: Some(Counted::new(&IN_FLIGHT)),
    }));
    let completer = Completer {
        shared: shared.clone(),
    };
    (
        Pending {
            shared,
            abort: None,
        },
        completer,
    )
}

/// Starts `fut` now; its value is converted to Python on the loop thread.
pub fn spawn<F, T>(fut: F) -> Pending
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let (mut pending, done) = pending();
    let handle = runtime().spawn(async move { done.complete(fut.await) });
    pending.abort = Some(handle.abort_handle());
    pending
}

#[pymethods]
impl Pending {
    /// Aborts the operation: its Rust future (if it runs as a task) is
    /// dropped, and an outcome delivered later (by a callback holding its
    /// `Completer`) is thrown away.
    fn cancel(&self) {
        if let Some(abort) = &self.abort {
            abort.abort();
        }
        let mut shared = lock(&self.shared);
        shared.slot = Slot::Delivered;
        shared.in_flight = None;
    }
}

/// One per asyncio event loop: the queue of finished operations.
#[pyclass(module = "mosaik._native", frozen)]
pub struct Bridge {
    queue: Arc<Queue>,
    wake_reader: UnixStream,
    next_id: AtomicU64,
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Bridge {
            queue: Arc::new(Queue {
                ready: Mutex::new(Vec::new()),
                wake: writer,
            }),
            wake_reader: reader,
            next_id: AtomicU64::new(1),
        })
    }

    /// The descriptor the loop watches for readability.
    fn fileno(&self) -> i32 {
        self.wake_reader.as_raw_fd()
    }

    /// Attaches `pending` to this bridge; returns the id its outcome will
    /// carry, or None if it was awaited before.
    fn watch(&self, pending: &Pending) -> Option<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut shared = lock(&pending.shared);
        match std::mem::replace(&mut shared.slot, Slot::Delivered) {
            Slot::Running => shared.slot = Slot::Watched(self.queue.clone(), id),
            Slot::Done(completion) => self.queue.push(id, completion),
            other => {
                shared.slot = other;
                return None;
            }
        }
        Some(id)
    }

    /// Every finished operation as `(id, ok, value_or_exception)`.
    fn drain(&self, py: Python<'_>) -> Vec<(u64, bool, Py<PyAny>)> {
        // A read that does not fill the buffer took every wake-up byte
        // there was (one more read would only fail with WouldBlock). A byte
        // written after it only wakes the loop once more, for what the
        // queue still holds then.
        let mut sink = [0u8; 256];
        loop {
            match (&self.wake_reader).read(&mut sink) {
                Ok(n) if n == sink.len() => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        let ready = std::mem::take(&mut *lock(&self.queue.ready));
        ready
            .into_iter()
            .map(|(id, completion)| match completion(py) {
                Ok(value) => (id, true, value),
                Err(err) => (id, false, err.into_value(py).into_any()),
            })
            .collect()
    }
}
