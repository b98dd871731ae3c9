#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cluster;
mod config;
mod conn;
mod error;
mod layout;
mod scripts;
mod store;
#[cfg(feature = "throttle")]
mod throttle;
pub mod tokens;

pub use config::{
    RedisStoreConfig, RedisStoreConfigBuilder, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEY_PREFIX, DEFAULT_POOL_SIZE, MAX_KEY_PREFIX_LEN, MAX_POOL_SIZE, MAX_TIMEOUT,
};
pub use error::ConfigError;
pub use store::RedisStore;
#[cfg(feature = "throttle")]
pub use throttle::RedisThrottleStore;

/// The redis crate this store is built on (re-exported from deadpool-redis, so the versions
/// always match).
pub use deadpool_redis::redis;
