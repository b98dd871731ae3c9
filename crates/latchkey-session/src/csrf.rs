//! Cross-site request forgery policy, framework-free: adapters pass header values in and map the
//! verdict to a response (`403`), nothing more.
//!
//! Two independent defences:
//!
//! - **Origin policy** ([`OriginPolicy`]): a request with an unsafe method (anything but `GET`,
//!   `HEAD`, `OPTIONS`, `TRACE`) is refused when its `Origin` header — or, when `Origin` is absent,
//!   the origin of its `Referer` — is neither the request's own host nor an allowed origin.
//!   `Origin: null` is refused, and so is a request that a browser marks `Sec-Fetch-Site: cross-site`
//!   without sending `Origin`. A request that carries neither `Origin` nor `Referer` is not a
//!   browser request and passes unless the policy requires an origin.
//! - **Synchronizer token** ([`Session::csrf_token`], [`Session::check_csrf_token`]): a random token
//!   kept in the session under [`CSRF_SESSION_KEY`]; once a session holds one, every unsafe request
//!   on it must repeat it (in a header the adapter chooses), compared in constant time.
//!
//! ```
//! use latchkey_session::{OriginHeaders, OriginPolicy, OriginRefusal, OriginVerdict, RequestMethod};
//!
//! let policy = OriginPolicy::builder()
//!     .allowed_origin("https://app.example.com")
//!     .build()?;
//! let headers = OriginHeaders {
//!     host: Some(b"api.example.com"),
//!     origin: Some(b"https://evil.example"),
//!     ..OriginHeaders::default()
//! };
//! assert_eq!(
//!     policy.check(RequestMethod::from_name("POST"), &headers),
//!     OriginVerdict::Refused(OriginRefusal::ForeignOrigin)
//! );
//! # Ok::<(), latchkey_session::OriginConfigError>(())
//! ```

mod protection;

use std::fmt;

use serde_json::Value;

pub use protection::{CsrfProtection, CsrfRefusal, DEFAULT_CSRF_HEADER};

use crate::{Session, SessionError, SessionId};

/// The session key under which the synchronizer token is stored.
pub const CSRF_SESSION_KEY: &str = "_latchkey_csrf";

/// Whether a request method may change state, as far as CSRF is concerned (RFC 9110 §9.2.1).
///
/// ```
/// use latchkey_session::RequestMethod;
/// assert_eq!(RequestMethod::from_name("GET"), RequestMethod::Safe);
/// assert_eq!(RequestMethod::from_name("POST"), RequestMethod::Unsafe);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMethod {
    /// `GET`, `HEAD`, `OPTIONS` or `TRACE`: must not change state, never checked.
    Safe,
    /// Any other method, including extension methods: checked.
    Unsafe,
}

impl RequestMethod {
    /// Classifies a method by its name. Method names are case-sensitive (RFC 9110 §9.1), so `get`
    /// is an (unsafe) extension method, not `GET`.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "GET" | "HEAD" | "OPTIONS" | "TRACE" => RequestMethod::Safe,
            _ => RequestMethod::Unsafe,
        }
    }

    /// Is this [`RequestMethod::Safe`]?
    #[must_use]
    pub fn is_safe(self) -> bool {
        self == RequestMethod::Safe
    }
}

/// The request headers the origin policy reads, as raw values (`None` when absent).
///
/// `host` is the request's own authority: the `Host` header, or for HTTP/2 the `:authority`.
#[derive(Clone, Copy, Default)]
pub struct OriginHeaders<'a> {
    /// `Host` (or the HTTP/2 authority): the request's own `host[:port]`.
    pub host: Option<&'a [u8]>,
    /// `Origin`.
    pub origin: Option<&'a [u8]>,
    /// `Referer`.
    pub referer: Option<&'a [u8]>,
    /// `Sec-Fetch-Site`.
    pub sec_fetch_site: Option<&'a [u8]>,
}

impl fmt::Debug for OriginHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn text(value: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            value.map(String::from_utf8_lossy)
        }
        // A Referer's path and query may carry secrets (reset links, tokens): show only that it is there.
        f.debug_struct("OriginHeaders")
            .field("host", &text(self.host))
            .field("origin", &text(self.origin))
            .field("referer", &self.referer.map(|_| "[redacted]"))
            .field("sec_fetch_site", &text(self.sec_fetch_site))
            .finish()
    }
}

/// Which unsafe requests may come from where. Built with [`OriginPolicy::builder`], which refuses
/// malformed origins; the default allows the request's own host only.
///
/// ```
/// use latchkey_session::OriginPolicy;
///
/// let policy = OriginPolicy::builder()
///     .allowed_origin("https://app.example.com")
///     .allowed_origin("http://localhost:5173")
///     .require_origin(true)
///     .build()?;
/// # let _ = policy;
/// # Ok::<(), latchkey_session::OriginConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Normalised (`scheme://host[:port]`, lower case) allowed origins.
    allowed: Vec<String>,
    require_origin: bool,
}

