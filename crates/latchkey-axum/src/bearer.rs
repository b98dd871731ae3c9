//! `Authorization: Bearer <jwt>` (RFC 6750) verified with latchkey-jwt.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_jwt::{BearerRefusal, Claims, Verifier};
use serde::de::DeserializeOwned;

use crate::rejection::json_error;

/// The verified claims of a request's bearer token.
///
/// The [`Verifier`] (keys and [`Validation`](latchkey_jwt::Validation)) comes from the router's
/// state through [`FromRef`]: the state must give an `Arc<Verifier>`. A missing token is a 401 with
/// `WWW-Authenticate: Bearer`; a token that fails any check is a 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` and nothing about which check failed (the cause
/// is logged at debug level). Use `Option<Bearer<T>>` for routes where the token is optional: a
/// missing token (or another scheme) is `None`, a bad one is still refused.
///
/// ```
/// use std::sync::Arc;
/// use axum::{routing::get, Router};
/// use latchkey_axum::Bearer;
/// use latchkey_jwt::{Algorithm, HmacKey, Validation, Verifier};
///
/// async fn whoami(Bearer(claims): Bearer) -> String {
///     claims.sub.unwrap_or_default()
/// }
///
/// let key = HmacKey::from_secret(Algorithm::HS256, &[7; 32])?;
/// let verifier = Arc::new(Verifier::new(key, Validation::builder().build()?));
/// let app: Router = Router::new().route("/whoami", get(whoami)).with_state(verifier);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Bearer<T = ()>(pub Claims<T>);

/// Why a bearer token was refused: always `401 Unauthorized`, with the RFC 6750 challenge of
/// the [`BearerRefusal`] in `WWW-Authenticate` (`Bearer`, or `Bearer error="invalid_token"`) and
/// `{"error":"unauthorized"}` or `{"error":"invalid_token"}`. The refusal (with the JWT error) is
/// kept for logs and tests, and logged at debug level, never sent.
#[derive(Debug)]
pub struct BearerRejection(pub BearerRefusal);

impl From<BearerRefusal> for BearerRejection {
    fn from(refusal: BearerRefusal) -> Self {
        Self(refusal)
    }
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        if !matches!(self.0, BearerRefusal::Missing) {
            tracing::debug!(reason = %self.0, source = ?std::error::Error::source(&self.0), "bearer token refused");
        }
        let mut response = json_error(StatusCode::UNAUTHORIZED, self.0.code());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(self.0.challenge()),
        );
        response
    }
}

impl<S, T> FromRequestParts<S> for Bearer<T>
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Bearer<T> as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or(BearerRejection(BearerRefusal::Missing))
    }
}

impl<S, T> OptionalFromRequestParts<S> for Bearer<T>
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let authorization = parts.headers.get_all(header::AUTHORIZATION);
        Ok(verifier
            .verify_bearer(authorization.iter().map(|value| value.to_str().ok()))?
            .map(Bearer))
    }
}
