//! The session middleware and the [`Session`] extractor.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use latchkey_session::{
    join_cookie_headers, CsrfProtection, OriginConfigError, OriginPolicy, RequestHeaders,
    RequestMethod, RequestOutcome, SessionManager, SessionResponse,
};

use crate::csrf::origin_headers;
use crate::rejection::{forbidden, json_error, SessionRejection};

/// actix-web middleware that gives each request a lazily loaded [`Session`] from a
/// [`SessionManager`] and, after the handler, adds the `Set-Cookie` the manager decides on.
///
/// All session policy (when to store, save, touch, cycle, which cookie to send) is the
/// manager's; this middleware only moves bytes. A request whose handler never uses its session
/// costs no store access. When the store is unavailable the answer is `503` with
/// `{"error":"service_unavailable"}` (logged with `tracing`); a forged or garbage cookie is simply
/// "no session". A handler that answers 5xx has its session changes dropped (a `destroy()` still
/// happens), as [`RequestOutcome`] says.
///
/// CSRF defences are on by default, both from latchkey-session's policy (see [`crate::csrf`]):
/// - the origin check: unsafe methods from a foreign `Origin`/`Referer` get `403` before the
///   handler runs (same-host only until you add origins);
/// - the synchronizer token: once a session holds a token (`Session::csrf_token`), unsafe
///   requests on it must repeat it in the `x-csrf-token` header, or get `403`.
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{web, App};
/// use latchkey_actix::{Session, SessionMiddleware, SessionRejection};
/// use latchkey_session::{CookieKey, MemoryStore, SessionManager};
///
/// async fn visits(session: Session) -> Result<String, SessionRejection> {
///     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", &n).await?;
///     Ok(n.to_string())
/// }
///
/// let manager = SessionManager::builder(Arc::new(MemoryStore::new()), CookieKey::from_secret(&[7; 32])?)
///     .build()?;
/// let middleware = SessionMiddleware::new(manager).with_allowed_origin("https://app.example.com")?;
/// let app = App::new()
///     .wrap(middleware)
///     .route("/", web::get().to(visits));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionMiddleware {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    manager: SessionManager,
    csrf: CsrfProtection,
}

impl SessionMiddleware {
    /// Middleware around `manager`, with the origin check (same host only) and the synchronizer
    /// token (header `x-csrf-token`) on.
    #[must_use]
    pub fn new(manager: SessionManager) -> Self {
        Self {
            config: Arc::new(Config {
                manager,
                csrf: CsrfProtection::new(),
            }),
        }
    }

    /// The CSRF settings, to change before `App::wrap` (a config already shared with a clone is
    /// copied first).
    fn csrf_mut(&mut self) -> &mut CsrfProtection {
        &mut Arc::make_mut(&mut self.config).csrf
    }

    fn set_csrf(mut self, change: impl FnOnce(CsrfProtection) -> CsrfProtection) -> Self {
        let csrf = self.csrf_mut();
        *csrf = change(std::mem::take(csrf));
        self
    }

    /// Also accept unsafe requests from `origin` (`scheme://host[:port]`), e.g. a front end on
    /// another origin. Turns the origin check on if it was off.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// let middleware = latchkey_actix::SessionMiddleware::new(manager).with_allowed_origin("http://localhost:5173")?;
    /// # let _ = middleware;
    /// # Ok::<(), latchkey_session::OriginConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OriginConfigError`] when `origin` is not a valid origin (for example, no scheme).
    pub fn with_allowed_origin(mut self, origin: &str) -> Result<Self, OriginConfigError> {
        let csrf = self.csrf_mut();
        *csrf = csrf.clone().with_allowed_origin(origin)?;
        Ok(self)
    }

    /// Replaces the origin policy; `None` turns the origin check off (for an API that no browser
    /// calls with ambient cookies).
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// use latchkey_session::OriginPolicy;
    /// let policy = OriginPolicy::builder().require_origin(true).build()?;
    /// let middleware = latchkey_actix::SessionMiddleware::new(manager).with_origin_policy(Some(policy));
    /// # let _ = middleware;
    /// # Ok::<(), latchkey_session::OriginConfigError>(())
    /// ```
    #[must_use]
    pub fn with_origin_policy(self, policy: Option<OriginPolicy>) -> Self {
        self.set_csrf(|csrf| csrf.with_origin_policy(policy))
    }

    /// Turns the synchronizer-token check on (`true`, the default) or off.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// let middleware = latchkey_actix::SessionMiddleware::new(manager).with_csrf_token(false);
    /// # let _ = middleware;
    /// ```
    #[must_use]
    pub fn with_csrf_token(self, enabled: bool) -> Self {
        self.set_csrf(|csrf| csrf.with_token(enabled))
    }

    /// The header that carries the synchronizer token (default `x-csrf-token`); turns the token
    /// check on.
    ///
    /// ```
    /// # let manager = latchkey_session::SessionManager::builder(std::sync::Arc::new(latchkey_session::MemoryStore::new()), latchkey_session::CookieKey::from_secret(&[7; 32]).unwrap()).build().unwrap();
    /// use actix_web::http::header::HeaderName;
    /// let middleware = latchkey_actix::SessionMiddleware::new(manager)
    ///     .with_csrf_header(HeaderName::from_static("x-xsrf-token"));
    /// # let _ = middleware;
    /// ```
    #[must_use]
    pub fn with_csrf_header(self, name: HeaderName) -> Self {
        self.set_csrf(|csrf| csrf.with_token_header(name.as_str()))
    }

