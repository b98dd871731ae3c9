//! Cross-site request forgery defences for cookie-authenticated routes.
//!
//! Two independent checks, both on by default in [`SessionLayer`](crate::SessionLayer):
//!
//! - **Origin check** ([`OriginCheck`]): a request with an unsafe method (anything but `GET`, `HEAD`,
//!   `OPTIONS`, `TRACE`) is refused with 403 when its `Origin` header — or, when `Origin` is absent,
//!   the origin of its `Referer` — is neither the request's own host nor one of the allowed origins.
//!   `Origin: null` (sandboxed frames, some redirects) is refused. A request that carries neither header
//!   is not a browser request (browsers send `Origin` on every cross-origin unsafe request) and is let
//!   through unless [`OriginCheck::with_require_origin`] says otherwise.
//! - **Synchronizer token**: a random token kept in the session under [`CSRF_SESSION_KEY`]; once a
//!   session holds one, every unsafe request on that session must repeat it in a header
//!   (default [`DEFAULT_CSRF_HEADER`]), compared in constant time. Handlers obtain the token with
//!   [`Session::csrf_token`](crate::Session::csrf_token) and hand it to their front end.

use axum::http::{header, HeaderMap, Method, Request};

/// The session key under which the synchronizer token is stored.
pub const CSRF_SESSION_KEY: &str = "_latchkey_csrf";

/// The default request header that carries the synchronizer token.
pub const DEFAULT_CSRF_HEADER: &str = "x-csrf-token";

/// Is this method one that must not change state (RFC 9110 §9.2.1)?
pub(crate) fn is_safe_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The allowed-origin check for unsafe methods.
///
/// The request's own host (its `Host` header, or the URI authority for HTTP/2) is always allowed;
/// other origins must be listed with [`OriginCheck::with_allowed_origin`].
///
/// ```
/// use latchkey_axum::csrf::OriginCheck;
///
/// let check = OriginCheck::new().with_allowed_origin("https://app.example.com");
/// # let _ = check;
/// ```
#[derive(Debug, Clone, Default)]
pub struct OriginCheck {
    allowed: Vec<String>,
    require_origin: bool,
}

impl OriginCheck {
    /// Only same-host requests (and requests without `Origin`/`Referer`) may use unsafe methods.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow unsafe requests from `origin` (`scheme://host[:port]`, as browsers send it in `Origin`).
    ///
    /// Case and a trailing `/` are ignored.
    ///
    /// ```
    /// use latchkey_axum::csrf::OriginCheck;
    /// let check = OriginCheck::new().with_allowed_origin("http://localhost:5173");
    /// # let _ = check;
    /// ```
    #[must_use]
    pub fn with_allowed_origin(mut self, origin: &str) -> Self {
        self.allowed.push(normalize_origin(origin));
        self
    }

    /// Refuse unsafe requests that carry neither `Origin` nor `Referer` (default: let them through,
    /// since only non-browser clients send neither, and they cannot be made to carry a victim's
    /// cookies).
    ///
    /// ```
    /// use latchkey_axum::csrf::OriginCheck;
    /// let check = OriginCheck::new().with_require_origin(true);
    /// # let _ = check;
    /// ```
    #[must_use]
    pub fn with_require_origin(mut self, require: bool) -> Self {
        self.require_origin = require;
        self
    }

    /// Does `request` pass the check? Its own host is taken from its `Host` header (or, for HTTP/2,
    /// its URI authority).
    #[must_use]
    pub fn allows_request<B>(&self, request: &Request<B>) -> bool {
        let authority = request_authority(request.headers(), request.uri());
        self.allows(request.method(), request.headers(), authority)
    }

    /// Does a request with this method and these headers pass the check?
    ///
    /// `authority` is the request's own host (`Host` header or URI authority), when known.
    #[must_use]
    pub fn allows(&self, method: &Method, headers: &HeaderMap, authority: Option<&str>) -> bool {
        if is_safe_method(method) {
            return true;
        }
        let claimed = match headers.get(header::ORIGIN) {
            Some(origin) => match origin.to_str() {
                Ok(origin) => Some(origin.to_owned()),
                Err(_) => return false,
            },
            None => match headers.get(header::REFERER) {
                Some(referer) => match referer.to_str().ok().and_then(origin_of_url) {
                    Some(origin) => Some(origin),
                    None => return false,
                },
                None => None,
            },
        };
        let Some(claimed) = claimed else {
            return !self.require_origin;
        };
        let claimed = normalize_origin(&claimed);
        if claimed == "null" {
            return false;
        }
        if self.allowed.contains(&claimed) {
            return true;
        }
        match (authority, claimed.split_once("://")) {
            (Some(own), Some((scheme, host))) if scheme == "http" || scheme == "https" => {
                host.eq_ignore_ascii_case(own)
            }
            _ => false,
        }
    }
}

