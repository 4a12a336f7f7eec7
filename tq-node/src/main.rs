//! The `tq-node` command: run a sled agent, or make the keys and
//! configurations of a local rack.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tq_node::config::{AgentConfig, PeerConfig, TlsPaths};

#[derive(Parser)]
#[command(name = "tq-node", version, about = "The trust-quorum sled agent")]
struct Cli {
    /// Run the sled described by this TOML file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates for a local rack.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a rack CA, a certificate per sled (ids `PPP-PPPPPPP:00000000000`
    /// and up) and one for the control plane in DIR, and a configuration
    /// file per sled (`DIR/sled-N.toml`) listening on 127.0.0.1.
    Init {
        /// Where to write everything.
        #[arg(long)]
        dir: PathBuf,
        /// How many sleds.
        #[arg(long)]
        sleds: usize,
        /// Sled N listens for peers on BASE+N, its control API on
        /// BASE+100+N and its local API on BASE+200+N.
        #[arg(long, default_value_t = 7000)]
        base_port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_json);
    match (cli.command, cli.config) {
        (Some(Command::Keys { command: KeysCommand::Init { dir, sleds, base_port } }), None) => {
            match keys_init(&dir, sleds, base_port) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "keys init failed");
                    ExitCode::FAILURE
                }
            }
        }
        (None, Some(path)) => run(&path),
        _ => {
            tracing::error!("give either --config FILE or a subcommand (see --help)");
            ExitCode::from(2)
        }
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match AgentConfig::load(path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let agent = match tq_node::agent::start(&config).await {
            Ok(agent) => agent,
            Err(e) => {
                tracing::error!(sled = %config.id, error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let signal = tq_node::signal::terminated();
        match agent.run_until(signal).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                tracing::error!(sled = %config.id, %reason, "agent stopped");
                ExitCode::FAILURE
            }
        }
    })
}

fn keys_init(dir: &Path, sleds: usize, base_port: u16) -> Result<(), String> {
    let keys = tq_node::keys::generate_rack(dir, sleds).map_err(|e| e.to_string())?;
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let port = |offset: usize| -> Result<SocketAddr, String> {
        let p = usize::from(base_port)
            .checked_add(offset)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("port {base_port} + {offset} is out of range"))?;
        Ok(SocketAddr::new(loopback, p))
    };
    let ids = keys.sled_ids();
    for (i, id) in ids.iter().enumerate() {
        let peers = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, peer)| Ok(PeerConfig { id: peer.clone(), addr: port(j)? }))
            .collect::<Result<Vec<_>, String>>()?;
        let config = AgentConfig {
            id: id.clone(),
            data_dirs: [
                PathBuf::from(format!("sled-{i}/disk-a")),
                PathBuf::from(format!("sled-{i}/disk-b")),
            ],
            peer_listen: port(i)?,
            control_listen: port(i.saturating_add(100))?,
            local_listen: port(i.saturating_add(200))?,
            authority_key: keys.authority.key,
            tls: TlsPaths {
                ca: PathBuf::from("ca.pem"),
                cert: PathBuf::from(format!("{i}/cert.pem")),
                key: PathBuf::from(format!("{i}/key.pem")),
            },
            peers,
        };
        let text = config.to_toml().map_err(|e| e.to_string())?;
        let path = dir.join(format!("sled-{i}.toml"));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(sled = %id, config = %path.display(), "sled configured");
    }
    Ok(())
}
