//! The ledger store: the control plane's [`Ledger`] in a database, written
//! only by compare-and-set on its [generation](Ledger::generation).
//!
//! Several replicas of the control plane may share one store. Each loads the
//! ledger, changes it, and stores the result with
//! [`Store::compare_and_set`] on the generation it started from; when
//! another replica wrote first, the store says [`CasOutcome::Lost`] and the
//! replica reloads.
//!
//! Backends (see [`StoreUrl`] for the location syntax):
//!
//! - SQLite, the default: one database file. Every compare-and-set is a
//!   `BEGIN IMMEDIATE` transaction (read the generation, compare, write), so
//!   any number of handles and processes on the same file serialize; each
//!   waits up to [`SQLITE_BUSY_TIMEOUT`] for the others' locks.
//! - PostgreSQL, or CockroachDB (the SQL uses only what both accept): the
//!   compare-and-set is one `UPDATE ... WHERE rack = $3 AND generation = $4`,
//!   or for an empty store one `INSERT ... ON CONFLICT (rack) DO NOTHING`;
//!   a row count of zero is a lost race.
//!
//! # Schema
//!
//! One table `ledger(rack, generation, body)` with one row, keyed by the
//! fixed [`LEDGER_KEY`]: a database holds one rack's ledger (the key leaves
//! room for more in a later migration). `body` is the ledger's JSON
//! (`serde_json`), `generation` a copy of its generation for the compare, as
//! a 64-bit signed integer holding the same bits (a generation above
//! `i64::MAX` reads as negative in SQL; only equality is ever used). The
//! schema is created and upgraded by versioned migrations when a store is
//! opened; see the `migrations` module.
//!
//! Loading checks what it reads: the JSON must parse, the ledger must pass
//! [`Ledger::validate`] and its generation must match the column, or the
//! load fails with [`StoreError::Corrupt`]. Nothing the database holds can
//! make the store panic.

use std::fmt;

use trust_quorum::control::Ledger;

mod error;
mod migrations;
mod postgres;
mod sqlite;
mod url;

pub use error::{CorruptLedger, DbError, RefusedWrite, StoreError};
pub use url::StoreUrl;

/// The `rack` key of the one ledger row.
pub const LEDGER_KEY: &str = "default";

/// How long a SQLite call waits for another connection's lock before it
/// fails with "database is locked".
pub const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A database backend.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// A SQLite database file.
    Sqlite,
    /// A PostgreSQL (or CockroachDB) server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// What a compare-and-set did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "a lost race means the ledger was not stored"]
pub enum CasOutcome {
    /// The store held the expected generation and now holds the new ledger.
    Stored,
    /// The store held another generation (another replica wrote first) and
    /// was not changed.
    Lost {
        /// The generation the store holds; 0 for an empty store.
        current: u64,
    },
}

/// An open ledger store. Cloning is cheap and clones share the connection.
#[derive(Clone)]
pub struct Store {
    url: StoreUrl,
    backend: Inner,
}

