//! Algorithms, HMAC keys and key sets.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::error::{Error, ErrorKind};

type HmacSha256 = Hmac<Sha256>;
type HmacSha384 = Hmac<Sha384>;
type HmacSha512 = Hmac<Sha512>;

/// A JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1). The algorithm belongs to the key, never to the
/// token: a token whose header names another algorithm is rejected.
///
/// Every variant exists whatever the crate features; keys for `RS256`/`PS256` need the `rsa`
/// feature, `ES256` the `ecdsa` feature and `EdDSA` the `eddsa` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (feature `rsa`).
    RS256,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt (feature `rsa`).
    PS256,
    /// ECDSA on P-256 with SHA-256, the signature as `r || s` (feature `ecdsa`).
    ES256,
    /// EdDSA with Ed25519 (RFC 8037; feature `eddsa`).
    EdDSA,
}

impl Algorithm {
    /// The `alg` header value, e.g. `"HS256"` or `"EdDSA"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The output length of the algorithm's hash in bytes (SHA-512 for EdDSA). For HMAC it is
    /// also the minimum key length (RFC 7518 §3.2) and the signature length.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 | Algorithm::EdDSA => 64,
        }
    }

    /// Whether this is an HMAC algorithm (`HS256`, `HS384`, `HS512`).
    #[must_use]
    pub const fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// Parses an exact, case-sensitive `alg` value (JOSE names are case-sensitive).
    pub(crate) fn from_alg(s: &str) -> Option<Self> {
        match s {
            "HS256" => Some(Algorithm::HS256),
            "HS384" => Some(Algorithm::HS384),
            "HS512" => Some(Algorithm::HS512),
            "RS256" => Some(Algorithm::RS256),
            "PS256" => Some(Algorithm::PS256),
            "ES256" => Some(Algorithm::ES256),
            "EdDSA" => Some(Algorithm::EdDSA),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses an algorithm name exactly as [`Algorithm::as_str`] writes it (case-sensitive, as in a
/// JWS header), whatever the crate features; anything else is
/// [`ErrorKind::UnsupportedAlgorithm`].
impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Algorithm::from_alg(s).ok_or_else(|| ErrorKind::UnsupportedAlgorithm.into())
    }
}

/// A keyed HMAC state, computed once when the key is built and cloned per signature.
#[derive(Clone)]
pub(crate) enum MacState {
    S256(HmacSha256),
    S384(HmacSha384),
    S512(HmacSha512),
}

impl MacState {
    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            MacState::S256(m) => m.update(data),
            MacState::S384(m) => m.update(data),
            MacState::S512(m) => m.update(data),
        }
    }

    /// The tag of this state followed by `data`, written into `out`; returns its length.
    ///
    /// Clones only the variant in use, on the stack of its own arm, never the whole enum (which is
    /// sized for HMAC-SHA512).
    #[inline]
    pub(crate) fn tag_after(&self, data: &[u8], out: &mut [u8; 64]) -> usize {
        match self {
            MacState::S256(m) => {
                copy_tag(&m.clone().chain_update(data).finalize().into_bytes(), out)
            }
            MacState::S384(m) => {
                copy_tag(&m.clone().chain_update(data).finalize().into_bytes(), out)
            }
            MacState::S512(m) => {
                copy_tag(&m.clone().chain_update(data).finalize().into_bytes(), out)
            }
        }
    }

    /// Whether `tag` is the full tag of this state followed by `data`, compared in constant time.
    /// Clones only the variant in use, like [`MacState::tag_after`].
    #[inline]
    pub(crate) fn verify_after(&self, data: &[u8], tag: &[u8]) -> bool {
        match self {
            MacState::S256(m) => m.clone().chain_update(data).verify_slice(tag).is_ok(),
            MacState::S384(m) => m.clone().chain_update(data).verify_slice(tag).is_ok(),
            MacState::S512(m) => m.clone().chain_update(data).verify_slice(tag).is_ok(),
        }
    }
}

fn copy_tag(tag: &[u8], out: &mut [u8; 64]) -> usize {
    out[..tag.len()].copy_from_slice(tag);
    tag.len()
}

/// An HMAC key for one [`Algorithm`], optionally named by a key ID (`kid`).
///
/// The raw secret is not kept: the key is turned into a keyed HMAC state once, at construction,
/// and that state is cloned for every signature. `Debug` never prints key material.
///
/// ```
/// use latchkey_jwt::{Algorithm, HmacKey};
///
/// let key = HmacKey::from_secret(Algorithm::HS256, &[7u8; 32])?.with_kid("2026-11");
/// assert_eq!(key.algorithm(), Algorithm::HS256);
/// assert_eq!(key.kid(), Some("2026-11"));
/// assert_eq!(format!("{key:?}"), r#"HmacKey { algorithm: HS256, kid: Some("2026-11"), key: "[redacted]" }"#);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct HmacKey {
    alg: Algorithm,
    kid: Option<String>,
    state: MacState,
}

