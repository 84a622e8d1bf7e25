//! Background tasks owned by one `Network`, stopped together on close, and
//! a process-wide count of live tasks so tests can see that none leaked.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::task::JoinSet;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Tasks spawned through any `TaskSet` that have not finished or been dropped.
pub fn live_tasks() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Counts itself in a process-wide counter while it lives: one more when
/// made, one fewer when dropped. Moved into a task, it counts the task until
/// it finishes or is dropped unfinished (aborted).
pub struct Counted(&'static AtomicUsize);

impl Counted {
    pub fn new(counter: &'static AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tasks spawned on the runtime the set was made in, from any thread.
pub struct TaskSet {
    set: Mutex<Option<JoinSet<()>>>,
    runtime: tokio::runtime::Handle,
}

impl TaskSet {
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        TaskSet {
            set: Mutex::new(Some(JoinSet::new())),
            runtime,
        }
    }

    /// Spawns `fut`; false once the set is shut down.
    pub fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let Some(set) = guard.as_mut() else {
            return false;
        };
        while set.try_join_next().is_some() {}
        let live = Counted::new(&LIVE);
        set.spawn_on(
            async move {
                let _live = live;
                fut.await
            },
            &self.runtime,
        );
        true
    }

    /// Aborts every task and waits until all of them are gone.
    pub async fn shutdown(&self) {
        let set = self.set.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }
}
