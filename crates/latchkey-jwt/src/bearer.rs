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

/// Is `byte` allowed in a header value read as text (visible ASCII, space or tab)?
fn is_header_text(byte: u8) -> bool {
    byte == b'\t' || (b' '..=b'~').contains(&byte)
}

/// The bearer credentials in a request's `Authorization` header values, in order. The scheme is
/// case-insensitive; surrounding spaces around the token are ignored.
///
/// ```
/// use latchkey_jwt::{bearer_credentials, BearerCredentials};
///
/// assert_eq!(bearer_credentials([&b"Bearer abc.def.ghi"[..]]), BearerCredentials::Token("abc.def.ghi"));
/// assert_eq!(bearer_credentials([&b"Basic dXNlcjpwdw=="[..]]), BearerCredentials::Absent);
/// assert_eq!(bearer_credentials(std::iter::empty()), BearerCredentials::Absent);
/// assert_eq!(bearer_credentials([&b"bearer "[..]]), BearerCredentials::Malformed);
/// assert_eq!(format!("{:?}", bearer_credentials([&b"Bearer s3cret"[..]])), "Token([redacted])");
/// ```
pub fn bearer_credentials<'a, I>(values: I) -> BearerCredentials<'a>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return BearerCredentials::Absent;
    };
    if !value.iter().copied().all(is_header_text) {
        return BearerCredentials::Malformed;
    }
    let Ok(text) = std::str::from_utf8(value) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &[u8]) -> BearerCredentials<'_> {
        bearer_credentials([value])
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
            bearer_credentials([&b"Bearer a.b.c"[..], b"Bearer d.e.f"]),
            BearerCredentials::Malformed
        );
        // Only the first header's scheme decides whether a bearer token was offered.
        assert_eq!(
            bearer_credentials([&b"Basic x"[..], b"Bearer d.e.f"]),
            BearerCredentials::Absent
        );
    }
}
