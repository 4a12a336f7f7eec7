//! The PostgreSQL backend (CockroachDB speaks the same protocol and SQL):
//! one connection per [`Store`](super::Store), shared by its clones and
//! re-established when it closes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::migrations::{MIGRATIONS, Migration, POSTGRES_MIGRATIONS_TABLE, latest_version};
use super::{Backend, CasOutcome, DbError, LEDGER_KEY, Row, StoreError};

const BACKEND: Backend = Backend::Postgres;

/// How often a migration step is tried when it collides with another
/// replica's (a race on `CREATE TABLE IF NOT EXISTS`, a serialization
/// failure on CockroachDB).
const MIGRATION_ATTEMPTS: u32 = 5;

/// Used when the URL sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(super) struct PgStore {
    inner: Arc<PgInner>,
}

struct PgInner {
    config: Config,
    /// The URL, password redacted, for messages.
    target: String,
    client: Mutex<Arc<Client>>,
}

impl PgStore {
    /// Connects and migrates.
    pub(super) async fn open(mut config: Config, target: String) -> Result<PgStore, StoreError> {
        if config.get_application_name().is_none() {
            config.application_name("tq-ctl");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let mut client = connect(&config, &target).await?;
        migrate(&mut client).await?;
        let client = Mutex::new(Arc::new(client));
        Ok(PgStore { inner: Arc::new(PgInner { config, target, client }) })
    }

    /// Connects with every transaction read-only (including after a
    /// reconnect), without migrating; the schema must be the current one.
    pub(super) async fn open_read_only(
        mut config: Config,
        target: String,
    ) -> Result<PgStore, StoreError> {
        if config.get_application_name().is_none() {
            config.application_name("tq-ctl (read-only)");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.options("-c default_transaction_read_only=on");
        let client = connect(&config, &target).await?;
        // A store without the migrations table has version 0.
        let found: i64 = match client
            .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[])
            .await
        {
            Ok(row) => row.try_get(0).unwrap_or(0),
            Err(_) => 0,
        };
        let known = latest_version();
        if found != known {
            return Err(StoreError::SchemaNotCurrent { backend: BACKEND, found, known });
        }
        let client = Mutex::new(Arc::new(client));
        Ok(PgStore { inner: Arc::new(PgInner { config, target, client }) })
    }

    /// The ledger row: generation and body.
    pub(super) async fn load(&self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let op = "loading the ledger";
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT generation, body FROM ledger WHERE rack = $1", &[&LEDGER_KEY])
            .await
            .map_err(query_error(op))?;
        let Some(row) = row else { return Ok(None) };
        let generation: i64 = row.try_get(0).map_err(query_error(op))?;
        let body: String = row.try_get(1).map_err(query_error(op))?;
        Ok(Some((generation, body.into_bytes())))
    }

    /// Compare-and-set as single statements, each atomic: for an empty
    /// store an `INSERT` that does nothing if another replica inserted
    /// first, otherwise an `UPDATE` conditioned on the generation. Zero rows
    /// changed is a lost race.
    pub(super) async fn compare_and_set(
        &self,
        expected: i64,
        row: Row,
    ) -> Result<CasOutcome, StoreError> {
        let op = "storing the ledger";
        let client = self.client().await?;
        if expected == 0 {
            let inserted = client
                .execute(
                    "INSERT INTO ledger (rack, generation, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (rack) DO NOTHING",
                    &[&LEDGER_KEY, &row.generation, &row.body],
                )
                .await
                .map_err(query_error(op))?;
            if inserted == 1 {
                return Ok(CasOutcome::Stored);
            }
            // A row exists: it may still hold generation 0, so fall
            // through to the conditional update.
        }
        let updated = client
            .execute(
                "UPDATE ledger SET body = $1, generation = $2 WHERE rack = $3 AND generation = $4",
                &[&row.body, &row.generation, &LEDGER_KEY, &expected],
            )
            .await
            .map_err(query_error(op))?;
        if updated == 1 {
            return Ok(CasOutcome::Stored);
        }
        let current = client
            .query_opt("SELECT generation FROM ledger WHERE rack = $1", &[&LEDGER_KEY])
            .await
            .map_err(query_error("reading the generation after a lost compare-and-set"))?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()
            .map_err(query_error("reading the generation after a lost compare-and-set"))?;
        Ok(CasOutcome::Lost { current: super::from_sql(current.unwrap_or(0)) })
    }

    /// The client, reconnected first if its connection closed.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut client = self.inner.client.lock().await;
        if client.is_closed() {
            tracing::info!(target = %self.inner.target, "ledger store connection closed; reconnecting");
            *client = Arc::new(connect(&self.inner.config, &self.inner.target).await?);
        }
        Ok(Arc::clone(&client))
    }
}

