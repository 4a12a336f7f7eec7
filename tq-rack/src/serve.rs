//! The hidden modes: this binary running one sled agent or one
//! control-plane replica until SIGTERM or SIGINT, as `tq-node --config`
//! and `tq-ctl --config` would.

use std::path::Path;
use std::process::ExitCode;

use tq_ctl::config::CtlConfig;
use tq_node::config::AgentConfig;

/// Worker threads of a served process (the rack runs many on one machine).
const WORKERS: usize = 2;

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            None
        }
    }
}

/// Runs the sled agent configured in `config` until a signal.
pub fn agent(config: &Path) -> ExitCode {
    let config = match AgentConfig::load(config) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    runtime.block_on(async {
        let agent = match tq_node::agent::start(&config).await {
            Ok(agent) => agent,
            Err(e) => {
                tracing::error!(sled = %config.id, error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        match agent.run_until(tq_node::signal::terminated()).await {
            Ok(()) => {
                tracing::info!(sled = %config.id, "agent stopped");
                ExitCode::SUCCESS
            }
            Err(reason) => {
                tracing::error!(sled = %config.id, %reason, "agent stopped on its own");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs the control-plane replica configured in `config` until a signal.
pub fn ctl(config: &Path) -> ExitCode {
    let config = match CtlConfig::load(config) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
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
