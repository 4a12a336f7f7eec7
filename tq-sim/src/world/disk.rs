//! The disk-corruption fault: a crashed sled's stored state, in its encoded
//! form, has bits flipped or is cut short, and is read back as the sled
//! would read it when it restarts. A state the node's decoding refuses is
//! detected (counted) and the sled is treated as having lost its disk, with
//! the disk-loss machinery (`lost.rs` exemptions, `lost_after_commit`); a
//! damaged state that decodes anyway is what the sled boots from, and the
//! checker's `corruption_detected` rule requires it to equal what was
//! written.

use std::sync::Arc;

use tq_types::BaseboardId;
use trust_quorum::PersistentState;

use super::World;
use crate::observation::Observation;

/// `bytes` damaged as `pick` says: cut short (one time in four) or with one
/// to three bits flipped.
pub(crate) fn damage(mut bytes: Vec<u8>, pick: u64) -> Vec<u8> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len == 0 {
        return bytes;
    }
    if pick % 4 == 0 {
        let keep = (pick >> 8).checked_rem(len).unwrap_or(0);
        bytes.truncate(usize::try_from(keep).unwrap_or(0));
        return bytes;
    }
    let flips = ((pick >> 2) % 3).saturating_add(1);
    let noise = blake3::derive_key("tq-sim 2026-12 disk damage", &pick.to_le_bytes());
    for i in 0..flips {
        let at = noise.chunks(8).nth(usize::try_from(i).unwrap_or(0)).map_or(0, |c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        });
        let byte = usize::try_from(at.checked_rem(len).unwrap_or(0)).unwrap_or(0);
        if let Some(b) = bytes.get_mut(byte) {
            *b ^= 1 << (at >> 60 & 7);
        }
    }
    bytes
}

impl World {
    /// Damages crashed `sled`'s stored state and reads it back.
    pub(crate) fn corrupt_disk(&mut self, sled: &BaseboardId, pick: u64) {
        let Some(s) = self.rack.sleds.get(sled).filter(|s| !s.is_up()) else { return };
        let written = s.disk().clone();
        if written == PersistentState::new(*written.authority()) {
            return;
        }
        let Ok(bytes) = written.encode() else { return };
        self.disk_corruptions = self.disk_corruptions.saturating_add(1);
        let decoded = PersistentState::decode(&damage(bytes, pick));
        let report = decoded.as_ref().map(|d| Arc::new(d.clone())).map_err(|e| e.to_string());
        self.rack.observe(Observation::DiskDecoded {
            who: sled.clone(),
            written: Arc::new(written.clone()),
            decoded: report,
        });
        match decoded {
            Err(_) => {
                // Detected: the sled cannot use its disk, as if it had lost
                // it.
                self.corruptions_detected = self.corruptions_detected.saturating_add(1);
                self.wipe_disk(sled);
            }
            Ok(state) if state != written => {
                if let Some(s) = self.rack.sleds.get_mut(sled) {
                    s.embedded.replace_disk(state);
                }
            }
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::damage;

    #[test]
    fn damage_truncates_or_flips_a_few_bits() {
        let bytes: Vec<u8> = (0..=255).collect();
        let cut = damage(bytes.clone(), 4 << 8 | 4);
        assert_eq!(cut.len(), 4);
        for pick in [1u64, 2, 3, 5, 6, 7, 1001] {
            let d = damage(bytes.clone(), pick);
            assert_eq!(d.len(), bytes.len());
            let flipped: u32 = d.iter().zip(&bytes).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert!((1..=3).contains(&flipped), "pick {pick}: {flipped} bits");
        }
    }
}
