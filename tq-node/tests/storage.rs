//! Integration tests of the two-copy durable state storage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use tq_node::storage::format::{self, HEADER_LEN, MAX_FILE_LEN, MAX_PAYLOAD_LEN};
use tq_node::storage::{
    CopyProblem, FILE_NAMES, FormatError, Opened, Repair, Storage, StorageError,
};

/// A small payload: its file is 76 bytes.
const PAYLOAD: &[u8] = b"sixteen bytes!!!";
const FILE_LEN: u64 = (HEADER_LEN + PAYLOAD.len()) as u64;

fn open(paths: &[PathBuf; 2]) -> Opened {
    Storage::open(paths.clone()).unwrap()
}

fn open_err(paths: &[PathBuf; 2]) -> StorageError {
    Storage::open(paths.clone()).unwrap_err()
}

/// A data dir whose two copies hold `payload` at generation 1.
fn written(payload: &[u8]) -> (TempDir, [PathBuf; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = Storage::open_dir(dir.path()).unwrap();
    opened.storage.write(payload).unwrap();
    let paths = opened.storage.paths().clone();
    (dir, paths)
}

fn assert_copies_equal(paths: &[PathBuf; 2]) -> Vec<u8> {
    let a = fs::read(&paths[0]).unwrap();
    assert_eq!(a, fs::read(&paths[1]).unwrap(), "copies differ after open");
    a
}

fn rewrote(path: &Path, problem: CopyProblem, generation: u64) -> Repair {
    Repair::Rewrote { path: path.to_path_buf(), problem, generation }
}

fn invalid(err: FormatError) -> CopyProblem {
    CopyProblem::Invalid(err)
}

/// A state file of `version` with a correct checksum.
fn craft(version: u32, generation: u64, declared_len: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = b"TQSTATE\0".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&declared_len.to_le_bytes());
    let mut h = blake3::Hasher::new();
    h.update(&out[8..28]);
    h.update(payload);
    out.extend_from_slice(h.finalize().as_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn round_trip_and_generation_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = Storage::open_dir(dir.path()).unwrap();
    let expected = FILE_NAMES.map(|name| dir.path().join(name));
    assert_eq!(opened.storage.paths(), &expected);
    for (i, payload) in [&b"one"[..], b"", b"three"].into_iter().enumerate() {
        opened.storage.write(payload).unwrap();
        assert_eq!(opened.storage.generation(), i as u64 + 1);
    }
    drop(opened);

    let mut opened = Storage::open_dir(dir.path()).unwrap();
    assert_eq!(opened.payload.as_deref(), Some(&b"three"[..]));
    assert_eq!(opened.storage.generation(), 3);
    assert!(opened.repaired.is_empty());
    assert!(!opened.storage.is_poisoned());
    opened.storage.write(b"four").unwrap();
    assert_eq!(opened.storage.generation(), 4);

    let opened = Storage::open(expected.clone()).unwrap();
    assert_eq!(opened.payload.as_deref(), Some(&b"four"[..]));
    assert_eq!(opened.storage.generation(), 4);
    let bytes = assert_copies_equal(&expected);
    assert_eq!(format::decode(&bytes).unwrap().generation, 4);
}

#[test]
fn fresh_dir_has_no_state_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not/yet/there");
    let mut opened = Storage::open_dir(&data).unwrap();
    assert!(data.is_dir());
    assert_eq!(opened.payload, None);
    assert_eq!(opened.storage.generation(), 0);
    assert!(opened.repaired.is_empty());
    assert_eq!(fs::read_dir(&data).unwrap().count(), 0);

    opened.storage.write(PAYLOAD).unwrap();
    assert_eq!(opened.storage.generation(), 1);
    assert_eq!(fs::read_dir(&data).unwrap().count(), 2, "only the two copies, no temp files");
    assert_eq!(assert_copies_equal(opened.storage.paths()).len() as u64, FILE_LEN);
}

