//! [`CsrfProtection`]: the CSRF settings of an adapter's session middleware, and
//! [`CsrfRefusal`], what it answers `403` for. Kept here so that every adapter configures and
//! decides alike; an adapter only reads headers and writes the response.

use std::fmt;

use super::{
    OriginConfigError, OriginHeaders, OriginPolicy, OriginRefusal, RequestMethod, TokenRefusal,
};
use crate::{Session, SessionError};

/// The default request header that carries the synchronizer token.
pub const DEFAULT_CSRF_HEADER: &str = "x-csrf-token";

/// Which CSRF defences a session middleware applies to unsafe requests: the origin check (an
/// [`OriginPolicy`]) and the synchronizer token (read from a header). Both are on by default;
/// the setters consume and return it, and adapters expose them as their own `with_*` setters.
///
/// ```
/// use latchkey_session::{CsrfProtection, OriginHeaders, RequestMethod};
///
/// let csrf = CsrfProtection::new()
///     .with_allowed_origin("https://app.example.com")?
///     .with_token_header("X-XSRF-Token");
/// assert_eq!(csrf.token_header(RequestMethod::Unsafe), Some("x-xsrf-token"));
/// assert_eq!(csrf.token_header(RequestMethod::Safe), None);
/// let foreign = OriginHeaders { host: Some(b"api.example.com"), origin: Some(b"https://evil.example"), ..OriginHeaders::default() };
/// assert!(csrf.check_origin(RequestMethod::Unsafe, &foreign).is_err());
/// assert!(CsrfProtection::new().with_origin_policy(None).check_origin(RequestMethod::Unsafe, &foreign).is_ok());
/// # Ok::<(), latchkey_session::OriginConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfProtection {
    origin_policy: Option<OriginPolicy>,
    token_header: Option<String>,
}

impl Default for CsrfProtection {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrfProtection {
    /// The origin check with same-host requests only, and the token in [`DEFAULT_CSRF_HEADER`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin_policy: Some(OriginPolicy::new()),
            token_header: Some(DEFAULT_CSRF_HEADER.to_owned()),
        }
    }

    /// Also accept unsafe requests from `origin` (`scheme://host[:port]`); turns the origin check
    /// on if it was off.
    ///
    /// # Errors
    ///
    /// [`OriginConfigError`] when `origin` is not a valid origin (for example, no scheme).
    pub fn with_allowed_origin(mut self, origin: &str) -> Result<Self, OriginConfigError> {
        let policy = self.origin_policy.take().unwrap_or_default();
        self.origin_policy = Some(policy.to_builder().allowed_origin(origin).build()?);
        Ok(self)
    }

    /// Replaces the origin policy; `None` turns the origin check off.
    #[must_use]
    pub fn with_origin_policy(mut self, policy: Option<OriginPolicy>) -> Self {
        self.origin_policy = policy;
        self
    }

    /// Turns the synchronizer-token check on (keeping its header, or the default one) or off.
    #[must_use]
    pub fn with_token(mut self, enabled: bool) -> Self {
        self.token_header = match (enabled, self.token_header.take()) {
            (false, _) => None,
            (true, Some(name)) => Some(name),
            (true, None) => Some(DEFAULT_CSRF_HEADER.to_owned()),
        };
        self
    }

    /// The header that carries the synchronizer token (header names are case-insensitive; it is
    /// kept lowercase); turns the token check on.
    #[must_use]
    pub fn with_token_header(mut self, name: &str) -> Self {
        self.token_header = Some(name.to_ascii_lowercase());
        self
    }

    /// The origin policy, if the origin check is on.
    #[must_use]
    pub fn origin_policy(&self) -> Option<&OriginPolicy> {
        self.origin_policy.as_ref()
    }

    /// The origin check, which needs no store access and so runs before the handler.
    ///
    /// # Errors
    ///
    /// [`CsrfRefusal::Origin`] when the policy refuses the request.
    pub fn check_origin(
        &self,
        method: RequestMethod,
        headers: &OriginHeaders<'_>,
    ) -> Result<(), CsrfRefusal> {
        match &self.origin_policy {
            Some(policy) => match policy.check(method, headers).refusal() {
                Some(refusal) => Err(CsrfRefusal::Origin(refusal)),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The header to read the synchronizer token from, when a request with `method` must pass
    /// the token check (an unsafe method, and the check on).
    #[must_use]
    pub fn token_header(&self, method: RequestMethod) -> Option<&str> {
        match method {
            RequestMethod::Safe => None,
            RequestMethod::Unsafe => self.token_header.as_deref(),
        }
    }
}

impl Session {
    /// [`check_csrf_token`](Self::check_csrf_token) as an adapter needs it: `Ok(Err(refusal))` for
    /// a request to answer `403`, `Err` when the store could not be read.
    ///
    /// # Errors
    ///
    /// A [`SessionError`] when the session cannot be loaded.
    pub async fn check_csrf_header(
        &self,
        presented: Option<&[u8]>,
    ) -> Result<Result<(), CsrfRefusal>, SessionError> {
        let verdict = self.check_csrf_token(presented).await?;
        Ok(match verdict.refusal() {
            Some(refusal) => Err(CsrfRefusal::Token(refusal)),
            None => Ok(()),
        })
    }
}

/// Why a CSRF defence refused a state-changing request (adapters answer `403` with an opaque
/// body and log this). Its `Display` is one line and contains no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRefusal {
    /// The origin check refused the request (a foreign or `null` `Origin`, a foreign `Referer`,
    /// a cross-site request without `Origin`, …).
    Origin(OriginRefusal),
    /// The session holds a CSRF token and the request did not repeat it in the CSRF header.
    Token(TokenRefusal),
}

impl fmt::Display for CsrfRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsrfRefusal::Origin(refusal) => write!(f, "request origin is not allowed: {refusal}"),
            CsrfRefusal::Token(refusal) => write!(f, "CSRF token check failed: {refusal}"),
        }
    }
}

impl std::error::Error for CsrfRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CsrfRefusal::Origin(refusal) => Some(refusal),
            CsrfRefusal::Token(refusal) => Some(refusal),
        }
    }
}
