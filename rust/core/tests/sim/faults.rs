//! Fault injection: network weather (loss, duplication, delay, and rare
//! delays of seconds), partitions (with or without losing the bonds
//! across), crashes that revert the store to its last sync, restarts with
//! an empty store and leave/join under the same id, pauses and wake-ups,
//! late joiners (some beyond the configured voter count), bond drops seen
//! by one side only, bond breaks (and restarts) the peers never see, and a
//! driver that syncs, applies and snapshots late. Which faults a run gets
//! depends on its mode.

use std::time::Duration;

use mosaik_core::rng::Rng;
use mosaik_core::Role;

use crate::harness::{Mode, Sim, SimNode};

/// The fault families added for the Raft-safety issue, each of which can
/// be switched off to tell which one a failure needs:
/// `MOSAIK_SIM_FAULTS=long_delay,lost_state,...` runs only those (`none`:
/// only the original faults); unset runs them all.
#[derive(Debug, Clone, Copy)]
pub struct Families {
    pub long_delay: bool,
    pub lost_state: bool,
    pub extra_voters: bool,
    /// Crashes revert to the last sync; the driver syncs late.
    pub sync: bool,
    /// The driver applies and hands back snapshots late.
    pub async_apply: bool,
    /// One-sided drops, unseen blips and unseen restarts.
    pub bonds: bool,
    pub skew: bool,
    pub random_ids: bool,
    /// The silenced-leader failover check.
    pub failover: bool,
}

impl Families {
    /// `MOSAIK_SIM_FAULTS` when set, else `default`.
    pub fn from_env_or(default: Families) -> Self {
        match std::env::var("MOSAIK_SIM_FAULTS") {
            Ok(list) => Families::only(&list),
            Err(_) => default,
        }
    }

    /// The families named in a comma-separated `list`.
    pub fn only(list: &str) -> Self {
        let on = |name: &str| list.split(',').any(|s| s.trim() == name);
        Families {
            long_delay: on("long_delay"),
            lost_state: on("lost_state"),
            extra_voters: on("extra_voters"),
            sync: on("sync"),
            async_apply: on("async_apply"),
            bonds: on("bonds"),
            skew: on("skew"),
            random_ids: on("random_ids"),
            failover: on("failover"),
        }
    }

