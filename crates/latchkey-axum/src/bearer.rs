//! `Authorization: Bearer <jwt>` (RFC 6750) verified with latchkey-jwt.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_jwt::{bearer_credentials, BearerCredentials, Claims, Verifier};
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

/// Why a bearer token was refused: always `401 Unauthorized` with a `WWW-Authenticate` challenge.
#[derive(Debug)]
#[non_exhaustive]
pub enum BearerRejection {
    /// No `Authorization: Bearer` header: `WWW-Authenticate: Bearer`, `{"error":"unauthorized"}`.
    Missing,
    /// An `Authorization: Bearer` header that holds no usable token (several headers, bytes that
    /// are not text, an empty token): answered like [`Invalid`](Self::Invalid).
    Malformed,
    /// The token failed a check: `WWW-Authenticate: Bearer error="invalid_token"`,
    /// `{"error":"invalid_token"}`. The error is kept for logs and tests, never sent.
    Invalid(latchkey_jwt::Error),
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerRejection::Missing => f.write_str("no bearer token"),
            BearerRejection::Malformed => f.write_str("malformed bearer credentials"),
            BearerRejection::Invalid(_) => f.write_str("invalid bearer token"),
        }
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BearerRejection::Missing | BearerRejection::Malformed => None,
            BearerRejection::Invalid(error) => Some(error),
        }
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let (challenge, code) = match &self {
            BearerRejection::Missing => (HeaderValue::from_static("Bearer"), "unauthorized"),
            BearerRejection::Malformed | BearerRejection::Invalid(_) => {
                tracing::debug!(reason = %self, source = ?std::error::Error::source(&self), "bearer token refused");
                (
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    "invalid_token",
                )
            }
        };
        let mut response = json_error(StatusCode::UNAUTHORIZED, code);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
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
        match <Bearer<T> as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(Some(bearer)) => Ok(bearer),
            Ok(None) => Err(BearerRejection::Missing),
            Err(rejection) => Err(rejection),
        }
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
        let values = parts.headers.get_all(header::AUTHORIZATION);
        match bearer_credentials(values.iter().map(HeaderValue::as_bytes)) {
            BearerCredentials::Absent => Ok(None),
            BearerCredentials::Malformed => Err(BearerRejection::Malformed),
            BearerCredentials::Token(token) => {
                let verifier = Arc::<Verifier>::from_ref(state);
                match verifier.verify::<T>(token) {
                    Ok(claims) => Ok(Some(Bearer(claims))),
                    Err(error) => Err(BearerRejection::Invalid(error)),
                }
            }
        }
    }
}
