//! The control-plane side of the world: replicas sharing one ledger store
//! with compare-and-set, and the request/reply channel from the control
//! plane to sleds (direct, or through a proxy member).

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tq_types::membership::{ConfigState, MemberState, Timestamp, TrustQuorumConfig};
use tq_types::{BaseboardId, CommitStatus, CoordinatorStatus, Epoch, RackId, ReconfigurationError};
use trust_quorum::PlantedBug;
use trust_quorum::control::{
    ControlAction, ControlPlane, ControlPlaneConfig, Ledger, MemberCommitError,
};

use crate::event::Event;
use crate::faults::{FaultPlan, chance};
use crate::invariants::Checker;
use crate::world::{World, below, pick, subseed};

/// The simulated wall clock starts at 2026-01-14T21:32:18Z.
const EPOCH_MICROS: i64 = 1_768_426_338_000_000;

/// The simulated time `ms` milliseconds after the start.
pub fn timestamp(ms: u64) -> Timestamp {
    let micros = i64::try_from(ms).unwrap_or(i64::MAX / 2).saturating_mul(1000);
    Timestamp::from_unix_micros(EPOCH_MICROS.saturating_add(micros))
        .or_else(|| Timestamp::from_unix_micros(EPOCH_MICROS))
        .unwrap_or_else(|| unreachable!("the start time is valid"))
}

/// One control-plane replica.
struct Replica {
    /// `None` while crashed.
    cp: Option<ControlPlane>,
    /// Act once on the current snapshot without refreshing it.
    stale: bool,
}

/// A request in flight from a replica to a sled.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InFlightRequest {
    /// The replica that sent it.
    pub replica: usize,
    /// What it asks.
    pub action: ControlAction,
}

/// A sled's answer, in flight back to a replica.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// Answer to a reconfigure request.
    Reconfigure {
        /// The epoch.
        epoch: Epoch,
        /// The coordinator.
        from: BaseboardId,
        /// Its answer.
        result: Result<(), ReconfigurationError>,
    },
    /// Answer to a poll.
    Status {
        /// The polled epoch.
        epoch: Epoch,
        /// The coordinator.
        from: BaseboardId,
        /// Its status.
        status: Option<CoordinatorStatus>,
    },
    /// Answer to a commit or prepare-and-commit.
    Commit {
        /// The epoch.
        epoch: Epoch,
        /// The member.
        member: BaseboardId,
        /// Its answer.
        result: Result<CommitStatus, MemberCommitError>,
    },
    /// The member is in service.
    Activated {
        /// The member.
        member: BaseboardId,
    },
    /// The sled (or its proxy) could not be reached.
    Unreachable {
        /// The sled that did not answer.
        node: BaseboardId,
    },
}

/// A reply in flight.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InFlightReply {
    /// The replica waiting for it.
    pub replica: usize,
    /// The answer.
    pub kind: ReplyKind,
}

/// Replicas, the ledger store and the channel to sleds.
pub struct ControlSide {
    settings: ControlPlaneConfig,
    planted_bug: Option<PlantedBug>,
    store: Ledger,
    /// A control plane over the stored ledger, for views and checks.
    observer: ControlPlane,
    replicas: Vec<Replica>,
    pub(crate) requests: Vec<InFlightRequest>,
    pub(crate) replies: Vec<InFlightReply>,
    rng: ChaCha20Rng,
    /// Sleds put in service (activation is idempotent).
    pub(crate) activated: BTreeSet<BaseboardId>,
    /// Sleds of the rack universe.
    universe: Vec<BaseboardId>,
}

impl ControlSide {
    /// Replicas over a ledger initialized with `initial` as the first
    /// membership.
    pub(crate) fn new(
        seed: u64,
        replicas: usize,
        rack_id: RackId,
        initial: &[BaseboardId],
        universe: Vec<BaseboardId>,
        planted_bug: Option<PlantedBug>,
    ) -> ControlSide {
        let settings = ControlPlaneConfig::default();
        let mut rng = ChaCha20Rng::seed_from_u64(subseed(seed, "control", 0));
        let mut first = ControlPlane::new(settings.clone());
        plant(&mut first, planted_bug);
        if let Err(e) = first.initialize(rack_id, initial.iter().cloned(), timestamp(0), &mut rng) {
            tracing::error!(%e, "initialize failed");
        }
        let store = first.ledger().clone();
        let mut side = ControlSide {
            observer: first,
            settings,
            store,
            requests: Vec::new(),
            replies: Vec::new(),
            rng,
            activated: initial.iter().cloned().collect(),
            universe,
            planted_bug,
            replicas: Vec::new(),
        };
        side.replicas =
            (0..replicas).map(|_| Replica { cp: side.load_replica(), stale: false }).collect();
        side
    }

