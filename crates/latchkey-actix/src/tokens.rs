//! Access/refresh token pairs (`latchkey-tokens`) over actix-web: extractors for the access token
//! and the presented refresh token, and responses for the token endpoint. Every decision — where
//! a token is read from, which cookie is set or deleted, which status and error code — is
//! [`TokenTransport`]'s; this module only moves requests and replies in and out of actix-web.
//!
//! Register the [`TokenService`] and the [`TokenTransport`] as app data:
//! `App::new().app_data(web::Data::new(tokens)).app_data(web::Data::new(transport))`. A route
//! extracting a token without them answers `500` (a programming error, logged).
//!
//! ```
//! use actix_web::{web, App};
//! use latchkey_actix::tokens::{Access, RefreshFailure, RefreshGrant, TokenResponse};
//! use latchkey_tokens::transport::TokenTransport;
//! use latchkey_tokens::TokenService;
//!
//! async fn me(Access(access): Access) -> String {
//!     access.subject().to_owned()
//! }
//!
//! async fn refresh(
//!     tokens: web::Data<TokenService>,
//!     grant: RefreshGrant,
//! ) -> Result<TokenResponse, RefreshFailure> {
//!     grant.refresh(&tokens).await
//! }
//!
//! fn app(tokens: TokenService) {
//!     let _app = App::new()
//!         .app_data(web::Data::new(tokens))
//!         .app_data(web::Data::new(TokenTransport::default()))
//!         .route("/me", web::get().to(me))
//!         .route("/refresh", web::post().to(refresh));
//! }
//! # let _ = app;
//! ```

use std::future::Future;
use std::pin::Pin;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};
use latchkey_tokens::transport::{
    self, AccessRefusal, GrantRefusal, TokenTransport, TransportReply, Via, MAX_REFRESH_BODY,
};
use latchkey_tokens::{AccessToken, RefreshError, TokenPair, TokenService};
use serde::de::DeserializeOwned;

use crate::rejection::json_error;

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

fn http_response(reply: TransportReply) -> HttpResponse {
    let (status, headers, body) = reply.into_parts();
    // actix-web 4 is on http 0.2, latchkey-tokens on http 1: same values, other types.
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status).body(body);
    for (name, value) in &headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn header_text<'a>(request: &'a HttpRequest, name: &HeaderName) -> Vec<Option<&'a str>> {
    request
        .headers()
        .get_all(name)
        .map(|value| value.to_str().ok())
        .collect()
}

/// Any [`TransportReply`] as an actix response, e.g. [`TokenTransport::logout_reply`].
#[derive(Debug)]
pub struct Reply(pub TransportReply);

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        http_response(self.0)
    }
}

/// The request's verified access token: from `Authorization: Bearer` or the access cookie (when
/// the [`TokenTransport`] enables it), verified with the transport's revocation checks
/// (default: all). Refused with [`AccessRejection`]. For optional authentication use
/// [`MaybeAccess`] (actix's `Option<T>` would turn a forged token into "anonymous").
#[derive(Debug, Clone)]
pub struct Access<T = serde_json::Value>(pub AccessToken<T>);

/// Optional authentication: `MaybeAccess(None)` when the request carries no access token, the
/// token when it carries a valid one, and the same refusal as [`Access`] for a bad one.
#[derive(Debug, Clone)]
pub struct MaybeAccess<T = serde_json::Value>(pub Option<AccessToken<T>>);

/// Why [`Access`] refused a request: `401` with `WWW-Authenticate` (RFC 6750 §3) and
/// `{"error":"invalid_request"}` or `{"error":"invalid_token"}`, `503`
/// `{"error":"temporarily_unavailable"}` when a revocation check could not be made, or `500`
/// without the app data. The cause is logged, never sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessRejection {
    /// The access token was refused.
    Refused(AccessRefusal),
    /// The app has no `web::Data<TokenService>` or `web::Data<TokenTransport>`.
    MissingAppData,
}

