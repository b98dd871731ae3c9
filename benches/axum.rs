//! Per-request cost of the axum adapter, in process (`tower::ServiceExt::oneshot` on a `Router`,
//! no sockets), all in the same run:
//!
//! - `bare`: a handler that returns a string, no layer;
//! - `latchkey_session_read`: the same handler reading one key of an existing session through
//!   latchkey-axum's `SessionLayer` + `Session` extractor on latchkey's `MemoryStore` (signed
//!   cookie verified, record loaded, nothing written back, no `Set-Cookie`);
//! - `tower_sessions_read`: the same through `tower-sessions` 0.15's `SessionManagerLayer` and its
//!   `MemoryStore`;
//! - `bearer_jwt`: a handler taking latchkey-axum's `Bearer` extractor (HS256 verify with
//!   audience and expiry checks).
//!
//! Every variant builds its request the same way inside the timed loop, so the differences are
//! what each layer and extractor cost.
//!
//! Run: `cargo bench -p latchkey-benches --bench axum -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use latchkey::jwt::{Algorithm, Claims, HmacKey, Signer, Validation, Verifier};
use latchkey::session::{CookieKey, MemoryStore, SessionManager};
use latchkey_axum::{Bearer, Session, SessionLayer};
use tokio::runtime::Runtime;
use tower::ServiceExt;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn request(cookie_or_auth: Option<(header::HeaderName, &str)>) -> Request<Body> {
    let mut builder = Request::get("/").header(header::HOST, "127.0.0.1:3000");
    if let Some((name, value)) = cookie_or_auth {
        builder = builder.header(name, value);
    }
    builder.body(Body::empty()).expect("request")
}

async fn call(router: &Router, request: Request<Body>) -> StatusCode {
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

async fn bare() -> &'static str {
    "alice"
}

async fn latchkey_read(session: Session) -> String {
    session
        .get::<String>("name")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn latchkey_write(session: Session) -> &'static str {
    let _ = session.insert("name", "alice").await;
    "ok"
}

async fn tower_read(Extension(session): Extension<tower_sessions::Session>) -> String {
    session
        .get::<String>("name")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn tower_write(Extension(session): Extension<tower_sessions::Session>) -> &'static str {
    let _ = session.insert("name", "alice").await;
    "ok"
}

async fn bearer(Bearer(claims): Bearer) -> String {
    claims.sub.unwrap_or_default()
}

/// `name=value` of the `Set-Cookie` that a write request gets.
async fn session_cookie(router: &Router) -> String {
    let response = router
        .clone()
        .oneshot(
            Request::post("/")
                .header(header::HOST, "127.0.0.1:3000")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("ascii");
    set_cookie.split(';').next().expect("pair").to_owned()
}

fn adapter(c: &mut Criterion) {
    let rt = runtime();

    // `.with_state(())` finalises each router the way `axum::serve` does once at start-up;
    // without it axum rebuilds every layered route on every call, a cost no server pays.
    let bare_router = Router::new().route("/", get(bare)).with_state(());

    let manager = SessionManager::builder(
        Arc::new(MemoryStore::new()),
        CookieKey::from_secret(&[7; 32]).expect("key"),
    )
    .secure(false)
    .build()
    .expect("manager");
    let latchkey_router = Router::new()
        .route("/", get(latchkey_read).post(latchkey_write))
        .layer(SessionLayer::new(manager))
        .with_state(());

    let tower_router = Router::new()
        .route("/", get(tower_read).post(tower_write))
        .layer(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false),
        )
        .with_state(());

    let key = HmacKey::from_secret(Algorithm::HS256, &[9; 32]).expect("key");
    let token = Signer::new(key.clone())
        .sign(&Claims {
            sub: Some("alice".into()),
            aud: Some("api".into()),
            exp: Some(4_000_000_000),
            ..Claims::new(())
        })
        .expect("token");
    let verifier = Arc::new(Verifier::new(
        key,
        Validation::builder()
            .audience("api")
            .build()
            .expect("validation"),
    ));
    let bearer_router = Router::new().route("/", get(bearer)).with_state(verifier);
    let authorization = format!("Bearer {token}");

    let (latchkey_cookie, tower_cookie) = rt.block_on(async {
        (
            session_cookie(&latchkey_router).await,
            session_cookie(&tower_router).await,
        )
    });
    // Sanity: every variant answers 200 and the session reads see the stored value.
    rt.block_on(async {
        assert_eq!(call(&bare_router, request(None)).await, StatusCode::OK);
        for (router, cookie) in [
            (&latchkey_router, &latchkey_cookie),
            (&tower_router, &tower_cookie),
        ] {
            let response = router
                .clone()
                .oneshot(request(Some((header::COOKIE, cookie))))
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            assert!(
                response.headers().get(header::SET_COOKIE).is_none(),
                "a read writes nothing"
            );
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .expect("body");
            assert_eq!(&body[..], b"alice");
        }
        assert_eq!(
            call(
                &bearer_router,
                request(Some((header::AUTHORIZATION, &authorization)))
            )
            .await,
            StatusCode::OK
        );
    });

    let mut group = c.benchmark_group("axum_request");
    group.bench_function("bare", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(call(&bare_router, request(None)).await) });
    });
    group.bench_function("latchkey_session_read", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                call(
                    &latchkey_router,
                    request(Some((header::COOKIE, black_box(&latchkey_cookie)))),
                )
                .await,
            )
        });
    });
    group.bench_function("tower_sessions_read", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                call(
                    &tower_router,
                    request(Some((header::COOKIE, black_box(&tower_cookie)))),
                )
                .await,
            )
        });
    });
    group.bench_function("bearer_jwt", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                call(
                    &bearer_router,
                    request(Some((header::AUTHORIZATION, black_box(&authorization)))),
                )
                .await,
            )
        });
    });
    group.finish();
}

criterion_group!(benches, adapter);
criterion_main!(benches);
