//! Redis down, slow or reconnecting: every call ends within the configured timeouts with a
//! typed error, and the store recovers by itself.

mod common;

use std::time::{Duration, Instant};

use common::*;
use latchkey_session::{Delta, SessionStore, StoreError};
use latchkey_testkit::redis::RespValue;
use serde_json::json;

/// Generous bound for "fast": one connect timeout plus one command timeout plus scheduling slack.
const BOUND: Duration = Duration::from_millis(2 * 300 + 400);

#[tokio::test]
async fn stopped_server_fails_fast_and_restart_recovers() {
    let mut server = server();
    let store = store(&server);
    let (_id, key, record) = fresh(Duration::from_secs(60));
    store.create(&key, &record, None).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_some());

    server.stop();
    // Each lane notices the closed socket on its own; go round all of them, twice.
    for _ in 0..(2 * latchkey_redis::DEFAULT_POOL_SIZE) {
        let started = Instant::now();
        let err = store.load(&key).await.unwrap_err();
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
        assert!(err.is_unavailable(), "{err:?}");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    let started = Instant::now();
    assert!(store
        .create(&key, &record, None)
        .await
        .unwrap_err()
        .is_unavailable());
    assert!(store.count().await.unwrap_err().is_unavailable());
    assert!(started.elapsed() < 2 * BOUND);

    server.restart().unwrap();
    // No restart of the store: the next calls open new lanes through the pool.
    let (_id2, key2, record2) = fresh(Duration::from_secs(60));
    store.create(&key2, &record2, None).await.unwrap();
    for _ in 0..(2 * latchkey_redis::DEFAULT_POOL_SIZE) {
        assert_eq!(store.load(&key2).await.unwrap().as_ref(), Some(&record2));
    }
}

#[tokio::test]
async fn store_built_while_redis_is_down_starts_working_when_it_comes_up() {
    let mut server = server();
    server.stop();
    let store = store(&server);
    let started = Instant::now();
    assert!(store.ping().await.unwrap_err().is_unavailable());
    assert!(started.elapsed() < BOUND);
    server.restart().unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn paused_server_times_out_within_the_bound_then_recovers() {
    let server = server();
    let store = store(&server);
    let (_id, key, record) = fresh(Duration::from_secs(60));
    store.create(&key, &record, None).await.unwrap();

    server.pause().unwrap();
    let calls = (0..16).map(|_| {
        let store = store.clone();
        async move {
            let started = Instant::now();
            let result = store.load(&key).await;
            (result, started.elapsed())
        }
    });
    for (result, took) in futures::future::join_all(calls).await {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Timeout), "{err:?}");
        assert!(took < BOUND, "took {took:?}");
    }
    server.resume().unwrap();
    // The lanes that timed out went back to the pool, which checks them before reuse.
    for _ in 0..(2 * latchkey_redis::DEFAULT_POOL_SIZE) {
        assert_eq!(store.load(&key).await.unwrap().as_ref(), Some(&record));
    }
}

#[tokio::test]
async fn debug_sleep_holds_the_command_timeout() {
    let server = server();
    let store = store(&server);
    store.ping().await.unwrap();
    let (_id, key, _record) = fresh(Duration::from_secs(60));
    // DEBUG SLEEP blocks the whole server for 1.5 s, from another connection.
    let sleeper = std::thread::spawn({
        let addr = server.port();
        move || {
            let _ = std::process::Command::new("redis-cli")
                .args(["-p", &addr.to_string(), "DEBUG", "SLEEP", "1.5"])
                .output();
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let err = store.load(&key).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    sleeper.join().unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn acknowledged_save_survives_a_reconnect() {
    let server = server();
    let store = store(&server);
    let (_id, key, record) = fresh(Duration::from_secs(60));
    store.create(&key, &record, None).await.unwrap();
    let delta =
        Delta::new(now(), now().saturating_add(Duration::from_secs(60))).set("step", json!(2));
    assert!(store.save(&key, &delta).await.unwrap());

    // Kill every client connection of the store (not the server): the lanes break.
    let killed = server
        .command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .unwrap();
    assert!(
        matches!(killed, RespValue::Integer(n) if n >= 1),
        "{killed:?}"
    );

    // The first call on a broken lane may fail (Unavailable, never a hang); within a few calls
    // every lane is replaced, and the saved data is there.
    let mut seen = None;
    for _ in 0..(3 * latchkey_redis::DEFAULT_POOL_SIZE) {
        match store.load(&key).await {
            Ok(loaded) => seen = loaded,
            Err(err) => assert!(err.is_unavailable(), "{err:?}"),
        }
    }
    let loaded = seen.expect("the store reconnected");
    assert_eq!(loaded.data.get::<i64>("step").unwrap(), Some(2));
}
