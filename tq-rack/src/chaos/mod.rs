//! The chaos run: for a bounded time, operations drawn from a seed (adds,
//! removes, SIGKILLs of agents and replicas, some right in the middle of a
//! prepare or a commit, each victim restarted after a drawn pause); then
//! the faults stop, every process is started again, the rack is given a
//! bounded time to settle, and [`crate::check`] checks it from outside.
//!
//! Everything runs on 127.0.0.1 and against the rack's own processes only.

mod draw;
mod ops;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use self::draw::Op;
use crate::check;
use crate::client::Operator;
use crate::error::RackError;
use crate::layout::{Proc, Rack};
use crate::procs::{self, Launcher};
use crate::wait;

/// The chaos run's settings.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// How long faults are injected.
    pub seconds: u64,
    /// The seed every draw comes from.
    pub seed: u64,
    /// How long the rack may take to settle once the faults stop.
    pub settle_limit: Duration,
    /// Removes never take the membership below this.
    pub min_members: usize,
    /// Adds never take the membership above this.
    pub max_members: usize,
    /// At most this many agents are down at once.
    pub max_down_agents: usize,
}

impl ChaosOptions {
    /// Defaults: membership kept within 3..=8, at most 2 agents down at
    /// once, two minutes to settle.
    pub fn new(seconds: u64, seed: u64) -> ChaosOptions {
        ChaosOptions {
            seconds,
            seed,
            settle_limit: Duration::from_secs(120),
            min_members: 3,
            max_members: 8,
            max_down_agents: 2,
        }
    }
}

/// What a chaos run did and found.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    /// The fault phase's length, in seconds.
    pub seconds: u64,
    /// Operations carried out (changes sent and kills).
    pub operations: u64,
    /// SIGKILLs sent.
    pub kills: u64,
    /// Changes the control plane refused (normal under chaos).
    pub refused: u64,
    /// The ledger's latest epoch at the end.
    pub epochs: u64,
    /// Everything that went wrong.
    pub violations: Vec<String>,
    /// How long the rack took to settle once every process was back.
    pub settle_ms: u128,
}

impl ChaosReport {
    /// The contract line.
    pub fn summary(&self) -> String {
        format!(
            "chaos: seconds={} operations={} kills={} epochs={} violations={} settle_ms={}",
            self.seconds,
            self.operations,
            self.kills,
            self.epochs,
            self.violations.len(),
            self.settle_ms
        )
    }
}

/// A chaos run in progress.
pub(crate) struct Run {
    pub(crate) rack: Rack,
    pub(crate) launcher: Launcher,
    pub(crate) operator: Operator,
    pub(crate) options: ChaosOptions,
    pub(crate) rng: ChaCha20Rng,
    /// Killed processes and when they start again.
    pub(crate) down: BTreeMap<Proc, Instant>,
    pub(crate) report: ChaosReport,
    /// The end of the fault phase.
    pub(crate) end: Instant,
}

/// Runs chaos on the rack in `dir` (which must be up).
pub async fn run(
    launcher: &Launcher,
    dir: &Path,
    options: ChaosOptions,
) -> Result<ChaosReport, RackError> {
    let rack = Rack::load(dir)?;
    let operator = Operator::new(&rack)?;
    let start = Instant::now();
    let mut run = Run {
        rng: ChaCha20Rng::seed_from_u64(options.seed),
        report: ChaosReport { seconds: options.seconds, ..ChaosReport::default() },
        end: start.checked_add(Duration::from_secs(options.seconds)).unwrap_or(start),
        down: BTreeMap::new(),
        rack,
        launcher: launcher.clone(),
        operator,
        options,
    };
    // Whatever is down before the run starts again at once, unblamed.
    for proc in run.expected() {
        if procs::running(&run.rack, proc).is_none() {
            run.down.insert(proc, start);
        }
    }
    tracing::info!(seed = run.options.seed, seconds = run.options.seconds, "chaos: faults start");
    while Instant::now() < run.end {
        run.restart_due(false).await;
        let op = draw::op(&mut run.rng);
        run.perform(op).await;
        let pause = draw::pause(&mut run.rng, 100, 600);
        tokio::time::sleep(pause.min(run.end.saturating_duration_since(Instant::now()))).await;
    }
    tracing::info!(
        operations = run.report.operations,
        kills = run.report.kills,
        "chaos: faults stop"
    );
    run.finish().await;
    Ok(run.report)
}

