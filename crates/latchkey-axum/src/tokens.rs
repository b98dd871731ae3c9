//! Access/refresh token pairs (`latchkey-tokens`) over axum: extractors for the access token and
//! the presented refresh token, and responses for the token endpoint. Every decision — where a
//! token is read from, which cookie is set or deleted, which status and error code — is
//! [`TokenTransport`]'s; this module only moves requests and replies in and out of axum.
//!
//! The [`TokenService`] and the [`TokenTransport`] come from the router state through
//! [`FromRef`] (both are cheap to clone).
//!
//! ```
//! use axum::extract::{FromRef, State};
//! use axum::routing::{get, post};
//! use axum::Router;
//! use latchkey_axum::tokens::{Access, RefreshFailure, RefreshGrant, TokenResponse};
//! use latchkey_tokens::transport::TokenTransport;
//! use latchkey_tokens::TokenService;
//!
//! #[derive(Clone)]
//! struct AppState {
//!     tokens: TokenService,
//!     transport: TokenTransport,
//! }
//!
//! impl FromRef<AppState> for TokenService {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.tokens.clone()
//!     }
//! }
//!
//! impl FromRef<AppState> for TokenTransport {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.transport.clone()
//!     }
//! }
//!
//! async fn me(Access(access): Access) -> String {
//!     access.subject().to_owned()
//! }
//!
//! async fn refresh(
//!     State(tokens): State<TokenService>,
//!     grant: RefreshGrant,
//! ) -> Result<TokenResponse, RefreshFailure> {
//!     grant.refresh(&tokens).await
//! }
//!
//! fn app(state: AppState) -> Router {
//!     Router::new()
//!         .route("/me", get(me))
//!         .route("/refresh", post(refresh))
//!         .with_state(state)
//! }
//! # let _ = app;
//! ```

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use latchkey_tokens::transport::{
    self, AccessRefusal, GrantRefusal, TokenTransport, TransportReply, Via, MAX_REFRESH_BODY,
};
use latchkey_tokens::{AccessToken, RefreshError, TokenPair, TokenService};
use serde::de::DeserializeOwned;

fn into_response(reply: TransportReply) -> Response {
    let (status, headers, body) = reply.into_parts();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Any [`TransportReply`] as an axum response, e.g. [`TokenTransport::logout_reply`].
///
/// ```
/// use axum::response::IntoResponse;
/// use latchkey_axum::tokens::Reply;
/// use latchkey_tokens::transport::TokenTransport;
///
/// let response = Reply(TokenTransport::default().logout_reply()).into_response();
/// assert_eq!(response.status(), 204);
/// ```
#[derive(Debug)]
pub struct Reply(pub TransportReply);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        into_response(self.0)
    }
}

/// The request's verified access token: from `Authorization: Bearer` or the access cookie (when
/// the [`TokenTransport`] enables it), verified with the transport's revocation checks
/// (default: all). Refused with [`AccessRejection`]. `Option<Access<T>>` makes it optional: no
/// token at all is `None`, a bad token is still refused. `T` is the caller's claims.
#[derive(Debug, Clone)]
pub struct Access<T = serde_json::Value>(pub AccessToken<T>);

/// Why [`Access`] refused a request: `401` with `WWW-Authenticate` (RFC 6750 §3) and
/// `{"error":"invalid_request"}` or `{"error":"invalid_token"}`, or `503`
/// `{"error":"temporarily_unavailable"}` when a revocation check could not be made. The cause
/// is logged, never sent.
#[derive(Debug)]
pub struct AccessRejection(pub AccessRefusal);

impl std::fmt::Display for AccessRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AccessRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<AccessRefusal> for AccessRejection {
    fn from(refusal: AccessRefusal) -> Self {
        AccessRejection(refusal)
    }
}

impl IntoResponse for AccessRejection {
    fn into_response(self) -> Response {
        into_response(self.0.reply())
    }
}

impl<S, T> FromRequestParts<S> for Access<T>
where
    TokenService: FromRef<S>,
    TokenTransport: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AccessRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let transport = TokenTransport::from_ref(state);
        let token = transport.access_token_in(&parts.headers)?;
        let tokens = TokenService::from_ref(state);
        Ok(Access(transport.verify(&tokens, token).await?))
    }
}

impl<S, T> OptionalFromRequestParts<S> for Access<T>
where
    TokenService: FromRef<S>,
    TokenTransport: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AccessRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Access<T> as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(access) => Ok(Some(access)),
            Err(AccessRejection(AccessRefusal::Missing)) => Ok(None),
            Err(rejection) => Err(rejection),
        }
    }
}

/// The refresh token a request presents — from the refresh cookie or the JSON body
/// `{"refresh_token": …}` (at most [`MAX_REFRESH_BODY`] bytes) — and where it came from, so the
/// answer goes back the same way. Consumes the body: the last extractor of a handler. Refused
/// with [`GrantRejection`]. `Debug` redacts the token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    grant: transport::RefreshGrant,
    transport: TokenTransport,
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

/// Why [`RefreshGrant`] refused a request: `400` `{"error":"invalid_request"}` (RFC 6749 §5.2),
/// no cookie touched.
#[derive(Debug)]
pub struct GrantRejection(pub GrantRefusal);

impl std::fmt::Display for GrantRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GrantRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for GrantRejection {
    fn into_response(self) -> Response {
        into_response(self.0.reply())
    }
}

impl<S> FromRequest<S> for RefreshGrant
where
    TokenTransport: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GrantRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let transport = TokenTransport::from_ref(state);
        let (parts, body) = request.into_parts();
        // Over the limit, or a body that breaks off: nothing usable within 4 KiB.
        let body = axum::body::to_bytes(body, MAX_REFRESH_BODY)
            .await
            .map_err(|_| GrantRejection(GrantRefusal::TooLarge))?;
        let grant = transport
            .refresh_grant_in(&parts.headers, &body)
            .map_err(GrantRejection)?;
        Ok(RefreshGrant { grant, transport })
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

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        into_response(self.0)
    }
}

/// A refresh that gave no pair: `400 invalid_grant` for a dead token (deleting the refresh
/// cookie when the token came by cookie), `503 temporarily_unavailable` when the store is down
/// (every cookie kept), as [`TokenTransport::refresh_failure_reply`] decides.
#[derive(Debug)]
pub struct RefreshFailure {
    error: RefreshError,
    reply: TransportReply,
}

impl RefreshFailure {
    /// The answer to `error` for a token that came `via` the body or its cookie.
    #[must_use]
    pub fn new(transport: &TokenTransport, error: RefreshError, via: Via) -> Self {
        let reply = transport.refresh_failure_reply(&error, via);
        RefreshFailure { error, reply }
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

impl IntoResponse for RefreshFailure {
    fn into_response(self) -> Response {
        into_response(self.reply)
    }
}
