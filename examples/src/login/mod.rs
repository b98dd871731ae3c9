//! The `login` example service: sign-up and ID/password login on server-side sessions, "my devices"
//! with remote logout, CSRF protection, CORS for a front end on another origin, and a small HTML page.
//!
//! The router is built here (not in `login/main.rs`) so the end-to-end tests in `examples/tests/`
//! serve exactly the same app on a loopback port.
//!
//! # Cookies, CORS and CSRF
//!
//! The session cookie is `HttpOnly` (scripts never see it), `SameSite=Lax` and `Path=/`, signed with
//! HMAC-SHA256. It is `Secure` in production: keep [`LoginConfig::cookie_secure`] on whenever the
//! service is behind HTTPS. Only a local `http://` demo turns it off, because a browser neither
//! stores nor sends a `Secure` cookie over plain HTTP on a non-`localhost` host.
//!
//! A front end on another origin (e.g. `http://localhost:5173` during development) is allowed with
//! [`LoginConfig::cors_origins`]: an explicit list, credentials allowed (`fetch(..., {credentials:
//! "include"})`), methods GET/POST/DELETE, headers `Content-Type` and `X-CSRF-Token`. The same list
//! is given to the CSRF origin check. If that origin is on another *site* (another registrable domain,
//! not just another port or subdomain), browsers only send the cookie on its `fetch` calls with
//! `SameSite=None`, which in turn requires `Secure` (so HTTPS): set [`LoginConfig::same_site`] to
//! [`SameSite::None`] and keep `cookie_secure` on. Same-site origins work with the default `Lax`.
//!
//! Every state-changing request must come from the service's own origin or a listed one, and, once
//! logged in, carry the session's CSRF token (returned by `POST /login` and `GET /me`) in the
//! `X-CSRF-Token` header.

pub mod actix;
mod api;
pub mod env;
pub mod oidc;
pub mod routes;
mod users;

use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use latchkey::axum::{apply_session_response, Session, SessionLayer, SessionRejection};
use latchkey::session::{CookieKey, SameSite, SessionCapPolicy, SessionManager, SessionStore};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use api::{ApiError, JsonBody};
pub use routes::{client_ip, Credentials, Outcome, PasswordChange, Refusal, Reply, Services};
pub use users::{
    hash_concurrency, validate_id, validate_password, InputError, Users, UsersError, Verified,
    HASH_QUEUE_TIMEOUT, PASSWORD_SPECIALS,
};

/// The largest request body accepted, in bytes. Credentials fit in far less.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The page served at `GET /`.
pub const PAGE: &str = include_str!("page.html");

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// The key that signs session cookies (at least 32 bytes).
    pub cookie_key: CookieKey,
    /// The cookie's `Secure` attribute. Keep it `true` in production (HTTPS); `false` only for a
    /// local `http://` demo.
    pub cookie_secure: bool,
    /// The cookie's `SameSite` attribute (default `Lax`; `None` for a cross-site front end, which
    /// also needs `cookie_secure`).
    pub same_site: SameSite,
    /// Origins of front ends allowed to call the API with credentials (CORS and CSRF), as
    /// `scheme://host[:port]`. Empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// At most this many live sessions per account ([`DEFAULT_MAX_SESSIONS_PER_USER`]); a new
    /// login beyond it signs the account's oldest device out (`1`: one device at a time). It also
    /// bounds `GET /sessions`.
    pub max_sessions_per_user: usize,
    /// A header set by the reverse proxy in front of the service (`X-Forwarded-For`,
    /// `X-Real-IP`) whose last entry is the client address the login throttle counts; `None`
    /// (the default): the connection's peer address. Set it only behind a proxy that is the
    /// only way in, or clients could name any address they like.
    pub client_ip_header: Option<HeaderName>,
}

/// The default per-account session cap: enough for a phone, a laptop and a few browsers, and a
/// bound on `GET /sessions`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 10;

/// The in-memory store's capacity in the example: beyond it a new session is refused (503)
/// rather than memory growing without bound (about 540 bytes each: ~54 MB when full).
pub const MEMORY_STORE_CAPACITY: usize = 100_000;