    /// A replica's control plane freshly loaded from the store.
    fn load_replica(&self) -> Option<ControlPlane> {
        let mut cp = ControlPlane::from_ledger(self.settings.clone(), self.store.clone()).ok()?;
        plant(&mut cp, self.planted_bug);
        Some(cp)
    }

    /// The control plane over the stored ledger.
    pub fn observer(&self) -> &ControlPlane {
        &self.observer
    }

    /// The stored ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.store
    }

    /// Whether nothing is in flight between the control plane and sleds.
    pub(crate) fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.replies.is_empty()
    }

    pub(crate) fn digest_into(&self, h: &mut blake3::Hasher) {
        h.update(&tq_types::codec::encode(&self.store).unwrap_or_default());
        h.update(&tq_types::codec::encode(&self.requests).unwrap_or_default());
        h.update(&tq_types::codec::encode(&self.replies).unwrap_or_default());
        h.update(&tq_types::codec::encode(&self.activated).unwrap_or_default());
        for r in &self.replicas {
            h.update(&[u8::from(r.cp.is_some()), u8::from(r.stale)]);
        }
    }

    /// The ledger and in-flight work, for `replay --show control`.
    pub(crate) fn show(&self) -> serde_json::Value {
        let configs: Vec<TrustQuorumConfig> =
            self.observer.epochs().filter_map(|e| self.observer.config(e)).collect();
        serde_json::json!({
            "configs": configs,
            "requests": self.requests,
            "replies": self.replies,
            "activated": self.activated,
            "replicas_up": self.replicas.iter().map(|r| r.cp.is_some()).collect::<Vec<_>>(),
        })
    }

    /// The text report of the latest commit pass of any running replica.
    pub fn last_report(&self) -> Option<String> {
        self.replicas.iter().find_map(|r| r.cp.as_ref()?.last_pass()).map(ToString::to_string)
    }

    fn up_replicas(&self) -> Vec<usize> {
        self.replicas.iter().enumerate().filter(|(_, r)| r.cp.is_some()).map(|(i, _)| i).collect()
    }

    fn down_replicas(&self) -> Vec<usize> {
        self.replicas.iter().enumerate().filter(|(_, r)| r.cp.is_none()).map(|(i, _)| i).collect()
    }
}

/// Plants `bug` in a control plane (with the `planted-bugs` feature).
fn plant(cp: &mut ControlPlane, bug: Option<PlantedBug>) {
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = bug {
        cp.plant_bug(bug);
    }
    #[cfg(not(feature = "planted-bugs"))]
    let _ = (cp, bug);
}

/// Runs `f` on replica `r` as one transaction over the shared store:
/// refresh (unless the replica acts on a stale snapshot), apply, then
/// compare-and-set by generation. A replica that lost the race reloads and
/// decides again, once.
fn transact<T>(
    world: &mut World,
    r: usize,
    mut f: impl FnMut(&mut ControlPlane, Timestamp, &mut ChaCha20Rng) -> T,
) -> Option<T> {
    let now = timestamp(world.clock_ms);
    let side = &mut world.control;
    let replica = side.replicas.get_mut(r)?;
    let stale = std::mem::take(&mut replica.stale);
    let mut cp = replica.cp.take()?;
    if !stale && cp.ledger().generation() != side.store.generation() {
        cp = side.load_replica()?;
    }
    let mut out = None;
    for _ in 0..2 {
        let before = cp.ledger().generation();
        let result = f(&mut cp, now, &mut side.rng);
        if cp.ledger().generation() == before {
            out = Some(result);
            break;
        }
        if side.store.generation() == before {
            side.store = cp.ledger().clone();
            if let Ok(observer) =
                ControlPlane::from_ledger(side.settings.clone(), side.store.clone())
            {
                side.observer = observer;
            }
            out = Some(result);
            break;
        }
        tracing::debug!(replica = r, "lost a compare-and-set race; deciding again");
        match side.load_replica() {
            Some(fresh) => cp = fresh,
            None => break,
        }
    }
    if let Some(replica) = side.replicas.get_mut(r) {
        replica.cp = Some(cp);
    }
    out
}

