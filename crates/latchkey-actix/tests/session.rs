//! The session middleware and extractor through a real actix-web `App` (in-process,
//! `test::init_service`).

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use latchkey_actix::{Session, SessionMiddleware, SessionRejection};
use latchkey_session::{CookieKey, MemoryStore, SessionManager, SessionStore};
use latchkey_testkit::{FaultyStore, UNAVAILABLE_DETAIL};

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

async fn me(session: Session) -> Result<HttpResponse, SessionRejection> {
    Ok(match session.user_id().await? {
        Some(user) => HttpResponse::Ok().body(user),
        None => HttpResponse::Unauthorized().finish(),
    })
}

async fn login(session: Session) -> Result<String, SessionRejection> {
    session.login("alice").await?;
    Ok(session.csrf_token().await?)
}

/// Writes to the session, then fails: nothing of it may be stored.
async fn write_then_fail(session: Session) -> Result<HttpResponse, SessionRejection> {
    session.insert("name", "mallory").await?;
    session.login("mallory").await?;
    Ok(HttpResponse::InternalServerError().finish())
}

/// Logs out, then fails: the logout still happens.
async fn logout_then_fail(session: Session) -> HttpResponse {
    session.logout();
    HttpResponse::InternalServerError().finish()
}

fn manager(store: Arc<Switchable>) -> SessionManager {
    SessionManager::builder(store, CookieKey::from_secret(&[9; 32]).expect("key"))
        .build()
        .expect("manager")
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/health", web::get().to(health))
        .route("/read", web::get().to(read))
        .route("/write", web::post().to(write))
        .route("/me", web::get().to(me))
        .route("/wrong-type", web::get().to(wrong_type))
        .route("/login", web::post().to(login))
        .route("/write-then-fail", web::post().to(write_then_fail))
        .route("/logout-then-fail", web::post().to(logout_then_fail));
}

/// An initialised app with `SessionMiddleware::new(manager)` passed through `$configure`, and
/// its store.
macro_rules! app_with {
    ($configure:expr) => {{
        let store = Arc::new(FaultyStore::new(MemoryStore::new()));
        let middleware = $configure(SessionMiddleware::new(manager(store.clone())));
        let app = test::init_service(App::new().wrap(middleware).configure(routes)).await;
        (app, store)
    }};
}

macro_rules! app {
    () => {
        app_with!(|middleware| middleware)
    };
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

async fn send<S, R, B>(app: &S, request: R) -> Reply
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, request).await;
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = test::read_body(response).await;
    Reply {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).expect("utf-8"),
    }
}

