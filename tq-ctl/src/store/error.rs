//! Why a ledger store operation failed.
//!
//! Every message names the backend and what the store was doing, and none
//! carries a password: store URLs are shown redacted, and the ledger itself
//! holds no secrets.

use std::fmt;

use trust_quorum::control::LedgerError;

use super::Backend;

/// Why the ledger store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL cannot be used.
    #[error("invalid ledger store URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database cannot be opened or reached.
    #[error("cannot open the {backend} ledger store at {target}: {error}")]
    Connect {
        /// The backend.
        backend: Backend,
        /// The file or URL, password redacted.
        target: String,
        /// The database's error.
        error: DbError,
    },
    /// A schema migration failed; the store was left at the previous
    /// version.
    #[error("cannot migrate the {backend} ledger store to schema version {version}: {error}")]
    Migrate {
        /// The backend.
        backend: Backend,
        /// The migration's version.
        version: i64,
        /// The database's error.
        error: DbError,
    },
    /// The store was migrated by a newer build than this one; using it could
    /// lose what that build stores.
    #[error(
        "the {backend} ledger store has schema version {found}, newer than the newest this \
         build knows ({known}); upgrade this replica"
    )]
    SchemaTooNew {
        /// The backend.
        backend: Backend,
        /// The newest version applied to the store.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A store opened read-only does not have exactly the schema this
    /// build knows (it is read as it is, never migrated).
    #[error(
        "the {backend} ledger store has schema version {found}, not {known}: a read-only \
         open does not migrate"
    )]
    SchemaNotCurrent {
        /// The newest version applied to the store (0: none).
        found: i64,
        /// The newest version this build knows.
        known: i64,
        /// The backend.
        backend: Backend,
    },
    /// A query failed.
    #[error("{backend} ledger store failed while {operation}: {error}")]
    Query {
        /// The backend.
        backend: Backend,
        /// What the store was doing ("loading the ledger", ...).
        operation: &'static str,
        /// The database's error.
        error: DbError,
    },
    /// The stored ledger cannot be trusted; the store was not changed.
    #[error("the ledger stored in {backend} is corrupt: {problem}")]
    Corrupt {
        /// The backend.
        backend: Backend,
        /// What is wrong with it.
        problem: CorruptLedger,
    },
    /// A compare-and-set was asked to store a ledger that cannot be stored;
    /// the store was not changed.
    #[error("refusing to store the ledger: {0}")]
    Refused(RefusedWrite),
    /// A failure outside the store itself, reported by an embedder through
    /// the same error type.
    #[error("{0}")]
    Other(String),
}

/// What is wrong with a stored ledger.
#[derive(Debug, thiserror::Error)]
pub enum CorruptLedger {
    /// The stored text is not a ledger's JSON.
    #[error("it does not parse as a ledger: {0}")]
    Json(serde_json::Error),
    /// The ledger breaks one of the control plane's rules.
    #[error("it breaks a ledger rule: {0}")]
    Invalid(LedgerError),
    /// The generation column disagrees with the ledger's own generation.
    #[error("its generation column says {column} but the ledger says {body}")]
    GenerationMismatch {
        /// The generation column.
        column: u64,
        /// The ledger's own generation.
        body: u64,
    },
}

/// Why a compare-and-set refused a ledger before touching the store.
#[derive(Debug, thiserror::Error)]
pub enum RefusedWrite {
    /// The ledger's generation equals the expected one, so a later
    /// compare-and-set could not tell the two ledgers apart.
    #[error("its generation {generation} is the expected one; a change must move it")]
    GenerationUnchanged {
        /// The generation.
        generation: u64,
    },
    /// The ledger breaks one of the control plane's rules; loading it back
    /// would fail.
    #[error("it breaks a ledger rule: {0}")]
    Invalid(LedgerError),
    /// The ledger cannot be serialized.
    #[error("it cannot be serialized: {0}")]
    Serialize(serde_json::Error),
}

/// An error from a database driver, or from the worker that ran the query.
#[derive(Debug)]
pub enum DbError {
    /// From SQLite.
    Sqlite(rusqlite::Error),
    /// From PostgreSQL (or CockroachDB) or the connection to it.
    Postgres(tokio_postgres::Error),
    /// The blocking worker running a SQLite call failed (it panicked or
    /// was cancelled) or left its connection unusable.
    Worker(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => write!(f, "{e}"),
            DbError::Postgres(e) => {
                // tokio-postgres says only "db error" and keeps the server's
                // message in its source: show the whole chain.
                write_chain(f, e)
            }
            DbError::Worker(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for DbError {}

/// Writes `error` and its sources, separated by `: `.
pub(super) fn write_chain(
    f: &mut fmt::Formatter<'_>,
    error: &(dyn std::error::Error + 'static),
) -> fmt::Result {
    write!(f, "{error}")?;
    let mut source = error.source();
    while let Some(s) = source {
        write!(f, ": {s}")?;
        source = s.source();
    }
    Ok(())
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}
