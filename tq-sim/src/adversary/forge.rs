//! The attacker's messages, built from what it knows: its own durable state
//! (genuine signed requests, certificates and shares it holds) and the
//! messages it remembers. Every forged byte comes from the event's `pick`.

use std::collections::VecDeque;

use tq_types::{
    AuthoritySignature, BaseboardId, CommitCertificate, CommittedConfig, Configuration, Epoch,
    PeerMsg, PeerMsgKind, RackId, Share, ShareDigest,
};
use trust_quorum::PersistentState;
use trust_quorum::crypto::{self, authority::config_digest};

use super::Attack;

/// What the attacker knows.
pub(super) struct Known<'a> {
    /// The attacker.
    pub(super) me: &'a BaseboardId,
    /// Its durable state.
    pub(super) disk: &'a PersistentState,
    /// The messages it remembers, oldest first.
    pub(super) seen: &'a VecDeque<PeerMsg>,
}

/// 32 bytes derived from `pick` for one purpose.
fn bytes(pick: u64, what: &str) -> [u8; 32] {
    let mut material = pick.to_le_bytes().to_vec();
    material.extend_from_slice(what.as_bytes());
    blake3::derive_key("tq-sim 2026-12 adversary forgery", &material)
}

/// A signature that is 64 bytes derived from `pick`, not the authority's.
fn forged_signature(pick: u64) -> AuthoritySignature {
    let mut sig = [0u8; 64];
    for (i, b) in bytes(pick, "sig a").into_iter().chain(bytes(pick, "sig b")).enumerate() {
        if let Some(s) = sig.get_mut(i) {
            *s = b;
        }
    }
    AuthoritySignature(sig)
}

