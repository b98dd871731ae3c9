//! The login transaction's contract — found once, by this browser, within its lifetime — on
//! every session store: memory, a private Redis node and a private Redis Cluster.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use latchkey_oauth::{PkceVerifier, TransactionError, Transactions, TRANSACTION_LIFETIME};
use latchkey_redis::{RedisStore, RedisStoreConfig};
use latchkey_session::{ManualClock, MemoryStore, SessionStore, Timestamp};
use latchkey_testkit::redis::{RedisCluster, RedisServer, RespValue};
use latchkey_testkit::FaultyStore;

const ISSUER: &str = "https://issuer.example";
const REDIRECT: &str = "https://app.example/callback";

/// `name=value` of a `Set-Cookie` value: what the browser sends back.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn redis_store(urls: Vec<String>, cluster: bool) -> Arc<dyn SessionStore> {
    let config = if cluster {
        RedisStoreConfig::cluster(urls)
    } else {
        RedisStoreConfig::single(urls.into_iter().next().unwrap())
    };
    let config = config
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    Arc::new(RedisStore::new(config).unwrap())
}

/// Runs `check` on each backend.
macro_rules! on_every_store {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                super::$check(std::sync::Arc::new(latchkey_session::MemoryStore::new())).await;
            })*
        }
        mod redis_node {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let server = super::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
                super::$check(super::redis_store(vec![server.url()], false)).await;
            })*
        }
        mod redis_cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let cluster = super::RedisCluster::start().unwrap_or_else(|e| panic!("{e}"));
                super::$check(super::redis_store(cluster.urls(), true)).await;
            })*
        }
    };
}

on_every_store!(
    a_transaction_is_found_once_by_its_browser,
    racing_callbacks_consume_it_at_most_once,
    a_foreign_browser_is_refused_and_cancels_nothing,
    two_tabs_do_not_break_each_other,
    bad_states_are_unknown,
);

async fn a_transaction_is_found_once_by_its_browser(store: Arc<dyn SessionStore>) {
    let transactions = Transactions::new(store);
    let begun = transactions
        .begin(ISSUER, REDIRECT, Some("/devices?tab=2"), None)
        .await
        .unwrap();
    assert!(begun.set_cookie.starts_with("__Host-latchkey-oauth="));
    for attribute in [
        "; Path=/",
        "; Max-Age=600",
        "; HttpOnly",
        "; SameSite=Lax",
        "; Secure",
    ] {
        assert!(begun.set_cookie.contains(attribute), "{attribute}");
    }
    let cookie = pair(&begun.set_cookie);
    let header = format!("theme=dark; {cookie}; other=1");

    let tx = transactions
        .consume(Some(begun.state.expose()), Some(&header))
        .await
        .unwrap();
    assert_eq!(tx.issuer, ISSUER);
    assert_eq!(tx.redirect_uri, REDIRECT);
    assert_eq!(tx.next, "/devices?tab=2");
    assert_eq!(tx.nonce, begun.nonce);
    assert_eq!(tx.pkce.challenge(), begun.code_challenge);
    // Consumed: a replayed callback finds nothing.
    assert!(matches!(
        transactions
            .consume(Some(begun.state.expose()), Some(&header))
            .await,
        Err(TransactionError::UnknownState)
    ));
}

async fn racing_callbacks_consume_it_at_most_once(store: Arc<dyn SessionStore>) {
    let transactions = Transactions::new(store);
    for _ in 0..5 {
        let begun = transactions
            .begin(ISSUER, REDIRECT, None, None)
            .await
            .unwrap();
        let state = begun.state.expose().to_owned();
        let cookie = pair(&begun.set_cookie);
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (transactions, state, cookie) =
                    (transactions.clone(), state.clone(), cookie.clone());
                tokio::spawn(async move { transactions.consume(Some(&state), Some(&cookie)).await })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(TransactionError::Replayed | TransactionError::UnknownState) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            won, 1,
            "exactly one of 32 racing callbacks completes the sign-in"
        );
    }
}

async fn a_foreign_browser_is_refused_and_cancels_nothing(store: Arc<dyn SessionStore>) {
    let transactions = Transactions::new(store);
    let victim = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    let attacker = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    let state = victim.state.expose();
    // Login CSRF: the attacker's browser (its own binding cookie, or none) brings a valid state.
    for header in [
        None,
        Some(String::new()),
        Some(pair(&attacker.set_cookie)),
        Some("__Host-latchkey-oauth=not-a-binding".to_owned()),
        Some(format!(
            "latchkey-oauth={}",
            &pair(&victim.set_cookie)[22..]
        )),
    ] {
        assert!(
            matches!(
                transactions.consume(Some(state), header.as_deref()).await,
                Err(TransactionError::NotThisBrowser)
            ),
            "{header:?}"
        );
    }
    // The refusals consumed nothing: the victim's own callback still works.
    let cookie = pair(&victim.set_cookie);
    assert!(transactions
        .consume(Some(state), Some(&cookie))
        .await
        .is_ok());
}

