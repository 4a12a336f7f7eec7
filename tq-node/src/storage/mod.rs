//! The node's durable state, kept in two copies (as on two boot disks).
//!
//! The payload is opaque bytes (the agent stores
//! [`PersistentState::encode`](trust_quorum::PersistentState::encode) output).
//! Each copy is one file in the [`format`](mod@format) described there: a header with a
//! generation number and a BLAKE3 checksum, then the payload.
//!
//! # Writing
//!
//! [`Storage::write`] increments the generation and replaces the first copy,
//! then the second, each durably: write a temporary file `<name>.tmp` in the
//! same directory, fsync it, rename it over the copy, fsync the directory. Only
//! when both copies are done does it return `Ok`. If anything fails the error
//! is returned and the [`Storage`] is *poisoned*: every later write returns
//! [`StorageError::Poisoned`]. The agent must stop; the next start repairs.
//!
//! # Opening
//!
//! [`Storage::open`] first deletes stray temporary files (from a write that
//! crashed before its rename: that write never returned `Ok`, so nothing that
//! depended on it was sent), then reads and verifies both copies and:
//!
//! - neither exists: a new sled (no payload, generation 0); nothing is
//!   written until the first [`Storage::write`];
//! - at least one is valid: uses the valid copy with the highest generation,
//!   and rewrites the other if it is missing, damaged or older, so both end
//!   equal (each fix is listed in [`Opened::repaired`]);
//! - both valid with the same generation but different payloads:
//!   [`StorageError::Conflict`] (the write protocol cannot produce that);
//! - both exist and neither is valid: [`StorageError::NoUsableState`];
//! - one is missing and the other is damaged:
//!   [`StorageError::MissingAndDamaged`]. The node refuses to start rather
//!   than start as a new sled, since the damaged copy shows the sled had state
//!   that would be lost; an operator restores a copy or deletes both.
//!
//! Every unusable copy is logged at `warn` with its path and problem.
//!
//! # Crashes
//!
//! Since copies are written one after the other, a crash leaves at most one
//! copy newer than the other (the first, unless an earlier repair failed);
//! `open` then uses the newer one, which is a complete state the node computed
//! (the state only grows), even though its write never returned. A rename is
//! atomic, so a copy is never half old and half new; a torn or rotten file is
//! caught by the checksum and size checks and never used.
//!
//! Two processes must not open the same files at once (nothing here locks
//! them).

pub mod format;

mod error;
mod file;
mod select;

use std::fmt;
use std::path::{Path, PathBuf};

use tracing::{error, info, warn};
use zeroize::Zeroizing;

pub use self::error::{CopyFault, CopyProblem, IoOp, Repair, StorageError};
pub use self::format::FormatError;
use self::select::Found;

/// File names of the two copies inside a data directory ([`Storage::open_dir`]).
pub const FILE_NAMES: [&str; 2] = ["state-a.tqs", "state-b.tqs"];

/// The two copies of the node's durable state. Writes go to both, durably.
#[derive(Debug)]
pub struct Storage {
    paths: [PathBuf; 2],
    generation: u64,
    /// The message of the write failure that poisoned this storage.
    poisoned: Option<String>,
}

/// The result of [`Storage::open`]: the storage, the state found and what was
/// repaired.
pub struct Opened {
    /// The storage, ready for writes.
    pub storage: Storage,
    /// The newest valid payload, or `None` for a new sled (no files).
    pub payload: Option<Vec<u8>>,
    /// What `open` fixed on disk, in order (empty if both copies were fine).
    pub repaired: Vec<Repair>,
}

impl fmt::Debug for Opened {
    // The payload holds key shares: show only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("storage", &self.storage)
            .field("payload_len", &self.payload.as_ref().map(Vec::len))
            .field("repaired", &self.repaired)
            .finish()
    }
}

