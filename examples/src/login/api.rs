//! JSON bodies in and errors out, with clear messages and never an internal detail.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde::de::DeserializeOwned;

/// An error answer: `status` and `{"error": code, "message": message}`.
#[derive(Debug, Clone, Copy)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short machine-readable code.
    pub code: &'static str,
    /// A sentence for the user.
    pub message: &'static str,
}

impl ApiError {
    /// Builds an error answer.
    #[must_use]
    pub const fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    /// 401: no logged-in session.
    pub const UNAUTHENTICATED: Self =
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first");

    /// 400: the body is not JSON (or ends early).
    pub const MALFORMED_JSON: Self = Self::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        "the request body is not valid JSON",
    );

    /// 422: JSON, but not the object the route takes.
    pub const INVALID_BODY: Self = Self::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        "the request body must be a JSON object {\"id\": string, \"password\": string}",
    );

    /// 415: no `Content-Type: application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as Content-Type: application/json",
    );

    /// 413: over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES).
    pub const BODY_TOO_LARGE: Self = Self::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is too large",
    );

    /// 400: the body could not be read for another reason.
    pub const UNREADABLE_BODY: Self = Self::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the request body could not be read",
    );

    /// The answer to a body that serde_json refused: a syntax error or a body that ends early is
    /// [`MALFORMED_JSON`](Self::MALFORMED_JSON), valid JSON of the wrong shape
    /// [`INVALID_BODY`](Self::INVALID_BODY).
    #[must_use]
    pub fn from_json_error(error: &serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Data => Self::INVALID_BODY,
            _ => Self::MALFORMED_JSON,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(_) => ApiError::MALFORMED_JSON,
            JsonRejection::JsonDataError(_) => ApiError::INVALID_BODY,
            JsonRejection::MissingJsonContentType(_) => ApiError::UNSUPPORTED_MEDIA_TYPE,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::BODY_TOO_LARGE,
            _ => ApiError::UNREADABLE_BODY,
        }
    }
}

/// `Json<T>` with [`ApiError`] rejections instead of axum's plain-text ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError::from(rejection)),
        }
    }
}
