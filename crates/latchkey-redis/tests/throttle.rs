//! `RedisThrottleStore` passes the testkit's throttle suite on a private single node and a
//! private cluster, and keeps budgets as hashed, expiring keys.
#![cfg(feature = "throttle")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use latchkey_redis::{RedisStore, RedisStoreConfig, RedisThrottleStore};
use latchkey_testkit::redis::RespValue;
use latchkey_throttle::{Attempt, Throttle, ThrottleKey, ThrottleStore};

fn store_on(url: Vec<String>, cluster: bool) -> RedisThrottleStore {
    let builder = if cluster {
        #[cfg(feature = "cluster")]
        {
            RedisStoreConfig::cluster(url)
        }
        #[cfg(not(feature = "cluster"))]
        {
            unreachable!("cluster tests need the cluster feature")
        }
    } else {
        RedisStoreConfig::single(url[0].clone())
    };
    let config = builder
        .command_timeout(Duration::from_secs(5))
        .build()
        .expect("valid config");
    RedisThrottleStore::new(&RedisStore::new(config).expect("store"))
}

mod single_node {
    latchkey_testkit::throttle_store_conformance!(|| async {
        let server = super::common::server();
        let store = super::store_on(vec![server.url()], false);
        (
            std::sync::Arc::new(store) as std::sync::Arc<dyn latchkey_throttle::ThrottleStore>,
            server,
        )
    });
}

#[cfg(feature = "cluster")]
mod cluster {
    latchkey_testkit::throttle_store_conformance!(|| async {
        let cluster = super::common::cluster();
        let store = super::store_on(cluster.urls(), true);
        (
            std::sync::Arc::new(store) as std::sync::Arc<dyn latchkey_throttle::ThrottleStore>,
            cluster,
        )
    });
}

#[tokio::test]
async fn budgets_are_hashed_keys_with_a_ttl_and_success_deletes_them() {
    let server = common::server();
    let store = store_on(vec![server.url()], false);
    let throttle = Throttle::builder(Arc::new(store.clone()) as Arc<dyn ThrottleStore>)
        .forget_after(Duration::from_secs(60))
        .build()
        .unwrap();
    let key = ThrottleKey::account("alice@example.com");
    let place = match throttle.attempt(std::slice::from_ref(&key)).await.unwrap() {
        Attempt::Allowed(place) => place,
        other => panic!("{other:?}"),
    };
    let name = store.key_name(&key);
    assert!(name.starts_with("session:throttle:{") && !name.contains("alice"));
    let RespValue::Array(Some(keys)) = server.command(&["KEYS", "*"]).unwrap() else {
        panic!("KEYS reply");
    };
    assert_eq!(keys.len(), 1);
    let dump = format!("{keys:?}");
    assert!(!dump.contains("alice"), "{dump}");
    let RespValue::Integer(pttl) = server.command(&["PTTL", &name]).unwrap() else {
        panic!("PTTL reply");
    };
    assert!(
        (1..=60_000).contains(&pttl),
        "the budget expires by itself: {pttl}"
    );
    place.succeeded().await.unwrap();
    assert_eq!(
        server.command(&["EXISTS", &name]).unwrap(),
        RespValue::Integer(0)
    );
}

#[tokio::test]
async fn a_stopped_server_is_a_typed_error() {
    let mut server = common::server();
    let store = store_on(vec![server.url()], false);
    server.stop();
    let throttle = Throttle::builder(Arc::new(store) as Arc<dyn ThrottleStore>)
        .build()
        .unwrap();
    let err = throttle
        .attempt(&[ThrottleKey::account("bob")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            latchkey_throttle::ThrottleError::Unavailable(_)
                | latchkey_throttle::ThrottleError::Timeout
        ),
        "{err:?}"
    );
}