impl Run {
    /// The processes that should be running: every replica and every sled
    /// ever started (removed ones included).
    pub(crate) fn expected(&self) -> Vec<Proc> {
        let sleds = self.rack.layout.sleds.iter().filter(|s| self.rack.sled_used(s.index));
        let replicas = self.rack.layout.replicas.iter();
        sleds.map(|s| Proc::Sled(s.index)).chain(replicas.map(|r| Proc::Ctl(r.index))).collect()
    }

    /// Starts again the killed processes whose pause is over (all of
    /// them with `all`).
    async fn restart_due(&mut self, all: bool) {
        let now = Instant::now();
        let due: Vec<Proc> =
            self.down.iter().filter(|(_, at)| all || **at <= now).map(|(p, _)| *p).collect();
        for proc in due {
            self.down.remove(&proc);
            if procs::running(&self.rack, proc).is_some() {
                continue;
            }
            tracing::info!(%proc, "chaos: restarting");
            if let Err(e) = wait::start_ready(&self.launcher, &self.rack, proc).await {
                self.report.violations.push(format!("{proc} could not be restarted: {e}"));
            }
        }
    }

    /// SIGKILLs `proc` and schedules its restart after a drawn pause.
    pub(crate) async fn kill(&mut self, proc: Proc, why: &str) {
        let pause = match proc {
            Proc::Sled(_) => draw::pause(&mut self.rng, 200, 2000),
            Proc::Ctl(_) => draw::pause(&mut self.rng, 300, 2000),
        };
        match procs::kill_now(&self.rack, proc).await {
            Ok(true) => {
                tracing::info!(%proc, why, restart_in = ?pause, "chaos: SIGKILL");
                self.report.kills = self.report.kills.saturating_add(1);
                self.report.operations = self.report.operations.saturating_add(1);
                self.down
                    .insert(proc, Instant::now().checked_add(pause).unwrap_or_else(Instant::now));
            }
            Ok(false) => tracing::debug!(%proc, "chaos: not running; no kill"),
            Err(e) => self.report.violations.push(format!("{proc}: {e}")),
        }
    }

    /// Agents that run and may be killed now (`None` once enough are down).
    pub(crate) fn killable_agents(&self) -> Option<Vec<usize>> {
        let down = self.down.keys().filter(|p| matches!(p, Proc::Sled(_))).count();
        if down >= self.options.max_down_agents {
            return None;
        }
        Some(
            self.rack
                .layout
                .sleds
                .iter()
                .map(|s| s.index)
                .filter(|i| !self.down.contains_key(&Proc::Sled(*i)))
                .filter(|i| procs::running(&self.rack, Proc::Sled(*i)).is_some())
                .collect(),
        )
    }

    /// Replicas that run and may be killed now: with several replicas,
    /// one always stays up.
    pub(crate) fn killable_replicas(&self) -> Vec<usize> {
        let up: Vec<usize> = self
            .rack
            .layout
            .replicas
            .iter()
            .map(|r| r.index)
            .filter(|r| procs::running(&self.rack, Proc::Ctl(*r)).is_some())
            .collect();
        if self.rack.layout.replicas.len() >= 2 && up.len() < 2 {
            return Vec::new();
        }
        up
    }

    /// Stops the faults, starts everything again, waits for the rack to
    /// settle and checks it.
    async fn finish(&mut self) {
        // A process that is down but was not killed stopped on its own.
        for proc in self.expected() {
            if !self.down.contains_key(&proc) && procs::running(&self.rack, proc).is_none() {
                let log = self.rack.log_path(proc);
                self.report.violations.push(format!(
                    "{proc} stopped on its own; its log ({}) ends:\n{}",
                    log.display(),
                    wait::log_tail(&log, 5)
                ));
                self.down.insert(proc, Instant::now());
            }
        }
        let settling = Instant::now();
        self.restart_due(true).await;
        match check::settle(&self.operator, self.options.settle_limit).await {
            Ok(settled) => {
                self.report.settle_ms = settling.elapsed().as_millis();
                self.report.epochs = settled.latest.0;
                tracing::info!(latest = %settled.latest, committed = %settled.committed.epoch, members = settled.committed.members.len(), "chaos: settled; checking");
                let found = check::check(&self.rack, &self.operator, &settled).await;
                self.report.violations.extend(found);
            }
            Err(e) => {
                self.report.settle_ms = settling.elapsed().as_millis();
                if let Ok(Some(latest)) = self.operator.status(None).await {
                    self.report.epochs = latest.epoch.0;
                }
                self.report.violations.push(format!("the rack did not settle: {e}"));
            }
        }
    }
}
