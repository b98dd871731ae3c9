//! Reading `Authorization: Bearer <token>` (RFC 6750 §2.1) out of raw header bytes, the same way
//! for every web adapter: no framework types, no verification (that is [`Verifier`]'s job).
//!
//! [`Verifier`]: crate::Verifier

/// What a request's `Authorization` headers hold, as far as bearer tokens go. The `Debug` output
/// never shows the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BearerCredentials<'a> {
    /// No `Authorization` header, or one with another scheme (`Basic …`): no bearer token was
    /// offered.
    Absent,
    /// `Bearer <token>`: the token, not yet verified.
    Token(&'a str),
    /// A `Bearer` header that cannot hold a token: several `Authorization` headers, bytes that are
    /// not visible ASCII, an empty token or one with spaces inside. Refuse it like an invalid token.
    Malformed,
}

impl std::fmt::Debug for BearerCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerCredentials::Absent => f.write_str("Absent"),
            BearerCredentials::Token(_) => f.write_str("Token([redacted])"),
            BearerCredentials::Malformed => f.write_str("Malformed"),
        }
    }
}

/// The bearer credentials in a request's `Authorization` header values, in order, each as the
/// framework reads it as text (`HeaderValue::to_str().ok()` in http and actix-web: visible
/// ASCII, space and tab) or `None` for a value that is not text. The scheme is
/// case-insensitive; surrounding spaces around the token are ignored. (Taking text, not bytes,
/// leaves the byte check to the framework's one pass instead of adding two more here.)
///
/// ```
/// use latchkey_jwt::{bearer_credentials, BearerCredentials};
///
/// assert_eq!(bearer_credentials([Some("Bearer abc.def.ghi")]), BearerCredentials::Token("abc.def.ghi"));
/// assert_eq!(bearer_credentials([Some("Basic dXNlcjpwdw==")]), BearerCredentials::Absent);
/// assert_eq!(bearer_credentials(std::iter::empty()), BearerCredentials::Absent);
/// assert_eq!(bearer_credentials([Some("bearer ")]), BearerCredentials::Malformed);
/// assert_eq!(bearer_credentials([None]), BearerCredentials::Malformed); // not text
/// assert_eq!(format!("{:?}", bearer_credentials([Some("Bearer s3cret")])), "Token([redacted])");
/// ```
pub fn bearer_credentials<'a, I>(values: I) -> BearerCredentials<'a>
where
    I: IntoIterator<Item = Option<&'a str>>,
{
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return BearerCredentials::Absent;
    };
    // The framework checked the bytes; a token with other characters fails verification.
    let Some(text) = value else {
        return BearerCredentials::Malformed;
    };
    let Some((scheme, rest)) = text.split_once(' ') else {
        return if text.eq_ignore_ascii_case("bearer") {
            BearerCredentials::Malformed
        } else {
            BearerCredentials::Absent
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerCredentials::Absent;
    }
    if values.next().is_some() {
        return BearerCredentials::Malformed;
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return BearerCredentials::Malformed;
    }
    BearerCredentials::Token(token)
}

/// Why a request's bearer credentials were refused. Adapters answer `401 Unauthorized` with
/// [`challenge`](Self::challenge) in `WWW-Authenticate` and [`code`](Self::code) as the only
/// body (RFC 6750 §3); the reason is for logs. Neither `Display` nor `Debug` shows the token.
#[derive(Debug)]
#[non_exhaustive]
pub enum BearerRefusal {
    /// No bearer token was offered (no `Authorization` header, or another scheme).
    Missing,
    /// A `Bearer` header that holds no usable token ([`BearerCredentials::Malformed`]).
    Malformed,
    /// The token failed a check of the [`Verifier`](crate::Verifier).
    Invalid(crate::Error),
}

impl BearerRefusal {
    /// The `WWW-Authenticate` challenge: a bare `Bearer` when no token was offered, else
    /// `Bearer error="invalid_token"`.
    #[must_use]
    pub fn challenge(&self) -> &'static str {
        match self {
            BearerRefusal::Missing => "Bearer",
            BearerRefusal::Malformed | BearerRefusal::Invalid(_) => {
                "Bearer error=\"invalid_token\""
            }
        }
    }

    /// The short error code for the response body: `unauthorized` or `invalid_token`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            BearerRefusal::Missing => "unauthorized",
            BearerRefusal::Malformed | BearerRefusal::Invalid(_) => "invalid_token",
        }
    }
}

