//! How tokens travel over HTTP, for every web adapter: where a request's access and refresh
//! tokens are read from, and what the token endpoint and the resource answer.
//!
//! Framework-free: requests are read as header text (the way [`bearer_credentials`] takes them)
//! and body bytes, and answers are [`TransportReply`]s made of [`http`] types, which an adapter
//! turns into its framework's response without deciding anything.
//!
//! - **Access token**: `Authorization: Bearer` (RFC 6750 §2.1), or, when
//!   [enabled](TokenTransportBuilder::access_cookie), an `HttpOnly` cookie. A bearer header wins
//!   over the cookie.
//! - **Refresh token**: an `HttpOnly; Secure; SameSite=Strict` cookie scoped to the refresh path
//!   (default `/refresh`), or the JSON body `{"refresh_token": "…"}` (at most
//!   [`MAX_REFRESH_BODY`] bytes) for clients without cookies. A request carrying both is refused.
//! - **Token response** (RFC 6749 §5.1): `access_token`, `token_type`, `expires_in`, and
//!   `refresh_token` when it travels in the body; `Cache-Control: no-store`, `Pragma: no-cache`;
//!   when it travels by cookie, `Set-Cookie` with `Max-Age` equal to the refresh lifetime.
//! - **Errors**: RFC 6749 §5.2 at the token endpoint (`400 invalid_request` for malformed input,
//!   `400 invalid_grant` for a dead refresh token, `503 temporarily_unavailable` when the store
//!   is down) and RFC 6750 §3 at the resource (`401` with `WWW-Authenticate`). The refresh
//!   cookie is deleted **only** when the token is dead for good ([`RefreshError::is_final`]) and
//!   came by cookie: never for a store outage, and a refresh that lost a race is a success.
//!
//! No token ever appears in a `Debug` output, an error or a log line.
//!
//! ```
//! use latchkey_tokens::transport::{TokenTransport, Via};
//!
//! let transport = TokenTransport::builder().access_cookie("access_token").build()?;
//! let grant = transport.refresh_grant([Some("theme=dark; refresh_token=abc")], b"")?;
//! assert_eq!((grant.token(), grant.via()), ("abc", Via::Cookie));
//! let grant = transport.refresh_grant(None, br#"{"refresh_token":"abc"}"#)?;
//! assert_eq!(grant.via(), Via::Body);
//! assert!(transport.refresh_grant(None, b"{}").is_err()); // 400 invalid_request
//! assert_eq!(transport.access_token([Some("Bearer xyz")], None)?, "xyz");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use latchkey_jwt::{bearer_credentials, BearerCredentials};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{RefreshError, VerifyError};
use crate::service::{AccessToken, Checks, TokenPair, TokenService};
use crate::store::StoreError;

/// Default name of the refresh-token cookie.
pub const DEFAULT_REFRESH_COOKIE: &str = "refresh_token";
/// Default path the refresh cookie is scoped to (the refresh endpoint).
pub const DEFAULT_REFRESH_PATH: &str = "/refresh";
/// Largest refresh request body read, in bytes; a longer one is `400 invalid_request`.
pub const MAX_REFRESH_BODY: usize = 4096;

const BEARER_CHALLENGE: &str = "Bearer";
const INVALID_TOKEN_CHALLENGE: &str = "Bearer error=\"invalid_token\"";

/// Where a refresh token travels: in its cookie (browsers) or in the JSON body (mobile and
/// other clients without a cookie jar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The `HttpOnly` refresh cookie.
    Cookie,
    /// The JSON body (`{"refresh_token": "…"}` in a request, the `refresh_token` field of a
    /// token response).
    Body,
}

