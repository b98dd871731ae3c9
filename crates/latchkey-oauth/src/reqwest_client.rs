//! [`HttpClient`] on reqwest: no redirects, a timeout, a response cap.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::http::{HttpClient, HttpError, HttpResponse, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT};

/// The [`HttpClient`] of the `reqwest` feature: redirects are never followed, every request
/// gives up after [`REQUEST_TIMEOUT`] and bodies stop at [`MAX_RESPONSE_BYTES`].
///
/// The `rustls` feature turns on reqwest's rustls TLS with the webpki roots; without it, enable
/// a TLS feature of `reqwest` in your own manifest (features unify), or only plain-HTTP
/// loopback providers can be reached.
///
/// ```
/// let http = latchkey_oauth::ReqwestClient::new().expect("a client");
/// # let _ = http;
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
    max_bytes: usize,
}

impl ReqwestClient {
    /// A client with the defaults.
    ///
    /// # Errors
    ///
    /// [`HttpError::Transport`] when reqwest cannot build a client (no TLS backend usable).
    pub fn new() -> Result<Self, HttpError> {
        Self::with_limits(REQUEST_TIMEOUT, MAX_RESPONSE_BYTES)
    }

    /// A client with a shorter timeout or a smaller cap (tests; never longer or larger than
    /// the defaults).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_limits(timeout: Duration, max_bytes: usize) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout.min(REQUEST_TIMEOUT))
            .build()
            .map_err(|e| HttpError::Transport(Box::new(e)))?;
        Ok(Self {
            client,
            max_bytes: max_bytes.min(MAX_RESPONSE_BYTES),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse, HttpError> {
        let mut response = request.send().await.map_err(map_error)?;
        let status = response.status().as_u16();
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_error)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            cache_control,
            body,
        })
    }
}

fn map_error(err: reqwest::Error) -> HttpError {
    if err.is_timeout() {
        HttpError::Timeout
    } else {
        // reqwest's errors name the URL, never a body or a credential.
        HttpError::Transport(Box::new(err.without_url()))
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn get(&self, url: &str) -> Result<HttpResponse, HttpError> {
        self.send(
            self.client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json"),
        )
        .await
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some((id, secret)) = basic {
            // RFC 6749 §2.3.1: each part form-urlencoded, then Basic (reqwest's basic_auth
            // would skip the first step, and a secret with `:` or `%` would not authenticate).
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("Basic {credentials}"),
            );
        }
        self.send(request).await
    }
}