impl LoginConfig {
    /// Defaults for `key`: `Secure` on, `SameSite=Lax`, no cross-origin front end.
    #[must_use]
    pub fn new(cookie_key: CookieKey) -> Self {
        Self {
            cookie_key,
            cookie_secure: true,
            same_site: SameSite::Lax,
            cors_origins: Vec::new(),
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            client_ip_header: None,
        }
    }
}

/// Why the router could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The session manager refused the configuration.
    Session(latchkey::session::ConfigError),
    /// A CORS origin is not a valid header value.
    Origin(String),
    /// A CORS origin is not a valid `scheme://host[:port]` origin for the CSRF origin check.
    CsrfOrigin(latchkey::axum::csrf::OriginConfigError),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Session(error) => write!(f, "session configuration: {error}"),
            BuildError::Origin(origin) => write!(f, "invalid CORS origin {origin:?}"),
            BuildError::CsrfOrigin(error) => write!(f, "CSRF origin check: {error}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The application's shared state.
#[derive(Debug, Clone)]
struct AppState {
    services: Services,
    client_ip_header: Option<HeaderName>,
}

/// The default login throttle on `store`: per account 5 free failures, per client address
/// 20, then a back-off from 1 s doubling to 15 min, forgotten after a quiet hour
/// (`latchkey-throttle`'s defaults).
///
/// # Errors
/// Never with these settings; the type is the builder's.
pub fn default_throttle(
    store: Arc<dyn latchkey::throttle::ThrottleStore>,
) -> Result<latchkey::throttle::Throttle, latchkey::throttle::ConfigError> {
    latchkey::throttle::Throttle::builder(store).build()
}

/// Builds the whole service on `services`. Serve it with [`serve`] (which passes each
/// connection's peer address to the login throttle).
///
/// # Errors
/// [`BuildError`] when the session configuration or a CORS origin is invalid.
pub fn router(services: Services, config: &LoginConfig) -> Result<Router, BuildError> {
    let manager =
        SessionManager::builder(Arc::clone(&services.sessions), config.cookie_key.clone())
            .secure(config.cookie_secure)
            .same_site(config.same_site)
            .max_sessions_per_user(config.max_sessions_per_user, SessionCapPolicy::RevokeOldest)
            .build()
            .map_err(BuildError::Session)?;
    let mut session_layer = SessionLayer::new(manager);
    for origin in &config.cors_origins {
        session_layer = session_layer
            .with_allowed_origin(origin)
            .map_err(BuildError::CsrfOrigin)?;
    }

    // Routes that use the session sit behind the session layer (and its CSRF checks).
    let with_session = Router::new()
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/logout-all", post(logout_all))
        .route("/password", post(change_password))
        .route("/oidc/start", get(oidc_start))
        .route("/oidc/callback", get(oidc_callback))
        .layer(session_layer);
    // `/health` and the page never see the session layer: a load balancer polling `/health` can
    // never create a session or touch the store.
    let mut app = Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/oidc", get(oidc_provider))
        .merge(with_session)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState {
            services,
            client_ip_header: config.client_ip_header.clone(),
        });

    if !config.cors_origins.is_empty() {
        let origins = config
            .cors_origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|_| BuildError::Origin(origin.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-csrf-token"),
                ]),
        );
    }
    Ok(app)
}

/// The stores chosen at start-up: sessions and login budgets.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Where sessions live.
    pub sessions: Arc<dyn SessionStore>,
    /// Where the login throttle keeps its budgets (the same Redis as the sessions, so a fleet
    /// of instances shares the counts).
    pub throttle: Arc<dyn latchkey::throttle::ThrottleStore>,
    /// A description for the start-up banner (a URL without any password).
    pub description: String,
}

/// The in-memory throttle store's capacity in the example (about 150 bytes a budget); when
/// full, logins are refused with 503 rather than left unthrottled.
pub const MEMORY_THROTTLE_CAPACITY: usize = 1_000_000;

