//! The HTTP the relying party needs — GET a document, POST a form — behind a small trait, so
//! that the client, its TLS and its proxy settings are the application's choice.

use std::fmt;
use std::time::Duration;

/// The most bytes read from any provider response.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The longest any provider request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider's answer: status, `Cache-Control`, body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Cache-Control` header, if any (for the key set's lifetime).
    pub cache_control: Option<String>,
    /// The body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpResponse {
    // A token response's body holds tokens: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("cache_control", &self.cache_control)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("the provider did not answer in time")]
    Timeout,
    /// The body was longer than [`MAX_RESPONSE_BYTES`].
    #[error("the provider's response is too large")]
    TooLarge,
    /// Anything else (connection refused, TLS, DNS); the source says which.
    #[error("the provider could not be reached")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What latchkey-oauth asks of an HTTP client. An implementation must:
///
/// - **not follow redirects**: a 3xx is returned as it is (a discovery document or key set
///   that redirects is refused, and the redirect's target is never contacted);
/// - give up after [`REQUEST_TIMEOUT`] ([`HttpError::Timeout`]);
/// - read at most [`MAX_RESPONSE_BYTES`] of a body ([`HttpError::TooLarge`]).
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync + fmt::Debug + 'static {
    /// `GET url`, `Accept: application/json`.
    ///
    /// # Errors
    ///
    /// [`HttpError`] when no complete response arrived.
    async fn get(&self, url: &str) -> Result<HttpResponse, HttpError>;

    /// `POST url` with an `application/x-www-form-urlencoded` body of `form`, and HTTP Basic
    /// authentication with `basic` (client ID, secret) when given (RFC 6749 §2.3.1; the
    /// client ID and secret are form-urlencoded before Basic encoding, as it says).
    ///
    /// # Errors
    ///
    /// [`HttpError`] when no complete response arrived.
    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpError>;
}
