//! The whole latchkey-testkit conformance suite, one test per check, against a private single
//! node and against a private three-master cluster.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use latchkey_redis::{RedisStore, RedisStoreConfig};
use latchkey_session::SessionStore;

/// Each check gets a fresh, empty store: the same server, a key prefix of its own.
fn fresh_store(
    urls: Vec<String>,
    cluster: bool,
) -> impl Fn() -> std::future::Ready<Arc<dyn SessionStore>> {
    let n = AtomicUsize::new(0);
    move || {
        let prefix = format!("conformance{}:", n.fetch_add(1, Ordering::Relaxed));
        let builder = if cluster {
            #[cfg(feature = "cluster")]
            {
                RedisStoreConfig::cluster(urls.clone())
            }
            #[cfg(not(feature = "cluster"))]
            {
                unreachable!("cluster tests need the cluster feature")
            }
        } else {
            RedisStoreConfig::single(urls[0].clone())
        };
        let config = builder
            .key_prefix(prefix)
            .command_timeout(Duration::from_secs(5))
            .build()
            .expect("valid config");
        let store = RedisStore::new(config).expect("store");
        std::future::ready(Arc::new(store) as Arc<dyn SessionStore>)
    }
}

// One private server (or cluster) per check, kept alive by the guard.
mod single_node {
    latchkey_testkit::session_store_conformance!(with_guard: || async {
        let server = super::common::server();
        let store = super::fresh_store(vec![server.url()], false)().await;
        (store, server)
    });
}

#[cfg(feature = "cluster")]
mod cluster {
    latchkey_testkit::session_store_conformance!(with_guard: || async {
        let cluster = super::common::cluster();
        let store = super::fresh_store(cluster.urls(), true)().await;
        (store, cluster)
    });
}