fn request(method: &str, path: &str, cookie: Option<&str>) -> TestRequest {
    let builder = match method {
        "GET" => TestRequest::get(),
        "POST" => TestRequest::post(),
        other => panic!("no {other} in these tests"),
    };
    let builder = builder
        .uri(path)
        .insert_header((header::HOST, "127.0.0.1:3000"));
    match cookie {
        Some(cookie) => builder.insert_header((header::COOKIE, cookie)),
        None => builder,
    }
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

async fn count(store: &Switchable) -> u64 {
    store.inner().count().await.expect("count")
}

#[actix_web::test]
async fn routes_that_never_write_store_nothing_and_send_no_cookie() {
    let (app, store) = app!();
    for _ in 0..20 {
        for (path, want) in [
            ("/health", StatusCode::OK),
            ("/read", StatusCode::OK),
            ("/me", StatusCode::UNAUTHORIZED),
        ] {
            let reply = send(&app, request("GET", path, None).to_request()).await;
            assert_eq!(reply.status, want, "{path}");
            assert!(reply.set_cookie.is_none(), "{path}");
        }
    }
    assert_eq!(count(&store).await, 0);
}

#[actix_web::test]
async fn health_never_touches_the_store_even_when_it_is_down() {
    let (app, store) = app!();
    let written = send(&app, request("POST", "/write", None).to_request()).await;
    let cookie = cookie_pair(written.set_cookie.as_deref().expect("cookie"));
    let calls = store.calls();
    store.set_down(true);
    let reply = send(&app, request("GET", "/health", Some(&cookie)).to_request()).await;
    assert_eq!((reply.status, reply.set_cookie), (StatusCode::OK, None));
    assert_eq!(
        store.calls(),
        calls,
        "no store call for a route without Session"
    );
}

#[actix_web::test]
async fn a_written_session_comes_back_with_its_cookie() {
    let (app, store) = app!();
    let reply = send(&app, request("POST", "/write", None).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let set_cookie = reply.set_cookie.expect("a cookie for a written session");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert_eq!(count(&store).await, 1);
    let reply = send(
        &app,
        request("GET", "/read", Some(&cookie_pair(&set_cookie))).to_request(),
    )
    .await;
    assert_eq!(reply.body, "alice");
    assert!(
        reply.set_cookie.is_none(),
        "a read-only request sends no cookie"
    );
}

#[actix_web::test]
async fn split_cookie_headers_are_joined() {
    let (app, _store) = app!();
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let real = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let split = request("GET", "/me", None)
        .append_header((header::COOKIE, "theme=dark"))
        .append_header((header::COOKIE, real.as_str()))
        .to_request();
    let reply = send(&app, split).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

#[actix_web::test]
async fn forged_garbage_and_huge_cookies_are_no_session() {
    let (app, _store) = app!();
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let real = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let cases = latchkey_testkit::adapter::garbage_cookies(&real);
    for cookie in &cases {
        for (path, want) in [("/me", StatusCode::UNAUTHORIZED), ("/read", StatusCode::OK)] {
            let reply = send(&app, request("GET", path, Some(cookie)).to_request()).await;
            assert_eq!(reply.status, want, "{path} {cookie:.60}");
            assert!(reply.set_cookie.is_none());
        }
    }
    let reply = send(&app, request("GET", "/me", Some(&real)).to_request()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

#[actix_web::test]
async fn foreign_origins_are_refused_before_the_handler() {
    let (app, store) = app!();
    for (origin, want) in [
        ("https://evil.example", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:3000", StatusCode::OK),
    ] {
        let req = request("POST", "/write", None).insert_header((header::ORIGIN, origin));
        let reply = send(&app, req.to_request()).await;
        assert_eq!(reply.status, want, "{origin}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(reply.body, r#"{"error":"forbidden"}"#);
            assert!(reply.set_cookie.is_none());
        }
    }
    assert_eq!(
        count(&store).await,
        1,
        "only the allowed request stored a session"
    );
    let req = request("POST", "/write", None)
        .insert_header((header::REFERER, "https://evil.example/page"));
    assert_eq!(
        send(&app, req.to_request()).await.status,
        StatusCode::FORBIDDEN
    );
    // Forwarded headers are the client's word, not the request's own host.
    let req = request("POST", "/write", None)
        .insert_header((header::ORIGIN, "https://evil.example"))
        .insert_header(("x-forwarded-host", "evil.example"))
        .insert_header((header::FORWARDED, "host=evil.example;proto=https"));
    assert_eq!(
        send(&app, req.to_request()).await.status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn allowed_origins_and_a_disabled_check() {
    let (app, _store) = app_with!(|m: SessionMiddleware| m
        .with_allowed_origin("https://app.example.com")
        .expect("valid origin"));
    let req =
        request("POST", "/write", None).insert_header((header::ORIGIN, "https://app.example.com"));
    assert_eq!(send(&app, req.to_request()).await.status, StatusCode::OK);

    let (app, _store) = app_with!(|m: SessionMiddleware| m.with_origin_policy(None));
    let req =
        request("POST", "/write", None).insert_header((header::ORIGIN, "https://evil.example"));
    assert_eq!(send(&app, req.to_request()).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn cross_site_fetches_without_origin_are_refused() {
    let (app, _store) = app!();
    for (fetch_site, want) in [
        ("cross-site", StatusCode::FORBIDDEN),
        ("same-site", StatusCode::OK),
        ("same-origin", StatusCode::OK),
    ] {
        let req = request("POST", "/write", None).insert_header(("sec-fetch-site", fetch_site));
        let reply = send(&app, req.to_request()).await;
        assert_eq!(reply.status, want, "{fetch_site}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(reply.body, r#"{"error":"forbidden"}"#);
            assert!(reply.set_cookie.is_none());
        }
    }
}

#[test]
fn an_allowed_origin_without_a_scheme_is_a_configuration_error() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let error = SessionMiddleware::new(manager(store))
        .with_allowed_origin("app.example.com")
        .expect_err("no scheme");
    assert_eq!(error.origin(), "app.example.com");
}

#[actix_web::test]
async fn the_synchronizer_token_is_required_once_the_session_has_one() {
    let (app, _store) = app!();
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body.clone();
    assert!(token.len() >= 43, "256-bit token");
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));

    let reply = send(&app, request("POST", "/write", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, r#"{"error":"forbidden"}"#);

    let wrong = request("POST", "/write", Some(&cookie))
        .insert_header(("x-csrf-token", "A".repeat(token.len())));
    assert_eq!(
        send(&app, wrong.to_request()).await.status,
        StatusCode::FORBIDDEN
    );

    let right =
        request("POST", "/write", Some(&cookie)).insert_header(("x-csrf-token", token.as_str()));
    let reply = send(&app, right.to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, token, "the token is stable for the session");

    let reply = send(&app, request("GET", "/me", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK, "safe methods never need it");

    let (app, _store) = app_with!(|m: SessionMiddleware| m.with_csrf_token(false));
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let reply = send(&app, request("POST", "/write", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK, "token check off");

    // A renamed header is the one read.
    let (app, _store) =
        app_with!(|m: SessionMiddleware| m
            .with_csrf_header(header::HeaderName::from_static("x-xsrf-token")));
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let token = login.body.clone();
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let old_name =
        request("POST", "/write", Some(&cookie)).insert_header(("x-csrf-token", token.as_str()));
    assert_eq!(
        send(&app, old_name.to_request()).await.status,
        StatusCode::FORBIDDEN
    );
    let new_name =
        request("POST", "/write", Some(&cookie)).insert_header(("x-xsrf-token", token.as_str()));
    assert_eq!(
        send(&app, new_name.to_request()).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn store_unavailable_is_an_opaque_503_and_recovers() {
    let (app, store) = app!();
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    store.set_down(true);
    for req in [
        request("GET", "/me", Some(&cookie)),
        request("GET", "/read", Some(&cookie)),
        // Fails when `finish` creates the session, after the handler.
        request("POST", "/login", None),
        // The CSRF token check reads the session first: a store failure there is a 503, not a 403.
        request("POST", "/write", Some(&cookie)),
    ] {
        let reply = send(&app, req.to_request()).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body, r#"{"error":"service_unavailable"}"#);
        assert!(!reply.body.contains(UNAVAILABLE_DETAIL));
        assert!(reply.set_cookie.is_none());
    }
    store.set_down(false);
    let reply = send(&app, request("GET", "/me", Some(&cookie)).to_request()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

#[actix_web::test]
async fn a_server_error_stores_no_session_change_but_a_logout_still_happens() {
    let (app, store) = app!();
    let reply = send(&app, request("POST", "/write-then-fail", None).to_request()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookie.is_none());
    assert_eq!(count(&store).await, 0, "no session created by a 5xx");

    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let token = login.body.clone();
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let with_token = |path| {
        request("POST", path, Some(&cookie))
            .insert_header(("x-csrf-token", token.as_str()))
            .to_request()
    };
    let reply = send(&app, with_token("/write-then-fail")).await;
    assert_eq!(
        (reply.status, reply.set_cookie),
        (StatusCode::INTERNAL_SERVER_ERROR, None)
    );
    let reply = send(&app, request("GET", "/me", Some(&cookie)).to_request()).await;
    assert_eq!(
        reply.body, "alice",
        "the failed request's login was not stored"
    );
    let reply = send(&app, request("GET", "/read", Some(&cookie)).to_request()).await;
    assert_eq!(reply.body, "", "nor its data");

    let reply = send(&app, with_token("/logout-then-fail")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let removal = reply.set_cookie.expect("a removal cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(count(&store).await, 0);
    let reply = send(&app, request("GET", "/me", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn other_session_errors_are_an_opaque_500() {
    let (app, _store) = app!();
    let written = send(&app, request("POST", "/write", None).to_request()).await;
    let cookie = cookie_pair(written.set_cookie.as_deref().expect("cookie"));
    // "name" holds a string; reading it as a number is a data error inside the handler.
    let reply = send(
        &app,
        request("GET", "/wrong-type", Some(&cookie)).to_request(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, r#"{"error":"internal_error"}"#);
    assert!(reply.set_cookie.is_none());
}

#[actix_web::test]
async fn without_the_middleware_the_extractor_is_an_opaque_500() {
    let app = test::init_service(App::new().route("/read", web::get().to(read))).await;
    let reply = send(&app, request("GET", "/read", None).to_request()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, r#"{"error":"internal_error"}"#);
}

#[actix_web::test]
async fn the_session_header_transport_works_without_cookies() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let manager = SessionManager::builder(
        store.clone(),
        CookieKey::from_secret(&[9; 32]).expect("key"),
    )
    .session_header("x-session")
    .build()
    .expect("manager");
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(manager).with_csrf_token(false))
            .configure(routes),
    )
    .await;
    let response = test::call_service(
        &app,
        request("POST", "/login", None)
            .insert_header(("x-session", ""))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let token = response
        .headers()
        .get("x-session")
        .expect("the session header")
        .to_str()
        .expect("ascii")
        .to_owned();
    let reply = send(
        &app,
        request("GET", "/me", None)
            .insert_header(("x-session", token.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

async fn debug(session: Session) -> String {
    format!("{session:?}")
}

#[actix_web::test]
async fn debug_output_shows_no_session_id_or_key() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let middleware = SessionMiddleware::new(manager(store));
    let app = test::init_service(
        App::new()
            .wrap(middleware.clone())
            .configure(routes)
            .route("/debug", web::get().to(debug)),
    )
    .await;
    let login = send(&app, request("POST", "/login", None).to_request()).await;
    let cookie = cookie_pair(login.set_cookie.as_deref().expect("cookie"));
    let (_, value) = cookie.split_once('=').expect("pair");
    let id = value.split('.').next().expect("id part");
    let reply = send(&app, request("GET", "/debug", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains(id), "{}", reply.body);
    let config = format!("{middleware:?}");
    assert!(!config.contains("[9, 9, 9"), "{config}");
}
