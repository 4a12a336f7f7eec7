//! A throwaway PostgreSQL server for tests.
//!
//! [`PgServer::start`] runs `initdb` into a fresh temporary directory and
//! `pg_ctl start` with the server listening only on a unix socket in that
//! directory (no TCP port, so parallel tests cannot collide), trust
//! authentication for the `postgres` superuser, and no fsync. Dropping the
//! [`PgServer`] runs `pg_ctl stop -m immediate` and removes the directory,
//! also when the test panics.
//!
//! The binaries are found on `PATH` or in `/usr/lib/postgresql/*/bin`
//! (Debian's layout; the newest version wins). PostgreSQL refuses to run as
//! root: as root, every PostgreSQL command runs through
//! `runuser -u postgres --` (or `nobody` when there is no `postgres` user),
//! which owns the temporary directory.
//!
//! Without any PostgreSQL binaries the tests fail, naming what to install,
//! unless `TQ_SKIP_POSTGRES=1` is set: then [`PgServer::start`] returns
//! `None` and the PostgreSQL tests pass without running.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test support: a failure to set up is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The env var that turns the PostgreSQL tests off.
pub const SKIP_VAR: &str = "TQ_SKIP_POSTGRES";

/// A running PostgreSQL server, stopped on drop.
pub struct PgServer {
    dir: TempDir,
    data: PathBuf,
    pg_ctl: PathBuf,
    run_as: Option<String>,
}

impl PgServer {
    /// Starts a server, or returns `None` when `TQ_SKIP_POSTGRES=1`.
    /// Panics, with the tool's output, when no server can be started.
    pub fn start() -> Option<PgServer> {
        if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
            eprintln!("{SKIP_VAR}=1: skipping a PostgreSQL test");
            return None;
        }
        let bin = find_bin_dir().unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in \
                 /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install \
                 postgresql) or set {SKIP_VAR}=1 to skip the PostgreSQL tests"
            )
        });
        let run_as = if is_root() { Some(unprivileged_user()) } else { None };
        let dir = tempfile::Builder::new().prefix("tq-pg-").tempdir().expect("temporary directory");
        if let Some(user) = &run_as {
            run(Command::new("chown").arg("-R").arg(format!("{user}:")).arg(dir.path()), "chown");
        }
        let data = dir.path().join("data");
        let server = PgServer { data, pg_ctl: bin.join("pg_ctl"), run_as, dir };
        let mut initdb = server.command(&bin.join("initdb"));
        initdb.arg("-D").arg(&server.data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(&mut initdb, "initdb");
        let log = server.dir.path().join("server.log");
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c max_connections=50",
            server.dir.path().display()
        );
        let mut start = server.command(&server.pg_ctl);
        start.arg("-D").arg(&server.data).arg("-l").arg(&log);
        start.args(["-w", "-t", "60", "-o", &options, "start"]);
        let out = start.output().expect("run pg_ctl start");
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl start failed: {}\nserver log:\n{log}", describe(&out));
        }
        Some(server)
    }

    /// A connection URL for `database` over the server's unix socket, as
    /// the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql:///{database}?host={}&user=postgres", self.dir.path().display())
    }

    /// Creates `database` and returns its URL.
    pub async fn create_database(&self, database: &str) -> String {
        let client = self.connect("postgres").await;
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {database}: {e:?}"));
        self.url(database)
    }

    /// A plain client on `database`, for hand edits.
    pub async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect to the test server: {e:?}"));
        tokio::spawn(connection);
        client
    }

    /// A command that runs `program` as the server's user, in its directory.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        // The server's user may not be allowed into the test's directory.
        cmd.current_dir(self.dir.path());
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = self.command(&self.pg_ctl);
        stop.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        match stop.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("pg_ctl stop: {}", describe(&out)),
            Err(e) => eprintln!("pg_ctl stop: {e}"),
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|dir| has_both(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `postgres` if that user exists, otherwise `nobody`.
fn unprivileged_user() -> String {
    let exists = Command::new("id")
        .arg("-u")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists { "postgres" } else { "nobody" }.to_owned()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
