//! The `jwt_api` service: its routes, on the token extractors of `latchkey::axum::tokens`. Where
//! tokens travel and how outcomes map to OAuth 2.0 responses is
//! [`TokenTransport`]'s (latchkey-tokens), not this file's. Shared by `main.rs` and the
//! end-to-end tests.
//!
//! - `POST /login` `{"username", "password", "client"?}` → a token response (RFC 6749 §5.1).
//!   `"client": "mobile"` puts the refresh token in the body; otherwise it travels in an
//!   `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/refresh` (and the access token also
//!   in an `HttpOnly` cookie, for browser clients).
//! - `GET /me` — the caller, from `Authorization: Bearer` or the access-token cookie, verified with
//!   every revocation check.
//! - `POST /refresh` — the refresh token from the cookie or the body `{"refresh_token"}`.
//! - `POST /logout` — revokes the caller's family. `POST /logout-all` — every login of the caller.
//!
//! Errors: RFC 6749 §5.2 (`invalid_request`, `invalid_grant`) for the token endpoints, RFC 6750
//! (`401` + `WWW-Authenticate: Bearer error="invalid_token"`) for the resource, and `503`
//! `temporarily_unavailable` when the store is down. The refresh cookie is cleared only when the
//! refresh token is dead for good — never when the store is down, and a refresh that lost a race
//! is not an error at all (it gets the same successor).
#![allow(dead_code)] // each of main.rs and the tests uses a part

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey::axum::tokens::{Access, RefreshFailure, RefreshGrant, Reply, TokenResponse};
use latchkey::tokens::transport::{TokenTransport, TransportReply, Via};
use latchkey::tokens::TokenService;
use serde::Deserialize;
use serde_json::{json, Value};

/// Name of the refresh-token cookie.
pub(crate) const REFRESH_COOKIE: &str = "refresh_token";
/// Name of the access-token cookie (browser clients).
pub(crate) const ACCESS_COOKIE: &str = "access_token";

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    tokens: TokenService,
    transport: TokenTransport,
    /// Demo credentials (username → password). A real service checks an argon2 hash (see the
    /// `login` example).
    users: Arc<HashMap<String, String>>,
}

impl FromRef<App> for TokenService {
    fn from_ref(app: &App) -> Self {
        app.tokens.clone()
    }
}

impl FromRef<App> for TokenTransport {
    fn from_ref(app: &App) -> Self {
        app.transport.clone()
    }
}

impl App {
    /// An app issuing tokens with `tokens` for `users` (username, password).
    ///
    /// # Panics
    /// Never: the cookie names are fixed and valid.
    pub(crate) fn new(tokens: TokenService, users: &[(&str, &str)]) -> Self {
        let users = users
            .iter()
            .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
            .collect();
        let transport = TokenTransport::builder()
            .refresh_cookie(REFRESH_COOKIE)
            .access_cookie(ACCESS_COOKIE)
            .build()
            .expect("fixed, valid cookie names");
        App {
            tokens,
            transport,
            users: Arc::new(users),
        }
    }
}

/// The routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .with_state(app)
}

fn oauth_error(status: StatusCode, code: &'static str) -> Reply {
    Reply(TransportReply::error(status, code))
}

fn unavailable() -> Reply {
    oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    client: Option<String>,
}

async fn login(
    State(app): State<App>,
    body: Option<Json<LoginRequest>>,
) -> Result<TokenResponse, Reply> {
    let Some(Json(request)) = body else {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request"));
    };
    let known = app.users.get(&request.username);
    // Demo only: a real service compares an argon2 hash, in constant time.
    if known != Some(&request.password) {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"));
    }
    let pair = app
        .tokens
        .issue(&request.username, &json!({ "scope": "profile" }))
        .await
        .map_err(|_| unavailable())?;
    let via = if request.client.as_deref() == Some("mobile") {
        Via::Body
    } else {
        Via::Cookie
    };
    Ok(TokenResponse::new(&app.transport, &pair, via))
}

async fn me(Access(access): Access<Value>) -> Json<Value> {
    Json(json!({
        "sub": access.subject(),
        "scope": access.claims.custom.get("scope"),
        "exp": access.claims.exp,
    }))
}

async fn refresh(
    State(tokens): State<TokenService>,
    grant: RefreshGrant,
) -> Result<TokenResponse, RefreshFailure> {
    grant.refresh(&tokens).await
}

async fn logout(State(app): State<App>, Access(access): Access<Value>) -> Result<Reply, Reply> {
    app.tokens
        .revoke_family(&access.family)
        .await
        .map_err(|_| unavailable())?;
    Ok(Reply(app.transport.logout_reply()))
}

async fn logout_all(State(app): State<App>, Access(access): Access<Value>) -> Result<Reply, Reply> {
    app.tokens
        .revoke_subject(access.subject())
        .await
        .map_err(|_| unavailable())?;
    Ok(Reply(app.transport.logout_reply()))
}
