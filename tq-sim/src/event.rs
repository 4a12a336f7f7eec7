//! Simulator events and the JSON-lines event log.
//!
//! A log starts with a [`LogHeader`] line (seed, options, crate version);
//! every following line is a [`LogEntry`]: the step index, the event and the
//! digest of the whole simulated state after it. Replaying a log re-applies
//! its events to a world built from the same header.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, Epoch};

use crate::adversary::Attack;
use crate::options::SimOptions;

/// One thing that happens in the simulated world.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Deliver the `index`-th message queued from `from` to `to`.
    Deliver {
        /// Sender.
        from: BaseboardId,
        /// Receiver.
        to: BaseboardId,
        /// Position in the link's queue (0 is the oldest).
        index: usize,
    },
    /// Lose the `index`-th message queued from `from` to `to`; the
    /// connection breaks with it (links are reliable streams).
    DropMessage {
        /// Sender.
        from: BaseboardId,
        /// Receiver.
        to: BaseboardId,
        /// Position in the link's queue.
        index: usize,
    },
    /// A faulty `from` sends `to` a garbled copy of a share it has queued,
    /// ahead of the real one.
    CorruptShare {
        /// Sender.
        from: BaseboardId,
        /// Receiver.
        to: BaseboardId,
    },
    /// The compromised sled of a byzantine run sends `victim` what
    /// `attack` says, built when the event is applied from what the
    /// attacker holds and has seen, and from `pick` (so a log carries no
    /// payload).
    Attack {
        /// The honest sled attacked.
        victim: BaseboardId,
        /// What the attacker sends.
        attack: Attack,
        /// Chooses among what the attacker could send.
        pick: u64,
    },
    /// A crashed sled's stored state is damaged: bits flipped or the
    /// encoding truncated, as `pick` says. When it restarts the state is
    /// decoded again; a refused state counts as a lost disk.
    CorruptDisk {
        /// The sled.
        sled: BaseboardId,
        /// Chooses the damage.
        pick: u64,
    },
    /// Bring a connection up; both ends resend what they still need.
    Connect {
        /// One end.
        a: BaseboardId,
        /// The other end.
        b: BaseboardId,
    },
    /// Take a connection down, losing what is in flight on it.
    Disconnect {
        /// One end.
        a: BaseboardId,
        /// The other end.
        b: BaseboardId,
    },
    /// Block one direction of a link.
    Partition {
        /// Blocked sender.
        from: BaseboardId,
        /// Blocked receiver.
        to: BaseboardId,
    },
    /// Lift a partition.
    Heal {
        /// Sender.
        from: BaseboardId,
        /// Receiver.
        to: BaseboardId,
    },
    /// Crash a sled: its in-memory state is lost.
    Crash {
        /// The sled.
        sled: BaseboardId,
    },
    /// Crash a sled right after its next persist, before it sends.
    CrashAfterPersist {
        /// The sled.
        sled: BaseboardId,
    },
    /// Wipe a crashed sled's durable state.
    WipeDisk {
        /// The sled.
        sled: BaseboardId,
    },
    /// Restart a crashed sled from its durable state.
    Restart {
        /// The sled.
        sled: BaseboardId,
    },
    /// A sled asks for its rack secret (as when unlocking storage): the
    /// secret of its latest committed epoch.
    LoadSecret {
        /// The sled.
        sled: BaseboardId,
    },
    /// A sled is asked for the secret of any epoch: a past one, its current
    /// one or one it has not committed, so that every answer of the load
    /// API happens.
    LoadEpoch {
        /// The sled.
        sled: BaseboardId,
        /// The requested epoch.
        epoch: Epoch,
    },
    /// A control-plane replica runs one driver pass.
    ControlTick {
        /// The replica.
        replica: usize,
    },
    /// Deliver the `index`-th in-flight control-plane request.
    ControlRequest {
        /// Position in the request queue.
        index: usize,
    },
    /// Deliver the `index`-th in-flight control-plane reply.
    ControlReply {
        /// Position in the reply queue.
        index: usize,
    },
    /// Lose the `index`-th in-flight control-plane request.
    LoseControlRequest {
        /// Position in the request queue.
        index: usize,
    },
    /// Lose the `index`-th in-flight control-plane reply.
    LoseControlReply {
        /// Position in the reply queue.
        index: usize,
    },
    /// Crash a control-plane replica (its in-flight work is lost).
    ControlCrash {
        /// The replica.
        replica: usize,
    },
    /// Restart a control-plane replica.
    ControlRestart {
        /// The replica.
        replica: usize,
    },
    /// A replica keeps its current ledger snapshot for its next operation,
    /// racing the others.
    ControlStale {
        /// The replica.
        replica: usize,
    },
    /// The operator initializes the rack again after its first
    /// configuration was aborted.
    Initialize {
        /// The replica handling the request.
        replica: usize,
        /// The first membership.
        sleds: Vec<BaseboardId>,
    },
    /// The operator adds sleds. A sled that left the rack earlier is reset
    /// (its durable state wiped) first, as a removed sled must be before it
    /// can rejoin.
    AddSleds {
        /// The replica handling the request.
        replica: usize,
        /// The sleds.
        sleds: Vec<BaseboardId>,
    },
    /// The operator removes sleds.
    RemoveSleds {
        /// The replica handling the request.
        replica: usize,
        /// The sleds.
        sleds: Vec<BaseboardId>,
    },
    /// The operator aborts the latest configuration.
    Abort {
        /// The replica handling the request.
        replica: usize,
    },
    /// The fault phase ends: faults stop, partitions heal, armed crashes
    /// are disarmed and dead coordinators may restart.
    BeginLiveness,
    /// Simulated time passes.
    AdvanceClock {
        /// Milliseconds.
        ms: u64,
    },
}

/// The first line of a log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LogHeader {
    /// The tq-sim crate version that wrote the log.
    pub version: String,
    /// The options of the run, seed included.
    pub options: SimOptions,
}

/// One event line of a log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    /// The step index, from 0.
    pub step: u64,
    /// What happened.
    pub event: Event,
    /// The digest of the whole state after the event, 16 hex digits.
    pub digest: String,
}

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading failed.
    #[error("cannot read the log: {0}")]
    Io(#[from] io::Error),
    /// A line is not valid JSON of the expected shape.
    #[error("line {line}: {err}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        err: serde_json::Error,
    },
    /// The log has no header line.
    #[error("the log is empty")]
    Empty,
}

/// Writes `header` and `entries` as JSON lines.
pub fn write_log<W: Write>(mut out: W, header: &LogHeader, entries: &[LogEntry]) -> io::Result<()> {
    serde_json::to_writer(&mut out, header)?;
    out.write_all(b"\n")?;
    for e in entries {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a log written by [`write_log`].
pub fn read_log<R: BufRead>(input: R) -> Result<(LogHeader, Vec<LogEntry>), LogError> {
    let mut lines = input.lines().enumerate();
    let (_, first) = lines.next().ok_or(LogError::Empty)?;
    let header = serde_json::from_str(&first?).map_err(|err| LogError::Parse { line: 1, err })?;
    let mut entries = Vec::new();
    for (i, line) in lines {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line)
            .map_err(|err| LogError::Parse { line: i.saturating_add(1), err })?;
        entries.push(entry);
    }
    Ok((header, entries))
}
