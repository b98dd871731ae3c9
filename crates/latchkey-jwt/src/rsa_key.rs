//! RSA keys for RS256 and PS256 (feature `rsa`), on RustCrypto's `rsa`.

use std::fmt;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use sha2::Sha256;

use crate::error::{Error, ErrorKind};
use crate::Algorithm;

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3).
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits: a bound on the work one verification costs.
pub const RSA_MAX_BITS: usize = 8192;
/// The PSS salt length of PS256: the hash output length (RFC 7518 §3.5).
const PSS_SALT_LEN: usize = 32;

fn check_algorithm(algorithm: Algorithm) -> Result<(), Error> {
    match algorithm {
        Algorithm::RS256 | Algorithm::PS256 => Ok(()),
        _ => Err(ErrorKind::KeyAlgorithmMismatch { algorithm }.into()),
    }
}

fn invalid(reason: &'static str) -> Error {
    ErrorKind::InvalidKey {
        kind: "RSA",
        reason,
    }
    .into()
}

fn modulus_bits(key: &RsaPublicKey) -> usize {
    let n = key.n_bytes();
    n.first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
}

fn check_size(key: &RsaPublicKey) -> Result<(), Error> {
    let bits = modulus_bits(key);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(ErrorKind::RsaModulusSize { bits }.into());
    }
    Ok(())
}

#[derive(Clone)]
enum Verify {
    Pkcs1(rsa::pkcs1v15::VerifyingKey<Sha256>),
    Pss(rsa::pss::VerifyingKey<Sha256>),
}

/// An RSA public key for exactly one of [`Algorithm::RS256`] and [`Algorithm::PS256`], optionally
/// named by a `kid`. The modulus must be 2048 to 8192 bits long.
///
/// An RSA key is never an HMAC secret: nothing in this crate turns its bytes into an
/// [`HmacKey`](crate::HmacKey), so a token signed with `HS256` and the public key as secret is
/// refused by algorithm (the algorithm-confusion attack).
///
/// ```
/// use latchkey_jwt::{Algorithm, RsaVerifyingKey};
///
/// let pem = include_str!("../tests/keys/rsa2048.pub.pem");
/// let key = RsaVerifyingKey::from_public_key_pem(Algorithm::RS256, pem)?.with_kid("rsa-1");
/// assert_eq!(key.algorithm(), Algorithm::RS256);
/// assert_eq!(key.modulus_bits(), 2048);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct RsaVerifyingKey {
    alg: Algorithm,
    kid: Option<String>,
    inner: Verify,
}

