//! File-system steps: reading one copy, replacing one copy durably, and
//! temporary-file housekeeping.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{CopyProblem, IoOp, StorageError};
use super::format::{self, FormatError, MAX_FILE_LEN};
use super::select::Found;

/// Suffix appended to a copy's file name for its temporary file.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

/// The temporary file used while replacing `path`: `path` + [`TEMP_SUFFIX`],
/// in the same directory (so the rename stays within one file system).
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Reads and verifies one copy. Never fails: every problem is reported as a
/// [`Found::Bad`] (or [`Found::Missing`]).
pub(super) fn read_copy(path: &Path) -> Found {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Found::Missing,
        Err(err) => return Found::Bad(CopyProblem::unreadable(&err)),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(err) => return Found::Bad(CopyProblem::unreadable(&err)),
    };
    if !meta.is_file() {
        return Found::Bad(CopyProblem::NotAFile);
    }
    let max = format::u64_len(MAX_FILE_LEN);
    if meta.len() > max {
        // Refuse before reading, so a huge file costs no memory.
        return Found::Bad(CopyProblem::Invalid(FormatError::FileTooLarge { len: meta.len() }));
    }
    // Bound the read too, in case the file grows under us.
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    if let Err(err) = file.take(max.saturating_add(1)).read_to_end(&mut bytes) {
        return Found::Bad(CopyProblem::unreadable(&err));
    }
    match format::decode(&bytes) {
        Ok(decoded) => Found::Valid {
            generation: decoded.generation,
            payload: Zeroizing::new(decoded.payload.to_vec()),
        },
        Err(err) => Found::Bad(CopyProblem::Invalid(err)),
    }
}

/// Deletes the temporary file of `path` if one was left behind. Returns its
/// path if there was one.
pub(super) fn remove_stray_temp(path: &Path) -> Result<Option<PathBuf>, StorageError> {
    let temp = temp_path(path);
    match fs::remove_file(&temp) {
        Ok(()) => Ok(Some(temp)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StorageError::io(IoOp::RemoveTemp, temp, err)),
    }
}

/// Replaces `path` with `bytes` durably: write a temporary file in the same
/// directory, fsync it, rename it over `path`, fsync the directory.
///
/// When this returns `Ok`, `path` holds `bytes` even across a power loss.
/// When it fails, `path` holds either its old or its new content (the rename
/// is atomic), never a mix; a leftover temporary file is removed on a best
/// effort basis and otherwise by the next `open`.
pub(super) fn replace(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let temp = temp_path(path);
    let result = write_temp(&temp, bytes).and_then(|()| {
        fs::rename(&temp, path).map_err(|err| StorageError::io(IoOp::Rename, path, err))
    });
    if result.is_err() {
        // Best effort: the next `open` removes it otherwise.
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_dir(parent_dir(path))
}

/// Creates `temp` afresh, writes `bytes` and fsyncs it.
fn write_temp(temp: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    match fs::remove_file(temp) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(StorageError::io(IoOp::RemoveTemp, temp, err)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|err| StorageError::io(IoOp::CreateTemp, temp, err))?;
    file.write_all(bytes).map_err(|err| StorageError::io(IoOp::WriteTemp, temp, err))?;
    file.sync_all().map_err(|err| StorageError::io(IoOp::SyncTemp, temp, err))
}

/// Fsyncs a directory, making renames and creations in it durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| StorageError::io(IoOp::SyncDir, dir, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_and_parent() {
        assert_eq!(temp_path(Path::new("/x/state-a.tqs")), Path::new("/x/state-a.tqs.tmp"));
        assert_eq!(temp_path(Path::new("s.tqs")), Path::new("s.tqs.tmp"));
        assert_eq!(parent_dir(Path::new("s.tqs")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/x/s.tqs")), Path::new("/x"));
    }
}
