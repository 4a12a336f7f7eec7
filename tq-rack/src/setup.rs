//! Making a new rack in a folder: keys for every sled (spares included),
//! free loopback ports, `rack.toml` and one configuration per process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_ctl::config::{CtlConfig, SledEntry};
use tq_node::config::{AgentConfig, PeerConfig, TlsPaths};
use tq_types::RackId;

use crate::error::RackError;
use crate::layout::{Proc, Rack, RackLayout, ReplicaSpec, SledSpec, absolute, write_atomic};

/// How often a replica runs a driver pass at the latest, in milliseconds.
pub const CTL_TICK_MS: u64 = 100;

/// How long the replicas let a silent coordinator stall a prepare before
/// aborting it: short, because chaos kills coordinators.
pub const CTL_PREPARE_TIMEOUT_MS: u64 = 15_000;

/// How long after sending a reconfiguration the replicas wait before a
/// coordinator's "not coordinating" answer aborts it: short, because chaos
/// restarts coordinators, yet long enough for the request to land.
pub const CTL_NOT_COORDINATING_GRACE_MS: u64 = 3_000;

/// What a new rack is made of.
#[derive(Clone, Debug)]
pub struct NewRack {
    /// Sleds initialized as the first membership.
    pub sleds: usize,
    /// Spare sleds beyond those, which `add` can start.
    pub spares: usize,
    /// Control-plane replicas.
    pub replicas: usize,
    /// The ledger database; `None` is `sqlite:D/ledger.db`.
    pub db: Option<String>,
}

/// A seed that differs between calls and processes (not secret).
pub fn entropy() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ (u128::from(std::process::id()) << 64);
    let mut rng =
        ChaCha20Rng::seed_from_u64(u64::try_from(mixed & u128::from(u64::MAX)).unwrap_or(0));
    rng.next_u64() ^ u64::try_from(mixed >> 64).unwrap_or(0)
}

