//! A private PostgreSQL server for tests: `initdb` into a temporary directory, `postgres` on a
//! free loopback port, stopped (fast shutdown) and removed on drop. Never the machine's own
//! server on 5432, never a fixed port.
//!
//! Debian's `postgresql` package provides the binaries under `/usr/lib/postgresql/<major>/bin`
//! (not on `PATH`); when they are missing they are installed like the other tools
//! ([`find_or_install`]). PostgreSQL refuses to run as root, so a root test process runs
//! `initdb` and `postgres` as the `postgres` user (which the package creates) through `setpriv`.

use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::redis::{find_or_install, SystemTool, ToolError};

/// Debian's PostgreSQL server package; `pg_ctlcluster` (from `postgresql-common`, which it
/// brings in) shows that it is installed.
pub const POSTGRESQL: SystemTool = SystemTool {
    names: &["pg_ctlcluster"],
    packages: &["postgresql"],
};

/// How long the helper waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a private PostgreSQL could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum PostgresHelperError {
    /// The server binaries are missing and could not be installed.
    Missing(ToolError),
    /// `initdb` or `postgres` failed, or the server never became ready.
    NotReady(String),
    /// An I/O error (temporary directory, spawning a process).
    Io(std::io::Error),
}

impl fmt::Display for PostgresHelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(err) => write!(f, "{err}"),
            Self::NotReady(why) => write!(f, "private PostgreSQL did not start: {why}"),
            Self::Io(err) => write!(f, "private PostgreSQL: {err}"),
        }
    }
}

impl std::error::Error for PostgresHelperError {}

impl From<std::io::Error> for PostgresHelperError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

/// A running private PostgreSQL; stopped and deleted on drop. The superuser is `latchkey`
/// with trust authentication on loopback only.
///
/// ```no_run
/// let pg = latchkey_testkit::postgres::PostgresServer::start()?;
/// let url = pg.url(); // postgres://latchkey@127.0.0.1:<port>/postgres
/// # let _ = url;
/// # Ok::<(), latchkey_testkit::postgres::PostgresHelperError>(())
/// ```
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl PostgresServer {
    /// Initialises a cluster in a temporary directory and starts it on a free loopback port.
    ///
    /// # Errors
    /// [`PostgresHelperError::Missing`] when PostgreSQL is not installed and could not be,
    /// otherwise why `initdb` or the server failed.
    pub fn start() -> Result<Self, PostgresHelperError> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("latchkey-pg").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let root = is_root();
        if root {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        }
        let out = as_postgres(root, &bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "latchkey", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(PostgresHelperError::NotReady(format!(
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("postgres.log"))?;
        if root {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path().join("postgres.log"), Some(uid), Some(gid))?;
        }
        let child = as_postgres(root, &bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let server = Self {
            port,
            dir,
            child: Some(child),
        };
        server.wait_until_ready(&bin)?;
        Ok(server)
    }

    /// The loopback port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the `postgres` database as the `latchkey` superuser.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://latchkey@127.0.0.1:{}/postgres", self.port)
    }

    fn wait_until_ready(&self, bin: &Path) -> Result<(), PostgresHelperError> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if ready.success() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        Err(PostgresHelperError::NotReady(format!(
            "not ready after {START_TIMEOUT:?}; log: {}",
            log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        )))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory of `initdb`/`postgres`/`pg_isready`: the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, PostgresHelperError> {
    let find = || -> Option<PathBuf> {
        let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((major, bin))
            })
            .collect();
        majors.sort();
        majors.pop().map(|(_, bin)| bin)
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    find_or_install(&POSTGRESQL).map_err(PostgresHelperError::Missing)?;
    find().ok_or_else(|| {
        PostgresHelperError::NotReady(
            "postgresql installed, but no /usr/lib/postgresql/*/bin/initdb".into(),
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn postgres_ids() -> Result<(u32, u32), PostgresHelperError> {
    let id = |flag: &str| -> Result<u32, PostgresHelperError> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                PostgresHelperError::NotReady("no `postgres` user to run the server as".into())
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// `program`, run as the `postgres` user when the tests run as root (PostgreSQL refuses root).
fn as_postgres(root: bool, program: &Path) -> Command {
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, PostgresHelperError> {
    for _ in 0..100 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        if port != 5432 {
            return Ok(port);
        }
    }
    Err(PostgresHelperError::NotReady(
        "found no free loopback port".into(),
    ))
}
