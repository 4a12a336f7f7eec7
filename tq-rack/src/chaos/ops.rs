//! Carrying out one drawn operation of the chaos run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tq_types::{BaseboardId, ConfigState, Epoch};

use super::Run;
use super::draw::{self, Op};
use crate::commands;
use crate::error::RackError;
use crate::layout::Proc;
use crate::procs;
use crate::wait;

/// How long a kill in the middle of a commit waits for the commit to
/// start.
const COMMIT_WATCH: Duration = Duration::from_secs(5);

impl Run {
    /// Carries out `op`. Refusals and an unreachable control plane are
    /// normal under chaos; only broken invariants are violations.
    pub(crate) async fn perform(&mut self, op: Op) {
        match op {
            Op::Add => {
                self.add().await;
            }
            Op::Remove => {
                self.remove().await;
            }
            Op::KillAgent => {
                let Some(agents) = self.killable_agents() else { return };
                if let Some(victim) = draw::pick(&mut self.rng, &agents) {
                    self.kill(Proc::Sled(victim), "agent").await;
                }
            }
            Op::KillCtl => {
                let replicas = self.killable_replicas();
                if let Some(victim) = draw::pick(&mut self.rng, &replicas) {
                    self.kill(Proc::Ctl(victim), "replica").await;
                }
            }
            Op::AddKillCoordinator => {
                let Some(epoch) = self.add().await else { return };
                let coordinator = match self.operator.config(epoch).await {
                    Ok(Some(view)) => self.rack.index_of(&view.coordinator),
                    _ => None,
                };
                let allowed = self.killable_agents().unwrap_or_default();
                if let Some(victim) = coordinator.filter(|c| allowed.contains(c)) {
                    self.kill(Proc::Sled(victim), "coordinator in the middle of its prepare").await;
                }
            }
            Op::AddKillCtl => {
                let Some(_) = self.add().await else { return };
                let replicas = self.killable_replicas();
                if let Some(victim) = draw::pick(&mut self.rng, &replicas) {
                    self.kill(Proc::Ctl(victim), "replica in the middle of a prepare").await;
                }
            }
            Op::ChangeKillInCommit => {
                let epoch = if draw::one_in(&mut self.rng, 2) {
                    self.add().await
                } else {
                    self.remove().await
                };
                let Some(epoch) = epoch else { return };
                let Some(members) = self.committing(epoch).await else { return };
                if draw::one_in(&mut self.rng, 3) {
                    let replicas = self.killable_replicas();
                    if let Some(victim) = draw::pick(&mut self.rng, &replicas) {
                        self.kill(Proc::Ctl(victim), "replica in the middle of a commit").await;
                    }
                    return;
                }
                let allowed = self.killable_agents().unwrap_or_default();
                let members: Vec<usize> =
                    members.into_iter().filter(|m| allowed.contains(m)).collect();
                if let Some(victim) = draw::pick(&mut self.rng, &members) {
                    self.kill(Proc::Sled(victim), "member in the middle of a commit").await;
                }
            }
        }
    }

    /// The current membership (the newest epoch not aborted), if known.
    async fn members(&self) -> Option<BTreeSet<BaseboardId>> {
        match commands::current(&self.operator).await {
            Ok(status) => status.map(|s| s.members),
            Err(e) => {
                tracing::info!(error = %e, "chaos: no membership status");
                None
            }
        }
    }

    /// Adds one or two sleds: a fresh spare or a sled not in the
    /// membership (a removed one), started first if needed.
    async fn add(&mut self) -> Option<Epoch> {
        let members = self.members().await?;
        let room = self.options.max_members.saturating_sub(members.len());
        if room == 0 {
            return None;
        }
        let outside: Vec<usize> = self
            .rack
            .layout
            .sleds
            .iter()
            .filter(|s| !members.contains(&s.id) && !self.down.contains_key(&Proc::Sled(s.index)))
            .map(|s| s.index)
            .collect();
        let (used, fresh): (Vec<usize>, Vec<usize>) =
            outside.into_iter().partition(|i| self.rack.sled_used(*i));
        let count = if room >= 2 && draw::one_in(&mut self.rng, 4) { 2 } else { 1 };
        let mut chosen = Vec::new();
        for _ in 0..count {
            let from_used =
                !used.is_empty() && (fresh.is_empty() || draw::one_in(&mut self.rng, 2));
            let pool: Vec<usize> =
                if from_used { used.clone() } else { fresh.iter().take(1).copied().collect() };
            let candidates: Vec<usize> = pool.into_iter().filter(|i| !chosen.contains(i)).collect();
            if let Some(sled) = draw::pick(&mut self.rng, &candidates) {
                chosen.push(sled);
            }
        }
        let mut ids = BTreeSet::new();
        for sled in &chosen {
            let proc = Proc::Sled(*sled);
            if procs::running(&self.rack, proc).is_none() {
                if let Err(e) = wait::start_ready(&self.launcher, &self.rack, proc).await {
                    self.report.violations.push(format!("{proc} could not be started: {e}"));
                    return None;
                }
            }
            ids.insert(self.rack.sled(*sled).ok()?.id.clone());
        }
        if ids.is_empty() {
            return None;
        }
        self.change("add", ids).await
    }

    /// Removes one member, if the membership may shrink.
    async fn remove(&mut self) -> Option<Epoch> {
        let members: Vec<BaseboardId> = self.members().await?.into_iter().collect();
        if members.len() <= self.options.min_members {
            return None;
        }
        let victim = draw::pick(&mut self.rng, &members)?;
        self.change("remove", BTreeSet::from([victim])).await
    }

    /// Sends a change; returns its epoch if the control plane took it.
    async fn change(&mut self, op: &str, ids: BTreeSet<BaseboardId>) -> Option<Epoch> {
        self.report.operations = self.report.operations.saturating_add(1);
        let names: Vec<String> = ids
            .iter()
            .filter_map(|id| self.rack.index_of(id))
            .map(|i| format!("sled-{i}"))
            .collect();
        match self.operator.change(op, &ids).await {
            Ok(Ok(status)) => {
                tracing::info!(op, sleds = ?names, epoch = %status.epoch, "chaos: change accepted");
                Some(status.epoch)
            }
            Ok(Err(refusal)) => {
                self.report.refused = self.report.refused.saturating_add(1);
                tracing::info!(op, sleds = ?names, %refusal, "chaos: change refused");
                None
            }
            Err(e) => {
                self.report.refused = self.report.refused.saturating_add(1);
                tracing::info!(op, sleds = ?names, error = %e, "chaos: change not sent");
                None
            }
        }
    }

    /// Waits (briefly) until `epoch` is committing; returns its members'
    /// indices then, or `None` if it did not start committing.
    async fn committing(&self, epoch: Epoch) -> Option<Vec<usize>> {
        let start = Instant::now();
        while start.elapsed() < COMMIT_WATCH {
            match self.operator.config(epoch).await {
                Ok(Some(view)) if view.state == ConfigState::Committing => {
                    return Some(
                        view.members.keys().filter_map(|id| self.rack.index_of(id)).collect(),
                    );
                }
                Ok(Some(view)) if view.state != ConfigState::Preparing => return None,
                Ok(_) => {}
                Err(RackError::Unreachable(_)) => return None,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}