/// The status of [`TokenTransport::refresh_failure_reply`] for `error`: `400` for a dead token
/// ([`RefreshError::is_final`]), `503` when the store could not answer.
///
/// ```
/// use latchkey_tokens::{transport::refresh_failure_status, RefreshError};
///
/// assert_eq!(refresh_failure_status(&RefreshError::Reused), 400);
/// ```
#[must_use]
pub fn refresh_failure_status(error: &RefreshError) -> StatusCode {
    if error.is_final() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Reads and writes tokens on HTTP requests and responses; built with
/// [`builder`](Self::builder), cheap to clone (one `Arc`). See the [module docs](self).
///
/// ```
/// use latchkey_tokens::transport::TokenTransport;
///
/// let transport = TokenTransport::builder()
///     .refresh_cookie("__Host-rt")
///     .refresh_path("/auth/refresh")
///     .build()?;
/// assert_eq!(transport.refresh_path(), "/auth/refresh");
/// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenTransport {
    inner: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    refresh_cookie: String,
    refresh_path: String,
    access_cookie: Option<String>,
    secure: bool,
    checks: Checks,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_cookie: DEFAULT_REFRESH_COOKIE.to_owned(),
            refresh_path: DEFAULT_REFRESH_PATH.to_owned(),
            access_cookie: None,
            secure: true,
            checks: Checks::ALL,
        }
    }
}

impl Default for TokenTransport {
    /// The defaults: refresh cookie `refresh_token` on `/refresh`, no access cookie, `Secure`,
    /// every revocation check on access tokens.
    fn default() -> Self {
        TokenTransport {
            inner: Arc::new(Config::default()),
        }
    }
}

/// Builds a [`TokenTransport`]; [`build`](Self::build) refuses names and paths that cannot be
/// written into a `Set-Cookie` header.
#[derive(Debug)]
#[must_use]
pub struct TokenTransportBuilder {
    config: Config,
}

impl TokenTransportBuilder {
    /// The refresh cookie's name (default `refresh_token`).
    ///
    /// ```
    /// # use latchkey_tokens::transport::TokenTransport;
    /// let transport = TokenTransport::builder().refresh_cookie("rt").build()?;
    /// assert_eq!(transport.refresh_cookie(), "rt");
    /// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
    /// ```
    pub fn refresh_cookie(mut self, name: impl Into<String>) -> Self {
        self.config.refresh_cookie = name.into();
        self
    }

    /// The path the refresh cookie is scoped to, so the browser sends it to the refresh endpoint
    /// only (default `/refresh`).
    ///
    /// ```
    /// # use latchkey_tokens::transport::TokenTransport;
    /// let transport = TokenTransport::builder().refresh_path("/api/token").build()?;
    /// assert_eq!(transport.refresh_path(), "/api/token");
    /// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
    /// ```
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.config.refresh_path = path.into();
        self
    }

    /// Also carries the access token in an `HttpOnly; SameSite=Strict` cookie named `name`
    /// (path `/`), set with every cookie token response and read when a request has no bearer
    /// header. Off by default: a cookie is sent by the browser on its own, so only turn it on
    /// for same-site browser clients.
    ///
    /// ```
    /// # use latchkey_tokens::transport::TokenTransport;
    /// let transport = TokenTransport::builder().access_cookie("at").build()?;
    /// assert_eq!(transport.access_cookie(), Some("at"));
    /// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
    /// ```
    pub fn access_cookie(mut self, name: impl Into<String>) -> Self {
        self.config.access_cookie = Some(name.into());
        self
    }

    /// Whether cookies carry the `Secure` attribute (default `true`). Turn it off only for
    /// plain-HTTP development servers.
    ///
    /// ```
    /// # use latchkey_tokens::transport::TokenTransport;
    /// let transport = TokenTransport::builder().secure(false).build()?;
    /// assert!(!transport.is_secure());
    /// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.config.secure = secure;
        self
    }

    /// The revocation checks [`TokenTransport::verify`] makes (default [`Checks::ALL`], one
    /// store call per request; [`Checks::NONE`] for stateless verification).
    ///
    /// ```
    /// # use latchkey_tokens::{transport::TokenTransport, Checks};
    /// let transport = TokenTransport::builder().access_checks(Checks::FAMILY).build()?;
    /// assert_eq!(transport.access_checks(), Checks::FAMILY);
    /// # Ok::<(), latchkey_tokens::transport::TransportConfigError>(())
    /// ```
    pub fn access_checks(mut self, checks: Checks) -> Self {
        self.config.checks = checks;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`TransportConfigError`] when a cookie name is not an RFC 6265 token, the two cookies
    /// share a name, or the path does not start with `/` or holds `;` or control characters.
    pub fn build(self) -> Result<TokenTransport, TransportConfigError> {
        let c = &self.config;
        if !is_cookie_name(&c.refresh_cookie) {
            return Err(TransportConfigError::CookieName);
        }
        if let Some(access) = &c.access_cookie {
            if !is_cookie_name(access) {
                return Err(TransportConfigError::CookieName);
            }
            if *access == c.refresh_cookie {
                return Err(TransportConfigError::SameCookieName);
            }
        }
        let path_ok = c.refresh_path.starts_with('/')
            && c.refresh_path
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b';');
        if !path_ok {
            return Err(TransportConfigError::Path);
        }
        Ok(TokenTransport {
            inner: Arc::new(self.config),
        })
    }
}