#[derive(Clone)]
enum Inner {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens the store at `url` (see [`StoreUrl`]): creates the SQLite file
    /// or connects to the server, then applies the schema migrations this
    /// build knows and the store lacks.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_url(StoreUrl::parse(url)?).await
    }

    /// Opens an existing store for reading only: no file is created, no
    /// migration runs, the schema must be exactly the one this build knows
    /// ([`StoreError::SchemaNotCurrent`] otherwise), and the database
    /// refuses writes made through it.
    pub async fn open_read_only(url: &str) -> Result<Store, StoreError> {
        let url = StoreUrl::parse(url)?;
        let backend = if let Some(path) = url.sqlite_path() {
            Inner::Sqlite(sqlite::SqliteStore::open_read_only(path).await?)
        } else if let Some(config) = url.postgres_config() {
            Inner::Postgres(
                postgres::PgStore::open_read_only(config.clone(), url.to_string()).await?,
            )
        } else {
            return Err(StoreError::InvalidUrl {
                url: url.to_string(),
                reason: "no backend".to_owned(),
            });
        };
        Ok(Store { url, backend })
    }

    /// [`Store::open`] with a parsed location.
    pub async fn open_url(url: StoreUrl) -> Result<Store, StoreError> {
        let backend = if let Some(path) = url.sqlite_path() {
            Inner::Sqlite(sqlite::SqliteStore::open(path).await?)
        } else if let Some(config) = url.postgres_config() {
            Inner::Postgres(postgres::PgStore::open(config.clone(), url.to_string()).await?)
        } else {
            return Err(StoreError::InvalidUrl {
                url: url.to_string(),
                reason: "no backend".to_owned(),
            });
        };
        Ok(Store { url, backend })
    }

    /// Where the store is (password redacted when shown).
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The stored ledger, or `None` for an empty store (generation 0).
    ///
    /// A stored ledger that does not parse, breaks a rule
    /// ([`Ledger::validate`]) or disagrees with its generation column is a
    /// [`StoreError::Corrupt`].
    pub async fn load(&self) -> Result<Option<Ledger>, StoreError> {
        let row = match &self.backend {
            Inner::Sqlite(s) => s.load().await?,
            Inner::Postgres(s) => s.load().await?,
        };
        row.map(|(generation, body)| decode(self.backend(), generation, &body)).transpose()
    }

    /// Stores `ledger` if the store still holds `expected_generation` (0:
    /// the store is empty), atomically, and says which happened.
    ///
    /// `ledger` must pass [`Ledger::validate`] and its generation must
    /// differ from `expected_generation`, or the store refuses it
    /// ([`StoreError::Refused`]) without change. An error leaves the store
    /// either unchanged or holding `ledger`: after a connection failure
    /// during the write, reload to learn which. Dropping the returned
    /// future does not cancel a SQLite write already started.
    pub async fn compare_and_set(
        &self,
        expected_generation: u64,
        ledger: &Ledger,
    ) -> Result<CasOutcome, StoreError> {
        let row = encode(expected_generation, ledger)?;
        let expected = to_sql(expected_generation);
        let outcome = match &self.backend {
            Inner::Sqlite(s) => s.compare_and_set(expected, row).await?,
            Inner::Postgres(s) => s.compare_and_set(expected, row).await?,
        };
        match outcome {
            CasOutcome::Stored => tracing::debug!(
                backend = %self.backend(),
                expected = expected_generation,
                generation = ledger.generation(),
                "ledger stored"
            ),
            CasOutcome::Lost { current } => tracing::debug!(
                backend = %self.backend(),
                expected = expected_generation,
                current,
                "ledger compare-and-set lost"
            ),
        }
        Ok(outcome)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish_non_exhaustive()
    }
}

/// A ledger as stored: its generation column and its JSON.
struct Row {
    generation: i64,
    body: String,
}

fn encode(expected_generation: u64, ledger: &Ledger) -> Result<Row, StoreError> {
    let generation = ledger.generation();
    if generation == expected_generation {
        return Err(StoreError::Refused(RefusedWrite::GenerationUnchanged { generation }));
    }
    ledger.validate().map_err(|e| StoreError::Refused(RefusedWrite::Invalid(e)))?;
    let body = serde_json::to_string(ledger)
        .map_err(|e| StoreError::Refused(RefusedWrite::Serialize(e)))?;
    Ok(Row { generation: to_sql(generation), body })
}

fn decode(backend: Backend, generation: i64, body: &[u8]) -> Result<Ledger, StoreError> {
    let corrupt = |problem| StoreError::Corrupt { backend, problem };
    let ledger: Ledger =
        serde_json::from_slice(body).map_err(|e| corrupt(CorruptLedger::Json(e)))?;
    ledger.validate().map_err(|e| corrupt(CorruptLedger::Invalid(e)))?;
    let column = from_sql(generation);
    if column != ledger.generation() {
        return Err(corrupt(CorruptLedger::GenerationMismatch {
            column,
            body: ledger.generation(),
        }));
    }
    Ok(ledger)
}

/// A generation as the database stores it: the same 64 bits, signed.
fn to_sql(generation: u64) -> i64 {
    i64::from_ne_bytes(generation.to_ne_bytes())
}

/// The inverse of [`to_sql`].
fn from_sql(generation: i64) -> u64 {
    u64::from_ne_bytes(generation.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_round_trips() {
        for g in [0, 1, 2, u64::from(u32::MAX), i64::MAX.unsigned_abs(), u64::MAX] {
            assert_eq!(from_sql(to_sql(g)), g);
        }
        assert_eq!(to_sql(7), 7);
    }

    #[test]
    fn refuses_unchanged_generation() {
        let ledger = Ledger::default();
        assert!(matches!(
            encode(0, &ledger),
            Err(StoreError::Refused(RefusedWrite::GenerationUnchanged { generation: 0 }))
        ));
    }

    #[test]
    fn decode_checks_everything() {
        let ledger = Ledger::default();
        let body = serde_json::to_vec(&ledger).unwrap();
        assert_eq!(decode(Backend::Sqlite, 0, &body).unwrap(), ledger);
        for (generation, body) in [(0, b"{".as_slice()), (0, b"\xff\xfe"), (1, &body[..])] {
            let err = decode(Backend::Sqlite, generation, body).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        }
    }
}
