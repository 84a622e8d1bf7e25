//! Deterministic cluster simulation of the consensus core: virtual time, a
//! seeded scheduler that delays, drops, duplicates and reorders messages,
//! partitions, crashes, pauses, late joiners and observers; the Raft
//! invariants are checked after every step.
//!
//! `MOSAIK_SIM_SEEDS=n` runs n seeds per mode (default 1000, three modes),
//! starting at `MOSAIK_SIM_FIRST_SEED` (default 0) for an open-ended soak;
//! `MOSAIK_SIM_SEED=s` replays one seed; `MOSAIK_SIM_TRACE=1` prints a trace.

mod faults;
mod harness;
mod invariants;

use harness::{Mode, Sim, Stats};

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = env_number("MOSAIK_SIM_SEED") {
        return vec![seed];
    }
    let first = env_number("MOSAIK_SIM_FIRST_SEED").unwrap_or(0);
    let count = env_number("MOSAIK_SIM_SEEDS").unwrap_or(1000);
    (first..first + count).collect()
}

fn run_mode(mode: Mode, test_name: &str) {
    let trace = std::env::var("MOSAIK_SIM_TRACE").is_ok();
    let seeds = seeds();
    let mut total = Stats::default();
    for &seed in &seeds {
        let result = std::panic::catch_unwind(|| Sim::new(mode, seed, trace).run());
        if let Ok(stats) = result {
            total += stats;
            continue;
        }
        if let Err(panic) = result {
            eprintln!(
                "simulation failed: mode {mode:?}, seed {seed}\nreplay with: MOSAIK_SIM_SEED={seed} MOSAIK_SIM_TRACE=1 cargo test -p mosaik-core --test sim {test_name} -- --nocapture"
            );
            std::panic::resume_unwind(panic);
        }
    }
    println!("{mode:?}: {} seeds, {total:?}", seeds.len());
}

#[test]
fn consistency_first_is_safe_and_live_under_every_fault() {
    run_mode(
        Mode::ConsistencyFirst,
        "consistency_first_is_safe_and_live_under_every_fault",
    );
}

#[test]
fn availability_first_is_safe_without_partitions_pauses_or_lost_bonds() {
    run_mode(
        Mode::AvailabilityFirst,
        "availability_first_is_safe_without_partitions_pauses_or_lost_bonds",
    );
}

#[test]
fn availability_first_converges_after_every_fault() {
    run_mode(
        Mode::AvailabilityChaos,
        "availability_first_converges_after_every_fault",
    );
}