/// The request's own authority: the `Host` header, else the URI's authority (HTTP/2).
pub(crate) fn request_authority<'a>(
    headers: &'a HeaderMap,
    uri: &'a axum::http::Uri,
) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `scheme://authority` of an absolute URL, or `None` when it is not one.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Drop any userinfo: the origin is only scheme, host and port.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const OWN: Option<&str> = Some("127.0.0.1:3000");

    #[test]
    fn safe_methods_always_pass() {
        let check = OriginCheck::new();
        let foreign = headers(&[("origin", "https://evil.example")]);
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(check.allows(&method, &foreign, OWN));
        }
    }

    #[test]
    fn same_host_origin_passes_foreign_fails() {
        let check = OriginCheck::new();
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check.allows(
                &method,
                &headers(&[("origin", "http://127.0.0.1:3000")]),
                OWN
            ));
            assert!(!check.allows(
                &method,
                &headers(&[("origin", "http://127.0.0.1:3001")]),
                OWN
            ));
            assert!(!check.allows(
                &method,
                &headers(&[("origin", "https://evil.example")]),
                OWN
            ));
        }
    }

    #[test]
    fn listed_origins_pass_case_insensitively() {
        let check = OriginCheck::new().with_allowed_origin("https://App.Example.com/");
        let ok = headers(&[("origin", "https://app.example.com")]);
        assert!(check.allows(&Method::POST, &ok, OWN));
        let other = headers(&[("origin", "https://app.example.com.evil.example")]);
        assert!(!check.allows(&Method::POST, &other, OWN));
    }

    #[test]
    fn null_and_garbage_origins_fail() {
        let check = OriginCheck::new().with_allowed_origin("null");
        assert!(!check.allows(&Method::POST, &headers(&[("origin", "null")]), OWN));
        assert!(!check.allows(
            &Method::POST,
            &headers(&[("origin", "127.0.0.1:3000")]),
            OWN
        ));
        let mut bad = HeaderMap::new();
        bad.insert("origin", HeaderValue::from_bytes(b"http://\xff").unwrap());
        assert!(!OriginCheck::new().allows(&Method::POST, &bad, OWN));
    }

    #[test]
    fn referer_is_used_only_without_origin() {
        let check = OriginCheck::new();
        let same = headers(&[("referer", "http://127.0.0.1:3000/page?x=1")]);
        assert!(check.allows(&Method::POST, &same, OWN));
        let foreign = headers(&[("referer", "https://evil.example/http://127.0.0.1:3000")]);
        assert!(!check.allows(&Method::POST, &foreign, OWN));
        let userinfo = headers(&[("referer", "https://127.0.0.1:3000@evil.example/")]);
        assert!(!check.allows(&Method::POST, &userinfo, OWN));
        let relative = headers(&[("referer", "/relative")]);
        assert!(!check.allows(&Method::POST, &relative, OWN));
        // Origin wins over Referer.
        let both = headers(&[
            ("origin", "https://evil.example"),
            ("referer", "http://127.0.0.1:3000/"),
        ]);
        assert!(!check.allows(&Method::POST, &both, OWN));
    }

    #[test]
    fn missing_headers_pass_unless_required() {
        let none = HeaderMap::new();
        assert!(OriginCheck::new().allows(&Method::POST, &none, OWN));
        assert!(!OriginCheck::new()
            .with_require_origin(true)
            .allows(&Method::POST, &none, OWN));
    }

    #[test]
    fn whole_requests_use_their_host_header() {
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
        assert!(!check.allows_request(&request));
        let request = Request::post("http://127.0.0.1:3000/x")
            .header("origin", "http://127.0.0.1:3000")
            .body(())
            .unwrap();
        assert!(check.allows_request(&request));
    }

    #[test]
    fn unknown_own_host_only_allows_listed() {
        let check = OriginCheck::new().with_allowed_origin("http://a.example");
        assert!(check.allows(
            &Method::POST,
            &headers(&[("origin", "http://a.example")]),
            None
        ));
        assert!(!check.allows(
            &Method::POST,
            &headers(&[("origin", "http://b.example")]),
            None
        ));
    }
}
