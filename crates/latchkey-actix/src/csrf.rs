//! Cross-site request forgery defences for cookie-authenticated routes.
//!
//! The policy is [`latchkey_session`]'s (so every adapter decides alike); this crate only reads
//! the headers and answers a refusal ([`CsrfRefusal`]) with `403 Forbidden` and
//! `{"error":"forbidden"}`. Two independent checks, both on by
//! default in [`SessionMiddleware`](crate::SessionMiddleware):
//!
//! - **Origin check** ([`OriginPolicy`]): a request with an unsafe method (anything but `GET`,
//!   `HEAD`, `OPTIONS`, `TRACE`) is refused when its `Origin` header — or, when `Origin` is absent,
//!   the origin of its `Referer` — is neither the request's own host nor one of the allowed
//!   origins. `Origin: null` is refused, and so is `Sec-Fetch-Site: cross-site` without `Origin`.
//!   A request that carries neither header is not a browser request and is let through unless the
//!   policy requires an origin ([`OriginPolicyBuilder::require_origin`]).
//! - **Synchronizer token**: a random token kept in the session under [`CSRF_SESSION_KEY`]; once a
//!   session holds one, every unsafe request on that session must repeat it in a header
//!   (default [`DEFAULT_CSRF_HEADER`]), compared in constant time. Handlers obtain the token with
//!   `Session::csrf_token` and hand it to their front end.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use latchkey_session::OriginHeaders;
#[doc(no_inline)]
pub use latchkey_session::{
    CsrfProtection, CsrfRefusal, InvalidOrigin, OriginAllowed, OriginConfigError, OriginPolicy,
    OriginPolicyBuilder, OriginRefusal, OriginVerdict, TokenRefusal, CSRF_SESSION_KEY,
    DEFAULT_CSRF_HEADER,
};

/// `Sec-Fetch-Site` (Fetch Metadata), which actix-web has no constant for.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The headers of `request` that the origin policy reads. Its own host is its `Host` header, or
/// for HTTP/2 its URI authority — never `Forwarded`/`X-Forwarded-Host`, which a client can set.
pub(crate) fn origin_headers(request: &ServiceRequest) -> OriginHeaders<'_> {
    let headers = request.headers();
    let named = |name| headers.get(name).map(HeaderValue::as_bytes);
    OriginHeaders {
        host: named(header::HOST).or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str().as_bytes())
        }),
        origin: named(header::ORIGIN),
        referer: named(header::REFERER),
        sec_fetch_site: named(SEC_FETCH_SITE),
    }
}
