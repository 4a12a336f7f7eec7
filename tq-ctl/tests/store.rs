//! The ledger store on SQLite and on PostgreSQL: migrations, empty load,
//! compare-and-set, races between handles, corrupt rows.
//!
//! Every check runs on both backends (`<check>::sqlite`, `<check>::postgres`).
//! The PostgreSQL variants start their own throwaway server (see
//! `pg_support`); they fail when PostgreSQL is not installed unless
//! `TQ_SKIP_POSTGRES=1`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "tests"
)]

mod pg_support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tempfile::TempDir;
use tq_ctl::store::{
    Backend, CasOutcome, CorruptLedger, LEDGER_KEY, RefusedWrite, Store, StoreError,
};
use tq_types::{BaseboardId, RackId, Timestamp};
use trust_quorum::control::{ControlPlane, ControlPlaneConfig, Ledger, LedgerWrite};

use pg_support::PgServer;

/// A fresh, empty database on one backend.
enum Db {
    Sqlite { _dir: TempDir, path: PathBuf },
    Postgres { server: PgServer, url: String },
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        Db::Sqlite { _dir: dir, path }
    }

    /// `None` when the PostgreSQL tests are skipped.
    async fn postgres() -> Option<Db> {
        let server = PgServer::start()?;
        let url = server.create_database("tq_ledger").await;
        Some(Db::Postgres { server, url })
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            Db::Postgres { url, .. } => url.clone(),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres { .. } => Backend::Postgres,
        }
    }

    async fn open(&self) -> Store {
        Store::open(&self.url()).await.unwrap_or_else(|e| panic!("open {}: {e}", self.url()))
    }

    /// Runs `sql` with the ledger key as its first parameter and
    /// `generation` and `body` as the next ones, behind the store's back.
    async fn hand_edit(&self, sql: &str, generation: i64, body: &str) -> u64 {
        match self {
            Db::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let sql = sql.replace('$', "?");
                conn.execute(&sql, rusqlite::params![LEDGER_KEY, generation, body]).unwrap() as u64
            }
            Db::Postgres { server, .. } => {
                let client = server.connect("tq_ledger").await;
                client.execute(sql, &[&LEDGER_KEY, &generation, &body]).await.unwrap()
            }
        }
    }

    async fn set_row(&self, generation: i64, body: &str) {
        let sql = "UPDATE ledger SET generation = $2, body = $3 WHERE rack = $1";
        assert_eq!(self.hand_edit(sql, generation, body).await, 1);
    }

    /// Runs `sql`, without parameters, behind the store's back.
    async fn exec(&self, sql: &str) {
        match self {
            Db::Sqlite { path, .. } => {
                rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
            }
            Db::Postgres { server, .. } => {
                server.connect("tq_ledger").await.batch_execute(sql).await.unwrap();
            }
        }
    }

    async fn migration_versions(&self) -> Vec<i64> {
        match self {
            Db::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt =
                    conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
                stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
            }
            Db::Postgres { server, .. } => {
                let client = server.connect("tq_ledger").await;
                let rows = client
                    .query("SELECT version FROM schema_migrations ORDER BY version", &[])
                    .await
                    .unwrap();
                rows.iter().map(|r| r.get(0)).collect()
            }
        }
    }
}

/// Successive valid ledgers of one rack (initialize, abort, initialize,
/// ...), each one generation or more past the one before.
fn ledgers(seed: u64, count: usize) -> Vec<Ledger> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let sleds: BTreeSet<BaseboardId> =
        ["P:0", "P:1", "P:2"].iter().map(|s| s.parse().unwrap()).collect();
    let rack = RackId(uuid::Uuid::from_u128(u128::from(seed) + 1));
    let authority = trust_quorum::crypto::authority::Authority::generate(&mut rng);
    let mut cp = ControlPlane::new(ControlPlaneConfig::default(), std::sync::Arc::new(authority));
    let mut out = Vec::new();
    for i in 0..count {
        let now =
            Timestamp::from_unix_micros(1_768_426_338_780_136 + i as i64 * 1_000_000).unwrap();
        if i % 2 == 0 {
            let _ = cp.initialize(rack, sleds.clone(), now, &mut rng);
        } else {
            let _ = cp.abort_latest("test", now);
        }
        match cp.take_write() {
            LedgerWrite::Pending(write) => {
                out.push(write.ledger().clone());
                let _ = write.written();
            }
            LedgerWrite::Nothing(_) => panic!("step {i} changed nothing"),
        }
    }
    out
}