#[test]
fn every_flipped_byte_is_detected_and_repaired() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();
    assert_eq!(pristine.len() as u64, FILE_LEN);
    for copy in 0..2 {
        for pos in 0..pristine.len() {
            for mask in [0x01u8, 0x10, 0x80] {
                let mut damaged = pristine.clone();
                damaged[pos] ^= mask;
                fs::write(&paths[copy], &damaged).unwrap();

                let opened = open(&paths);
                let what = format!("copy {copy}, byte {pos}, mask {mask:#04x}");
                assert_eq!(opened.payload.as_deref(), Some(PAYLOAD), "{what}");
                assert_eq!(opened.storage.generation(), 1, "{what}");
                let [Repair::Rewrote { path, problem: CopyProblem::Invalid(err), generation: 1 }] =
                    &opened.repaired[..]
                else {
                    panic!("{what}: unexpected repairs {:?}", opened.repaired);
                };
                assert_eq!(path, &paths[copy], "{what}");
                let expected_kind = match pos {
                    0..8 => matches!(err, FormatError::BadMagic { .. }),
                    8..12 => matches!(err, FormatError::UnsupportedVersion { .. }),
                    20..28 => matches!(
                        err,
                        FormatError::Truncated { .. }
                            | FormatError::TrailingData { .. }
                            | FormatError::PayloadTooLarge { .. }
                    ),
                    _ => *err == FormatError::ChecksumMismatch,
                };
                assert!(expected_kind, "{what}: unexpected problem {err}");
                assert_eq!(assert_copies_equal(&paths), pristine, "{what}");
            }
        }
    }
}

#[test]
fn truncated_copies_are_detected_and_repaired() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();
    for copy in 0..2 {
        for len in [0, 1, 7, 8, 12, 27, 59, 60, 61, 75] {
            fs::write(&paths[copy], &pristine[..len]).unwrap();
            let opened = open(&paths);
            let len = len as u64;
            let err = if len < HEADER_LEN as u64 {
                FormatError::TruncatedHeader { len }
            } else {
                FormatError::Truncated { len, expected: FILE_LEN }
            };
            assert_eq!(opened.repaired, vec![rewrote(&paths[copy], invalid(err), 1)]);
            assert_eq!(opened.payload.as_deref(), Some(PAYLOAD));
            assert_eq!(assert_copies_equal(&paths), pristine);
        }
    }
    // And the other way: extra bytes at the end.
    let mut longer = pristine.clone();
    longer.push(0);
    fs::write(&paths[1], &longer).unwrap();
    let opened = open(&paths);
    let err = FormatError::TrailingData { len: FILE_LEN + 1, expected: FILE_LEN };
    assert_eq!(opened.repaired, vec![rewrote(&paths[1], invalid(err), 1)]);
    assert_eq!(assert_copies_equal(&paths), pristine);
}

#[test]
fn a_missing_copy_is_rewritten() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();
    for copy in 0..2 {
        fs::remove_file(&paths[copy]).unwrap();
        let opened = open(&paths);
        assert_eq!(opened.payload.as_deref(), Some(PAYLOAD));
        assert_eq!(opened.repaired, vec![rewrote(&paths[copy], CopyProblem::Missing, 1)]);
        assert_eq!(assert_copies_equal(&paths), pristine);
    }
}

#[test]
fn both_copies_bad_is_an_error_naming_both() {
    let (_dir, paths) = written(PAYLOAD);
    let mut a = fs::read(&paths[0]).unwrap();
    *a.last_mut().unwrap() ^= 1;
    fs::write(&paths[0], &a).unwrap();
    let b = fs::read(&paths[1]).unwrap()[..12].to_vec();
    fs::write(&paths[1], &b).unwrap();

    let err = open_err(&paths);
    assert!(matches!(err, StorageError::NoUsableState { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no usable state: {}: checksum mismatch; {}: truncated header (12 of 60 bytes)",
            paths[0].display(),
            paths[1].display()
        )
    );
    // Nothing was touched.
    assert_eq!(fs::read(&paths[0]).unwrap(), a);
    assert_eq!(fs::read(&paths[1]).unwrap(), b);

    // A header-complete but short file reports both lengths.
    let full = format::encode(1, PAYLOAD).unwrap();
    fs::write(&paths[1], &full[..70]).unwrap();
    let message = open_err(&paths).to_string();
    assert!(message.ends_with(": truncated (70 of 76 bytes)"), "{message}");
}

#[test]
fn one_missing_and_the_other_damaged_refuses_to_start() {
    for (missing, damaged) in [(0, 1), (1, 0)] {
        let (_dir, paths) = written(PAYLOAD);
        fs::remove_file(&paths[missing]).unwrap();
        fs::write(&paths[damaged], b"TQSTATE\0garbage").unwrap();
        let err = open_err(&paths);
        let StorageError::MissingAndDamaged { missing: m, damaged: d } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(m, &paths[missing]);
        assert_eq!(d.path, paths[damaged]);
        assert_eq!(d.problem, invalid(FormatError::TruncatedHeader { len: 15 }));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "no usable state: {}: missing; {}: truncated header (15 of 60 bytes); refusing",
                paths[missing].display(),
                paths[damaged].display()
            )),
            "{message}"
        );
        assert!(message.contains("would be lost"), "{message}");
        assert!(!paths[missing].exists(), "nothing may be written");
    }
}