/// Applies a control-plane event.
pub(crate) fn apply(world: &mut World, event: &Event) {
    match event {
        Event::ControlTick { replica } => {
            let r = *replica;
            if let Some(actions) = transact(world, r, |cp, now, rng| cp.tick(now, rng)) {
                world.control.requests.extend(
                    actions.into_iter().map(|action| InFlightRequest { replica: r, action }),
                );
            }
        }
        Event::ControlRequest { index } if *index < world.control.requests.len() => {
            let req = world.control.requests.remove(*index);
            deliver_request(world, req);
        }
        Event::ControlReply { index } if *index < world.control.replies.len() => {
            let reply = world.control.replies.remove(*index);
            deliver_reply(world, reply);
        }
        Event::LoseControlRequest { index } if *index < world.control.requests.len() => {
            world.control.requests.remove(*index);
        }
        Event::LoseControlReply { index } if *index < world.control.replies.len() => {
            world.control.replies.remove(*index);
        }
        Event::ControlCrash { replica } => {
            if let Some(r) = world.control.replicas.get_mut(*replica) {
                r.cp = None;
                r.stale = false;
            }
        }
        Event::ControlRestart { replica } => {
            let side = &mut world.control;
            if side.replicas.get(*replica).is_some_and(|r| r.cp.is_none()) {
                let fresh = side.load_replica();
                if let Some(r) = side.replicas.get_mut(*replica) {
                    r.cp = fresh;
                }
            }
        }
        Event::ControlStale { replica } => {
            if let Some(r) = world.control.replicas.get_mut(*replica).filter(|r| r.cp.is_some()) {
                r.stale = true;
            }
        }
        Event::Initialize { replica, sleds } => {
            let rack_id = world.rack_id;
            let out = transact(world, *replica, |cp, now, rng| {
                cp.initialize(rack_id, sleds.iter().cloned(), now, rng)
            });
            if let Some(Err(e)) = out {
                tracing::debug!(%e, "initialize rejected");
            }
        }
        Event::AddSleds { replica, sleds } => {
            let latest = world.control.observer.latest_epoch();
            let out = transact(world, *replica, |cp, now, rng| {
                cp.add_sleds(sleds.iter().cloned(), now, rng)
            });
            match out {
                // A new configuration: sleds that left the rack earlier are
                // reset before anything about the new epoch reaches them. (A
                // repeated add returns the epoch already preparing.)
                Some(Ok(epoch)) if Some(epoch) > latest => {
                    for sled in sleds {
                        reset_sled(world, sled);
                    }
                }
                Some(Err(e)) => tracing::debug!(%e, "add sleds rejected"),
                Some(Ok(_)) | None => {}
            }
        }
        Event::RemoveSleds { replica, sleds } => {
            let out = transact(world, *replica, |cp, now, rng| {
                cp.remove_sleds(sleds.iter().cloned(), now, rng)
            });
            if let Some(Err(e)) = out {
                tracing::debug!(%e, "remove sleds rejected");
            }
        }
        Event::Abort { replica } => {
            let out =
                transact(world, *replica, |cp, now, _| cp.abort_latest("operator abort", now));
            if let Some(Err(e)) = out {
                tracing::debug!(%e, "abort rejected");
            }
        }
        _ => {}
    }
}

/// The operator's reset of a sled that is about to be added: a sled with
/// state from an earlier membership is wiped (and restarted if it ran).
fn reset_sled(world: &mut World, sled: &BaseboardId) {
    let has_state = world.sleds.get(sled).is_some_and(|s| s.disk().latest_config().is_some());
    if !has_state {
        return;
    }
    let was_up = world.is_up(sled);
    world.crash(sled);
    world.apply_wipe(sled);
    // Requests addressed to the sled's previous life die with it.
    world.control.requests.retain(|r| action_target(&r.action) != sled);
    if was_up {
        world.restart(sled);
    }
}

