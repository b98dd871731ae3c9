//! The transport module against a real `TokenService`: token responses, every refresh outcome's
//! answer and the cookie rule, access-token verification, and that no reply's `Debug` shows a
//! token. (The request-parsing rejections are unit tests in `src/transport.rs`.)
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, SET_COOKIE, WWW_AUTHENTICATE};
use http::StatusCode;
use latchkey_testkit::tokens::{service, ManualClock, START};
use latchkey_testkit::{FaultyTokenStore, UNAVAILABLE_DETAIL};
use latchkey_tokens::transport::{AccessRefusal, TokenTransport, TransportReply, Via};
use latchkey_tokens::{
    Checks, MemoryTokenStore, RefreshError, Revocation, StoreError, TokenPair, TokenService,
    VerifyError,
};
use serde_json::{json, Value};

struct Fixture {
    tokens: TokenService,
    clock: ManualClock,
    store: Arc<FaultyTokenStore>,
    transport: TokenTransport,
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(START);
    let store = Arc::new(FaultyTokenStore::new(Arc::new(MemoryTokenStore::new())));
    let events = Arc::new(Mutex::new(Vec::new()));
    let tokens = service(store.clone(), &clock, Duration::from_secs(30), &events);
    let transport = TokenTransport::builder()
        .access_cookie("access_token")
        .build()
        .unwrap();
    Fixture {
        tokens,
        clock,
        store,
        transport,
    }
}

fn body(reply: &TransportReply) -> Value {
    serde_json::from_str(reply.body()).unwrap()
}

