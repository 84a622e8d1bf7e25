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

struct LiveGuard;

impl LiveGuard {
    fn new() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        LiveGuard
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
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
        let live = LiveGuard::new();
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
