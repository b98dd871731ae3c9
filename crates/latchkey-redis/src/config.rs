//! [`RedisStoreConfig`] and its validating builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use latchkey_session::{Clock, SystemClock};

use crate::error::ConfigError;

/// The key prefix used when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "session:";
/// The connect timeout used when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The command timeout used when none is configured.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// The number of lanes (pooled multiplexed connections) used when none is configured.
pub const DEFAULT_POOL_SIZE: usize = 2;

/// Largest accepted pool size: every lane is a socket and a driver task; more than this buys
/// nothing over multiplexing and only costs server connections.
pub const MAX_POOL_SIZE: usize = 256;
/// Longest accepted key prefix, in bytes.
pub const MAX_KEY_PREFIX_LEN: usize = 64;
/// Longest accepted timeout: a session store that may block a request for longer is a
/// misconfiguration.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub(crate) enum Target {
    Single(ConnectionInfo),
    #[cfg(feature = "cluster")]
    Cluster(Vec<ConnectionInfo>),
}

/// How to reach Redis and how to lay sessions out in it. Built with
/// [`RedisStoreConfig::single`] or [`RedisStoreConfig::cluster`] and
/// [`RedisStoreConfigBuilder::build`], which validates everything.
///
/// `Debug` shows hosts and ports, never a password.
///
/// ```
/// use std::time::Duration;
/// use latchkey_redis::RedisStoreConfig;
///
/// let config = RedisStoreConfig::single("redis://:s3cret@127.0.0.1:6380/0")
///     .key_prefix("myapp:session:")
///     .command_timeout(Duration::from_millis(250))
///     .build()
///     .unwrap();
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct RedisStoreConfig {
    pub(crate) target: Target,
    pub(crate) pool_size: usize,
    pub(crate) key_prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl RedisStoreConfig {
    /// A builder for one Redis server (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://`, which needs TLS support this crate does not build yet).
    pub fn single(url: impl Into<String>) -> RedisStoreConfigBuilder {
        RedisStoreConfigBuilder::new(Seeds::Single(url.into()))
    }

    /// A builder for a Redis Cluster, given the URLs of one or more of its nodes (the rest of
    /// the topology is discovered).
    #[cfg(feature = "cluster")]
    pub fn cluster<I, S>(urls: I) -> RedisStoreConfigBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreConfigBuilder::new(Seeds::Cluster(urls.into_iter().map(Into::into).collect()))
    }

    /// Whether this configuration targets a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        match self.target {
            Target::Single(_) => false,
            #[cfg(feature = "cluster")]
            Target::Cluster(_) => true,
        }
    }

    /// The number of lanes (pooled multiplexed connections; per cluster client for a cluster).
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The prefix of every key the store writes.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The longest time spent opening a connection.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The longest time one store call spends waiting for Redis once it has a connection.
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }
}

struct Redacted<'a>(&'a ConnectionInfo);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = self.0.redis_settings();
        let mut s = f.debug_struct("Node");
        match self.0.addr() {
            ConnectionAddr::Tcp(host, port) => s.field("addr", &format_args!("{host}:{port}")),
            ConnectionAddr::TcpTls { host, port, .. } => {
                s.field("addr", &format_args!("{host}:{port}"));
                s.field("tls", &true)
            }
            ConnectionAddr::Unix(path) => s.field("unix", path),
            _ => s.field("addr", &"?"),
        };
        s.field("db", &settings.db());
        if settings.username().is_some() {
            s.field("username", &"[redacted]");
        }
        if settings.password().is_some() {
            s.field("password", &"[redacted]");
        }
        s.finish()
    }
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RedisStoreConfig");
        match &self.target {
            Target::Single(info) => s.field("single", &Redacted(info)),
            #[cfg(feature = "cluster")]
            Target::Cluster(infos) => {
                s.field("cluster", &infos.iter().map(Redacted).collect::<Vec<_>>())
            }
        };
        s.field("pool_size", &self.pool_size)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("clock", &self.clock)
            .finish()
    }
}

enum Seeds {
    Single(String),
    #[cfg(feature = "cluster")]
    Cluster(Vec<String>),
}

