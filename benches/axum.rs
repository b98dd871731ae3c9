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
//! After the criterion benchmarks, the same four requests are also measured interleaved (see
//! `interleaved`), which gives ratios that survive a machine whose speed drifts.
//!
//! Run: `cargo bench -p latchkey-benches --bench axum -- --warm-up-time 1 --measurement-time 3`
//! (only the interleaved pass: `cargo bench -p latchkey-benches --bench axum -- interleaved`;
//! `LATCHKEY_ROUNDS=4` shortens it to 4 rounds, for instruction counts under callgrind)

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use criterion::{criterion_group, Criterion};
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

/// The four routers, each finalised, plus the credentials their requests carry; checked once.
struct Setup {
    rt: Runtime,
    bare_router: Router,
    latchkey_router: Router,
    tower_router: Router,
    bearer_router: Router,
    latchkey_cookie: String,
    tower_cookie: String,
    authorization: String,
}

impl Setup {
    /// The request of variant `i` (0 `bare`, 1 latchkey, 2 tower-sessions, 3 bearer), through
    /// its router, exactly as the criterion loop sends it.
    async fn call_variant(&self, i: usize) -> StatusCode {
        match i {
            0 => call(&self.bare_router, request(None)).await,
            1 => {
                call(
                    &self.latchkey_router,
                    request(Some((header::COOKIE, black_box(&self.latchkey_cookie)))),
                )
                .await
            }
            2 => {
                call(
                    &self.tower_router,
                    request(Some((header::COOKIE, black_box(&self.tower_cookie)))),
                )
                .await
            }
            _ => {
                call(
                    &self.bearer_router,
                    request(Some((
                        header::AUTHORIZATION,
                        black_box(&self.authorization),
                    ))),
                )
                .await
            }
        }
    }
}

fn setup() -> Setup {
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

    Setup {
        rt,
        bare_router,
        latchkey_router,
        tower_router,
        bearer_router,
        latchkey_cookie,
        tower_cookie,
        authorization,
    }
}

/// Criterion's names for the variants of [`Setup::call_variant`], in its order.
const VARIANTS: [&str; 4] = [
    "bare",
    "latchkey_session_read",
    "tower_sessions_read",
    "bearer_jwt",
];

fn adapter(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("axum_request");
    for (i, name) in VARIANTS.iter().enumerate() {
        group.bench_function(*name, |b| {
            b.to_async(&s.rt)
                .iter(|| async { black_box(s.call_variant(i).await) });
        });
    }
    group.finish();
}

/// The same four requests interleaved (see [`latchkey_benches::interleaved`]): 300 rounds of
/// 1,000 requests per variant, ratios to latchkey's read, differences to `bare`.
fn interleaved() {
    let s = setup();
    let run = |i: usize| {
        let s = &s;
        move |n: u32| {
            s.rt.block_on(async {
                for _ in 0..n {
                    black_box(s.call_variant(i).await);
                }
            });
        }
    };
    let (mut v0, mut v1, mut v2, mut v3) = (run(0), run(1), run(2), run(3));
    latchkey_benches::interleaved(
        "axum_request",
        &mut [
            (VARIANTS[0], &mut v0),
            (VARIANTS[1], &mut v1),
            (VARIANTS[2], &mut v2),
            (VARIANTS[3], &mut v3),
        ],
        &[1],
        Some(0),
        std::env::var("LATCHKEY_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(300),
        1_000,
    );
}

criterion_group!(benches, adapter);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if latchkey_benches::interleaved_wanted() {
        interleaved();
    }
}
