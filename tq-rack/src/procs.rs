//! The rack's processes: each one is this binary in a hidden mode
//! (`tq-rack agent --config D/sled-N.toml`, `tq-rack ctl --config
//! D/ctl-R.toml`), started in its own process group with its output
//! appended to `D/logs/NAME.log` and its pid in `D/pids/NAME.pid`.
//!
//! A pid is only ever signalled while its `/proc/PID/cmdline` still names
//! the process's configuration file, so a recycled pid is never touched; a
//! zombie counts as gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::RackError;
use crate::layout::{Proc, Rack, pid_dir, write_atomic};

/// How long `stop` waits after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long a SIGKILLed process may take to disappear.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Starts the rack's processes from an executable (this binary).
#[derive(Clone, Debug)]
pub struct Launcher {
    exe: PathBuf,
}

impl Launcher {
    /// The running executable, or `$TQ_RACK_EXE` when set.
    pub fn current() -> Result<Launcher, RackError> {
        let exe = match std::env::var_os("TQ_RACK_EXE") {
            Some(exe) => PathBuf::from(exe),
            None => std::env::current_exe().map_err(RackError::io("the running executable"))?,
        };
        Ok(Launcher { exe })
    }

    /// A launcher of `exe`.
    pub fn new(exe: PathBuf) -> Launcher {
        Launcher { exe }
    }

    /// Starts `proc` detached and records its pid; refuses if it is
    /// already running. Does not wait for it to be ready.
    pub fn start(&self, rack: &Rack, proc: Proc) -> Result<u32, RackError> {
        if let Some(pid) = running(rack, proc) {
            return Err(RackError::Failed(format!("{proc} is already running (pid {pid})")));
        }
        let log = rack.log_path(proc);
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent).map_err(RackError::io(parent))?;
        }
        let pids = pid_dir(&rack.dir);
        std::fs::create_dir_all(&pids).map_err(RackError::io(&pids))?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(RackError::io(&log))?;
        let err = out.try_clone().map_err(RackError::io(&log))?;
        let mode = match proc {
            Proc::Sled(_) => "agent",
            Proc::Ctl(_) => "ctl",
        };
        let mut command = Command::new(&self.exe);
        command
            .arg(mode)
            .arg("--config")
            .arg(rack.config_path(proc))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| RackError::Process {
            name: proc.name(),
            problem: format!("cannot run {}: {e}", self.exe.display()),
            log: log.clone(),
        })?;
        let pid = child.id();
        // Reap it if it exits while this process lives; after that, init does.
        std::thread::spawn(move || child.wait());
        write_atomic(&rack.pid_path(proc), format!("{pid}\n").as_bytes())?;
        tracing::debug!(%proc, pid, "started");
        Ok(pid)
    }
}

/// The pid recorded for `proc`, if any.
pub fn recorded(rack: &Rack, proc: Proc) -> Option<u32> {
    read_pid(&rack.pid_path(proc))
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live (not zombie) process.
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name in parentheses.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

/// Whether `pid` is live and runs with `config` among its arguments.
pub fn is_ours(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = config.as_os_str().as_encoded_bytes();
    is_alive(pid) && cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// The pid of `proc` if its recorded process is running.
pub fn running(rack: &Rack, proc: Proc) -> Option<u32> {
    recorded(rack, proc).filter(|pid| is_ours(*pid, &rack.config_path(proc)))
}

fn send(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

/// SIGKILLs `proc` (if it runs), waits until it is gone and removes its
/// pid file. Returns whether a process was killed.
pub async fn kill_now(rack: &Rack, proc: Proc) -> Result<bool, RackError> {
    let Some(pid) = running(rack, proc) else {
        remove_pid_file(rack, proc);
        return Ok(false);
    };
    send(pid, Signal::SIGKILL);
    let config = rack.config_path(proc);
    if !gone_within(&[(pid, config)], KILL_GRACE).await {
        return Err(RackError::Process {
            name: proc.name(),
            problem: format!("pid {pid} still runs {KILL_GRACE:?} after SIGKILL"),
            log: rack.log_path(proc),
        });
    }
    remove_pid_file(rack, proc);
    Ok(true)
}

/// Stops `procs`: SIGTERM to all, SIGKILL after [`TERM_GRACE`] to those
/// still running, then removes their pid files. Returns how many were
/// running; fails if one survives SIGKILL.
pub async fn stop(rack: &Rack, procs: &[Proc]) -> Result<usize, RackError> {
    let live: Vec<(Proc, u32)> =
        procs.iter().filter_map(|p| running(rack, *p).map(|pid| (*p, pid))).collect();
    for (_, pid) in &live {
        send(*pid, Signal::SIGTERM);
    }
    let watched: Vec<(u32, PathBuf)> =
        live.iter().map(|(p, pid)| (*pid, rack.config_path(*p))).collect();
    if !gone_within(&watched, TERM_GRACE).await {
        for (pid, config) in &watched {
            if is_ours(*pid, config) {
                tracing::warn!(pid, "still running after SIGTERM; sending SIGKILL");
                send(*pid, Signal::SIGKILL);
            }
        }
        if !gone_within(&watched, KILL_GRACE).await {
            let left: Vec<String> = live
                .iter()
                .filter(|(p, pid)| is_ours(*pid, &rack.config_path(*p)))
                .map(|(p, pid)| format!("{p} (pid {pid})"))
                .collect();
            return Err(RackError::Failed(format!("still running after SIGKILL: {left:?}")));
        }
    }
    for proc in procs {
        remove_pid_file(rack, *proc);
    }
    Ok(live.len())
}

/// Every process with a pid file in the rack's folder.
pub fn recorded_procs(dir: &Path) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir(pid_dir(dir)) else {
        return Vec::new();
    };
    let mut procs: Vec<Proc> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Proc::parse(name.strip_suffix(".pid")?)
        })
        .collect();
    procs.sort();
    procs
}

fn remove_pid_file(rack: &Rack, proc: Proc) {
    let _ = std::fs::remove_file(rack.pid_path(proc));
}

async fn gone_within(procs: &[(u32, PathBuf)], limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if procs.iter().all(|(pid, config)| !is_ours(*pid, config)) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