/// The sled a control-plane action is for.
fn action_target(action: &ControlAction) -> &BaseboardId {
    match action {
        ControlAction::Reconfigure { to, .. } | ControlAction::PollCoordinator { to, .. } => to,
        ControlAction::Commit { member, .. }
        | ControlAction::PrepareAndCommit { member, .. }
        | ControlAction::Activate { member } => member,
    }
}

/// Whether `via` can relay to `member`: both up and connected (or the same).
fn relay_ok(world: &World, via: &BaseboardId, member: &BaseboardId) -> Result<(), BaseboardId> {
    if !world.is_up(via) {
        return Err(via.clone());
    }
    if !world.is_up(member) || (via != member && !world.net.is_connected(via, member)) {
        return Err(member.clone());
    }
    Ok(())
}

fn deliver_request(world: &mut World, req: InFlightRequest) {
    let replica = req.replica;
    let kind = match req.action {
        ControlAction::Reconfigure { to, msg } => {
            if world.faults_on && chance(&mut world.control.rng, world.plan.coordinator_stays_down)
            {
                // The chosen coordinator dies now and stays down for ten
                // simulated minutes: the driver must time out and retry.
                world.crash(&to);
                if let Some(s) = world.sleds.get_mut(&to) {
                    s.down_until_ms = Some(world.clock_ms.saturating_add(600_000));
                }
            }
            let epoch = msg.epoch;
            match world.request(&to, |n, ctx| n.coordinate_reconfiguration(ctx, msg)) {
                Some(result) => ReplyKind::Reconfigure { epoch, from: to, result },
                None => ReplyKind::Unreachable { node: to },
            }
        }
        ControlAction::PollCoordinator { to, epoch } => {
            match world.request(&to, |n, _| n.coordinator_status()) {
                Some(status) => ReplyKind::Status { epoch, from: to, status },
                None => ReplyKind::Unreachable { node: to },
            }
        }
        ControlAction::Commit { member, via, req } => match relay_ok(world, &via, &member) {
            Err(node) => ReplyKind::Unreachable { node },
            Ok(()) => {
                let epoch = req.epoch;
                match world.request(&member, |n, ctx| n.commit_configuration(ctx, req)) {
                    Some(result) => ReplyKind::Commit {
                        epoch,
                        member,
                        result: result.map_err(MemberCommitError::Commit),
                    },
                    None => ReplyKind::Unreachable { node: member },
                }
            }
        },
        ControlAction::PrepareAndCommit { member, via, req } => {
            match relay_ok(world, &via, &member) {
                Err(node) => ReplyKind::Unreachable { node },
                Ok(()) => {
                    let epoch = req.config.epoch;
                    match world.request(&member, |n, ctx| n.prepare_and_commit(ctx, req)) {
                        Some(result) => ReplyKind::Commit {
                            epoch,
                            member,
                            result: result.map_err(MemberCommitError::PrepareAndCommit),
                        },
                        None => ReplyKind::Unreachable { node: member },
                    }
                }
            }
        }
        ControlAction::Activate { member } => {
            if world.is_up(&member) {
                world.control.activated.insert(member.clone());
                ReplyKind::Activated { member }
            } else {
                ReplyKind::Unreachable { node: member }
            }
        }
    };
    world.control.replies.push(InFlightReply { replica, kind });
}

fn deliver_reply(world: &mut World, reply: InFlightReply) {
    let r = reply.replica;
    let kind = reply.kind;
    let outcome = transact(world, r, |cp, now, _| match &kind {
        ReplyKind::Reconfigure { epoch, from, result } => {
            cp.on_reconfigure_result(*epoch, from, result.clone(), now).map_err(|e| e.to_string())
        }
        ReplyKind::Status { epoch, from, status } => {
            cp.on_coordinator_status(*epoch, from, status.clone(), now).map_err(|e| e.to_string())
        }
        ReplyKind::Commit { epoch, member, result } => {
            cp.on_commit_result(*epoch, member, result.clone(), now).map_err(|e| e.to_string())
        }
        ReplyKind::Activated { member } => cp.on_activated(member, now).map_err(|e| e.to_string()),
        ReplyKind::Unreachable { node } => {
            cp.on_unreachable(node, now);
            Ok(())
        }
    });
    if let Some(Err(e)) = outcome {
        tracing::debug!(replica = r, %e, "stale or rejected control-plane result");
    }
}