impl Storage {
    /// Opens the two copies at `paths` (first, then second in write order),
    /// choosing the newest valid state and repairing the other copy (see the
    /// [module docs](self)).
    ///
    /// The directories holding the paths must exist; the files need not.
    /// Fails if no state can be used safely, if the paths are unusable (no
    /// file name, the same file twice, a missing directory), or if a repair
    /// cannot be written.
    pub fn open(paths: [PathBuf; 2]) -> Result<Opened, StorageError> {
        check_paths(&paths)?;
        let mut repaired = Vec::new();
        for path in &paths {
            if let Some(temp) = file::remove_stray_temp(path)? {
                warn!(path = %temp.display(), "removed temporary file of an interrupted write");
                repaired.push(Repair::RemovedTemp { path: temp });
            }
        }
        let found = paths.each_ref().map(|path| file::read_copy(path));
        for (path, found) in paths.iter().zip(&found) {
            if let Found::Bad(problem) = found {
                warn!(path = %path.display(), %problem, "state copy is unusable");
            }
        }
        let selection = select::select(&paths, found)?;
        let generation = selection.generation;
        if let (Some(fault), Some(payload)) = (selection.rewrite, &selection.payload) {
            warn!(
                path = %fault.path.display(),
                problem = %fault.problem,
                generation,
                "repairing state copy from the other copy"
            );
            let bytes =
                Zeroizing::new(format::encode(generation, payload).map_err(StorageError::Payload)?);
            file::replace(&fault.path, &bytes)?;
            repaired.push(Repair::Rewrote { path: fault.path, problem: fault.problem, generation });
        }
        if selection.payload.is_none() {
            info!(
                first = %paths[0].display(),
                second = %paths[1].display(),
                "no state files: starting as a new sled"
            );
        }
        let payload = selection.payload.map(|mut payload| std::mem::take(&mut *payload));
        Ok(Opened { storage: Storage { paths, generation, poisoned: None }, payload, repaired })
    }

    /// Opens the copies [`FILE_NAMES`] in the data directory `dir`, creating
    /// `dir` (and its parents) if missing. See [`Storage::open`].
    pub fn open_dir(dir: &Path) -> Result<Opened, StorageError> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)
                .map_err(|err| StorageError::io(IoOp::CreateDir, dir, err))?;
            // Make the new directory's entry durable.
            file::sync_dir(file::parent_dir(dir))?;
        }
        Self::open(FILE_NAMES.map(|name| dir.join(name)))
    }

    /// Durably writes `payload` to both copies (first, then second) under the
    /// next generation.
    ///
    /// On error nothing is retried and the storage is poisoned: this and every
    /// later call fails (later ones with [`StorageError::Poisoned`]); the
    /// caller must stop, and the next [`Storage::open`] repairs the copies.
    /// Payloads longer than [`format::MAX_PAYLOAD_LEN`] are refused (and poison
    /// too: the state can no longer be stored).
    pub fn write(&mut self, payload: &[u8]) -> Result<(), StorageError> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { cause: cause.clone() });
        }
        let result = self.write_both(payload);
        if let Err(err) = &result {
            error!(%err, "state write failed; storage refuses further writes");
            self.poisoned = Some(err.to_string());
        }
        result
    }

    fn write_both(&mut self, payload: &[u8]) -> Result<(), StorageError> {
        let generation = self.generation.checked_add(1).ok_or(StorageError::GenerationExhausted)?;
        let bytes =
            Zeroizing::new(format::encode(generation, payload).map_err(StorageError::Payload)?);
        for path in &self.paths {
            file::replace(path, &bytes)?;
        }
        self.generation = generation;
        Ok(())
    }

    /// The generation of the state last read or written (0 for a new sled
    /// that has not written yet).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The two copies' paths, in write order.
    pub fn paths(&self) -> &[PathBuf; 2] {
        &self.paths
    }

    /// Whether a failed write has poisoned this storage.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}

/// Refuses paths without a file name, in a missing directory, or naming the
/// same file twice.
fn check_paths(paths: &[PathBuf; 2]) -> Result<(), StorageError> {
    let invalid = |reason: String| StorageError::InvalidPaths { reason };
    let mut locations = Vec::with_capacity(2);
    for path in paths {
        let name = path
            .file_name()
            .ok_or_else(|| invalid(format!("{} has no file name", path.display())))?;
        let dir = file::parent_dir(path);
        if !dir.is_dir() {
            return Err(invalid(format!(
                "directory {} of {} does not exist",
                dir.display(),
                path.display()
            )));
        }
        let dir = dir
            .canonicalize()
            .map_err(|err| invalid(format!("cannot resolve directory {}: {err}", dir.display())))?;
        locations.push(dir.join(name));
    }
    if locations.first() == locations.get(1) {
        return Err(invalid(format!(
            "both copies are the same file ({} and {})",
            paths[0].display(),
            paths[1].display()
        )));
    }
    Ok(())
}
