//! Why a `tq-rack` command failed, and the exit code it maps to.

use std::path::PathBuf;
use std::process::ExitCode;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum RackError {
    /// The command was used wrongly (exit code 2).
    #[error("bad usage: {0}")]
    Usage(String),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bounded wait gave up.
    #[error("gave up after {seconds:.1}s waiting for {what}; last seen: {last}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long it waited.
        seconds: f64,
        /// The last observation.
        last: String,
    },
    /// A process could not be started, or stopped on its own.
    #[error("process {name}: {problem} (log: {log})")]
    Process {
        /// The process name (`sled-3`, `ctl-0`).
        name: String,
        /// What went wrong.
        problem: String,
        /// Its log file.
        log: PathBuf,
    },
    /// The operator API refused a request.
    #[error("the control plane refused {what}: HTTP {status}: {message}")]
    Refused {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The refusal's message.
        message: String,
    },
    /// No replica of the control plane, or no sled, could be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A check or an expectation failed.
    #[error("{0}")]
    Failed(String),
}

impl RackError {
    /// An [`RackError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RackError {
        let path = path.into();
        move |source| RackError::Io { path, source }
    }

    /// The process exit code: 2 for bad usage, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RackError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}
