//! Cross-site request forgery defences for cookie-authenticated routes.
//!
//! The policy is [`latchkey_session`]'s (so every adapter decides alike); this module only reads
//! the headers and answers a refusal ([`CsrfRefusal`]) with `403 Forbidden` and `{"error":"forbidden"}`. Two
//! independent checks, both on by default in [`SessionLayer`](crate::SessionLayer):
//!
//! - **Origin check** ([`OriginCheck`], around an [`OriginPolicy`]): a request with an unsafe method
//!   (anything but `GET`, `HEAD`, `OPTIONS`, `TRACE`) is refused when its `Origin` header — or, when
//!   `Origin` is absent, the origin of its `Referer` — is neither the request's own host nor one of
//!   the allowed origins. `Origin: null` is refused, and so is `Sec-Fetch-Site: cross-site` without
//!   `Origin`. A request that carries neither header is not a browser request and is let through
//!   unless the policy requires an origin ([`OriginPolicyBuilder::require_origin`]).
//! - **Synchronizer token**: a random token kept in the session under [`CSRF_SESSION_KEY`]; once a
//!   session holds one, every unsafe request on that session must repeat it in a header
//!   (default [`DEFAULT_CSRF_HEADER`]), compared in constant time. Handlers obtain the token with
//!   [`Session::csrf_token`](crate::Session::csrf_token) and hand it to their front end.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use axum::response::{IntoResponse, Response};
#[doc(no_inline)]
pub use latchkey_session::{
    CsrfProtection, CsrfRefusal, InvalidOrigin, OriginAllowed, OriginConfigError, OriginPolicy,
    OriginPolicyBuilder, OriginRefusal, OriginVerdict, TokenRefusal, CSRF_SESSION_KEY,
    DEFAULT_CSRF_HEADER,
};
use latchkey_session::{OriginHeaders, RequestMethod};

use crate::rejection::{forbidden, SessionRejection};

/// `Sec-Fetch-Site` (Fetch Metadata), which `http` has no constant for.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The allowed-origin check for unsafe methods: an [`OriginPolicy`] applied to axum requests.
///
/// The request's own host (its `Host` header, or the URI authority for HTTP/2) is always allowed;
/// other origins are listed in the policy, whose builder refuses malformed ones.
///
/// ```
/// use latchkey_axum::csrf::{OriginCheck, OriginPolicy};
///
/// let check = OriginCheck::from(
///     OriginPolicy::builder()
///         .allowed_origin("https://app.example.com")
///         .build()?,
/// );
/// # let _ = check;
/// # Ok::<(), latchkey_axum::csrf::OriginConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OriginCheck {
    policy: OriginPolicy,
}

impl From<OriginPolicy> for OriginCheck {
    fn from(policy: OriginPolicy) -> Self {
        Self { policy }
    }
}

impl OriginCheck {
    /// Only same-host requests (and requests without `Origin`/`Referer`) may use unsafe methods.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy this check applies.
    #[must_use]
    pub fn policy(&self) -> &OriginPolicy {
        &self.policy
    }

    /// Also allow unsafe requests from `origin` (`scheme://host[:port]`, as browsers send it in
    /// `Origin`). Case and a trailing `/` are ignored.
    ///
    /// ```
    /// use latchkey_axum::csrf::OriginCheck;
    /// let check = OriginCheck::new().with_allowed_origin("http://localhost:5173")?;
    /// assert!(OriginCheck::new().with_allowed_origin("localhost:5173").is_err());
    /// # let _ = check;
    /// # Ok::<(), latchkey_axum::csrf::OriginConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OriginConfigError`] when `origin` is not a valid origin (for example, no scheme).
    pub fn with_allowed_origin(self, origin: &str) -> Result<Self, OriginConfigError> {
        let policy = self.policy.to_builder().allowed_origin(origin).build()?;
        Ok(Self { policy })
    }

    /// The verdict on `request`. Its own host is taken from its `Host` header (or, for HTTP/2,
    /// its URI authority).
    #[must_use]
    pub fn check_request<B>(&self, request: &Request<B>) -> OriginVerdict {
        let authority = request_authority(request.headers(), request.uri());
        self.check(request.method(), request.headers(), authority)
    }

    /// The verdict on a request with this method and these headers.
    ///
    /// `authority` is the request's own host (`Host` header or URI authority), when known.
    #[must_use]
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> OriginVerdict {
        self.policy.check(
            RequestMethod::from_name(method.as_str()),
            &origin_headers(headers, authority),
        )
    }

    /// Does `request` pass the check? [`check_request`](Self::check_request) says why not.
    #[must_use]
    pub fn allows_request<B>(&self, request: &Request<B>) -> bool {
        self.check_request(request).is_allowed()
    }

