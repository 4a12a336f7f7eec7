//! The simulator's own record of what the control plane decided: every
//! signed reconfiguration request and every commit certificate that left a
//! replica for a sled. The oracles compare honest sleds' durable states with
//! it (a sled may only store what the authority really signed), without
//! verifying any signature with the product's code.

use std::collections::BTreeMap;

use tq_types::{CommitCertificate, Epoch, SignedReconfigure};
use trust_quorum::control::ControlAction;

/// The control plane's signed decisions, by epoch.
#[derive(Clone, Default, Debug)]
pub(crate) struct Decisions {
    /// Each epoch's signed request (the control plane signs one per epoch).
    requests: BTreeMap<Epoch, Vec<SignedReconfigure>>,
    /// Each epoch's commit certificates.
    certificates: BTreeMap<Epoch, Vec<CommitCertificate>>,
}

impl Decisions {
    /// Notes the signed decisions `action` carries.
    pub(crate) fn record(&mut self, action: &ControlAction) {
        match action {
            ControlAction::Reconfigure { msg, .. } => {
                let seen = self.requests.entry(msg.msg.epoch).or_default();
                if !seen.contains(msg) {
                    seen.push(msg.clone());
                }
            }
            ControlAction::Commit { req, .. } => self.certified(req.certificate),
            ControlAction::PrepareAndCommit { req, .. } => self.certified(req.certificate),
            ControlAction::PollCoordinator { .. } | ControlAction::Activate { .. } => {}
        }
    }

    fn certified(&mut self, certificate: CommitCertificate) {
        let seen = self.certificates.entry(certificate.epoch).or_default();
        if !seen.contains(&certificate) {
            seen.push(certificate);
        }
    }

    /// Notes a signed request directly (tests).
    #[cfg(test)]
    pub(crate) fn insert_request(&mut self, signed: SignedReconfigure) {
        self.requests.entry(signed.msg.epoch).or_default().push(signed);
    }

    /// Notes a certificate directly (tests).
    #[cfg(test)]
    pub(crate) fn insert_certificate(&mut self, certificate: CommitCertificate) {
        self.certified(certificate);
    }

    /// Whether the control plane signed exactly `signed`.
    pub(crate) fn signed(&self, signed: &SignedReconfigure) -> bool {
        self.requests.get(&signed.msg.epoch).is_some_and(|s| s.contains(signed))
    }

    /// The requests the control plane signed for `epoch`.
    pub(crate) fn requests(&self, epoch: Epoch) -> &[SignedReconfigure] {
        self.requests.get(&epoch).map_or(&[], Vec::as_slice)
    }

    /// The certificates the control plane issued for `epoch`.
    pub(crate) fn certificates(&self, epoch: Epoch) -> &[CommitCertificate] {
        self.certificates.get(&epoch).map_or(&[], Vec::as_slice)
    }
}