fn pick_index(rng: &mut ChaCha20Rng, len: usize, reorder: bool) -> usize {
    if reorder { below(rng, len) } else { 0 }
}

/// A control-plane fault, drawn with the plan's probabilities.
pub(crate) fn fault_event(world: &mut World, plan: &FaultPlan) -> Option<Event> {
    let up = world.control.up_replicas();
    let down = world.control.down_replicas();
    let rng = world.chooser();
    if up.len() > 1 && chance(rng, plan.control_crash) {
        return pick(rng, &up).map(|replica| Event::ControlCrash { replica });
    }
    if !down.is_empty() && (rng.next_u32() % 20 == 0 || !world.faults_on) {
        return pick(world.chooser(), &down).map(|replica| Event::ControlRestart { replica });
    }
    let rng = world.chooser();
    if chance(rng, plan.control_race) {
        return pick(rng, &up).map(|replica| Event::ControlStale { replica });
    }
    let nreq = world.control.requests.len();
    let nrep = world.control.replies.len();
    let rng = world.chooser();
    if nreq > 0 && chance(rng, plan.control_loss) {
        return Some(Event::LoseControlRequest { index: pick_index(rng, nreq, true) });
    }
    if nrep > 0 && chance(rng, plan.control_loss) {
        return Some(Event::LoseControlReply { index: pick_index(rng, nrep, true) });
    }
    None
}

/// Ordinary control-plane progress: a driver pass, a request or a reply.
pub(crate) fn progress_event(world: &mut World) -> Option<Event> {
    let up = world.control.up_replicas();
    let nreq = world.control.requests.len();
    let nrep = world.control.replies.len();
    let reorder = world.faults_on && world.plan.reorder_links > 0;
    let rng = world.chooser();
    // Long queues are drained before the driver adds to them.
    let roll =
        if nreq.saturating_add(nrep) > 16 { rng.next_u32() % 8 } else { rng.next_u32() % 10 };
    if nreq > 0 && roll < 4 {
        return Some(Event::ControlRequest { index: pick_index(rng, nreq, reorder) });
    }
    if nrep > 0 && roll < 8 {
        return Some(Event::ControlReply { index: pick_index(rng, nrep, reorder) });
    }
    pick(rng, &up).map(|replica| Event::ControlTick { replica })
}

/// An operator request: mostly adding or removing sleds, rarely an abort.
pub(crate) fn operator_event(world: &mut World) -> Option<Event> {
    let up = world.control.up_replicas();
    let members = world.control.observer.membership();
    let spares: Vec<BaseboardId> =
        world.control.universe.iter().filter(|s| !members.contains(*s)).cloned().collect();
    let members: Vec<BaseboardId> = members.into_iter().collect();
    let rng = world.chooser();
    let replica = pick(rng, &up)?;
    let roll = rng.next_u32() % 10;
    if roll < 5 && !spares.is_empty() {
        let n = below(rng, 3).saturating_add(1);
        let mut sleds = BTreeSet::new();
        for _ in 0..n {
            if let Some(s) = pick(rng, &spares) {
                sleds.insert(s);
            }
        }
        return Some(Event::AddSleds { replica, sleds: sleds.into_iter().collect() });
    }
    if roll < 9 {
        let sled = pick(rng, &members)?;
        return Some(Event::RemoveSleds { replica, sleds: vec![sled] });
    }
    Some(Event::Abort { replica })
}

