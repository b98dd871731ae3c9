//! Private Redis servers for tests: a single node ([`RedisServer`]) and a three-master cluster
//! ([`RedisCluster`]).
//!
//! Every server is a child `redis-server` process bound to `127.0.0.1` on a free port, with its
//! own temporary directory, no persistence (`--save '' --appendonly no`), and is killed when the
//! helper is dropped. Tests never touch a shared Redis (the well-known port 6379 is never used),
//! so they can run in parallel and never flush anybody else's data.
//!
//! When `redis-server` (or, for a cluster, `redis-cli`) is not on `PATH`, the first helper to
//! start installs Debian's `redis-server` package, once per process, if it can do so without
//! asking: the tests run as root or passwordless `sudo` works, and `apt-get` is there (see
//! [`find_or_install`]). Otherwise, or when the install fails, starting a helper fails with a
//! message that says how to install the package: tests that need Redis fail loudly instead of
//! skipping silently. Set `LATCHKEY_TESTKIT_NO_INSTALL=1` to never install anything.
//!
//! ```no_run
//! use latchkey_testkit::redis::RedisServer;
//!
//! let server = RedisServer::start().expect("start a private redis-server");
//! let url = server.url(); // "redis://127.0.0.1:<free port>/"
//! # let _ = url;
//! // ... point the store under test at `url`; the server dies with `server`.
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// `redis-server`, from Debian's `redis-server` package.
pub const REDIS_SERVER: SystemTool = SystemTool {
    names: &["redis-server"],
    packages: &["redis-server"],
};

/// `redis-cli` (the cluster helper forms its cluster with it), which Debian's `redis-server`
/// package brings in (through `redis-tools`).
pub const REDIS_CLI: SystemTool = SystemTool {
    names: &["redis-cli"],
    packages: &["redis-server"],
};

/// How long a helper waits for a server (or a cluster) to answer before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a private Redis could not be started or controlled.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisHelperError {
    /// `redis-server` or `redis-cli` is not on `PATH` and could not be installed; the message
    /// says why and how to install it.
    Missing(ToolError),
    /// Spawning or talking to the process failed.
    Io(io::Error),
    /// The server did not answer `PING` (or the cluster did not serve every slot) in time.
    NotReady(String),
}

impl fmt::Display for RedisHelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(e) => fmt::Display::fmt(e, f),
            Self::Io(e) => write!(f, "private redis-server: {e}"),
            Self::NotReady(what) => write!(f, "private redis-server not ready: {what}"),
        }
    }
}

impl std::error::Error for RedisHelperError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Missing(e) => Some(e),
            Self::NotReady(_) => None,
        }
    }
}

