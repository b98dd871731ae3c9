//! Session identifiers ([`SessionId`]) and the store keys derived from them ([`SessionKey`]).

use std::fmt;
use std::hash::{Hash, Hasher};

use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};

/// Number of random bytes in a [`SessionId`] (256 bits).
pub const SESSION_ID_BYTES: usize = 32;

/// Length of the text form of a [`SessionId`]: 32 bytes in unpadded base64url.
pub const SESSION_ID_TEXT_LEN: usize = crate::b64::TEXT_LEN;

/// A session identifier: 256 bits from the operating system's CSPRNG.
///
/// This is the secret a client holds (inside a signed cookie or header). It is never stored:
/// stores index records by its [`SessionKey`], a SHA-256 hash, so a dump of the store yields
/// nothing that can be replayed as a cookie.
///
/// `SessionId` deliberately implements neither `Display` nor `Serialize`, and its `Debug`
/// output is redacted, so it cannot reach a log by accident. Use [`SessionId::expose_secret`]
/// to get the text form where it is really needed (the cookie value).
///
/// ```
/// use latchkey_session::SessionId;
///
/// let id = SessionId::generate();
/// let text = id.expose_secret();
/// assert_eq!(text.len(), 43);
/// assert_eq!(SessionId::parse(&text), Some(id.clone()));
/// assert_eq!(format!("{id:?}"), "SessionId([redacted])");
/// ```
#[derive(Clone, PartialEq, Eq)]
// Held as its canonical text, the form every request presents: a signed cookie is verified
// and its ID hashed for the store key without ever decoding it. Equal texts are equal IDs,
// because every constructor admits only canonical encodings.
pub struct SessionId([u8; SESSION_ID_TEXT_LEN]);

impl SessionId {
    /// Draws a fresh identifier from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes. There is no safe fallback
    /// for a session secret, and `rand`'s own thread generator panics in the same situation.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; SESSION_ID_BYTES];
        if let Err(err) = rand::rngs::OsRng.try_fill_bytes(&mut bytes) {
            panic!("the operating system's random number generator failed: {err}");
        }
        Self(crate::b64::encode32(&bytes))
    }

    /// Parses the 43-character unpadded base64url text form.
    ///
    /// Anything else — another length, padding, characters outside the base64url alphabet,
    /// non-canonical trailing bits — is rejected with `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Like [`SessionId::parse`], on raw bytes (which need not be UTF-8).
    #[must_use]
    pub fn parse_bytes(text: &[u8]) -> Option<Self> {
        // Strict: padding and non-canonical trailing bits are rejected, so every ID has exactly
        // one text form.
        let text = <&[u8; SESSION_ID_TEXT_LEN]>::try_from(text).ok()?;
        crate::b64::decode32(text).map(|_| Self(*text))
    }

    /// An ID from text that carried a valid signature. Only canonical texts are ever signed
    /// (every `SessionId` is canonical), so a verified tag vouches for the text and it need not
    /// be decoded again; callers must not use this for unsigned input.
    pub(crate) fn from_signed_text(text: &[u8; SESSION_ID_TEXT_LEN]) -> Self {
        Self(*text)
    }

    /// The text form (43 characters of unpadded base64url): the secret itself.
    ///
    /// The name is a reminder that the result must go only where a client needs it.
    #[must_use]
    pub fn expose_secret(&self) -> String {
        self.0.iter().map(|&c| char::from(c)).collect()
    }

    /// The store key for this ID: SHA-256 of its 43-character text form (one SHA-256 block).
    #[must_use]
    pub fn key(&self) -> SessionKey {
        SessionKey(Sha256::digest(self.0).into())
    }

    /// The text form, for the signer.
    pub(crate) fn as_text(&self) -> &[u8; SESSION_ID_TEXT_LEN] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// The key a store indexes a session by: the SHA-256 hash of its [`SessionId`].
///
/// It is not a secret: knowing it does not let anyone use the session, so it is safe to log,
/// to show in a "my devices" list and to use in a URL for revoking one device. Its text form
/// is 64 lowercase hexadecimal digits.
///
/// ```
/// use latchkey_session::{SessionId, SessionKey};
///
/// let key = SessionId::generate().key();
/// let hex = key.to_hex();
/// assert_eq!(hex.len(), 64);
/// assert_eq!(SessionKey::from_hex(&hex), Some(key));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// Wraps raw hash bytes (for backends that store the key in binary form).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 hash bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hexadecimal digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Parses 64 hexadecimal digits (either case); anything else is `None`.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(Self(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Hash for SessionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The key is a SHA-256 output, already uniformly distributed, and every key that is
        // *stored* is derived from a server-generated random ID, so the first 8 bytes are a
        // perfectly good hash. Consistent with `Eq`: equal keys have equal prefixes.
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(prefix));
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.to_hex())
    }
}

impl serde::Serialize for SessionKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for SessionKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hexadecimal digits"))
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_and_round_trip() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        let text = a.expose_secret();
        assert_eq!(text.len(), SESSION_ID_TEXT_LEN);
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(SessionId::parse(&text), Some(a));
    }

    #[test]
    fn parse_rejects_everything_else() {
        let good = SessionId::generate().expose_secret();
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse(&good[..42]).is_none());
        assert!(SessionId::parse(&format!("{good}A")).is_none());
        assert!(SessionId::parse(&format!("{}=", &good[..42])).is_none());
        // standard-alphabet characters
        let plus = format!("+{}", &good[1..]);
        assert!(SessionId::parse(&plus).is_none());
        let slash = format!("/{}", &good[1..]);
        assert!(SessionId::parse(&slash).is_none());
        // 43 chars encode 258 bits: the last char must leave the 2 spare bits zero.
        let all_a = "A".repeat(43);
        assert!(SessionId::parse(&all_a).is_some());
        let non_canonical = format!("{}B", "A".repeat(42));
        assert!(SessionId::parse(&non_canonical).is_none());
        assert!(SessionId::parse_bytes(&[0xff; 43]).is_none());
    }

    #[test]
    fn debug_is_redacted_and_key_is_sha256() {
        let id = SessionId::parse(&"A".repeat(43)).unwrap();
        assert_eq!(format!("{id:?}"), "SessionId([redacted])");
        // SHA-256 of the ID's text, 43 × 'A' (hashlib.sha256(b"A" * 43)).
        assert_eq!(
            id.key().to_hex(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
        assert_eq!(
            format!("{:?}", id.key()),
            "SessionKey(0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a)"
        );
    }

    #[test]
    fn key_hex_round_trip_and_rejects() {
        let key = SessionId::generate().key();
        assert_eq!(SessionKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(
            SessionKey::from_hex(&key.to_hex().to_uppercase()),
            Some(key)
        );
        assert!(SessionKey::from_hex("00").is_none());
        assert!(SessionKey::from_hex(&"g".repeat(64)).is_none());
        assert!(SessionKey::from_hex(&"é".repeat(32)).is_none());
    }
}
