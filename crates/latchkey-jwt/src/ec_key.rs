//! P-256 keys for ES256 (feature `ecdsa`), on RustCrypto's `p256`.

use std::fmt;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

use crate::error::{Error, ErrorKind};
use crate::Algorithm;

fn invalid(reason: &'static str) -> Error {
    ErrorKind::InvalidKey {
        kind: "P-256",
        reason,
    }
    .into()
}

/// A P-256 public key for [`Algorithm::ES256`], optionally named by a `kid`. The point is checked
/// to be on the curve when the key is built.
///
/// ```
/// use latchkey_jwt::{Algorithm, EcdsaVerifyingKey};
///
/// let pem = include_str!("../tests/keys/p256.pub.pem");
/// let key = EcdsaVerifyingKey::from_public_key_pem(pem)?.with_kid("ec-1");
/// assert_eq!(key.algorithm(), Algorithm::ES256);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct EcdsaVerifyingKey {
    kid: Option<String>,
    inner: VerifyingKey,
}

impl EcdsaVerifyingKey {
    fn new(inner: VerifyingKey) -> Self {
        EcdsaVerifyingKey { kid: None, inner }
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `pem` is not a P-256 public key.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, Error> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self::new)
            .map_err(|_| invalid("not a PEM P-256 SubjectPublicKeyInfo"))
    }

    /// A key from DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `der` is not a P-256 public key.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, Error> {
        VerifyingKey::from_public_key_der(der)
            .map(Self::new)
            .map_err(|_| invalid("not a DER P-256 SubjectPublicKeyInfo"))
    }

    /// A key from a SEC1 encoded point (65 bytes uncompressed or 33 bytes compressed).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `bytes` is not a point on P-256.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(Self::new)
            .map_err(|_| invalid("not a SEC1 point on P-256"))
    }

    /// A key from its affine coordinates, 32 big-endian bytes each (the decoded `x` and `y` of a
    /// JWK).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when a coordinate is not 32 bytes long or the point is not on
    /// the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, Error> {
        if x.len() != 32 || y.len() != 32 {
            return Err(invalid("coordinates must be 32 bytes each"));
        }
        let mut point = [0u8; 65];
        point[0] = 4;
        point[1..33].copy_from_slice(x);
        point[33..].copy_from_slice(y);
        VerifyingKey::from_sec1_bytes(&point)
            .map(Self::new)
            .map_err(|_| invalid("the point is not on P-256"))
    }

    /// Names this key with a key ID.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Always [`Algorithm::ES256`].
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The affine coordinates `(x, y)`, 32 big-endian bytes each (for a JWK).
    #[must_use]
    pub fn coordinates(&self) -> ([u8; 32], [u8; 32]) {
        let point = self.inner.to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        if bytes.len() == 65 {
            x.copy_from_slice(&bytes[1..33]);
            y.copy_from_slice(&bytes[33..]);
        }
        (x, y)
    }

    /// Whether `sig` (`r || s`, 64 bytes, RFC 7518 §3.4) is a valid signature of `msg`.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 64 {
            return false;
        }
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.inner.verify(msg, &sig).is_ok()
    }
}

impl fmt::Debug for EcdsaVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaVerifyingKey")
            .field("algorithm", &Algorithm::ES256)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A P-256 private key for [`Algorithm::ES256`], optionally named by a `kid`. Signatures are
/// deterministic (RFC 6979). `Debug` never prints key material; the key is zeroized on drop.
///
/// ```
/// use latchkey_jwt::EcdsaSigningKey;
///
/// let key = EcdsaSigningKey::from_pkcs8_pem(include_str!("../tests/keys/p256.pem"))?;
/// assert_eq!(format!("{key:?}"), r#"EcdsaSigningKey { algorithm: ES256, kid: None, key: "[redacted]" }"#);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct EcdsaSigningKey {
    kid: Option<String>,
    inner: SigningKey,
}

impl EcdsaSigningKey {
    fn new(inner: SigningKey) -> Self {
        EcdsaSigningKey { kid: None, inner }
    }

    /// A new random key from the operating system's random number generator.
    ///
    /// ```
    /// let key = latchkey_jwt::EcdsaSigningKey::generate()?.with_kid("ec-1");
    /// assert_eq!(key.verifying_key().kid(), Some("ec-1"));
    /// # Ok::<(), latchkey_jwt::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when the operating system's random number generator fails.
    pub fn generate() -> Result<Self, Error> {
        use p256::elliptic_curve::Generate as _;
        SigningKey::try_generate()
            .map(Self::new)
            .map_err(|_| invalid("the system random number generator failed"))
    }

    /// A key from a PEM `PRIVATE KEY` (PKCS #8, as `openssl genpkey` writes).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `pem` is not a P-256 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::new)
            .map_err(|_| invalid("not a PEM PKCS #8 P-256 private key"))
    }

    /// A key from DER PKCS #8.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `der` is not a P-256 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        SigningKey::from_pkcs8_der(der)
            .map(Self::new)
            .map_err(|_| invalid("not a DER PKCS #8 P-256 private key"))
    }

    /// A key from its 32-byte big-endian scalar (the decoded `d` of a JWK).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] when `scalar` is not 32 bytes or is zero or not below the
    /// group order.
    pub fn from_bytes(scalar: &[u8]) -> Result<Self, Error> {
        SigningKey::from_slice(scalar)
            .map(Self::new)
            .map_err(|_| invalid("not a P-256 scalar"))
    }

    /// Names this key with a key ID; a [`Signer`](crate::Signer) puts it in the `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Always [`Algorithm::ES256`].
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public half, with the same `kid`.
    #[must_use]
    pub fn verifying_key(&self) -> EcdsaVerifyingKey {
        EcdsaVerifyingKey {
            kid: self.kid.clone(),
            inner: *self.inner.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let sig: Signature = self
            .inner
            .try_sign(msg)
            .map_err(|_| Error::from(ErrorKind::Encode("the P-256 key could not sign")))?;
        Ok(sig.to_bytes().to_vec())
    }
}

impl fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaSigningKey")
            .field("algorithm", &Algorithm::ES256)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}