/// Builds an [`OriginPolicy`]; [`build`](OriginPolicyBuilder::build) validates every origin.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct OriginPolicyBuilder {
    allowed: Vec<String>,
    require_origin: bool,
}

impl OriginPolicyBuilder {
    /// Also allow unsafe requests from `origin`, written as browsers send it in `Origin`:
    /// `scheme://host[:port]`. Case and one trailing `/` are ignored.
    ///
    /// ```
    /// let policy = latchkey_session::OriginPolicy::builder().allowed_origin("http://localhost:5173").build()?;
    /// # let _ = policy;
    /// # Ok::<(), latchkey_session::OriginConfigError>(())
    /// ```
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed.push(origin.into());
        self
    }

    /// Refuse unsafe requests that carry neither `Origin` nor `Referer` (default: let them through,
    /// since only non-browser clients send neither, and those cannot be made to carry a victim's
    /// cookies). A browser's `Sec-Fetch-Site: same-origin` still counts as an origin.
    ///
    /// ```
    /// let policy = latchkey_session::OriginPolicy::builder().require_origin(true).build()?;
    /// # let _ = policy;
    /// # Ok::<(), latchkey_session::OriginConfigError>(())
    /// ```
    pub fn require_origin(mut self, require: bool) -> Self {
        self.require_origin = require;
        self
    }

    /// The policy.
    ///
    /// # Errors
    ///
    /// [`OriginConfigError`] for the first allowed origin that is not a valid
    /// `scheme://host[:port]` origin (no scheme, a path, user info, a bad port, `null`, …).
    pub fn build(self) -> Result<OriginPolicy, OriginConfigError> {
        let mut allowed = Vec::with_capacity(self.allowed.len());
        for origin in self.allowed {
            match parse_origin(&origin) {
                Ok(normalised) => allowed.push(normalised),
                Err(reason) => return Err(OriginConfigError { origin, reason }),
            }
        }
        Ok(OriginPolicy {
            allowed,
            require_origin: self.require_origin,
        })
    }
}

impl OriginPolicy {
    /// The default policy: same host only, requests without `Origin`/`Referer` let through.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with no allowed origins and `require_origin` off.
    pub fn builder() -> OriginPolicyBuilder {
        OriginPolicyBuilder::default()
    }

    /// A builder that starts from this policy, to allow more origins.
    ///
    /// ```
    /// use latchkey_session::OriginPolicy;
    /// let base = OriginPolicy::builder().allowed_origin("https://a.example").build()?;
    /// let wider = base.to_builder().allowed_origin("https://b.example").build()?;
    /// assert_eq!(wider.allowed_origins().count(), 2);
    /// # Ok::<(), latchkey_session::OriginConfigError>(())
    /// ```
    pub fn to_builder(&self) -> OriginPolicyBuilder {
        OriginPolicyBuilder {
            allowed: self.allowed.clone(),
            require_origin: self.require_origin,
        }
    }