    pub fn all(on: bool) -> Self {
        Families {
            long_delay: on,
            lost_state: on,
            extra_voters: on,
            sync: on,
            async_apply: on,
            bonds: on,
            skew: on,
            random_ids: on,
            failover: on,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Fault {
    Weather {
        drop: f64,
        duplicate: f64,
        max_delay_ms: u64,
        long_delay: f64,
    },
    Partition {
        side: Vec<bool>,
        unbond: bool,
    },
    Heal,
    Crash,
    /// A node whose driver still owes a sync crashes (half the time a
    /// leader when one does): what it sent ahead of its sync is all that
    /// is left of it.
    CrashUnsynced,
    Restart,
    /// A stopped node comes back with an empty store under the same id.
    RestartEmpty,
    /// A node leaves (all its bonds drop); `Join` brings it back empty.
    Leave,
    Pause,
    Wake,
    Join,
    /// One side drops its bond to the other; the other keeps it for a while.
    OneSidedDrop {
        for_ms: u64,
    },
    /// A bond breaks and re-forms between two driver looks: messages in
    /// flight are lost, the core sees no remove_peer/add_peer.
    UnseenBlip,
    /// A node restarts (empty store when allowed) and reconnects before its
    /// peers' drivers notice: they see no remove_peer/add_peer.
    UnseenRestart {
        empty: bool,
    },
}

/// Which faults a mode gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Weather,
    Join,
    UnseenBlip,
    Partition,
    Heal,
    Crash,
    CrashUnsynced,
    Restart,
    RestartEmpty,
    Leave,
    Pause,
    Wake,
    OneSidedDrop,
    UnseenRestart,
}

/// Faults that keep every bond: the availability-first safe mode gets only these.
const BOND_KEEPING: &[Kind] = &[Kind::Weather, Kind::Join, Kind::UnseenBlip];
const EVERY: &[Kind] = &[
    Kind::Weather,
    Kind::Join,
    Kind::UnseenBlip,
    Kind::Partition,
    Kind::Heal,
    Kind::Crash,
    Kind::CrashUnsynced,
    Kind::Restart,
    Kind::RestartEmpty,
    Kind::Leave,
    Kind::Pause,
    Kind::Wake,
    Kind::OneSidedDrop,
    Kind::UnseenRestart,
];

pub struct Faults {
    mode: Mode,
    pub families: Families,
    pub drop: f64,
    pub duplicate: f64,
    pub max_delay_ms: u64,
    /// Chance that a message is held 0.2-2 s.
    pub long_delay: f64,
    pub client_rate: f64,
    /// Chance that the driver syncs a ready late (up to `sync_lag_ms`); it
    /// then holds that ready's messages, events and apply work and
    /// everything after them until the sync.
    pub sync_lag: f64,
    pub sync_lag_ms: u64,
    /// Chance that a ready's apply work is done late (up to `apply_lag_ms`).
    pub apply_lag: f64,
    pub apply_lag_ms: u64,
    /// Chance that a snapshot is handed back late (up to `snapshot_lag_ms`).
    pub snapshot_lag: f64,
    pub snapshot_lag_ms: u64,
    fault_rate: f64,
    side: Option<Vec<bool>>,
    unbond_across: bool,
    /// (a, b, until): a does not hold its bond to b until then; b still does.
    one_sided: Vec<(usize, usize, Duration)>,
}

impl Faults {
    pub fn new(mode: Mode, families: Families, rng: &mut Rng) -> Self {
        let mut chance = |p: f64, most: u64| {
            if rng.chance(p) {
                (1 + rng.below(most)) as f64 / 100.0
            } else {
                0.0
            }
        };
        let long_delay = chance(0.5, 1) / 2.0;
        let sync_lag = chance(0.5, 30);
        let apply_lag = chance(0.5, 50);
        let snapshot_lag = chance(0.5, 100);
        let (long_delay, sync_lag) = (
            if families.long_delay { long_delay } else { 0.0 },
            if families.sync { sync_lag } else { 0.0 },
        );
        let (apply_lag, snapshot_lag) = if families.async_apply {
            (apply_lag, snapshot_lag)
        } else {
            (0.0, 0.0)
        };
        Faults {
            mode,
            families,
            drop: rng.below(8) as f64 / 100.0,
            duplicate: rng.below(5) as f64 / 100.0,
            max_delay_ms: 2 + rng.below(30),
            long_delay,
            client_rate: (5 + rng.below(25)) as f64 / 100.0,
            sync_lag,
            sync_lag_ms: 5 + rng.below(150),
            apply_lag,
            apply_lag_ms: 5 + rng.below(200),
            snapshot_lag,
            snapshot_lag_ms: 5 + rng.below(2000),
            fault_rate: 0.01,
            side: None,
            unbond_across: false,
            one_sided: Vec::new(),
        }
    }

    fn family_on(&self, kind: Kind) -> bool {
        match kind {
            Kind::RestartEmpty | Kind::Leave => self.families.lost_state,
            Kind::CrashUnsynced => self.families.sync,
            Kind::UnseenBlip | Kind::OneSidedDrop | Kind::UnseenRestart => self.families.bonds,
            _ => true,
        }
    }

    /// Messages from `a` reach `b`.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.side.as_ref().is_none_or(|side| side[a] == side[b])
    }

    /// `a` should hold a bond to `b`.
    pub fn bonded(&self, a: usize, b: usize) -> bool {
        (!self.unbond_across || self.connected(a, b))
            && !self.one_sided.iter().any(|&(x, y, _)| (x, y) == (a, b))
    }

    /// Ends one-sided drops that are over; returns whether any did.
    pub fn expire_one_sided(&mut self, now: Duration) -> bool {
        let before = self.one_sided.len();
        self.one_sided.retain(|&(_, _, until)| until > now);
        self.one_sided.len() != before
    }

    /// Ends every fault: a quiet, connected network.
    pub fn calm(&mut self) {
        self.drop = 0.0;
        self.duplicate = 0.0;
        self.long_delay = 0.0;
        self.side = None;
        self.unbond_across = false;
        self.one_sided.clear();
    }

    pub fn next(&mut self, rng: &mut Rng, nodes: usize) -> Option<Fault> {
        if !rng.chance(self.fault_rate) {
            return None;
        }
        let kinds: Vec<Kind> = if self.mode == Mode::AvailabilityFirst {
            BOND_KEEPING
        } else {
            EVERY
        }
        .iter()
        .copied()
        .filter(|k| self.family_on(*k))
        .collect();
        Some(match kinds[rng.below(kinds.len() as u64) as usize] {
            Kind::Weather => Fault::Weather {
                drop: rng.below(10) as f64 / 100.0,
                duplicate: rng.below(5) as f64 / 100.0,
                max_delay_ms: 2 + rng.below(40),
                long_delay: if self.families.long_delay {
                    rng.below(3) as f64 / 200.0
                } else {
                    0.0
                },
            },
            Kind::Join => Fault::Join,
            Kind::UnseenBlip => Fault::UnseenBlip,
            Kind::Partition => {
                let side = (0..nodes).map(|_| rng.chance(0.5)).collect();
                Fault::Partition {
                    side,
                    unbond: rng.chance(0.5),
                }
            }
            Kind::Heal => Fault::Heal,
            Kind::Crash => Fault::Crash,
            Kind::CrashUnsynced => Fault::CrashUnsynced,
            Kind::Restart => Fault::Restart,
            Kind::RestartEmpty => Fault::RestartEmpty,
            Kind::Leave => Fault::Leave,
            Kind::Pause => Fault::Pause,
            Kind::Wake => Fault::Wake,
            Kind::OneSidedDrop => Fault::OneSidedDrop {
                for_ms: 100 + rng.below(1500),
            },
            Kind::UnseenRestart => Fault::UnseenRestart {
                empty: rng.chance(0.5),
            },
        })
    }
}

pub fn apply(sim: &mut Sim, fault: Fault) {
    match fault {
        Fault::Weather {
            drop,
            duplicate,
            max_delay_ms,
            long_delay,
        } => {
            sim.faults.drop = drop;
            sim.faults.duplicate = duplicate;
            sim.faults.max_delay_ms = max_delay_ms;
            sim.faults.long_delay = long_delay;
        }
        Fault::Partition { side, unbond } => {
            sim.faults.side = Some(side);
            sim.faults.unbond_across = unbond;
            sim.rebond();
        }
        Fault::Heal => {
            sim.faults.side = None;
            sim.faults.unbond_across = false;
            sim.rebond();
        }
        Fault::Crash => {
            if let Some(i) = pick(sim, |n| n.alive()) {
                sim.crash_node(i, false);
            }
        }
        Fault::CrashUnsynced => {
            let leader_first = sim.rng.chance(0.5);
            let leader = pick(sim, |n| {
                leader_first && n.alive() && n.owes_sync() && n.last_role == Some(Role::Leader)
            });
            if let Some(i) = leader.or_else(|| pick(sim, |n| n.alive() && n.owes_sync())) {
                sim.log(|| format!("node {i} crashes before its driver syncs"));
                sim.crash_node(i, false);
            }
        }
        Fault::Restart => {
            if let Some(i) = pick(sim, |n| n.joined && n.raft.is_none()) {
                sim.start_node(i);
                sim.rebond();
            }
        }
        Fault::RestartEmpty => {
            let stopped = pick(sim, |n| n.joined && n.raft.is_none());
            if let Some(i) = stopped.filter(|i| sim.may_wipe(*i)) {
                sim.log(|| format!("node {i} restarts with an empty store"));
                sim.wipe_store(i);
                sim.stats.empty_restarts += 1;
                sim.start_node(i);
                sim.rebond();
            }
        }
        Fault::Leave => {
            let leaving = pick(sim, |n| n.alive());
            if let Some(i) = leaving.filter(|i| sim.may_wipe(*i)) {
                sim.log(|| format!("node {i} leaves; it will rejoin empty under its id"));
                sim.crash_node(i, false);
                sim.nodes[i].joined = false;
                sim.wipe_store(i);
                sim.stats.leaves += 1;
            }
        }
        Fault::Pause => {
            let leader_only = sim.rng.chance(0.5);
            if let Some(i) = pick(sim, |n| {
                n.running() && (!leader_only || n.last_role == Some(Role::Leader))
            }) {
                sim.nodes[i].paused = true;
            }
        }
        Fault::Wake => {
            if let Some(i) = pick(sim, |n| n.paused) {
                sim.nodes[i].paused = false;
            }
        }
        Fault::Join => {
            let joining = pick(sim, |n| !n.joined);
            if let Some(i) = joining.filter(|i| sim.may_start_empty(*i)) {
                sim.nodes[i].joined = true;
                sim.start_node(i);
                sim.rebond();
            }
        }
        Fault::OneSidedDrop { for_ms } => {
            if let Some((a, b)) = pick_bonded_pair(sim) {
                sim.log(|| format!("node {a} drops its bond to {b}; {b} keeps it"));
                let until = sim.now + Duration::from_millis(for_ms);
                sim.faults.one_sided.push((a, b, until));
                sim.stats.one_sided_drops += 1;
                sim.rebond();
            }
        }
        Fault::UnseenBlip => {
            if let Some((a, b)) = pick_bonded_pair(sim) {
                sim.log(|| format!("bond {a}-{b} breaks and re-forms unseen"));
                sim.lose_in_flight(a, b);
                sim.stats.unseen_blips += 1;
            }
        }
        Fault::UnseenRestart { empty } => {
            if let Some(i) = pick(sim, |n| n.alive()) {
                let empty = empty && sim.faults.families.lost_state && sim.may_wipe(i);
                sim.log(|| format!("node {i} restarts unseen by its peers (empty: {empty})"));
                sim.crash_node(i, true);
                if empty {
                    sim.wipe_store(i);
                    sim.stats.empty_restarts += 1;
                }
                for j in 0..sim.nodes.len() {
                    sim.lose_in_flight(i, j);
                }
                sim.start_node(i);
                sim.stats.unseen_restarts += 1;
                sim.rebond();
            }
        }
    }
    sim.stats.faults += 1;
}

/// A random node that matches, if any.
fn pick(sim: &mut Sim, matches: impl Fn(&SimNode) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..sim.nodes.len())
        .filter(|i| matches(&sim.nodes[*i]))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(candidates[sim.rng.below(candidates.len() as u64) as usize])
}

/// A random (a, b) where a holds a bond to b.
fn pick_bonded_pair(sim: &mut Sim) -> Option<(usize, usize)> {
    let pairs: Vec<(usize, usize)> = (0..sim.nodes.len())
        .filter(|a| sim.nodes[*a].alive())
        .flat_map(|a| sim.nodes[a].bonds.iter().map(move |b| (a, *b)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    Some(pairs[sim.rng.below(pairs.len() as u64) as usize])
}
