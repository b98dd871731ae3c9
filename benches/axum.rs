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
//! (only the interleaved pass: `cargo bench -p latchkey-benches --bench axum -- interleaved`)

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

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

/// Requests per variant in one round of the interleaved comparison (a few milliseconds).
const ROUND: u32 = 1_000;
/// Rounds of the interleaved comparison.
const ROUNDS: usize = 300;

/// The same four variants measured interleaved: every round times [`ROUND`] requests of each,
/// in an order that rotates from round to round, and the ratio to latchkey's time is taken per
/// round. On a machine whose speed drifts over seconds (shared or throttled cores), criterion's
/// one-variant-after-the-other medians can move apart by more than the effect measured; the
/// median of same-round ratios cannot, because both sides of every ratio ran within a few
/// milliseconds of each other.
fn interleaved() {
    let s = setup();
    let mut per_request = vec![Vec::with_capacity(ROUNDS); VARIANTS.len()];
    s.rt.block_on(async {
        for round in 0..ROUNDS {
            for k in 0..VARIANTS.len() {
                let i = (round + k) % VARIANTS.len();
                let start = Instant::now();
                for _ in 0..ROUND {
                    black_box(s.call_variant(i).await);
                }
                per_request[i].push(start.elapsed().as_secs_f64() * 1e9 / f64::from(ROUND));
            }
        }
    });
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
    };
    let (bare, latchkey) = (&per_request[0], &per_request[1]);
    println!("axum_request interleaved: {ROUNDS} rounds of {ROUND} requests per variant (medians over rounds)");
    for (i, name) in VARIANTS.iter().enumerate() {
        let (_, ns, _) = median(per_request[i].clone());
        let above_bare = median(
            per_request[i]
                .iter()
                .zip(bare)
                .map(|(x, b)| x - b)
                .collect(),
        )
        .1;
        let ratios = per_request[i]
            .iter()
            .zip(latchkey)
            .map(|(x, l)| x / l)
            .collect();
        let (q1, r, q3) = median(ratios);
        println!(
            "  {name:<22} {ns:>7.1} ns/request, {above_bare:>7.1} ns above bare; \
             / latchkey_session_read in the same round: {r:.3}x (quartiles {q1:.3}-{q3:.3})"
        );
    }
}

criterion_group!(benches, adapter);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes `--bench`), not when listing, and with no filter
    // or the filter `interleaved` (which matches no criterion benchmark, so runs this alone).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err());
    let wanted = filters.all(|f| f == "interleaved");
    if wanted && args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        interleaved();
    }
}
