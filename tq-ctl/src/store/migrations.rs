//! The schema, as an ordered list of versioned migrations.
//!
//! Each backend keeps a `schema_migrations(version, applied_at)` table and,
//! at [`Store::open`](super::Store::open), applies every migration whose
//! version is not in it, each in its own transaction together with the row
//! that records it. Applying is idempotent and safe from several replicas at
//! once: SQLite serializes the transactions with `BEGIN IMMEDIATE`, and on
//! PostgreSQL the version row is inserted first, so a second replica waits
//! for the first one's transaction and then finds the version taken.
//!
//! A migration is never edited once released; a schema change is a new
//! migration with the next version. The SQL avoids PostgreSQL-only syntax
//! and types so that CockroachDB runs it too: `TEXT`, `BIGINT` (`INT8`) and
//! `TIMESTAMPTZ` only.

/// One schema change, in each backend's dialect.
pub(super) struct Migration {
    /// Its version: 1, 2, 3, ... in the order they apply.
    pub(super) version: i64,
    /// What it does, for logs.
    pub(super) description: &'static str,
    /// The statements for SQLite.
    pub(super) sqlite: &'static str,
    /// The statements for PostgreSQL and CockroachDB.
    pub(super) postgres: &'static str,
}

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "the ledger table",
    // One row per rack, keyed by `rack` (see `super::LEDGER_KEY`): the
    // ledger's generation, as a bit-for-bit i64, and its JSON.
    sqlite: "CREATE TABLE ledger (
                 rack TEXT PRIMARY KEY NOT NULL,
                 generation INTEGER NOT NULL,
                 body TEXT NOT NULL
             ) STRICT;",
    postgres: "CREATE TABLE ledger (
                   rack TEXT PRIMARY KEY,
                   generation BIGINT NOT NULL,
                   body TEXT NOT NULL
               );",
}];

/// The newest version this build knows.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The table that records applied migrations, in SQLite.
pub(super) const SQLITE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY NOT NULL,
        applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    ) STRICT;";

/// The table that records applied migrations, in PostgreSQL and CockroachDB.
/// `version` is a `BIGINT` rather than an `INT` because the two disagree on
/// what `INT` means.
pub(super) const POSTGRES_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version BIGINT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_sequential_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "{}", m.description);
        }
        assert_eq!(latest_version(), i64::try_from(MIGRATIONS.len()).unwrap());
    }
}
