//! [`ConfigError`], and how Redis and pool failures become [`StoreError`]s.

use deadpool_redis::redis::{ErrorKind, RedisError};
use deadpool_redis::PoolError;
use latchkey_session::StoreError;

use crate::conn::Verdict;

/// Why a [`RedisStoreConfig`](crate::RedisStoreConfig) was refused. Never contains a URL (it may
/// carry a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse as a Redis URL.
    #[error("invalid redis URL")]
    InvalidUrl,
    /// The URL scheme is not `redis://`, `rediss://` or `unix://` (cluster: not a unix socket).
    #[error("unsupported redis URL scheme (expected redis://, rediss:// or unix://)")]
    UnsupportedScheme,
    /// `rediss://` was given but this build of latchkey-redis has no TLS support.
    #[error("rediss:// needs TLS support, which this build of latchkey-redis does not include")]
    TlsNotEnabled,
    /// A cluster configuration without any node URL.
    #[error("a cluster configuration needs at least one node URL")]
    NoClusterNodes,
    /// A cluster node URL selects a database other than 0 (Redis Cluster has only database 0).
    #[error("redis cluster only has database 0")]
    ClusterDatabase,
    /// The pool size is 0 or above [`MAX_POOL_SIZE`](crate::config::MAX_POOL_SIZE).
    #[error("pool size {0} out of range (1 to 256)")]
    PoolSize(usize),
    /// A timeout is zero or above [`MAX_TIMEOUT`](crate::config::MAX_TIMEOUT).
    #[error("{0} must be above zero and at most 60 s")]
    Timeout(&'static str),
    /// The key prefix is too long or contains whitespace, control characters, `{` or `}`.
    #[error("key prefix must be at most 64 printable ASCII bytes without spaces, '{{' or '}}'")]
    KeyPrefix,
    /// The redis client or the pool refused the configuration.
    #[error("redis client setup failed")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ConfigError {
    pub(crate) fn redis(err: RedisError) -> Self {
        Self::Client(Box::new(err))
    }

    pub(crate) fn pool(err: deadpool_redis::BuildError) -> Self {
        Self::Client(Box::new(err))
    }
}

/// Maps a Redis error to a store error, and says what it means for the connection it came from.
pub(crate) fn from_redis_error(err: RedisError) -> (StoreError, Verdict) {
    if err.is_timeout() {
        return (StoreError::Timeout, Verdict::Recheck);
    }
    if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
    {
        return (StoreError::Unavailable(Box::new(err)), Verdict::Discard);
    }
    match err.kind() {
        // The server answered, but not with what the store wrote: someone else's data under our
        // prefix, or a record from an incompatible version.
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            (StoreError::Corrupt(Box::new(err)), Verdict::Keep)
        }
        // Cluster errors the cluster client returns (MOVED exhausted, CLUSTERDOWN, TRYAGAIN),
        // OOM, READONLY, LOADING, auth failures...: the store cannot serve right now. (The
        // cluster client retries CLUSTERDOWN and a stopped node, so the command timeout usually
        // ends those calls first, as `Timeout`.)
        _ => (StoreError::Unavailable(Box::new(err)), Verdict::Keep),
    }
}

pub(crate) fn from_pool_error(err: PoolError) -> StoreError {
    match err {
        PoolError::Timeout(_) => StoreError::Timeout,
        PoolError::Backend(err) => from_redis_error(err).0,
        other => StoreError::Unavailable(Box::new(other)),
    }
}

/// A record in Redis that the store cannot decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed session record: {0}")]
pub(crate) struct Malformed(pub(crate) &'static str);

pub(crate) fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt(Box::new(Malformed(what)))
}
