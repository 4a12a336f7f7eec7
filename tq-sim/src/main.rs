//! The `tq-sim` command: demo, run, explore and replay (docs/architecture.md section 6).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program prints")]

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use tq_sim::event::{read_log, write_log};
use tq_sim::view::Reveal;
use tq_sim::{FaultPreset, RunOutcome, SimOptions};

#[derive(Parser)]
#[command(name = "tq-sim", version, about = "Deterministic simulator of a trust-quorum rack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Shape {
    /// Events in the fault phase of each run.
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    /// Sleds in the rack's universe (members and spares), 3 to 32.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(3..=32))]
    nodes: u64,
    /// Fault preset: none, light, swarm, heavy or byzantine.
    #[arg(long, default_value = "swarm")]
    faults: FaultPreset,
    /// Control-plane replicas sharing the ledger.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=4))]
    replicas: u64,
}

impl Shape {
    fn options(&self, seed: u64) -> SimOptions {
        SimOptions {
            seed,
            steps: self.steps,
            nodes: usize::try_from(self.nodes).unwrap_or(8),
            faults: self.faults,
            replicas: usize::try_from(self.replicas).unwrap_or(2),
            planted_bug: None,
            policy: None,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Tell the fixture story on a simulated 4-sled rack.
    Demo {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run one seed.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        shape: Shape,
        /// Save the event log here.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Run twice and compare every step's digest.
        #[arg(long)]
        check_determinism: bool,
        /// Print one JSON object instead of the summary line.
        #[arg(long)]
        json: bool,
    },
    /// Run a range of seeds, in parallel.
    Explore {
        /// Seeds as A..B (B excluded).
        #[arg(long, value_parser = parse_range)]
        seeds: std::ops::Range<u64>,
        #[command(flatten)]
        shape: Shape,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Print one JSON object instead of the summary line.
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a saved log, checking every step's digest.
    Replay {
        /// The log file.
        path: PathBuf,
        /// Stop after this step.
        #[arg(long)]
        until: Option<u64>,
        /// Print this part of the state at the end: node:PART:SERIAL, control or network.
        /// Shares are shown as their digests.
        #[arg(long)]
        show: Option<String>,
        /// For debugging only: print raw share bytes in --show instead of their
        /// digests. The output then holds secret material.
        #[arg(long, requires = "show")]
        reveal_secrets: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("{s:?} is not of the form A..B"))?;
    let a: u64 = a.parse().map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("bad end {b:?}: {e}"))?;
    if b <= a {
        return Err(format!("empty seed range {s}"));
    }
    Ok(a..b)
}

struct Summary {
    seeds: u64,
    events: u64,
    violations: u64,
    liveness_ok: bool,
    digest: String,
    elapsed_ms: u128,
    /// What an exploration exercised (`explore --json` adds it as a key).
    coverage: Option<serde_json::Value>,
    /// The control-plane policy of a single run (`run` prints it before the
    /// summary line, or adds it as a key with `--json`).
    policy: Option<String>,
}

impl Summary {
    fn print(&self, json: bool) {
        if json {
            let mut v = serde_json::json!({
                "seeds": self.seeds,
                "events": self.events,
                "violations": self.violations,
                "liveness": if self.liveness_ok { "ok" } else { "failed" },
                "digest": self.digest,
                "elapsed_ms": self.elapsed_ms,
            });
            if let (Some(coverage), Some(map)) = (&self.coverage, v.as_object_mut()) {
                map.insert("coverage".to_owned(), coverage.clone());
            }
            if let (Some(policy), Some(map)) = (&self.policy, v.as_object_mut()) {
                map.insert("policy".to_owned(), policy.clone().into());
            }
            println!("{v}");
        } else {
            if let Some(policy) = &self.policy {
                println!("policy: {policy}");
            }
            println!(
                "summary: seeds={} events={} violations={} liveness={} digest={} elapsed_ms={}",
                self.seeds,
                self.events,
                self.violations,
                if self.liveness_ok { "ok" } else { "failed" },
                self.digest,
                self.elapsed_ms
            );
        }
    }

    fn exit_code(&self) -> ExitCode {
        if self.violations == 0 && self.liveness_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}

/// Reports a failed run on stderr, saving its log (re-running with a log if
/// it was not kept).
fn report_failure(outcome: &RunOutcome, log_path: Option<&Path>) {
    let o = &outcome.options;
    let with_log;
    let logged = if outcome.log.is_empty() {
        with_log = tq_sim::run(o, true);
        &with_log
    } else {
        outcome
    };
    let default = PathBuf::from(format!("tq-sim-logs/seed-{}.jsonl", o.seed));
    let path = log_path.map_or(default, Path::to_path_buf);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = fs::create_dir_all(dir);
    }
    let saved = File::create(&path)
        .and_then(|f| write_log(BufWriter::new(f), &logged.header(), &logged.log));
    match &outcome.failure {
        Some(f) => eprintln!(
            "violation: invariant={} seed={} event={} detail={}",
            f.violation.invariant, o.seed, f.step, f.violation.detail
        ),
        None => eprintln!(
            "liveness failed: seed={} reason={}",
            o.seed,
            outcome.liveness.as_ref().err().map_or("", String::as_str)
        ),
    }
    eprintln!("policy: {}", o.policy_in_force());
    match saved {
        Ok(()) => eprintln!("log: {}", path.display()),
        Err(e) => eprintln!("log: could not be saved to {}: {e}", path.display()),
    }
    eprintln!(
        "reproduce: cargo run --release -p tq-sim -- run --seed {} --steps {} --nodes {} --faults {} --replicas {}",
        o.seed, o.steps, o.nodes, o.faults, o.replicas
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { json } => match tq_sim::demo::run_demo() {
            Ok(demo) => {
                if json {
                    println!("{}", demo.to_json());
                } else {
                    print!("{}", demo.to_text());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("demo failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { seed, shape, log, check_determinism, json } => {
            let start = Instant::now();
            let options = shape.options(seed);
            let keep = log.is_some() || check_determinism;
            let outcome = tq_sim::run(&options, keep);
            let mut violations = u64::from(outcome.failure.is_some());
            if check_determinism {
                let again = tq_sim::run(&options, true);
                let first_diff = outcome
                    .log
                    .iter()
                    .zip(&again.log)
                    .find(|(a, b)| a.digest != b.digest || a.event != b.event);
                if let Some((a, _)) = first_diff {
                    eprintln!("nondeterminism: seed={seed} event={}", a.step);
                    violations = violations.saturating_add(1);
                } else if outcome.log.len() != again.log.len() || outcome.digest != again.digest {
                    eprintln!("nondeterminism: seed={seed} runs differ in length or final digest");
                    violations = violations.saturating_add(1);
                }
            }
            if let Some(path) = &log {
                if outcome.ok() {
                    if let Err(e) = File::create(path)
                        .and_then(|f| write_log(BufWriter::new(f), &outcome.header(), &outcome.log))
                    {
                        eprintln!("cannot write log {}: {e}", path.display());
                    }
                }
            }
            if !outcome.ok() {
                report_failure(&outcome, log.as_deref());
            }
            let summary = Summary {
                seeds: 1,
                events: outcome.events,
                violations,
                liveness_ok: outcome.liveness.is_ok(),
                digest: outcome.digest.clone(),
                elapsed_ms: start.elapsed().as_millis(),
                coverage: None,
                policy: Some(options.policy_in_force().to_string()),
            };
            summary.print(json);
            summary.exit_code()
        }
        Command::Explore { seeds, shape, jobs, json } => {
            let start = Instant::now();
            let template = shape.options(seeds.start);
            let ex = tq_sim::explore::explore(&template, seeds, jobs);
            for failure in &ex.failures {
                report_failure(failure, None);
            }
            if !json {
                println!(
                    "coverage: {} exemptions={} max_exemptions={}",
                    ex.coverage, ex.exemptions_used, ex.max_exemptions
                );
            }
            let violations = ex.failures.iter().filter(|f| f.failure.is_some()).count();
            let summary = Summary {
                seeds: ex.seeds,
                events: ex.events,
                violations: u64::try_from(violations).unwrap_or(u64::MAX),
                liveness_ok: ex.failures.iter().all(|f| f.liveness.is_ok()),
                digest: ex.digest,
                elapsed_ms: start.elapsed().as_millis(),
                coverage: Some(serde_json::json!({
                    "counts": ex.coverage,
                    "exemptions": ex.exemptions_used,
                    "max_exemptions": ex.max_exemptions,
                })),
                policy: None,
            };
            summary.print(json);
            summary.exit_code()
        }
        Command::Replay { path, until, show, reveal_secrets, json } => {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("cannot open {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            let (header, entries) = match read_log(BufReader::new(file)) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            let r = tq_sim::replay::replay(&header, &entries, until);
            if let Some(what) = show {
                let reveal = if reveal_secrets { Reveal::Secrets } else { Reveal::Digests };
                match tq_sim::view::show(&r.world, &what, reveal) {
                    Ok(v) => {
                        if json {
                            println!("{v}");
                        } else {
                            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                }
            }
            match r.divergence {
                None => {
                    println!("replayed {} steps; every digest matches", r.steps);
                    ExitCode::SUCCESS
                }
                Some(d) => {
                    println!(
                        "diverged at step {}: logged digest {} but replay gives {}",
                        d.step, d.logged, d.replayed
                    );
                    ExitCode::FAILURE
                }
            }
        }
    }
}
