//! Drawing the next attack from the run's chooser.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tq_types::{BaseboardId, Epoch};

use super::attacker::{Attack, MAX_FLOOD};
use crate::control::ControlSide;
use crate::event::Event;
use crate::rack::Rack;
use crate::random::{below, pick};

/// Draws the next attack, if the rack has an attacker that runs.
pub(crate) fn choose(rack: &Rack, control: &ControlSide, rng: &mut ChaCha20Rng) -> Option<Event> {
    let attacker = rack.adversary.as_ref()?.id().clone();
    if !rack.is_up(&attacker) {
        return None;
    }
    let others: Vec<BaseboardId> = rack.sleds.keys().filter(|s| **s != attacker).cloned().collect();
    let victim = pick(rng, &others)?;
    let latest = control.observer().latest_epoch().map_or(0, |e| e.0);
    let attack = match rng.next_u32() % 8 {
        0 | 1 => Attack::Replay,
        2 => Attack::ForgedPrepare { signed: rng.next_u32() % 2 == 0 },
        3 => Attack::ForgedCommitAdvance { mismatched: rng.next_u32() % 2 == 0 },
        4 => Attack::ForgedExpunged,
        5 => {
            // Epochs it was left out of first; else any epoch up to one
            // past the latest.
            let outside: Vec<Epoch> = control
                .views()
                .into_iter()
                .filter(|(_, v)| !v.members.contains_key(&attacker))
                .map(|(e, _)| e)
                .collect();
            let mut any = || {
                let n = usize::try_from(latest.saturating_add(1)).unwrap_or(usize::MAX);
                Epoch(u64::try_from(below(rng, n)).unwrap_or(0).saturating_add(1))
            };
            let epoch = match outside.is_empty() {
                true => any(),
                false => pick(rng, &outside).unwrap_or(Epoch(1)),
            };
            Attack::GetShare { epoch }
        }
        6 => Attack::MutatedShare,
        _ => {
            let extra = u8::try_from(
                rng.next_u32().checked_rem(u32::from(MAX_FLOOD.saturating_sub(1))).unwrap_or(0),
            )
            .unwrap_or(0);
            Attack::Flood { count: extra.saturating_add(2) }
        }
    };
    Some(Event::Attack { victim, attack, pick: rng.next_u64() })
}