impl std::fmt::Display for AccessRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessRejection::Refused(refusal) => refusal.fmt(f),
            AccessRejection::MissingAppData => f.write_str(MISSING_APP_DATA),
        }
    }
}

const MISSING_APP_DATA: &str =
    "a token extractor without web::Data<TokenService> and web::Data<TokenTransport> in the app";

impl std::error::Error for AccessRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccessRejection::Refused(refusal) => Some(refusal),
            AccessRejection::MissingAppData => None,
        }
    }
}

impl ResponseError for AccessRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            AccessRejection::Refused(refusal) => StatusCode::from_u16(refusal.status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            AccessRejection::MissingAppData => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AccessRejection::Refused(refusal) => http_response(refusal.reply()),
            AccessRejection::MissingAppData => {
                tracing::error!("{MISSING_APP_DATA}");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        }
    }
}

type AppData = (web::Data<TokenService>, web::Data<TokenTransport>);

fn app_data(request: &HttpRequest) -> Option<AppData> {
    Some((
        request.app_data::<web::Data<TokenService>>()?.clone(),
        request.app_data::<web::Data<TokenTransport>>()?.clone(),
    ))
}

/// The access token of `request`, verified; `Ok(None)` when it carries none.
fn access<T: DeserializeOwned + 'static>(
    request: &HttpRequest,
) -> LocalFuture<Result<Option<AccessToken<T>>, AccessRejection>> {
    let Some((tokens, transport)) = app_data(request) else {
        return Box::pin(std::future::ready(Err(AccessRejection::MissingAppData)));
    };
    let token = transport
        .access_token(
            header_text(request, &AUTHORIZATION),
            header_text(request, &COOKIE),
        )
        .map(str::to_owned);
    Box::pin(async move {
        match token {
            Ok(token) => transport
                .verify(&tokens, &token)
                .await
                .map(Some)
                .map_err(AccessRejection::Refused),
            Err(AccessRefusal::Missing) => Ok(None),
            Err(refusal) => Err(AccessRejection::Refused(refusal)),
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Access<T> {
    type Error = AccessRejection;
    type Future = LocalFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let access = access::<T>(request);
        Box::pin(async move {
            access
                .await?
                .map(Access)
                .ok_or(AccessRejection::Refused(AccessRefusal::Missing))
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for MaybeAccess<T> {
    type Error = AccessRejection;
    type Future = LocalFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let access = access::<T>(request);
        Box::pin(async move { access.await.map(MaybeAccess) })
    }
}

/// The refresh token a request presents — from the refresh cookie or the JSON body
/// `{"refresh_token": …}` (at most [`MAX_REFRESH_BODY`] bytes) — and where it came from, so the
/// answer goes back the same way. Consumes the body. Refused with [`GrantRejection`]. `Debug`
/// redacts the token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    grant: transport::RefreshGrant,
    transport: web::Data<TokenTransport>,
}

impl RefreshGrant {
    /// The presented refresh token, not yet checked.
    #[must_use]
    pub fn token(&self) -> &str {
        self.grant.token()
    }

    /// Where it came from.
    #[must_use]
    pub fn via(&self) -> Via {
        self.grant.via()
    }

    /// Refreshes with `tokens`: the new pair, sent back the way the token came, or the failure
    /// (which deletes the cookie only when the token is dead and came by cookie).
    ///
    /// # Errors
    /// [`RefreshFailure`] for every [`RefreshError`].
    pub async fn refresh(self, tokens: &TokenService) -> Result<TokenResponse, RefreshFailure> {
        match tokens.refresh(self.grant.token()).await {
            Ok(pair) => Ok(TokenResponse::new(&self.transport, &pair, self.via())),
            Err(error) => Err(RefreshFailure::new(&self.transport, error, self.via())),
        }
    }
}

/// Why [`RefreshGrant`] refused a request: `400` `{"error":"invalid_request"}` (RFC 6749
/// §5.2), no cookie touched; or `500` without `web::Data<TokenTransport>`.
#[derive(Debug)]
#[non_exhaustive]
pub enum GrantRejection {
    /// The request presents no usable refresh token.
    Refused(GrantRefusal),
    /// The app has no `web::Data<TokenTransport>`.
    MissingAppData,
}

impl std::fmt::Display for GrantRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantRejection::Refused(refusal) => refusal.fmt(f),
            GrantRejection::MissingAppData => f.write_str(MISSING_APP_DATA),
        }
    }
}

impl std::error::Error for GrantRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GrantRejection::Refused(refusal) => Some(refusal),
            GrantRejection::MissingAppData => None,
        }
    }
}