impl From<io::Error> for RedisHelperError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A private single-node `redis-server`, killed on drop.
///
/// Besides starting and stopping, it can simulate the faults a store must survive:
/// [`stop`](Self::stop) and [`restart`](Self::restart) on the same port (Redis down, then back),
/// and [`pause`](Self::pause) / [`resume`](Self::resume) (`SIGSTOP`/`SIGCONT`: Redis accepts
/// connections but never answers, the worst case for timeouts).
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl RedisServer {
    /// Starts a private `redis-server` on a free loopback port and waits until it answers `PING`.
    ///
    /// # Errors
    /// [`RedisHelperError::Missing`] when `redis-server` is not installed and could not be
    /// installed (see [`find_or_install`]), otherwise an I/O or readiness error.
    pub fn start() -> Result<Self, RedisHelperError> {
        Self::start_with_args(&[])
    }

    /// Like [`start`](Self::start), with extra `redis-server` arguments
    /// (for example `["--maxmemory", "10mb"]`).
    ///
    /// # Errors
    /// As for [`start`](Self::start).
    pub fn start_with_args(extra_args: &[&str]) -> Result<Self, RedisHelperError> {
        let binary = find_or_install(&REDIS_SERVER).map_err(RedisHelperError::Missing)?;
        let extra_args: Vec<String> = extra_args.iter().map(|s| (*s).to_owned()).collect();
        start_on_free_port(&binary, false, |_| extra_args.clone())
    }

    /// The port the server listens on (never 6379 by design: it is chosen by the OS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// A `redis://` URL for the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would: no shutdown, nothing saved). The port stays reserved
    /// for [`restart`](Self::restart) in the sense that the helper remembers it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process cannot die of SIGKILL until continued on some systems; continue it.
            let _ = signal(&child, "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)) and waits until it
    /// answers. The data is gone: the server keeps nothing on disk.
    ///
    /// # Errors
    /// When the port was taken in between or the server does not come up.
    pub fn restart(&mut self) -> Result<(), RedisHelperError> {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment; try again until the deadline.
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freezes the server with `SIGSTOP`: connections are accepted by the kernel but nothing is
    /// answered, so clients see a hang that only their timeouts can end.
    ///
    /// # Errors
    /// When the server is not running or the signal cannot be sent.
    pub fn pause(&self) -> Result<(), RedisHelperError> {
        let child = self.running()?;
        signal(child, "STOP")
    }

    /// Resumes a server frozen by [`pause`](Self::pause).
    ///
    /// # Errors
    /// When the server is not running or the signal cannot be sent.
    pub fn resume(&self) -> Result<(), RedisHelperError> {
        let child = self.running()?;
        signal(child, "CONT")
    }

    /// Sends one command (as RESP) over a fresh connection and returns the raw reply line(s).
    /// A tiny client for assertions on what the server holds, independent of the store under test.
    ///
    /// # Errors
    /// On connection or protocol errors.
    pub fn command(&self, args: &[&str]) -> Result<RespValue, RedisHelperError> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        send_command(&mut stream, args)?;
        let mut reader = BufReader::new(stream);
        read_value(&mut reader)
    }

    fn running(&self) -> Result<&Child, RedisHelperError> {
        self.child
            .as_ref()
            .ok_or_else(|| RedisHelperError::NotReady("server is stopped".into()))
    }

    fn spawn_and_wait(&mut self) -> Result<(), RedisHelperError> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(base_args(self.port, self.dir.path()));
        cmd.args(&self.extra_args);
        let child = spawn(cmd)?;
        self.child = Some(child);
        match wait_for_ping(self.port, START_TIMEOUT, self.child.as_mut()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stop();
                Err(e)
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private Redis Cluster of three masters (no replicas), killed on drop.
///
/// Started like [`RedisServer`], each node with `--cluster-enabled yes`, then formed with
/// `redis-cli --cluster create ... --cluster-yes`; [`start`](Self::start) returns only when every
/// node reports `cluster_state:ok` with all 16384 slots served.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports())
            .finish()
    }
}

impl RedisCluster {
    /// Starts three cluster-enabled masters on free loopback ports and forms the cluster.
    ///
    /// # Errors
    /// [`RedisHelperError::Missing`] when `redis-server` or `redis-cli` is missing and could not
    /// be installed (see [`find_or_install`]), otherwise an I/O or readiness error.
    pub fn start() -> Result<Self, RedisHelperError> {
        let server = find_or_install(&REDIS_SERVER).map_err(RedisHelperError::Missing)?;
        let cli = find_or_install(&REDIS_CLI).map_err(RedisHelperError::Missing)?;
        let mut nodes = Vec::with_capacity(3);
        for _ in 0..3 {
            nodes.push(start_cluster_node(&server)?);
        }
        let mut create = Command::new(cli);
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null());
        let out = create.output()?;
        if !out.status.success() {
            return Err(RedisHelperError::NotReady(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        let cluster = Self { nodes };
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// The nodes' `redis://` URLs, in the form a cluster client takes as its seed list.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The individual nodes, for fault injection or raw inspection of one node.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The individual nodes, mutably: to [`stop`](RedisServer::stop) a node (a crashed master)
    /// and [`restart`](RedisServer::restart) it on the same port. A restarted node keeps its
    /// temporary directory, so it reads back its `nodes.conf` (its node ID and its slots) and
    /// rejoins the cluster; its data is gone (nothing is persisted). Call
    /// [`wait_until_ok`](Self::wait_until_ok) after a restart before relying on the cluster.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Waits until every node reports `cluster_state:ok` with all 16384 slots served, as
    /// [`start`](Self::start) does before returning. After a node was stopped and restarted this
    /// can take several seconds: the other masters clear the node's `FAIL` flag only after twice
    /// the node timeout (2 s here), and a master that rejoins waits a little before serving.
    ///
    /// # Errors
    /// [`RedisHelperError::NotReady`] when the cluster is not ok within 20 s (for example while a
    /// node is stopped).
    pub fn wait_until_ok(&self) -> Result<(), RedisHelperError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let all_ok = self.nodes.iter().all(|node| {
                matches!(
                    node.command(&["CLUSTER", "INFO"]),
                    Ok(RespValue::Bulk(Some(info)))
                        if info.contains("cluster_state:ok")
                            && info.contains("cluster_slots_ok:16384")
                )
            });
            if all_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RedisHelperError::NotReady(
                    "cluster did not reach cluster_state:ok with all slots served".into(),
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn start_cluster_node(binary: &Path) -> Result<RedisServer, RedisHelperError> {
    start_on_free_port(binary, true, |dir| {
        vec![
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            dir.join("nodes.conf").display().to_string(),
            "--cluster-node-timeout".into(),
            "2000".into(),
        ]
    })
}

/// Starts a server on a free port with its own temp dir. A free port can be taken by someone
/// else between the probe and redis' bind, so a failed start is retried on another port.
fn start_on_free_port(
    binary: &Path,
    cluster_bus: bool,
    extra_args: impl Fn(&Path) -> Vec<String>,
) -> Result<RedisServer, RedisHelperError> {
    let mut last_err = None;
    for _ in 0..5 {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-redis-")
            .tempdir()?;
        let mut server = RedisServer {
            binary: binary.to_owned(),
            port: free_port(cluster_bus)?,
            extra_args: extra_args(dir.path()),
            dir,
            child: None,
        };
        match server.spawn_and_wait() {
            Ok(()) => return Ok(server),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| RedisHelperError::NotReady("no free port".into())))
}

/// One RESP reply, as far as the helpers need to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$n ...` (`None` for the null bulk string)
    Bulk(Option<String>),
    /// `*n ...` (`None` for the null array)
    Array(Option<Vec<RespValue>>),
}

fn base_args(port: u16, dir: &Path) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--daemonize".into(),
        "no".into(),
        "--protected-mode".into(),
        "yes".into(),
        // Fault tests use DEBUG SLEEP from loopback.
        "--enable-debug-command".into(),
        "local".into(),
        "--logfile".into(),
        dir.join("redis.log").display().to_string(),
    ]
}

fn spawn(mut cmd: Command) -> Result<Child, RedisHelperError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(cmd.spawn()?)
}

/// A loopback port the OS says is free. With `cluster_bus`, the port + 10000 (Redis Cluster's
/// bus port) must be free too.
fn free_port(cluster_bus: bool) -> Result<u16, RedisHelperError> {
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if port == 6379 {
            continue;
        }
        if !cluster_bus {
            return Ok(port);
        }
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return Ok(port);
        }
    }
    Err(RedisHelperError::NotReady(
        "found no free loopback port".into(),
    ))
}

