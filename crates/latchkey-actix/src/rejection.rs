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

/// The answer to a state-changing request that a CSRF defence refused: `403 Forbidden`,
/// `{"error":"forbidden"}`. The [`CsrfRefusal`](latchkey_session::CsrfRefusal) comes from
/// [`latchkey_session`]'s policy and is logged (at `debug`), never sent.
pub(crate) fn forbidden(refusal: latchkey_session::CsrfRefusal) -> HttpResponse {
    tracing::debug!(reason = %refusal, "CSRF protection refused a request");
    json_error(StatusCode::FORBIDDEN, "forbidden")
}

/// Why a request could not use its session: `503` `{"error":"service_unavailable"}` when the
/// store is unavailable ([`is_unavailable`](latchkey_session::SessionError::is_unavailable)),
/// else `500` `{"error":"internal_error"}`; the cause is logged, never sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in [`SessionMiddleware`](crate::SessionMiddleware): a programming
    /// error.
    MissingMiddleware,
    /// The session failed (the store, the data, the cap…).
    Session(latchkey_session::SessionError),
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionRejection::MissingMiddleware => {
                f.write_str("Session extracted on a route without SessionMiddleware")
            }
            SessionRejection::Session(inner) => inner.fmt(f),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionRejection::MissingMiddleware => None,
            SessionRejection::Session(inner) => Some(inner),
        }
    }
}

impl From<latchkey_session::SessionError> for SessionRejection {
    fn from(inner: latchkey_session::SessionError) -> Self {
        SessionRejection::Session(inner)
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            SessionRejection::Session(inner) if inner.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let source = std::error::Error::source(self).and_then(std::error::Error::source);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, ?source, "session store unavailable: 503");
            json_error(status, "service_unavailable")
        } else {
            tracing::error!(error = %self, ?source, "session failure: 500");
            json_error(status, "internal_error")
        }
    }
}
