//! The control-plane service's configuration: one TOML file per replica.
//!
//! ```toml
//! rack_id = "3df0b7cd-50ed-498e-afa4-41f178d393f9"
//! listen = "127.0.0.1:7300"          # the operator API
//! db = "sqlite:/var/lib/tq-ctl/ledger.db"   # or postgres://...
//! replica = "ctl-0"                  # a name for logs
//! tick_ms = 200                      # the longest wait between driver passes
//! prepare_timeout_ms = 60000         # a silent coordinator's prepare is aborted after this
//! not_coordinating_grace_ms = 10000  # "not coordinating" aborts only this long after the request
//! authority = "keys/authority.key"   # the signing key every replica shares
//!
//! [tls]                              # the control plane's certificate (`tq-node keys init`)
//! ca = "keys/ca.pem"
//! cert = "keys/control/cert.pem"
//! key = "keys/control/key.pem"
//!
//! [[sleds]]
//! id = { part_number = "PPP-PPPPPPP", serial_number = "00000000000" }
//! control = "127.0.0.1:7100"
//! ```
//!
//! Relative paths (the SQLite file, the TLS files) are taken relative to
//! the configuration file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tq_node::config::read_toml;
pub use tq_node::config::{ConfigError, TlsPaths};
use tq_types::{BaseboardId, RackId};
use trust_quorum::control::ControlPlaneConfig;

/// Everything one control-plane replica needs.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlConfig {
    /// The rack this control plane manages.
    pub rack_id: RackId,
    /// The operator API.
    pub listen: SocketAddr,
    /// The ledger's database: `sqlite:PATH` or `postgres://...`.
    pub db: String,
    /// This replica's name, for logs.
    #[serde(default = "default_replica")]
    pub replica: String,
    /// The longest wait between two driver passes, in milliseconds.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// How long a preparing configuration's coordinator may stay silent
    /// before the configuration is aborted, in milliseconds.
    #[serde(default = "default_prepare_timeout_ms")]
    pub prepare_timeout_ms: u64,
    /// How long after the reconfiguration request was sent a coordinator's
    /// "not coordinating" answer is taken as a lost coordination and
    /// aborts it, in milliseconds (docs/protocol.md section 5.5); earlier
    /// answers are ignored.
    #[serde(default = "default_not_coordinating_grace_ms")]
    pub not_coordinating_grace_ms: u64,
    /// The authority's secret key file (`tq-node keys init` writes it):
    /// every replica signs requests and commit decisions with it.
    pub authority: PathBuf,
    /// The control plane's certificate and key, and the rack CA: the
    /// sleds' control APIs serve only this certificate, over mutual TLS.
    pub tls: TlsPaths,
    /// The rack's sleds and where their control APIs listen: the inventory
    /// the control plane may add from.
    #[serde(default)]
    pub sleds: Vec<SledEntry>,
}

fn default_replica() -> String {
    "ctl".to_owned()
}

fn default_tick_ms() -> u64 {
    200
}

fn default_prepare_timeout_ms() -> u64 {
    60_000
}

fn default_not_coordinating_grace_ms() -> u64 {
    u64::try_from(ControlPlaneConfig::default().not_coordinating_grace.as_millis())
        .unwrap_or(u64::MAX)
}

/// One sled of the inventory.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SledEntry {
    /// Its identity.
    pub id: BaseboardId,
    /// Its control API.
    pub control: SocketAddr,
}

impl CtlConfig {
    /// Reads and checks `path`. Relative paths are taken relative to the
    /// file's folder.
    pub fn load(path: &Path) -> Result<CtlConfig, ConfigError> {
        let mut config: CtlConfig = read_toml(path)?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = config.sleds.iter().find(|s| !seen.insert(&s.id)) {
            let problem = format!("sled {} is listed twice", twice.id);
            return Err(ConfigError::Invalid { path: path.to_path_buf(), problem });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        config.tls.resolve(base);
        if config.authority.is_relative() {
            config.authority = base.join(&config.authority);
        }
        if let Some(file) = config.db.strip_prefix("sqlite:") {
            let file = Path::new(file.trim_start_matches("//"));
            if file.is_relative() {
                config.db = format!("sqlite:{}", base.join(file).display());
            }
        }
        Ok(config)
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// The control API of `sled`, if it is in the inventory.
    pub fn control_of(&self, sled: &BaseboardId) -> Option<SocketAddr> {
        self.sleds.iter().find(|s| s.id == *sled).map(|s| s.control)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const SLED: &str = "PPP-PPPPPPP:00000000000";
    const SLED_TOML: &str = "{ part_number = \"PPP-PPPPPPP\", serial_number = \"00000000000\" }";

    fn write(dir: &Path, sleds: &[&str]) -> PathBuf {
        let mut text = String::from(
            "rack_id = \"3df0b7cd-50ed-498e-afa4-41f178d393f9\"\nlisten = \"127.0.0.1:7300\"\n\
             db = \"sqlite:ledger.db\"\nauthority = \"keys/authority.key\"\n\n[tls]\n\
             ca = \"keys/ca.pem\"\ncert = \"keys/control/cert.pem\"\nkey = \"keys/control/key.pem\"\n",
        );
        for id in sleds {
            text.push_str(&format!("\n[[sleds]]\nid = {id}\ncontrol = \"127.0.0.1:7100\"\n"));
        }
        let path = dir.join("ctl.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn relative_paths_resolve_against_the_file_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = CtlConfig::load(&write(dir.path(), &[SLED_TOML])).unwrap();
        assert_eq!(config.authority, dir.path().join("keys/authority.key"));
        assert_eq!(config.tls.ca, dir.path().join("keys/ca.pem"));
        assert_eq!(config.db, format!("sqlite:{}", dir.path().join("ledger.db").display()));
        assert_eq!(config.prepare_timeout_ms, 60_000);
        assert_eq!(config.not_coordinating_grace_ms, 10_000);
        match CtlConfig::load(&write(dir.path(), &[SLED_TOML, SLED_TOML])) {
            Err(ConfigError::Invalid { problem, .. }) => {
                assert_eq!(problem, format!("sled {SLED} is listed twice"));
            }
            other => panic!("expected a duplicate refusal, got {other:?}"),
        }
    }
}
