//! The refresh token format: a family ID, a generation and a MAC under a server key.
//!
//! ```text
//! token = base64url( 0x01 ‖ family (24 bytes) ‖ generation (u64, big endian) ‖ tag (32 bytes) )
//! family = subject tag (8 bytes) ‖ random (16 bytes)
//! tag = HMAC-SHA256(refresh key, "latchkey-tokens refresh v1\0" ‖ family ‖ generation)
//! ```
//!
//! The store keeps the family's state (its current generation among it) but never a tag, and a
//! tag cannot be computed without the refresh key, which lives only in the service. So nothing
//! a store holds — not a dump, not a backup — can be turned into a working refresh token.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"latchkey-tokens refresh v1\0";
const TAG_LEN: usize = 32;
const TOKEN_LEN: usize = 1 + FamilyId::LEN + 8 + TAG_LEN;
/// Length of a refresh token in characters (base64url of 65 bytes).
pub(crate) const TOKEN_TEXT_LEN: usize = (TOKEN_LEN * 4).div_ceil(3);

/// Which store partition a subject's data lives in: the first 8 bytes of SHA-256 over a fixed
/// context and the subject.
///
/// Every family of a subject starts with its subject's tag, so a backend can keep a family, the
/// subject's revocation epoch and the subject's `jti` deny-list together (one Redis Cluster
/// slot) and check them in one atomic step. Two subjects share a tag with probability 2⁻⁶⁴ per
/// pair; they would then share a revocation epoch (log out everywhere would log out both).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectTag([u8; 8]);

impl SubjectTag {
    /// The tag of `subject`.
    #[must_use]
    pub fn of(subject: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"latchkey-tokens subject\0")
            .chain_update(subject.as_bytes())
            .finalize();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        SubjectTag(tag)
    }

    /// The tag as 16 lowercase hex digits (for store keys).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for SubjectTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectTag({})", self.to_hex())
    }
}

/// A token family: every refresh token descended from one login. 24 bytes: the
/// [`SubjectTag`] of its subject, then 16 random bytes.
///
/// The family ID is not a secret (it is the `sid` claim of every access token of the family);
/// a refresh token is the family ID *plus* a MAC that only the service can compute.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId([u8; FamilyId::LEN]);

impl FamilyId {
    /// Length in bytes.
    pub const LEN: usize = 24;

    /// A fresh family of `subject`: its tag and 128 bits from the OS CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes (there is no safe fallback).
    #[must_use]
    pub fn generate(subject: &SubjectTag) -> Self {
        let mut bytes = [0u8; Self::LEN];
        bytes[..8].copy_from_slice(subject.as_bytes());
        if let Err(err) = rand::rngs::OsRng.try_fill_bytes(&mut bytes[8..]) {
            panic!("the operating system's random number generator failed: {err}");
        }
        FamilyId(bytes)
    }

    /// The family from its raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        FamilyId(bytes)
    }

    /// The family's subject tag.
    #[must_use]
    pub fn subject_tag(&self) -> SubjectTag {
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&self.0[..8]);
        SubjectTag(tag)
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The family ID as 32 characters of base64url (the `sid` claim).
    #[must_use]
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the text form written by [`to_base64url`](Self::to_base64url).
    #[must_use]
    pub fn from_base64url(text: &str) -> Option<Self> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; Self::LEN];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(Self::LEN) => Some(FamilyId(bytes)),
            _ => None,
        }
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.to_base64url())
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

/// The secret that authenticates refresh tokens (HMAC-SHA256, at least 32 bytes). Keep it apart
/// from the access-token keys and out of the token store.
#[derive(Clone)]
pub struct RefreshKey {
    mac: HmacSha256,
}

/// A refresh key shorter than 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refresh keys must be at least 32 bytes long, got {len}")]
pub struct RefreshKeyTooShort {
    /// The length given.
    pub len: usize,
}