fn signal(child: &Child, name: &str) -> Result<(), RedisHelperError> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(RedisHelperError::NotReady(format!("kill -{name} failed")))
    }
}

fn wait_for_ping(
    port: u16,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), RedisHelperError> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(child) = child.as_deref_mut() {
            if let Some(status) = child.try_wait()? {
                return Err(RedisHelperError::NotReady(format!(
                    "redis-server exited early ({status}) on port {port}"
                )));
            }
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            if send_command(&mut stream, &["PING"]).is_ok() {
                let mut reader = BufReader::new(stream);
                if let Ok(RespValue::Simple(s)) = read_value(&mut reader) {
                    if s == "PONG" {
                        return Ok(());
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(RedisHelperError::NotReady(format!(
                "no PONG from 127.0.0.1:{port} within {timeout:?}"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn send_command(stream: &mut TcpStream, args: &[&str]) -> io::Result<()> {
    let mut buf = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    stream.write_all(&buf)
}

fn read_value<R: BufRead>(reader: &mut R) -> Result<RespValue, RedisHelperError> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(RedisHelperError::NotReady("connection closed".into()));
    }
    let line = line.trim_end_matches("\r\n");
    let (tag, rest) = line.split_at(line.len().min(1));
    let bad = || RedisHelperError::NotReady(format!("unexpected reply {line:?}"));
    match tag {
        "+" => Ok(RespValue::Simple(rest.to_owned())),
        "-" => Ok(RespValue::Error(rest.to_owned())),
        ":" => rest.parse().map(RespValue::Integer).map_err(|_| bad()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(RespValue::Bulk(None));
            };
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf)?;
            buf.truncate(len);
            Ok(RespValue::Bulk(Some(
                String::from_utf8_lossy(&buf).into_owned(),
            )))
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(RespValue::Array(None));
            };
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(read_value(reader)?);
            }
            Ok(RespValue::Array(Some(items)))
        }
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------------------------------------
// Finding, or installing, the programs the tests run.
// ---------------------------------------------------------------------------------------------

/// Set to a non-empty value other than `0` to forbid [`find_or_install`] to install anything.
pub const NO_INSTALL_ENV: &str = "LATCHKEY_TESTKIT_NO_INSTALL";

/// How long [`find_or_install`] waits for another process's install (and `apt-get` for the
/// package manager's lock) before giving up.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A program the tests run, and the Debian packages that provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTool {
    /// The program's names on `PATH`; the first one found wins (`["chromium", "chromium-browser"]`).
    pub names: &'static [&'static str],
    /// The Debian packages that install it, installed together in one `apt-get install`.
    pub packages: &'static [&'static str],
}