impl Known<'_> {
    /// The messages `attack` sends the victim.
    pub(super) fn build(&self, victim: &BaseboardId, attack: Attack, pick: u64) -> Vec<PeerMsg> {
        let Some(rack_id) = self.rack_id() else { return Vec::new() };
        let msg = |kind| PeerMsg { rack_id, kind };
        let one = |kind: Option<PeerMsgKind>| kind.map(msg).into_iter().collect();
        match attack {
            Attack::Replay => self.replay(pick).into_iter().collect(),
            Attack::ForgedPrepare { signed } => one(self
                .forged_config(victim, pick, signed)
                .map(|(config, share)| PeerMsgKind::Prepare { config, share })),
            Attack::ForgedCommitAdvance { mismatched } => {
                one(self.forged_committed(victim, pick, mismatched).map(PeerMsgKind::CommitAdvance))
            }
            Attack::ForgedExpunged => one(self.expunged(victim, pick)),
            Attack::GetShare { epoch } => one(Some(PeerMsgKind::GetShare(epoch))),
            Attack::MutatedShare => one(self.mutated_share(pick)),
            Attack::Flood { count } => {
                let latest = self.disk.latest_config().map_or(1, |c| c.epoch.0);
                (0..u64::from(count.min(super::attacker::MAX_FLOOD)))
                    .filter_map(|i| {
                        let p = pick.wrapping_add(i);
                        if i % 2 == 0 {
                            self.replay(p)
                        } else {
                            let epoch = Epoch(p.checked_rem(latest.saturating_add(1)).unwrap_or(0));
                            Some(msg(PeerMsgKind::GetShare(epoch)))
                        }
                    })
                    .collect()
            }
        }
    }

    fn rack_id(&self) -> Option<RackId> {
        self.disk.rack_id().or_else(|| self.seen.back().map(|m| m.rack_id))
    }

    /// A remembered message, unchanged.
    fn replay(&self, pick: u64) -> Option<PeerMsg> {
        let n = u64::try_from(self.seen.len()).ok()?;
        let i = usize::try_from(pick.checked_rem(n)?).ok()?;
        self.seen.get(i).cloned()
    }

    /// The newest configuration it knows: its own, or one it was sent.
    fn base(&self) -> Option<Configuration> {
        let mut best = self.disk.latest_config().cloned();
        for m in self.seen {
            let c = match &m.kind {
                PeerMsgKind::Prepare { config, .. } => config,
                PeerMsgKind::CommitAdvance(c) | PeerMsgKind::Expunged(c) => &c.config,
                _ => continue,
            };
            if best.as_ref().is_none_or(|b| b.epoch < c.epoch) {
                best = Some(c.clone());
            }
        }
        best
    }

    /// A genuine committed configuration it holds or was sent.
    fn genuine_committed(&self) -> Option<CommittedConfig> {
        self.disk.latest_committed().or_else(|| {
            self.seen.iter().rev().find_map(|m| match &m.kind {
                PeerMsgKind::CommitAdvance(c) | PeerMsgKind::Expunged(c) => Some(c.clone()),
                _ => None,
            })
        })
    }

    /// An invented configuration of a later epoch (or `u64::MAX`) that the
    /// attacker coordinates and the victim is in, with the victim's share.
    /// With `signed` it embeds the genuine signed request it was built
    /// from (of another epoch); without, a request that matches it but
    /// carries a forged signature.
    fn forged_config(
        &self,
        victim: &BaseboardId,
        pick: u64,
        signed: bool,
    ) -> Option<(Configuration, Share)> {
        let base = self.base()?;
        let mut c = base.clone();
        c.epoch = if pick % 5 == 0 {
            Epoch(u64::MAX)
        } else {
            Epoch(base.epoch.0.saturating_add(1).saturating_add(pick % 3))
        };
        c.coordinator = self.me.clone();
        c.members.insert(self.me.clone(), ShareDigest(bytes(pick, "own digest")));
        c.members.insert(victim.clone(), ShareDigest([0; 32]));
        let x = c.x_coordinate(victim)?;
        let mut share_bytes = vec![x];
        share_bytes.extend_from_slice(&bytes(pick, "victim share"));
        let share = Share::new(share_bytes);
        c.members.insert(victim.clone(), crypto::share_digest(&share));
        if !signed {
            let r = &mut c.reconfigure.msg;
            r.epoch = c.epoch;
            r.coordinator = self.me.clone();
            r.members = c.members.keys().cloned().collect();
            r.threshold = c.threshold;
            c.reconfigure.signature = forged_signature(pick);
        }
        Some((c, share))
    }

    /// A committed configuration the authority never certified.
    fn forged_committed(
        &self,
        victim: &BaseboardId,
        pick: u64,
        mismatched: bool,
    ) -> Option<CommittedConfig> {
        let (config, _) = self.forged_config(victim, pick, pick % 2 == 0)?;
        let certificate = if mismatched {
            self.genuine_committed()?.certificate
        } else {
            CommitCertificate {
                rack_id: config.rack_id,
                epoch: config.epoch,
                config_digest: config_digest(&config).ok()?,
                signature: forged_signature(pick),
            }
        };
        Some(CommittedConfig { config, certificate })
    }

    /// An expunged notice: a genuine committed configuration (a replay of
    /// a real decision, which is harmless unless it really removed the
    /// victim), the same with the victim taken out, or an invented one
    /// without the victim with a forged certificate.
    fn expunged(&self, victim: &BaseboardId, pick: u64) -> Option<PeerMsgKind> {
        let committed = match pick % 3 {
            0 => self.genuine_committed()?,
            1 => {
                let mut c = self.genuine_committed()?;
                c.config.members.remove(victim);
                c
            }
            _ => {
                let mut c = self.forged_committed(victim, pick, false)?;
                c.config.members.remove(victim);
                c.certificate.config_digest = config_digest(&c.config).ok()?;
                c
            }
        };
        Some(PeerMsgKind::Expunged(committed))
    }

    /// One of its own shares, or one it was sent, with a byte changed.
    fn mutated_share(&self, pick: u64) -> Option<PeerMsgKind> {
        let mut own: Vec<(Epoch, Share)> = self
            .disk
            .share_epochs()
            .filter_map(|e| Some((e, self.disk.share(e)?.clone())))
            .collect();
        own.extend(self.seen.iter().filter_map(|m| match &m.kind {
            PeerMsgKind::Share { epoch, share } => Some((*epoch, share.clone())),
            _ => None,
        }));
        let n = u64::try_from(own.len()).ok()?;
        let (epoch, share) = own.get(usize::try_from(pick.checked_rem(n)?).ok()?)?.clone();
        let mut b = share.as_bytes().to_vec();
        let len = u64::try_from(b.len()).ok()?;
        let at = usize::try_from(pick.checked_shr(8)?.checked_rem(len)?).ok()?;
        let flip = u8::try_from((pick >> 16) % 255).unwrap_or(0).saturating_add(1);
        if let Some(byte) = b.get_mut(at) {
            *byte ^= flip;
        }
        Some(PeerMsgKind::Share { epoch, share: Share::new(b) })
    }
}
