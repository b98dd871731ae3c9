//! End to end on Redis: the login example with `REDIS_URL`'s store (a private `redis-server` on a
//! free loopback port from latchkey-testkit), including Redis going down mid-test and coming back.
//! Needs `redis-server` installed; without it the test fails with a message saying how to install
//! it (it never skips).

// The test bodies are plain `async fn`s run by the two `#[tokio::test]`s `on_both_servers!`
// generates, so clippy's allow-unwrap-in-tests does not see them as tests.
#![allow(clippy::unwrap_used)]

mod support;

use latchkey_examples::login;
use latchkey_testkit::redis::RedisServer;
use reqwest::StatusCode;
use serde_json::Value;
use support::{bare_client, client, creds, login as log_in, signup_and_login, Framework, Server};

const PASSWORD: &str = "s3cret!pw";

on_both_servers!(login_flow_on_redis_with_an_outage_and_recovery);

async fn login_flow_on_redis_with_an_outage_and_recovery(framework: Framework) {
    let mut redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let url = redis.url();
    assert!(
        !url.contains(":6379/"),
        "a private port, never the shared 6379"
    );
    let stores = login::stores(Some(&url)).unwrap();
    let (store, name) = (stores.sessions, stores.description);
    assert!(name.starts_with("redis at redis://127.0.0.1:"), "{name}");
    let server = Server::start(framework, store.clone()).await;

    let one = client("device-one/1.0");
    let two = client("device-two/2.0");
    let (token, _) = signup_and_login(&server, &one, "redis1234", PASSWORD).await;
    log_in(&server, &two, "redis1234", PASSWORD).await;
    let me = one.get(server.url("/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // The sessions are in Redis, under hashed keys.
    assert_eq!(store.count().await.unwrap(), 2);
    let list: Value = one
        .get(server.url("/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    let revoked = one
        .delete(server.url(&format!("/sessions/{}", other["id"].as_str().unwrap())))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        two.get(server.url("/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Anonymous traffic writes nothing to Redis either.
    let probe = bare_client();
    for _ in 0..200 {
        assert_eq!(
            probe
                .get(server.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            probe.get(server.url("/me")).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(store.count().await.unwrap(), 1);

    // Redis goes down: session routes answer 503 with an opaque body, /health still 200.
    redis.stop();
    let down = one.get(server.url("/me")).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = down.text().await.unwrap();
    assert_eq!(body, r#"{"error":"service_unavailable"}"#);
    let down = probe
        .post(server.url("/login"))
        .json(&creds("redis1234", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers().get("set-cookie").is_none());
    // /health says which part is down (and still creates nothing).
    let health = probe.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(health.headers().get("set-cookie").is_none());
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["sessions"], "unavailable", "{health}");
    assert_eq!(health["accounts"], "ok", "{health}");

    // Redis is back (empty: the test server keeps nothing on disk). The store reconnects by
    // itself; the old session died with the data, so it is simply "no session", and a new login
    // works.
    let _redis = tokio::task::spawn_blocking(move || redis.restart().map(|()| redis))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    // Up to 15 s: the store reconnects on demand, each attempt bounded by its 1 s timeouts.
    for _ in 0..150 {
        status = one.get(server.url("/me")).send().await.unwrap().status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "recovered: the lost session reads as none"
    );
    let health = probe.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "healthy again");
    let three = client("device-three/3.0");
    log_in(&server, &three, "redis1234", PASSWORD).await;
    assert_eq!(
        three.get(server.url("/me")).send().await.unwrap().status(),
        StatusCode::OK
    );
    server.stop().await;
}
