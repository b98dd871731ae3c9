//! End-to-end tests of the `jwt_api` example over loopback, with a real HTTP client: rotation,
//! replay killing the family, clients racing one refresh, logout and logout-all, a store
//! outage, malformed refresh requests, and the shape of error responses.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

#[path = "../jwt_api/app.rs"]
mod app;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_testkit::tokens::{service, ManualClock, START};
use latchkey_testkit::{FaultyTokenStore, UNAVAILABLE_DETAIL};
use latchkey_tokens::MemoryTokenStore;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

struct Server {
    base: String,
    clock: ManualClock,
    http: Client,
    store: Arc<FaultyTokenStore>,
}

async fn start() -> Server {
    let clock = ManualClock::new(START);
    let events = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(FaultyTokenStore::new(Arc::new(MemoryTokenStore::new())));
    let tokens = service(store.clone(), &clock, Duration::from_secs(30), &events);
    let app = app::App::new(tokens, &[("alice", "password"), ("bob", "password")]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app::router(app)).await });
    Server {
        base: format!("http://{addr}"),
        clock,
        http: Client::new(),
        store,
    }
}

impl Server {
    async fn login(&self, user: &str, mobile: bool) -> Response {
        let mut body = json!({ "username": user, "password": "password" });
        if mobile {
            body["client"] = json!("mobile");
        }
        self.http
            .post(format!("{}/login", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn mobile_login(&self, user: &str) -> Value {
        let response = self.login(user, true).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn me(&self, access: &str) -> Response {
        self.http
            .get(format!("{}/me", self.base))
            .header(AUTHORIZATION, format!("Bearer {access}"))
            .send()
            .await
            .unwrap()
    }

    async fn refresh_body(&self, refresh: &str) -> Response {
        self.http
            .post(format!("{}/refresh", self.base))
            .json(&json!({ "refresh_token": refresh }))
            .send()
            .await
            .unwrap()
    }

    async fn refresh_cookie(&self, refresh: &str) -> Response {
        self.http
            .post(format!("{}/refresh", self.base))
            .header(COOKIE, format!("{}={refresh}", app::REFRESH_COOKIE))
            .send()
            .await
            .unwrap()
    }

    async fn refresh_raw(&self, body: impl Into<reqwest::Body>) -> Response {
        self.http
            .post(format!("{}/refresh", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A browser login: the refresh token from its cookie.
    async fn browser_login(&self, user: &str) -> String {
        let login = self.login(user, false).await;
        assert_eq!(login.status(), StatusCode::OK);
        cookie_value(&set_cookies(&login), app::REFRESH_COOKIE).unwrap()
    }

    async fn post_bearer(&self, path: &str, access: &str) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {access}"))
            .send()
            .await
            .unwrap()
    }
}

fn s(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap().to_owned()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .and_then(|rest| rest.split(';').next())
            .map(str::to_owned)
    })
}

fn deletes_refresh_cookie(response: &Response) -> bool {
    set_cookies(response)
        .iter()
        .any(|c| c.starts_with(&format!("{}=;", app::REFRESH_COOKIE)) && c.contains("Max-Age=0"))
}

async fn assert_invalid_grant(response: Response, clears_cookie: bool) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let deleting = set_cookies(&response)
        .iter()
        .any(|c| c.starts_with(app::REFRESH_COOKIE) && c.contains("Max-Age=0"));
    assert_eq!(deleting, clears_cookie, "{:?}", set_cookies(&response));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "invalid_grant" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_me_and_rotation() {
    let server = start().await;
    let pair = server.mobile_login("alice").await;
    assert_eq!(pair["token_type"], json!("Bearer"));
    assert_eq!(pair["expires_in"], json!(900));
    let me: Value = server
        .me(&s(&pair, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], json!("alice"));

    server.clock.advance(60);
    let response = server.refresh_body(&s(&pair, "refresh_token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "RFC 6749 §5.1"
    );
    let next: Value = response.json().await.unwrap();
    assert_ne!(next["refresh_token"], pair["refresh_token"]);
    assert_eq!(
        server.me(&s(&next, "access_token")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_kills_the_family() {
    let server = start().await;
    let stolen = server.mobile_login("alice").await;
    let victim: Value = server
        .refresh_body(&s(&stolen, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    server.clock.advance(31);
    assert_invalid_grant(
        server.refresh_body(&s(&stolen, "refresh_token")).await,
        false,
    )
    .await;
    assert_invalid_grant(
        server.refresh_body(&s(&victim, "refresh_token")).await,
        false,
    )
    .await;
    let response = server.me(&s(&victim, "access_token")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
}

/// Two browser clients (tabs) race one refresh cookie: both succeed with the same successor,
/// and neither response deletes the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_from_two_clients_get_the_same_successor() {
    let server = start().await;
    let login = server.login("alice", false).await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookies = set_cookies(&login);
    let refresh = cookie_value(&cookies, app::REFRESH_COOKIE).unwrap();
    let refresh_cookie = cookies
        .iter()
        .find(|c| c.starts_with(app::REFRESH_COOKIE))
        .unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/refresh"] {
        assert!(refresh_cookie.contains(attribute), "{refresh_cookie}");
    }
    let body: Value = login.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "the cookie carries it");

    let (a, b) = tokio::join!(
        server.refresh_cookie(&refresh),
        server.refresh_cookie(&refresh)
    );
    let mut successors = Vec::new();
    for response in [a, b] {
        assert_eq!(response.status(), StatusCode::OK);
        let cookies = set_cookies(&response);
        assert!(
            !cookies.iter().any(|c| c.contains("Max-Age=0")),
            "the loser must not delete the cookie: {cookies:?}"
        );
        successors.push(cookie_value(&cookies, app::REFRESH_COOKIE).unwrap());
    }
    assert_eq!(successors[0], successors[1], "the same successor");
    assert_ne!(successors[0], refresh);
    // A dead token presented in a cookie is answered with a deleting Set-Cookie.
    server.clock.advance(31);
    assert_invalid_grant(server.refresh_cookie(&refresh).await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_family_and_logout_all_every_login() {
    let server = start().await;
    let laptop = server.mobile_login("alice").await;
    let phone = server.mobile_login("alice").await;
    let tablet = server.mobile_login("alice").await;
    let bob = server.mobile_login("bob").await;

    let response = server
        .post_bearer("/logout", &s(&laptop, "access_token"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server.me(&s(&laptop, "access_token")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_invalid_grant(
        server.refresh_body(&s(&laptop, "refresh_token")).await,
        false,
    )
    .await;
    assert_eq!(
        server.me(&s(&phone, "access_token")).await.status(),
        StatusCode::OK,
        "another login lives on"
    );

    // Log out everywhere, in the same second as the logins: every earlier access token is
    // refused at once, every refresh token dies, other users are untouched.
    let refreshed: Value = server
        .refresh_body(&s(&tablet, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let response = server
        .post_bearer("/logout-all", &s(&phone, "access_token"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for pair in [&phone, &tablet, &refreshed] {
        assert_eq!(
            server.me(&s(pair, "access_token")).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_invalid_grant(server.refresh_body(&s(pair, "refresh_token")).await, false).await;
    }
    assert_eq!(
        server.me(&s(&bob, "access_token")).await.status(),
        StatusCode::OK
    );
    let again = server.mobile_login("alice").await;
    assert_eq!(
        server.me(&s(&again, "access_token")).await.status(),
        StatusCode::OK,
        "a new login after logout-all works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_oauth_shaped_and_opaque() {
    let server = start().await;
    let pair = server.mobile_login("alice").await;
    // Wrong password.
    let response = server
        .http
        .post(format!("{}/login", server.base))
        .json(&json!({ "username": "alice", "password": "nope" }))
        .send()
        .await
        .unwrap();
    assert_invalid_grant(response, false).await;
    // No credentials at all: a bare challenge (RFC 6750 §3.1).
    let response = server
        .http
        .get(format!("{}/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    // A refresh token as a bearer token; no refresh token at all.
    let response = server.me(&s(&pair, "refresh_token")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert_eq!(body, r#"{"error":"invalid_token"}"#, "nothing but the code");
    let response = server
        .http
        .post(format!("{}/refresh", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_request" })
    );
    // The access token as a refresh token.
    assert_invalid_grant(server.refresh_body(&s(&pair, "access_token")).await, false).await;
}

/// Sixteen tabs race one refresh cookie: every response is a 200 with the same successor, and
/// none carries a deleting `Set-Cookie` (a request that lost the race is not a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_refreshes_get_one_successor_and_keep_the_cookie() {
    let server = Arc::new(start().await);
    let refresh = server.browser_login("alice").await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (server, refresh) = (server.clone(), refresh.clone());
        racers.spawn(async move { server.refresh_cookie(&refresh).await });
    }
    let mut successors = Vec::new();
    while let Some(response) = racers.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            !set_cookies(&response)
                .iter()
                .any(|c| c.contains("Max-Age=0")),
            "no racer deletes a cookie: {:?}",
            set_cookies(&response)
        );
        successors.push(cookie_value(&set_cookies(&response), app::REFRESH_COOKIE).unwrap());
    }
    assert_eq!(successors.len(), 16);
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "{successors:?}"
    );
    assert_ne!(successors[0], refresh);
    // The successor works: the family was rotated once, not branched.
    let next = server.refresh_cookie(&successors[0]).await;
    assert_eq!(next.status(), StatusCode::OK);
}

/// A replay after the grace window is reuse: `400 invalid_grant`, the cookie deleted, and the
/// family dead (the legitimate successor stops working too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_outside_the_grace_window_deletes_the_cookie() {
    let server = start().await;
    let refresh = server.browser_login("alice").await;
    let next = server.refresh_cookie(&refresh).await;
    assert_eq!(next.status(), StatusCode::OK);
    let successor = cookie_value(&set_cookies(&next), app::REFRESH_COOKIE).unwrap();
    server.clock.advance(31);
    let replay = server.refresh_cookie(&refresh).await;
    assert!(
        deletes_refresh_cookie(&replay),
        "{:?}",
        set_cookies(&replay)
    );
    assert_invalid_grant(replay, true).await;
    assert_invalid_grant(server.refresh_cookie(&successor).await, true).await;
}

/// The store is down: `503 temporarily_unavailable`, no `Set-Cookie` at all (the cookie is
/// kept), nothing internal in the body; once it is back the same cookie works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_503_and_keeps_the_cookie() {
    let server = start().await;
    let refresh = server.browser_login("alice").await;
    let pair = server.mobile_login("bob").await;
    server.store.set_down(true);
    for response in [
        server.refresh_cookie(&refresh).await,
        server.refresh_body(&s(&pair, "refresh_token")).await,
    ] {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            set_cookies(&response).is_empty(),
            "{:?}",
            set_cookies(&response)
        );
        let body = response.text().await.unwrap();
        assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
        assert!(!body.contains(UNAVAILABLE_DETAIL));
    }
    let response = server.me(&s(&pair, "access_token")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.store.set_down(false);
    assert_eq!(
        server.refresh_cookie(&refresh).await.status(),
        StatusCode::OK
    );
}

/// A refresh token that came in the body goes back in the body: no `Set-Cookie` at all, on
/// success or on failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_transport_never_sets_a_cookie() {
    let server = start().await;
    let pair = server.mobile_login("alice").await;
    let response = server.refresh_body(&s(&pair, "refresh_token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookies(&response).is_empty(),
        "{:?}",
        set_cookies(&response)
    );
    assert_eq!(response.headers()["pragma"], "no-cache");
    let next: Value = response.json().await.unwrap();
    for field in ["access_token", "token_type", "expires_in", "refresh_token"] {
        assert!(next.get(field).is_some(), "RFC 6749 §5.1 {field}: {next}");
    }
    server.clock.advance(31);
    let replay = server.refresh_body(&s(&pair, "refresh_token")).await;
    assert!(set_cookies(&replay).is_empty());
    assert_invalid_grant(replay, false).await;
}

/// Oversized, malformed or ambiguous refresh requests: `400 invalid_request`, no cookie
/// touched, and the server lives on (the token is still good afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_malformed_refresh_bodies_are_invalid_request() {
    let server = start().await;
    let pair = server.mobile_login("alice").await;
    let token = s(&pair, "refresh_token");
    let oversized = format!(
        r#"{{"refresh_token":"{token}","pad":"{}"}}"#,
        "x".repeat(4096)
    );
    let bodies: Vec<Vec<u8>> = vec![
        oversized.into_bytes(),
        // Nested past serde_json's depth limit, but under the 4 KiB cap: a body far over the
        // cap is refused before it is read, and the client can then meet a closed connection
        // while still writing (seen: a broken pipe instead of the 400).
        vec![b'['; 4000],
        b"{\"refresh_token\":".to_vec(),
        b"{\"refresh_token\":17}".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        b"refresh_token=abc".to_vec(),
    ];
    for body in bodies {
        let response = server.refresh_raw(body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(set_cookies(&response).is_empty());
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": "invalid_request" })
        );
    }
    // Both a cookie and a body token: which one is meant is unknown.
    let response = server
        .http
        .post(format!("{}/refresh", server.base))
        .header(COOKIE, format!("{}={token}", app::REFRESH_COOKIE))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(
        server.refresh_body(&token).await.status(),
        StatusCode::OK,
        "nothing above consumed the token"
    );
}