impl HmacKey {
    /// Builds a key from raw secret bytes.
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] when `algorithm` is not `HS256`, `HS384` or `HS512`
    /// (an HMAC secret is never an RSA, EC or Ed25519 key), [`ErrorKind::KeyTooShort`] when
    /// `secret` is shorter than the algorithm's hash output (32, 48 or 64 bytes; RFC 7518 §3.2).
    /// Generate secrets with a CSPRNG.
    pub fn from_secret(algorithm: Algorithm, secret: &[u8]) -> Result<Self, Error> {
        if !algorithm.is_hmac() {
            return Err(ErrorKind::KeyAlgorithmMismatch { algorithm }.into());
        }
        let min = algorithm.output_len();
        if secret.len() < min {
            return Err(ErrorKind::KeyTooShort {
                algorithm,
                min,
                len: secret.len(),
            }
            .into());
        }
        // HMAC accepts keys of any length, so these cannot fail; map defensively anyway.
        let short = || -> Error {
            ErrorKind::KeyTooShort {
                algorithm,
                min,
                len: secret.len(),
            }
            .into()
        };
        let state = match algorithm {
            Algorithm::HS256 => {
                MacState::S256(HmacSha256::new_from_slice(secret).map_err(|_| short())?)
            }
            Algorithm::HS384 => {
                MacState::S384(HmacSha384::new_from_slice(secret).map_err(|_| short())?)
            }
            Algorithm::HS512 => {
                MacState::S512(HmacSha512::new_from_slice(secret).map_err(|_| short())?)
            }
            _ => return Err(ErrorKind::KeyAlgorithmMismatch { algorithm }.into()),
        };
        Ok(HmacKey {
            alg: algorithm,
            kid: None,
            state,
        })
    }

    /// Builds a key from a secret written as unpadded base64url (the `k` of a JWK). One trailing
    /// line break (as left by `echo` or an editor) is ignored; anything else must be canonical.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKeyEncoding`] when `secret` is not canonical unpadded base64url (the
    /// error never echoes it), [`ErrorKind::KeyTooShort`] as for [`HmacKey::from_secret`].
    pub fn from_base64url(algorithm: Algorithm, secret: &str) -> Result<Self, Error> {
        let bytes = crate::B64
            .decode(
                secret
                    .strip_suffix('\n')
                    .map_or(secret, |s| s.strip_suffix('\r').unwrap_or(s)),
            )
            .map_err(|_| Error::from(ErrorKind::InvalidKeyEncoding))?;
        Self::from_secret(algorithm, &bytes)
    }

    /// Names this key with a key ID; a [`Signer`](crate::Signer) puts it in the `kid` header and a
    /// [`KeySet`] finds the key by it.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    #[inline]
    pub(crate) fn mac(&self) -> MacState {
        self.state.clone()
    }

    /// The keyed state itself, for [`MacState::verify_after`] without a clone of the enum.
    #[inline]
    pub(crate) fn state(&self) -> &MacState {
        &self.state
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("algorithm", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Keys addressed by `kid`, for rotation: sign with the current key, verify with whichever key a
/// token's `kid` names, using that key's own algorithm.
///
/// ```
/// use latchkey_jwt::{Algorithm, HmacKey, KeySet};
///
/// let old = HmacKey::from_secret(Algorithm::HS256, &[1u8; 32])?.with_kid("2026-10");
/// let new = HmacKey::from_secret(Algorithm::HS512, &[2u8; 64])?.with_kid("2026-11");
/// let mut keys = KeySet::new(old)?;
/// keys.insert(new)?;
/// keys.set_current("2026-11")?;
/// assert_eq!(keys.current().kid(), Some("2026-11"));
/// assert!(keys.get("2026-10").is_some());
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Vec<HmacKey>,
    current: usize,
}

impl KeySet {
    /// A set holding one key, which becomes the current (signing) key.
    ///
    /// # Errors
    /// [`ErrorKind::KeyWithoutKid`] when the key has no `kid`.
    pub fn new(current: HmacKey) -> Result<Self, Error> {
        if current.kid.is_none() {
            return Err(ErrorKind::KeyWithoutKid.into());
        }
        Ok(KeySet {
            keys: vec![current],
            current: 0,
        })
    }

    /// Adds a key that tokens may name; the current key does not change.
    ///
    /// # Errors
    /// [`ErrorKind::KeyWithoutKid`] when the key has no `kid`, [`ErrorKind::DuplicateKid`] when the
    /// set already has a key with this `kid`.
    pub fn insert(&mut self, key: HmacKey) -> Result<(), Error> {
        let Some(kid) = key.kid() else {
            return Err(ErrorKind::KeyWithoutKid.into());
        };
        if self.get(kid).is_some() {
            return Err(ErrorKind::DuplicateKid.into());
        }
        self.keys.push(key);
        Ok(())
    }

    /// Makes the key named `kid` the signing key.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownKid`] when no key has this `kid`.
    pub fn set_current(&mut self, kid: &str) -> Result<(), Error> {
        let i = self.position(kid).ok_or(ErrorKind::UnknownKid)?;
        self.current = i;
        Ok(())
    }

    /// Removes and returns the key named `kid`; tokens naming it stop verifying.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownKid`] when no key has this `kid`, [`ErrorKind::RemoveCurrentKey`] when
    /// it is the current key (make another key current first).
    pub fn remove(&mut self, kid: &str) -> Result<HmacKey, Error> {
        let i = self.position(kid).ok_or(ErrorKind::UnknownKid)?;
        if i == self.current {
            return Err(ErrorKind::RemoveCurrentKey.into());
        }
        let key = self.keys.remove(i);
        if i < self.current {
            self.current -= 1;
        }
        Ok(key)
    }

    /// The signing key.
    #[must_use]
    pub fn current(&self) -> &HmacKey {
        &self.keys[self.current]
    }

    /// The key named `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&HmacKey> {
        self.position(kid).map(|i| &self.keys[i])
    }

    /// All keys, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &HmacKey> {
        self.keys.iter()
    }

    pub(crate) fn into_keys(self) -> Vec<HmacKey> {
        self.keys
    }

    fn position(&self, kid: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.kid() == Some(kid))
    }
}