    /// The allowed origins besides the request's own host, normalised (`scheme://host[:port]`,
    /// lower case).
    pub fn allowed_origins(&self) -> impl Iterator<Item = &str> + '_ {
        self.allowed.iter().map(String::as_str)
    }

    /// Whether requests without `Origin`/`Referer` are refused.
    #[must_use]
    pub fn requires_origin(&self) -> bool {
        self.require_origin
    }

    /// The verdict on a request with this method and these headers.
    ///
    /// In order: a safe method passes; an `Origin` decides when present; without one, a
    /// `Sec-Fetch-Site: cross-site` is refused and a `Referer` decides when present; with neither,
    /// `Sec-Fetch-Site: same-origin` passes and anything else passes unless an origin is required.
    /// An origin passes when it is listed, or when it is `http`/`https` on the request's own host.
    ///
    /// ```
    /// use latchkey_session::{OriginAllowed, OriginHeaders, OriginPolicy, OriginVerdict, RequestMethod};
    /// let headers = OriginHeaders {
    ///     host: Some(b"127.0.0.1:3000"),
    ///     origin: Some(b"http://127.0.0.1:3000"),
    ///     ..OriginHeaders::default()
    /// };
    /// let verdict = OriginPolicy::new().check(RequestMethod::Unsafe, &headers);
    /// assert_eq!(verdict, OriginVerdict::Allowed(OriginAllowed::SameHost));
    /// ```
    #[must_use]
    pub fn check(&self, method: RequestMethod, headers: &OriginHeaders<'_>) -> OriginVerdict {
        match self.decide(method, headers) {
            Ok(allowed) => OriginVerdict::Allowed(allowed),
            Err(refusal) => OriginVerdict::Refused(refusal),
        }
    }

    fn decide(
        &self,
        method: RequestMethod,
        headers: &OriginHeaders<'_>,
    ) -> Result<OriginAllowed, OriginRefusal> {
        if method.is_safe() {
            return Ok(OriginAllowed::SafeMethod);
        }
        let host = headers.host.and_then(|host| std::str::from_utf8(host).ok());
        if let Some(origin) = headers.origin {
            let origin = std::str::from_utf8(origin).map_err(|_| OriginRefusal::MalformedOrigin)?;
            let origin = parse_origin(origin).map_err(|reason| match reason {
                InvalidOrigin::Null => OriginRefusal::NullOrigin,
                _ => OriginRefusal::MalformedOrigin,
            })?;
            return self
                .judge(&origin, host)
                .ok_or(OriginRefusal::ForeignOrigin);
        }
        let fetch_site = headers.sec_fetch_site.map(FetchSite::parse);
        if fetch_site == Some(FetchSite::CrossSite) {
            return Err(OriginRefusal::CrossSiteWithoutOrigin);
        }
        if let Some(referer) = headers.referer {
            let origin = std::str::from_utf8(referer)
                .ok()
                .and_then(origin_of_url)
                .and_then(|origin| parse_origin(origin).ok())
                .ok_or(OriginRefusal::MalformedReferer)?;
            return self
                .judge(&origin, host)
                .ok_or(OriginRefusal::ForeignReferer);
        }
        if fetch_site == Some(FetchSite::SameOrigin) {
            Ok(OriginAllowed::SameOriginFetch)
        } else if self.require_origin {
            Err(OriginRefusal::MissingOrigin)
        } else {
            Ok(OriginAllowed::NoOrigin)
        }
    }

    /// How a normalised origin passes, if it does.
    fn judge(&self, origin: &str, host: Option<&str>) -> Option<OriginAllowed> {
        if self.allowed.iter().any(|allowed| allowed == origin) {
            return Some(OriginAllowed::ListedOrigin);
        }
        let (scheme, authority) = origin.split_once("://")?;
        let own = host?.trim();
        ((scheme == "http" || scheme == "https") && authority.eq_ignore_ascii_case(own))
            .then_some(OriginAllowed::SameHost)
    }
}

/// The verdict of [`OriginPolicy::check`]: allowed, and why; or refused, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginVerdict {
    /// The request may go on.
    Allowed(OriginAllowed),
    /// The request must be refused (adapters answer `403`).
    Refused(OriginRefusal),
}

impl OriginVerdict {
    /// Is this [`OriginVerdict::Allowed`]?
    #[must_use]
    pub fn is_allowed(self) -> bool {
        matches!(self, OriginVerdict::Allowed(_))
    }

    /// Why the request is refused, or `None` when it is allowed.
    #[must_use]
    pub fn refusal(self) -> Option<OriginRefusal> {
        match self {
            OriginVerdict::Allowed(_) => None,
            OriginVerdict::Refused(refusal) => Some(refusal),
        }
    }
}

/// Why [`OriginPolicy::check`] let a request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginAllowed {
    /// A safe method: never checked.
    SafeMethod,
    /// `Origin` (or the `Referer`'s origin) is `http`/`https` on the request's own host.
    SameHost,
    /// `Origin` (or the `Referer`'s origin) is one of the allowed origins.
    ListedOrigin,
    /// No `Origin` nor `Referer`, but the browser says `Sec-Fetch-Site: same-origin`.
    SameOriginFetch,
    /// No `Origin` nor `Referer` (not a browser request), and the policy does not require one.
    NoOrigin,
}

/// Why [`OriginPolicy::check`] refused a request. Its `Display` is one line, fit for a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginRefusal {
    /// `Origin: null` (sandboxed frames, some redirects, `file:` pages).
    NullOrigin,
    /// `Origin` is not a valid `scheme://host[:port]` origin.
    MalformedOrigin,
    /// `Origin` is neither the request's own host nor an allowed origin.
    ForeignOrigin,
    /// No `Origin`, and `Sec-Fetch-Site: cross-site`: a browser says another site sent it.
    CrossSiteWithoutOrigin,
    /// No `Origin`, and `Referer` is not an absolute URL with a valid origin.
    MalformedReferer,
    /// No `Origin`, and the `Referer`'s origin is neither the own host nor an allowed origin.
    ForeignReferer,
    /// Neither `Origin` nor `Referer`, and the policy requires one.
    MissingOrigin,
}

impl fmt::Display for OriginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginRefusal::NullOrigin => "Origin is null",
            OriginRefusal::MalformedOrigin => "Origin is not a valid origin",
            OriginRefusal::ForeignOrigin => "Origin is not allowed",
            OriginRefusal::CrossSiteWithoutOrigin => "cross-site request without Origin",
            OriginRefusal::MalformedReferer => "Referer has no valid origin",
            OriginRefusal::ForeignReferer => "Referer's origin is not allowed",
            OriginRefusal::MissingOrigin => "neither Origin nor Referer, and one is required",
        })
    }
}

