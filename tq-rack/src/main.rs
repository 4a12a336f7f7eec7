//! The `tq-rack` command: a local trust-quorum rack of real processes on
//! 127.0.0.1 (see the library's documentation), and a chaos run.
//!
//! Exit codes: 0 success, 1 a failed command or check, 2 bad usage.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tq_rack::chaos::{self, ChaosOptions};
use tq_rack::commands;
use tq_rack::error::RackError;
use tq_rack::procs::Launcher;
use tq_rack::serve;
use tq_rack::setup::NewRack;

#[derive(Parser)]
#[command(
    name = "tq-rack",
    version,
    about = "A local trust-quorum rack of real processes on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a rack in DIR, start its agents and replicas, initialize it
    /// and wait until epoch 1 is committed.
    Up {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// Sleds of the first membership.
        #[arg(long)]
        sleds: usize,
        /// Control-plane replicas.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// The ledger's database (`sqlite:PATH` or `postgres://...`);
        /// default `sqlite:DIR/ledger.db`.
        #[arg(long)]
        db: Option<String>,
        /// Spare sleds (keys and configurations made now) for `add`.
        #[arg(long, default_value_t = 16)]
        spares: usize,
        /// Seconds to wait for the first commit.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Start COUNT new sleds and add them to the rack.
    Add {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// How many sleds.
        #[arg(long)]
        count: usize,
        /// Return only once the change is committed.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Remove one sled from the rack (its agent keeps running).
    Remove {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The sled: N, sled-N or PART:SERIAL.
        #[arg(long)]
        sled: String,
        /// Return only once the change is committed.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The latest membership status.
    Status {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// Print the operator API's JSON body.
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL one process.
    Kill {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The sled: N, sled-N or PART:SERIAL.
        #[arg(long, conflicts_with = "ctl", required_unless_present = "ctl")]
        sled: Option<String>,
        /// A control-plane replica: R or ctl-R.
        #[arg(long)]
        ctl: Option<String>,
    },
    /// Start one process again from its files (stopping it first if it runs).
    Restart {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The sled: N, sled-N or PART:SERIAL.
        #[arg(long, conflicts_with = "ctl", required_unless_present = "ctl")]
        sled: Option<String>,
        /// A control-plane replica: R or ctl-R.
        #[arg(long)]
        ctl: Option<String>,
    },
    /// Inject faults for SECONDS, let the rack settle and check it.
    Chaos {
        /// The rack's folder (the rack must be up).
        #[arg(long)]
        dir: PathBuf,
        /// How long faults are injected.
        #[arg(long)]
        seconds: u64,
        /// The seed of every draw.
        #[arg(long)]
        seed: u64,
        /// Seconds the rack may take to settle afterwards.
        #[arg(long, default_value_t = 120)]
        settle_timeout: u64,
        /// The largest membership adds may make.
        #[arg(long, default_value_t = 8)]
        max_members: usize,
    },
    /// Stop every process recorded in DIR (SIGTERM, then SIGKILL).
    Down {
        /// The rack's folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run one sled agent (used by the rack itself).
    #[command(hide = true)]
    Agent {
        /// The agent's configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run one control-plane replica (used by the rack itself).
    #[command(hide = true)]
    Ctl {
        /// The replica's configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let served = matches!(cli.command, Command::Agent { .. } | Command::Ctl { .. });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!served && std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Agent { config } => serve::agent(&config),
        Command::Ctl { config } => serve::ctl(&config),
        command => match operate(command) {
            Ok(code) => code,
            Err(e) => fail(&e),
        },
    }
}

#[allow(clippy::print_stderr)]
fn fail(e: &RackError) -> ExitCode {
    eprintln!("tq-rack: {e}");
    e.exit_code()
}

/// Runs an operator command and prints its contract lines.
#[allow(clippy::print_stdout)]
fn operate(command: Command) -> Result<ExitCode, RackError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RackError::Failed(format!("cannot start the runtime: {e}")))?;
    let launcher = Launcher::current()?;
    runtime.block_on(async {
        match command {
            Command::Up { dir, sleds, replicas, db, spares, timeout } => {
                let new = NewRack { sleds, spares, replicas, db };
                let up = commands::up(&launcher, &dir, &new, Duration::from_secs(timeout))
                    .await
                    .inspect_err(|_| {
                        tracing::error!(
                            "processes started so far are left running for inspection; \
                             `tq-rack down --dir {}` stops them",
                            dir.display()
                        );
                    })?;
                println!("rack up: epoch={} members={}", up.epoch, up.members);
            }
            Command::Add { dir, count, wait, timeout } => {
                let wait = wait.then(|| Duration::from_secs(timeout));
                println!("epoch={}", commands::add(&launcher, &dir, count, wait).await?);
            }
            Command::Remove { dir, sled, wait, timeout } => {
                let wait = wait.then(|| Duration::from_secs(timeout));
                println!("epoch={}", commands::remove(&dir, &sled, wait).await?);
            }
            Command::Status { dir, json } => {
                let value = commands::status(&dir).await?;
                if json {
                    let text = serde_json::to_string_pretty(&value)
                        .map_err(|e| RackError::Failed(e.to_string()))?;
                    println!("{text}");
                } else {
                    let status = serde_json::from_value(value)
                        .map_err(|e| RackError::Failed(format!("unexpected status: {e}")))?;
                    println!("{}", commands::summary(&status));
                }
            }
            Command::Kill { dir, sled, ctl } => {
                let (proc, killed) = commands::kill(&dir, sled.as_deref(), ctl.as_deref()).await?;
                if killed {
                    println!("killed {proc}");
                } else {
                    println!("{proc} was not running");
                }
            }
            Command::Restart { dir, sled, ctl } => {
                let (proc, pid) =
                    commands::restart(&launcher, &dir, sled.as_deref(), ctl.as_deref()).await?;
                println!("restarted {proc} pid={pid}");
            }
            Command::Chaos { dir, seconds, seed, settle_timeout, max_members } => {
                let mut options = ChaosOptions::new(seconds, seed);
                options.settle_limit = Duration::from_secs(settle_timeout);
                options.max_members = max_members.max(options.min_members);
                let report = chaos::run(&launcher, &dir, options).await?;
                for violation in &report.violations {
                    println!("violation: {violation}");
                }
                if !report.violations.is_empty() {
                    let rack = tq_rack::layout::Rack::load(&dir)?;
                    println!(
                        "look at: {} (process logs), {} (durable files), {} (ledger)",
                        rack.dir.join("logs").display(),
                        rack.dir.join("sled-*/disk-*").display(),
                        rack.layout.db
                    );
                }
                println!("{}", report.summary());
                if !report.violations.is_empty() {
                    return Ok(ExitCode::from(1));
                }
            }
            Command::Down { dir } => {
                println!("rack down: stopped={}", commands::down(&dir).await?);
            }
            Command::Agent { .. } | Command::Ctl { .. } => {
                return Err(RackError::Usage("not an operator command".into()));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