fn is_cookie_name(name: &str) -> bool {
    // RFC 6265 §4.1.1: a token (RFC 2616 §2.2): visible ASCII without separators.
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Why [`TokenTransportBuilder::build`] refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportConfigError {
    /// A cookie name is empty or not an RFC 6265 token.
    #[error("a cookie name must be a non-empty RFC 6265 token")]
    CookieName,
    /// The access and refresh cookies have the same name.
    #[error("the access and refresh cookies need different names")]
    SameCookieName,
    /// The refresh path does not start with `/` or holds `;`, spaces or control characters.
    #[error("the refresh path must start with `/` and hold visible ASCII other than `;`")]
    Path,
}

/// The refresh token a request presented, and where it came from. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    token: String,
    via: Via,
}

impl RefreshGrant {
    /// The refresh token, not yet checked.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Where it came from: answer the same way.
    #[must_use]
    pub fn via(&self) -> Via {
        self.via
    }
}

impl fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("token", &"[redacted]")
            .field("via", &self.via)
            .finish()
    }
}

/// Why a refresh request was refused before its token was looked at: always
/// `400 {"error":"invalid_request"}` (RFC 6749 §5.2), no cookie changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantRefusal {
    /// Neither a refresh cookie nor a body.
    #[error("no refresh token in the request")]
    Missing,
    /// A refresh cookie and a body token both: which one is meant is unknown.
    #[error("a refresh token in both the cookie and the body")]
    Ambiguous,
    /// The body is longer than [`MAX_REFRESH_BODY`].
    #[error("refresh request body too large")]
    TooLarge,
    /// The body is not a JSON object with a non-empty string `refresh_token`.
    #[error("malformed refresh request body")]
    Malformed,
}

impl GrantRefusal {
    /// The answer: `400` `{"error":"invalid_request"}`.
    #[must_use]
    pub fn reply(&self) -> TransportReply {
        tracing::debug!(reason = %self, "refresh request refused");
        TransportReply::error(StatusCode::BAD_REQUEST, "invalid_request")
    }
}

