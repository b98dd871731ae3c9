//! Private Redis servers for tests: a single node ([`RedisServer`]) and a three-master cluster
//! ([`RedisCluster`]).
//!
//! Every server is a child `redis-server` process bound to `127.0.0.1` on a free port, with its
//! own temporary directory, no persistence (`--save '' --appendonly no`), and is killed when the
//! helper is dropped. Tests never touch a shared Redis (the well-known port 6379 is never used),
//! so they can run in parallel and never flush anybody else's data.
//!
//! When the binaries are missing, starting a helper fails with a message that says how to
//! install them; tests that need Redis fail loudly instead of skipping silently.
//!
//! ```no_run
//! use latchkey_testkit::redis::RedisServer;
//!
//! let server = RedisServer::start().expect("start a private redis-server");
//! let url = server.url(); // "redis://127.0.0.1:<free port>/"
//! # let _ = url;
//! // ... point the store under test at `url`; the server dies with `server`.
//! ```

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The message every helper fails with when `redis-server` is not installed.
pub const REDIS_SERVER_MISSING: &str =
    "redis-server not found: install it (Debian: apt-get install redis-server)";

/// The message the cluster helper fails with when `redis-cli` is not installed.
pub const REDIS_CLI_MISSING: &str =
    "redis-cli not found: install it (Debian: apt-get install redis-server)";

/// How long a helper waits for a server (or a cluster) to answer before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a private Redis could not be started or controlled.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisHelperError {
    /// `redis-server` or `redis-cli` is not on `PATH`; the message says how to install it.
    Missing(&'static str),
    /// Spawning or talking to the process failed.
    Io(io::Error),
    /// The server did not answer `PING` (or the cluster did not serve every slot) in time.
    NotReady(String),
}

impl fmt::Display for RedisHelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(msg) => f.write_str(msg),
            Self::Io(e) => write!(f, "private redis-server: {e}"),
            Self::NotReady(what) => write!(f, "private redis-server not ready: {what}"),
        }
    }
}

impl std::error::Error for RedisHelperError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
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
    /// [`RedisHelperError::Missing`] when `redis-server` is not installed, otherwise an I/O or
    /// readiness error.
    pub fn start() -> Result<Self, RedisHelperError> {
        Self::start_with_args(&[])
    }

    /// Like [`start`](Self::start), with extra `redis-server` arguments
    /// (for example `["--maxmemory", "10mb"]`).
    ///
    /// # Errors
    /// As for [`start`](Self::start).
    pub fn start_with_args(extra_args: &[&str]) -> Result<Self, RedisHelperError> {
        require_binary("redis-server", REDIS_SERVER_MISSING)?;
        let extra_args: Vec<String> = extra_args.iter().map(|s| (*s).to_owned()).collect();
        start_on_free_port(false, |_| extra_args.clone())
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
        let mut cmd = Command::new("redis-server");
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
    /// [`RedisHelperError::Missing`] when `redis-server` or `redis-cli` is missing, otherwise
    /// an I/O or readiness error.
    pub fn start() -> Result<Self, RedisHelperError> {
        require_binary("redis-server", REDIS_SERVER_MISSING)?;
        require_binary("redis-cli", REDIS_CLI_MISSING)?;
        let mut nodes = Vec::with_capacity(3);
        for _ in 0..3 {
            nodes.push(start_cluster_node()?);
        }
        let mut create = Command::new("redis-cli");
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

fn start_cluster_node() -> Result<RedisServer, RedisHelperError> {
    start_on_free_port(true, |dir| {
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
    cluster_bus: bool,
    extra_args: impl Fn(&Path) -> Vec<String>,
) -> Result<RedisServer, RedisHelperError> {
    let mut last_err = None;
    for _ in 0..5 {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-redis-")
            .tempdir()?;
        let mut server = RedisServer {
            port: free_port(cluster_bus)?,
            extra_args: extra_args(dir.path()),
            dir,
            child: None,
        };
        match server.spawn_and_wait() {
            Ok(()) => return Ok(server),
            Err(e @ RedisHelperError::Missing(_)) => return Err(e),
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
    cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            RedisHelperError::Missing(REDIS_SERVER_MISSING)
        } else {
            RedisHelperError::Io(e)
        }
    })
}

fn require_binary(name: &str, message: &'static str) -> Result<(), RedisHelperError> {
    let found = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .any(|candidate: PathBuf| candidate.is_file())
        })
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(RedisHelperError::Missing(message))
    }
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
