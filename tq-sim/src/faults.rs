//! The fault plan: which faults a run injects and how often.
//!
//! Probabilities are in parts per thousand per simulated step, so a plan is
//! exact integer data and identical on every machine. `swarm` draws every
//! probability (including zero, which switches a fault off) from the seed,
//! so different seeds explore different mixes of faults.

use core::fmt;
use core::str::FromStr;

use rand_core::Rng;
use serde::{Deserialize, Serialize};

/// The named fault presets of the command line.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPreset {
    /// No faults: every message is delivered in order.
    None,
    /// Occasional reordering, connection flaps and restarts.
    Light,
    /// Every probability drawn from the seed.
    Swarm,
    /// Frequent faults of every kind.
    Heavy,
    /// Light faults, one compromised member that lies (replays, forges
    /// and floods) and corrupted disks.
    Byzantine,
}

impl FromStr for FaultPreset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(FaultPreset::None),
            "light" => Ok(FaultPreset::Light),
            "swarm" => Ok(FaultPreset::Swarm),
            "heavy" => Ok(FaultPreset::Heavy),
            "byzantine" => Ok(FaultPreset::Byzantine),
            other => Err(format!(
                "unknown fault preset {other:?}: use none, light, swarm, heavy or byzantine"
            )),
        }
    }
}

impl fmt::Display for FaultPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultPreset::None => "none",
            FaultPreset::Light => "light",
            FaultPreset::Swarm => "swarm",
            FaultPreset::Heavy => "heavy",
            FaultPreset::Byzantine => "byzantine",
        })
    }
}

/// Per-step probabilities, in parts per thousand, of each fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Deliver from a random busy link instead of the oldest message.
    pub reorder_links: u16,
    /// Deliver a random message of a link instead of its head.
    pub reorder_within_link: u16,
    /// Lose one in-flight peer message.
    pub drop_message: u16,
    /// Take a connection down (losing its in-flight messages).
    pub disconnect: u16,
    /// Block one direction of a link.
    pub partition: u16,
    /// Lift a partition.
    pub heal: u16,
    /// Crash a sled (in-memory state lost, durable state kept).
    pub crash: u16,
    /// Crash a sled right after its next persist, before it sends.
    pub crash_after_persist: u16,
    /// Wipe the durable state of a crashed sled (at most once per run).
    pub disk_loss: u16,
    /// Crash a control-plane replica.
    pub control_crash: u16,
    /// Let a replica act on a stale ledger snapshot (races another).
    pub control_race: u16,
    /// Lose a control-plane request or reply.
    pub control_loss: u16,
    /// Keep the sled that was just asked to coordinate down for long.
    pub coordinator_stays_down: u16,
    /// A peer sends a garbled copy of a queued share (a faulty or
    /// malicious member).
    pub corrupt_share: u16,
    /// The compromised member injects a replayed, forged or flooding
    /// message (no compromised member when zero).
    pub byzantine: u16,
    /// Flip bits in, or truncate, a crashed sled's stored state.
    pub disk_corruption: u16,
}

impl FaultPlan {
    /// The plan of a preset; `swarm` draws from `rng`.
    pub fn from_preset<R: Rng + ?Sized>(preset: FaultPreset, rng: &mut R) -> FaultPlan {
        match preset {
            FaultPreset::None => FaultPlan::default(),
            FaultPreset::Light => FaultPlan {
                reorder_links: 300,
                reorder_within_link: 20,
                drop_message: 2,
                disconnect: 3,
                partition: 1,
                heal: 50,
                crash: 2,
                crash_after_persist: 1,
                disk_loss: 0,
                control_crash: 2,
                control_race: 5,
                control_loss: 5,
                coordinator_stays_down: 20,
                corrupt_share: 5,
                byzantine: 0,
                disk_corruption: 0,
            },
            FaultPreset::Heavy => FaultPlan {
                reorder_links: 800,
                reorder_within_link: 200,
                drop_message: 30,
                disconnect: 20,
                partition: 10,
                heal: 30,
                crash: 15,
                crash_after_persist: 10,
                disk_loss: 5,
                control_crash: 10,
                control_race: 50,
                control_loss: 50,
                coordinator_stays_down: 150,
                corrupt_share: 50,
                byzantine: 0,
                disk_corruption: 0,
            },
            FaultPreset::Byzantine => FaultPlan {
                crash: 8,
                byzantine: 80,
                disk_corruption: 30,
                ..FaultPlan::from_preset(FaultPreset::Light, rng)
            },
            FaultPreset::Swarm => {
                // Each fault is off with probability 1/3, otherwise drawn up
                // to its heavy level.
                let heavy = FaultPlan::from_preset(FaultPreset::Heavy, rng);
                let mut draw = |max: u16| -> u16 {
                    let r = rng.next_u32();
                    if r % 3 == 0 {
                        0
                    } else {
                        u16::try_from(
                            (r >> 2).checked_rem(u32::from(max).saturating_add(1)).unwrap_or(0),
                        )
                        .unwrap_or(max)
                    }
                };
                let mut plan = FaultPlan {
                    reorder_links: draw(1000),
                    reorder_within_link: draw(heavy.reorder_within_link),
                    drop_message: draw(heavy.drop_message),
                    disconnect: draw(heavy.disconnect),
                    partition: draw(heavy.partition),
                    heal: draw(heavy.heal).max(10),
                    crash: draw(heavy.crash),
                    crash_after_persist: draw(heavy.crash_after_persist),
                    disk_loss: draw(heavy.disk_loss),
                    control_crash: draw(heavy.control_crash),
                    control_race: draw(heavy.control_race),
                    control_loss: draw(heavy.control_loss),
                    coordinator_stays_down: draw(heavy.coordinator_stays_down),
                    corrupt_share: draw(heavy.corrupt_share),
                    byzantine: 0,
                    disk_corruption: 0,
                };
                // Drawn after the others, so that every seed keeps the
                // probabilities it had before these faults existed. Each is
                // on in about one seed in eight, at a low rate.
                let mut rare = |max: u32| -> u16 {
                    let r = rng.next_u32();
                    let on = r % 8 == 0;
                    u16::try_from((r >> 3).checked_rem(max).unwrap_or(0))
                        .map_or(0, |p| if on { p.saturating_add(1) } else { 0 })
                };
                plan.byzantine = rare(40);
                plan.disk_corruption = rare(10);
                plan
            }
        }
    }
}

/// Whether an event of probability `per_mille` happens on this draw.
pub fn chance<R: Rng + ?Sized>(rng: &mut R, per_mille: u16) -> bool {
    per_mille > 0 && rng.next_u32() % 1000 < u32::from(per_mille)
}
