//! Cookie signing ([`CookieKey`]), cookie attributes ([`SameSite`]) and the `Set-Cookie` value
//! ([`SetCookie`]).
//!
//! The `Set-Cookie` text is built here rather than with the `cookie` crate: the session cookie
//! is one fixed shape (a validated name, an 87-byte token of base64url and `.`, and a handful
//! of attributes validated once at start-up), so a few lines of formatting are easier to audit
//! than a general cookie jar, and parsing the request's `Cookie` header works on raw bytes so
//! that non-UTF-8 input can never become an error.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::b64;
use crate::id::SESSION_ID_TEXT_LEN;
use crate::SessionId;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation for the tag, so a key shared by mistake with another HMAC use (a JWT
/// secret, say) cannot turn a tag from there into a valid session cookie. The tag is
/// HMAC-SHA256(key, context || the ID's 43-character text).
const SIGNING_CONTEXT: &[u8] = b"latchkey-s2\0";

// Context and ID text fit one SHA-256 block with its padding (at most 55 bytes), so the tag
// costs two compressions (inner and outer hash), not three.
const _: () = assert!(SIGNING_CONTEXT.len() + SESSION_ID_TEXT_LEN <= 55);

/// Length of a signed token: `<43-char id>.<43-char tag>`.
pub(crate) const TOKEN_LEN: usize = SESSION_ID_TEXT_LEN + 1 + TAG_TEXT_LEN;

/// Length of the tag's text: 32 bytes of HMAC-SHA256 in unpadded base64url.
const TAG_TEXT_LEN: usize = b64::TEXT_LEN;

/// Cookie values (or session header values) longer than this are ignored without parsing.
pub const MAX_COOKIE_VALUE_LEN: usize = 4096;

/// At most this many cookies with the session cookie's name are checked per request, so a
/// header stuffed with same-named cookies cannot make the server compute many HMACs.
const MAX_CANDIDATES: usize = 4;

/// A secret key for signing session cookies with HMAC-SHA256.
///
/// Secrets shorter than [`CookieKey::MIN_LEN`] (32 bytes, the hash output size) are refused.
/// The key is hashed into the HMAC state once, at construction. `Debug` prints no key material.
///
/// ```
/// use latchkey_session::CookieKey;
///
/// assert!(CookieKey::from_secret(b"too short").is_err());
/// let key = CookieKey::from_secret(&[7u8; 32]).unwrap();
/// assert_eq!(format!("{key:?}"), "CookieKey { key: \"[redacted]\" }");
/// ```
#[derive(Clone)]
pub struct CookieKey {
    mac: HmacSha256,
}

impl CookieKey {
    /// Shortest accepted secret, in bytes.
    pub const MIN_LEN: usize = 32;

    /// A key from secret bytes (at least 32 of them, from a CSPRNG or a secrets manager).
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] if `secret` has fewer than [`Self::MIN_LEN`] bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                min: Self::MIN_LEN,
            });
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort {
            len: secret.len(),
            min: Self::MIN_LEN,
        })?;
        Ok(Self { mac })
    }

    /// The tag of an ID's text form.
    fn tag(&self, id_text: &[u8; SESSION_ID_TEXT_LEN]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(SIGNING_CONTEXT);
        mac.update(id_text);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag_text` is the base64url text of this key's tag for the ID text `id_text`.
    ///
    /// The expected tag is encoded and the two texts are compared in constant time, instead of
    /// decoding the presented text: encoding 32 bytes is cheaper than a strict decode, and a
    /// non-canonical spelling of the right tag can never equal the one canonical encoding, so
    /// the check stays exactly as strict.
    fn verify_text(
        &self,
        id_text: &[u8; SESSION_ID_TEXT_LEN],
        tag_text: &[u8; TAG_TEXT_LEN],
    ) -> bool {
        constant_time_eq::constant_time_eq_n(&b64::encode32(&self.tag(id_text)), tag_text)
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKey")
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Why a [`CookieKey`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than the minimum.
    #[error("cookie signing key too short: {len} bytes, at least {min} required")]
    TooShort {
        /// Length given.
        len: usize,
        /// Minimum length.
        min: usize,
    },
}

/// Signs with the first key, accepts a tag from any (key rotation).
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Vec<CookieKey>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// `keys` must not be empty (checked by the manager builder).
    pub(crate) fn new(keys: Vec<CookieKey>) -> Self {
        Self { keys }
    }

    /// `<id>.<tag>`, both unpadded base64url.
    pub(crate) fn sign(&self, id: &SessionId) -> String {
        let mut out = String::with_capacity(TOKEN_LEN);
        let ascii = |out: &mut String, text: &[u8]| out.extend(text.iter().map(|&c| char::from(c)));
        ascii(&mut out, id.as_text());
        out.push('.');
        if let Some(key) = self.keys.first() {
            ascii(&mut out, &b64::encode32(&key.tag(id.as_text())));
        }
        out
    }

    /// The session ID in a signed token, or `None` for anything malformed or wrongly signed.
    /// The reason is logged at debug level; the value never is.
    pub(crate) fn verify(&self, token: &[u8]) -> Option<SessionId> {
        if token.len() != TOKEN_LEN {
            tracing::debug!(len = token.len(), "session token has the wrong length");
            return None;
        }
        let (id_text, rest) = token.split_at(SESSION_ID_TEXT_LEN);
        let Some((b'.', tag_text)) = rest.split_first() else {
            tracing::debug!("session token is not `<id>.<tag>`");
            return None;
        };
        // The length check above makes both conversions infallible.
        let (Ok(id_text), Ok(tag_text)) = (
            <&[u8; SESSION_ID_TEXT_LEN]>::try_from(id_text),
            <&[u8; TAG_TEXT_LEN]>::try_from(tag_text),
        ) else {
            return None;
        };
        // The tag covers the ID's text, so the text is never decoded: only canonical IDs are
        // ever signed, and a text that is not one cannot carry a valid tag.
        if self
            .keys
            .iter()
            .any(|key| key.verify_text(id_text, tag_text))
        {
            Some(SessionId::from_signed_text(id_text))
        } else {
            tracing::debug!("session token signature does not verify");
            None
        }
    }

    /// Finds the first cookie named `name` in a raw `Cookie` header value whose value verifies.
    ///
    /// Works on bytes: other cookies may hold anything, including non-UTF-8. Several cookies
    /// with our name (a parent domain can set one) are each tried in order.
    pub(crate) fn find_in_cookie_header(&self, header: &[u8], name: &str) -> Option<SessionId> {
        let name = name.as_bytes();
        let mut candidates = 0;
        // memchr finds the separators with SIMD; a byte-at-a-time split was a measurable
        // part of every request.
        let mut rest = header;
        while !rest.is_empty() {
            let (pair, next) = match memchr::memchr(b';', rest) {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (rest, &[][..]),
            };
            rest = next;
            let pair = trim_ows(pair);
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            if trim_ows(&pair[..eq]) != name {
                continue;
            }
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                tracing::debug!("too many session cookies in one header; the rest are ignored");
                return None;
            }
            let value = trim_ows(&pair[eq + 1..]);
            if value.len() > MAX_COOKIE_VALUE_LEN {
                tracing::debug!(len = value.len(), "oversized session cookie ignored");
                continue;
            }
            if let Some(id) = self.verify(value) {
                return Some(id);
            }
        }
        None
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The `SameSite` cookie attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent on top-level cross-site navigations with safe methods (the default).
    #[default]
    Lax,
    /// Sent with every request; browsers require `Secure` with it.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Validated cookie attributes (see the manager builder).
#[derive(Clone, Debug)]
pub(crate) struct CookieSettings {
    pub(crate) name: String,
    pub(crate) http_only: bool,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) persistent: bool,
}

impl CookieSettings {
    /// The name prefix (RFC 6265bis §4.1.3) whose requirements these settings break, if any.
    /// Browsers match the prefixes case-insensitively, so this does too.
    pub(crate) fn prefix_violation(&self) -> Option<&'static str> {
        let starts = |p: &str| {
            self.name
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        };
        if starts("__Host-") && (!self.secure || self.path != "/" || self.domain.is_some()) {
            return Some("__Host-");
        }
        if starts("__Secure-") && !self.secure {
            return Some("__Secure-");
        }
        None
    }

    fn attributes(&self, out: &mut String) {
        out.push_str("; Path=");
        out.push_str(&self.path);
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=");
        out.push_str(self.same_site.as_str());
    }

    /// `name=token; Max-Age=..; Path=..; ...`. `max_age_secs` is used only for persistent cookies.
    pub(crate) fn set(&self, token: &str, max_age_secs: u64) -> SetCookie {
        let mut out = String::with_capacity(self.name.len() + token.len() + 96);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(token);
        if self.persistent {
            out.push_str("; Max-Age=");
            out.push_str(&max_age_secs.to_string());
        }
        self.attributes(&mut out);
        SetCookie {
            value: out,
            removal: false,
        }
    }

    /// An expired, empty cookie that makes the browser drop the session cookie.
    pub(crate) fn removal(&self) -> SetCookie {
        let mut out = String::with_capacity(self.name.len() + 120);
        out.push_str(&self.name);
        out.push_str("=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        self.attributes(&mut out);
        SetCookie {
            value: out,
            removal: true,
        }
    }
}

/// A complete `Set-Cookie` header value. It contains the signed session ID, so `Debug` shows
/// only the cookie's attributes.
#[derive(Clone, PartialEq, Eq)]
pub struct SetCookie {
    value: String,
    removal: bool,
}

impl SetCookie {
    /// The header value, to send as `Set-Cookie`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Whether this cookie deletes the session cookie on the client (logout, destroy).
    #[must_use]
    pub fn is_removal(&self) -> bool {
        self.removal
    }

    /// The header value, by value.
    #[must_use]
    pub fn into_string(self) -> String {
        self.value
    }
}

impl fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, rest) = self.value.split_once('=').unwrap_or((&self.value, ""));
        let attributes = rest.split_once(';').map_or("", |(_, attrs)| attrs);
        write!(f, "SetCookie({name}=[redacted];{attributes})")
    }
}

/// Whether `name` is a valid cookie name (an RFC 7230 token).
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` is safe as a `Path` or `Domain` attribute value (visible ASCII, no `;`).
pub(crate) fn is_attribute_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b';' && b != b',')
}

