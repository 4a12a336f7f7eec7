//! Running the `tq-rack` binary against a rack in a temporary folder, with
//! every call bounded in time and `down` run on drop (also on failure), so
//! no process outlives the test.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr,
    reason = "test support: a failure is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Held while a rack comes up.
static UP_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_tq-rack");

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last line printed on stdout.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

/// Runs `tq-rack ARGS`, killing it after `limit`.
pub fn tq_rack(args: &[&str], limit: Duration) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("out");
    let err_path = out_dir.path().join("err");
    let mut child = Command::new(EXE)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tq-rack {args:?} still running after {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Runs `tq-rack ARGS` and expects exit code 0.
pub fn ok(args: &[&str], limit: Duration) -> Run {
    let run = tq_rack(args, limit);
    assert_eq!(run.code, 0, "tq-rack {args:?} failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, None | Some('Z' | 'X'))
        }
        Err(_) => false,
    }
}

/// A rack folder that is brought down when dropped.
pub struct TestRack {
    pub dir: tempfile::TempDir,
}

impl TestRack {
    pub fn new() -> TestRack {
        TestRack { dir: tempfile::Builder::new().prefix("tq-rack-test-").tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dir_arg(&self) -> String {
        self.path().display().to_string()
    }

    /// `tq-rack CMD --dir D ARGS`. Racks of one test binary come up one
    /// at a time, so two never pick the same free ports.
    pub fn run(&self, command: &str, args: &[&str], limit: Duration) -> Run {
        let _one_up_at_a_time = (command == "up")
            .then(|| UP_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let dir = self.dir_arg();
        let mut all = vec![command, "--dir", &dir];
        all.extend_from_slice(args);
        tq_rack(&all, limit)
    }

    /// Like `run`, expecting success.
    pub fn ok(&self, command: &str, args: &[&str], limit: Duration) -> Run {
        let run = self.run(command, args, limit);
        assert_eq!(
            run.code,
            0,
            "tq-rack {command} {args:?} failed:\n{}\n{}\nlogs: {}",
            run.stdout,
            run.stderr,
            self.logs()
        );
        run
    }

    /// Every pid recorded in D/pids.
    pub fn recorded_pids(&self) -> Vec<(String, u32)> {
        let Ok(entries) = std::fs::read_dir(self.path().join("pids")) else { return Vec::new() };
        let mut pids: Vec<(String, u32)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let pid = std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
                Some((name, pid))
            })
            .collect();
        pids.sort();
        pids
    }

    /// The tail of every process log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        let Ok(entries) = std::fs::read_dir(self.path().join("logs")) else { return text };
        for entry in entries.flatten() {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("\n== {} ==\n{tail}\n", entry.path().display()));
        }
        text
    }

    /// The latest status (`status --json`).
    pub fn status(&self) -> serde_json::Value {
        let run = self.ok("status", &["--json"], Duration::from_secs(30));
        serde_json::from_str(&run.stdout).unwrap()
    }

    /// Brings the rack down and checks that no recorded process is left.
    pub fn down(&self) {
        let pids = self.recorded_pids();
        let run = self.run("down", &[], Duration::from_secs(60));
        assert_eq!(run.code, 0, "down failed:\n{}\n{}", run.stdout, run.stderr);
        let left: Vec<&(String, u32)> = pids.iter().filter(|(_, pid)| alive(*pid)).collect();
        assert!(left.is_empty(), "processes left after down: {left:?}");
        assert!(self.recorded_pids().is_empty(), "pid files left after down");
    }

    pub fn rack_file(&self) -> PathBuf {
        self.path().join("rack.toml")
    }
}

impl Drop for TestRack {
    fn drop(&mut self) {
        if self.rack_file().exists() && !self.recorded_pids().is_empty() {
            let run = self.run("down", &[], Duration::from_secs(60));
            if run.code != 0 {
                eprintln!("down on drop failed:\n{}\n{}", run.stdout, run.stderr);
            }
        }
        if std::thread::panicking() || std::env::var_os("TQ_RACK_KEEP").is_some() {
            // Keep the folder to look at.
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!("kept the rack folder {}", dir.keep().display());
        }
    }
}
