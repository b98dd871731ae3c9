//! The login service on actix-web 4: the routes of [`super::routes`] behind
//! `latchkey::actix`'s [`SessionMiddleware`], the same page, the same JSON errors, the same CORS
//! rule as the axum [`router`](super::router). `cargo run --example actix_login` serves it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Condition;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use latchkey::actix::{apply_session_response, Session, SessionMiddleware, SessionRejection};
use latchkey::session::{
    OriginHeaders, OriginPolicy, RequestMethod, SessionCapPolicy, SessionManager,
};

use super::routes::{self, Credentials, Outcome, PasswordChange, Refusal, Reply, Services};
use super::{ApiError, BuildError, LoginConfig, MAX_BODY_BYTES, PAGE};

/// The configured forwarding header ([`LoginConfig::client_ip_header`]).
#[derive(Debug, Clone)]
struct ClientIpHeader(String);

/// Everything one worker's `App` is built from; cheap to clone (the server clones it into each
/// worker thread).
#[derive(Debug, Clone)]
pub struct LoginApp {
    sessions: SessionMiddleware,
    services: web::Data<Services>,
    client_ip_header: Option<web::Data<ClientIpHeader>>,
    /// The CORS origins as an origin policy (same normalisation as the CSRF check); `None`
    /// without a cross-origin front end.
    cors: Option<Arc<OriginPolicy>>,
}

impl LoginApp {
    /// The service on `store`, configured like [`router`](super::router).
    ///
    /// # Errors
    /// [`BuildError`] when the session configuration or a CORS origin is invalid.
    pub fn new(services: Services, config: &LoginConfig) -> Result<Self, BuildError> {
        let manager =
            SessionManager::builder(Arc::clone(&services.sessions), config.cookie_key.clone())
                .secure(config.cookie_secure)
                .same_site(config.same_site)
                .max_sessions_per_user(config.max_sessions_per_user, SessionCapPolicy::RevokeOldest)
                .build()
                .map_err(BuildError::Session)?;
        let mut sessions = SessionMiddleware::new(manager);
        let mut cors = OriginPolicy::builder();
        for origin in &config.cors_origins {
            sessions = sessions
                .with_allowed_origin(origin)
                .map_err(BuildError::CsrfOrigin)?;
            cors = cors.allowed_origin(origin.as_str());
        }
        let cors = if config.cors_origins.is_empty() {
            None
        } else {
            Some(Arc::new(cors.build().map_err(BuildError::CsrfOrigin)?))
        };
        Ok(Self {
            sessions,
            services: web::Data::new(services),
            client_ip_header: config
                .client_ip_header
                .as_ref()
                .map(|name| web::Data::new(ClientIpHeader(name.as_str().to_owned()))),
            cors,
        })
    }

    /// Registers the whole service on `config` (for `App::configure`).
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        let json = web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(json_error);
        // `web::resource(..).route(..)` rather than `.route(..)`: a resource answers a method it
        // has no route for with 405, as axum does, where `.route` would guard the whole resource
        // by method and fall through to 404.
        // Routes that use the session sit behind the session middleware (and its CSRF checks);
        // `/health` and the page never see it, so a load balancer polling `/health` can never
        // create a session or touch the store.
        let with_session = web::scope("")
            .wrap(self.sessions.clone())
            .service(web::resource("/signup").route(web::post().to(signup)))
            .service(web::resource("/login").route(web::post().to(login)))
            .service(web::resource("/me").route(web::get().to(me)))
            .service(web::resource("/logout").route(web::post().to(logout)))
            .service(web::resource("/sessions").route(web::get().to(sessions)))
            .service(web::resource("/sessions/{id}").route(web::delete().to(revoke_session)))
            .service(web::resource("/logout-all").route(web::post().to(logout_all)))
            .service(web::resource("/password").route(web::post().to(change_password)))
            .service(web::resource("/oidc/start").route(web::get().to(oidc_start)))
            .service(web::resource("/oidc/callback").route(web::get().to(oidc_callback)));
        if let Some(header) = &self.client_ip_header {
            config.app_data(header.clone());
        }
        config
            .app_data(self.services.clone())
            .app_data(json)
            .service(
                web::scope("")
                    .wrap(Condition::new(
                        self.cors.is_some(),
                        cors(self.cors.clone().unwrap_or_default()),
                    ))
                    .service(web::resource("/").route(web::get().to(page)))
                    .service(web::resource("/health").route(web::get().to(health)))
                    .service(web::resource("/oidc").route(web::get().to(oidc_provider)))
                    .service(with_session),
            );
    }
}

/// CORS for the listed origins: credentials allowed, methods GET/POST/DELETE, headers
/// `Content-Type` and `X-CSRF-Token`, as the axum router's `CorsLayer`. Any other origin is
/// served without CORS headers rather than refused (`block_on_origin_mismatch(false)`, also
/// actix-cors 0.7's default), again as on axum, so a foreign unsafe request meets the CSRF
/// origin check and its opaque 403. The list is matched as an [`OriginPolicy`] with no own host,
/// which allows exactly the listed origins, normalised like the CSRF check's.
fn cors(policy: Arc<OriginPolicy>) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, _head| {
            let headers = OriginHeaders {
                origin: Some(origin.as_bytes()),
                ..OriginHeaders::default()
            };
            policy.check(RequestMethod::Unsafe, &headers).is_allowed()
        })
        .block_on_origin_mismatch(false)
        .supports_credentials()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-csrf-token"),
        ])
}

