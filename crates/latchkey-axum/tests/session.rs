//! The session layer and extractor through a real axum `Router` (in-process, `oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use latchkey_axum::{Session, SessionLayer, SessionRejection};
use latchkey_session::{CookieKey, MemoryStore, SessionManager, SessionStore};
use latchkey_testkit::FaultyStore;
use tower::ServiceExt;

/// A memory store that can be switched off: every call fails as "unavailable" while down,
/// with an internal-looking detail that must never reach a response.
type Switchable = FaultyStore<MemoryStore>;

async fn health() -> &'static str {
    "ok"
}

async fn read(session: Session) -> Result<String, SessionRejection> {
    Ok(session.get::<String>("name").await?.unwrap_or_default())
}

async fn write(session: Session) -> Result<String, SessionRejection> {
    session.insert("name", "alice").await?;
    Ok(session.csrf_token().await?)
}

async fn wrong_type(session: Session) -> Result<String, SessionRejection> {
    Ok(session.get::<u64>("name").await?.unwrap_or(0).to_string())
}

async fn me(session: Session) -> axum::response::Response {
    match session.user_id().await {
        Ok(Some(user)) => user.into_response(),
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(error) => SessionRejection::from(error).into_response(),
    }
}

async fn login(session: Session) -> Result<String, SessionRejection> {
    session.login("alice").await?;
    Ok(session.csrf_token().await?)
}

struct App {
    router: Router,
    store: Arc<Switchable>,
}

fn app_with(configure: impl FnOnce(SessionLayer) -> SessionLayer) -> App {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let manager = SessionManager::builder(
        store.clone(),
        CookieKey::from_secret(&[9; 32]).expect("key"),
    )
    .build()
    .expect("manager");
    let router = Router::new()
        .route("/health", get(health))
        .route("/read", get(read))
        .route("/write", post(write))
        .route("/me", get(me))
        .route("/wrong-type", get(wrong_type))
        .route("/login", post(login))
        .layer(configure(SessionLayer::new(manager)));
    App { router, store }
}

fn app() -> App {
    app_with(|layer| layer)
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl App {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            set_cookie,
            body: String::from_utf8(body.to_vec()).expect("utf-8"),
        }
    }

    async fn count(&self) -> u64 {
        self.store.inner().count().await.expect("count")
    }
}