#[test]
fn newer_generation_wins_either_way() {
    let (_dir, paths) = written(b"one");
    let gen1 = fs::read(&paths[0]).unwrap();
    let mut opened = open(&paths);
    opened.storage.write(b"two").unwrap();
    let gen2 = fs::read(&paths[0]).unwrap();

    // A crash between the copies' writes: the first is newer.
    fs::write(&paths[1], &gen1).unwrap();
    let opened = open(&paths);
    assert_eq!(opened.payload.as_deref(), Some(&b"two"[..]));
    assert_eq!(opened.storage.generation(), 2);
    let older = CopyProblem::Older { generation: 1, newest: 2 };
    assert_eq!(opened.repaired, vec![rewrote(&paths[1], older.clone(), 2)]);
    assert_eq!(assert_copies_equal(&paths), gen2);

    // The second newer (e.g. after a failed repair of the first).
    fs::write(&paths[0], &gen1).unwrap();
    let opened = open(&paths);
    assert_eq!(opened.payload.as_deref(), Some(&b"two"[..]));
    assert_eq!(opened.repaired, vec![rewrote(&paths[0], older, 2)]);
    assert_eq!(assert_copies_equal(&paths), gen2);
}

#[test]
fn a_failed_write_poisons_and_open_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    let paths = [a.join("state.tqs"), b.join("state.tqs")];
    let mut storage = open(&paths).storage;
    storage.write(b"one").unwrap();

    // Replace the second copy's directory by a plain file: writing the first
    // copy succeeds, the second fails (even as root).
    let saved = dir.path().join("b.saved");
    fs::rename(&b, &saved).unwrap();
    fs::write(&b, b"not a directory").unwrap();
    let err = storage.write(b"two").unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&*b.to_string_lossy()), "{err}");
    assert!(storage.is_poisoned());
    assert_eq!(storage.generation(), 1);

    // Even with the disk back, the storage refuses.
    fs::remove_file(&b).unwrap();
    fs::rename(&saved, &b).unwrap();
    let refused = storage.write(b"three").unwrap_err();
    let StorageError::Poisoned { cause } = &refused else { panic!("unexpected {refused:?}") };
    assert_eq!(cause, &err.to_string());
    assert!(storage.write(b"four").is_err());
    drop(storage);

    // The first copy holds generation 2, the second generation 1.
    let mut opened = open(&paths);
    assert_eq!(opened.payload.as_deref(), Some(&b"two"[..]));
    let older = CopyProblem::Older { generation: 1, newest: 2 };
    assert_eq!(opened.repaired, vec![rewrote(&paths[1], older, 2)]);
    assert_copies_equal(&paths);
    opened.storage.write(b"five").unwrap();
    assert_eq!(opened.storage.generation(), 3);
}

#[test]
fn an_oversized_payload_is_refused_and_poisons() {
    let (_dir, paths) = written(PAYLOAD);
    let before = fs::read(&paths[0]).unwrap();
    let mut storage = open(&paths).storage;
    let err = storage.write(&vec![0; MAX_PAYLOAD_LEN + 1]).unwrap_err();
    let len = MAX_PAYLOAD_LEN as u64 + 1;
    assert!(
        matches!(err, StorageError::Payload(FormatError::PayloadTooLarge { len: l }) if l == len)
    );
    assert!(matches!(storage.write(PAYLOAD), Err(StorageError::Poisoned { .. })));
    assert_eq!(fs::read(&paths[0]).unwrap(), before);
    assert_eq!(fs::read(&paths[1]).unwrap(), before);
}

#[test]
fn oversized_files_are_detected() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();

    // A header declaring too long a payload (checksum correct).
    let declared = MAX_PAYLOAD_LEN as u64 + 1;
    fs::write(&paths[0], craft(1, 9, declared, PAYLOAD)).unwrap();
    let opened = open(&paths);
    let err = FormatError::PayloadTooLarge { len: declared };
    assert_eq!(opened.repaired, vec![rewrote(&paths[0], invalid(err), 1)]);
    assert_eq!(assert_copies_equal(&paths), pristine);

    // A (sparse) file beyond the cap is refused without being read.
    let file = fs::OpenOptions::new().write(true).open(&paths[1]).unwrap();
    let len = MAX_FILE_LEN as u64 + 1;
    file.set_len(len).unwrap();
    drop(file);
    let opened = open(&paths);
    let err = FormatError::FileTooLarge { len };
    assert_eq!(opened.repaired, vec![rewrote(&paths[1], invalid(err), 1)]);
    assert_eq!(assert_copies_equal(&paths), pristine);
}

