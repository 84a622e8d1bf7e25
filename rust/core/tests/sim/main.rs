//! Deterministic cluster simulation of the consensus core: virtual time,
//! skewed node clocks, random node ids, a seeded scheduler that delays
//! (sometimes for seconds), drops, duplicates and reorders messages,
//! partitions, crashes that revert the store to its last sync, restarts and
//! leave/join with an empty store under the same id, pauses, late joiners
//! (some beyond the configured voter count), observers, bond changes seen
//! by one side only or by neither, and a driver that syncs, applies and
//! snapshots late; the Raft invariants are checked after every step, and a
//! silenced leader must be replaced in time under load.
//!
//! `MOSAIK_SIM_SEEDS=n` runs n seeds per mode (default 1500, three modes),
//! starting at `MOSAIK_SIM_FIRST_SEED` (default 0) for an open-ended soak;
//! `MOSAIK_SIM_SEED=s` replays one seed; `MOSAIK_SIM_TRACE=1` prints a trace.
//! `MOSAIK_SIM_FAULTS=a,b` runs only those new fault families (see
//! `faults::Families`; `none` for the original faults only), and
//! `MOSAIK_SIM_KEEP_GOING=1` runs every seed and reports how many failed
//! which invariant before failing.

mod faults;
mod harness;
mod invariants;
mod store;

use std::collections::BTreeMap;

use faults::Families;
use harness::{Mode, Sim, Stats};

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = env_number("MOSAIK_SIM_SEED") {
        return vec![seed];
    }
    let first = env_number("MOSAIK_SIM_FIRST_SEED").unwrap_or(0);
    let count = env_number("MOSAIK_SIM_SEEDS").unwrap_or(1500);
    (first..first + count).collect()
}

/// A panic's message with its numbers blanked, to group failures by invariant.
fn failure_kind(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let first = text.lines().next().unwrap_or("").to_string();
    first
        .split(|c: char| c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("#")
}

fn run_mode(mode: Mode, families: Families, test_name: &str) {
    let families = Families::from_env_or(families);
    let trace = std::env::var("MOSAIK_SIM_TRACE").is_ok();
    let keep_going = std::env::var("MOSAIK_SIM_KEEP_GOING").is_ok();
    let seeds = seeds();
    let mut total = Stats::default();
    let mut failures: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for &seed in &seeds {
        let result = std::panic::catch_unwind(|| Sim::new(mode, families, seed, trace).run());
        let panic = match result {
            Ok(stats) => {
                total += stats;
                continue;
            }
            Err(panic) => panic,
        };
        eprintln!(
            "simulation failed: mode {mode:?}, seed {seed}\nreplay with: MOSAIK_SIM_SEED={seed} MOSAIK_SIM_TRACE=1 cargo test -p mosaik-core --test sim {test_name} -- --nocapture"
        );
        if !keep_going {
            std::panic::resume_unwind(panic);
        }
        let kind = failures.entry(failure_kind(&*panic)).or_insert((0, seed));
        kind.0 += 1;
    }
    println!("{mode:?}: {} seeds, {total:?}", seeds.len());
    for (kind, (count, seed)) in &failures {
        println!(
            "{mode:?}: {count} of {} seeds failed: {kind} (e.g. MOSAIK_SIM_SEED={seed})",
            seeds.len()
        );
    }
    assert!(failures.is_empty(), "{mode:?}: some seeds failed");
}

#[test]
fn consistency_first_is_safe_and_live_under_every_fault() {
    run_mode(
        Mode::ConsistencyFirst,
        Families::all(true),
        "consistency_first_is_safe_and_live_under_every_fault",
    );
}

/// Crashes while the driver owes a sync, without the other new families
/// diluting them: a leader that counted its own unsynced copy toward a
/// commit failed 2 of these 1,500 seeds (and none with every family on);
/// the unit test `the_leader_sends_appends_before_its_sync_and_counts_itself_after`
/// catches it every time.
#[test]
fn consistency_first_is_safe_when_nodes_crash_before_their_sync() {
    run_mode(
        Mode::ConsistencyFirst,
        Families::only("sync"),
        "consistency_first_is_safe_when_nodes_crash_before_their_sync",
    );
}

#[test]
fn availability_first_is_safe_without_partitions_pauses_or_lost_bonds() {
    run_mode(
        Mode::AvailabilityFirst,
        Families::all(true),
        "availability_first_is_safe_without_partitions_pauses_or_lost_bonds",
    );
}

#[test]
fn availability_first_converges_after_every_fault() {
    run_mode(
        Mode::AvailabilityChaos,
        Families::all(true),
        "availability_first_converges_after_every_fault",
    );
}
