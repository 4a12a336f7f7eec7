//! The sled agent's configuration: one TOML file per sled.
//!
//! ```toml
//! id = { part_number = "PPP-PPPPPPP", serial_number = "00000000000" }
//! data_dirs = ["/var/lib/tq/disk-a", "/var/lib/tq/disk-b"]
//! peer_listen = "127.0.0.1:7000"
//! control_listen = "127.0.0.1:7100"
//! local_listen = "127.0.0.1:7200"
//! authority_key = "9f3c...e1"   # the control plane's public key (keys/authority.pub)
//!
//! [tls]
//! ca = "keys/ca.pem"
//! cert = "keys/0/cert.pem"
//! key = "keys/0/key.pem"
//!
//! [[peers]]
//! id = { part_number = "PPP-PPPPPPP", serial_number = "00000000001" }
//! addr = "127.0.0.1:7001"
//! ```
//!
//! Relative paths are taken relative to the configuration file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tq_types::{AuthorityKey, BaseboardId};

/// Everything one sled agent needs to run.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This sled's identity; it must match the id in its certificate.
    pub id: BaseboardId,
    /// The two folders holding the two copies of the durable state (as on
    /// two boot disks). Both may be the same folder.
    pub data_dirs: [PathBuf; 2],
    /// Where peers connect (mutual TLS).
    pub peer_listen: SocketAddr,
    /// The control-plane API (HTTP/JSON).
    pub control_listen: SocketAddr,
    /// The local secret-use API (HTTP/JSON with a bearer token). Must be a
    /// loopback address.
    pub local_listen: SocketAddr,
    /// The public key of the control plane's authority: the node accepts
    /// only configurations, commits and expungements it signed. It is kept
    /// in the node's durable state; a different key here later refuses to
    /// start (rotation is out of scope, docs/protocol.md section 8.4).
    pub authority_key: AuthorityKey,
    /// Certificates and key.
    pub tls: TlsPaths,
    /// Every other sled of the rack that may be a member.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// The PEM files of a sled's TLS identity.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The rack's certificate authority.
    pub ca: PathBuf,
    /// This sled's certificate, signed by the rack's CA.
    pub cert: PathBuf,
    /// This sled's private key.
    pub key: PathBuf,
}

impl TlsPaths {
    /// Makes every relative path absolute against `base` (the folder of the
    /// configuration file that named them).
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.ca, &mut self.cert, &mut self.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Loads the identity these files hold.
    pub fn load(&self) -> Result<crate::tls::Identity, crate::tls::TlsError> {
        crate::tls::Identity::load(&self.ca, &self.cert, &self.key)
    }
}

/// Another sled and where it listens for peers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's identity, as in its certificate.
    pub id: BaseboardId,
    /// Its peer listener.
    pub addr: SocketAddr,
}

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A rule of the schema is broken.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Reads the TOML file `path` into `T`: the loading step every service's
/// configuration shares (`tq-ctl`'s too).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(e) })
}

impl AgentConfig {
    /// Reads and checks `path`; relative paths in it are resolved against
    /// its folder.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let mut config: AgentConfig = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config
            .check()
            .map_err(|problem| ConfigError::Invalid { path: path.to_path_buf(), problem })?;
        Ok(config)
    }

    /// Makes every relative path absolute against `base`.
    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.data_dirs.iter_mut().for_each(fix);
        self.tls.resolve(base);
    }

    /// The schema's rules beyond types.
    pub fn check(&self) -> Result<(), String> {
        if !self.local_listen.ip().is_loopback() {
            return Err(format!("local_listen {} is not a loopback address", self.local_listen));
        }
        let mut seen = std::collections::BTreeSet::new();
        for peer in &self.peers {
            if peer.id == self.id {
                return Err(format!("peer {} is this sled itself", peer.id));
            }
            if !seen.insert(&peer.id) {
                return Err(format!("peer {} is listed twice", peer.id));
            }
        }
        Ok(())
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}