fn request(method: &str, path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).expect("request")
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn routes_that_never_write_store_nothing_and_send_no_cookie() {
    let app = app();
    for _ in 0..100 {
        let reply = app.send(request("GET", "/health", None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.set_cookie.is_none());
        let reply = app.send(request("GET", "/read", None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.set_cookie.is_none());
        let reply = app.send(request("GET", "/me", None)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.set_cookie.is_none());
    }
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn health_never_touches_the_store_even_when_it_is_down() {
    let app = app();
    let written = app.send(request("POST", "/write", None)).await;
    let cookie = cookie_pair(written.set_cookie.as_deref().expect("cookie"));
    app.store.set_down(true);
    let reply = app.send(request("GET", "/health", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookie.is_none());
}

#[tokio::test]
async fn a_written_session_comes_back_with_its_cookie() {
    let app = app();
    let reply = app.send(request("POST", "/write", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let set_cookie = reply.set_cookie.expect("a cookie for a written session");
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Lax"));
    assert!(set_cookie.contains("Path=/"));
    assert!(set_cookie.contains("Secure"));
    assert_eq!(app.count().await, 1);
    let reply = app
        .send(request("GET", "/read", Some(&cookie_pair(&set_cookie))))
        .await;
    assert_eq!(reply.body, "alice");
    // A read-only request sends no cookie again.
    assert!(reply.set_cookie.is_none());
}

#[tokio::test]
async fn forged_garbage_and_huge_cookies_are_no_session() {
    let app = app();
    let login = app.send(request("POST", "/login", None)).await;
    let real = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let cases = latchkey_testkit::adapter::garbage_cookies(&real);
    for cookie in &cases {
        for path in ["/me", "/read"] {
            let reply = app.send(request("GET", path, Some(cookie))).await;
            let want = if path == "/me" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            assert_eq!(reply.status, want, "{path} {cookie:.60}");
            assert!(reply.set_cookie.is_none());
        }
    }
    // The real cookie still works.
    let reply = app.send(request("GET", "/me", Some(&real))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

#[tokio::test]
async fn foreign_origins_are_refused_before_the_handler() {
    let app = app();
    for (origin, want) in [
        ("https://evil.example", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:3000", StatusCode::OK),
    ] {
        let mut req = request("POST", "/write", None);
        req.headers_mut()
            .insert(header::ORIGIN, origin.parse().expect("header"));
        let reply = app.send(req).await;
        assert_eq!(reply.status, want, "{origin}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(reply.body, r#"{"error":"forbidden"}"#);
            assert!(reply.set_cookie.is_none());
        }
    }
    // Only the allowed request created a session.
    assert_eq!(app.count().await, 1);
    // A referer is used when there is no origin.
    let mut req = request("POST", "/write", None);
    req.headers_mut().insert(
        header::REFERER,
        "https://evil.example/page".parse().expect("header"),
    );
    assert_eq!(app.send(req).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn allowed_origins_and_a_disabled_check() {
    let app = app_with(|layer| {
        layer
            .with_allowed_origin("https://app.example.com")
            .expect("valid origin")
    });
    let mut req = request("POST", "/write", None);
    req.headers_mut().insert(
        header::ORIGIN,
        "https://app.example.com".parse().expect("header"),
    );
    assert_eq!(app.send(req).await.status, StatusCode::OK);

    let app = app_with(|layer| layer.with_origin_check(None));
    let mut req = request("POST", "/write", None);
    req.headers_mut().insert(
        header::ORIGIN,
        "https://evil.example".parse().expect("header"),
    );
    assert_eq!(app.send(req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_fetches_without_origin_are_refused() {
    let app = app();
    for (fetch_site, want) in [
        ("cross-site", StatusCode::FORBIDDEN),
        ("same-site", StatusCode::OK),
        ("same-origin", StatusCode::OK),
    ] {
        let mut req = request("POST", "/write", None);
        req.headers_mut()
            .insert("sec-fetch-site", fetch_site.parse().expect("header"));
        let reply = app.send(req).await;
        assert_eq!(reply.status, want, "{fetch_site}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(reply.body, r#"{"error":"forbidden"}"#);
            assert!(reply.set_cookie.is_none());
        }
    }
}

#[test]
fn an_allowed_origin_without_a_scheme_is_a_configuration_error() {
    let manager = SessionManager::builder(
        Arc::new(MemoryStore::new()),
        CookieKey::from_secret(&[9; 32]).expect("key"),
    )
    .build()
    .expect("manager");
    let error = SessionLayer::new(manager)
        .with_allowed_origin("app.example.com")
        .expect_err("no scheme");
    assert_eq!(error.origin(), "app.example.com");
}

#[tokio::test]
async fn the_synchronizer_token_is_required_once_the_session_has_one() {
    let app = app();
    let login = app.send(request("POST", "/login", None)).await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body.clone();
    assert!(token.len() >= 43, "256-bit token");
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));

    let reply = app.send(request("POST", "/write", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, r#"{"error":"forbidden"}"#);

    let mut wrong = request("POST", "/write", Some(&cookie));
    wrong.headers_mut().insert(
        "x-csrf-token",
        "A".repeat(token.len()).parse().expect("header"),
    );
    assert_eq!(app.send(wrong).await.status, StatusCode::FORBIDDEN);

    let mut right = request("POST", "/write", Some(&cookie));
    right
        .headers_mut()
        .insert("x-csrf-token", token.parse().expect("header"));
    let reply = app.send(right).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, token, "the token is stable for the session");

    // Safe methods never need it.
    assert_eq!(
        app.send(request("GET", "/me", Some(&cookie))).await.status,
        StatusCode::OK
    );

    // And with the token check off, the header is not needed.
    let app = app_with(|layer| layer.with_csrf_token(false));
    let login = app.send(request("POST", "/login", None)).await;
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    assert_eq!(
        app.send(request("POST", "/write", Some(&cookie)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn store_unavailable_is_an_opaque_503_and_recovers() {
    let app = app();
    let login = app.send(request("POST", "/login", None)).await;
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    app.store.set_down(true);
    for req in [
        request("GET", "/me", Some(&cookie)),
        request("GET", "/read", Some(&cookie)),
        request("POST", "/login", None),
        // The CSRF token check reads the session first: a store failure there is a 503, not a 403.
        request("POST", "/write", Some(&cookie)),
    ] {
        let reply = app.send(req).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body, r#"{"error":"service_unavailable"}"#);
        assert!(reply.set_cookie.is_none());
    }
    app.store.set_down(false);
    let reply = app.send(request("GET", "/me", Some(&cookie))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

#[tokio::test]
async fn other_session_errors_are_an_opaque_500() {
    let app = app();
    let written = app.send(request("POST", "/write", None)).await;
    let cookie = cookie_pair(written.set_cookie.as_deref().expect("cookie"));
    // "name" holds a string; reading it as a number is a data error inside the handler.
    let reply = app.send(request("GET", "/wrong-type", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, r#"{"error":"internal_error"}"#);
    assert!(reply.set_cookie.is_none());
}

#[tokio::test]
async fn without_the_layer_the_extractor_is_an_opaque_500() {
    let router = Router::new().route("/read", get(read));
    let response = router
        .oneshot(request("GET", "/read", None))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], br#"{"error":"internal_error"}"#);
}
