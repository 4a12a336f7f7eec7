//! One control-plane replica: the task that owns a `ControlPlane`, keeps
//! it in step with the shared ledger store, runs driver passes and carries
//! out the operator's operations.
//!
//! Every call that changes the ledger is followed by the store step:
//! compare-and-set on the generation the replica loaded or last stored.
//! Losing the race is normal when replicas share a database: the replica
//! logs it, drops what the call decided, reloads and, for an operator
//! operation, decides again from the fresh ledger.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use rand_chacha::ChaCha20Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tq_types::{BaseboardId, Epoch, RackMembershipStatus, Timestamp, TrustQuorumConfig};
use trust_quorum::control::{ControlPlane, ControlPlaneConfig, Held, LedgerWrite};
use trust_quorum::crypto::authority::Authority;

use crate::actions::{Agents, Outcome};
use crate::config::CtlConfig;
use crate::errors::OpError;
use crate::store::{CasOutcome, Store, StoreError};

/// How many times an operation is decided again after lost races.
const OP_ATTEMPTS: usize = 5;

/// An operator operation.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Initialize(BTreeSet<BaseboardId>),
    Add(BTreeSet<BaseboardId>),
    Remove(BTreeSet<BaseboardId>),
    Abort,
}

/// A request to the replica task.
pub(crate) enum Command {
    Op(Op, oneshot::Sender<Result<Epoch, OpError>>),
    Status(Option<Epoch>, oneshot::Sender<Option<RackMembershipStatus>>),
    Config(Epoch, oneshot::Sender<Option<TrustQuorumConfig>>),
    Report(oneshot::Sender<Option<String>>),
}

/// The wall clock as a protocol timestamp.
pub(crate) fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_micros(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) struct Replica {
    config: CtlConfig,
    store: Store,
    cp: ControlPlane,
    agents: Agents,
    rng: ChaCha20Rng,
}

impl Replica {
    pub(crate) async fn new(
        config: CtlConfig,
        store: Store,
        agents: Agents,
        authority: Arc<Authority>,
        rng: ChaCha20Rng,
    ) -> Result<Replica, StoreError> {
        let settings = ControlPlaneConfig {
            prepare_timeout: Duration::from_millis(config.prepare_timeout_ms),
            not_coordinating_grace: Duration::from_millis(config.not_coordinating_grace_ms),
            ..ControlPlaneConfig::default()
        };
        let cp = ControlPlane::new(settings, authority);
        let mut replica = Replica { config, store, cp, agents, rng };
        replica.reload().await?;
        Ok(replica)
    }