/// Why a [`SystemTool`] is not there: it was not on `PATH`, and it was not (or could not be)
/// installed. The message says why and how to install it by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    tool: SystemTool,
    reason: String,
}

impl ToolError {
    /// The tool that is missing.
    pub fn tool(&self) -> SystemTool {
        self.tool
    }

    /// Why it was not installed automatically (for example "not running as root, and `sudo -n`
    /// needs a password"), or how the install failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let packages = self.tool.packages.join(" ");
        write!(
            f,
            "{} not found on PATH, and it was not installed automatically: {}. Install it by hand \
             (Debian/Ubuntu: `sudo apt-get install {packages}`), or run .ci/run, which installs \
             everything the tests need",
            self.tool.names.join(" / "),
            self.reason,
        )
    }
}

impl std::error::Error for ToolError {}

/// Finds `tool` on `PATH`; when it is missing, installs its Debian packages and looks again.
///
/// The install happens only where it needs no prompt: the process runs as root, or `sudo -n`
/// works; `apt-get` is on `PATH`; and [`NO_INSTALL_ENV`] is not set. It runs `apt-get update`
/// (once per process) and `apt-get install -y --no-install-recommends <packages>`, printing what
/// it does on stderr. Concurrent callers wait for one install: threads on a process-wide lock,
/// other processes (parallel test binaries, doctests) on a lock file in the temporary
/// directory. A failed install is not retried within the process: every later caller gets the
/// same error at once.
///
/// # Errors
/// [`ToolError`] when the tool is missing and could not be installed; its message says why and
/// how to install it by hand.
///
/// ```no_run
/// use latchkey_testkit::redis::{find_or_install, REDIS_SERVER};
///
/// let redis_server = find_or_install(&REDIS_SERVER)?; // e.g. "/usr/bin/redis-server"
/// # let _ = redis_server;
/// # Ok::<(), latchkey_testkit::redis::ToolError>(())
/// ```
pub fn find_or_install(tool: &SystemTool) -> Result<PathBuf, ToolError> {
    static SYSTEM: LazyLock<Installer<System>> = LazyLock::new(|| Installer::new(System));
    SYSTEM.find_or_install(tool)
}

