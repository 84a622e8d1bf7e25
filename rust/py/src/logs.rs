//! Rust log records (ours and our dependencies') into Python's `logging`,
//! under the `mosaik` logger. Records are queued without blocking (a full
//! queue drops them) and handed to Python by one dedicated thread, so no
//! tokio thread ever waits for the GIL.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

use crate::apply::stopping;

const QUEUE: usize = 10_000;

struct Entry {
    level: Level,
    logger: String,
    message: String,
}

struct Forwarder {
    queue: SyncSender<Entry>,
}

/// `mosaik_net::groups::bond` becomes `mosaik.net.groups.bond`; other crates
/// go under `mosaik.deps`.
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    match dotted.strip_prefix("mosaik_") {
        Some(rest) => format!("mosaik.{rest}"),
        None => format!("mosaik.deps.{dotted}"),
    }
}

impl Log for Forwarder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let entry = Entry {
            level: record.level(),
            logger: logger_name(record.target()),
            message: record.args().to_string(),
        };
        if let Err(TrySendError::Disconnected(_)) = self.queue.try_send(entry) {
            log::set_max_level(LevelFilter::Off);
        }
    }

    fn flush(&self) {}
}

fn python_level(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

fn filter_for(python_level: u32) -> LevelFilter {
    match python_level {
        0 => LevelFilter::Trace,
        1..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        31..=40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

fn forward(receiver: Receiver<Entry>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter().take(QUEUE));
        if stopping() {
            return;
        }
        Python::attach(|py| {
            let Ok(logging) = py.import("logging") else {
                return;
            };
            for entry in batch {
                let _ = logging
                    .call_method1("getLogger", (entry.logger,))
                    .and_then(|l| {
                        l.call_method1("log", (python_level(entry.level), entry.message))
                    });
            }
        });
    }
}

/// Installs the forwarder (once) and sets which Rust records reach Python:
/// those at or above `level` (a Python logging level).
#[pyfunction]
pub fn set_log_level(level: u32) -> PyResult<()> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let mut result = Ok(());
    INSTALLED.get_or_init(|| {
        let (queue, receiver) = sync_channel(QUEUE);
        result = std::thread::Builder::new()
            .name("mosaik-log".into())
            .spawn(move || forward(receiver))
            .map(|_| ())
            .map_err(PyErr::from);
        let _ = log::set_boxed_logger(Box::new(Forwarder { queue }));
    });
    log::set_max_level(filter_for(level));
    result
}