    /// Does a request with this method and these headers pass the check?
    /// [`check`](Self::check) says why not.
    #[must_use]
    pub fn allows(&self, method: &Method, headers: &HeaderMap, authority: Option<&str>) -> bool {
        self.check(method, headers, authority).is_allowed()
    }
}

/// The headers the origin policy reads; `authority` is the request's own host.
pub(crate) fn origin_headers<'a>(
    headers: &'a HeaderMap,
    authority: Option<&'a str>,
) -> OriginHeaders<'a> {
    let value = |name| headers.get(name).map(HeaderValue::as_bytes);
    OriginHeaders {
        host: authority.map(str::as_bytes),
        origin: value(header::ORIGIN),
        referer: value(header::REFERER),
        sec_fetch_site: value(SEC_FETCH_SITE),
    }
}

/// The request's own authority: the `Host` header, else the URI's authority (HTTP/2).
pub(crate) fn request_authority<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
}

/// The synchronizer-token check for an unsafe request, as a response when it fails: `403` for a
/// refusal, the session error's response when the store cannot be read.
pub(crate) async fn check_csrf_token(
    session: &latchkey_session::Session,
    presented: Option<&HeaderValue>,
) -> Result<(), Response> {
    match session
        .check_csrf_header(presented.map(HeaderValue::as_bytes))
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refusal)) => Err(forbidden(refusal)),
        Err(error) => Err(SessionRejection::from(error).into_response()),
    }
}

#[cfg(test)]
mod tests {
    //! The policy's own paths are tested in latchkey-session; these check that the right headers
    //! reach it.
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const OWN: Option<&str> = Some("127.0.0.1:3000");

    #[test]
    fn each_header_reaches_the_policy() {
        let check = OriginCheck::new();
        let verdict =
            |pairs: &[(&'static str, &str)]| check.check(&Method::POST, &headers(pairs), OWN);
        assert_eq!(
            verdict(&[("origin", "http://127.0.0.1:3000")]),
            OriginVerdict::Allowed(OriginAllowed::SameHost)
        );
        assert_eq!(
            verdict(&[("origin", "https://evil.example")]),
            OriginVerdict::Refused(OriginRefusal::ForeignOrigin)
        );
        assert_eq!(
            verdict(&[("referer", "https://evil.example/page")]),
            OriginVerdict::Refused(OriginRefusal::ForeignReferer)
        );
        assert_eq!(
            verdict(&[("sec-fetch-site", "cross-site")]),
            OriginVerdict::Refused(OriginRefusal::CrossSiteWithoutOrigin)
        );
        assert_eq!(
            verdict(&[]),
            OriginVerdict::Allowed(OriginAllowed::NoOrigin)
        );
        assert!(check.allows(
            &Method::GET,
            &headers(&[("origin", "https://evil.example")]),
            OWN
        ));
        assert!(!check.allows(
            &Method::DELETE,
            &headers(&[("origin", "https://evil.example")]),
            OWN
        ));
    }

    #[test]
    fn whole_requests_use_their_host_header_or_uri_authority() {
        let check = OriginCheck::new();
        let request = Request::post("/x")
            .header("host", "127.0.0.1:3000")
            .header("origin", "http://127.0.0.1:3000")
            .body(())
            .unwrap();
        assert!(check.allows_request(&request));
        let request = Request::post("/x")
            .header("host", "127.0.0.1:3000")
            .header("origin", "http://evil.example")
            .body(())
            .unwrap();
        assert_eq!(
            check.check_request(&request),
            OriginVerdict::Refused(OriginRefusal::ForeignOrigin)
        );
        let request = Request::post("http://127.0.0.1:3000/x")
            .header("origin", "http://127.0.0.1:3000")
            .body(())
            .unwrap();
        assert!(check.allows_request(&request));
        // Without either, the own host is unknown: only listed origins pass.
        let request = Request::post("/x")
            .header("origin", "http://127.0.0.1:3000")
            .body(())
            .unwrap();
        assert!(!check.allows_request(&request));
    }

    #[test]
    fn allowed_origins_are_validated_and_added() {
        let check = OriginCheck::new()
            .with_allowed_origin("https://App.Example.com/")
            .unwrap()
            .with_allowed_origin("http://localhost:5173")
            .unwrap();
        assert_eq!(check.policy().allowed_origins().count(), 2);
        let ok = headers(&[("origin", "https://app.example.com")]);
        assert!(check.allows(&Method::POST, &ok, OWN));
        let error = OriginCheck::new()
            .with_allowed_origin("app.example.com")
            .unwrap_err();
        assert_eq!(error.reason(), InvalidOrigin::MissingScheme);
    }
}
