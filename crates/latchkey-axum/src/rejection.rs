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

/// A state-changing request failed a CSRF check: `403 Forbidden`, `{"error":"forbidden"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// `Origin` (or `Referer`) is not an allowed origin.
    ForeignOrigin,
    /// The session holds a CSRF token and the request did not repeat it in the CSRF header.
    BadToken,
}

impl std::fmt::Display for CsrfRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CsrfRejection::ForeignOrigin => "request origin is not allowed",
            CsrfRejection::BadToken => "missing or wrong CSRF token",
        })
    }
}

impl std::error::Error for CsrfRejection {}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        tracing::debug!(reason = %self, "CSRF check refused a request");
        json_error(StatusCode::FORBIDDEN, "forbidden")
    }
}