/// Binds the service on `listener` with `workers` worker threads. With `signals` the server stops
/// gracefully on Ctrl-C; without, only through its handle (tests).
///
/// # Errors
/// An I/O error from the listener.
pub fn serve(
    listener: TcpListener,
    app: LoginApp,
    workers: usize,
    signals: bool,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        let app = app.clone();
        App::new().configure(move |config| app.configure(config))
    })
    .workers(workers)
    .listen(listener)?;
    let server = if signals {
        server
    } else {
        server.disable_signals()
    };
    Ok(server.run())
}

/// The actix-web response for an [`ApiError`]: its status and `{"error", "message"}`.
fn api_response(error: ApiError) -> HttpResponse {
    let status =
        StatusCode::from_u16(error.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .json(serde_json::json!({ "error": error.code, "message": error.message }))
}

/// JSON body errors as the axum router answers them, never serde's own text.
fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let answer = match &error {
        JsonPayloadError::ContentType => ApiError::UNSUPPORTED_MEDIA_TYPE,
        JsonPayloadError::Deserialize(inner) => ApiError::from_json_error(inner),
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::BODY_TOO_LARGE
        }
        _ => ApiError::UNREADABLE_BODY,
    };
    InternalError::from_response(error, api_response(answer)).into()
}

/// An actix-web response for a route's outcome; session failures go through the adapter's
/// error (503 when the store is unavailable, logged; an opaque 500 otherwise).
fn respond(outcome: Outcome) -> HttpResponse {
    match outcome {
        Ok(Reply::Json(status, body)) => HttpResponse::build(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .json(body),
        Ok(Reply::NoContent) => HttpResponse::NoContent().finish(),
        Ok(Reply::JsonWithSession(status, body, session)) => apply_session_response(
            &session,
            HttpResponse::build(
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
            .json(body),
        ),
        Ok(Reply::Redirect {
            location,
            set_cookie,
        }) => {
            let mut response = HttpResponse::SeeOther();
            response.insert_header((header::LOCATION, location));
            if let Some(cookie) = set_cookie {
                response.append_header((header::SET_COOKIE, cookie));
            }
            response.finish()
        }
        Ok(Reply::Html(status, page)) => HttpResponse::build(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .content_type("text/html; charset=utf-8")
        .body(page),
        Err(Refusal::Api(error)) => api_response(error),
        Err(Refusal::Retry { error, after_secs }) => HttpResponse::build(
            StatusCode::from_u16(error.status.as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .insert_header((header::RETRY_AFTER, after_secs.to_string()))
        .json(serde_json::json!({
            "error": error.code,
            "message": error.message,
            "retry_after": after_secs,
        })),
        Err(Refusal::Session(error)) => SessionRejection::from(error).error_response(),
    }
}

/// The client address for the login throttle: the configured forwarding header, else the
/// connection's peer ([`routes::client_ip`]).
fn client_of(request: &HttpRequest) -> Option<std::net::IpAddr> {
    let forwarded = request
        .app_data::<web::Data<ClientIpHeader>>()
        .and_then(|name| request.headers().get(name.0.as_str()))
        .and_then(|value| value.to_str().ok());
    routes::client_ip(request.peer_addr().map(|addr| addr.ip()), forwarded)
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

async fn health(services: web::Data<Services>) -> HttpResponse {
    let (status, body) = routes::health(&services).await;
    HttpResponse::build(
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    )
    .json(body)
}

async fn signup(
    services: web::Data<Services>,
    credentials: web::Json<Credentials>,
) -> HttpResponse {
    respond(routes::signup(&services, credentials.into_inner()).await)
}

async fn login(
    services: web::Data<Services>,
    session: Session,
    request: HttpRequest,
    credentials: web::Json<Credentials>,
) -> HttpResponse {
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = client_of(&request);
    respond(
        routes::login(
            &services,
            &session,
            client,
            user_agent,
            credentials.into_inner(),
        )
        .await,
    )
}

async fn change_password(
    services: web::Data<Services>,
    session: Session,
    request: HttpRequest,
    change: web::Json<PasswordChange>,
) -> HttpResponse {
    let client = client_of(&request);
    respond(routes::change_password(&services, &session, client, change.into_inner()).await)
}

async fn me(session: Session) -> HttpResponse {
    respond(routes::me(&session).await)
}

/// The request's `Cookie` header(s), joined, as text.
fn cookie_header(request: &HttpRequest) -> Option<String> {
    latchkey::session::join_cookie_headers(
        request
            .headers()
            .get_all(header::COOKIE)
            .map(actix_web::http::header::HeaderValue::as_bytes),
    )
    .and_then(|joined| String::from_utf8(joined.into_owned()).ok())
}

fn query_of(request: &HttpRequest) -> Option<&str> {
    Some(request.query_string()).filter(|q| !q.is_empty())
}

async fn oidc_provider(services: web::Data<Services>) -> HttpResponse {
    respond(super::oidc::provider(&services))
}

async fn oidc_start(services: web::Data<Services>, request: HttpRequest) -> HttpResponse {
    let cookie = cookie_header(&request);
    respond(super::oidc::start(&services, query_of(&request), cookie.as_deref()).await)
}

async fn oidc_callback(
    services: web::Data<Services>,
    session: Session,
    request: HttpRequest,
) -> HttpResponse {
    let cookie = cookie_header(&request);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    respond(
        super::oidc::callback(
            &services,
            &session,
            query_of(&request),
            cookie.as_deref(),
            user_agent,
        )
        .await,
    )
}

async fn logout(session: Session) -> HttpResponse {
    respond(Ok(routes::logout(&session)))
}

async fn sessions(session: Session) -> HttpResponse {
    respond(routes::sessions(&session).await)
}

async fn revoke_session(session: Session, id: web::Path<String>) -> HttpResponse {
    respond(routes::revoke_session(&session, &id).await)
}

async fn logout_all(session: Session) -> HttpResponse {
    respond(routes::logout_all(&session).await)
}
