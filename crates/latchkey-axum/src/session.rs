//! The session layer and the [`Session`] extractor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_session::{
    join_cookie_headers, RequestHeaders, RequestMethod, RequestOutcome, SessionError,
    SessionManager,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::csrf::{
    check_csrf_token, origin_headers, request_authority, CsrfProtection, OriginCheck,
    OriginConfigError,
};
use crate::rejection::{forbidden, json_error, SessionRejection};

/// A tower [`Layer`] that gives each request a lazily loaded [`Session`] from a
/// [`SessionManager`] and, after the handler, adds the `Set-Cookie` the manager decides on.
///
/// All session policy (when to store, save, touch, cycle, which cookie to send) is the
/// manager's; this layer only moves bytes. A request whose handler never extracts the session
/// costs no store access. When the store is unavailable the answer is `503` with
/// `{"error":"service_unavailable"}` (logged with `tracing`); a forged or garbage cookie is simply
/// "no session".
///
/// CSRF defences are on by default, both configurable:
/// - the [origin check](crate::csrf::OriginCheck): unsafe methods from a foreign `Origin`/`Referer`
///   get `403` before the handler runs (same-host only until you add origins);
/// - the synchronizer token: once a session holds a token ([`Session::csrf_token`]), unsafe
///   requests on it must repeat it in the `x-csrf-token` header, or get `403`.
///
/// ```
/// use std::sync::Arc;
/// use axum::{routing::get, Router};
/// use latchkey_axum::{Session, SessionLayer};
/// use latchkey_session::{CookieKey, MemoryStore, SessionManager};
///
/// async fn visits(session: Session) -> Result<String, latchkey_axum::SessionRejection> {
///     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", &n).await?;
///     Ok(n.to_string())
/// }
///
/// let manager = SessionManager::builder(Arc::new(MemoryStore::new()), CookieKey::from_secret(&[7; 32])?)
///     .build()?;
/// let app: Router = Router::new()
///     .route("/", get(visits))
///     .layer(SessionLayer::new(manager).with_allowed_origin("https://app.example.com")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    manager: SessionManager,
    csrf: CsrfProtection,
}

