//! The SQLite backend: one connection per [`Store`](super::Store) handle,
//! used from blocking worker threads.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::migrations::{MIGRATIONS, SQLITE_MIGRATIONS_TABLE, latest_version};
use super::{Backend, CasOutcome, DbError, LEDGER_KEY, Row, SQLITE_BUSY_TIMEOUT, StoreError};

const BACKEND: Backend = Backend::Sqlite;

#[derive(Clone)]
pub(super) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and migrates it.
    pub(super) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let target = path.display().to_string();
        let conn = blocking(
            move || {
                let mut conn = connect(&path)?;
                migrate(&mut conn)?;
                Ok(conn)
            },
            |error| StoreError::Connect { backend: BACKEND, target, error },
        )
        .await?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Opens the existing database file read-only, without migrating; its
    /// schema must be the current one.
    pub(super) async fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let target = path.display().to_string();
        let conn = blocking(
            move || {
                let connect_error = |e: rusqlite::Error| StoreError::Connect {
                    backend: BACKEND,
                    target: path.display().to_string(),
                    error: DbError::Sqlite(e),
                };
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&path, flags).map_err(connect_error)?;
                conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(connect_error)?;
                // A store without the migrations table has version 0.
                let found: i64 = conn
                    .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
                        r.get(0)
                    })
                    .unwrap_or(0);
                let known = latest_version();
                if found != known {
                    return Err(StoreError::SchemaNotCurrent { backend: BACKEND, found, known });
                }
                Ok(conn)
            },
            |error| StoreError::Connect { backend: BACKEND, target, error },
        )
        .await?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    /// The ledger row: generation and body.
    pub(super) async fn load(&self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        self.with_conn("loading the ledger", |conn| {
            conn.query_row(
                "SELECT generation, body FROM ledger WHERE rack = ?1",
                [LEDGER_KEY],
                |row| {
                    // Bytes, not a String: text that is not UTF-8 is a
                    // corrupt ledger, reported as such by the caller.
                    let body = match row.get_ref(1)? {
                        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                        _ => Vec::new(),
                    };
                    Ok((row.get::<_, i64>(0)?, body))
                },
            )
            .optional()
        })
        .await
    }

    /// Compare-and-set in one `BEGIN IMMEDIATE` transaction: read the
    /// stored generation, compare it with `expected`, write the row.
    pub(super) async fn compare_and_set(
        &self,
        expected: i64,
        row: Row,
    ) -> Result<CasOutcome, StoreError> {
        self.with_conn("storing the ledger", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<i64> = tx
                .query_row("SELECT generation FROM ledger WHERE rack = ?1", [LEDGER_KEY], |r| {
                    r.get(0)
                })
                .optional()?;
            if current.unwrap_or(0) != expected {
                // Dropping the transaction rolls it back.
                return Ok(CasOutcome::Lost { current: super::from_sql(current.unwrap_or(0)) });
            }
            let changed = match current {
                Some(_) => tx.execute(
                    "UPDATE ledger SET body = ?1, generation = ?2 \
                     WHERE rack = ?3 AND generation = ?4",
                    rusqlite::params![row.body, row.generation, LEDGER_KEY, expected],
                )?,
                None => tx.execute(
                    "INSERT INTO ledger (rack, generation, body) VALUES (?1, ?2, ?3)",
                    rusqlite::params![LEDGER_KEY, row.generation, row.body],
                )?,
            };
            if changed != 1 {
                // Cannot happen under the write lock; never store on doubt.
                return Ok(CasOutcome::Lost { current: super::from_sql(current.unwrap_or(0)) });
            }
            tx.commit()?;
            Ok(CasOutcome::Stored)
        })
        .await
    }

    /// Runs `f` on the connection on a blocking worker thread.
    async fn with_conn<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let query_error = move |error| StoreError::Query { backend: BACKEND, operation, error };
        blocking(
            move || {
                // A panic while holding the lock unwound through the
                // transaction's drop, which rolled it back: the connection
                // is still sound.
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                f(&mut conn).map_err(|e| query_error(DbError::Sqlite(e)))
            },
            query_error,
        )
        .await
    }
}

/// Runs `f` on a blocking worker thread; `on_worker_error` turns a failed
/// worker (a panic, a cancelled runtime) into the caller's error.
async fn blocking<T, F, E>(f: F, on_worker_error: E) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    E: FnOnce(DbError) -> StoreError,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(on_worker_error(DbError::Worker(format!("SQLite worker failed: {e}")))),
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connect_error = |e: rusqlite::Error| StoreError::Connect {
        backend: BACKEND,
        target: path.display().to_string(),
        error: DbError::Sqlite(e),
    };
    // No SQLITE_OPEN_URI: the path is a file name, never a `file:` URI.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(connect_error)?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(connect_error)?;
    // The default rollback journal with full syncs: a stored ledger
    // survives a crash or power loss, and the file needs no side files
    // besides the short-lived journal.
    conn.pragma_update(None, "synchronous", "FULL").map_err(connect_error)?;
    Ok(conn)
}

/// Creates `schema_migrations` if missing, refuses a schema newer than this
/// build, then applies each missing migration in its own `BEGIN IMMEDIATE`
/// transaction, which also records it.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let migrate_error = |version| {
        move |e| StoreError::Migrate { backend: BACKEND, version, error: DbError::Sqlite(e) }
    };
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(migrate_error(0))?;
    tx.execute_batch(SQLITE_MIGRATIONS_TABLE).map_err(migrate_error(0))?;
    let found: i64 = tx
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .map_err(migrate_error(0))?;
    tx.commit().map_err(migrate_error(0))?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::SchemaTooNew { backend: BACKEND, found, known });
    }
    for m in MIGRATIONS {
        let err = migrate_error(m.version);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let applied: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [m.version],
                |r| r.get(0),
            )
            .map_err(err)?;
        if applied {
            continue;
        }
        tx.execute_batch(m.sqlite).map_err(err)?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [m.version])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(backend = %BACKEND, version = m.version, what = m.description, "schema migration applied");
    }
    Ok(())
}