/// Builder for [`RedisStoreConfig`]. Setters take and return the builder; nothing is checked
/// until [`build`](Self::build).
#[must_use]
pub struct RedisStoreConfigBuilder {
    seeds: Seeds,
    pool_size: usize,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedisStoreConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URLs may carry passwords and are not parsed yet: never print them.
        let urls = match &self.seeds {
            Seeds::Single(_) => 1,
            #[cfg(feature = "cluster")]
            Seeds::Cluster(urls) => urls.len(),
        };
        f.debug_struct("RedisStoreConfigBuilder")
            .field("urls", &format_args!("[{urls} redacted]"))
            .field("pool_size", &self.pool_size)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreConfigBuilder {
    fn new(seeds: Seeds) -> Self {
        Self {
            seeds,
            pool_size: DEFAULT_POOL_SIZE,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }

    /// Number of lanes: multiplexed connections held open and shared by all requests
    /// (default [`DEFAULT_POOL_SIZE`], 1 to [`MAX_POOL_SIZE`]). One lane already pipelines any
    /// number of concurrent requests, and fewer lanes batch more requests per system call; more
    /// lanes only pay off with many cores (see the crate docs, "Connection design").
    pub fn pool_size(mut self, lanes: usize) -> Self {
        self.pool_size = lanes;
        self
    }

    /// Prefix of every key (default `session:`). At most [`MAX_KEY_PREFIX_LEN`] bytes, printable
    /// ASCII without whitespace, and without `{` or `}` (they would change the cluster hash
    /// tags, see the crate docs).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Longest time to open a connection (default 1 s; above zero, at most [`MAX_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest time one store call waits for Redis once it has a connection, all its round
    /// trips included (default 1 s; above zero, at most [`MAX_TIMEOUT`]). A call that needs to
    /// open a connection first may also spend up to the connect timeout on that.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The clock deadlines are checked against (default: the system clock). Redis expires keys
    /// by its own clock; keep both in sync (NTP) — the store never returns a session its own
    /// clock says is expired, whatever Redis still holds.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates everything and returns the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first problem: an unparsable URL or one with an unsupported
    /// scheme (`rediss://`), an empty cluster node list, a pool size or timeout out of range, or
    /// a bad key prefix.
    pub fn build(self) -> Result<RedisStoreConfig, ConfigError> {
        let target = match self.seeds {
            Seeds::Single(url) => Target::Single(parse_url(&url)?),
            #[cfg(feature = "cluster")]
            Seeds::Cluster(urls) => {
                if urls.is_empty() {
                    return Err(ConfigError::NoClusterNodes);
                }
                let infos = urls
                    .iter()
                    .map(|url| parse_url(url))
                    .collect::<Result<Vec<_>, _>>()?;
                if infos.iter().any(|i| i.redis_settings().db() != 0) {
                    return Err(ConfigError::ClusterDatabase);
                }
                if infos
                    .iter()
                    .any(|i| matches!(i.addr(), ConnectionAddr::Unix(_)))
                {
                    return Err(ConfigError::UnsupportedScheme);
                }
                Target::Cluster(infos)
            }
        };
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return Err(ConfigError::PoolSize(self.pool_size));
        }
        validate_prefix(&self.key_prefix)?;
        for (name, t) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if t.is_zero() || t > MAX_TIMEOUT {
                return Err(ConfigError::Timeout(name));
            }
        }
        Ok(RedisStoreConfig {
            target,
            pool_size: self.pool_size,
            key_prefix: self.key_prefix,
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            clock: self.clock,
        })
    }
}

fn parse_url(url: &str) -> Result<ConnectionInfo, ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("redis") => {}
        Some("rediss") => return Err(ConfigError::TlsNotEnabled),
        Some("unix" | "redis+unix") => {}
        _ => return Err(ConfigError::UnsupportedScheme),
    }
    // The redis crate's parse error never echoes the URL, but keep it out of our error anyway:
    // a URL may carry a password.
    url.into_connection_info()
        .map_err(|_| ConfigError::InvalidUrl)
}

fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.len() <= MAX_KEY_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::KeyPrefix)
    }
}
