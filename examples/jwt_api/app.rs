//! The `jwt_api` service: routes, transport of the tokens, and the mapping of outcomes to
//! OAuth 2.0 responses. Shared by `main.rs` and the end-to-end tests.
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

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_tokens::{AccessToken, Checks, RefreshError, TokenPair, TokenService, VerifyError};
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
    /// Demo credentials (username → password). A real service checks an argon2 hash (see the
    /// `login` example).
    users: Arc<HashMap<String, String>>,
}

impl App {
    /// An app issuing tokens with `tokens` for `users` (username, password).
    pub(crate) fn new(tokens: TokenService, users: &[(&str, &str)]) -> Self {
        let users = users
            .iter()
            .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
            .collect();
        App {
            tokens,
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

/// An error response in the shape of RFC 6749 §5.2 / RFC 6750 §3.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    /// The `WWW-Authenticate` challenge, for the resource endpoints.
    bearer: Option<&'static str>,
    clear_cookies: bool,
}

impl OAuthError {
    fn grant(code: &'static str, clear_cookies: bool) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            bearer: None,
            clear_cookies,
        }
    }

    fn token() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            bearer: Some(r#"Bearer error="invalid_token""#),
            clear_cookies: false,
        }
    }

    fn unavailable() -> Self {
        OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            bearer: None,
            clear_cookies: false,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.code }))).into_response();
        let headers = response.headers_mut();
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.bearer {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.clear_cookies {
            clear_cookies(headers);
        }
        response
    }
}

fn clear_cookies(headers: &mut HeaderMap) {
    for cookie in [
        format!("{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/refresh; Max-Age=0"),
        format!("{ACCESS_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The token response; the refresh token in the body for mobile clients, in cookies otherwise.
fn token_response(pair: &TokenPair, in_body: bool) -> Response {
    let mut body = json!({
        "access_token": pair.access_token(),
        "token_type": pair.token_type(),
        "expires_in": pair.expires_in(),
    });
    if in_body {
        body["refresh_token"] = json!(pair.refresh_token());
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    if !in_body {
        for cookie in [
            format!(
                "{REFRESH_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/refresh; Max-Age={}",
                pair.refresh_token(),
                pair.refresh_expires_in()
            ),
            format!(
                "{ACCESS_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
                pair.access_token(),
                pair.expires_in()
            ),
        ] {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.append(SET_COOKIE, value);
            }
        }
    }
    response
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
) -> Result<Response, OAuthError> {
    let Some(Json(request)) = body else {
        return Err(OAuthError::grant("invalid_request", false));
    };
    let known = app.users.get(&request.username);
    // Demo only: a real service compares an argon2 hash, in constant time.
    if known != Some(&request.password) {
        return Err(OAuthError::grant("invalid_grant", false));
    }
    let pair = app
        .tokens
        .issue(&request.username, &json!({ "scope": "profile" }))
        .await
        .map_err(|_| OAuthError::unavailable())?;
    Ok(token_response(
        &pair,
        request.client.as_deref() == Some("mobile"),
    ))
}

/// The caller's verified access token, from `Authorization: Bearer` or the cookie.
async fn caller(app: &App, headers: &HeaderMap) -> Result<AccessToken<Value>, OAuthError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer.or_else(|| cookie(headers, ACCESS_COOKIE)) else {
        // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
        return Err(OAuthError {
            code: "invalid_request",
            bearer: Some("Bearer"),
            ..OAuthError::token()
        });
    };
    match app.tokens.verify::<Value>(token, Checks::ALL).await {
        Ok(access) => Ok(access),
        Err(VerifyError::StoreUnavailable(_)) => Err(OAuthError::unavailable()),
        Err(_) => Err(OAuthError::token()),
    }
}

async fn me(State(app): State<App>, headers: HeaderMap) -> Result<Json<Value>, OAuthError> {
    let access = caller(&app, &headers).await?;
    Ok(Json(json!({
        "sub": access.subject(),
        "scope": access.claims.custom.get("scope"),
        "exp": access.claims.exp,
    })))
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(app): State<App>,
    headers: HeaderMap,
    body: Option<Json<RefreshRequest>>,
) -> Result<Response, OAuthError> {
    let (token, in_body) = match (&body, cookie(&headers, REFRESH_COOKIE)) {
        (Some(Json(request)), _) => (request.refresh_token.as_str(), true),
        (None, Some(token)) => (token, false),
        (None, None) => return Err(OAuthError::grant("invalid_request", false)),
    };
    match app.tokens.refresh(token).await {
        Ok(pair) => Ok(token_response(&pair, in_body)),
        // Reused, Expired, Revoked, Unknown: the token is dead, the client must log in again.
        Err(RefreshError::StoreUnavailable(_)) => Err(OAuthError::unavailable()),
        Err(err) => Err(OAuthError::grant(
            "invalid_grant",
            err.is_final() && !in_body,
        )),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Result<Response, OAuthError> {
    let access = caller(&app, &headers).await?;
    app.tokens
        .revoke_family(&access.family)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(response.headers_mut());
    Ok(response)
}

async fn logout_all(State(app): State<App>, headers: HeaderMap) -> Result<Response, OAuthError> {
    let access = caller(&app, &headers).await?;
    app.tokens
        .revoke_subject(access.subject())
        .await
        .map_err(|_| OAuthError::unavailable())?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(response.headers_mut());
    Ok(response)
}
