//! Checks that tie honest sleds' durable writes to the control plane's own
//! decisions, as the simulator recorded them when they were sent
//! (`control/decisions.rs`): a sled stores only configurations built from a
//! request the authority signed, commits only what the authority certified,
//! and becomes expunged only by a certified configuration that left it out.
//! They need no signature verification: a lying peer can forge bytes, but
//! not entries in this record.

use std::collections::BTreeSet;

use tq_types::{BaseboardId, ExpungedMetadata};
use trust_quorum::PersistentState;
use trust_quorum::crypto::authority::config_digest;

use super::Checker;
use super::rules::Rule;
use crate::control::Decisions;

impl Checker {
    /// Judges one durable write of `who` (whose expunged marker was `old`
    /// before it) against the control plane's decisions.
    pub(super) fn on_signed_persist(
        &mut self,
        who: &BaseboardId,
        old: Option<&ExpungedMetadata>,
        new: &PersistentState,
        decisions: &Decisions,
    ) {
        self.signed_configs_only(who, new, decisions);
        self.expunged_only_if_removed(who, old, new, decisions);
    }

    /// Every stored configuration embeds a request the control plane signed
    /// and agrees with it; every stored commit carries a certificate the
    /// control plane issued, naming that very configuration.
    fn signed_configs_only(&mut self, who: &BaseboardId, s: &PersistentState, d: &Decisions) {
        for (e, c) in s.configs() {
            let r = &c.reconfigure.msg;
            let why = if !d.signed(&c.reconfigure) {
                "embeds a request the control plane never signed"
            } else if r.epoch != *e
                || c.epoch != *e
                || r.rack_id != c.rack_id
                || r.coordinator != c.coordinator
                || r.threshold != c.threshold
                || r.members != c.members.keys().cloned().collect::<BTreeSet<_>>()
            {
                "differs from the request the control plane signed"
            } else {
                continue;
            };
            self.violation(Rule::SignedConfigsOnly, format!("{who} stores config {e} that {why}"));
        }
        for e in s.commits() {
            let issued = s.certificate(*e).is_some_and(|cert| d.certificates(*e).contains(cert));
            let names_config = match (s.certificate(*e), s.config(*e)) {
                (Some(cert), Some(c)) => config_digest(c).is_ok_and(|g| g == cert.config_digest),
                _ => false,
            };
            if !issued || !names_config {
                self.violation(
                    Rule::SignedConfigsOnly,
                    format!("{who} committed {e} without the control plane's certificate of it"),
                );
            }
        }
    }

    /// A sled is newly marked expunged only at an epoch the control plane
    /// certified as committed, whose signed membership leaves it out.
    fn expunged_only_if_removed(
        &mut self,
        who: &BaseboardId,
        old: Option<&ExpungedMetadata>,
        s: &PersistentState,
        d: &Decisions,
    ) {
        let Some(ex) = s.expunged().filter(|ex| old != Some(*ex)) else { return };
        let certified = !d.certificates(ex.epoch).is_empty();
        let requests = d.requests(ex.epoch);
        let removed = !requests.is_empty() && requests.iter().all(|r| !r.msg.members.contains(who));
        if !certified || !removed {
            self.violation(
                Rule::ExpungedOnlyIfRemoved,
                format!(
                    "{who} marked expunged at {} (told by {}) but no committed configuration \
                     of that epoch removed it",
                    ex.epoch, ex.from
                ),
            );
        }
    }
}
