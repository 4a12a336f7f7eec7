//! Safety invariants, checked after every event (docs/protocol.md section 7).
//!
//! Each check is one function named after the rule it enforces. Checks that
//! need to see a transition (a persist, a send, a secret load) run on what
//! the world reports having done (observations, which the run loop feeds to
//! the [`Checker`]); the rest run over the whole world, read-only, after
//! every event.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{BaseboardId, Configuration, Envelope, Epoch, LoadRackSecretError, PeerMsgKind};
use trust_quorum::{PersistentState, RackSecret, crypto};

use crate::ledger_rules::{LedgerRules, Seen};
use crate::observation::Observation;
pub use crate::violation::Violation;
use crate::violation::Violations;
use crate::world::World;

/// Invariant state carried across events.
#[derive(Default)]
pub struct Checker {
    violations: Violations,
    /// Sleds whose disk was wiped: rules about durable state exempt them.
    wiped: BTreeSet<BaseboardId>,
    /// The first configuration seen for each epoch, anywhere.
    configs: BTreeMap<Epoch, Configuration>,
    /// A hash of the first secret reconstructed for each epoch.
    secrets: BTreeMap<Epoch, [u8; 32]>,
    /// Which sled loaded which epoch's secret.
    loaded: BTreeSet<(BaseboardId, Epoch)>,
    /// The epochs sealed in each configuration, as opened on a load.
    sealed: BTreeMap<Epoch, Vec<Epoch>>,
    /// The ledger rules' own state.
    ledger: LedgerRules,
}