fn set_cookies(reply: &TransportReply) -> Vec<String> {
    reply
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn assert_no_store(reply: &TransportReply) {
    assert_eq!(reply.headers()[CACHE_CONTROL], "no-store", "RFC 6749 §5.1");
    assert_eq!(reply.headers()[PRAGMA], "no-cache", "RFC 6749 §5.1");
    assert_eq!(reply.headers()[CONTENT_TYPE], "application/json");
}

fn assert_redacted(reply: &TransportReply, pair: &TokenPair) {
    let debug = format!("{reply:?}");
    assert!(!debug.contains(pair.access_token()), "{debug}");
    assert!(!debug.contains(pair.refresh_token()), "{debug}");
}

#[tokio::test]
async fn body_token_response_has_the_rfc_6749_fields_and_no_cookie() {
    let f = fixture();
    let pair = f.tokens.issue("alice", &()).await.unwrap();
    let reply = f.transport.token_reply(&pair, Via::Body);
    assert_eq!(reply.status(), StatusCode::OK);
    assert_no_store(&reply);
    assert_eq!(
        body(&reply),
        json!({
            "access_token": pair.access_token(),
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": pair.refresh_token(),
        })
    );
    assert!(set_cookies(&reply).is_empty(), "{:?}", set_cookies(&reply));
    assert_redacted(&reply, &pair);
}

#[tokio::test]
async fn cookie_token_response_sets_scoped_cookies_with_the_lifetimes() {
    let f = fixture();
    let pair = f.tokens.issue("alice", &()).await.unwrap();
    let reply = f.transport.token_reply(&pair, Via::Cookie);
    assert_eq!(reply.status(), StatusCode::OK);
    assert_no_store(&reply);
    assert_eq!(
        body(&reply),
        json!({ "access_token": pair.access_token(), "token_type": "Bearer", "expires_in": 900 })
    );
    assert_eq!(
        set_cookies(&reply),
        [
            format!(
                "refresh_token={}; HttpOnly; Secure; SameSite=Strict; Path=/refresh; Max-Age={}",
                pair.refresh_token(),
                14 * 24 * 3600
            ),
            format!(
                "access_token={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=900",
                pair.access_token()
            ),
        ]
    );
    assert!(!reply.deletes_cookie("refresh_token"));
    assert_redacted(&reply, &pair);
}

#[tokio::test]
async fn dead_tokens_are_invalid_grant_and_delete_the_cookie_only_when_it_carried_them() {
    let f = fixture();
    for error in [
        RefreshError::Reused,
        RefreshError::Expired,
        RefreshError::Revoked,
        RefreshError::Unknown,
    ] {
        let by_cookie = f.transport.refresh_failure_reply(&error, Via::Cookie);
        assert_eq!(by_cookie.status(), StatusCode::BAD_REQUEST, "{error:?}");
        assert_eq!(body(&by_cookie), json!({ "error": "invalid_grant" }));
        assert_no_store(&by_cookie);
        assert!(by_cookie.deletes_cookie("refresh_token"), "{error:?}");
        assert!(by_cookie.deletes_cookie("access_token"), "{error:?}");

        let by_body = f.transport.refresh_failure_reply(&error, Via::Body);
        assert_eq!(by_body.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body(&by_body), json!({ "error": "invalid_grant" }));
        assert!(set_cookies(&by_body).is_empty(), "{error:?}");
    }
}

#[tokio::test]
async fn a_store_outage_is_503_and_keeps_the_cookie() {
    let f = fixture();
    let pair = f.tokens.issue("alice", &()).await.unwrap();
    f.store.set_down(true);
    let result = f.tokens.refresh(pair.refresh_token()).await;
    assert!(matches!(result, Err(RefreshError::StoreUnavailable(_))));
    for via in [Via::Cookie, Via::Body] {
        let reply = f.transport.refresh_reply(&result, via);
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(&reply), json!({ "error": "temporarily_unavailable" }));
        assert!(
            set_cookies(&reply).is_empty(),
            "{via:?}: the cookie is kept"
        );
        assert!(!format!("{reply:?}").contains(UNAVAILABLE_DETAIL));
        assert!(!reply.body().contains("10.1.2.3"));
    }
    // Back up: the very same token still works (nothing was cleared, nothing rotated).
    f.store.set_down(false);
    let result = f.tokens.refresh(pair.refresh_token()).await;
    let reply = f.transport.refresh_reply(&result, Via::Cookie);
    assert_eq!(reply.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_racing_duplicate_is_answered_with_the_same_successor_and_no_deletion() {
    let f = fixture();
    let pair = f.tokens.issue("alice", &()).await.unwrap();
    let first = f.tokens.refresh(pair.refresh_token()).await;
    let second = f.tokens.refresh(pair.refresh_token()).await;
    let (a, b) = (
        f.transport.refresh_reply(&first, Via::Cookie),
        f.transport.refresh_reply(&second, Via::Cookie),
    );
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    assert!(!b.deletes_cookie("refresh_token"));
    assert_eq!(
        set_cookies(&a)[0],
        set_cookies(&b)[0],
        "the same refresh cookie"
    );
    // Outside the grace window the same replay is reuse: invalid_grant, cookie deleted.
    f.clock.advance(31);
    let third = f.tokens.refresh(pair.refresh_token()).await;
    assert!(matches!(third, Err(RefreshError::Reused)));
    assert!(f
        .transport
        .refresh_reply(&third, Via::Cookie)
        .deletes_cookie("refresh_token"));
}

#[tokio::test]
async fn verify_maps_every_outcome() {
    let f = fixture();
    let pair = f
        .tokens
        .issue("alice", &json!({ "role": "x" }))
        .await
        .unwrap();
    let access = f
        .transport
        .verify::<Value>(&f.tokens, pair.access_token())
        .await
        .unwrap();
    assert_eq!(access.subject(), "alice");

    let refused = f
        .transport
        .verify::<Value>(&f.tokens, pair.refresh_token())
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        AccessRefusal::Invalid(VerifyError::Invalid(_))
    ));
    let reply = refused.reply();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers()[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(reply.body(), r#"{"error":"invalid_token"}"#);

    f.store.set_down(true);
    let refused = f
        .transport
        .verify::<Value>(&f.tokens, pair.access_token())
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        AccessRefusal::Unavailable(StoreError::Unavailable(_))
    ));
    assert_eq!(refused.reply().status(), StatusCode::SERVICE_UNAVAILABLE);
    // Stateless checks never reach the store.
    let stateless = TokenTransport::builder()
        .access_checks(Checks::NONE)
        .build()
        .unwrap();
    assert!(stateless
        .verify::<Value>(&f.tokens, pair.access_token())
        .await
        .is_ok());
    f.store.set_down(false);

    f.tokens.revoke_family(&pair.family()).await.unwrap();
    let refused = f
        .transport
        .verify::<Value>(&f.tokens, pair.access_token())
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        AccessRefusal::Invalid(VerifyError::Revoked(Revocation::Family))
    ));
    assert_eq!(refused.reply().status(), StatusCode::UNAUTHORIZED);
    assert!(!format!("{refused:?} {refused}").contains(pair.access_token()));
}
