//! Ed25519 keys for EdDSA (feature `eddsa`), on `ed25519-dalek`.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::error::{Error, ErrorKind};
use crate::Algorithm;

fn invalid(reason: &'static str) -> Error {
    ErrorKind::InvalidKey {
        kind: "Ed25519",
        reason,
    }
    .into()
}

/// An Ed25519 public key for [`Algorithm::EdDSA`], optionally named by a `kid`.
///
/// Verification is strict (`verify_strict`): non-canonical signatures and small-order keys are
/// refused, so a signature has exactly one valid encoding.
///
/// ```
/// use latchkey_jwt::{Algorithm, Ed25519VerifyingKey};
///
/// let key = Ed25519VerifyingKey::from_public_key_pem(include_str!("../tests/keys/ed25519.pub.pem"))?;
/// assert_eq!(key.algorithm(), Algorithm::EdDSA);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct Ed25519VerifyingKey {
    kid: Option<String>,
    inner: VerifyingKey,
}

impl Ed25519VerifyingKey {
    fn new(inner: VerifyingKey) -> Result<Self, Error> {
        if inner.is_weak() {
            return Err(invalid("a small-order point is not a usable key"));
        }
        Ok(Ed25519VerifyingKey { kid: None, inner })
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `pem` is not an Ed25519 public key, or a small-order one.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, Error> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|_| invalid("not a PEM Ed25519 SubjectPublicKeyInfo"))?;
        Self::new(key)
    }

    /// A key from DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// As for [`Ed25519VerifyingKey::from_public_key_pem`].
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, Error> {
        let key = VerifyingKey::from_public_key_der(der)
            .map_err(|_| invalid("not a DER Ed25519 SubjectPublicKeyInfo"))?;
        Self::new(key)
    }

    /// A key from its 32-byte encoding (the decoded `x` of a JWK).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `bytes` is not 32 bytes, not a point, or a small-order
    /// point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("a public key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| invalid("not a point"))?;
        Self::new(key)
    }

    /// Names this key with a key ID.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Always [`Algorithm::EdDSA`].
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The 32-byte encoding (for a JWK).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// Whether `sig` (64 bytes) is a valid signature of `msg`, checked strictly.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.inner.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Debug for Ed25519VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519VerifyingKey")
            .field("algorithm", &Algorithm::EdDSA)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 private key for [`Algorithm::EdDSA`], optionally named by a `kid`. `Debug` never
/// prints key material; the key is zeroized on drop.
///
/// ```
/// use latchkey_jwt::Ed25519SigningKey;
///
/// let key = Ed25519SigningKey::from_pkcs8_pem(include_str!("../tests/keys/ed25519.pem"))?;
/// assert_eq!(format!("{key:?}"), r#"Ed25519SigningKey { algorithm: EdDSA, kid: None, key: "[redacted]" }"#);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct Ed25519SigningKey {
    kid: Option<String>,
    inner: SigningKey,
}

impl Ed25519SigningKey {
    /// A key from a PEM `PRIVATE KEY` (PKCS #8, as `openssl genpkey -algorithm ED25519` writes).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `pem` is not an Ed25519 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(|inner| Ed25519SigningKey { kid: None, inner })
            .map_err(|_| invalid("not a PEM PKCS #8 Ed25519 private key"))
    }

    /// A key from DER PKCS #8.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `der` is not an Ed25519 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        SigningKey::from_pkcs8_der(der)
            .map(|inner| Ed25519SigningKey { kid: None, inner })
            .map_err(|_| invalid("not a DER PKCS #8 Ed25519 private key"))
    }

    /// A key from its 32-byte seed (the decoded `d` of a JWK). Generate seeds with a CSPRNG.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `seed` is not 32 bytes.
    pub fn from_seed(seed: &[u8]) -> Result<Self, Error> {
        let seed: &[u8; 32] = seed.try_into().map_err(|_| invalid("a seed is 32 bytes"))?;
        Ok(Ed25519SigningKey {
            kid: None,
            inner: SigningKey::from_bytes(seed),
        })
    }

    /// Names this key with a key ID; a [`Signer`](crate::Signer) puts it in the `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Always [`Algorithm::EdDSA`].
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public half, with the same `kid`.
    #[must_use]
    pub fn verifying_key(&self) -> Ed25519VerifyingKey {
        Ed25519VerifyingKey {
            kid: self.kid.clone(),
            inner: self.inner.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.inner.sign(msg).to_bytes().to_vec()
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("algorithm", &Algorithm::EdDSA)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}