/// The value to hand [`RequestHeaders::cookie`](crate::RequestHeaders::cookie) for a request's
/// `Cookie` header values, in order: the one value as it is, or several (HTTP/2 may split them)
/// joined with `"; "` as RFC 9113 §8.2.3 says; `None` without any. Every adapter reads cookies
/// through this, so they agree on split headers.
///
/// ```
/// use latchkey_session::join_cookie_headers;
///
/// assert_eq!(join_cookie_headers(std::iter::empty()), None);
/// assert_eq!(join_cookie_headers([&b"a=1"[..]]).as_deref(), Some(&b"a=1"[..]));
/// assert_eq!(join_cookie_headers([&b"a=1"[..], b"id=x", b"b=2"]).as_deref(), Some(&b"a=1; id=x; b=2"[..]));
/// ```
pub fn join_cookie_headers<'a, I>(values: I) -> Option<std::borrow::Cow<'a, [u8]>>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(std::borrow::Cow::Borrowed(first));
    };
    let mut joined = first.to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(value);
    }
    Some(std::borrow::Cow::Owned(joined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer(secrets: &[&[u8; 32]]) -> Signer {
        Signer::new(
            secrets
                .iter()
                .map(|s| CookieKey::from_secret(&s[..]).unwrap())
                .collect(),
        )
    }

    #[test]
    fn short_keys_are_refused() {
        for len in [0, 1, 16, 31] {
            assert_eq!(
                CookieKey::from_secret(&vec![1u8; len]).unwrap_err(),
                KeyError::TooShort { len, min: 32 }
            );
        }
        assert!(CookieKey::from_secret(&[1u8; 32]).is_ok());
        assert!(CookieKey::from_secret(&[1u8; 200]).is_ok());
    }

    #[test]
    fn known_answer_tag() {
        // HMAC-SHA256(key = 32 × 0x0b, "latchkey-s2\0" || the ID text "AAA…A" (43 × 'A', the
        // ID of 32 zero bytes)), computed independently with Python's hmac module:
        // hmac.new(b"\x0b"*32, b"latchkey-s2\x00" + b"A"*43, "sha256")
        let id = SessionId::parse(&"A".repeat(43)).unwrap();
        let token = signer(&[&[0x0b; 32]]).sign(&id);
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(&token[..44], &format!("{}.", "A".repeat(43)));
        assert_eq!(&token[44..], KAT_TAG);
    }

    const KAT_TAG: &str = "0A0Opudc_Bft4NybVp1JXETZ5ccSdg5LwExcetQCZuU";

    #[test]
    fn non_canonical_spellings_of_the_right_tag_are_rejected() {
        // 43 characters carry 258 bits for a 256-bit tag: the last character's two low bits
        // must be zero. Setting them spells the same tag bytes in a form a lenient decoder
        // would accept; the verifier must not.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let s = signer(&[&[0x0b; 32]]);
        let id = SessionId::parse(&"A".repeat(43)).unwrap();
        let good = s.sign(&id);
        assert_eq!(s.verify(good.as_bytes()), Some(id));
        let last = *good.as_bytes().last().unwrap();
        let value = ALPHABET.iter().position(|&c| c == last).unwrap();
        assert_eq!(value & 3, 0, "canonical encodings have zero trailing bits");
        for low_bits in 1..4 {
            let mut spelled = good.clone().into_bytes();
            *spelled.last_mut().unwrap() = ALPHABET[value | low_bits];
            assert_eq!(s.verify(&spelled), None);
        }
        // padding, or the standard alphabet's `+` and `/`, never verify either
        let padded = format!("{good}=");
        assert_eq!(s.verify(padded.as_bytes()), None);
        let standard = good.replace('-', "+").replace('_', "/");
        if standard != good {
            assert_eq!(s.verify(standard.as_bytes()), None);
        }
    }

    #[test]
    fn sign_verify_and_rotation() {
        let old = [1u8; 32];
        let new = [2u8; 32];
        let id = SessionId::generate();
        let signed_old = signer(&[&old]).sign(&id);
        let rotated = signer(&[&new, &old]);
        assert_eq!(rotated.verify(signed_old.as_bytes()), Some(id.clone()));
        let signed_new = rotated.sign(&id);
        assert_ne!(signed_new, signed_old, "signs with the first key");
        assert_eq!(
            signer(&[&new]).verify(signed_new.as_bytes()),
            Some(id.clone())
        );
        // once the old key is dropped, old cookies stop working
        assert_eq!(signer(&[&new]).verify(signed_old.as_bytes()), None);
    }

    #[test]
    fn every_no_session_input() {
        let s = signer(&[&[3u8; 32]]);
        let id = SessionId::generate();
        let good = s.sign(&id);
        let name = "id";
        let header = |v: &str| format!("{name}={v}");
        assert_eq!(
            s.find_in_cookie_header(header(&good).as_bytes(), name),
            Some(id.clone())
        );
        // unsigned: just the ID
        assert_eq!(
            s.find_in_cookie_header(header(&id.expose_secret()).as_bytes(), name),
            None
        );
        // wrong signature (other key)
        let forged = signer(&[&[4u8; 32]]).sign(&id);
        assert_eq!(
            s.find_in_cookie_header(header(&forged).as_bytes(), name),
            None
        );
        // tag of another ID
        let other = s.sign(&SessionId::generate());
        let spliced = format!("{}{}", &good[..44], &other[44..]);
        assert_eq!(
            s.find_in_cookie_header(header(&spliced).as_bytes(), name),
            None
        );
        // flipped last character
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'Q' } else { b'A' };
        assert_eq!(s.verify(&flipped), None);
        // malformed
        for bad in [
            "",
            ".",
            "x",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replace('.', ":"),
        ] {
            assert_eq!(
                s.find_in_cookie_header(header(bad).as_bytes(), name),
                None,
                "{bad}"
            );
        }
        // quoted value is not accepted
        assert_eq!(
            s.find_in_cookie_header(format!("id=\"{good}\"").as_bytes(), name),
            None
        );
        // oversized
        let huge = "A".repeat(MAX_COOKIE_VALUE_LEN + 1);
        assert_eq!(
            s.find_in_cookie_header(header(&huge).as_bytes(), name),
            None
        );
        // non-UTF-8
        let mut raw = b"id=".to_vec();
        raw.extend_from_slice(&[0xff, 0xfe, 0x80]);
        assert_eq!(s.find_in_cookie_header(&raw, name), None);
        // other cookie names
        assert_eq!(
            s.find_in_cookie_header(format!("sid={good}").as_bytes(), name),
            None
        );
        assert_eq!(
            s.find_in_cookie_header(format!("xid={good}").as_bytes(), name),
            None
        );
        // found among other cookies, including non-UTF-8 ones, with whitespace
        let mut mixed = b"a=\xff\xfe; theme=dark;  id = ".to_vec();
        mixed.extend_from_slice(good.as_bytes());
        mixed.extend_from_slice(b" ; z=1");
        assert_eq!(s.find_in_cookie_header(&mixed, name), Some(id.clone()));
        // a bad duplicate before the good one does not hide it
        let dup = format!("id=garbage; id={good}");
        assert_eq!(
            s.find_in_cookie_header(dup.as_bytes(), name),
            Some(id.clone())
        );
        // ...but a header stuffed with same-named cookies is cut off after a few
        let stuffed = format!("{}id={good}", "id=x; ".repeat(MAX_CANDIDATES));
        assert_eq!(s.find_in_cookie_header(stuffed.as_bytes(), name), None);
        let within = format!("{}id={good}", "id=x; ".repeat(MAX_CANDIDATES - 1));
        assert_eq!(s.find_in_cookie_header(within.as_bytes(), name), Some(id));
    }

    #[test]
    fn set_cookie_text() {
        let settings = CookieSettings {
            name: "id".into(),
            http_only: true,
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            persistent: false,
        };
        let c = settings.set("TOKEN", 60);
        assert_eq!(
            c.as_str(),
            "id=TOKEN; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(!c.is_removal());
        assert_eq!(
            format!("{c:?}"),
            "SetCookie(id=[redacted]; Path=/; HttpOnly; Secure; SameSite=Lax)"
        );
        let persistent = CookieSettings {
            persistent: true,
            domain: Some("example.com".into()),
            same_site: SameSite::Strict,
            ..settings.clone()
        };
        assert_eq!(
            persistent.set("T", 1800).as_str(),
            "id=T; Max-Age=1800; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=Strict"
        );
        let removal = settings.removal();
        assert!(removal.is_removal());
        assert_eq!(
            removal.as_str(),
            "id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn attribute_validation() {
        assert!(is_token("id"));
        assert!(is_token("__Host-id"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a=b"));
        assert!(!is_token("a;b"));
        assert!(is_attribute_value("/app"));
        assert!(!is_attribute_value("/a;b"));
        assert!(!is_attribute_value("/a b"));
        assert!(!is_attribute_value(""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_yield_a_session(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let s = signer(&[&[9u8; 32]]);
            prop_assert!(s.find_in_cookie_header(&bytes, "id").is_none());
            prop_assert!(s.verify(&bytes).is_none());
        }

        #[test]
        fn cookie_shaped_garbage_never_yields_a_session(
            id in "[A-Za-z0-9_-]{43}",
            tag in "[A-Za-z0-9_-]{43}",
            prefix in "[ -~]{0,40}",
        ) {
            let s = signer(&[&[9u8; 32]]);
            let header = format!("{prefix}; id={id}.{tag}");
            prop_assert!(s.find_in_cookie_header(header.as_bytes(), "id").is_none());
        }

        #[test]
        fn mutating_one_byte_of_a_valid_token_breaks_it(pos in 0usize..TOKEN_LEN, byte in any::<u8>()) {
            let s = signer(&[&[9u8; 32]]);
            let token = s.sign(&SessionId::generate());
            let mut bad = token.clone().into_bytes();
            prop_assume!(bad[pos] != byte);
            bad[pos] = byte;
            prop_assert!(s.verify(&bad).is_none());
        }
    }
}