impl std::fmt::Display for BearerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerRefusal::Missing => f.write_str("no bearer token"),
            BearerRefusal::Malformed => f.write_str("malformed bearer credentials"),
            BearerRefusal::Invalid(_) => f.write_str("invalid bearer token"),
        }
    }
}

impl std::error::Error for BearerRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BearerRefusal::Missing | BearerRefusal::Malformed => None,
            BearerRefusal::Invalid(error) => Some(error),
        }
    }
}

impl crate::Verifier {
    /// The verified claims of the bearer token in a request's `Authorization` header values
    /// (read with [`bearer_credentials`]); `Ok(None)` when the request offers none, so that a
    /// route can treat authentication as optional and still refuse a bad token.
    ///
    /// ```
    /// use latchkey_jwt::{Algorithm, BearerRefusal, Claims, HmacKey, Signer, Validation, Verifier};
    ///
    /// let key = HmacKey::from_secret(Algorithm::HS256, &[7; 32])?;
    /// let token = Signer::new(key.clone()).sign(&Claims { exp: Some(4_000_000_000), ..Claims::new(()) })?;
    /// let verifier = Verifier::new(key, Validation::builder().build()?);
    /// let header = format!("Bearer {token}");
    /// assert!(verifier.verify_bearer::<(), _>([Some(header.as_str())])?.is_some());
    /// assert!(verifier.verify_bearer::<(), _>(std::iter::empty())?.is_none());
    /// let refused = verifier.verify_bearer::<(), _>([Some("Bearer x.y.z")]).unwrap_err();
    /// assert_eq!(refused.challenge(), r#"Bearer error="invalid_token""#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BearerRefusal::Malformed`] or [`BearerRefusal::Invalid`]; never `Missing`.
    pub fn verify_bearer<'a, T, I>(
        &self,
        authorization: I,
    ) -> Result<Option<crate::Claims<T>>, BearerRefusal>
    where
        T: serde::de::DeserializeOwned,
        I: IntoIterator<Item = Option<&'a str>>,
    {
        match bearer_credentials(authorization) {
            BearerCredentials::Absent => Ok(None),
            BearerCredentials::Malformed => Err(BearerRefusal::Malformed),
            BearerCredentials::Token(token) => {
                self.verify(token).map(Some).map_err(BearerRefusal::Invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` as a framework would hand it over: text if it is header text, else `None`.
    fn one(value: &[u8]) -> BearerCredentials<'_> {
        let text = value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
            .then(|| std::str::from_utf8(value).ok())
            .flatten();
        bearer_credentials([text])
    }

    #[test]
    fn tokens_schemes_and_garbage() {
        assert_eq!(one(b"Bearer a.b.c"), BearerCredentials::Token("a.b.c"));
        assert_eq!(one(b"BEARER  a.b.c "), BearerCredentials::Token("a.b.c"));
        assert_eq!(one(b"Basic a.b.c"), BearerCredentials::Absent);
        assert_eq!(one(b"Digest"), BearerCredentials::Absent);
        assert_eq!(one(b"Bearer"), BearerCredentials::Malformed);
        assert_eq!(one(b"Bearer   "), BearerCredentials::Malformed);
        assert_eq!(one(b"Bearer a b"), BearerCredentials::Malformed);
        assert_eq!(one(b"Bearer a\xffb"), BearerCredentials::Malformed);
        assert_eq!(one(b"Bearer a\x01b"), BearerCredentials::Malformed);
        // Two Authorization headers with a bearer first: ambiguous, refused.
        assert_eq!(
            bearer_credentials([Some("Bearer a.b.c"), Some("Bearer d.e.f")]),
            BearerCredentials::Malformed
        );
        // Only the first header's scheme decides whether a bearer token was offered.
        assert_eq!(
            bearer_credentials([Some("Basic x"), Some("Bearer d.e.f")]),
            BearerCredentials::Absent
        );
    }
}