/// Runs each check on both backends, as `<check>::sqlite` and
/// `<check>::postgres`.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$check(super::Db::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$check(db).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    migrations_are_idempotent,
    empty_store_loads_none,
    cas_from_zero_stores,
    stale_cas_is_lost,
    racing_handles_store_exactly_once,
    corrupt_ledger_is_a_typed_error,
    newer_schema_is_refused,
    bad_writes_are_refused,
    read_only_open_reads_and_never_writes,
);

async fn migrations_are_idempotent(db: Db) {
    // Several replicas starting at once on a fresh database.
    let opened = open_concurrently((0..4).map(|_| db.url())).await;
    for result in opened {
        result.unwrap();
    }
    // And again, one after another.
    let store = db.open().await;
    assert_eq!(store.backend(), db.backend());
    drop(db.open().await);
    assert_eq!(db.migration_versions().await, vec![1]);
    assert_eq!(store.load().await.unwrap(), None);
}

/// Opens a store on each URL concurrently.
async fn open_concurrently(urls: impl Iterator<Item = String>) -> Vec<Result<Store, StoreError>> {
    let tasks: Vec<_> =
        urls.map(|url| tokio::spawn(async move { Store::open(&url).await })).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

async fn empty_store_loads_none(db: Db) {
    let store = db.open().await;
    assert_eq!(store.load().await.unwrap(), None);
    // A compare-and-set against a generation the empty store does not hold
    // is lost and leaves it empty.
    let l = ledgers(1, 1);
    assert_eq!(store.compare_and_set(3, &l[0]).await.unwrap(), CasOutcome::Lost { current: 0 });
    assert_eq!(store.load().await.unwrap(), None);
}

async fn cas_from_zero_stores(db: Db) {
    let l = ledgers(2, 3);
    let store = db.open().await;
    assert_eq!(store.compare_and_set(0, &l[0]).await.unwrap(), CasOutcome::Stored);
    assert_eq!(store.load().await.unwrap().as_ref(), Some(&l[0]));
    for pair in l.windows(2) {
        let outcome = store.compare_and_set(pair[0].generation(), &pair[1]).await.unwrap();
        assert_eq!(outcome, CasOutcome::Stored);
    }
    // What was stored survives the handle.
    drop(store);
    let reopened = db.open().await;
    assert_eq!(reopened.load().await.unwrap().as_ref(), l.last());
}

async fn stale_cas_is_lost(db: Db) {
    let ours = ledgers(3, 2);
    let theirs = ledgers(4, 2);
    let store = db.open().await;
    assert_eq!(store.compare_and_set(0, &ours[0]).await.unwrap(), CasOutcome::Stored);
    let current = ours[0].generation();
    for (expected, ledger) in
        [(0, &theirs[0]), (current + 7, &theirs[1]), (current - 1, &theirs[1])]
    {
        let outcome = store.compare_and_set(expected, ledger).await.unwrap();
        assert_eq!(outcome, CasOutcome::Lost { current }, "expected {expected}");
        assert_eq!(store.load().await.unwrap().as_ref(), Some(&ours[0]));
    }
    assert_eq!(store.compare_and_set(current, &ours[1]).await.unwrap(), CasOutcome::Stored);
    assert_eq!(store.load().await.unwrap().as_ref(), Some(&ours[1]));
}

async fn racing_handles_store_exactly_once(db: Db) {
    const CONTENDERS: u64 = 16;
    let a = db.open().await;
    let b = db.open().await;
    let chains: Vec<Vec<Ledger>> = (0..CONTENDERS).map(|seed| ledgers(100 + seed, 2)).collect();
    // Round 0 races on the empty store (insert), round 1 on the stored
    // generation (update).
    let mut expected = 0;
    for round in 0..2 {
        let mut tasks = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let ledger = chain[round].clone();
            tasks.push(tokio::spawn(async move {
                (store.compare_and_set(expected, &ledger).await.unwrap(), ledger)
            }));
        }
        let mut winners = Vec::new();
        let mut lost = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (CasOutcome::Stored, ledger) => winners.push(ledger),
                (CasOutcome::Lost { current }, _) => lost.push(current),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} stored", winners.len());
        let winner = &winners[0];
        assert!(lost.iter().all(|&current| current == winner.generation()), "{lost:?}");
        for store in [&a, &b] {
            assert_eq!(store.load().await.unwrap().as_ref(), Some(winner));
        }
        expected = winner.generation();
    }
}