    /// The manager behind this middleware.
    #[must_use]
    pub fn manager(&self) -> &SessionManager {
        &self.config.manager
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            config: Arc::clone(&self.config),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app's services.
#[derive(Debug)]
pub struct SessionService<S> {
    service: Rc<S>,
    config: Arc<Config>,
}

/// The response future of [`SessionService`].
pub type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let method = RequestMethod::from_name(request.method().as_str());
        // A safe method passes the origin check whatever its headers say: read them only for
        // the requests that can change state.
        if !method.is_safe() {
            if let Err(refusal) = self
                .config
                .csrf
                .check_origin(method, &origin_headers(&request))
            {
                let refused = request.into_response(forbidden(refusal));
                return Box::pin(ready(Ok(refused.map_into_right_body())));
            }
        }
        // Reading the headers and verifying the cookie need no store access: done here, before
        // the handler, and the store is read only when the handler uses the session.
        let session = {
            let manager = &self.config.manager;
            let headers = request.headers();
            let cookies =
                join_cookie_headers(headers.get_all(header::COOKIE).map(HeaderValue::as_bytes));
            let mut input = RequestHeaders::new();
            if let Some(cookies) = cookies.as_deref() {
                input = input.cookie(cookies);
            }
            if let Some(value) = manager
                .session_header_name()
                .and_then(|name| headers.get(name))
            {
                input = input.session_header(value.as_bytes());
            }
            manager.session(input)
        };
        request.extensions_mut().insert(Session(session.clone()));
        let config = Arc::clone(&self.config);
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            if let Some(name) = config.csrf.token_header(method) {
                let presented = request.headers().get(name).map(HeaderValue::as_bytes);
                let refused = match session.check_csrf_header(presented).await {
                    Ok(Ok(())) => None,
                    Ok(Err(refusal)) => Some(forbidden(refusal)),
                    Err(error) => Some(SessionRejection::from(error).error_response()),
                };
                if let Some(refused) = refused {
                    return Ok(request.into_response(refused).map_into_right_body());
                }
            }
            let response = match service.call(request).await {
                Ok(response) => response,
                Err(error) => {
                    // An error that no inner layer turned into a response: count it as a
                    // server error (a `destroy()` is still carried out) and pass it on; the
                    // removal cookie, if any, cannot ride on it.
                    if let Err(finish_error) = session.finish(RequestOutcome::ServerError).await {
                        tracing::warn!(error = %finish_error, "session not finished after an inner error");
                    }
                    return Err(error);
                }
            };
            let outcome = RequestOutcome::from_status(response.status().as_u16());
            // Ready at once (no store access) when there is nothing to write.
            let decision = session.finish(outcome).await;
            Ok(apply(decision, response))
        })
    }
}

/// Adds what the session's `finish` decided — its `Set-Cookie` or session header — to
/// `response`; a store failure replaces the response with the mapped error.
fn apply<B>(
    decision: Result<SessionResponse, latchkey_session::SessionError>,
    mut response: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let decision = match decision {
        Ok(decision) => decision,
        Err(error) => {
            let failed = SessionRejection::from(error).error_response();
            return response.into_response(failed).map_into_right_body();
        }
    };
    if add_session_headers(&decision, response.headers_mut()).is_err() {
        let failed = json_error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        );
        return response.into_response(failed).map_into_right_body();
    }
    response.map_into_left_body()
}

/// The cookie of a [`SessionResponse`] could not be a header value (never for latchkey's own
/// cookie settings).
struct InvalidCookie;

fn add_session_headers(
    decision: &SessionResponse,
    headers: &mut actix_web::http::header::HeaderMap,
) -> Result<(), InvalidCookie> {
    if let Some(cookie) = decision.set_cookie() {
        let Ok(value) = HeaderValue::from_str(cookie.as_str()) else {
            tracing::error!("the session cookie is not a valid header value; answering 500");
            return Err(InvalidCookie);
        };
        headers.append(header::SET_COOKIE, value);
    }
    if let Some((name, value)) = decision.session_header() {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    Ok(())
}

/// Adds a finished session's `Set-Cookie` (or session header) to `response`.
///
/// [`SessionMiddleware`] does this after every handler. Use it in a handler that calls
/// [`finish`](latchkey_session::Session::finish) itself, because it must act once its session
/// is stored (the middleware then finds nothing left to write):
///
/// ```
/// use actix_web::HttpResponse;
/// use latchkey_actix::{apply_session_response, Session, SessionRejection};
/// use latchkey_session::RequestOutcome;
///
/// async fn login(session: Session) -> Result<HttpResponse, SessionRejection> {
///     session.login("alice").await?;
///     let written = session.finish(RequestOutcome::Success).await?;
///     // ... the session is in the store now: check what must hold once it exists ...
///     Ok(apply_session_response(&written, HttpResponse::Ok().body("welcome")))
/// }
/// ```
#[must_use]
pub fn apply_session_response(
    decision: &SessionResponse,
    mut response: HttpResponse,
) -> HttpResponse {
    if add_session_headers(decision, response.headers_mut()).is_err() {
        return json_error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        );
    }
    response
}

/// The session of the current request, put there by [`SessionMiddleware`]. Derefs to
/// [`latchkey_session::Session`] (typed `get`/`insert`/`remove`, `login`, `cycle_id`, `destroy`,
/// `csrf_token`, the device list…). Extracting it costs nothing: the store is read on first use.
///
/// Without a `SessionMiddleware` around the route, extraction fails with
/// [`SessionRejection::MissingMiddleware`] (500, logged).
#[derive(Debug, Clone)]
pub struct Session(latchkey_session::Session);

impl std::ops::Deref for Session {
    type Target = latchkey_session::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Session {
    /// The wrapped framework-agnostic session.
    #[must_use]
    pub fn into_inner(self) -> latchkey_session::Session {
        self.0
    }
}

impl FromRequest for Session {
    type Error = SessionRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Session>()
                .cloned()
                .ok_or(SessionRejection::MissingMiddleware),
        )
    }
}