/// The stores, chosen once at start-up: Redis when `redis_url` is given (the `REDIS_URL`
/// environment variable), else in memory (a bounded session store and a bounded throttle
/// store, both lost on restart).
///
/// No connection is opened here: the service starts even while Redis is down, and answers `503`
/// on session routes until it is back.
///
/// # Errors
/// A message when the Redis URL or configuration is refused.
pub fn stores(redis_url: Option<&str>) -> Result<Stores, String> {
    match redis_url {
        None => Ok(Stores {
            sessions: Arc::new(
                latchkey::session::MemoryStore::builder()
                    .max_sessions(MEMORY_STORE_CAPACITY)
                    .build(),
            ),
            throttle: Arc::new(
                latchkey::throttle::MemoryThrottleStore::new()
                    .with_capacity_limit(MEMORY_THROTTLE_CAPACITY),
            ),
            description: format!(
                "memory, at most {MEMORY_STORE_CAPACITY} sessions (lost on restart)"
            ),
        }),
        Some(url) => {
            let config = latchkey_redis::RedisStoreConfig::single(url)
                .build()
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            let store =
                latchkey_redis::RedisStore::new(config).map_err(|e| format!("REDIS_URL: {e}"))?;
            Ok(Stores {
                throttle: Arc::new(latchkey_redis::RedisThrottleStore::new(&store)),
                sessions: Arc::new(store),
                description: format!("redis at {}", redact_url(url)),
            })
        }
    }
}

/// `scheme://user:password@host/..` without the password.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() + 3 => {
            let host = &url[at + 1..];
            let user = rest.split(['@', ':']).next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// An axum response for a route's outcome; session failures go through the adapter's
/// rejection (503 when the store is unavailable, logged; an opaque 500 otherwise).
fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok(Reply::Json(status, body)) => (status, Json(body)).into_response(),
        Ok(Reply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Ok(Reply::JsonWithSession(status, body, session)) => {
            apply_session_response(&session, (status, Json(body)).into_response())
        }
        Ok(Reply::Redirect {
            location,
            set_cookie,
        }) => {
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(Reply::Html(status, page)) => (status, Html(page)).into_response(),
        Err(Refusal::Api(error)) => error.into_response(),
        Err(Refusal::Retry { error, after_secs }) => (
            error.status,
            [(header::RETRY_AFTER, after_secs.to_string())],
            Json(serde_json::json!({
                "error": error.code,
                "message": error.message,
                "retry_after": after_secs,
            })),
        )
            .into_response(),
        Err(Refusal::Session(error)) => SessionRejection::from(error).into_response(),
    }
}

/// The client address for the login throttle: the configured forwarding header, else the
/// connection's peer ([`client_ip`]).
fn client_of(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
) -> Option<IpAddr> {
    let forwarded = state
        .client_ip_header
        .as_ref()
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok());
    client_ip(peer.map(|ConnectInfo(addr)| addr.ip()), forwarded)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn health(State(state): State<AppState>) -> Response {
    let (status, body) = routes::health(&state.services).await;
    (status, Json(body)).into_response()
}

async fn signup(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Response {
    respond(routes::signup(&state.services, credentials).await)
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Response {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = client_of(&state, &headers, peer.as_ref().map(|Extension(info)| info));
    respond(routes::login(&state.services, &session, client, user_agent, credentials).await)
}

async fn change_password(
    State(state): State<AppState>,
    session: Session,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Response {
    let client = client_of(&state, &headers, peer.as_ref().map(|Extension(info)| info));
    respond(routes::change_password(&state.services, &session, client, change).await)
}

async fn me(session: Session) -> Response {
    respond(routes::me(&session).await)
}

/// The request's `Cookie` header(s), joined, as text.
fn cookie_header(headers: &HeaderMap) -> Option<String> {
    latchkey::session::join_cookie_headers(
        headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes),
    )
    .and_then(|joined| String::from_utf8(joined.into_owned()).ok())
}

async fn oidc_provider(State(state): State<AppState>) -> Response {
    respond(oidc::provider(&state.services))
}

async fn oidc_start(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookie = cookie_header(&headers);
    respond(oidc::start(&state.services, query.as_deref(), cookie.as_deref()).await)
}

async fn oidc_callback(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookie = cookie_header(&headers);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    respond(
        oidc::callback(
            &state.services,
            &session,
            query.as_deref(),
            cookie.as_deref(),
            user_agent,
        )
        .await,
    )
}

async fn logout(session: Session) -> Response {
    respond(Ok(routes::logout(&session)))
}

async fn sessions(session: Session) -> Response {
    respond(routes::sessions(&session).await)
}

async fn revoke_session(session: Session, Path(id): Path<String>) -> Response {
    respond(routes::revoke_session(&session, &id).await)
}

async fn logout_all(session: Session) -> Response {
    respond(routes::logout_all(&session).await)
}
