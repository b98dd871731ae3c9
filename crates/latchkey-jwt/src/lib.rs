#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any_key;
mod b64;
mod bearer;
mod claims;
pub mod dangerous;
#[cfg(feature = "ecdsa")]
mod ec_key;
#[cfg(feature = "eddsa")]
mod ed_key;
pub mod error;
mod header;
pub mod jwk;
mod jws;
mod key;
#[cfg(feature = "rsa")]
mod rsa_key;
mod scan;
mod scratch;
mod strict_ser;
mod validation;

pub use any_key::{SigningKey, VerifyingKey};
pub use bearer::{bearer_credentials, BearerCredentials, BearerRefusal};
pub use claims::{Audience, Claim, Claims};
#[cfg(feature = "ecdsa")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecdsa")))]
pub use ec_key::{EcdsaSigningKey, EcdsaVerifyingKey};
#[cfg(feature = "eddsa")]
#[cfg_attr(docsrs, doc(cfg(feature = "eddsa")))]
pub use ed_key::{Ed25519SigningKey, Ed25519VerifyingKey};
pub use error::{Error, ErrorKind, Malformed, Part};
pub use header::Header;
pub use jws::{Signer, Token, Verifier};
pub use key::{Algorithm, HmacKey, KeySet};
#[cfg(feature = "rsa")]
#[cfg_attr(docsrs, doc(cfg(feature = "rsa")))]
pub use rsa_key::{RsaSigningKey, RsaVerifyingKey, RSA_MAX_BITS, RSA_MIN_BITS};
pub use validation::{
    Clock, FixedClock, SystemClock, Validation, ValidationBuilder, DEFAULT_LEEWAY,
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_TOKEN_LEN, MAX_DEPTH_LIMIT,
};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Unpadded base64url that decodes only the canonical form: no `=`, no `+` or `/`, no whitespace,
/// no non-zero trailing bits.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);