/// Writes keys, `rack.toml` and every configuration of a new rack in
/// `dir`, which must not hold a rack yet. Starts nothing.
pub fn create(dir: &Path, new: &NewRack) -> Result<Rack, RackError> {
    if !(3..=32).contains(&new.sleds) {
        return Err(RackError::Usage(format!("--sleds {} is outside 3..=32", new.sleds)));
    }
    if new.replicas == 0 || new.replicas > 8 {
        return Err(RackError::Usage(format!("--replicas {} is outside 1..=8", new.replicas)));
    }
    let total = new.sleds.checked_add(new.spares).filter(|t| *t <= 256);
    let total =
        total.ok_or_else(|| RackError::Usage("too many spare sleds (256 in all)".into()))?;
    if dir.join(crate::layout::RACK_FILE).exists() {
        return Err(RackError::Usage(format!("{} already holds a rack", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(RackError::io(dir))?;
    let dir = absolute(dir)?;
    for sub in ["logs", "pids"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(RackError::io(&path))?;
    }
    let keys_dir = dir.join("keys");
    tq_node::keys::generate_rack(&keys_dir, total)
        .map_err(|e| RackError::Failed(format!("making the rack's keys: {e}")))?;
    let needed = total.checked_mul(3).and_then(|n| n.checked_add(new.replicas));
    let mut ports = free_ports(needed.unwrap_or(usize::MAX))?.into_iter();
    let mut next = || ports.next().ok_or_else(|| RackError::Failed("ran out of ports".into()));
    let mut sleds = Vec::with_capacity(total);
    for index in 0..total {
        let id = tq_node::keys::test_sled_id(index)
            .map_err(|e| RackError::Failed(format!("sled id {index}: {e}")))?;
        sleds.push(SledSpec { index, id, peer: next()?, control: next()?, local: next()? });
    }
    let replicas = (0..new.replicas)
        .map(|index| Ok(ReplicaSpec { index, listen: next()? }))
        .collect::<Result<Vec<_>, RackError>>()?;
    let db =
        new.db.clone().unwrap_or_else(|| format!("sqlite:{}", dir.join("ledger.db").display()));
    let rack_id = RackId(uuid::Uuid::from_u64_pair(entropy(), entropy()));
    let rack =
        Rack { dir, layout: RackLayout { rack_id, db, initial: new.sleds, sleds, replicas } };
    write_configs(&rack)?;
    rack.save()?;
    Ok(rack)
}

/// Writes `sled-N.toml` for every sled and `ctl-R.toml` for every replica.
pub fn write_configs(rack: &Rack) -> Result<(), RackError> {
    let keys = rack.dir.join("keys");
    let authority_key =
        tq_node::authority::load_public(&keys.join(tq_node::authority::PUBLIC_FILE))
            .map_err(|e| RackError::Failed(format!("the authority key: {e}")))?;
    for sled in &rack.layout.sleds {
        let config = AgentConfig {
            id: sled.id.clone(),
            data_dirs: rack.data_dirs(sled.index),
            peer_listen: sled.peer,
            control_listen: sled.control,
            local_listen: sled.local,
            authority_key,
            tls: TlsPaths {
                ca: keys.join("ca.pem"),
                cert: keys.join(sled.index.to_string()).join("cert.pem"),
                key: keys.join(sled.index.to_string()).join("key.pem"),
            },
            peers: rack
                .layout
                .sleds
                .iter()
                .filter(|p| p.index != sled.index)
                .map(|p| PeerConfig { id: p.id.clone(), addr: p.peer })
                .collect(),
        };
        let text = config.to_toml().map_err(|e| RackError::Failed(format!("sled config: {e}")))?;
        write_atomic(&rack.config_path(Proc::Sled(sled.index)), text.as_bytes())?;
    }
    let inventory: Vec<SledEntry> = rack
        .layout
        .sleds
        .iter()
        .map(|s| SledEntry { id: s.id.clone(), control: s.control })
        .collect();
    for replica in &rack.layout.replicas {
        let config = CtlConfig {
            rack_id: rack.layout.rack_id,
            listen: replica.listen,
            db: rack.layout.db.clone(),
            replica: Proc::Ctl(replica.index).name(),
            tick_ms: CTL_TICK_MS,
            prepare_timeout_ms: CTL_PREPARE_TIMEOUT_MS,
            not_coordinating_grace_ms: CTL_NOT_COORDINATING_GRACE_MS,
            authority: keys.join(tq_node::authority::SECRET_FILE),
            tls: TlsPaths {
                ca: keys.join("ca.pem"),
                cert: keys.join("control").join("cert.pem"),
                key: keys.join("control").join("key.pem"),
            },
            sleds: inventory.clone(),
        };
        let text = config.to_toml().map_err(|e| RackError::Failed(format!("ctl config: {e}")))?;
        write_atomic(&rack.config_path(Proc::Ctl(replica.index)), text.as_bytes())?;
    }
    Ok(())
}

/// `n` distinct free ports on 127.0.0.1, taken below the kernel's
/// ephemeral range (so no outgoing connection takes one before its
/// process binds it) from a random starting point; free ports of the
/// ephemeral range only if that fails.
pub fn free_ports(n: usize) -> Result<Vec<SocketAddr>, RackError> {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let low: u16 = 10_000;
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    if let Some(span) =
        ephemeral_start.checked_sub(low).filter(|s| usize::from(*s) > n.saturating_mul(4))
    {
        let start = u16::try_from(entropy().checked_rem(u64::from(span)).unwrap_or(0)).unwrap_or(0);
        for step in 0..span {
            if held.len() >= n {
                break;
            }
            let offset = u32::from(start)
                .saturating_add(u32::from(step))
                .checked_rem(u32::from(span))
                .unwrap_or(0);
            let port = u32::from(low).saturating_add(offset);
            let Ok(port) = u16::try_from(port) else { continue };
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                held.push(listener);
            }
        }
    }
    while held.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| RackError::Failed(format!("no free loopback port: {e}")))?;
        held.push(listener);
    }
    held.iter()
        .map(|l| l.local_addr().map_err(|e| RackError::Failed(format!("listener address: {e}"))))
        .collect()
}