async fn corrupt_ledger_is_a_typed_error(db: Db) {
    let l = ledgers(5, 1).remove(0);
    let generation = i64::try_from(l.generation()).unwrap();
    let store = db.open().await;
    assert_eq!(store.compare_and_set(0, &l).await.unwrap(), CasOutcome::Stored);
    let good = serde_json::to_string(&l).unwrap();
    let mut broken: serde_json::Value = serde_json::from_str(&good).unwrap();
    broken["configs"] = serde_json::json!({});

    db.set_row(generation, "{ not json").await;
    let err = store.load().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { problem: CorruptLedger::Json(_), .. }), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");

    db.set_row(generation, &broken.to_string()).await;
    let err = store.load().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { problem: CorruptLedger::Invalid(_), .. }), "{err}");

    db.set_row(generation + 1, &good).await;
    let err = store.load().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt { problem: CorruptLedger::GenerationMismatch { .. }, .. }
        ),
        "{err}"
    );

    db.set_row(generation, &good).await;
    assert_eq!(store.load().await.unwrap(), Some(l));
}

async fn newer_schema_is_refused(db: Db) {
    drop(db.open().await);
    db.exec("INSERT INTO schema_migrations (version) VALUES (999)").await;
    let err = Store::open(&db.url()).await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 999, known: 1, .. }), "{err}");
}

async fn bad_writes_are_refused(db: Db) {
    let store = db.open().await;
    let err = store.compare_and_set(0, &Ledger::default()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Refused(RefusedWrite::GenerationUnchanged { generation: 0 })),
        "{err}"
    );
    let l = ledgers(6, 1).remove(0);
    let mut broken = serde_json::to_value(&l).unwrap();
    broken["configs"] = serde_json::json!({});
    let broken: Ledger = serde_json::from_value(broken).unwrap();
    let err = store.compare_and_set(0, &broken).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(RefusedWrite::Invalid(_))), "{err}");
    assert_eq!(store.load().await.unwrap(), None);
}

async fn read_only_open_reads_and_never_writes(db: Db) {
    // Nothing migrated yet: refused, and (SQLite) no file is created.
    let err = Store::open_read_only(&db.url()).await.err().unwrap();
    match &db {
        Db::Sqlite { path, .. } => assert!(!path.exists(), "{err}"),
        Db::Postgres { .. } => {
            assert!(matches!(err, StoreError::SchemaNotCurrent { found: 0, known: 1, .. }), "{err}")
        }
    }
    let l = ledgers(7, 2);
    let store = db.open().await;
    assert_eq!(store.compare_and_set(0, &l[0]).await.unwrap(), CasOutcome::Stored);
    // Reads the ledger as stored.
    let reader = Store::open_read_only(&db.url()).await.unwrap();
    assert_eq!(reader.load().await.unwrap().as_ref(), Some(&l[0]));
    // The database refuses a write through it, and the ledger is unchanged.
    let write = reader.compare_and_set(l[0].generation(), &l[1]).await;
    assert!(write.is_err(), "{write:?}");
    assert_eq!(store.load().await.unwrap().as_ref(), Some(&l[0]));
    // A schema this build does not know exactly is refused, not migrated.
    db.exec("INSERT INTO schema_migrations (version) VALUES (999)").await;
    let err = Store::open_read_only(&db.url()).await.err().unwrap();
    assert!(matches!(err, StoreError::SchemaNotCurrent { found: 999, known: 1, .. }), "{err}");
}
