//! Typed rejections. Each implements [`IntoResponse`] with an opaque body: a status code and a short
//! JSON `{"error": "<code>"}` — never an internal detail, a session ID, a token or a key. The cause is
//! logged with `tracing` on the server side instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A response with `status` and the body `{"error":"<code>"}`.
pub(crate) fn json_error(status: StatusCode, code: &'static str) -> Response {
    let body = format!("{{\"error\":\"{code}\"}}");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The answer to a state-changing request that a CSRF defence refused: `403 Forbidden`,
/// `{"error":"forbidden"}`. The [`CsrfRefusal`](latchkey_session::CsrfRefusal) comes from
/// [`latchkey_session`]'s policy and is logged (at `debug`), never sent.
pub(crate) fn forbidden(refusal: latchkey_session::CsrfRefusal) -> Response {
    tracing::debug!(reason = %refusal, "CSRF check refused a request");
    json_error(StatusCode::FORBIDDEN, "forbidden")
}

/// Why a request could not use its session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route has no [`SessionLayer`](crate::SessionLayer) in front of it: a programming error,
    /// answered with `500` and logged.
    MissingLayer,
    /// The session store is unavailable, timed out or full: `503`, `{"error":"service_unavailable"}`.
    Unavailable(latchkey_session::SessionError),
    /// Any other session failure: `500`, `{"error":"internal_error"}`.
    Internal(latchkey_session::SessionError),
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionRejection::MissingLayer => {
                f.write_str("no SessionLayer in front of a route that extracts Session")
            }
            SessionRejection::Unavailable(_) => f.write_str("session store unavailable"),
            SessionRejection::Internal(_) => f.write_str("session error"),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionRejection::MissingLayer => None,
            SessionRejection::Unavailable(error) | SessionRejection::Internal(error) => Some(error),
        }
    }
}

impl From<latchkey_session::SessionError> for SessionRejection {
    fn from(error: latchkey_session::SessionError) -> Self {
        if error.is_unavailable() {
            SessionRejection::Unavailable(error)
        } else {
            SessionRejection::Internal(error)
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match &self {
            SessionRejection::MissingLayer => {
                tracing::error!("{self}");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
            SessionRejection::Unavailable(error) => {
                tracing::warn!(error = %error, source = ?std::error::Error::source(error), "session store unavailable: answering 503");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable")
            }
            SessionRejection::Internal(error) => {
                tracing::error!(error = %error, source = ?std::error::Error::source(error), "session error: answering 500");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        }
    }
}