impl RefreshKey {
    /// A key from secret bytes.
    ///
    /// # Errors
    /// [`RefreshKeyTooShort`] when `secret` is shorter than 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, RefreshKeyTooShort> {
        if secret.len() < 32 {
            return Err(RefreshKeyTooShort { len: secret.len() });
        }
        let mac = HmacSha256::new_from_slice(secret)
            .map_err(|_| RefreshKeyTooShort { len: secret.len() })?;
        Ok(RefreshKey { mac })
    }

    fn tagger(&self, family: &FamilyId, generation: u64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(family.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac
    }

    /// The refresh token for `generation` of `family`.
    pub(crate) fn token(&self, family: &FamilyId, generation: u64) -> String {
        let tag = self.tagger(family, generation).finalize().into_bytes();
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[0] = VERSION;
        bytes[1..1 + FamilyId::LEN].copy_from_slice(family.as_bytes());
        bytes[1 + FamilyId::LEN..1 + FamilyId::LEN + 8].copy_from_slice(&generation.to_be_bytes());
        bytes[1 + FamilyId::LEN + 8..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

impl fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshKey")
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Checks `token` against each key in turn (constant time per key) and returns its family and
/// generation, or `None` for anything that is not a refresh token minted with one of `keys`.
pub(crate) fn open(keys: &[RefreshKey], token: &str) -> Option<(FamilyId, u64)> {
    if token.len() != TOKEN_TEXT_LEN {
        return None;
    }
    let mut bytes = [0u8; TOKEN_LEN];
    // The engine rejects padding and non-canonical trailing bits.
    match URL_SAFE_NO_PAD.decode_slice(token, &mut bytes) {
        Ok(TOKEN_LEN) => {}
        _ => return None,
    }
    if bytes[0] != VERSION {
        return None;
    }
    let mut family = [0u8; FamilyId::LEN];
    family.copy_from_slice(&bytes[1..1 + FamilyId::LEN]);
    let family = FamilyId(family);
    let mut generation = [0u8; 8];
    generation.copy_from_slice(&bytes[1 + FamilyId::LEN..1 + FamilyId::LEN + 8]);
    let generation = u64::from_be_bytes(generation);
    let tag = &bytes[1 + FamilyId::LEN + 8..];
    keys.iter()
        .any(|key| key.tagger(&family, generation).verify_slice(tag).is_ok())
        .then_some((family, generation))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RefreshKey {
        RefreshKey::from_secret(&[b; 32]).unwrap()
    }

    #[test]
    fn round_trips_and_rejects_every_tampering() {
        let family = FamilyId::generate(&SubjectTag::of("alice"));
        let token = key(1).token(&family, 7);
        assert_eq!(token.len(), TOKEN_TEXT_LEN);
        assert_eq!(open(&[key(1)], &token), Some((family, 7)));
        assert_eq!(family.subject_tag(), SubjectTag::of("alice"));
        // Wrong key, older key accepted only when listed.
        assert_eq!(open(&[key(2)], &token), None);
        assert_eq!(open(&[key(2), key(1)], &token), Some((family, 7)));
        // Every single-character change is refused.
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert_eq!(open(&[key(1)], &t), None, "tampered at {i}");
        }
        assert_eq!(open(&[key(1)], ""), None);
        assert_eq!(open(&[key(1)], &token[1..]), None);
        assert_eq!(open(&[key(1)], &format!("{token}=")), None);
    }

    #[test]
    fn short_keys_are_refused_and_debug_is_redacted() {
        assert_eq!(
            RefreshKey::from_secret(&[0; 31]).unwrap_err(),
            RefreshKeyTooShort { len: 31 }
        );
        let debug = format!("{:?}", key(0x41));
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("AAAA") && !debug.contains("65"), "{debug}");
    }

    #[test]
    fn family_ids_parse_only_their_own_form() {
        let family = FamilyId::generate(&SubjectTag::of("bob"));
        let text = family.to_base64url();
        assert_eq!(FamilyId::from_base64url(&text), Some(family));
        assert_eq!(FamilyId::from_base64url(&text[1..]), None);
        assert_eq!(FamilyId::from_base64url("!".repeat(32).as_str()), None);
    }
}
