#![doc = include_str!("../README.md")]

mod b64;
mod bearer;
mod claims;
pub mod dangerous;
pub mod error;
mod header;
mod jws;
mod key;
mod scan;
mod scratch;
mod strict_ser;
mod validation;

pub use bearer::{bearer_credentials, BearerCredentials, BearerRefusal};
pub use claims::{Audience, Claim, Claims};
pub use error::{Error, ErrorKind, Malformed, Part};
pub use header::Header;
pub use jws::{Signer, Token, Verifier};
pub use key::{Algorithm, HmacKey, KeySet};
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