#[test]
fn wrong_version_or_magic_is_refused_even_with_a_valid_checksum() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();

    fs::write(&paths[0], craft(2, 5, PAYLOAD.len() as u64, PAYLOAD)).unwrap();
    let opened = open(&paths);
    let err = FormatError::UnsupportedVersion { found: 2 };
    assert_eq!(opened.repaired, vec![rewrote(&paths[0], invalid(err), 1)]);
    assert_eq!(opened.storage.generation(), 1);

    let mut foreign = craft(1, 5, PAYLOAD.len() as u64, PAYLOAD);
    foreign[..8].copy_from_slice(b"NOTSTATE");
    fs::write(&paths[1], &foreign).unwrap();
    let opened = open(&paths);
    let err = FormatError::BadMagic { found: *b"NOTSTATE" };
    assert_eq!(opened.repaired, vec![rewrote(&paths[1], invalid(err.clone()), 1)]);
    assert!(err.to_string().starts_with("wrong magic (found 0x4e4f545354415445"), "{err}");
    assert_eq!(assert_copies_equal(&paths), pristine);
}

#[test]
fn stray_temp_files_are_removed_and_ignored() {
    let (_dir, paths) = written(PAYLOAD);
    let pristine = fs::read(&paths[0]).unwrap();
    let temps = paths
        .clone()
        .map(|p| p.with_file_name(format!("{}.tmp", p.file_name().unwrap().to_string_lossy())));
    // A torn temp file, and a complete one of a newer generation whose
    // rename never happened (its write never returned): both are discarded.
    fs::write(&temps[0], &pristine[..30]).unwrap();
    fs::write(&temps[1], format::encode(2, b"unacknowledged").unwrap()).unwrap();
    let opened = open(&paths);
    assert_eq!(opened.payload.as_deref(), Some(PAYLOAD));
    assert_eq!(opened.storage.generation(), 1);
    assert_eq!(
        opened.repaired,
        temps.iter().map(|t| Repair::RemovedTemp { path: t.clone() }).collect::<Vec<_>>()
    );
    assert!(temps.iter().all(|t| !t.exists()));
    assert_eq!(assert_copies_equal(&paths), pristine);

    // On a new sled too.
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("state-a.tqs.tmp");
    fs::write(&temp, b"junk").unwrap();
    let opened = Storage::open_dir(dir.path()).unwrap();
    assert_eq!(opened.payload, None);
    assert_eq!(opened.repaired, vec![Repair::RemovedTemp { path: temp.clone() }]);
    assert!(!temp.exists());
}

#[test]
fn same_generation_different_payloads_is_a_conflict() {
    let (_d1, paths) = written(b"left");
    let (_d2, other) = written(b"right");
    fs::copy(&other[1], &paths[1]).unwrap();
    let err = open_err(&paths);
    assert!(matches!(err, StorageError::Conflict { generation: 1, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&*paths[0].to_string_lossy()), "{message}");
    assert!(message.contains(&*paths[1].to_string_lossy()), "{message}");
}

#[test]
fn unusable_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.tqs");
    let err = Storage::open([file.clone(), file.clone()]).unwrap_err();
    assert!(matches!(err, StorageError::InvalidPaths { .. }), "{err:?}");
    // The same file spelled differently.
    let alias = dir.path().join(".").join("state.tqs");
    assert!(matches!(Storage::open([file.clone(), alias]), Err(StorageError::InvalidPaths { .. })));
    // A directory that does not exist (e.g. an unmounted disk).
    let absent = dir.path().join("absent").join("state.tqs");
    let err = Storage::open([file.clone(), absent]).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // No file name.
    let err = Storage::open([file, PathBuf::from("/")]).unwrap_err();
    assert!(matches!(err, StorageError::InvalidPaths { .. }), "{err:?}");
}

#[test]
fn directories_in_place_of_both_copies_are_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let paths = FILE_NAMES.map(|name| dir.path().join(name));
    for path in &paths {
        fs::create_dir(path).unwrap();
    }
    let message = open_err(&paths).to_string();
    assert_eq!(
        message,
        format!(
            "no usable state: {}: not a regular file; {}: not a regular file",
            paths[0].display(),
            paths[1].display()
        )
    );
}

#[test]
fn repairs_and_opened_display_without_secrets() {
    let (_dir, paths) = written(b"secret share bytes");
    fs::remove_file(&paths[1]).unwrap();
    let opened = open(&paths);
    assert_eq!(
        opened.repaired[0].to_string(),
        format!("rewrote {} (missing) with generation 1", paths[1].display())
    );
    let debug = format!("{opened:?}");
    assert!(debug.contains("payload_len: Some(18)"), "{debug}");
    assert!(!debug.contains("115, 101, 99"), "payload bytes leaked: {debug}");
}
