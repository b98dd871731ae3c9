//! The whole latchkey-testkit token conformance suite against `RedisTokenStore`, on a private
//! single node and on a private three-master cluster. The store dump reads every key under the
//! test's prefix on every node, with its value (every field of a hash).
#![cfg(feature = "tokens")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use latchkey_redis::redis::{self, AsyncCommands as _};
use latchkey_redis::tokens::RedisTokenStore;
use latchkey_redis::RedisStoreConfig;
use latchkey_testkit::tokens::TokenBackend;
use latchkey_tokens::TokenStore;

const PREFIX: &str = "tokconf:";

/// Every key under [`PREFIX`] on every node at `urls`, followed by its value (strings) or every
/// field and value (hashes).
async fn dump(urls: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for url in urls {
        let client = redis::Client::open(url.as_str()).expect("client");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{PREFIX}*"))
            .query_async(&mut c)
            .await
            .expect("KEYS");
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut c)
                .await
                .expect("TYPE");
            match kind.as_str() {
                "hash" => {
                    let fields: Vec<String> = c.hgetall(&key).await.expect("HGETALL");
                    out.extend(fields);
                }
                "string" => {
                    let value: String = c.get(&key).await.expect("GET");
                    out.push(value);
                }
                other => panic!("unexpected key type {other} for {key}"),
            }
            out.push(key);
        }
    }
    out
}

fn backend(urls: Vec<String>, cluster: bool) -> TokenBackend {
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
        .key_prefix(PREFIX)
        .command_timeout(Duration::from_secs(5))
        .build()
        .expect("valid config");
    let store: Arc<dyn TokenStore> = Arc::new(RedisTokenStore::new(config).expect("store"));
    TokenBackend::new(store, move || dump(urls.clone()))
}

// One private server (or cluster) per check, kept alive by the guard.
mod single_node {
    latchkey_testkit::token_store_conformance!(with_guard: || async {
        let server = super::common::server();
        (super::backend(vec![server.url()], false), server)
    });
}

#[cfg(feature = "cluster")]
mod cluster {
    latchkey_testkit::token_store_conformance!(with_guard: || async {
        let cluster = super::common::cluster();
        (super::backend(cluster.urls(), true), cluster)
    });
}

/// The keys of one family, its subject's epoch and its deny-list share one hash tag, and every
/// key carries a TTL no later than the deadline it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_share_the_subject_hash_tag_and_expire() {
    let server = common::server();
    let backend = backend(vec![server.url()], false);
    let clock = latchkey_testkit::tokens::ManualClock::new(latchkey_testkit::tokens::START);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tokens = latchkey_testkit::tokens::service(
        backend.store.clone(),
        &clock,
        Duration::from_secs(30),
        &events,
    );
    let pair = tokens.issue("alice", &()).await.expect("issue");
    tokens
        .revoke(pair.access_token(), None)
        .await
        .expect("deny");
    tokens.revoke_subject("alice").await.expect("epoch");
    let client = redis::Client::open(server.url().as_str()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let keys: Vec<String> = c.keys(format!("{PREFIX}*")).await.expect("KEYS");
    assert_eq!(keys.len(), 3, "family, epoch, denied jti: {keys:?}");
    let tag = format!("{{{}}}", pair.family().subject_tag().to_hex());
    for key in &keys {
        assert!(
            key.contains(&tag),
            "{key} must carry the subject's hash tag"
        );
        let ttl: i64 = c.ttl(key).await.expect("TTL");
        assert!(ttl > 0, "{key} must expire (TTL {ttl})");
        let limit = if key.ends_with(":e") {
            31 * 24 * 3600
        } else if key.contains(":j:") {
            15 * 60
        } else {
            14 * 24 * 3600
        };
        assert!(ttl <= limit, "{key}: TTL {ttl} beyond its deadline {limit}");
    }
}