/// Why a request's access token was refused (RFC 6750 §3). Holds no token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessRefusal {
    /// No bearer header and no access cookie: `401`, `WWW-Authenticate: Bearer` (no error code
    /// in the challenge, RFC 6750 §3.1), body `{"error":"invalid_request"}`.
    #[error("no access token")]
    Missing,
    /// A `Bearer` header that holds no usable token (several headers, an empty token…): `401`,
    /// `Bearer error="invalid_token"`.
    #[error("malformed bearer credentials")]
    Malformed,
    /// The token failed verification or is revoked: `401`, `Bearer error="invalid_token"`.
    #[error("invalid access token")]
    Invalid(#[source] VerifyError),
    /// A revocation check could not be made: `503` `{"error":"temporarily_unavailable"}`.
    #[error("token store unavailable")]
    Unavailable(#[source] StoreError),
}

impl AccessRefusal {
    /// The HTTP status: `401`, or `503` for [`Unavailable`](Self::Unavailable).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            AccessRefusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The answer, with the `WWW-Authenticate` challenge for a `401`. The cause is logged.
    #[must_use]
    pub fn reply(&self) -> TransportReply {
        let (code, challenge) = match self {
            AccessRefusal::Missing => ("invalid_request", Some(BEARER_CHALLENGE)),
            AccessRefusal::Malformed | AccessRefusal::Invalid(_) => {
                tracing::debug!(reason = %self, source = ?std::error::Error::source(self), "access token refused");
                ("invalid_token", Some(INVALID_TOKEN_CHALLENGE))
            }
            AccessRefusal::Unavailable(error) => {
                tracing::warn!(error = %error, source = ?std::error::Error::source(error), "token store unavailable: 503");
                ("temporarily_unavailable", None)
            }
        };
        let mut reply = TransportReply::error(self.status(), code);
        if let Some(challenge) = challenge {
            reply
                .headers
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        reply
    }
}

/// A response made of [`http`] types: status, headers and a JSON body. `Debug` shows neither
/// the body nor a `Set-Cookie` value (they hold tokens).
pub struct TransportReply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl TransportReply {
    fn json(status: StatusCode, body: String) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        TransportReply {
            status,
            headers,
            body,
        }
    }

    /// An error response of the token endpoint (RFC 6749 §5.2) or the resource (RFC 6750 §3):
    /// `status`, `{"error":"<code>"}`, `Cache-Control: no-store`, `Pragma: no-cache`. For the
    /// answers the transport does not build itself, such as a login's wrong password.
    ///
    /// ```
    /// use latchkey_tokens::transport::TransportReply;
    ///
    /// let reply = TransportReply::error(http::StatusCode::BAD_REQUEST, "invalid_grant");
    /// assert_eq!(reply.body(), r#"{"error":"invalid_grant"}"#);
    /// ```
    #[must_use]
    pub fn error(status: StatusCode, code: &'static str) -> Self {
        Self::json(status, format!("{{\"error\":\"{code}\"}}"))
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers (`Content-Type`, `Cache-Control`, `Pragma`, and `Set-Cookie` or
    /// `WWW-Authenticate` where they apply).
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The JSON body (empty for `204`).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Status, headers and body, for an adapter to build its response from.
    #[must_use]
    pub fn into_parts(self) -> (StatusCode, HeaderMap, String) {
        (self.status, self.headers, self.body)
    }

    /// Whether a `Set-Cookie` deletes `name` (`Max-Age=0`).
    #[must_use]
    pub fn deletes_cookie(&self, name: &str) -> bool {
        self.headers.get_all(SET_COOKIE).iter().any(|value| {
            value.to_str().is_ok_and(|text| {
                text.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with("=;") && text.contains("Max-Age=0"))
            })
        })
    }
}

impl fmt::Debug for TransportReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if name == SET_COOKIE {
                    "[redacted]"
                } else {
                    value.to_str().unwrap_or("[binary]")
                };
                (name.as_str(), value)
            })
            .collect();
        f.debug_struct("TransportReply")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body", &"[redacted]")
            .finish()
    }
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

/// The value of cookie `name` in `Cookie` header values (the first one: browsers send the
/// cookie with the longest path first, RFC 6265 §5.4). An empty value counts as absent.
fn cookie<'a, C>(cookies: C, name: &str) -> Option<&'a str>
where
    C: IntoIterator<Item = Option<&'a str>>,
{
    cookies
        .into_iter()
        .flatten()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .filter(|value| !value.is_empty())
}

fn header_text<'a>(
    headers: &'a HeaderMap,
    name: http::header::HeaderName,
) -> impl Iterator<Item = Option<&'a str>> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .map(|value| value.to_str().ok())
}

impl TokenTransport {
    /// A builder, starting from the [defaults](Self::default).
    pub fn builder() -> TokenTransportBuilder {
        TokenTransportBuilder {
            config: Config::default(),
        }
    }

    /// The refresh cookie's name.
    #[must_use]
    pub fn refresh_cookie(&self) -> &str {
        &self.inner.refresh_cookie
    }

    /// The path the refresh cookie is scoped to.
    #[must_use]
    pub fn refresh_path(&self) -> &str {
        &self.inner.refresh_path
    }

    /// The access cookie's name, when the access token also travels in a cookie.
    #[must_use]
    pub fn access_cookie(&self) -> Option<&str> {
        self.inner.access_cookie.as_deref()
    }

