//! Typed errors, each an actix [`ResponseError`] with an opaque body: a status code and a short
//! JSON `{"error": "<code>"}` — never an internal detail, a session ID, a token or a key. The cause
//! is logged with `tracing` on the server side instead.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// A response with `status` and the body `{"error":"<code>"}`.
pub(crate) fn json_error(status: StatusCode, code: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(format!("{{\"error\":\"{code}\"}}"))
}

/// A state-changing request failed a CSRF check: `403 Forbidden`, `{"error":"forbidden"}`.
///
/// The reason comes from [`latchkey_session`]'s policy and is logged (at `debug`), never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// The origin check refused the request (a foreign or `null` `Origin`, a foreign `Referer`,
    /// a cross-site request without `Origin`, …).
    Origin(latchkey_session::OriginRefusal),
    /// The session holds a CSRF token and the request did not repeat it in the CSRF header.
    Token(latchkey_session::TokenRefusal),
}

impl std::fmt::Display for CsrfRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsrfRejection::Origin(refusal) => write!(f, "origin not allowed ({refusal})"),
            CsrfRejection::Token(refusal) => write!(f, "synchronizer token refused ({refusal})"),
        }
    }
}

impl std::error::Error for CsrfRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CsrfRejection::Origin(refusal) => Some(refusal),
            CsrfRejection::Token(refusal) => Some(refusal),
        }
    }
}

impl ResponseError for CsrfRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        tracing::debug!(reason = %self, "CSRF protection refused a request");
        json_error(self.status_code(), "forbidden")
    }
}

/// Why a request could not use its session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in [`SessionMiddleware`](crate::SessionMiddleware): a programming
    /// error, answered with `500` and logged.
    MissingMiddleware,
    /// The session store is unavailable, timed out or full: `503`, `{"error":"service_unavailable"}`.
    Unavailable(latchkey_session::SessionError),
    /// Any other session failure: `500`, `{"error":"internal_error"}`.
    Internal(latchkey_session::SessionError),
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionRejection::MissingMiddleware => {
                "Session extracted on a route without SessionMiddleware"
            }
            SessionRejection::Unavailable(_) => "the session store is unavailable",
            SessionRejection::Internal(_) => "the session could not be used",
        })
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionRejection::MissingMiddleware => None,
            SessionRejection::Unavailable(inner) | SessionRejection::Internal(inner) => Some(inner),
        }
    }
}

impl From<latchkey_session::SessionError> for SessionRejection {
    fn from(inner: latchkey_session::SessionError) -> Self {
        if inner.is_unavailable() {
            SessionRejection::Unavailable(inner)
        } else {
            SessionRejection::Internal(inner)
        }
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            SessionRejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionRejection::MissingMiddleware | SessionRejection::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            SessionRejection::MissingMiddleware => {
                tracing::error!("{self}");
                "internal_error"
            }
            SessionRejection::Unavailable(inner) => {
                tracing::warn!(error = %inner, source = ?std::error::Error::source(inner), "{self}: 503");
                "service_unavailable"
            }
            SessionRejection::Internal(inner) => {
                tracing::error!(error = %inner, source = ?std::error::Error::source(inner), "{self}: 500");
                "internal_error"
            }
        };
        json_error(self.status_code(), code)
    }
}