/// Redis down: refresh, verify with checks, login and revocation end within the timeouts with a
/// typed store error — never an answer that would clear the client's refresh cookie — and the
/// store recovers by itself when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_typed_bounded_and_recovers() {
    use latchkey_tokens::{Checks, IssueError, RefreshError, VerifyError};
    use std::time::Instant;

    let mut server = common::server();
    let config = RedisStoreConfig::single(server.url())
        .key_prefix(PREFIX)
        .connect_timeout(common::TIMEOUT)
        .command_timeout(common::TIMEOUT)
        .build()
        .expect("valid config");
    let store: Arc<dyn TokenStore> = Arc::new(RedisTokenStore::new(config).expect("store"));
    let clock = latchkey_testkit::tokens::ManualClock::new(latchkey_testkit::tokens::START);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tokens = latchkey_testkit::tokens::service(store, &clock, Duration::from_secs(30), &events);
    let pair = tokens.issue("alice", &()).await.expect("issue");

    server.stop();
    let bound = 2 * common::TIMEOUT + Duration::from_millis(400);
    for _ in 0..(2 * latchkey_redis::DEFAULT_POOL_SIZE) {
        let started = Instant::now();
        let err = tokens.refresh(pair.refresh_token()).await.unwrap_err();
        assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
        assert!(matches!(err, RefreshError::StoreUnavailable(_)), "{err:?}");
        assert!(
            !err.is_final(),
            "an outage must not clear the refresh cookie"
        );
    }
    assert!(matches!(
        tokens
            .verify::<()>(pair.access_token(), Checks::SUBJECT_EPOCH)
            .await,
        Err(VerifyError::StoreUnavailable(_))
    ));
    tokens
        .verify::<()>(pair.access_token(), Checks::NONE)
        .await
        .expect("the stateless level needs no store");
    assert!(matches!(
        tokens.issue("alice", &()).await,
        Err(IssueError::Store(_))
    ));
    assert!(tokens.revoke(pair.refresh_token(), None).await.is_err());

    server.restart().expect("restart");
    let again = tokens
        .issue("alice", &())
        .await
        .expect("login after the restart");
    tokens
        .refresh(again.refresh_token())
        .await
        .expect("refresh after the restart");
}

/// Commands the server executed since the last `CONFIG RESETSTAT`, by name (from `INFO
/// commandstats`), without the INFO and CONFIG calls of the measurement itself.
async fn commands_since_reset(c: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .expect("INFO");
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| name != "info" && !name.starts_with("config"))
        .collect()
}

/// `calls` EVALSHAs and, besides, only commands the scripts run inside (commandstats counts
/// those too), so each call was exactly one round trip.
fn assert_one_script_per_call(stats: &[(String, u64)], calls: u64, inside: &[&str]) {
    let evalsha = stats.iter().find(|(n, _)| n == "evalsha").map(|(_, c)| *c);
    assert_eq!(evalsha, Some(calls), "one EVALSHA per call: {stats:?}");
    for (name, _) in stats {
        assert!(
            name == "evalsha" || inside.contains(&name.as_str()),
            "{name} sent outside the script: {stats:?}"
        );
    }
}

/// Verification with every revocation check costs one round trip: one EVALSHA, nothing else;
/// and a refresh is one EVALSHA too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_and_refresh_are_one_round_trip_each() {
    use latchkey_tokens::Checks;

    let server = common::server();
    let backend = backend(vec![server.url()], false);
    let clock = latchkey_testkit::tokens::ManualClock::new(latchkey_testkit::tokens::START);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tokens = latchkey_testkit::tokens::service(
        backend.store.clone(),
        &clock,
        Duration::from_secs(30),
        &events,
    );
    let pair = tokens.issue("alice", &()).await.expect("issue");
    // Load the scripts once (the first EVALSHA of a script answers NOSCRIPT and loads it).
    tokens
        .verify::<()>(pair.access_token(), Checks::ALL)
        .await
        .expect("verify");
    let pair = tokens.refresh(pair.refresh_token()).await.expect("refresh");

    let client = redis::Client::open(server.url().as_str()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .expect("RESETSTAT");
    for _ in 0..10 {
        tokens
            .verify::<()>(pair.access_token(), Checks::ALL)
            .await
            .expect("verify");
    }
    assert_one_script_per_call(&commands_since_reset(&mut c).await, 10, &["get", "hmget"]);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .expect("RESETSTAT");
    tokens.refresh(pair.refresh_token()).await.expect("refresh");
    assert_one_script_per_call(
        &commands_since_reset(&mut c).await,
        1,
        &["get", "hmget", "hset", "expire"],
    );
}
