//! Where the ledger lives: [`StoreUrl`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{Backend, StoreError};

/// A parsed ledger store location.
///
/// Accepted forms:
///
/// - `sqlite:PATH` and `sqlite://PATH`: a SQLite database file, created if
///   missing. Everything after the prefix is the path, taken literally (no
///   percent-decoding), so `sqlite:///var/lib/tq-ctl/ledger.db` is the
///   absolute path `/var/lib/tq-ctl/ledger.db` and `sqlite://ledger.db` the
///   relative path `ledger.db`;
/// - a plain path without a `scheme://` prefix: a SQLite file, as above;
/// - `postgres://...` and `postgresql://...`: a PostgreSQL (or CockroachDB)
///   connection URL as libpq reads it, for example
///   `postgresql://tq@db.example/tq` or, over a unix socket,
///   `postgresql:///tq?host=/run/postgresql`. The connection is not
///   encrypted (no TLS).
///
/// [`Display`](fmt::Display) and [`Debug`] show the location with any
/// password replaced by `***`.
#[derive(Clone)]
pub struct StoreUrl {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Sqlite(PathBuf),
    Postgres { config: Box<tokio_postgres::Config>, shown: String },
}

impl StoreUrl {
    /// Parses a store location (see the type's documentation).
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let invalid =
            |reason: &str| StoreError::InvalidUrl { url: redact(url), reason: reason.to_owned() };
        let scheme = url.split_once("://").map(|(scheme, _)| scheme).filter(|scheme| {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        let target = match scheme {
            Some(scheme) if is_postgres(scheme) => {
                let config = tokio_postgres::Config::from_str(url).map_err(|e| {
                    invalid(&format!("not a PostgreSQL connection URL ({})", DbErrorText(&e)))
                })?;
                Target::Postgres { config: Box::new(config), shown: redact(url) }
            }
            Some(scheme) if scheme.eq_ignore_ascii_case("sqlite") => {
                Target::Sqlite(sqlite_path(url.get(scheme.len().saturating_add(3)..))?)
            }
            Some(scheme) => {
                return Err(invalid(&format!(
                    "unknown scheme {scheme:?}; use sqlite:PATH, a plain path, postgres:// or \
                     postgresql://"
                )));
            }
            None => match url.split_once(':') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sqlite") => {
                    Target::Sqlite(sqlite_path(Some(rest))?)
                }
                _ => Target::Sqlite(sqlite_path(Some(url))?),
            },
        };
        Ok(StoreUrl { target })
    }

    /// The backend this location names.
    pub fn backend(&self) -> Backend {
        match self.target {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite database file, for a SQLite location.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.target {
            Target::Sqlite(path) => Some(path),
            Target::Postgres { .. } => None,
        }
    }

    pub(super) fn postgres_config(&self) -> Option<&tokio_postgres::Config> {
        match &self.target {
            Target::Sqlite(_) => None,
            Target::Postgres { config, .. } => Some(config),
        }
    }
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUrl::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Target::Postgres { shown, .. } => f.write_str(shown),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreUrl").field(&self.to_string()).finish()
    }
}

fn is_postgres(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
}

fn sqlite_path(path: Option<&str>) -> Result<PathBuf, StoreError> {
    match path {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(StoreError::InvalidUrl {
            url: path.unwrap_or_default().to_owned(),
            reason: "no SQLite database file named".to_owned(),
        }),
    }
}

/// `url` with the password of its user info and any `password=` parameter
/// replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A tokio-postgres error with its source chain, for messages.
struct DbErrorText<'a>(&'a tokio_postgres::Error);

impl fmt::Display for DbErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::error::write_chain(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms() {
        for (url, path) in [
            ("sqlite:///abs/ledger.db", "/abs/ledger.db"),
            ("sqlite:/abs/ledger.db", "/abs/ledger.db"),
            ("sqlite://rel/ledger.db", "rel/ledger.db"),
            ("sqlite:rel.db", "rel.db"),
            ("SQLite:rel.db", "rel.db"),
            ("/abs/ledger.db", "/abs/ledger.db"),
            ("ledger.db", "ledger.db"),
            ("odd:name.db", "odd:name.db"),
        ] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert_eq!(parsed.backend(), Backend::Sqlite, "{url}");
            assert_eq!(parsed.sqlite_path(), Some(Path::new(path)), "{url}");
        }
    }

    #[test]
    fn postgres_forms() {
        for url in [
            "postgres://tq@db.example:5432/tq",
            "postgresql://tq:secret@db.example/tq",
            "postgresql:///tq?host=/run/postgresql&user=tq",
        ] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert_eq!(parsed.backend(), Backend::Postgres, "{url}");
            assert!(parsed.postgres_config().is_some());
        }
    }

    #[test]
    fn rejects() {
        for url in ["", "sqlite:", "sqlite://", "mysql://db/tq", "postgres://db:notaport/tq"] {
            assert!(
                matches!(StoreUrl::parse(url), Err(StoreError::InvalidUrl { .. })),
                "{url} accepted"
            );
        }
    }

    #[test]
    fn passwords_never_shown() {
        let url = "postgresql://tq:hunter2@db.example/tq?password=hunter2&sslmode=disable";
        let parsed = StoreUrl::parse(url).unwrap();
        for shown in [parsed.to_string(), format!("{parsed:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("tq:***@db.example/tq?password=***&sslmode=disable"), "{shown}");
        }
        let bad = StoreUrl::parse("postgresql://tq:hunter2@db.example:x/tq").unwrap_err();
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
    }
}