fn query_error(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Query { backend: BACKEND, operation, error: DbError::Postgres(e) }
}

async fn connect(config: &Config, target: &str) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| StoreError::Connect {
        backend: BACKEND,
        target: target.to_owned(),
        error: DbError::Postgres(e),
    })?;
    let target = target.to_owned();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(%target, error = %DbError::Postgres(e), "ledger store connection failed");
        }
    });
    Ok(client)
}

/// Creates `schema_migrations` if missing, refuses a schema newer than this
/// build, then applies each missing migration in its own transaction that
/// first claims the version's row: a second replica migrating at the same
/// time waits for that row and then skips the migration.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut attempt = 1;
    while let Err(e) = client.batch_execute(POSTGRES_MIGRATIONS_TABLE).await {
        backoff(0, &mut attempt, e).await?;
    }
    let migrate_error = |version| {
        move |e| StoreError::Migrate { backend: BACKEND, version, error: DbError::Postgres(e) }
    };
    let applied: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(migrate_error(0))?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(migrate_error(0))?;
    let known = latest_version();
    if let Some(&found) = applied.iter().max().filter(|&&found| found > known) {
        return Err(StoreError::SchemaTooNew { backend: BACKEND, found, known });
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let mut attempt = 1;
        let applied = loop {
            match apply(client, m).await {
                Ok(applied) => break applied,
                Err(e) => backoff(m.version, &mut attempt, e).await?,
            }
        };
        if applied {
            tracing::info!(backend = %BACKEND, version = m.version, what = m.description, "schema migration applied");
        }
    }
    Ok(())
}

/// Applies `m` unless another replica did; says whether this one did.
async fn apply(client: &mut Client, m: &Migration) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let claimed = tx
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING",
            &[&m.version],
        )
        .await?;
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.batch_execute(m.postgres).await?;
    tx.commit().await?;
    Ok(true)
}

/// After a failed migration step: waits and returns `Ok` when the step
/// should be tried again (it collided with another replica's migration and
/// has been tried fewer than [`MIGRATION_ATTEMPTS`] times), otherwise the
/// error.
async fn backoff(
    version: i64,
    attempt: &mut u32,
    e: tokio_postgres::Error,
) -> Result<(), StoreError> {
    if *attempt >= MIGRATION_ATTEMPTS || !is_collision(&e) {
        return Err(StoreError::Migrate { backend: BACKEND, version, error: DbError::Postgres(e) });
    }
    tracing::debug!(version, attempt = *attempt, error = %DbError::Postgres(e), "migration collided; retrying");
    tokio::time::sleep(Duration::from_millis(50).saturating_mul(*attempt)).await;
    *attempt = attempt.saturating_add(1);
    Ok(())
}

/// Errors another replica's concurrent migration can cause: two
/// `CREATE TABLE IF NOT EXISTS` racing on PostgreSQL's catalog (a
/// duplicate key in `pg_type`, "relation already exists" or "type already
/// exists"), or a serialization failure on CockroachDB.
fn is_collision(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::UNIQUE_VIOLATION,
            SqlState::DUPLICATE_TABLE,
            SqlState::DUPLICATE_OBJECT,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ]
        .contains(code)
    })
}
