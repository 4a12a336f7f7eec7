//! Checks on every secret load, against the world's ground truth: the
//! answer is the right one for the sled's durable state and the epochs some
//! sled committed; every secret is the one its coordinator generated; the
//! secrets a configuration seals are exactly those of the epochs committed
//! below it (docs/protocol.md sections 4.6, 7.2, 7.3).

use std::collections::BTreeMap;

use tq_types::{BaseboardId, Configuration, Epoch, LoadRackSecretError};
use trust_quorum::{PersistentState, RackSecret, crypto};

use super::Checker;
use super::rules::Rule;
use crate::world::GroundTruth;

/// The answer of a load.
pub(super) type Answer = Result<Option<RackSecret>, LoadRackSecretError>;

/// The kind of an answer, as [`Checker::load_answers`] counts it.
fn kind(result: &Answer) -> &'static str {
    match result {
        Ok(Some(_)) => "secret",
        Ok(None) => "pending",
        Err(LoadRackSecretError::NoCommittedConfigurations) => "no_committed_configurations",
        Err(LoadRackSecretError::NotCommitted(_)) => "not_committed",
        Err(LoadRackSecretError::NotAvailable(_)) => "not_available",
        Err(LoadRackSecretError::Alarm(_)) => "alarm",
        Err(LoadRackSecretError::Expunged { .. }) => "expunged",
    }
}

impl Checker {
    /// `who`, with durable state `disk` (and an alarm raised if `alarmed`),
    /// answered a request for the secret of `epoch` with `result`.
    pub(super) fn on_load(
        &mut self,
        who: &BaseboardId,
        epoch: Epoch,
        result: &Answer,
        disk: &PersistentState,
        alarmed: bool,
        truth: &GroundTruth,
    ) {
        let count = self.load_answers.entry(kind(result)).or_insert(0);
        *count = count.saturating_add(1);
        self.load_postconditions(who, epoch, result, disk, alarmed, truth);
        if let Ok(Some(secret)) = result {
            self.on_secret(who, epoch, secret, disk.config(epoch), truth);
        }
    }

    /// Load postconditions (4.6, 7.2), one exact rule per answer. With `l`
    /// the sled's latest committed epoch and "committed" meaning durably
    /// committed by some sled at some point:
    ///
    /// - `Expunged { epoch: x }`: the sled's durable marker is x, and x is a
    ///   committed epoch whose configuration does not list the sled;
    /// - any other answer: the sled is not expunged, and
    /// - a secret: l >= epoch and epoch is committed;
    /// - pending (`Ok(None)`): l >= epoch;
    /// - `NoCommittedConfigurations`: nothing committed locally;
    /// - `NotCommitted(epoch)`: l < epoch;
    /// - `NotAvailable(epoch)`: l > epoch and epoch was never committed (a
    ///   committed epoch below l is sealed in l, so its secret is there);
    /// - `Alarm(epoch)`: the sled had raised an alarm.
    pub(super) fn load_postconditions(
        &mut self,
        who: &BaseboardId,
        epoch: Epoch,
        result: &Answer,
        disk: &PersistentState,
        alarmed: bool,
        truth: &GroundTruth,
    ) {
        let l = disk.latest_committed_epoch();
        let expunged = disk.expunged().map(|x| x.epoch);
        let ok = match result {
            Err(LoadRackSecretError::Expunged { epoch: x }) => {
                expunged == Some(*x)
                    && truth.committed_members(*x).is_some_and(|m| !m.contains(who))
            }
            _ if expunged.is_some() => false,
            Ok(Some(_)) => l.is_some_and(|l| l >= epoch) && truth.is_committed(epoch),
            Ok(None) => l.is_some_and(|l| l >= epoch),
            Err(LoadRackSecretError::NoCommittedConfigurations) => l.is_none(),
            Err(LoadRackSecretError::NotCommitted(x)) => {
                *x == epoch && l.is_some_and(|l| l < epoch)
            }
            Err(LoadRackSecretError::NotAvailable(x)) => {
                *x == epoch && l.is_some_and(|l| l > epoch) && !truth.is_committed(epoch)
            }
            Err(LoadRackSecretError::Alarm(x)) => *x == epoch && alarmed,
        };
        if !ok {
            let committed = truth.is_committed(epoch);
            self.violation(
                Rule::LoadPostconditions,
                format!(
                    "{who} load of {epoch} (latest committed {l:?}, expunged {expunged:?}, \
                     alarmed {alarmed}, {epoch} committed somewhere: {committed}) gave {result:?}"
                ),
            );
        }
    }

    /// `who` loaded the secret of `epoch` from a node whose configuration
    /// of that epoch is `config`: the secret is the one the coordinator
    /// generated; the secrets sealed in `config` open with it, are the
    /// generated ones, and are exactly those of the epochs committed below
    /// it (7.3, secret agreement and chain completeness).
    fn on_secret(
        &mut self,
        who: &BaseboardId,
        epoch: Epoch,
        secret: &RackSecret,
        config: Option<&Configuration>,
        truth: &GroundTruth,
    ) {
        self.agree(who, epoch, secret, truth);
        self.loaded.insert((who.clone(), epoch));
        let Some(config) = config else { return };
        let prior = match &config.encrypted_rack_secrets {
            None => BTreeMap::new(),
            Some(sealed) => match crypto::open(sealed, config.rack_id, epoch, secret) {
                Ok(prior) => prior,
                Err(e) => {
                    self.violation(
                        Rule::ChainCompleteness,
                        format!("{who}: sealed secrets of {epoch}: {e}"),
                    );
                    return;
                }
            },
        };
        for (e, s) in &prior {
            self.agree(who, *e, s, truth);
        }
        let sealed: Vec<Epoch> = prior.keys().copied().collect();
        let committed = truth.committed_below(epoch);
        if sealed != committed {
            self.violation(
                Rule::ChainCompleteness,
                format!(
                    "{epoch} seals {sealed:?}, but the epochs committed below it are {committed:?}"
                ),
            );
        }
        self.sealed.insert(epoch, sealed);
    }

    /// `secret`, which `who` got for `epoch`, is the one its coordinator
    /// generated.
    fn agree(&mut self, who: &BaseboardId, epoch: Epoch, secret: &RackSecret, truth: &GroundTruth) {
        match truth.secret(epoch) {
            Some(generated) if generated == secret.expose() => {}
            Some(_) => self.violation(
                Rule::SecretAgreement,
                format!("{who} got a secret for {epoch} its coordinator did not generate"),
            ),
            None => self.violation(
                Rule::SecretAgreement,
                format!("{who} got a secret for {epoch}, whose coordinator handed out < K shares"),
            ),
        }
    }
}
