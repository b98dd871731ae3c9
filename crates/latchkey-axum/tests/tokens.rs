//! The token extractors and responses end to end through an axum `Router` (in-process,
//! `oneshot`): every rejection, both transports, and the refresh-cookie rule.
#![cfg(feature = "tokens")]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use latchkey_axum::tokens::{Access, RefreshFailure, RefreshGrant, TokenResponse};
use latchkey_testkit::tokens::{service, ManualClock, START};
use latchkey_testkit::{FaultyTokenStore, UNAVAILABLE_DETAIL};
use latchkey_tokens::transport::{TokenTransport, Via, MAX_REFRESH_BODY};
use latchkey_tokens::{MemoryTokenStore, TokenPair, TokenService};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Clone)]
struct AppState {
    tokens: TokenService,
    transport: TokenTransport,
}

impl FromRef<AppState> for TokenService {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for TokenTransport {
    fn from_ref(state: &AppState) -> Self {
        state.transport.clone()
    }
}

async fn me(Access(access): Access) -> String {
    access.subject().to_owned()
}

async fn maybe(access: Option<Access>) -> String {
    access.map_or_else(
        || "anonymous".to_owned(),
        |Access(a)| a.subject().to_owned(),
    )
}

async fn refresh(
    State(tokens): State<TokenService>,
    grant: RefreshGrant,
) -> Result<TokenResponse, RefreshFailure> {
    grant.refresh(&tokens).await
}

struct Fixture {
    app: Router,
    tokens: TokenService,
    store: Arc<FaultyTokenStore>,
    clock: ManualClock,
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
    let app = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/refresh", post(refresh))
        .with_state(AppState {
            tokens: tokens.clone(),
            transport,
        });
    Fixture {
        app,
        tokens,
        store,
        clock,
    }
}

impl Fixture {
    async fn pair(&self) -> TokenPair {
        self.tokens.issue("alice", &json!({})).await.unwrap()
    }

    async fn send(&self, request: Request<Body>) -> Response {
        self.app.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, path: &str, header: Option<(header::HeaderName, String)>) -> Response {
        let mut request = Request::get(path);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn refresh(&self, cookie: Option<&str>, body: impl Into<Body>) -> Response {
        let mut request =
            Request::post("/refresh").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = cookie {
            request = request.header(header::COOKIE, format!("refresh_token={token}"));
        }
        self.send(request.body(body.into()).unwrap()).await
    }
}

fn bearer(token: &str) -> Option<(header::HeaderName, String)> {
    Some((header::AUTHORIZATION, format!("Bearer {token}")))
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_body(response: Response) -> Value {
    serde_json::from_str(&text(response).await).unwrap()
}

#[tokio::test]
async fn access_from_bearer_or_cookie() {
    let f = fixture();
    let pair = f.pair().await;
    let response = f.get("/me", bearer(pair.access_token())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "alice");
    let cookie = Some((
        header::COOKIE,
        format!("access_token={}", pair.access_token()),
    ));
    let response = f.get("/me", cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "alice");
}

#[tokio::test]
async fn every_access_rejection() {
    let f = fixture();
    let pair = f.pair().await;

    let response = f.get("/me", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");

    for value in [
        "Bearer".to_owned(),
        "Bearer a b".to_owned(),
        format!("Bearer {}", pair.refresh_token()),
    ] {
        let response = f
            .get("/me", Some((header::AUTHORIZATION, value.clone())))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(text(response).await, r#"{"error":"invalid_token"}"#);
    }

    f.tokens.revoke_family(&pair.family()).await.unwrap();
    let response = f.get("/me", bearer(pair.access_token())).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "revoked");

    let live = f.pair().await;
    f.store.set_down(true);
    let response = f.get("/me", bearer(live.access_token())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = text(response).await;
    assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
    assert!(!body.contains(UNAVAILABLE_DETAIL));
}

#[tokio::test]
async fn optional_access_is_none_without_a_token_and_refuses_a_bad_one() {
    let f = fixture();
    let pair = f.pair().await;
    assert_eq!(text(f.get("/maybe", None).await).await, "anonymous");
    assert_eq!(
        text(f.get("/maybe", bearer(pair.access_token())).await).await,
        "alice"
    );
    let response = f.get("/maybe", bearer("x.y.z")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_by_cookie_answers_by_cookie_and_by_body_without_any() {
    let f = fixture();
    let pair = f.pair().await;
    let response = f.refresh(Some(pair.refresh_token()), Body::empty()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[header::PRAGMA], "no-cache");
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("refresh_token=") && !cookies[0].contains("Max-Age=0"));
    let body = json_body(response).await;
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");

    let pair = f.pair().await;
    let request = json!({ "refresh_token": pair.refresh_token() }).to_string();
    let response = f.refresh(None, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookies(&response).is_empty(),
        "{:?}",
        set_cookies(&response)
    );
    let body = json_body(response).await;
    assert_eq!(body["expires_in"], 900);
    assert_ne!(
        body["refresh_token"].as_str().unwrap(),
        pair.refresh_token()
    );
}

#[tokio::test]
async fn malformed_refresh_requests_are_invalid_request_and_touch_no_cookie() {
    let f = fixture();
    let pair = f.pair().await;
    let oversized = format!(
        r#"{{"refresh_token":"{}","pad":"{}"}}"#,
        pair.refresh_token(),
        "x".repeat(MAX_REFRESH_BODY)
    );
    let both = json!({ "refresh_token": pair.refresh_token() }).to_string();
    for (cookie, body) in [
        (None, String::new()),
        (None, oversized.clone()),
        (Some(pair.refresh_token()), oversized),
        (None, "{\"refresh_token\":".to_owned()),
        (None, "[1,2]".to_owned()),
        (Some(pair.refresh_token()), both),
    ] {
        let response = f.refresh(cookie, body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:.40}");
        assert!(set_cookies(&response).is_empty());
        assert_eq!(
            json_body(response).await,
            json!({ "error": "invalid_request" })
        );
    }
    // None of that consumed the token.
    let response = f.refresh(Some(pair.refresh_token()), Body::empty()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn dead_cookie_is_deleted_but_an_outage_keeps_it() {
    let f = fixture();
    let pair = f.pair().await;
    let next = f.refresh(Some(pair.refresh_token()), Body::empty()).await;
    assert_eq!(next.status(), StatusCode::OK);

    f.store.set_down(true);
    let response = f.refresh(Some(pair.refresh_token()), Body::empty()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookies(&response).is_empty(), "the cookie is kept");
    assert_eq!(
        json_body(response).await,
        json!({ "error": "temporarily_unavailable" })
    );
    f.store.set_down(false);

    // Replayed outside the grace window: reuse, the family dies, the cookie is deleted.
    f.clock.advance(31);
    let response = f.refresh(Some(pair.refresh_token()), Body::empty()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let cookies = set_cookies(&response);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    assert_eq!(
        json_body(response).await,
        json!({ "error": "invalid_grant" })
    );

    // The same dead token in the body: invalid_grant, no cookie at all.
    let request = json!({ "refresh_token": pair.refresh_token() }).to_string();
    let response = f.refresh(None, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn token_response_for_a_login_by_body() {
    let f = fixture();
    let pair = f.pair().await;
    let transport = TokenTransport::default();
    let response = axum::response::IntoResponse::into_response(TokenResponse::new(
        &transport,
        &pair,
        Via::Body,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["refresh_token"], pair.refresh_token());
}
