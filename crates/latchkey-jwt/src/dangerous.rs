//! Reading a token **without verifying it**.
//!
//! Nothing returned here can be trusted: anyone can write any header and any claims. Use it to
//! pick a key (`kid`) or to debug, never to make a decision. The same structural strictness as
//! the verifier applies (8 KiB cap, three segments, canonical base64url, strict JSON objects,
//! no duplicate members, nesting cap); the signature and the claims' values are not checked.

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::jws::{decode_claims, decode_header, split};
use crate::validation::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_TOKEN_LEN};
use crate::{Header, Token};

/// Decodes the header of `token` without verifying anything else.
///
/// ```
/// use latchkey_jwt::dangerous::decode_header_unverified;
///
/// // The RFC 7515 A.1 example token.
/// let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
///     eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
///     dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// let header = decode_header_unverified(token)?;
/// assert_eq!(header.alg(), "HS256");
/// assert_eq!(header.kid(), None);
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
///
/// # Errors
/// The structural [`ErrorKind`](crate::ErrorKind)s of [`Verifier::verify_token`](crate::Verifier::verify_token)
/// that concern the header.
pub fn decode_header_unverified(token: &str) -> Result<Header, Error> {
    let parts = split(token, DEFAULT_MAX_TOKEN_LEN)?;
    decode_header(parts.header, DEFAULT_MAX_DEPTH)
}

/// Decodes the header and claims of `token` without checking the signature or validating any
/// claim.
///
/// # Errors
/// The structural [`ErrorKind`](crate::ErrorKind)s of [`Verifier::verify_token`](crate::Verifier::verify_token)
/// for the header and payload, and the claim type errors.
pub fn decode_unverified<T: DeserializeOwned>(token: &str) -> Result<Token<T>, Error> {
    let parts = split(token, DEFAULT_MAX_TOKEN_LEN)?;
    let header = decode_header(parts.header, DEFAULT_MAX_DEPTH)?;
    let claims = decode_claims(parts.payload, DEFAULT_MAX_DEPTH)?;
    Ok(Token { header, claims })
}