impl std::error::Error for OriginRefusal {}

/// An allowed origin given to [`OriginPolicyBuilder`] is not a valid `scheme://host[:port]`
/// origin. Its `Display` names the origin (configuration, not a secret) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfigError {
    origin: String,
    reason: InvalidOrigin,
}

impl OriginConfigError {
    /// The origin as it was given.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// What is wrong with it.
    #[must_use]
    pub fn reason(&self) -> InvalidOrigin {
        self.reason
    }
}

impl fmt::Display for OriginConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid allowed origin {:?}: {}",
            self.origin, self.reason
        )
    }
}

impl std::error::Error for OriginConfigError {}

/// What makes a text not a `scheme://host[:port]` origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidOrigin {
    /// No `scheme://` (for example `app.example.com`).
    MissingScheme,
    /// The scheme is empty or has characters a scheme cannot have.
    BadScheme,
    /// The host is empty or has characters a host cannot have.
    BadHost,
    /// The port is empty, not a number, or above 65535.
    BadPort,
    /// A path, query or fragment follows the authority.
    HasPath,
    /// User info (`user@`) precedes the host.
    HasUserinfo,
    /// `null`: the opaque origin, which any sandboxed page has, so it can never be allowed.
    Null,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidOrigin::MissingScheme => "no scheme (write it as scheme://host[:port])",
            InvalidOrigin::BadScheme => "invalid scheme",
            InvalidOrigin::BadHost => "invalid host",
            InvalidOrigin::BadPort => "invalid port",
            InvalidOrigin::HasPath => "an origin has no path, query or fragment",
            InvalidOrigin::HasUserinfo => "an origin has no user info",
            InvalidOrigin::Null => "the null origin cannot be allowed",
        })
    }
}

/// `text` as a normalised origin (`scheme://host[:port]`, lower case), or why it is not one.
/// Surrounding white space and one trailing `/` are ignored.
fn parse_origin(text: &str) -> Result<String, InvalidOrigin> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("null") {
        return Err(InvalidOrigin::Null);
    }
    let (scheme, rest) = text.split_once("://").ok_or(InvalidOrigin::MissingScheme)?;
    let mut scheme_bytes = scheme.bytes();
    let scheme_ok = scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(InvalidOrigin::BadScheme);
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(InvalidOrigin::HasPath);
    }
    if authority.contains('@') {
        return Err(InvalidOrigin::HasUserinfo);
    }
    let (host, port) = split_host_port(authority)?;
    let host_ok = match host.strip_prefix('[') {
        Some(literal) => literal.strip_suffix(']').is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        }
    };
    if !host_ok {
        return Err(InvalidOrigin::BadHost);
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidOrigin::BadPort);
        }
        port.parse::<u16>().map_err(|_| InvalidOrigin::BadPort)?;
    }
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// `host` and the text after its `:`, if any; an IPv6 literal keeps its brackets.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), InvalidOrigin> {
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(InvalidOrigin::BadHost)? + 1;
        let (host, after) = authority.split_at(end);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(InvalidOrigin::BadHost),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// `scheme://authority` of an absolute URL without its user info, or `None` when it is not one.
fn origin_of_url(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    let rest = &url[scheme_end + 3..];
    let authority_end = scheme_end + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &url[scheme_end + 3..authority_end];
    if authority.contains('@') {
        // `https://own.host@evil.example/`: the host is after the user info. Rebuilding the
        // origin would need an allocation; such a Referer is refused as malformed instead, which
        // browsers never send (they strip user info from Referer).
        return None;
    }
    Some(&url[..authority_end])
}

/// The values of `Sec-Fetch-Site` this policy acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchSite {
    CrossSite,
    SameOrigin,
    /// `same-site`, `none`, or a value from a future specification: decided by the other headers.
    Other,
}

impl FetchSite {
    fn parse(value: &[u8]) -> Self {
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"cross-site") {
            FetchSite::CrossSite
        } else if value.eq_ignore_ascii_case(b"same-origin") {
            FetchSite::SameOrigin
        } else {
            FetchSite::Other
        }
    }
}

/// The verdict of [`Session::check_csrf_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// The session holds no token, so none is required.
    NotRequired,
    /// The presented token is the session's.
    Valid,
    /// The request must be refused (adapters answer `403`).
    Refused(TokenRefusal),
}

impl TokenVerdict {
    /// Is this not [`TokenVerdict::Refused`]?
    #[must_use]
    pub fn is_allowed(self) -> bool {
        !matches!(self, TokenVerdict::Refused(_))
    }

