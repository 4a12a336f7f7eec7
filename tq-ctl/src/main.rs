//! The `tq-ctl` command: run one control-plane replica.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tq_ctl::config::CtlConfig;

#[derive(Parser)]
#[command(name = "tq-ctl", version, about = "The trust-quorum control-plane service")]
struct Cli {
    /// The replica's TOML configuration.
    #[arg(long)]
    config: PathBuf,
    /// Use this database instead of the configuration's (`sqlite:PATH` or
    /// `postgres://...`).
    #[arg(long)]
    db: Option<String>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut config = match CtlConfig::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    if let Some(db) = cli.db {
        config.db = db;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match tq_ctl::service::run_until(&config, tq_node::signal::terminated()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(replica = %config.replica, error = %e, "cannot start");
                ExitCode::FAILURE
            }
        }
    })
}
