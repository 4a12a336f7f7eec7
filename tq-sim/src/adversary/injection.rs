//! Putting an attack on the attacker's link to its victim.

use tq_types::BaseboardId;

use super::attacker::Attack;
use super::forge;
use crate::rack::Rack;

impl Rack {
    /// The attacker sends `victim` what `attack` and `pick` make of its
    /// state and memory, on its link to the victim (nothing if the attacker
    /// is down or not connected to the victim).
    pub(crate) fn attack(&mut self, victim: &BaseboardId, attack: Attack, pick: u64) {
        let Some(adv) = &self.adversary else { return };
        let attacker = adv.id().clone();
        if attacker == *victim || !self.is_up(&attacker) {
            return;
        }
        let Some(sled) = self.sleds.get(&attacker) else { return };
        let known = forge::Known { me: &attacker, disk: sled.disk(), seen: adv.seen() };
        let msgs = known.build(victim, attack, pick);
        let mut sent = 0u64;
        for msg in msgs {
            if self.net.send(&attacker, victim, msg) {
                sent = sent.saturating_add(1);
            }
        }
        if let Some(adv) = &mut self.adversary {
            adv.count(attack, sent);
        }
    }
}