/// Ledger rules, checked after every event: the ledger's own validation
/// (sequential epochs, at most one active configuration, well-formed
/// records), states only moving forward, commit safety and agreement with
/// what the nodes durably hold (docs/protocol.md sections 5.2, 7.1, 7.3).
pub(crate) fn check_ledger(checker: &mut Checker, world: &World) {
    let side = &world.control;
    if let Err(e) = side.store.validate() {
        checker.violation("ledger_rules", format!("stored ledger invalid: {e}"));
    }
    let cp = &side.observer;
    let mut previous_state = None;
    for epoch in cp.epochs() {
        let Some(view) = cp.config(epoch) else { continue };
        states_move_forward(checker, &view);
        if let Some(prev) = previous_state {
            if !matches!(
                prev,
                ConfigState::Committed | ConfigState::CommittedPartially | ConfigState::Aborted
            ) {
                checker.violation(
                    "ledger_rules",
                    format!("epoch {epoch} follows an active configuration"),
                );
            }
        }
        previous_state = Some(view.state);
        commit_safety(checker, world, &view);
        node_configs_match_ledger(checker, &view);
        coordinator_rules(checker, cp, &view);
    }
    // No node holds a configuration for an epoch the ledger never created.
    let latest = cp.latest_epoch();
    for (id, s) in &world.sleds {
        if let Some(c) = s.disk().latest_config() {
            if latest.is_none_or(|l| c.epoch > l) {
                checker.violation(
                    "node_configs_match_cp",
                    format!("{id} holds config {} unknown to the ledger", c.epoch),
                );
            }
        }
    }
}

/// Committing never goes back, and aborts only come from preparing.
fn states_move_forward(checker: &mut Checker, view: &TrustQuorumConfig) {
    let prev = checker.ledger_states.insert(view.epoch, view.state);
    let Some(prev) = prev else { return };
    let allowed = prev == view.state
        || matches!(
            (prev, view.state),
            (ConfigState::Preparing, ConfigState::Committing | ConfigState::Aborted)
                | (
                    ConfigState::Committing,
                    ConfigState::Committed | ConfigState::CommittedPartially
                )
        );
    if !allowed {
        checker.violation(
            "ledger_forward_only",
            format!("epoch {} went {prev} -> {}", view.epoch, view.state),
        );
    }
}

/// Committing(e) implies K+Z members durably prepared e; members recorded
/// as committed have committed locally (wiped sleds excepted).
fn commit_safety(checker: &mut Checker, world: &World, view: &TrustQuorumConfig) {
    if !view.state.is_committed_or_committing() {
        return;
    }
    let e = view.epoch;
    let needed =
        usize::from(view.threshold.0).saturating_add(usize::from(view.commit_crash_tolerance));
    let held = view
        .members
        .keys()
        .filter(|m| {
            checker.wiped().contains(*m)
                || world.sleds.get(*m).is_some_and(|s| {
                    s.disk().is_prepared(e)
                        || s.disk().latest_committed_epoch().is_some_and(|l| l > e)
                })
        })
        .count();
    if held < needed && view.state == ConfigState::Committing {
        checker.violation(
            "commit_safety",
            format!("epoch {e} committing with {held} durable preparers, needs {needed}"),
        );
    }
    // Recoverability (7.3): K holders remain unless more than Z of the
    // preparers were wiped.
    let holders = view
        .members
        .keys()
        .filter(|m| world.sleds.get(*m).is_some_and(|s| s.disk().is_prepared(e)))
        .count();
    let wiped = view.members.keys().filter(|m| checker.wiped().contains(*m)).count();
    if holders < usize::from(view.threshold.0) && wiped <= usize::from(view.commit_crash_tolerance)
    {
        checker.violation("recoverability", format!("epoch {e} has {holders} holders left"));
    }
    for (m, data) in &view.members {
        if data.state == MemberState::Committed && !checker.wiped().contains(m) {
            let ok = world.sleds.get(m).is_some_and(|s| s.disk().commits().contains(&e));
            if !ok {
                checker.violation(
                    "acked_commits_are_commits",
                    format!("{m} recorded committed at {e} but is not"),
                );
            }
        }
    }
}