impl RsaVerifyingKey {
    fn from_key(algorithm: Algorithm, key: RsaPublicKey) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        check_size(&key)?;
        let inner = if algorithm == Algorithm::PS256 {
            Verify::Pss(rsa::pss::VerifyingKey::new_with_salt_len(key, PSS_SALT_LEN))
        } else {
            Verify::Pkcs1(rsa::pkcs1v15::VerifyingKey::new(key))
        };
        Ok(RsaVerifyingKey {
            alg: algorithm,
            kid: None,
            inner,
        })
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes).
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] unless `algorithm` is `RS256` or `PS256`,
    /// [`ErrorKind::InvalidKey`] when `pem` is not an RSA public key, [`ErrorKind::RsaModulusSize`]
    /// when its modulus is not 2048 to 8192 bits long.
    pub fn from_public_key_pem(algorithm: Algorithm, pem: &str) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPublicKey::from_public_key_pem(pem.trim())
            .map_err(|_| invalid("not a PEM RSA SubjectPublicKeyInfo"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// As for [`RsaVerifyingKey::from_public_key_pem`].
    pub fn from_public_key_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPublicKey::from_public_key_der(der)
            .map_err(|_| invalid("not a DER RSA SubjectPublicKeyInfo"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from a PEM `RSA PUBLIC KEY` (PKCS #1).
    ///
    /// # Errors
    /// As for [`RsaVerifyingKey::from_public_key_pem`].
    pub fn from_pkcs1_pem(algorithm: Algorithm, pem: &str) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPublicKey::from_pkcs1_pem(pem.trim())
            .map_err(|_| invalid("not a PEM PKCS #1 RSA public key"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from DER PKCS #1 `RSAPublicKey`.
    ///
    /// # Errors
    /// As for [`RsaVerifyingKey::from_public_key_pem`].
    pub fn from_pkcs1_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPublicKey::from_pkcs1_der(der)
            .map_err(|_| invalid("not a DER PKCS #1 RSA public key"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from its modulus and public exponent as unsigned big-endian bytes (the decoded `n`
    /// and `e` of a JWK).
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] unless `algorithm` is `RS256` or `PS256`,
    /// [`ErrorKind::RsaModulusSize`] when the modulus is not 2048 to 8192 bits long,
    /// [`ErrorKind::InvalidKey`] when the modulus is even or the exponent out of range.
    pub fn from_components(algorithm: Algorithm, n: &[u8], e: &[u8]) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let n = trim_zeros(n);
        let bits = n
            .first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(ErrorKind::RsaModulusSize { bits }.into());
        }
        let e = trim_zeros(e);
        if e.is_empty() || e.len() > 8 {
            return Err(invalid("the public exponent is out of range"));
        }
        let key = RsaPublicKey::new(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from_be_slice_vartime(e),
        )
        .map_err(|_| invalid("the modulus or the public exponent is invalid"))?;
        Self::from_key(algorithm, key)
    }

    /// Names this key with a key ID.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's algorithm: `RS256` or `PS256`.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn modulus_bits(&self) -> usize {
        modulus_bits(self.public())
    }

    /// The modulus `n`, unsigned big-endian (for a JWK).
    #[must_use]
    pub fn modulus(&self) -> Vec<u8> {
        self.public().n_bytes().into_vec()
    }

    /// The public exponent `e`, unsigned big-endian (for a JWK).
    #[must_use]
    pub fn exponent(&self) -> Vec<u8> {
        self.public().e_bytes().into_vec()
    }

    fn public(&self) -> &RsaPublicKey {
        match &self.inner {
            Verify::Pkcs1(k) => k.as_ref(),
            Verify::Pss(k) => k.as_ref(),
        }
    }

    /// Whether `sig` is a valid signature of `msg`. The signature must be exactly as long as the
    /// modulus (RFC 8017 §8.2.2 step 1, §8.1.2 step 1): a zero byte added in front does not
    /// change its value, and must not make a second valid encoding.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != self.public().size() {
            return false;
        }
        match &self.inner {
            Verify::Pkcs1(k) => {
                rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|sig| k.verify(msg, &sig).is_ok())
            }
            Verify::Pss(k) => {
                rsa::pss::Signature::try_from(sig).is_ok_and(|sig| k.verify(msg, &sig).is_ok())
            }
        }
    }
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

impl fmt::Debug for RsaVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaVerifyingKey")
            .field("algorithm", &self.alg)
            .field("kid", &self.kid)
            .field("modulus_bits", &self.modulus_bits())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Sign {
    Pkcs1(rsa::pkcs1v15::SigningKey<Sha256>),
    Pss(rsa::pss::SigningKey<Sha256>),
}

/// An RSA private key for exactly one of [`Algorithm::RS256`] and [`Algorithm::PS256`],
/// optionally named by a `kid`. `Debug` never prints key material; the key is zeroized on drop.
///
/// RS256 signatures are deterministic (with RSA blinding from the OS random number generator);
/// PS256 signatures use a fresh 32-byte salt from it.
///
/// ```
/// use latchkey_jwt::{Algorithm, RsaSigningKey};
///
/// let pem = include_str!("../tests/keys/rsa2048.pem");
/// let key = RsaSigningKey::from_pkcs8_pem(Algorithm::PS256, pem)?.with_kid("rsa-1");
/// assert_eq!(key.verifying_key().kid(), Some("rsa-1"));
/// assert_eq!(format!("{key:?}"), r#"RsaSigningKey { algorithm: PS256, kid: Some("rsa-1"), key: "[redacted]" }"#);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct RsaSigningKey {
    alg: Algorithm,
    kid: Option<String>,
    inner: Sign,
}

impl RsaSigningKey {
    fn from_key(algorithm: Algorithm, key: RsaPrivateKey) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        check_size(key.as_public_key())?;
        let inner = if algorithm == Algorithm::PS256 {
            Sign::Pss(rsa::pss::SigningKey::new_with_salt_len(key, PSS_SALT_LEN))
        } else {
            Sign::Pkcs1(rsa::pkcs1v15::SigningKey::new(key))
        };
        Ok(RsaSigningKey {
            alg: algorithm,
            kid: None,
            inner,
        })
    }

    /// A new random key with a 3072-bit modulus and exponent 65537, from the operating system's
    /// random number generator. This takes a second or more; load a key generated once for a
    /// long-lived issuer.
    ///
    /// ```no_run
    /// use latchkey_jwt::{Algorithm, RsaSigningKey};
    ///
    /// let key = RsaSigningKey::generate(Algorithm::RS256)?.with_kid("rsa-1");
    /// assert_eq!(key.verifying_key().modulus_bits(), 3072);
    /// # Ok::<(), latchkey_jwt::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] unless `algorithm` is `RS256` or `PS256`,
    /// [`ErrorKind::InvalidKey`] when the operating system's random number generator fails.
    pub fn generate(algorithm: Algorithm) -> Result<Self, Error> {
        use rsa::Generate as _;
        check_algorithm(algorithm)?;
        let key = RsaPrivateKey::try_generate()
            .map_err(|_| invalid("the system random number generator failed"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from a PEM `PRIVATE KEY` (PKCS #8, as `openssl genpkey` writes).
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] unless `algorithm` is `RS256` or `PS256`,
    /// [`ErrorKind::InvalidKey`] when `pem` is not a consistent RSA private key,
    /// [`ErrorKind::RsaModulusSize`] when its modulus is not 2048 to 8192 bits long.
    pub fn from_pkcs8_pem(algorithm: Algorithm, pem: &str) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| invalid("not a PEM PKCS #8 RSA private key"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from DER PKCS #8.
    ///
    /// # Errors
    /// As for [`RsaSigningKey::from_pkcs8_pem`].
    pub fn from_pkcs8_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|_| invalid("not a DER PKCS #8 RSA private key"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from a PEM `RSA PRIVATE KEY` (PKCS #1).
    ///
    /// # Errors
    /// As for [`RsaSigningKey::from_pkcs8_pem`].
    pub fn from_pkcs1_pem(algorithm: Algorithm, pem: &str) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPrivateKey::from_pkcs1_pem(pem.trim())
            .map_err(|_| invalid("not a PEM PKCS #1 RSA private key"))?;
        Self::from_key(algorithm, key)
    }

    /// A key from DER PKCS #1 `RSAPrivateKey`.
    ///
    /// # Errors
    /// As for [`RsaSigningKey::from_pkcs8_pem`].
    pub fn from_pkcs1_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, Error> {
        check_algorithm(algorithm)?;
        let key = RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|_| invalid("not a DER PKCS #1 RSA private key"))?;
        Self::from_key(algorithm, key)
    }

    /// Names this key with a key ID; a [`Signer`](crate::Signer) puts it in the `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's algorithm: `RS256` or `PS256`.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public half, with the same algorithm and `kid`.
    #[must_use]
    pub fn verifying_key(&self) -> RsaVerifyingKey {
        let public = match &self.inner {
            Sign::Pkcs1(k) => k.as_ref().to_public_key(),
            Sign::Pss(k) => k.as_ref().to_public_key(),
        };
        let inner = match self.alg {
            Algorithm::PS256 => Verify::Pss(rsa::pss::VerifyingKey::new_with_salt_len(
                public,
                PSS_SALT_LEN,
            )),
            _ => Verify::Pkcs1(rsa::pkcs1v15::VerifyingKey::new(public)),
        };
        RsaVerifyingKey {
            alg: self.alg,
            kid: self.kid.clone(),
            inner,
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::from(ErrorKind::Encode("the RSA key could not sign"));
        Ok(match &self.inner {
            Sign::Pkcs1(k) => k.try_sign(msg).map_err(failed)?.to_vec(),
            Sign::Pss(k) => k.try_sign(msg).map_err(failed)?.to_vec(),
        })
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("algorithm", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}
