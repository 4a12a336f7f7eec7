//! Errors and repair reports of the state storage.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::format::FormatError;

/// Why one copy of the state cannot be used as it is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CopyProblem {
    /// The file does not exist.
    Missing,
    /// The path exists but is not a regular file.
    NotAFile,
    /// The file could not be read.
    Unreadable {
        /// The kind of the I/O error.
        kind: io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
    /// The file was read but is not a valid state file.
    Invalid(FormatError),
    /// The file is valid but older than the other copy.
    Older {
        /// This copy's generation.
        generation: u64,
        /// The other copy's (newer) generation.
        newest: u64,
    },
}

impl CopyProblem {
    pub(super) fn unreadable(err: &io::Error) -> Self {
        Self::Unreadable { kind: err.kind(), message: err.to_string() }
    }
}

impl fmt::Display for CopyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::Unreadable { message, .. } => write!(f, "unreadable ({message})"),
            Self::Invalid(err) => err.fmt(f),
            Self::Older { generation, newest } => {
                write!(f, "older generation {generation} (newest is {newest})")
            }
        }
    }
}

/// One unusable copy: its path and what is wrong with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CopyFault {
    /// The copy's path.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: CopyProblem,
}

impl fmt::Display for CopyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// Something [`Storage::open`](super::Storage::open) fixed on disk.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Repair {
    /// A missing, damaged or older copy was rewritten from the newest valid
    /// copy.
    Rewrote {
        /// The copy rewritten.
        path: PathBuf,
        /// What was wrong with it.
        problem: CopyProblem,
        /// The generation it now holds (the newest valid one).
        generation: u64,
    },
    /// A temporary file left by a write interrupted before its rename was
    /// deleted. Such a write never completed, so nothing durable is lost.
    RemovedTemp {
        /// The temporary file's path.
        path: PathBuf,
    },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rewrote { path, problem, generation } => {
                write!(f, "rewrote {} ({problem}) with generation {generation}", path.display())
            }
            Self::RemovedTemp { path } => {
                write!(f, "removed stray temporary file {}", path.display())
            }
        }
    }
}

/// The file-system step that failed, in [`StorageError::Io`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IoOp {
    /// Creating the data directory.
    CreateDir,
    /// Deleting a stray temporary file.
    RemoveTemp,
    /// Creating the temporary file.
    CreateTemp,
    /// Writing the temporary file.
    WriteTemp,
    /// Flushing the temporary file to disk.
    SyncTemp,
    /// Renaming the temporary file over the copy.
    Rename,
    /// Flushing the directory (making the rename durable).
    SyncDir,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateDir => "creating directory",
            Self::RemoveTemp => "removing temporary file",
            Self::CreateTemp => "creating temporary file",
            Self::WriteTemp => "writing temporary file",
            Self::SyncTemp => "syncing temporary file",
            Self::Rename => "renaming temporary file over",
            Self::SyncDir => "syncing directory",
        })
    }
}

/// An error opening or writing the state storage.
///
/// Every variant is fatal for the node: the agent logs it and stops.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Both copies exist and neither is usable.
    #[error("no usable state: {first}; {second}")]
    NoUsableState {
        /// The first copy and its problem.
        first: CopyFault,
        /// The second copy and its problem.
        second: CopyFault,
    },
    /// One copy is missing and the other is unusable. The sled may have held
    /// state (the damaged copy), so starting empty could silently lose it:
    /// an operator must restore a copy, or delete both to reset the sled.
    #[error(
        "no usable state: {}: missing; {damaged}; refusing to start as a new sled, \
         since the damaged copy may have held state that would be lost \
         (restore a copy, or delete both files to reset the sled)",
        missing.display()
    )]
    MissingAndDamaged {
        /// The missing copy.
        missing: PathBuf,
        /// The damaged copy and its problem.
        damaged: CopyFault,
    },
    /// Both copies are valid with the same generation but different payloads.
    /// The write protocol never produces this, so the files were altered;
    /// which one is right is unknown.
    #[error(
        "conflicting copies: {} and {} both hold generation {generation} \
         but different payloads",
        paths[0].display(),
        paths[1].display()
    )]
    Conflict {
        /// The two copies.
        paths: [PathBuf; 2],
        /// Their common generation.
        generation: u64,
    },
    /// The configured paths are unusable (no file name, the same file twice,
    /// or a parent directory that does not exist).
    #[error("invalid state paths: {reason}")]
    InvalidPaths {
        /// What is wrong.
        reason: String,
    },
    /// The payload given to [`Storage::write`](super::Storage::write) is
    /// too large.
    #[error("cannot write state: {0}")]
    Payload(#[source] FormatError),
    /// The generation counter would overflow.
    #[error("cannot write state: generation counter exhausted")]
    GenerationExhausted,
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The step that failed.
        op: IoOp,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An earlier write failed, so this storage refuses all further writes:
    /// the copies may differ, and only a restart (whose `open` repairs them)
    /// may continue.
    #[error("storage refuses writes after an earlier failed write ({cause}); restart the node")]
    Poisoned {
        /// The earlier failure.
        cause: String,
    },
}

impl StorageError {
    pub(super) fn io(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { op, path: path.into(), source }
    }
}