    /// Whether cookies are `Secure`.
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.inner.secure
    }

    /// The revocation checks of [`verify`](Self::verify).
    #[must_use]
    pub fn access_checks(&self) -> Checks {
        self.inner.checks
    }

    /// The access token of a request: from its `Authorization` header values (RFC 6750 §2.1,
    /// parsed by [`bearer_credentials`]) or, without a bearer header, from the access cookie
    /// in its `Cookie` header values. Each value is the header's text, `None` when not text.
    ///
    /// ```
    /// # use latchkey_tokens::transport::{AccessRefusal, TokenTransport};
    /// let transport = TokenTransport::builder().access_cookie("at").build()?;
    /// assert_eq!(transport.access_token([Some("Bearer a.b.c")], [Some("at=x.y.z")])?, "a.b.c");
    /// assert_eq!(transport.access_token(None, [Some("at=x.y.z")])?, "x.y.z");
    /// assert!(matches!(transport.access_token(None, None), Err(AccessRefusal::Missing)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AccessRefusal::Missing`] when there is none, [`AccessRefusal::Malformed`] for a
    /// `Bearer` header without a usable token.
    pub fn access_token<'a, A, C>(
        &self,
        authorization: A,
        cookies: C,
    ) -> Result<&'a str, AccessRefusal>
    where
        A: IntoIterator<Item = Option<&'a str>>,
        C: IntoIterator<Item = Option<&'a str>>,
    {
        match bearer_credentials(authorization) {
            BearerCredentials::Token(token) => Ok(token),
            BearerCredentials::Malformed => Err(AccessRefusal::Malformed),
            BearerCredentials::Absent => self
                .inner
                .access_cookie
                .as_deref()
                .and_then(|name| cookie(cookies, name))
                .ok_or(AccessRefusal::Missing),
        }
    }

    /// [`access_token`](Self::access_token) from an [`http::HeaderMap`].
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub fn access_token_in<'a>(&self, headers: &'a HeaderMap) -> Result<&'a str, AccessRefusal> {
        self.access_token(
            header_text(headers, http::header::AUTHORIZATION),
            header_text(headers, http::header::COOKIE),
        )
    }

    /// Verifies `token` with `tokens`, making the [configured](TokenTransportBuilder::access_checks)
    /// revocation checks.
    ///
    /// # Errors
    /// [`AccessRefusal::Invalid`] for an invalid or revoked token, [`AccessRefusal::Unavailable`]
    /// when the store cannot answer.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        tokens: &TokenService,
        token: &str,
    ) -> Result<AccessToken<T>, AccessRefusal> {
        tokens
            .verify(token, self.inner.checks)
            .await
            .map_err(|error| match error {
                VerifyError::StoreUnavailable(store) => AccessRefusal::Unavailable(store),
                other => AccessRefusal::Invalid(other),
            })
    }

    /// The refresh token of a refresh request: from the refresh cookie in its `Cookie` header
    /// values, or from `body`, a JSON object `{"refresh_token": "…"}` (other fields are ignored).
    /// An empty or all-whitespace body is no body.
    ///
    /// # Errors
    /// [`GrantRefusal`]: none at all, both a cookie and a body token, a body over
    /// [`MAX_REFRESH_BODY`], or a body that is not such an object.
    pub fn refresh_grant<'a, C>(
        &self,
        cookies: C,
        body: &[u8],
    ) -> Result<RefreshGrant, GrantRefusal>
    where
        C: IntoIterator<Item = Option<&'a str>>,
    {
        if body.len() > MAX_REFRESH_BODY {
            return Err(GrantRefusal::TooLarge);
        }
        let from_cookie = cookie(cookies, &self.inner.refresh_cookie);
        if body.iter().all(u8::is_ascii_whitespace) {
            return from_cookie
                .map(|token| RefreshGrant {
                    token: token.to_owned(),
                    via: Via::Cookie,
                })
                .ok_or(GrantRefusal::Missing);
        }
        let parsed: RefreshBody =
            serde_json::from_slice(body).map_err(|_| GrantRefusal::Malformed)?;
        if parsed.refresh_token.is_empty() {
            return Err(GrantRefusal::Malformed);
        }
        if from_cookie.is_some() {
            return Err(GrantRefusal::Ambiguous);
        }
        Ok(RefreshGrant {
            token: parsed.refresh_token,
            via: Via::Body,
        })
    }

    /// [`refresh_grant`](Self::refresh_grant) from an [`http::HeaderMap`] and the body.
    ///
    /// # Errors
    /// As [`refresh_grant`](Self::refresh_grant).
    pub fn refresh_grant_in(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefreshGrant, GrantRefusal> {
        self.refresh_grant(header_text(headers, http::header::COOKIE), body)
    }

    fn set_cookie(
        &self,
        headers: &mut HeaderMap,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
    ) {
        let secure = if self.inner.secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; HttpOnly{secure}; SameSite=Strict; Path={path}; Max-Age={max_age}"
        );
        match HeaderValue::from_str(&text) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            // Names and paths are checked by the builder and tokens are base64url: unreachable.
            Err(_) => tracing::error!(cookie = name, "a Set-Cookie value is not header text"),
        }
    }

    fn delete_cookies(&self, headers: &mut HeaderMap) {
        self.set_cookie(
            headers,
            &self.inner.refresh_cookie,
            "",
            &self.inner.refresh_path,
            0,
        );
        if let Some(access) = &self.inner.access_cookie {
            self.set_cookie(headers, access, "", "/", 0);
        }
    }

    /// The token response (RFC 6749 §5.1) for `pair`: `200`, `access_token`, `token_type`,
    /// `expires_in`, and either `refresh_token` in the body ([`Via::Body`]) or the refresh
    /// cookie (and the access cookie when enabled) in `Set-Cookie` ([`Via::Cookie`]), with
    /// `Max-Age` equal to the token's lifetime.
    #[must_use]
    pub fn token_reply(&self, pair: &TokenPair, via: Via) -> TransportReply {
        let mut body = serde_json::json!({
            "access_token": pair.access_token(),
            "token_type": pair.token_type(),
            "expires_in": pair.expires_in(),
        });
        if via == Via::Body {
            body["refresh_token"] = pair.refresh_token().into();
        }
        let mut reply = TransportReply::json(StatusCode::OK, body.to_string());
        if via == Via::Cookie {
            self.set_cookie(
                &mut reply.headers,
                &self.inner.refresh_cookie,
                pair.refresh_token(),
                &self.inner.refresh_path,
                pair.refresh_expires_in(),
            );
            if let Some(access) = &self.inner.access_cookie {
                self.set_cookie(
                    &mut reply.headers,
                    access,
                    pair.access_token(),
                    "/",
                    pair.expires_in(),
                );
            }
        }
        reply
    }

    /// The answer to a refresh that gave no pair: `400 invalid_grant` for a dead token
    /// (`Reused`, `Expired`, `Revoked`, `Unknown`), deleting the refresh cookie (and the access
    /// cookie when enabled) when the token came [by cookie](Via::Cookie); `503
    /// temporarily_unavailable` when the store is down, leaving every cookie alone.
    #[must_use]
    pub fn refresh_failure_reply(&self, error: &RefreshError, via: Via) -> TransportReply {
        if refresh_failure_status(error) == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %error, source = ?std::error::Error::source(error), "token store unavailable: 503");
            return TransportReply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
            );
        }
        tracing::debug!(error = %error, ?via, "refresh refused: invalid_grant");
        let mut reply = TransportReply::error(StatusCode::BAD_REQUEST, "invalid_grant");
        if via == Via::Cookie {
            self.delete_cookies(&mut reply.headers);
        }
        reply
    }

    /// The answer to a refresh: [`token_reply`](Self::token_reply) for a pair,
    /// [`refresh_failure_reply`](Self::refresh_failure_reply) for an error.
    #[must_use]
    pub fn refresh_reply(
        &self,
        result: &Result<TokenPair, RefreshError>,
        via: Via,
    ) -> TransportReply {
        match result {
            Ok(pair) => self.token_reply(pair, via),
            Err(error) => self.refresh_failure_reply(error, via),
        }
    }

    /// The answer to a logout: `204 No Content`, deleting the refresh cookie (and the access
    /// cookie when enabled).
    #[must_use]
    pub fn logout_reply(&self) -> TransportReply {
        let mut reply = TransportReply::json(StatusCode::NO_CONTENT, String::new());
        reply.headers.remove(CONTENT_TYPE);
        self.delete_cookies(&mut reply.headers);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> TokenTransport {
        TokenTransport::builder()
            .access_cookie("access_token")
            .build()
            .unwrap()
    }

    #[test]
    fn builder_refuses_unwritable_names_and_paths() {
        let b = TokenTransport::builder;
        assert_eq!(
            b().refresh_cookie("").build().unwrap_err(),
            TransportConfigError::CookieName
        );
        assert_eq!(
            b().refresh_cookie("a b").build().unwrap_err(),
            TransportConfigError::CookieName
        );
        assert_eq!(
            b().refresh_cookie("a=b").build().unwrap_err(),
            TransportConfigError::CookieName
        );
        assert_eq!(
            b().access_cookie("a;").build().unwrap_err(),
            TransportConfigError::CookieName
        );
        assert_eq!(
            b().access_cookie(DEFAULT_REFRESH_COOKIE)
                .build()
                .unwrap_err(),
            TransportConfigError::SameCookieName
        );
        for path in ["", "refresh", "/a;b", "/a b", "/a\nb"] {
            assert_eq!(
                b().refresh_path(path).build().unwrap_err(),
                TransportConfigError::Path,
                "{path:?}"
            );
        }
        let t = b().build().unwrap();
        assert_eq!(t.refresh_cookie(), "refresh_token");
        assert_eq!(t.refresh_path(), "/refresh");
        assert_eq!(t.access_cookie(), None);
        assert!(t.is_secure());
        assert_eq!(t.access_checks(), Checks::ALL);
    }

    #[test]
    fn access_token_from_bearer_or_cookie() {
        let t = transport();
        assert_eq!(
            t.access_token([Some("Bearer a.b.c")], None).unwrap(),
            "a.b.c"
        );
        // The bearer header wins over the cookie.
        assert_eq!(
            t.access_token([Some("bearer a.b.c")], [Some("access_token=x.y.z")])
                .unwrap(),
            "a.b.c"
        );
        assert_eq!(
            t.access_token(None, [Some("a=1"), Some("b=2; access_token=x.y.z")])
                .unwrap(),
            "x.y.z"
        );
        // Another scheme is no bearer token: the cookie is used.
        assert_eq!(
            t.access_token([Some("Basic dTpw")], [Some("access_token=x.y.z")])
                .unwrap(),
            "x.y.z"
        );
        // Without the opt-in, the cookie is never read.
        let plain = TokenTransport::default();
        assert!(matches!(
            plain.access_token(None, [Some("access_token=x.y.z")]),
            Err(AccessRefusal::Missing)
        ));
    }

    #[test]
    fn every_access_refusal() {
        let t = transport();
        assert!(matches!(
            t.access_token(None, None),
            Err(AccessRefusal::Missing)
        ));
        assert!(matches!(
            t.access_token(None, [Some("access_token="), Some("other=1")]),
            Err(AccessRefusal::Missing)
        ));
        assert!(matches!(
            t.access_token(None, [None]),
            Err(AccessRefusal::Missing)
        ));
        for header in ["Bearer", "Bearer ", "Bearer a b"] {
            assert!(
                matches!(
                    t.access_token([Some(header)], [Some("access_token=x")]),
                    Err(AccessRefusal::Malformed)
                ),
                "{header:?}"
            );
        }
        assert!(matches!(
            t.access_token([None], None),
            Err(AccessRefusal::Malformed)
        ));
        assert!(matches!(
            t.access_token([Some("Bearer a"), Some("Bearer b")], None),
            Err(AccessRefusal::Malformed)
        ));

        let missing = AccessRefusal::Missing.reply();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(missing.body(), r#"{"error":"invalid_request"}"#);
        let malformed = AccessRefusal::Malformed.reply();
        assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            malformed.headers()[WWW_AUTHENTICATE],
            INVALID_TOKEN_CHALLENGE
        );
        assert_eq!(malformed.body(), r#"{"error":"invalid_token"}"#);
        let down = AccessRefusal::Unavailable(StoreError::Timeout).reply();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(down.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(down.body(), r#"{"error":"temporarily_unavailable"}"#);
    }

    #[test]
    fn refresh_grant_from_cookie_or_body() {
        let t = transport();
        let g = t
            .refresh_grant([Some("a=1; refresh_token=tok; b=2")], b"")
            .unwrap();
        assert_eq!((g.token(), g.via()), ("tok", Via::Cookie));
        // Quoted values (RFC 6265 §4.1.1) and the first of two cookies of the same name.
        let g = t
            .refresh_grant(
                [Some("refresh_token=\"q\""), Some("refresh_token=r")],
                b" \n",
            )
            .unwrap();
        assert_eq!(g.token(), "q");
        let g = t
            .refresh_grant(
                None,
                br#"{"grant_type":"refresh_token","refresh_token":"s3cret"}"#,
            )
            .unwrap();
        assert_eq!((g.token(), g.via()), ("s3cret", Via::Body));
        // A body of exactly the limit is read.
        let pad = " ".repeat(MAX_REFRESH_BODY - r#"{"refresh_token":"tok"}"#.len());
        let body = format!(r#"{{"refresh_token":"tok"}}{pad}"#);
        assert_eq!(body.len(), MAX_REFRESH_BODY);
        assert_eq!(
            t.refresh_grant(None, body.as_bytes()).unwrap().token(),
            "tok"
        );
        let debug = format!("{g:?}");
        assert!(
            !debug.contains("s3cret") && debug.contains("[redacted]"),
            "{debug}"
        );
    }

    #[test]
    fn every_grant_refusal() {
        let t = transport();
        let cookie = Some("refresh_token=tok");
        assert_eq!(
            t.refresh_grant(None, b"").unwrap_err(),
            GrantRefusal::Missing
        );
        assert_eq!(
            t.refresh_grant([Some("refresh_token=")], b"").unwrap_err(),
            GrantRefusal::Missing
        );
        assert_eq!(
            t.refresh_grant([Some("access_token=x")], b"").unwrap_err(),
            GrantRefusal::Missing
        );
        assert_eq!(
            t.refresh_grant([cookie], br#"{"refresh_token":"other"}"#)
                .unwrap_err(),
            GrantRefusal::Ambiguous
        );
        let big = vec![b' '; MAX_REFRESH_BODY + 1];
        assert_eq!(
            t.refresh_grant([cookie], &big).unwrap_err(),
            GrantRefusal::TooLarge
        );
        for body in [
            &b"{"[..],
            b"null",
            b"[]",
            b"\"tok\"",
            b"refresh_token=tok",
            br#"{"refresh_token":""}"#,
            br#"{"refresh_token":null}"#,
            br#"{"refresh_token":42}"#,
            br#"{"refresh_token":"a","refresh_token":"b"}"#,
            br#"{"token":"tok"}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(
                t.refresh_grant([cookie], body).unwrap_err(),
                GrantRefusal::Malformed,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let reply = GrantRefusal::TooLarge.reply();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
        assert_eq!(reply.body(), r#"{"error":"invalid_request"}"#);
        assert!(reply.headers().get(SET_COOKIE).is_none());
        assert_eq!(reply.headers()[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn logout_deletes_both_cookies_and_debug_hides_them() {
        let reply = transport().logout_reply();
        assert_eq!(reply.status(), StatusCode::NO_CONTENT);
        assert!(reply.deletes_cookie("refresh_token") && reply.deletes_cookie("access_token"));
        let cookies: Vec<_> = reply.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(
            cookies[0],
            "refresh_token=; HttpOnly; Secure; SameSite=Strict; Path=/refresh; Max-Age=0"
        );
        assert_eq!(
            cookies[1],
            "access_token=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        );
        let insecure = TokenTransport::builder()
            .secure(false)
            .build()
            .unwrap()
            .logout_reply();
        let cookies: Vec<_> = insecure.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(
            cookies,
            ["refresh_token=; HttpOnly; SameSite=Strict; Path=/refresh; Max-Age=0"]
        );
        assert!(format!("{reply:?}").contains("[redacted]"));
        assert!(!format!("{reply:?}").contains("Path="));
    }
}
