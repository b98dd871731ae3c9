//! Per-request cost of a session read through the actix-web adapter, in process
//! (`actix_web::test::call_service` on an initialised `App`, no sockets), all in the same run:
//!
//! - `bare`: a handler that returns a string, no middleware;
//! - `latchkey_memory_read`: the same handler reading one key of an existing session through
//!   latchkey-actix's `SessionMiddleware` + `Session` extractor on latchkey's `MemoryStore`
//!   (signed cookie verified, record loaded, nothing written back, no `Set-Cookie`);
//! - `actix_session_cookie_read`: the same through `actix-session` 0.11's `SessionMiddleware`
//!   with its `CookieSessionStore` (the whole session state in an encrypted cookie, so no store
//!   at all: the closest it has to an in-process store);
//! - `latchkey_redis_read` / `actix_session_redis_read`: the same two middlewares on Redis —
//!   latchkey-redis's `RedisStore` (deadpool) and actix-session's `RedisSessionStore`
//!   (redis-rs connection manager) — against one private `redis-server` on a free loopback port
//!   (latchkey-testkit; installed when missing, never the shared 6379).
//!
//! Each variant is its own `App` (no routing between them) and builds its request the same way
//! inside the timed loop, so the differences are what each middleware, extractor and store cost.
//!
//! After the criterion benchmarks, the same five requests are measured interleaved (see
//! `latchkey_benches::interleaved`), which gives ratios that survive a machine whose speed
//! drifts.
//!
//! Run: `cargo bench -p latchkey-benches --bench actix -- --warm-up-time 1 --measurement-time 3`
//! (only the interleaved pass: `cargo bench -p latchkey-benches --bench actix -- interleaved`)

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use criterion::async_executor::AsyncExecutor;
use criterion::Criterion;
use latchkey::session::{CookieKey, MemoryStore, SessionManager, SessionStore};
use latchkey_actix::{Session, SessionMiddleware};
use latchkey_redis::{RedisStore, RedisStoreConfig};
use latchkey_testkit::redis::RedisServer;

/// actix-web's runtime (tokio current-thread + `LocalSet`) as a criterion executor.
struct Actix(actix_web::rt::Runtime);

impl AsyncExecutor for &Actix {
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.0.block_on(future)
    }
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

async fn actix_read(session: actix_session::Session) -> String {
    session
        .get::<String>("name")
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn actix_write(session: actix_session::Session) -> &'static str {
    let _ = session.insert("name", "alice");
    "ok"
}

fn latchkey_middleware(store: Arc<dyn SessionStore>) -> SessionMiddleware {
    let manager = SessionManager::builder(store, CookieKey::from_secret(&[7; 32]).expect("key"))
        .secure(false)
        .build()
        .expect("manager");
    SessionMiddleware::new(manager)
}

fn actix_middleware<S: actix_session::storage::SessionStore + 'static>(
    store: S,
) -> actix_session::SessionMiddleware<S> {
    actix_session::SessionMiddleware::builder(store, actix_web::cookie::Key::from(&[7; 64]))
        .cookie_secure(false)
        .build()
}

/// `GET /` with `cookie` (none when empty, for `bare`).
fn get(cookie: &str) -> TestRequest {
    let request = TestRequest::get()
        .uri("/")
        .insert_header((header::HOST, "127.0.0.1:3000"));
    if cookie.is_empty() {
        request
    } else {
        request.insert_header((header::COOKIE, black_box(cookie)))
    }
}

/// An initialised app: `GET /` reads `name`, `POST /` writes it, behind `$middleware`.
macro_rules! session_app {
    ($middleware:expr, $read:ident, $write:ident) => {
        test::init_service(
            App::new().wrap($middleware).service(
                web::resource("/")
                    .route(web::get().to($read))
                    .route(web::post().to($write)),
            ),
        )
    };
}

/// Writes a session through `$app` and returns its cookie as `name=value`, then checks that a
/// read answers `alice` and writes nothing back.
macro_rules! session_cookie {
    ($app:expr) => {{
        let post = TestRequest::post()
            .uri("/")
            .insert_header((header::HOST, "127.0.0.1:3000"));
        let response = test::call_service($app, post.to_request()).await;
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("a session cookie")
            .to_str()
            .expect("ascii");
        let cookie = set_cookie.split(';').next().expect("pair").to_owned();
        let response = test::call_service($app, get(&cookie).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers().get(header::SET_COOKIE).is_none(),
            "a read writes nothing"
        );
        assert_eq!(&test::read_body(response).await[..], b"alice");
        cookie
    }};
}