async fn two_tabs_do_not_break_each_other(store: Arc<dyn SessionStore>) {
    let transactions = Transactions::new(store);
    let first = transactions
        .begin(ISSUER, REDIRECT, Some("/a"), None)
        .await
        .unwrap();
    let cookie = pair(&first.set_cookie);
    // The second tab's request carries the cookie the first one set: the binding is reused.
    let second = transactions
        .begin(ISSUER, REDIRECT, Some("/b"), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(pair(&second.set_cookie), cookie);
    assert_ne!(first.state, second.state);
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.code_challenge, second.code_challenge);
    // Finished in either order, each finds its own transaction.
    let b = transactions
        .consume(Some(second.state.expose()), Some(&cookie))
        .await
        .unwrap();
    let a = transactions
        .consume(Some(first.state.expose()), Some(&cookie))
        .await
        .unwrap();
    assert_eq!((a.next.as_str(), b.next.as_str()), ("/a", "/b"));
}

async fn bad_states_are_unknown(store: Arc<dyn SessionStore>) {
    let transactions = Transactions::new(store);
    let begun = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    let cookie = pair(&begun.set_cookie);
    let unknown = latchkey_oauth::Secret::generate();
    for state in [
        None,
        Some(""),
        Some("short"),
        Some(&begun.state.expose()[1..]),
        Some(unknown.expose()),
    ] {
        assert!(
            matches!(
                transactions.consume(state, Some(&cookie)).await,
                Err(TransactionError::UnknownState)
            ),
            "{state:?}"
        );
    }
}

#[tokio::test]
async fn expiry_at_ten_minutes() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let store = Arc::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let transactions = Transactions::new(store).with_clock(Arc::new(clock.clone()));
    let on_time = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    let late = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    clock.advance(TRANSACTION_LIFETIME - Duration::from_millis(1));
    assert!(transactions
        .consume(
            Some(on_time.state.expose()),
            Some(&pair(&on_time.set_cookie))
        )
        .await
        .is_ok());
    clock.advance(Duration::from_millis(1));
    assert!(matches!(
        transactions
            .consume(Some(late.state.expose()), Some(&pair(&late.set_cookie)))
            .await,
        Err(TransactionError::Expired)
    ));
}

/// Every string of every key on `server` (keys, hash fields and values).
fn dump(server: &RedisServer) -> String {
    fn strings(value: RespValue, out: &mut String) {
        match value {
            RespValue::Simple(s) | RespValue::Bulk(Some(s)) => {
                out.push_str(&s);
                out.push('\n');
            }
            RespValue::Array(Some(items)) => items.into_iter().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    let RespValue::Array(Some(keys)) = server.command(&["KEYS", "*"]).unwrap() else {
        panic!("KEYS reply");
    };
    for key in keys {
        let RespValue::Bulk(Some(key)) = key else {
            continue;
        };
        out.push_str(&key);
        out.push('\n');
        if let Ok(fields) = server.command(&["HGETALL", &key]) {
            strings(fields, &mut out);
        }
    }
    out
}

#[tokio::test]
async fn nothing_stored_is_the_state_or_the_binding() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let transactions = Transactions::new(redis_store(vec![server.url()], false));
    let begun = transactions
        .begin(ISSUER, REDIRECT, Some("/after"), None)
        .await
        .unwrap();
    let cookie = pair(&begun.set_cookie);
    let binding = cookie.split_once('=').unwrap().1;
    let stored = dump(&server);
    // The dump is the transaction (its issuer and next are there)...
    assert!(
        stored.contains(ISSUER) && stored.contains("/after"),
        "{stored}"
    );
    // ...but neither secret the browser holds: the key is a hash of the state and the
    // binding is kept as a hash, so a store dump cannot complete anyone's sign-in.
    assert!(
        !stored.contains(begun.state.expose()),
        "the state is stored"
    );
    assert!(!stored.contains(binding), "the binding is stored");
}

#[tokio::test]
async fn a_store_outage_is_a_store_error_and_consumes_nothing() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let transactions = Transactions::new(Arc::clone(&store) as Arc<dyn SessionStore>);
    let begun = transactions
        .begin(ISSUER, REDIRECT, None, None)
        .await
        .unwrap();
    let cookie = pair(&begun.set_cookie);
    store.set_down(true);
    assert!(matches!(
        transactions.begin(ISSUER, REDIRECT, None, None).await,
        Err(TransactionError::Store(_))
    ));
    assert!(matches!(
        transactions
            .consume(Some(begun.state.expose()), Some(&cookie))
            .await,
        Err(TransactionError::Store(_))
    ));
    store.set_down(false);
    assert!(transactions
        .consume(Some(begun.state.expose()), Some(&cookie))
        .await
        .is_ok());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let verifier = PkceVerifier::generate();
    let shown = format!("{verifier:?}");
    assert!(!shown.contains(verifier.expose()));
}