    /// Runs until `stop` fires or the command queue closes.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) {
        let tick = Duration::from_millis(self.config.tick_ms.max(10));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => return,
                },
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
            if let Err(error) = self.pass().await {
                tracing::warn!(replica = %self.config.replica, %error, "driver pass failed");
            }
        }
    }

    /// Replaces the control plane with one over the stored ledger.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let settings = self.cp.settings().clone();
        let authority = self.cp.authority().clone();
        self.cp = match self.store.load().await? {
            Some(ledger) => ControlPlane::from_ledger(settings, authority, ledger)
                .map_err(|e| StoreError::Other(format!("stored ledger breaks a rule: {e}")))?,
            None => ControlPlane::new(settings, authority),
        };
        Ok(())
    }

    /// Reloads if another replica stored a newer ledger.
    async fn refresh(&mut self) -> Result<(), StoreError> {
        let stored = self.store.load().await?;
        let current = stored.as_ref().map_or(0, |l| l.generation());
        if current != self.cp.ledger().generation() {
            tracing::debug!(replica = %self.config.replica, generation = current, "ledger moved; reloading");
            let settings = self.cp.settings().clone();
            let authority = self.cp.authority().clone();
            self.cp = match stored {
                Some(ledger) => ControlPlane::from_ledger(settings, authority, ledger)
                    .map_err(|e| StoreError::Other(format!("stored ledger breaks a rule: {e}")))?,
                None => ControlPlane::new(settings, authority),
            };
        }
        Ok(())
    }

    /// The store step for a held result: `None` when the race was lost
    /// (the replica has reloaded; nothing may be released).
    async fn store<T>(&mut self, held: Held<T>) -> Result<Option<T>, StoreError> {
        let current = match self.cp.take_write() {
            LedgerWrite::Nothing(stored) => return Ok(Some(held.release(&stored))),
            LedgerWrite::Pending(write) => {
                match self
                    .store
                    .compare_and_set(write.expected_generation(), write.ledger())
                    .await?
                {
                    CasOutcome::Stored => return Ok(Some(held.release(&write.written()))),
                    CasOutcome::Lost { current } => current,
                }
            }
        };
        tracing::info!(replica = %self.config.replica, store_generation = current, "lost a compare-and-set race; reloading");
        self.reload().await?;
        Ok(None)
    }

    /// The store step after results were reported: `false` when the race
    /// was lost (the replica has reloaded).
    async fn store_results(&mut self) -> Result<bool, StoreError> {
        let current = match self.cp.take_write() {
            LedgerWrite::Nothing(_) => return Ok(true),
            LedgerWrite::Pending(write) => {
                match self
                    .store
                    .compare_and_set(write.expected_generation(), write.ledger())
                    .await?
                {
                    CasOutcome::Stored => {
                        let _stored = write.written();
                        return Ok(true);
                    }
                    CasOutcome::Lost { current } => current,
                }
            }
        };
        tracing::info!(replica = %self.config.replica, store_generation = current, "lost a compare-and-set race; reloading");
        self.reload().await?;
        Ok(false)
    }

    /// One driver pass: tick, store, act, report, store.
    async fn pass(&mut self) -> Result<(), StoreError> {
        self.refresh().await?;
        let held = self.cp.tick(now(), &mut self.rng);
        let Some(actions) = self.store(held).await? else {
            return Ok(());
        };
        if actions.is_empty() {
            return Ok(());
        }
        let agents = &self.agents;
        let outcomes = join_all(actions.into_iter().map(|a| agents.perform(a))).await;
        for outcome in outcomes {
            self.report(outcome);
        }
        self.store_results().await?;
        Ok(())
    }

    fn report(&mut self, outcome: Outcome) {
        let at = now();
        let result = match outcome {
            Outcome::Reconfigure { epoch, from, result } => {
                self.cp.on_reconfigure_result(epoch, &from, result, at).map_err(|e| e.to_string())
            }
            Outcome::Status { epoch, from, status } => {
                self.cp.on_coordinator_status(epoch, &from, status, at).map_err(|e| e.to_string())
            }
            Outcome::Commit { epoch, member, result } => {
                self.cp.on_commit_result(epoch, &member, result, at).map_err(|e| e.to_string())
            }
            Outcome::Activated { member } => {
                self.cp.on_activated(&member, at).map_err(|e| e.to_string())
            }
            Outcome::Unreachable { node } => {
                self.cp.on_unreachable(&node, at);
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::debug!(replica = %self.config.replica, %error, "stale or refused result ignored");
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Op(op, respond) => {
                let result = self.operate(op).await;
                let _gone = respond.send(result);
            }
            Command::Status(epoch, respond) => {
                let _ = self.refresh().await;
                let epoch = epoch.or_else(|| self.cp.latest_epoch());
                let _gone = respond.send(epoch.and_then(|e| self.cp.status(e)));
            }
            Command::Config(epoch, respond) => {
                let _ = self.refresh().await;
                let _gone = respond.send(self.cp.config(epoch));
            }
            Command::Report(respond) => {
                let _gone = respond.send(self.cp.last_pass().map(ToString::to_string));
            }
        }
    }

    /// An operator operation, decided again after each lost race.
    async fn operate(&mut self, op: Op) -> Result<Epoch, OpError> {
        if let Op::Initialize(sleds) | Op::Add(sleds) = &op {
            let unknown: BTreeSet<BaseboardId> =
                sleds.iter().filter(|s| self.config.control_of(s).is_none()).cloned().collect();
            if !unknown.is_empty() {
                return Err(OpError::UnknownSleds { sleds: unknown });
            }
        }
        for _ in 0..OP_ATTEMPTS {
            self.refresh().await.map_err(OpError::store)?;
            let at = now();
            let rack_id = self.config.rack_id;
            let decided = match &op {
                Op::Initialize(sleds) => {
                    let held = self.cp.initialize(rack_id, sleds.clone(), at, &mut self.rng);
                    self.store(held).await.map(|r| r.map(|r| r.map_err(OpError::Initialize)))
                }
                Op::Add(sleds) => {
                    let held = self.cp.add_sleds(sleds.clone(), at, &mut self.rng);
                    self.store(held).await.map(|r| r.map(|r| r.map_err(OpError::Add)))
                }
                Op::Remove(sleds) => {
                    let held = self.cp.remove_sleds(sleds.clone(), at, &mut self.rng);
                    self.store(held).await.map(|r| r.map(|r| r.map_err(OpError::Remove)))
                }
                Op::Abort => {
                    let held = self.cp.abort_latest("operator abort", at);
                    self.store(held).await.map(|r| r.map(|r| r.map_err(OpError::Abort)))
                }
            };
            match decided.map_err(OpError::store)? {
                Some(result) => {
                    if let Ok(epoch) = &result {
                        tracing::info!(replica = %self.config.replica, ?op, %epoch, "operation stored");
                    }
                    return result;
                }
                None => continue,
            }
        }
        Err(OpError::Busy)
    }
}
