//! Checks on every released envelope (docs/protocol.md section 7.3).

use tq_types::{Envelope, PeerMsgKind};
use trust_quorum::PersistentState;

use super::Checker;
use super::rules::Rule;

impl Checker {
    /// A sled released `e` for sending, with durable state `disk`.
    pub(super) fn on_send(&mut self, e: &Envelope, disk: &PersistentState) {
        if disk.expunged().is_some() {
            self.violation(
                Rule::ExpungedSilence,
                format!("expunged {} sent {}", e.from, e.msg.kind.name()),
            );
        }
        match &e.msg.kind {
            PeerMsgKind::Share { epoch, .. } => {
                let member = disk.config(*epoch).is_some_and(|c| c.is_member(&e.to));
                if !member {
                    self.violation(
                        Rule::ShareOnlyToMembers,
                        format!("{} sent its share of {epoch} to non-member {}", e.from, e.to),
                    );
                }
            }
            PeerMsgKind::Prepare { config, .. } => {
                if !config.is_member(&e.to) {
                    self.violation(
                        Rule::PrepareOnlyToMembers,
                        format!("prepare {} sent to non-member {}", config.epoch, e.to),
                    );
                }
                self.global_uniqueness("in a prepare", config);
            }
            PeerMsgKind::PrepareAck(epoch) => {
                if disk.latest_committed_epoch().is_some_and(|l| l > *epoch) {
                    self.violation(
                        Rule::StalePrepares,
                        format!("{} acked prepare {epoch} after committing later", e.from),
                    );
                }
                if !disk.is_prepared(*epoch) {
                    self.violation(
                        Rule::PersistBeforeSend,
                        format!("{} acked prepare {epoch} before persisting it", e.from),
                    );
                }
            }
            PeerMsgKind::CommitAdvance(committed) => {
                self.global_uniqueness("in a commit advance", &committed.config);
            }
            PeerMsgKind::Expunged(committed) => {
                self.global_uniqueness("in an expunged notice", &committed.config);
            }
            PeerMsgKind::GetShare(_) => {}
        }
    }
}
