//! Bounded waits. Every wait has a limit and, when it gives up, says what
//! it waited for and what it saw last.

use std::time::{Duration, Instant};

use tq_types::{Epoch, RackMembershipState, RackMembershipStatus};

use crate::client::{self, Operator, http};
use crate::error::RackError;
use crate::layout::{Proc, Rack};
use crate::procs;

/// How long a started process may take to answer.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long an aborted epoch may stay the latest before a wait for its
/// commit gives up (the control plane retries an attempt at once).
pub const ABORT_SETTLE: Duration = Duration::from_secs(5);

/// A wait in progress: its limit and its last observation.
#[derive(Debug)]
pub struct Deadline {
    what: String,
    start: Instant,
    limit: Duration,
    last: String,
}

impl Deadline {
    /// Starts waiting for `what`, for at most `limit`.
    pub fn new(what: impl Into<String>, limit: Duration) -> Deadline {
        Deadline { what: what.into(), start: Instant::now(), limit, last: "nothing yet".into() }
    }

    /// Records the latest observation, reported if the wait gives up.
    pub fn note(&mut self, last: impl Into<String>) {
        self.last = last.into();
    }

    /// Time since the wait started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sleeps `every` (less if the limit is nearer), or gives up.
    pub async fn tick(&self, every: Duration) -> Result<(), RackError> {
        let left = self.limit.saturating_sub(self.start.elapsed());
        if left.is_zero() {
            return Err(self.timeout());
        }
        tokio::time::sleep(every.min(left)).await;
        Ok(())
    }

    /// The error of a wait that gave up.
    pub fn timeout(&self) -> RackError {
        RackError::Timeout {
            what: self.what.clone(),
            seconds: self.start.elapsed().as_secs_f64(),
            last: self.last.clone(),
        }
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines.get(lines.len().saturating_sub(n)..).unwrap_or_default().join("\n")
}

/// Waits until `proc` (running as `pid`) answers on its API: a sled's
/// `GET /v1/status`, a replica's operator API (any answer).
pub async fn ready(rack: &Rack, proc: Proc, pid: u32, limit: Duration) -> Result<(), RackError> {
    let client = http()?;
    let (url, control) = match proc {
        Proc::Sled(i) => {
            let control = client::control_client(rack, i)?;
            (format!("https://{}/v1/status", rack.sled(i)?.control), Some(control))
        }
        Proc::Ctl(r) => {
            let replica = rack
                .layout
                .replicas
                .get(r)
                .ok_or_else(|| RackError::Usage(format!("the rack has no replica {r}")))?;
            let url = format!(
                "http://{}/v1/system/hardware/racks/{}/membership",
                replica.listen, rack.layout.rack_id
            );
            (url, None)
        }
    };
    let mut deadline = Deadline::new(format!("{proc} (pid {pid}) to answer {url}"), limit);
    loop {
        if !procs::is_alive(pid) {
            let log = rack.log_path(proc);
            return Err(RackError::Process {
                name: proc.name(),
                problem: format!("exited while starting; its log ends:\n{}", log_tail(&log, 8)),
                log,
            });
        }
        let answered = match &control {
            Some(control) => client::sled_status(control).await.map(|_| ()),
            None => match client.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(_) => Ok(()),
                Err(e) => Err(RackError::Unreachable(e.to_string())),
            },
        };
        match answered {
            Ok(()) => return Ok(()),
            Err(e) => deadline.note(e.to_string()),
        }
        deadline.tick(Duration::from_millis(50)).await?;
    }
}

/// Starts `proc` and waits until it is ready.
pub async fn start_ready(
    launcher: &procs::Launcher,
    rack: &Rack,
    proc: Proc,
) -> Result<u32, RackError> {
    let pid = launcher.start(rack, proc)?;
    ready(rack, proc, pid, READY_LIMIT).await?;
    Ok(pid)
}

/// Waits until the change made at `epoch` is committed and returns the
/// committed status. An attempt aborted and retried by the control plane
/// (same membership at a later epoch) is followed; an abort that stays
/// the latest for [`ABORT_SETTLE`] fails.
pub async fn committed(
    operator: &Operator,
    epoch: Epoch,
    limit: Duration,
) -> Result<RackMembershipStatus, RackError> {
    let mut deadline = Deadline::new(format!("epoch {epoch} to commit"), limit);
    let mut target = epoch;
    let mut aborted_since: Option<Instant> = None;
    loop {
        match operator.status(Some(target)).await {
            Ok(Some(status)) => match status.state {
                RackMembershipState::Committed => return Ok(status),
                RackMembershipState::InProgress => {
                    aborted_since = None;
                    deadline.note(format!(
                        "epoch {target} in progress, {} of {} members unacknowledged",
                        status.unacknowledged_members.len(),
                        status.members.len()
                    ));
                }
                RackMembershipState::Aborted => match operator.status(None).await.ok().flatten() {
                    Some(l) if l.epoch > target && l.members == status.members => {
                        tracing::info!(aborted = %target, retry = %l.epoch, "attempt aborted and retried");
                        target = l.epoch;
                        aborted_since = None;
                    }
                    _ => {
                        let since = *aborted_since.get_or_insert_with(Instant::now);
                        let reason = operator
                            .config(target)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|c| c.abort_reason)
                            .unwrap_or_default();
                        if since.elapsed() >= ABORT_SETTLE {
                            return Err(RackError::Failed(format!(
                                "epoch {target} was aborted and not retried: {reason}"
                            )));
                        }
                        deadline.note(format!(
                            "epoch {target} aborted ({reason}); waiting for a retry"
                        ));
                    }
                },
            },
            Ok(None) => deadline.note(format!("no epoch {target} in the ledger")),
            Err(e) => deadline.note(e.to_string()),
        }
        deadline.tick(Duration::from_millis(100)).await?;
    }
}