    /// Why the request is refused, or `None` when it is allowed.
    #[must_use]
    pub fn refusal(self) -> Option<TokenRefusal> {
        match self {
            TokenVerdict::Refused(refusal) => Some(refusal),
            TokenVerdict::NotRequired | TokenVerdict::Valid => None,
        }
    }
}

/// Why [`Session::check_csrf_token`] refused a request. Never carries a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// The session holds a token and the request presented none (or an empty one).
    Missing,
    /// The presented token is not the session's.
    Mismatch,
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenRefusal::Missing => "missing CSRF token",
            TokenRefusal::Mismatch => "wrong CSRF token",
        })
    }
}

impl std::error::Error for TokenRefusal {}

impl Session {
    /// This session's CSRF synchronizer token, created (and stored with the session under
    /// [`CSRF_SESSION_KEY`]) on first call. Hand it to the front end, which repeats it in a header
    /// on every unsafe request. A fresh token is 256 random bits, base64url.
    ///
    /// Creating the token writes the session, so it gets stored and its cookie sent.
    ///
    /// # Errors
    ///
    /// A [`SessionError`] when the store cannot be read or written.
    pub async fn csrf_token(&self) -> Result<String, SessionError> {
        if let Some(Value::String(token)) = self.get_value(CSRF_SESSION_KEY).await? {
            if !token.is_empty() {
                return Ok(token);
            }
        }
        let token = SessionId::generate().expose_secret();
        self.insert_value(CSRF_SESSION_KEY, Value::String(token.clone()))
            .await?;
        Ok(token)
    }

    /// The synchronizer-token check for an unsafe request: once the session holds a token, the
    /// `presented` header value must equal it, compared in constant time. A session without a
    /// token needs none ([`TokenVerdict::NotRequired`]); reading does not create one.
    ///
    /// # Errors
    ///
    /// A [`SessionError`] when the store cannot be read.
    pub async fn check_csrf_token(
        &self,
        presented: Option<&[u8]>,
    ) -> Result<TokenVerdict, SessionError> {
        Ok(match self.get_value(CSRF_SESSION_KEY).await? {
            None => TokenVerdict::NotRequired,
            // A stored value that is not a non-empty string matches nothing.
            Some(stored) => match verify_token(stored.as_str().unwrap_or_default(), presented) {
                Ok(()) => TokenVerdict::Valid,
                Err(refusal) => TokenVerdict::Refused(refusal),
            },
        })
    }
}

/// Does `presented` equal the stored token `expected`? An empty `expected` matches nothing.
fn verify_token(expected: &str, presented: Option<&[u8]>) -> Result<(), TokenRefusal> {
    let presented = presented
        .filter(|presented| !presented.is_empty())
        .ok_or(TokenRefusal::Missing)?;
    if !expected.is_empty() && tokens_equal(expected.as_bytes(), presented) {
        Ok(())
    } else {
        Err(TokenRefusal::Mismatch)
    }
}