impl ResponseError for GrantRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            GrantRejection::Refused(_) => StatusCode::BAD_REQUEST,
            GrantRejection::MissingAppData => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            GrantRejection::Refused(refusal) => http_response(refusal.reply()),
            GrantRejection::MissingAppData => {
                tracing::error!("{MISSING_APP_DATA}");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        }
    }
}

impl FromRequest for RefreshGrant {
    type Error = GrantRejection;
    type Future = LocalFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = web::Payload::from_request(&request, payload).into_inner();
        Box::pin(async move {
            let transport = request
                .app_data::<web::Data<TokenTransport>>()
                .cloned()
                .ok_or(GrantRejection::MissingAppData)?;
            let payload = payload.map_err(|_| GrantRejection::Refused(GrantRefusal::Malformed))?;
            // Over the limit, or a body that breaks off: nothing usable within 4 KiB.
            let body = match payload.to_bytes_limited(MAX_REFRESH_BODY).await {
                Ok(Ok(body)) => body,
                Ok(Err(_)) | Err(_) => return Err(GrantRejection::Refused(GrantRefusal::TooLarge)),
            };
            let grant = transport
                .refresh_grant(header_text(&request, &COOKIE), &body)
                .map_err(GrantRejection::Refused)?;
            Ok(RefreshGrant { grant, transport })
        })
    }
}

/// A token response (RFC 6749 §5.1): `200` with `access_token`, `token_type`, `expires_in`, and
/// the refresh token in the body or in its cookie, as [`TokenTransport::token_reply`] builds it.
/// Use it for logins too, choosing [`Via`] by client.
#[derive(Debug)]
pub struct TokenResponse(TransportReply);

impl TokenResponse {
    /// The response for `pair`, with the refresh token sent `via` the body or its cookie.
    #[must_use]
    pub fn new(transport: &TokenTransport, pair: &TokenPair, via: Via) -> Self {
        TokenResponse(transport.token_reply(pair, via))
    }
}

impl Responder for TokenResponse {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        http_response(self.0)
    }
}

/// A refresh that gave no pair: `400 invalid_grant` for a dead token (deleting the refresh
/// cookie when the token came by cookie), `503 temporarily_unavailable` when the store is down
/// (every cookie kept), as [`TokenTransport::refresh_failure_reply`] decides.
#[derive(Debug)]
pub struct RefreshFailure {
    error: RefreshError,
    via: Via,
    transport: TokenTransport,
}

impl RefreshFailure {
    /// The answer to `error` for a token that came `via` the body or its cookie.
    #[must_use]
    pub fn new(transport: &TokenTransport, error: RefreshError, via: Via) -> Self {
        RefreshFailure {
            error,
            via,
            transport: transport.clone(),
        }
    }

    /// Why the refresh failed.
    #[must_use]
    pub fn error(&self) -> &RefreshError {
        &self.error
    }
}

impl std::fmt::Display for RefreshFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for RefreshFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl ResponseError for RefreshFailure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(transport::refresh_failure_status(&self.error).as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        http_response(self.transport.refresh_failure_reply(&self.error, self.via))
    }
}