/// Digests the ledger learned equal those of the configuration nodes hold.
fn node_configs_match_ledger(checker: &mut Checker, view: &TrustQuorumConfig) {
    let Some(config) = checker.config(view.epoch).cloned() else { return };
    let ledger_members: BTreeSet<&BaseboardId> = view.members.keys().collect();
    let node_members: BTreeSet<&BaseboardId> = config.members.keys().collect();
    if ledger_members != node_members
        || config.threshold != view.threshold
        || config.coordinator != view.coordinator
    {
        checker.violation(
            "node_configs_match_cp",
            format!("epoch {} differs between nodes and ledger", view.epoch),
        );
    }
    for (m, data) in &view.members {
        if let Some(d) = data.share_digest {
            if config.members.get(m) != Some(&d) {
                checker.violation(
                    "node_configs_match_cp",
                    format!("digest of {m} at {} differs", view.epoch),
                );
            }
        }
    }
}

/// The coordinator is a member, and (after the first configuration) a
/// member that committed the last committed configuration.
fn coordinator_rules(checker: &mut Checker, cp: &ControlPlane, view: &TrustQuorumConfig) {
    if !view.members.contains_key(&view.coordinator) {
        checker.violation("coordinator_is_member", format!("epoch {}", view.epoch));
    }
    if let Some(last) = view.last_committed_epoch.and_then(|l| cp.config(l)) {
        let ok =
            last.members.get(&view.coordinator).is_some_and(|d| d.state == MemberState::Committed);
        if !ok {
            checker.violation(
                "coordinator_committed_last",
                format!("coordinator of {} did not commit {}", view.epoch, last.epoch),
            );
        }
    }
}

/// Members whose configuration state the world must drive to completion in
/// the liveness phase.
pub(crate) fn latest_view(world: &World) -> Option<TrustQuorumConfig> {
    world.control.observer.latest()
}

/// The membership change the liveness phase must retry after an abort: the
/// aborted configuration's members compared with the current membership.
pub(crate) fn retry_event(world: &mut World) -> Option<Event> {
    let view = latest_view(world)?;
    if view.state != ConfigState::Aborted {
        return None;
    }
    let members = world.control.observer.membership();
    let target: BTreeSet<BaseboardId> = view.members.keys().cloned().collect();
    let replica = *world.control.up_replicas().first()?;
    if world.control.observer.last_committed_epoch().is_none() {
        return Some(Event::Initialize { replica, sleds: target.into_iter().collect() });
    }
    let add: Vec<BaseboardId> = target.difference(&members).cloned().collect();
    if !add.is_empty() {
        return Some(Event::AddSleds { replica, sleds: add });
    }
    let remove: Vec<BaseboardId> = members.difference(&target).cloned().collect();
    if !remove.is_empty() {
        return Some(Event::RemoveSleds { replica, sleds: remove });
    }
    None
}

/// Whether wiping `sled`'s disk keeps every configuration the rack depends
/// on recoverable: the rack tolerates losing a member's share only while K
/// other members still hold theirs, and a preparing configuration with no
/// crash tolerance (Z = 0) may already count the sled's acknowledgement.
/// The simulator injects only such disk losses, since the protocol promises
/// nothing beyond them (docs/protocol.md section 7.3, recoverability).
pub(crate) fn wipe_is_survivable(world: &World, sled: &BaseboardId) -> bool {
    let cp = &world.control.observer;
    let holders = |e: Epoch| {
        world.sleds.iter().filter(|(id, s)| *id != sled && s.disk().is_prepared(e)).count()
    };
    let base = cp.last_committed_epoch().and_then(|e| cp.config(e));
    let latest = cp.latest();
    for view in base.iter().chain(latest.iter()) {
        if !view.members.contains_key(sled) {
            continue;
        }
        let k = usize::from(view.threshold.0);
        match view.state {
            ConfigState::Preparing if view.commit_crash_tolerance == 0 => return false,
            ConfigState::Preparing | ConfigState::Aborted => {}
            ConfigState::Committing | ConfigState::Committed | ConfigState::CommittedPartially => {
                if holders(view.epoch) < k {
                    return false;
                }
            }
        }
    }
    true
}

/// Pending activations (members committed but not yet in service).
pub(crate) fn pending_activations(world: &World) -> BTreeSet<BaseboardId> {
    world.control.observer.pending_activations()
}

/// Ledger views by epoch, for reports.
pub(crate) fn views(world: &World) -> BTreeMap<Epoch, TrustQuorumConfig> {
    let cp = &world.control.observer;
    cp.epochs().filter_map(|e| cp.config(e).map(|v| (e, v))).collect()
}
