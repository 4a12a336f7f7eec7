//! The rack's folder D and its description `D/rack.toml`.
//!
//! ```text
//! D/rack.toml          the rack: id, database, every sled and replica with its ports
//! D/keys/              the rack CA and one certificate per sled (spares included)
//! D/sled-N.toml        sled N's agent configuration (tq_node::config::AgentConfig)
//! D/sled-N/disk-a/     its first data folder (state-a.tqs, local-api.token)
//! D/sled-N/disk-b/     its second data folder (state-b.tqs)
//! D/ctl-R.toml         replica R's configuration (tq_ctl::config::CtlConfig)
//! D/ledger.db          the SQLite ledger (unless --db names another)
//! D/logs/NAME.log      each process's stdout and stderr, appended across restarts
//! D/pids/NAME.pid      the pid of each process started and not yet stopped
//! ```
//!
//! A sled folder `D/sled-N` exists once that sled's agent was started: a
//! sled without one was never used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, RackId};

use crate::error::RackError;

/// The name of the rack description in D.
pub const RACK_FILE: &str = "rack.toml";

/// The rack description, `D/rack.toml`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackLayout {
    /// The rack's id.
    pub rack_id: RackId,
    /// The ledger database URL shared by the replicas.
    pub db: String,
    /// How many sleds the rack was initialized with (sleds `0..initial`).
    pub initial: usize,
    /// Every sled that may ever run, spares included, in index order.
    pub sleds: Vec<SledSpec>,
    /// The control-plane replicas.
    pub replicas: Vec<ReplicaSpec>,
}

/// One sled and its ports.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SledSpec {
    /// Its index N: files `sled-N*`, keys `keys/N/`.
    pub index: usize,
    /// Its identity.
    pub id: BaseboardId,
    /// Where peers connect.
    pub peer: SocketAddr,
    /// Its control API.
    pub control: SocketAddr,
    /// Its local secret-use API.
    pub local: SocketAddr,
}

/// One control-plane replica.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSpec {
    /// Its index R: files `ctl-R*`.
    pub index: usize,
    /// Its operator API.
    pub listen: SocketAddr,
}

/// A process of the rack.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Proc {
    /// The agent of sled N.
    Sled(usize),
    /// Control-plane replica R.
    Ctl(usize),
}

impl Proc {
    /// Its name: `sled-N` or `ctl-R`.
    pub fn name(self) -> String {
        match self {
            Proc::Sled(i) => format!("sled-{i}"),
            Proc::Ctl(r) => format!("ctl-{r}"),
        }
    }

    /// Parses a name made by [`Proc::name`].
    pub fn parse(name: &str) -> Option<Proc> {
        if let Some(i) = name.strip_prefix("sled-") {
            return i.parse().ok().map(Proc::Sled);
        }
        name.strip_prefix("ctl-").and_then(|r| r.parse().ok()).map(Proc::Ctl)
    }
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A rack: its folder (absolute) and its description.
#[derive(Clone, Debug)]
pub struct Rack {
    /// The folder D, absolute.
    pub dir: PathBuf,
    /// `D/rack.toml`.
    pub layout: RackLayout,
}

/// Makes `dir` absolute: canonical if it exists (the processes are told,
/// and later recognized by, paths under it), as given otherwise.
pub fn absolute(dir: &Path) -> Result<PathBuf, RackError> {
    match dir.canonicalize() {
        Ok(dir) => Ok(dir),
        Err(_) => std::path::absolute(dir).map_err(RackError::io(dir)),
    }
}

impl Rack {
    /// Loads `D/rack.toml`; a folder without one is a usage error.
    pub fn load(dir: &Path) -> Result<Rack, RackError> {
        let dir = absolute(dir)?;
        let path = dir.join(RACK_FILE);
        if !path.is_file() {
            return Err(RackError::Usage(format!(
                "{} holds no rack (no {RACK_FILE}); run `tq-rack up` first",
                dir.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(RackError::io(&path))?;
        let layout = toml::from_str(&text)
            .map_err(|e| RackError::Failed(format!("{}: {e}", path.display())))?;
        Ok(Rack { dir, layout })
    }

    /// Writes `D/rack.toml`.
    pub fn save(&self) -> Result<(), RackError> {
        let text = toml::to_string_pretty(&self.layout)
            .map_err(|e| RackError::Failed(format!("rack description: {e}")))?;
        write_atomic(&self.dir.join(RACK_FILE), text.as_bytes())
    }

    /// The configuration file of a process.
    pub fn config_path(&self, proc: Proc) -> PathBuf {
        self.dir.join(format!("{}.toml", proc.name()))
    }

    /// The log file of a process.
    pub fn log_path(&self, proc: Proc) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", proc.name()))
    }

    /// The pid file of a process.
    pub fn pid_path(&self, proc: Proc) -> PathBuf {
        pid_dir(&self.dir).join(format!("{}.pid", proc.name()))
    }

    /// Sled N's folder (`D/sled-N`); it exists once the sled was started.
    pub fn sled_dir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("sled-{index}"))
    }

    /// Sled N's two data folders.
    pub fn data_dirs(&self, index: usize) -> [PathBuf; 2] {
        let dir = self.sled_dir(index);
        [dir.join("disk-a"), dir.join("disk-b")]
    }

    /// Whether sled N was ever started.
    pub fn sled_used(&self, index: usize) -> bool {
        self.sled_dir(index).is_dir()
    }

    /// The sled at `index`.
    pub fn sled(&self, index: usize) -> Result<&SledSpec, RackError> {
        self.layout
            .sleds
            .get(index)
            .ok_or_else(|| RackError::Usage(format!("the rack has no sled {index}")))
    }

    /// The index of the sled with identity `id`.
    pub fn index_of(&self, id: &BaseboardId) -> Option<usize> {
        self.layout.sleds.iter().find(|s| s.id == *id).map(|s| s.index)
    }

    /// Finds a sled named as `N`, `sled-N` or `PART:SERIAL`.
    pub fn find_sled(&self, name: &str) -> Result<usize, RackError> {
        let by_index = name.strip_prefix("sled-").unwrap_or(name).parse::<usize>().ok();
        let found = match by_index {
            Some(i) => self.sled(i).ok().map(|s| s.index),
            None => name.parse::<BaseboardId>().ok().and_then(|id| self.index_of(&id)),
        };
        found.ok_or_else(|| {
            RackError::Usage(format!(
                "no sled {name:?} in this rack (give N, sled-N or PART:SERIAL; it has {} sleds)",
                self.layout.sleds.len()
            ))
        })
    }

    /// Finds a replica named as `R` or `ctl-R`.
    pub fn find_replica(&self, name: &str) -> Result<usize, RackError> {
        name.strip_prefix("ctl-")
            .unwrap_or(name)
            .parse::<usize>()
            .ok()
            .filter(|r| *r < self.layout.replicas.len())
            .ok_or_else(|| RackError::Usage(format!("no replica {name:?} in this rack")))
    }

    /// The local API token file of sled N (written by its agent).
    pub fn token_path(&self, index: usize) -> PathBuf {
        self.sled_dir(index).join("disk-a").join("local-api.token")
    }
}

/// `D/pids`.
pub fn pid_dir(dir: &Path) -> PathBuf {
    dir.join("pids")
}

/// Writes `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RackError> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes).map_err(RackError::io(&temp))?;
    std::fs::rename(&temp, path).map_err(RackError::io(path))
}