/// Criterion's names for the variants, in the order of [`run`]'s `call!`.
const VARIANTS: [&str; 5] = [
    "bare",
    "latchkey_memory_read",
    "actix_session_cookie_read",
    "latchkey_redis_read",
    "actix_session_redis_read",
];

fn run(c: &mut Criterion, interleaved: bool) {
    let rt = Actix(actix_web::rt::Runtime::new().expect("runtime"));
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = redis.url();
    let (bare_app, lk_mem, ac_cookie, lk_redis, ac_redis, cookies) = rt.0.block_on(async {
        let bare_app =
            test::init_service(App::new().service(web::resource("/").route(web::get().to(bare))))
                .await;
        let lk_mem = session_app!(
            latchkey_middleware(Arc::new(MemoryStore::new())),
            latchkey_read,
            latchkey_write
        )
        .await;
        let ac_cookie = session_app!(
            actix_middleware(actix_session::storage::CookieSessionStore::default()),
            actix_read,
            actix_write
        )
        .await;
        let store = RedisStore::new(
            RedisStoreConfig::single(url.clone())
                .key_prefix("lk:")
                .build()
                .expect("config"),
        )
        .expect("store");
        let lk_redis = session_app!(
            latchkey_middleware(Arc::new(store)),
            latchkey_read,
            latchkey_write
        )
        .await;
        let actix_store = actix_session::storage::RedisSessionStore::new(url.clone())
            .await
            .expect("actix-session redis store");
        let ac_redis = session_app!(actix_middleware(actix_store), actix_read, actix_write).await;
        let response = test::call_service(&bare_app, get("").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookies = [
            String::new(),
            session_cookie!(&lk_mem),
            session_cookie!(&ac_cookie),
            session_cookie!(&lk_redis),
            session_cookie!(&ac_redis),
        ];
        (bare_app, lk_mem, ac_cookie, lk_redis, ac_redis, cookies)
    });

    // One request of variant `$i` through `$app`, exactly as every loop below sends it.
    macro_rules! call {
        ($app:expr, $i:expr) => {
            black_box(
                test::call_service($app, get(&cookies[$i]).to_request())
                    .await
                    .status(),
            )
        };
    }

    if !interleaved {
        let mut group = c.benchmark_group("actix_request");
        macro_rules! bench {
            ($app:expr, $i:expr) => {
                group.bench_function(VARIANTS[$i], |b| {
                    b.to_async(&rt).iter(|| async { call!($app, $i) });
                });
            };
        }
        bench!(&bare_app, 0);
        bench!(&lk_mem, 1);
        bench!(&ac_cookie, 2);
        bench!(&lk_redis, 3);
        bench!(&ac_redis, 4);
        group.finish();
        return;
    }

    macro_rules! runner {
        ($app:expr, $i:expr) => {
            |n: u32| {
                rt.0.block_on(async {
                    for _ in 0..n {
                        call!($app, $i);
                    }
                })
            }
        };
    }
    let (mut v0, mut v1, mut v2, mut v3, mut v4) = (
        runner!(&bare_app, 0),
        runner!(&lk_mem, 1),
        runner!(&ac_cookie, 2),
        runner!(&lk_redis, 3),
        runner!(&ac_redis, 4),
    );
    // Ratios to latchkey's read on the same kind of store; differences to `bare`. Fewer
    // operations per round than the axum bench: a Redis read is a loopback round trip.
    latchkey_benches::interleaved(
        "actix_request",
        &mut [
            (VARIANTS[0], &mut v0),
            (VARIANTS[1], &mut v1),
            (VARIANTS[2], &mut v2),
            (VARIANTS[3], &mut v3),
            (VARIANTS[4], &mut v4),
        ],
        &[1, 3],
        Some(0),
        100,
        500,
    );
    drop(redis);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    run(&mut c, false);
    c.final_summary();
    if latchkey_benches::interleaved_wanted() {
        run(&mut Criterion::default(), true);
    }
}