/// What the installer needs from the machine; the tests substitute a fake one.
trait Host {
    /// What [`lock`](Host::lock) holds.
    type Guard;
    /// The program's path when `name` is on `PATH`.
    fn find(&self, name: &str) -> Option<PathBuf>;
    /// An environment variable.
    fn var(&self, name: &str) -> Option<OsString>;
    /// Whether the process runs as root.
    fn is_root(&self) -> bool;
    /// Whether `sudo -n true` succeeds (passwordless sudo).
    fn sudo_works(&self) -> bool;
    /// Holds a machine-wide lock until the guard is dropped.
    fn lock(&self) -> Result<Self::Guard, String>;
    /// Runs `argv`; `Err` with what went wrong (and the end of its output) when it fails.
    fn run(&self, argv: &[String]) -> Result<(), String>;
}

#[derive(Debug, Default)]
struct InstallState {
    /// `apt-get update` ran and succeeded in this process.
    updated: bool,
    /// Package sets whose install failed, with the reason (not retried).
    failed: Vec<(&'static [&'static str], String)>,
}

struct Installer<H> {
    host: H,
    state: Mutex<InstallState>,
}

impl<H: Host> Installer<H> {
    fn new(host: H) -> Self {
        Self {
            host,
            state: Mutex::new(InstallState::default()),
        }
    }

    fn find(&self, tool: &SystemTool) -> Option<PathBuf> {
        tool.names.iter().find_map(|name| self.host.find(name))
    }

    fn find_or_install(&self, tool: &SystemTool) -> Result<PathBuf, ToolError> {
        if let Some(path) = self.find(tool) {
            return Ok(path);
        }
        let error = |reason: String| ToolError {
            tool: *tool,
            reason,
        };
        // One install at a time in this process; a thread that waited here finds the tool.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = self.find(tool) {
            return Ok(path);
        }
        if let Some((_, reason)) = state.failed.iter().find(|(p, _)| *p == tool.packages) {
            return Err(error(reason.clone()));
        }
        let prefix = match self.privilege() {
            Ok(prefix) => prefix,
            Err(reason) => {
                state.failed.push((tool.packages, reason.clone()));
                return Err(error(reason));
            }
        };
        let result = self.install(&mut state, tool, &prefix);
        match result {
            Ok(path) => Ok(path),
            Err(reason) => {
                state.failed.push((tool.packages, reason.clone()));
                Err(error(reason))
            }
        }
    }

    /// The command prefix that runs `apt-get` without a prompt, or why there is none.
    fn privilege(&self) -> Result<Vec<String>, String> {
        if let Some(value) = self.host.var(NO_INSTALL_ENV) {
            if !value.is_empty() && value != "0" {
                return Err(format!("{NO_INSTALL_ENV} is set"));
            }
        }
        if self.host.find("apt-get").is_none() {
            return Err("apt-get is not on PATH (not a Debian-like system)".into());
        }
        let env = [
            "env".to_owned(),
            "DEBIAN_FRONTEND=noninteractive".to_owned(),
        ];
        if self.host.is_root() {
            return Ok(env.to_vec());
        }
        if self.host.find("sudo").is_some() && self.host.sudo_works() {
            let mut prefix = vec!["sudo".to_owned(), "-n".to_owned()];
            prefix.extend(env);
            return Ok(prefix);
        }
        Err("not running as root, and passwordless sudo (`sudo -n`) is not available".into())
    }

    fn install(
        &self,
        state: &mut InstallState,
        tool: &SystemTool,
        prefix: &[String],
    ) -> Result<PathBuf, String> {
        // Another process may be installing the same packages: wait for it, then look again.
        let _machine_lock = self.host.lock()?;
        if let Some(path) = self.find(tool) {
            return Ok(path);
        }
        let apt = |args: &[&str]| -> Vec<String> {
            let mut argv = prefix.to_vec();
            argv.extend(
                ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=600"]
                    .iter()
                    .chain(args)
                    .map(|s| (*s).to_owned()),
            );
            argv
        };
        if !state.updated {
            self.host.run(&apt(&["update"]))?;
            state.updated = true;
        }
        let mut install = vec!["install", "-y", "--no-install-recommends"];
        install.extend(tool.packages);
        self.host.run(&apt(&install))?;
        self.find(tool).ok_or_else(|| {
            format!(
                "`apt-get install {}` succeeded but {} is still not on PATH",
                tool.packages.join(" "),
                tool.names.join(" / ")
            )
        })
    }
}