impl SessionLayer {
    /// A layer around `manager`, with the origin check (same host only) and the synchronizer token
    /// (header `x-csrf-token`) on.
    #[must_use]
    pub fn new(manager: SessionManager) -> Self {
        Self {
            config: Arc::new(Config {
                manager,
                csrf: CsrfProtection::new(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        // Layers are configured before they are cloned into a router; a shared config is copied.
        Arc::make_mut(&mut self.config)
    }

    /// Also accept unsafe requests from `origin` (`scheme://host[:port]`), e.g. a front end on
    /// another origin allowed by CORS. Turns the origin check on if it was off.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// let layer = latchkey_axum::SessionLayer::new(manager).with_allowed_origin("http://localhost:5173")?;
    /// # let _ = layer;
    /// # Ok::<(), latchkey_axum::csrf::OriginConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OriginConfigError`] when `origin` is not a valid origin (for example, no scheme).
    pub fn with_allowed_origin(mut self, origin: &str) -> Result<Self, OriginConfigError> {
        let config = self.config_mut();
        config.csrf = config.csrf.clone().with_allowed_origin(origin)?;
        Ok(self)
    }

    /// Replaces the origin check; `None` turns it off (for an API that no browser calls with
    /// ambient cookies).
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// use latchkey_axum::{csrf::{OriginCheck, OriginPolicy}, SessionLayer};
    /// let policy = OriginPolicy::builder().require_origin(true).build()?;
    /// let layer = SessionLayer::new(manager).with_origin_check(Some(OriginCheck::from(policy)));
    /// # let _ = layer;
    /// # Ok::<(), latchkey_axum::csrf::OriginConfigError>(())
    /// ```
    #[must_use]
    pub fn with_origin_check(mut self, check: Option<OriginCheck>) -> Self {
        let config = self.config_mut();
        config.csrf = config
            .csrf
            .clone()
            .with_origin_policy(check.map(|check| check.policy().clone()));
        self
    }

    /// Turns the synchronizer-token check on (`true`, the default) or off.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// let layer = latchkey_axum::SessionLayer::new(manager).with_csrf_token(false);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_csrf_token(mut self, enabled: bool) -> Self {
        let config = self.config_mut();
        config.csrf = config.csrf.clone().with_token(enabled);
        self
    }

    /// The header that carries the synchronizer token (default `x-csrf-token`); turns the token
    /// check on.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// use axum::http::HeaderName;
    /// let layer = latchkey_axum::SessionLayer::new(manager).with_csrf_header(HeaderName::from_static("x-xsrf-token"));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_csrf_header(mut self, name: HeaderName) -> Self {
        let config = self.config_mut();
        config.csrf = config.csrf.clone().with_token_header(name.as_str());
        self
    }

    /// The manager behind this layer.
    #[must_use]
    pub fn manager(&self) -> &SessionManager {
        &self.config.manager
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

/// The session of the current request, put there by [`SessionLayer`]. Derefs to
/// [`latchkey_session::Session`] (typed `get`/`insert`/`remove`, `login`, `cycle_id`, `destroy`,
/// the device list…). Extracting it costs nothing: the store is read on first use.
///
/// Without a `SessionLayer` in front of the route, extraction fails with
/// [`SessionRejection::MissingLayer`] (500, logged).
///
/// ```
/// use axum::{routing::get, Router};
/// use latchkey_axum::{Session, SessionRejection};
///
/// // Count this visitor's visits. The session is created (and its cookie sent) only because
/// // the handler writes to it; a store outage becomes a 503 through `SessionRejection`.
/// async fn visits(session: Session) -> Result<String, SessionRejection> {
///     let n = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", &n).await?;
///     Ok(format!("visit {n}"))
/// }
/// let app: Router = Router::new().route("/", get(visits)); // add a `SessionLayer` in front
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct Session(latchkey_session::Session);

impl std::ops::Deref for Session {
    type Target = latchkey_session::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Session {
    /// This session's CSRF synchronizer token, created (and stored with the session) on first
    /// call. Hand it to the front end, which sends it back in the CSRF header
    /// (`x-csrf-token` by default) on every unsafe request. A fresh token is 256 random bits,
    /// base64url.
    ///
    /// # Errors
    ///
    /// A [`SessionError`] when the store cannot be read or written.
    pub async fn csrf_token(&self) -> Result<String, SessionError> {
        self.0.csrf_token().await
    }

    /// The wrapped framework-agnostic session.
    #[must_use]
    pub fn into_inner(self) -> latchkey_session::Session {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`].
    ///
    /// A request whose session needs no store write at the end (never used, or only read)
    /// is answered by this future without allocating; CSRF checks and store writes run in a
    /// boxed future.
    pub struct ResponseFuture<F, E> {
        #[pin]
        state: FutureState<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = FutureStateProj]
    enum FutureState<F, E> {
        // The inner service is running; its response then gets the manager's verdict.
        Inner {
            #[pin]
            future: F,
            session: Option<latchkey_session::Session>,
        },
        // Anything that awaits the store.
        Boxed { future: BoxFuture<Result<Response, E>> },
    }
}

impl<F, E> std::fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
    E: Send + 'static,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                FutureStateProj::Inner { future, session } => {
                    let response = match std::task::ready!(future.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => return Poll::Ready(Err(error)),
                    };
                    let Some(session) = session.take() else {
                        // Polled again after completion: a caller bug; answer without a session.
                        return Poll::Ready(Ok(response));
                    };
                    let finish = session.finish(outcome_of(&response));
                    if finish.is_ready() {
                        // Nothing to write or send: answered without a store call or an
                        // allocation.
                        return Poll::Ready(Ok(response));
                    }
                    state.set(FutureState::Boxed {
                        future: Box::pin(async move { Ok(apply(finish.await, response)) }),
                    });
                }
                FutureStateProj::Boxed { future } => return future.as_mut().poll(cx),
            }
        }
    }
}

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let boxed = |future: BoxFuture<Result<Response, S::Error>>| ResponseFuture {
            state: FutureState::Boxed { future },
        };
        // The clone that was driven to readiness serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let method = RequestMethod::from_name(request.method().as_str());
        // A safe method passes the origin check whatever its headers say: read them (four
        // header lookups) only for the requests that can change state.
        if !method.is_safe() {
            let authority = request_authority(request.headers(), request.uri());
            let origin = origin_headers(request.headers(), authority);
            if let Err(refusal) = config.csrf.check_origin(method, &origin) {
                return boxed(Box::pin(async move { Ok(forbidden(refusal)) }));
            }
        }
        // Reading the headers and verifying the cookie need no store access, so they happen
        // here, before the request goes to the inner service.
        let session = {
            let manager = &config.manager;
            let headers = request.headers();
            let cookies = join_cookie_headers(
                headers
                    .get_all(header::COOKIE)
                    .iter()
                    .map(HeaderValue::as_bytes),
            );
            let session_header = manager
                .session_header_name()
                .and_then(|name| headers.get(name))
                .map(HeaderValue::as_bytes);
            let mut input = RequestHeaders::new();
            if let Some(cookies) = cookies.as_deref() {
                input = input.cookie(cookies);
            }
            if let Some(value) = session_header {
                input = input.session_header(value);
            }
            manager.session(input)
        };
        request.extensions_mut().insert(Session(session.clone()));
        match config.csrf.token_header(method).is_some() {
            true => boxed(Box::pin(async move {
                let presented = config
                    .csrf
                    .token_header(method)
                    .and_then(|name| request.headers().get(name))
                    .cloned();
                if let Err(rejection) = check_csrf_token(&session, presented.as_ref()).await {
                    return Ok(rejection);
                }
                let response = inner.call(request).await?;
                let finish = session.finish(outcome_of(&response));
                Ok(apply(finish.await, response))
            })),
            false => ResponseFuture {
                state: FutureState::Inner {
                    future: inner.call(request),
                    session: Some(session),
                },
            },
        }
    }
}

/// Whether the handler's response is a server error: then the session's changes are not
/// stored (the policy is latchkey-session's, see `RequestOutcome`).
fn outcome_of(response: &Response) -> RequestOutcome {
    RequestOutcome::from_status(response.status().as_u16())
}

/// Adds what the session's `finish` decided — its `Set-Cookie` or session header — to
/// `response`; a store failure becomes the mapped error response.
fn apply(
    decision: Result<latchkey_session::SessionResponse, latchkey_session::SessionError>,
    response: Response,
) -> Response {
    match decision {
        Ok(decision) => apply_session_response(&decision, response),
        Err(error) => SessionRejection::from(error).into_response(),
    }
}

/// Adds a finished session's `Set-Cookie` (or session header) to `response`.
///
/// [`SessionLayer`] does this after every handler. Use it in a handler that calls
/// [`finish`](latchkey_session::Session::finish) itself, because it must act once its session
/// is stored (the layer then finds nothing left to write):
///
/// ```
/// use axum::response::{IntoResponse, Response};
/// use latchkey_axum::{apply_session_response, Session, SessionRejection};
/// use latchkey_session::RequestOutcome;
///
/// async fn login(session: Session) -> Result<Response, SessionRejection> {
///     session.login("alice").await?;
///     let written = session.finish(RequestOutcome::Success).await?;
///     // ... the session is in the store now: check what must hold once it exists ...
///     Ok(apply_session_response(&written, "welcome".into_response()))
/// }
/// ```
#[must_use]
pub fn apply_session_response(
    decision: &latchkey_session::SessionResponse,
    mut response: Response,
) -> Response {
    if let Some(cookie) = decision.set_cookie() {
        match HeaderValue::from_str(cookie.as_str()) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => {
                tracing::error!("session cookie is not a valid header value");
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
            }
        }
    }
    if let Some((name, value)) = decision.session_header() {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
