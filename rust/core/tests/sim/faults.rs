//! Fault injection: network weather (loss, duplication, delay), partitions
//! (with or without losing the bonds across), crashes and restarts, pauses
//! and wake-ups, late joiners. Which faults a run gets depends on its mode.

use mosaik_core::rng::Rng;
use mosaik_core::Role;

use crate::harness::{Mode, Sim, SimNode};

#[derive(Debug, Clone)]
pub enum Fault {
    Weather {
        drop: f64,
        duplicate: f64,
        max_delay_ms: u64,
    },
    Partition {
        side: Vec<bool>,
        unbond: bool,
    },
    Heal,
    Crash,
    Restart,
    Pause,
    Wake,
    Join,
}

pub struct Faults {
    mode: Mode,
    pub drop: f64,
    pub duplicate: f64,
    pub max_delay_ms: u64,
    pub client_rate: f64,
    fault_rate: f64,
    side: Option<Vec<bool>>,
    unbond_across: bool,
}

impl Faults {
    pub fn new(mode: Mode, rng: &mut Rng) -> Self {
        Faults {
            mode,
            drop: rng.below(8) as f64 / 100.0,
            duplicate: rng.below(5) as f64 / 100.0,
            max_delay_ms: 2 + rng.below(30),
            client_rate: (5 + rng.below(25)) as f64 / 100.0,
            fault_rate: 0.01,
            side: None,
            unbond_across: false,
        }
    }

    /// Messages from `a` reach `b`.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.side.as_ref().is_none_or(|side| side[a] == side[b])
    }

    /// `a` and `b` should hold a bond.
    pub fn bonded(&self, a: usize, b: usize) -> bool {
        !self.unbond_across || self.connected(a, b)
    }

    /// Ends every fault: a quiet, connected network.
    pub fn calm(&mut self) {
        self.drop = 0.0;
        self.duplicate = 0.0;
        self.side = None;
        self.unbond_across = false;
    }

    pub fn next(&mut self, rng: &mut Rng, nodes: usize) -> Option<Fault> {
        if !rng.chance(self.fault_rate) {
            return None;
        }
        let kinds: u64 = if self.mode == Mode::AvailabilityFirst {
            2
        } else {
            8
        };
        Some(match rng.below(kinds) {
            0 => Fault::Weather {
                drop: rng.below(10) as f64 / 100.0,
                duplicate: rng.below(5) as f64 / 100.0,
                max_delay_ms: 2 + rng.below(40),
            },
            1 => Fault::Join,
            2 => {
                let side = (0..nodes).map(|_| rng.chance(0.5)).collect();
                Fault::Partition {
                    side,
                    unbond: rng.chance(0.5),
                }
            }
            3 => Fault::Heal,
            4 => Fault::Crash,
            5 => Fault::Restart,
            6 => Fault::Pause,
            _ => Fault::Wake,
        })
    }
}

pub fn apply(sim: &mut Sim, fault: Fault) {
    match fault {
        Fault::Weather {
            drop,
            duplicate,
            max_delay_ms,
        } => {
            sim.faults.drop = drop;
            sim.faults.duplicate = duplicate;
            sim.faults.max_delay_ms = max_delay_ms;
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
                sim.crash_node(i);
            }
        }
        Fault::Restart => {
            if let Some(i) = pick(sim, |n| n.joined && n.raft.is_none()) {
                sim.start_node(i);
                sim.rebond();
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
            if let Some(i) = pick(sim, |n| !n.joined) {
                sim.nodes[i].joined = true;
                sim.start_node(i);
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
