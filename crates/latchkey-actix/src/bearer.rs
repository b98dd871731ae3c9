//! `Authorization: Bearer <jwt>` (RFC 6750) verified with latchkey-jwt.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use latchkey_jwt::{BearerRefusal, Claims, Verifier};
use serde::de::DeserializeOwned;

use crate::rejection::json_error;

/// The verified claims of a request's bearer token.
///
/// The [`Verifier`] (keys and [`Validation`](latchkey_jwt::Validation)) comes from the app data:
/// register it with `App::app_data(web::Data::new(verifier))`. A missing token is a 401 with
/// `WWW-Authenticate: Bearer`; a token that fails any check is a 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` and nothing about which check failed (the cause
/// is logged at debug level).
///
/// For routes where the token is optional use [`MaybeBearer`], not `Option<Bearer>`: actix's
/// `Option<T>` extractor turns *every* failure into `None`, so a forged token would pass as
/// "anonymous" instead of being refused.
///
/// ```
/// use actix_web::{web, App};
/// use latchkey_actix::Bearer;
/// use latchkey_jwt::{Algorithm, HmacKey, Validation, Verifier};
///
/// async fn whoami(Bearer(claims): Bearer) -> String {
///     claims.sub.unwrap_or_default()
/// }
///
/// let key = HmacKey::from_secret(Algorithm::HS256, &[7; 32])?;
/// let verifier = web::Data::new(Verifier::new(key, Validation::builder().build()?));
/// let app = App::new()
///     .app_data(verifier)
///     .route("/whoami", web::get().to(whoami));
/// # let _ = app;
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Bearer<T = ()>(pub Claims<T>);

/// Optional bearer authentication: `MaybeBearer(None)` when the request offers no bearer token
/// (no `Authorization` header, or another scheme), the claims when it offers a valid one, and the
/// same 401 as [`Bearer`] when it offers a bad one.
#[derive(Debug, Clone)]
pub struct MaybeBearer<T = ()>(pub Option<Claims<T>>);

/// Why a bearer token was refused: `401 Unauthorized` with the RFC 6750 challenge of the
/// [`BearerRefusal`] in `WWW-Authenticate` (`Bearer`, or `Bearer error="invalid_token"`) and
/// `{"error":"unauthorized"}` or `{"error":"invalid_token"}`; or a `500` for a missing verifier
/// (a programming error). The cause is logged, never sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum BearerRejection {
    /// The bearer credentials were refused (missing, malformed, or a token that failed a check).
    Refused(BearerRefusal),
    /// A token was offered but the app has no `web::Data<Verifier>`: `{"error":"internal_error"}`.
    MissingVerifier,
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerRejection::Refused(refusal) => refusal.fmt(f),
            BearerRejection::MissingVerifier => {
                f.write_str("Bearer extracted without web::Data<Verifier> in the app")
            }
        }
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BearerRejection::Refused(refusal) => Some(refusal),
            BearerRejection::MissingVerifier => None,
        }
    }
}

impl ResponseError for BearerRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            BearerRejection::Refused(_) => StatusCode::UNAUTHORIZED,
            BearerRejection::MissingVerifier => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let refusal = match self {
            BearerRejection::Refused(refusal) => refusal,
            BearerRejection::MissingVerifier => {
                tracing::error!("{self}");
                return json_error(self.status_code(), "internal_error");
            }
        };
        if !matches!(refusal, BearerRefusal::Missing) {
            tracing::debug!(reason = %refusal, source = ?std::error::Error::source(refusal), "401 for a bearer token");
        }
        let mut response = json_error(self.status_code(), refusal.code());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(refusal.challenge()),
        );
        response
    }
}

/// The verified claims of `request`'s bearer token; `Ok(None)` when it offers none.
fn verify<T: DeserializeOwned>(
    request: &HttpRequest,
) -> Result<Option<Claims<T>>, BearerRejection> {
    let authorization = request.headers().get_all(header::AUTHORIZATION);
    let mut authorization = authorization.map(|value| value.to_str().ok()).peekable();
    if authorization.peek().is_none() {
        return Ok(None);
    }
    let verifier = request
        .app_data::<web::Data<Verifier>>()
        .ok_or(BearerRejection::MissingVerifier)?;
    verifier
        .verify_bearer(authorization)
        .map_err(BearerRejection::Refused)
}

impl<T: DeserializeOwned> FromRequest for Bearer<T> {
    type Error = BearerRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(verify(request).and_then(|claims| {
            claims
                .map(Bearer)
                .ok_or(BearerRejection::Refused(BearerRefusal::Missing))
        }))
    }
}

impl<T: DeserializeOwned> FromRequest for MaybeBearer<T> {
    type Error = BearerRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(verify(request).map(MaybeBearer))
    }
}
