//! What `tq-sim replay --show` prints: JSON views of one sled, the network or
//! the control plane.
//!
//! Shares are secret material, and logs and screens get copied around. By
//! default ([`Reveal::Digests`]) every share is printed as its BLAKE3 digest,
//! the same value the configuration records for its holder, which is enough
//! to tell whether two sleds hold the same share or whether a share is the
//! right one. [`Reveal::Secrets`] prints the share bytes, for debugging only.

use serde_json::{Value, json};
use tq_types::{BaseboardId, BaseboardIdError, PeerMsg, PeerMsgKind, Share};
use trust_quorum::PersistentState;
use trust_quorum::crypto::share_digest;

use crate::world::World;

/// Whether views print shares or only their digests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Reveal {
    /// Print each share's digest (the default).
    #[default]
    Digests,
    /// Print raw share bytes, for debugging.
    Secrets,
}

/// Why a part of the world could not be shown.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ShowError {
    /// Not `node:PART:SERIAL`, `control` or `network`.
    #[error("unknown part {0:?}: use node:PART:SERIAL, control or network")]
    UnknownPart(String),
    /// The sled id does not parse.
    #[error("bad sled id {id:?}: {source}")]
    BadSledId {
        /// What was given.
        id: String,
        /// Why it does not parse.
        source: BaseboardIdError,
    },
    /// No sled of that id in this world.
    #[error("no sled {0}")]
    NoSuchSled(BaseboardId),
}

/// The view of `what`: `node:PART:SERIAL`, `control` or `network`.
pub fn show(world: &World, what: &str, reveal: Reveal) -> Result<Value, ShowError> {
    match what {
        "control" => Ok(world.control.show()),
        "network" => Ok(network(world, reveal)),
        other => {
            let id = other
                .strip_prefix("node:")
                .ok_or_else(|| ShowError::UnknownPart(other.to_string()))?;
            let id: BaseboardId =
                id.parse().map_err(|source| ShowError::BadSledId { id: id.to_string(), source })?;
            let sled = world.rack.sleds.get(&id).ok_or(ShowError::NoSuchSled(id))?;
            let status = sled.embedded.live().map(|(node, ctx)| node.status(ctx));
            let coordinator = sled.embedded.coordinator_status();
            Ok(json!({
                "up": sled.is_up(),
                "durable": durable(sled.disk(), reveal),
                "status": status,
                "coordinator": coordinator,
            }))
        }
    }
}

fn share(share: &Share, reveal: Reveal) -> Value {
    match reveal {
        Reveal::Digests => json!({ "digest": share_digest(share).to_string() }),
        Reveal::Secrets => json!({ "bytes": share }),
    }
}

/// A sled's durable state with its shares shown as `reveal` says.
fn durable(state: &PersistentState, reveal: Reveal) -> Value {
    let shares: serde_json::Map<String, Value> = state
        .share_epochs()
        .filter_map(|e| state.share(e).map(|s| (e.0.to_string(), share(s, reveal))))
        .collect();
    json!({
        "configs": state.configs(),
        "shares": shares,
        "commits": state.commits(),
        "expunged": state.expunged(),
    })
}

/// A peer message with any share in it shown as `reveal` says.
fn message(msg: &PeerMsg, reveal: Reveal) -> Value {
    let kind = match &msg.kind {
        PeerMsgKind::Prepare { config, share: s } => {
            json!({ "prepare": { "config": config, "share": share(s, reveal) } })
        }
        PeerMsgKind::Share { epoch, share: s } => {
            json!({ "share": { "epoch": epoch, "share": share(s, reveal) } })
        }
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    };
    json!({ "rack_id": msg.rack_id, "kind": kind })
}

fn network(world: &World, reveal: Reveal) -> Value {
    let link = |(a, b): &(BaseboardId, BaseboardId)| json!([a.to_string(), b.to_string()]);
    let net = &world.rack.net;
    let queued: Vec<Value> = net
        .queued()
        .map(|((from, to), msg)| {
            json!({ "from": from.to_string(), "to": to.to_string(), "msg": message(msg, reveal) })
        })
        .collect();
    json!({
        "connected": net.connections().map(link).collect::<Vec<_>>(),
        "blocked": net.blocked().map(link).collect::<Vec<_>>(),
        "queued": queued,
    })
}