impl Checker {
    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.violations.as_slice()
    }

    /// Records a violation.
    fn violation(&mut self, invariant: &str, detail: impl Into<String>) {
        self.violations.record(invariant, detail);
    }

    /// Feeds what the world reported during an event, in order, then runs
    /// the whole-world checks over the world as the event left it.
    pub(crate) fn after_event(&mut self, observed: Vec<Observation>, world: &World) {
        for o in observed {
            self.observe(o);
        }
        self.check_all(world);
    }

    /// Checks one transition the world reported.
    pub(crate) fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Persisted { who, old, new } => self.on_persist(&who, &old, &new),
            Observation::Sent { envelope, sender_disk } => self.on_send(&envelope, &sender_disk),
            Observation::Wiped { who } => {
                self.wiped.insert(who);
            }
            Observation::SecretLoaded { who, epoch, latest_committed, result, config } => {
                self.load_postconditions(&who, epoch, latest_committed, &result);
                if let Ok(Some(secret)) = &result {
                    self.on_secret(&who, epoch, secret, config.as_ref());
                }
            }
        }
    }

    /// A sled durably wrote `new` over `old`.
    fn on_persist(&mut self, who: &BaseboardId, old: &PersistentState, new: &PersistentState) {
        self.monotonic_across_crashes(who, old, new);
        self.local_commit_implies_prepared(who, new);
        self.membership(who, new);
        self.share_integrity(who, new);
        for config in new.configs().values() {
            self.global_uniqueness(&format!("stored by {who}"), config);
        }
    }

    /// Configurations, shares and commits are never removed; the latest
    /// committed epoch never decreases; `expunged` is cleared only by a
    /// configuration of a later epoch that lists the sled (7.3, 4.8).
    fn monotonic_across_crashes(
        &mut self,
        who: &BaseboardId,
        old: &PersistentState,
        new: &PersistentState,
    ) {
        for (e, c) in old.configs() {
            if new.config(*e) != Some(c) {
                self.violation("monotonicity", format!("{who} lost or replaced config {e}"));
            }
        }
        for e in old.share_epochs() {
            if new.share(e) != old.share(e) {
                self.violation("monotonicity", format!("{who} lost or replaced share {e}"));
            }
        }
        if !old.commits().is_subset(new.commits()) {
            self.violation("monotonicity", format!("{who} lost a commit"));
        }
        if let Some(ex) = old.expunged().filter(|_| new.expunged() != old.expunged()) {
            // Only a re-add clears it: a configuration newer than the
            // expungement that lists the sled (docs/protocol.md section 4.8).
            let readmitted = new.expunged().is_none()
                && new.configs().iter().any(|(e, c)| *e > ex.epoch && c.is_member(who));
            if !readmitted {
                self.violation("monotonicity", format!("{who} cleared or changed expunged"));
            }
        }
    }

    /// A local commit implies prepared(e) (7.3, commit safety; TLA+
    /// CommittedNodesHaveShares).
    fn local_commit_implies_prepared(&mut self, who: &BaseboardId, s: &PersistentState) {
        for e in s.commits() {
            if !s.is_prepared(*e) {
                self.violation(
                    "commit_implies_prepared",
                    format!("{who} committed {e} unprepared"),
                );
            }
        }
    }

    /// A node holds a config or share for e only if it is in members(e).
    fn membership(&mut self, who: &BaseboardId, s: &PersistentState) {
        for (e, c) in s.configs() {
            if !c.is_member(who) {
                self.violation("membership", format!("{who} stores config {e} it is not in"));
            }
        }
        for e in s.share_epochs() {
            if s.config(e).is_none_or(|c| !c.is_member(who)) {
                self.violation("membership", format!("{who} holds share {e} without membership"));
            }
        }
    }

    /// Every stored share hashes to its holder's digest.
    fn share_integrity(&mut self, who: &BaseboardId, s: &PersistentState) {
        for e in s.share_epochs() {
            let ok = match (s.share(e), s.config(e).and_then(|c| c.members.get(who))) {
                (Some(share), Some(digest)) => crypto::share_matches(share, digest),
                _ => false,
            };
            if !ok {
                self.violation(
                    "share_integrity",
                    format!("{who}'s share {e} mismatches its digest"),
                );
            }
        }
    }

    /// Every epoch has one configuration everywhere (7.2, 7.3).
    fn global_uniqueness(&mut self, seen: &str, config: &Configuration) {
        match self.configs.get(&config.epoch) {
            None => {
                self.configs.insert(config.epoch, config.clone());
            }
            Some(first) if first == config => {}
            Some(_) => self.violation(
                "global_uniqueness",
                format!("two configurations for epoch {} ({seen})", config.epoch),
            ),
        }
    }

    /// A sled queued `e` for sending, with durable state `disk`.
    fn on_send(&mut self, e: &Envelope, disk: &PersistentState) {
        if disk.expunged().is_some() {
            self.violation(
                "expunged_silence",
                format!("expunged {} sent {}", e.from, e.msg.kind.name()),
            );
        }
        match &e.msg.kind {
            PeerMsgKind::Share { epoch, .. } => {
                let member = disk.config(*epoch).is_some_and(|c| c.is_member(&e.to));
                if !member {
                    self.violation(
                        "share_only_to_members",
                        format!("{} sent its share of {epoch} to non-member {}", e.from, e.to),
                    );
                }
            }
            PeerMsgKind::Prepare { config, .. } => {
                if !config.is_member(&e.to) {
                    self.violation(
                        "prepare_only_to_members",
                        format!("prepare {} sent to non-member {}", config.epoch, e.to),
                    );
                }
                self.global_uniqueness("in a prepare", config);
            }
            PeerMsgKind::PrepareAck(epoch) => {
                if disk.latest_committed_epoch().is_some_and(|l| l > *epoch) {
                    self.violation(
                        "stale_prepares",
                        format!("{} acked prepare {epoch} after committing later", e.from),
                    );
                }
                if !disk.is_prepared(*epoch) {
                    self.violation(
                        "persist_before_send",
                        format!("{} acked prepare {epoch} before persisting it", e.from),
                    );
                }
            }
            PeerMsgKind::CommitAdvance(committed) | PeerMsgKind::Expunged(committed) => {
                self.global_uniqueness("in a commit advance", &committed.config);
            }
            PeerMsgKind::GetShare(_) => {}
        }
    }

    /// `who` loaded the secret of `epoch` from a node whose configuration
    /// of that epoch is `config`: all reconstructions of one epoch's secret
    /// agree, and the secrets sealed in `config` open with it and agree
    /// with what was reconstructed for their epochs (7.3, secret agreement
    /// and chain completeness).
    fn on_secret(
        &mut self,
        who: &BaseboardId,
        epoch: Epoch,
        secret: &RackSecret,
        config: Option<&Configuration>,
    ) {
        self.agree(who, epoch, secret);
        self.loaded.insert((who.clone(), epoch));
        let Some(config) = config else { return };
        match &config.encrypted_rack_secrets {
            None => {
                self.sealed.insert(epoch, Vec::new());
            }
            Some(sealed) => match crypto::open(sealed, config.rack_id, epoch, secret) {
                Ok(prior) => {
                    for (e, s) in &prior {
                        self.agree(who, *e, s);
                    }
                    self.sealed.insert(epoch, prior.keys().copied().collect());
                }
                Err(e) => self.violation(
                    "chain_completeness",
                    format!("{who}: sealed secrets of {epoch}: {e}"),
                ),
            },
        }
    }

    /// Load postconditions (7.2): a returned secret implies the latest
    /// committed epoch is at least the requested one; `NotAvailable` implies
    /// it is later; `NotCommitted` implies it is earlier (or absent).
    fn load_postconditions(
        &mut self,
        who: &BaseboardId,
        epoch: Epoch,
        latest: Option<Epoch>,
        result: &Result<Option<RackSecret>, LoadRackSecretError>,
    ) {
        let ok = match result {
            Ok(Some(_)) => latest.is_some_and(|l| l >= epoch),
            Ok(None) => latest.is_some(),
            Err(LoadRackSecretError::NotAvailable(_)) => latest.is_some_and(|l| l > epoch),
            Err(LoadRackSecretError::NotCommitted(_)) => latest.is_none_or(|l| l < epoch),
            Err(LoadRackSecretError::NoCommittedConfigurations) => latest.is_none(),
            Err(_) => true,
        };
        if !ok {
            self.violation(
                "load_postconditions",
                format!("{who} load of {epoch} with latest committed {latest:?} gave {result:?}"),
            );
        }
    }

    fn agree(&mut self, who: &BaseboardId, epoch: Epoch, secret: &RackSecret) {
        let h = *blake3::hash(secret.expose()).as_bytes();
        match self.secrets.get(&epoch) {
            None => {
                self.secrets.insert(epoch, h);
            }
            Some(first) if *first == h => {}
            Some(_) => {
                self.violation("secret_agreement", format!("{who} got another secret for {epoch}"))
            }
        }
    }

    /// Whether `who` loaded the secret of `epoch`.
    pub(crate) fn has_loaded(&self, who: &BaseboardId, epoch: Epoch) -> bool {
        self.loaded.contains(&(who.clone(), epoch))
    }

    /// The epochs sealed in the configuration of `epoch`, once opened.
    pub(crate) fn sealed_epochs(&self, epoch: Epoch) -> Option<&[Epoch]> {
        self.sealed.get(&epoch).map(Vec::as_slice)
    }

    /// The whole-world checks, run after every event.
    fn check_all(&mut self, world: &World) {
        self.no_alarms(world);
        self.no_coordinating_while_computing(world);
        self.acked_members_have_prepared(world);
        let seen = Seen { wiped: &self.wiped, configs: &self.configs };
        self.ledger.check(world, &seen, &mut self.violations);
    }

    /// No alarm is ever raised (7.2).
    fn no_alarms(&mut self, world: &World) {
        for (id, s) in &world.rack.sleds {
            if let Some((_, ctx)) = s.embedded.live() {
                if let Some(a) = ctx.alarms().first() {
                    self.violation("no_alarms", format!("{id} raised {a:?}"));
                }
            }
        }
    }

    /// No node coordinates while computing a key share (7.2).
    fn no_coordinating_while_computing(&mut self, world: &World) {
        for (id, s) in &world.rack.sleds {
            if let Some((node, ctx)) = s.embedded.live() {
                let st = node.status(ctx);
                if st.coordinating.is_some() && st.computing_share.is_some() {
                    self.violation("coordinate_xor_compute", format!("{id} does both"));
                }
            }
        }
    }

    /// Any member a coordinator counts as acked has prepared that epoch (7.2).
    fn acked_members_have_prepared(&mut self, world: &World) {
        for (id, s) in &world.rack.sleds {
            let Some(status) = s.embedded.coordinator_status() else {
                continue;
            };
            let e = status.config.epoch;
            for m in &status.acked_prepares {
                let prepared = world.rack.sleds.get(m).is_some_and(|x| x.disk().is_prepared(e));
                if !prepared && !self.wiped.contains(m) {
                    self.violation(
                        "acked_members_prepared",
                        format!("coordinator {id} counts {m} acked for {e} but it is not prepared"),
                    );
                }
            }
            // While collecting old shares the configuration has no sealed
            // secrets yet; it is final once the coordinator prepares.
            if !status.acked_prepares.is_empty() {
                self.global_uniqueness(&format!("coordinated by {id}"), &status.config);
            }
        }
    }
}