/// Constant-time equality (the length is not secret: every token has the same one).
fn tokens_equal(expected: &[u8], presented: &[u8]) -> bool {
    #[cfg(test)]
    tests::CONSTANT_TIME_COMPARES.with(|count| count.set(count.get() + 1));
    constant_time_eq::constant_time_eq(expected, presented)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::{CookieKey, MemoryStore, SessionManager};

    thread_local! {
        pub(super) static CONSTANT_TIME_COMPARES: Cell<u32> = const { Cell::new(0) };
    }

    const OWN: &[u8] = b"127.0.0.1:3000";

    fn headers<'a>(
        origin: Option<&'a str>,
        referer: Option<&'a str>,
        sec_fetch_site: Option<&'a str>,
    ) -> OriginHeaders<'a> {
        OriginHeaders {
            host: Some(OWN),
            origin: origin.map(str::as_bytes),
            referer: referer.map(str::as_bytes),
            sec_fetch_site: sec_fetch_site.map(str::as_bytes),
        }
    }

    fn policy(origins: &[&str], require_origin: bool) -> OriginPolicy {
        origins
            .iter()
            .fold(OriginPolicy::builder(), |builder, origin| {
                builder.allowed_origin(*origin)
            })
            .require_origin(require_origin)
            .build()
            .unwrap()
    }

    fn post(policy: &OriginPolicy, headers: &OriginHeaders<'_>) -> OriginVerdict {
        policy.check(RequestMethod::Unsafe, headers)
    }

    use OriginAllowed as A;
    use OriginRefusal as R;
    use OriginVerdict::{Allowed, Refused};

    #[test]
    fn methods_are_classified_case_sensitively() {
        for safe in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert_eq!(
                RequestMethod::from_name(safe),
                RequestMethod::Safe,
                "{safe}"
            );
        }
        for not_safe in [
            "POST", "PUT", "PATCH", "DELETE", "CONNECT", "get", "PROPFIND", "",
        ] {
            assert_eq!(
                RequestMethod::from_name(not_safe),
                RequestMethod::Unsafe,
                "{not_safe}"
            );
        }
    }

    #[test]
    fn safe_methods_always_pass() {
        let strict = policy(&[], true);
        for hostile in [
            headers(Some("https://evil.example"), None, Some("cross-site")),
            headers(Some("null"), None, None),
            headers(None, None, Some("cross-site")),
            headers(None, None, None),
        ] {
            assert_eq!(
                strict.check(RequestMethod::Safe, &hostile),
                Allowed(A::SafeMethod)
            );
        }
    }

    #[test]
    fn same_host_passes_on_http_and_https() {
        let p = OriginPolicy::new();
        for origin in [
            "http://127.0.0.1:3000",
            "https://127.0.0.1:3000",
            "HTTP://127.0.0.1:3000/",
        ] {
            assert_eq!(
                post(&p, &headers(Some(origin), None, None)),
                Allowed(A::SameHost),
                "{origin}"
            );
        }
        // Another port or another scheme on the same host is another origin.
        for origin in [
            "http://127.0.0.1:3001",
            "http://127.0.0.1",
            "ftp://127.0.0.1:3000",
        ] {
            assert_eq!(
                post(&p, &headers(Some(origin), None, None)),
                Refused(R::ForeignOrigin),
                "{origin}"
            );
        }
    }

    #[test]
    fn listed_origins_pass_and_only_they() {
        let p = policy(&["https://App.Example.com/", "http://[::1]:5173"], false);
        assert_eq!(
            post(&p, &headers(Some("https://app.example.com"), None, None)),
            Allowed(A::ListedOrigin)
        );
        assert_eq!(
            post(&p, &headers(Some("http://[::1]:5173"), None, None)),
            Allowed(A::ListedOrigin)
        );
        for foreign in [
            "https://app.example.com.evil.example",
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://evil.example",
        ] {
            assert_eq!(
                post(&p, &headers(Some(foreign), None, None)),
                Refused(R::ForeignOrigin),
                "{foreign}"
            );
        }
    }

    #[test]
    fn null_and_malformed_origins_are_refused() {
        let p = OriginPolicy::new();
        assert_eq!(
            post(&p, &headers(Some("null"), None, None)),
            Refused(R::NullOrigin)
        );
        for bad in [
            "127.0.0.1:3000",
            "http://",
            "http://127.0.0.1:3000/path",
            "http://a@127.0.0.1:3000",
            "",
        ] {
            assert_eq!(
                post(&p, &headers(Some(bad), None, None)),
                Refused(R::MalformedOrigin),
                "{bad:?}"
            );
        }
        let not_utf8 = OriginHeaders {
            origin: Some(b"http://\xff"),
            ..headers(None, None, None)
        };
        assert_eq!(post(&p, &not_utf8), Refused(R::MalformedOrigin));
    }

    #[test]
    fn origin_wins_over_referer_and_fetch_metadata() {
        let p = OriginPolicy::new();
        let foreign_origin = headers(
            Some("https://evil.example"),
            Some("http://127.0.0.1:3000/"),
            Some("same-origin"),
        );
        assert_eq!(post(&p, &foreign_origin), Refused(R::ForeignOrigin));
        // A listed cross-site front end sends `Sec-Fetch-Site: cross-site` *with* `Origin`.
        let front_end = policy(&["https://front.example"], false);
        let cross_site = headers(Some("https://front.example"), None, Some("cross-site"));
        assert_eq!(post(&front_end, &cross_site), Allowed(A::ListedOrigin));
    }

    #[test]
    fn referer_is_the_fallback_without_origin() {
        let p = policy(&["https://app.example.com"], false);
        let same = headers(None, Some("http://127.0.0.1:3000/page?x=1#top"), None);
        assert_eq!(post(&p, &same), Allowed(A::SameHost));
        let listed = headers(None, Some("https://app.example.com/login"), None);
        assert_eq!(post(&p, &listed), Allowed(A::ListedOrigin));
        let bare = headers(None, Some("http://127.0.0.1:3000"), None);
        assert_eq!(post(&p, &bare), Allowed(A::SameHost));
        let foreign = headers(
            None,
            Some("https://evil.example/http://127.0.0.1:3000"),
            None,
        );
        assert_eq!(post(&p, &foreign), Refused(R::ForeignReferer));
        for malformed in [
            "/relative",
            "https://127.0.0.1:3000@evil.example/",
            "127.0.0.1:3000/x",
            "https:///x",
        ] {
            assert_eq!(
                post(&p, &headers(None, Some(malformed), None)),
                Refused(R::MalformedReferer),
                "{malformed}"
            );
        }
    }

    #[test]
    fn no_headers_pass_unless_an_origin_is_required() {
        assert_eq!(
            post(&OriginPolicy::new(), &headers(None, None, None)),
            Allowed(A::NoOrigin)
        );
        assert_eq!(
            post(&policy(&[], true), &headers(None, None, None)),
            Refused(R::MissingOrigin)
        );
        let no_host = OriginHeaders::default();
        assert_eq!(post(&OriginPolicy::new(), &no_host), Allowed(A::NoOrigin));
    }

    #[test]
    fn cross_site_without_origin_is_refused() {
        for require_origin in [false, true] {
            let p = policy(&["https://app.example.com"], require_origin);
            for fetch_site in ["cross-site", "Cross-Site", " cross-site "] {
                assert_eq!(
                    post(&p, &headers(None, None, Some(fetch_site))),
                    Refused(R::CrossSiteWithoutOrigin)
                );
                // Even with a Referer that would pass on its own.
                assert_eq!(
                    post(
                        &p,
                        &headers(None, Some("http://127.0.0.1:3000/"), Some(fetch_site))
                    ),
                    Refused(R::CrossSiteWithoutOrigin)
                );
            }
        }
    }

    #[test]
    fn same_site_and_same_origin_fetches_without_origin() {
        let lax = OriginPolicy::new();
        let strict = policy(&[], true);
        // `same-origin` is the browser's own word that the request is same-origin.
        let same_origin = headers(None, None, Some("same-origin"));
        assert_eq!(post(&lax, &same_origin), Allowed(A::SameOriginFetch));
        assert_eq!(post(&strict, &same_origin), Allowed(A::SameOriginFetch));
        // `same-site` (a sibling subdomain may be hostile), `none` and unknown values decide nothing.
        for value in ["same-site", "none", "some-future-value"] {
            let bare = headers(None, None, Some(value));
            assert_eq!(post(&lax, &bare), Allowed(A::NoOrigin), "{value}");
            assert_eq!(post(&strict, &bare), Refused(R::MissingOrigin), "{value}");
        }
        // A Referer still decides for them.
        let foreign = headers(None, Some("https://evil.example/"), Some("same-site"));
        assert_eq!(post(&lax, &foreign), Refused(R::ForeignReferer));
        let foreign = headers(None, Some("https://evil.example/"), Some("same-origin"));
        assert_eq!(post(&lax, &foreign), Refused(R::ForeignReferer));
    }

    #[test]
    fn an_unknown_own_host_allows_only_listed_origins() {
        let p = policy(&["http://a.example"], false);
        for host in [None, Some(&b"\xff"[..])] {
            let mut h = headers(Some("http://a.example"), None, None);
            h.host = host;
            assert_eq!(post(&p, &h), Allowed(A::ListedOrigin));
            h.origin = Some(b"http://127.0.0.1:3000");
            assert_eq!(post(&p, &h), Refused(R::ForeignOrigin));
        }
    }

    #[test]
    fn bad_config_origins_are_build_errors() {
        for (origin, reason) in [
            ("app.example.com", InvalidOrigin::MissingScheme),
            ("localhost:5173", InvalidOrigin::MissingScheme),
            ("", InvalidOrigin::MissingScheme),
            ("null", InvalidOrigin::Null),
            ("://app.example.com", InvalidOrigin::BadScheme),
            ("1http://app.example.com", InvalidOrigin::BadScheme),
            ("ht tp://app.example.com", InvalidOrigin::BadScheme),
            ("https://", InvalidOrigin::BadHost),
            ("https://app example.com", InvalidOrigin::BadHost),
            ("https://[::1", InvalidOrigin::BadHost),
            ("https://[]", InvalidOrigin::BadHost),
            ("https://app.example.com:", InvalidOrigin::BadPort),
            ("https://app.example.com:65536", InvalidOrigin::BadPort),
            ("https://app.example.com:80:80", InvalidOrigin::BadPort),
            ("https://app.example.com:+80", InvalidOrigin::BadPort),
            ("https://app.example.com/app", InvalidOrigin::HasPath),
            ("https://app.example.com//", InvalidOrigin::HasPath),
            ("https://app.example.com?x", InvalidOrigin::HasPath),
            ("https://user@app.example.com", InvalidOrigin::HasUserinfo),
        ] {
            let error = OriginPolicy::builder()
                .allowed_origin("https://fine.example")
                .allowed_origin(origin)
                .build()
                .unwrap_err();
            assert_eq!(
                (error.origin(), error.reason()),
                (origin, reason),
                "{origin:?}"
            );
            assert!(
                error.to_string().contains(&format!("{origin:?}")),
                "{error}"
            );
        }
        // And the forms browsers send are fine.
        let p = policy(
            &[
                "https://app.example.com",
                " http://LOCALHOST:5173/ ",
                "http://[::1]:8080",
                "chrome-extension://abcdef",
            ],
            false,
        );
        assert_eq!(
            p.allowed_origins().collect::<Vec<_>>(),
            [
                "https://app.example.com",
                "http://localhost:5173",
                "http://[::1]:8080",
                "chrome-extension://abcdef"
            ]
        );
        // Extending a policy validates the new origin too.
        assert!(p.to_builder().allowed_origin("nope").build().is_err());
        assert_eq!(p.to_builder().build().unwrap(), p);
    }

    #[test]
    fn headers_debug_hides_the_referer() {
        let h = headers(
            Some("https://a.example"),
            Some("https://a.example/reset?token=s3cret"),
            None,
        );
        let debug = format!("{h:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("https://a.example"), "{debug}");
    }

    fn compares() -> u32 {
        CONSTANT_TIME_COMPARES.with(Cell::get)
    }

    #[test]
    fn token_verification() {
        let token = SessionId::generate().expose_secret();
        assert_eq!(verify_token(&token, None), Err(TokenRefusal::Missing));
        assert_eq!(verify_token(&token, Some(b"")), Err(TokenRefusal::Missing));
        let wrong = "A".repeat(token.len());
        assert_eq!(
            verify_token(&token, Some(wrong.as_bytes())),
            Err(TokenRefusal::Mismatch)
        );
        let short = &token.as_bytes()[..token.len() - 1];
        assert_eq!(
            verify_token(&token, Some(short)),
            Err(TokenRefusal::Mismatch)
        );
        let long = format!("{token}A");
        assert_eq!(
            verify_token(&token, Some(long.as_bytes())),
            Err(TokenRefusal::Mismatch)
        );
        assert_eq!(verify_token(&token, Some(token.as_bytes())), Ok(()));
        // An empty stored token matches nothing, not even an empty header.
        assert_eq!(verify_token("", Some(b"x")), Err(TokenRefusal::Mismatch));
    }

    #[test]
    fn token_comparison_is_constant_time() {
        let token = SessionId::generate().expose_secret();
        let before = compares();
        assert!(verify_token(&token, Some(token.as_bytes())).is_ok());
        let wrong = "A".repeat(token.len());
        assert!(verify_token(&token, Some(wrong.as_bytes())).is_err());
        assert_eq!(
            compares() - before,
            2,
            "both outcomes go through constant_time_eq"
        );
    }

    fn session() -> Session {
        let manager = SessionManager::builder(
            Arc::new(MemoryStore::new()),
            CookieKey::from_secret(&[5; 32]).unwrap(),
        )
        .build()
        .unwrap();
        manager.session(crate::RequestHeaders::new())
    }

    #[tokio::test]
    async fn session_tokens() {
        let session = session();
        // No token yet: none required, and checking creates none.
        assert_eq!(
            session.check_csrf_token(None).await.unwrap(),
            TokenVerdict::NotRequired
        );
        assert_eq!(session.get_value(CSRF_SESSION_KEY).await.unwrap(), None);

        let token = session.csrf_token().await.unwrap();
        assert_eq!(token.len(), 43, "256 bits, base64url");
        assert_eq!(
            session.csrf_token().await.unwrap(),
            token,
            "stable for the session"
        );

        let check = |presented: Option<Vec<u8>>| {
            let session = session.clone();
            async move {
                session
                    .check_csrf_token(presented.as_deref())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            check(None).await,
            TokenVerdict::Refused(TokenRefusal::Missing)
        );
        assert_eq!(
            check(Some(b"wrong".to_vec())).await,
            TokenVerdict::Refused(TokenRefusal::Mismatch)
        );
        assert_eq!(
            check(Some(token.clone().into_bytes())).await,
            TokenVerdict::Valid
        );
        assert!(TokenVerdict::Valid.is_allowed() && TokenVerdict::NotRequired.is_allowed());
        assert_eq!(
            TokenVerdict::Refused(TokenRefusal::Missing).refusal(),
            Some(TokenRefusal::Missing)
        );

        // A stored value that is not a token refuses everything, and `csrf_token` replaces it.
        session
            .insert_value(CSRF_SESSION_KEY, Value::from(7))
            .await
            .unwrap();
        assert_eq!(
            check(Some(b"7".to_vec())).await,
            TokenVerdict::Refused(TokenRefusal::Mismatch)
        );
        let fresh = session.csrf_token().await.unwrap();
        assert_ne!(fresh, token);
        assert_eq!(check(Some(fresh.into_bytes())).await, TokenVerdict::Valid);
    }

    #[test]
    fn refusals_say_why_without_secrets() {
        for refusal in [
            R::NullOrigin,
            R::MalformedOrigin,
            R::ForeignOrigin,
            R::CrossSiteWithoutOrigin,
            R::MalformedReferer,
            R::ForeignReferer,
            R::MissingOrigin,
        ] {
            assert!(!refusal.to_string().is_empty());
            assert_eq!(Refused(refusal).refusal(), Some(refusal));
            assert!(!Refused(refusal).is_allowed());
        }
        assert_eq!(Allowed(A::SameHost).refusal(), None);
    }
}
