//! [`SigningKey`] and [`VerifyingKey`]: any key a [`Signer`](crate::Signer) or a
//! [`Verifier`](crate::Verifier) takes, each fixing exactly one [`Algorithm`].

use crate::error::Error;
use crate::{Algorithm, HmacKey};
#[cfg(feature = "ecdsa")]
use crate::{EcdsaSigningKey, EcdsaVerifyingKey};
#[cfg(feature = "eddsa")]
use crate::{Ed25519SigningKey, Ed25519VerifyingKey};
#[cfg(feature = "rsa")]
use crate::{RsaSigningKey, RsaVerifyingKey};

/// A key that signs: an HMAC secret or a private key. Its type fixes its algorithm.
///
/// Every key type converts into it with `From`, so [`Signer::new`](crate::Signer::new) takes any
/// of them. `Debug` never prints key material.
// Not boxed: the HMAC key is the large variant and the hot path; a key is built once.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SigningKey {
    /// HS256, HS384 or HS512.
    Hmac(HmacKey),
    /// RS256 or PS256 (feature `rsa`).
    #[cfg(feature = "rsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rsa")))]
    Rsa(RsaSigningKey),
    /// ES256 (feature `ecdsa`).
    #[cfg(feature = "ecdsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdsa")))]
    Ecdsa(EcdsaSigningKey),
    /// EdDSA with Ed25519 (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "eddsa")))]
    Ed25519(Ed25519SigningKey),
}

impl SigningKey {
    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Hmac(k) => k.algorithm(),
            #[cfg(feature = "rsa")]
            SigningKey::Rsa(k) => k.algorithm(),
            #[cfg(feature = "ecdsa")]
            SigningKey::Ecdsa(k) => k.algorithm(),
            #[cfg(feature = "eddsa")]
            SigningKey::Ed25519(k) => k.algorithm(),
        }
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        match self {
            SigningKey::Hmac(k) => k.kid(),
            #[cfg(feature = "rsa")]
            SigningKey::Rsa(k) => k.kid(),
            #[cfg(feature = "ecdsa")]
            SigningKey::Ecdsa(k) => k.kid(),
            #[cfg(feature = "eddsa")]
            SigningKey::Ed25519(k) => k.kid(),
        }
    }

    /// The key that verifies this key's signatures, with the same algorithm and `kid`: the public
    /// half of a private key, or the HMAC key itself.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Hmac(k) => VerifyingKey::Hmac(k.clone()),
            #[cfg(feature = "rsa")]
            SigningKey::Rsa(k) => VerifyingKey::Rsa(k.verifying_key()),
            #[cfg(feature = "ecdsa")]
            SigningKey::Ecdsa(k) => VerifyingKey::Ecdsa(k.verifying_key()),
            #[cfg(feature = "eddsa")]
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
        }
    }

    /// The signature of `msg` by an asymmetric key (HMAC keys sign through their keyed state).
    pub(crate) fn sign_asymmetric(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = msg;
        match self {
            SigningKey::Hmac(_) => Err(crate::ErrorKind::Encode("internal: HMAC key").into()),
            #[cfg(feature = "rsa")]
            SigningKey::Rsa(k) => k.sign(msg),
            #[cfg(feature = "ecdsa")]
            SigningKey::Ecdsa(k) => k.sign(msg),
            #[cfg(feature = "eddsa")]
            SigningKey::Ed25519(k) => Ok(k.sign(msg)),
        }
    }
}

/// A key that verifies: an HMAC secret or a public key. Its type fixes its algorithm, and a token
/// whose `alg` is any other algorithm is refused with
/// [`ErrorKind::AlgorithmMismatch`](crate::ErrorKind::AlgorithmMismatch).
///
/// Every key type converts into it with `From`, so [`Verifier::new`](crate::Verifier::new) takes
/// any of them. `Debug` never prints key material.
// Not boxed: the HMAC key is the large variant and the hot path; a key is built once.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum VerifyingKey {
    /// HS256, HS384 or HS512.
    Hmac(HmacKey),
    /// RS256 or PS256 (feature `rsa`).
    #[cfg(feature = "rsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rsa")))]
    Rsa(RsaVerifyingKey),
    /// ES256 (feature `ecdsa`).
    #[cfg(feature = "ecdsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ecdsa")))]
    Ecdsa(EcdsaVerifyingKey),
    /// EdDSA with Ed25519 (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "eddsa")))]
    Ed25519(Ed25519VerifyingKey),
}

impl VerifyingKey {
    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingKey::Hmac(k) => k.algorithm(),
            #[cfg(feature = "rsa")]
            VerifyingKey::Rsa(k) => k.algorithm(),
            #[cfg(feature = "ecdsa")]
            VerifyingKey::Ecdsa(k) => k.algorithm(),
            #[cfg(feature = "eddsa")]
            VerifyingKey::Ed25519(k) => k.algorithm(),
        }
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        match self {
            VerifyingKey::Hmac(k) => k.kid(),
            #[cfg(feature = "rsa")]
            VerifyingKey::Rsa(k) => k.kid(),
            #[cfg(feature = "ecdsa")]
            VerifyingKey::Ecdsa(k) => k.kid(),
            #[cfg(feature = "eddsa")]
            VerifyingKey::Ed25519(k) => k.kid(),
        }
    }

    /// Whether `sig` is a valid signature of `msg` by an asymmetric key (HMAC keys verify
    /// through their keyed state, and always answer `false` here).
    pub(crate) fn verify_asymmetric(&self, msg: &[u8], sig: &[u8]) -> bool {
        let _ = (msg, sig);
        match self {
            VerifyingKey::Hmac(_) => false,
            #[cfg(feature = "rsa")]
            VerifyingKey::Rsa(k) => k.verify(msg, sig),
            #[cfg(feature = "ecdsa")]
            VerifyingKey::Ecdsa(k) => k.verify(msg, sig),
            #[cfg(feature = "eddsa")]
            VerifyingKey::Ed25519(k) => k.verify(msg, sig),
        }
    }
}

macro_rules! from_key {
    ($enum:ident, $variant:ident, $ty:ty $(, $feature:literal)?) => {
        $(#[cfg(feature = $feature)])?
        impl From<$ty> for $enum {
            fn from(key: $ty) -> Self {
                $enum::$variant(key)
            }
        }
    };
}

from_key!(SigningKey, Hmac, HmacKey);
from_key!(VerifyingKey, Hmac, HmacKey);
from_key!(SigningKey, Rsa, RsaSigningKey, "rsa");
from_key!(VerifyingKey, Rsa, RsaVerifyingKey, "rsa");
from_key!(SigningKey, Ecdsa, EcdsaSigningKey, "ecdsa");
from_key!(VerifyingKey, Ecdsa, EcdsaVerifyingKey, "ecdsa");
from_key!(SigningKey, Ed25519, Ed25519SigningKey, "eddsa");
from_key!(VerifyingKey, Ed25519, Ed25519VerifyingKey, "eddsa");