/// The real machine.
struct System;

/// A lock file created with `create_new` (atomic), holding the owner's process ID; removed on
/// drop. A lock left by a process that died is taken over.
struct LockFile(PathBuf);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Host for System {
    type Guard = LockFile;

    fn find(&self, name: &str) -> Option<PathBuf> {
        find_on_path(std::env::var_os("PATH").as_deref(), name)
    }

    fn var(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }

    fn is_root(&self) -> bool {
        Command::new("id")
            .arg("-u")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
    }

    fn sudo_works(&self) -> bool {
        Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn lock(&self) -> Result<LockFile, String> {
        lock_file(
            &std::env::temp_dir().join("latchkey-testkit-apt.lock"),
            INSTALL_TIMEOUT,
        )
    }

    fn run(&self, argv: &[String]) -> Result<(), String> {
        let shown = argv.join(" ");
        eprintln!("latchkey-testkit: installing what the tests need: {shown}");
        let (program, args) = argv.split_first().ok_or("empty command")?;
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("`{shown}` could not start: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: Vec<&str> = output.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            tail.join(" | ")
        ))
    }
}

/// Takes the lock file at `path`, waiting at most `timeout` for its owner to let go.
fn lock_file(path: &Path, timeout: Duration) -> Result<LockFile, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let lock = LockFile(path.to_owned());
                let _ = write!(file, "{}", std::process::id());
                return Ok(lock);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(path).unwrap_or_default();
                let owner_alive = owner.trim().parse::<u32>().is_ok_and(|pid| {
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                });
                // An empty file is a lock being written right now; a dead owner's is stale.
                if !owner.trim().is_empty() && !owner_alive {
                    let _ = fs::remove_file(path);
                    continue;
                }
            }
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "another process held {} for {timeout:?}",
                path.display()
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The first file called `name` in the directories of `path` (a `PATH` value).
fn find_on_path(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const BROWSER: SystemTool = SystemTool {
        names: &["chromium", "chromium-browser"],
        packages: &["chromium", "chromium-driver"],
    };

    /// A machine with a fake `PATH` whose `apt-get install` puts the packages' programs on it.
    #[derive(Default)]
    struct FakeHost {
        on_path: Mutex<BTreeSet<String>>,
        vars: BTreeMap<String, String>,
        root: bool,
        sudo: bool,
        /// Commands whose argv contains this word fail.
        fail_on: Option<&'static str>,
        /// What each package puts on `PATH` when installed.
        provides: BTreeMap<&'static str, Vec<&'static str>>,
        ran: Mutex<Vec<Vec<String>>>,
        locks: Mutex<usize>,
    }

    impl FakeHost {
        fn debian(root: bool) -> Self {
            let mut host = Self {
                root,
                ..Self::default()
            };
            host.put_on_path("apt-get");
            host.provides
                .insert("redis-server", vec!["redis-server", "redis-cli"]);
            host.provides.insert("chromium", vec!["chromium"]);
            host.provides
                .insert("chromium-driver", vec!["chromedriver"]);
            host
        }

        fn put_on_path(&mut self, name: &str) {
            self.on_path.get_mut().unwrap().insert(name.to_owned());
        }

        fn ran(&self) -> Vec<String> {
            self.ran
                .lock()
                .unwrap()
                .iter()
                .map(|c| c.join(" "))
                .collect()
        }
    }

    impl Host for FakeHost {
        type Guard = ();

        fn find(&self, name: &str) -> Option<PathBuf> {
            let on_path = self.on_path.lock().unwrap();
            on_path
                .contains(name)
                .then(|| PathBuf::from("/fake/bin").join(name))
        }

        fn var(&self, name: &str) -> Option<OsString> {
            self.vars.get(name).map(OsString::from)
        }

        fn is_root(&self) -> bool {
            self.root
        }

        fn sudo_works(&self) -> bool {
            self.sudo
        }

        fn lock(&self) -> Result<(), String> {
            *self.locks.lock().unwrap() += 1;
            Ok(())
        }

        fn run(&self, argv: &[String]) -> Result<(), String> {
            self.ran.lock().unwrap().push(argv.to_vec());
            // Slow enough that concurrent callers overlap.
            thread::sleep(Duration::from_millis(30));
            if let Some(word) = self.fail_on {
                if argv.iter().any(|a| a == word) {
                    return Err(format!("E: {word} failed"));
                }
            }
            if let Some(at) = argv.iter().position(|a| a == "install") {
                let mut on_path = self.on_path.lock().unwrap();
                for package in &argv[at + 1..] {
                    for name in self.provides.get(package.as_str()).into_iter().flatten() {
                        on_path.insert((*name).to_owned());
                    }
                }
            }
            Ok(())
        }
    }

    const UPDATE_AS_ROOT: &str =
        "env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 update";
    const INSTALL_REDIS_AS_ROOT: &str = "env DEBIAN_FRONTEND=noninteractive apt-get -qq -o \
        DPkg::Lock::Timeout=600 install -y --no-install-recommends redis-server";

    #[test]
    fn a_tool_on_path_is_found_and_nothing_is_installed() {
        let mut host = FakeHost::debian(true);
        host.put_on_path("redis-server");
        let installer = Installer::new(host);
        let path = installer.find_or_install(&REDIS_SERVER).unwrap();
        assert_eq!(path, Path::new("/fake/bin/redis-server"));
        assert!(installer.host.ran().is_empty());
        assert_eq!(*installer.host.locks.lock().unwrap(), 0);
    }

    #[test]
    fn as_root_a_missing_tool_is_installed_once_for_all_threads() {
        let installer = Installer::new(FakeHost::debian(true));
        thread::scope(|scope| {
            let callers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| installer.find_or_install(&REDIS_SERVER)))
                .collect();
            for caller in callers {
                assert_eq!(
                    caller.join().unwrap().unwrap(),
                    Path::new("/fake/bin/redis-server")
                );
            }
        });
        assert_eq!(
            installer.host.ran(),
            [UPDATE_AS_ROOT, INSTALL_REDIS_AS_ROOT]
        );
        // The package brought redis-cli too: nothing more to install for the cluster helper.
        installer.find_or_install(&REDIS_CLI).unwrap();
        assert_eq!(installer.host.ran().len(), 2);
    }

    #[test]
    fn apt_get_update_runs_once_per_process_for_several_package_sets() {
        let installer = Installer::new(FakeHost::debian(true));
        installer.find_or_install(&REDIS_SERVER).unwrap();
        let browser = installer.find_or_install(&BROWSER).unwrap();
        assert_eq!(browser, Path::new("/fake/bin/chromium"));
        let ran = installer.host.ran();
        assert_eq!(ran.len(), 3, "{ran:?}");
        assert_eq!(ran[0], UPDATE_AS_ROOT);
        assert_eq!(ran[1], INSTALL_REDIS_AS_ROOT);
        assert!(
            ran[2].ends_with("install -y --no-install-recommends chromium chromium-driver"),
            "{ran:?}"
        );
    }

    #[test]
    fn the_first_name_found_wins() {
        let mut host = FakeHost::debian(true);
        host.put_on_path("chromium-browser");
        let installer = Installer::new(host);
        assert_eq!(
            installer.find_or_install(&BROWSER).unwrap(),
            Path::new("/fake/bin/chromium-browser")
        );
        assert!(installer.host.ran().is_empty());
    }

    #[test]
    fn without_root_passwordless_sudo_runs_apt_get() {
        let mut host = FakeHost::debian(false);
        host.put_on_path("sudo");
        host.sudo = true;
        let installer = Installer::new(host);
        installer.find_or_install(&REDIS_SERVER).unwrap();
        let ran = installer.host.ran();
        assert_eq!(ran.len(), 2);
        for command in &ran {
            assert!(
                command.starts_with("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "),
                "{command}"
            );
        }
    }

    /// Asserts that `host` gets an error that names the reason and the manual command, and that
    /// nothing was run.
    fn refused(host: FakeHost, reason: &str) {
        let installer = Installer::new(host);
        let err = installer.find_or_install(&REDIS_SERVER).unwrap_err();
        assert!(err.reason().contains(reason), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("redis-server not found on PATH"),
            "{message}"
        );
        assert!(
            message.contains("sudo apt-get install redis-server"),
            "{message}"
        );
        assert!(installer.host.ran().is_empty());
    }

    #[test]
    fn without_root_or_sudo_it_fails_with_how_to_install() {
        refused(FakeHost::debian(false), "not running as root");
    }

    #[test]
    fn a_sudo_that_asks_for_a_password_is_not_used() {
        let mut host = FakeHost::debian(false);
        host.put_on_path("sudo");
        host.sudo = false;
        refused(host, "passwordless sudo");
    }

    #[test]
    fn without_apt_get_it_fails_with_how_to_install() {
        let mut host = FakeHost::debian(true);
        host.on_path.get_mut().unwrap().remove("apt-get");
        refused(host, "apt-get is not on PATH");
    }

    #[test]
    fn the_opt_out_variable_forbids_installing() {
        let mut host = FakeHost::debian(true);
        host.vars.insert(NO_INSTALL_ENV.into(), "1".into());
        refused(host, NO_INSTALL_ENV);

        let mut host = FakeHost::debian(true);
        host.vars.insert(NO_INSTALL_ENV.into(), "0".into());
        let installer = Installer::new(host);
        installer.find_or_install(&REDIS_SERVER).unwrap();
        assert_eq!(installer.host.ran().len(), 2);
    }

    #[test]
    fn a_failed_install_is_reported_and_not_retried() {
        let mut host = FakeHost::debian(true);
        host.fail_on = Some("install");
        let installer = Installer::new(host);
        let first = installer.find_or_install(&REDIS_SERVER).unwrap_err();
        assert!(first.reason().contains("E: install failed"), "{first}");
        assert_eq!(installer.host.ran().len(), 2);
        let second = installer.find_or_install(&REDIS_SERVER).unwrap_err();
        assert_eq!(second, first);
        assert_eq!(installer.host.ran().len(), 2, "no second apt-get run");
    }

    #[test]
    fn a_failed_update_stops_before_installing() {
        let mut host = FakeHost::debian(true);
        host.fail_on = Some("update");
        let installer = Installer::new(host);
        let err = installer.find_or_install(&REDIS_SERVER).unwrap_err();
        assert!(err.reason().contains("E: update failed"), "{err}");
        assert_eq!(installer.host.ran(), [UPDATE_AS_ROOT]);
    }

    #[test]
    fn an_install_that_brings_no_such_program_is_an_error() {
        let mut host = FakeHost::debian(true);
        host.provides.insert("redis-server", vec![]);
        let installer = Installer::new(host);
        let err = installer.find_or_install(&REDIS_SERVER).unwrap_err();
        assert!(err.reason().contains("still not on PATH"), "{err}");
    }

    #[test]
    fn find_on_path_looks_through_each_directory_for_a_file() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        // A directory with the program's name is not the program.
        fs::create_dir(first.path().join("redis-server")).unwrap();
        fs::write(second.path().join("redis-server"), b"").unwrap();
        let path = std::env::join_paths([first.path(), second.path()]).unwrap();
        assert_eq!(
            find_on_path(Some(&path), "redis-server"),
            Some(second.path().join("redis-server"))
        );
        assert_eq!(find_on_path(Some(&path), "redis-cli"), None);
        assert_eq!(find_on_path(None, "redis-server"), None);
    }

    #[test]
    fn the_lock_file_excludes_a_second_holder_and_is_taken_over_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apt.lock");
        let held = lock_file(&path, Duration::ZERO).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        let err = lock_file(&path, Duration::from_millis(300)).err().unwrap();
        assert!(err.starts_with("another process held"), "{err}");
        drop(held);
        assert!(!path.exists());

        // A lock whose owner is gone (no such process) is taken over at once.
        fs::write(&path, "999999999").unwrap();
        let taken = lock_file(&path, Duration::ZERO).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
    }
}
