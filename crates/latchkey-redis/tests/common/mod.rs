//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use latchkey_redis::{RedisStore, RedisStoreConfig};
use latchkey_session::{SessionId, SessionKey, SessionRecord, Timestamp};
#[cfg(feature = "cluster")]
use latchkey_testkit::redis::RedisCluster;
use latchkey_testkit::redis::RedisServer;

/// Short timeouts so that fault tests finish quickly.
pub const TIMEOUT: Duration = Duration::from_millis(300);

pub fn server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(feature = "cluster")]
pub fn cluster() -> RedisCluster {
    RedisCluster::start().unwrap_or_else(|e| panic!("{e}"))
}

pub fn store(server: &RedisServer) -> RedisStore {
    let config = RedisStoreConfig::single(server.url())
        .connect_timeout(TIMEOUT)
        .command_timeout(TIMEOUT)
        .build()
        .expect("valid test config");
    RedisStore::new(config).expect("store from a valid config")
}

#[cfg(feature = "cluster")]
pub fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    let config = RedisStoreConfig::cluster(cluster.urls())
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(2))
        .build()
        .expect("valid test config");
    RedisStore::new(config).expect("store from a valid config")
}

pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// A fresh ID, its key, and a record that lives for `idle` (absolute: one hour).
pub fn fresh(idle: Duration) -> (SessionId, SessionKey, SessionRecord) {
    let id = SessionId::generate();
    let key = id.key();
    let now = now();
    let record = SessionRecord::new(
        now,
        now.saturating_add(idle),
        now.saturating_add(Duration::from_secs(3600)),
    );
    (id, key, record)
}
