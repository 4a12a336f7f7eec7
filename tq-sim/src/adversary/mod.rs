//! The compromised member of a byzantine run (`--faults byzantine`, and
//! `swarm` at a low rate).
//!
//! One member of the first configuration, chosen from the seed, is an
//! attacker. Its protocol node keeps running honestly, so it still counts
//! as a member for the protocol and the ledger; on top of it the attacker
//! remembers the last messages it sent and received and, on
//! `Event::Attack`, sends one honest sled replays of them, forgeries
//! (a Prepare naming itself coordinator with an unsigned or a replayed
//! signed request, a commit advance with a forged or mismatched
//! certificate, an expunged notice for any epoch, a request for a share of
//! an epoch it is not a member of, a mutated share) or a bounded flood.
//! Everything is built when the event is applied, from the attacker's
//! durable state, its memory and the event's `pick`, so a logged event
//! replays to the same bytes. The invariants exempt the attacker and hold
//! every honest sled to the control plane's decisions
//! (`invariants/signed.rs`).
//!
//! - `attacker.rs`: the plain data (attacks, memory, counts);
//! - `choice.rs`: drawing the next attack;
//! - `forge.rs`: building an attack's messages;
//! - `injection.rs`: sending them on the attacker's link.

mod attacker;
pub(crate) mod choice;
mod forge;
mod injection;

pub(crate) use self::attacker::Adversary;
pub use self::attacker::{Attack, Injections};
