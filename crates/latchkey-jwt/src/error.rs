//! The error type: one boxed [`Error`] with a [`#[non_exhaustive]`](ErrorKind) kind per cause.
//!
//! No message ever contains key bytes or text copied from a token: a token is attacker-controlled
//! input, and error messages end up in logs.

use std::fmt;

use crate::{Algorithm, Claim};

/// The part of a compact JWS a decoding error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The first segment: the JOSE header.
    Header,
    /// The second segment: the claims.
    Payload,
    /// The third segment: the signature.
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Why a token is structurally malformed (see [`ErrorKind::Malformed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malformed {
    /// The token does not have exactly three `.`-separated segments.
    SegmentCount,
    /// A segment is not canonical unpadded base64url (padding, `+`, `/`, whitespace, an impossible
    /// length or non-zero trailing bits).
    Base64,
    /// The decoded header or payload is not valid UTF-8.
    Utf8,
    /// The decoded header or payload starts with a byte order mark.
    ByteOrderMark,
    /// The decoded header or payload is valid JSON but not a JSON object.
    NotAnObject,
    /// The decoded header or payload is not valid JSON.
    Json,
    /// A JSON string contains an unpaired UTF-16 surrogate escape (`\ud800`).
    LoneSurrogate,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::SegmentCount => "a compact JWS has exactly three segments separated by `.`",
            Malformed::Base64 => "not canonical unpadded base64url",
            Malformed::Utf8 => "not valid UTF-8",
            Malformed::ByteOrderMark => "starts with a byte order mark",
            Malformed::NotAnObject => "not a JSON object",
            Malformed::Json => "not valid JSON",
            Malformed::LoneSurrogate => "a JSON string contains an unpaired surrogate escape",
        })
    }
}

/// What went wrong. Matched by callers through [`Error::kind`].
///
/// Grouped by cause: structure (`TooLarge` … `InvalidHeader`), algorithm and signature, claims,
/// keys, and configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // ---- structure --------------------------------------------------------------------------
    /// The token is longer than the validation's size cap; nothing was decoded.
    #[error("token is {len} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured cap.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token {part}: {reason}")]
    Malformed {
        /// Where the problem is (for [`Malformed::SegmentCount`], the header).
        part: Part,
        /// What the problem is.
        reason: Malformed,
    },
    /// The same member name appears twice in one JSON object (after escapes are decoded).
    /// Parsers disagree on which copy wins, which is how `alg` or `exp` get smuggled past a check.
    #[error("duplicate member name in the token {part}")]
    DuplicateKey {
        /// The header or the payload.
        part: Part,
    },
    /// JSON objects and arrays are nested deeper than the validation allows.
    #[error("token {part} is nested deeper than {max} levels")]
    NestingTooDeep {
        /// The header or the payload.
        part: Part,
        /// The configured cap.
        max: usize,
    },
    /// A required header parameter is absent.
    #[error("token header has no `{field}` parameter")]
    MissingHeader {
        /// The parameter name.
        field: &'static str,
    },
    /// A header parameter has the wrong JSON type.
    #[error("token header parameter `{field}` must be {expected}")]
    InvalidHeader {
        /// The parameter name.
        field: &'static str,
        /// What RFC 7515 requires it to be.
        expected: &'static str,
    },
    /// The header lists a `crit` extension this crate does not implement (RFC 7515 §4.1.11).
    #[error("token header marks an extension as critical (`crit`) that is not supported")]
    UnsupportedCrit,

    // ---- algorithm and signature --------------------------------------------------------------
    /// The header says `alg: none` (in any letter case). Unsigned tokens are never accepted.
    #[error("unsigned tokens (`alg: none`) are never accepted")]
    NoneAlgorithm,
    /// The header's `alg` is not the algorithm of the key that verifies the token.
    #[error("token algorithm {} does not match the key's algorithm {expected}", found.map_or("(unsupported)", |a| a.as_str()))]
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: Algorithm,
        /// The token's algorithm, when it is one this crate knows.
        found: Option<Algorithm>,
    },
    /// The signature does not verify with the selected key.
    #[error("invalid signature")]
    InvalidSignature,

    // ---- claims -----------------------------------------------------------------------------
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway), and the validation opted in with
    /// [`ValidationBuilder::reject_issued_in_future`](crate::ValidationBuilder::reject_issued_in_future).
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    /// `iat` is older than the validation's maximum age.
    #[error("token is older than the maximum age (iat)")]
    TooOld,
    /// `aud` names none of the expected audiences.
    #[error("token audience (aud) is not one of the expected audiences")]
    WrongAudience,
    /// The token carries `aud` but the validation names no audience (and did not opt out with
    /// [`ValidationBuilder::allow_unvalidated_audience`](crate::ValidationBuilder::allow_unvalidated_audience)).
    #[error("token has an audience (aud) but the validation expects none")]
    UnexpectedAudience,
    /// `iss` is not one of the expected issuers.
    #[error("token issuer (iss) is not one of the expected issuers")]
    WrongIssuer,
    /// `sub` is not the expected subject.
    #[error("token subject (sub) is not the expected subject")]
    WrongSubject,
    /// The header's `typ` is absent or is not the required type (RFC 8725 §3.11).
    #[error("token type (typ) is missing or is not `{expected}`")]
    WrongType {
        /// The type the validation requires.
        expected: String,
    },
    /// A claim the validation requires is absent.
    #[error("token has no `{0}` claim")]
    MissingClaim(Claim),
    /// A registered claim has the wrong JSON type or, for `exp`, `nbf` and `iat`, is not a
    /// NumericDate in range (a string, a negative number, `1e300`); see [`Claims`](crate::Claims).
    #[error("token claim `{claim}` must be {expected}")]
    InvalidClaimType {
        /// The claim.
        claim: Claim,
        /// What RFC 7519 (and this crate) requires it to be.
        expected: &'static str,
    },
    /// The caller's custom claims type could not be built from the payload.
    #[error("{}", match claim {
        Some(c) => format!("custom claim `{c}` does not match the expected type"),
        None => "custom claims do not match the expected type (a field is missing or has the wrong type)".to_owned(),
    })]
    InvalidCustomClaims {
        /// The member being read when it failed, when known. Only names made of ASCII letters,
        /// digits, `_` and `-` (at most 64 bytes) are reported.
        claim: Option<String>,
    },

    // ---- keys ---------------------------------------------------------------------------------
    /// An HMAC key is shorter than the hash output (RFC 7518 §3.2).
    #[error("{algorithm} keys must be at least {min} bytes long, got {len}")]
    KeyTooShort {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The minimum length in bytes.
        min: usize,
        /// The given length in bytes.
        len: usize,
    },
    /// An algorithm name is not one of `HS256`, `HS384`, `HS512`, `RS256`, `PS256`, `ES256` or
    /// `EdDSA` (from [`str::parse`] on [`Algorithm`]).
    #[error("unsupported algorithm: expected HS256, HS384, HS512, RS256, PS256, ES256 or EdDSA")]
    UnsupportedAlgorithm,
    /// A key was asked for an algorithm its type cannot have: an HMAC key for `RS256`, an RSA key
    /// for `HS256` or `ES256`, and so on. The key type fixes the algorithm; nothing converts one
    /// kind of key into another (that is the algorithm-confusion attack).
    #[error("this type of key cannot be used with {algorithm}")]
    KeyAlgorithmMismatch {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// A public or private key (DER, PEM, raw bytes or JWK members) could not be decoded, or is
    /// not a valid key of its type (a point off the curve, an even modulus). The error never
    /// echoes the input.
    #[error("invalid {kind} key: {reason}")]
    InvalidKey {
        /// `"RSA"`, `"P-256"` or `"Ed25519"`.
        kind: &'static str,
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// An RSA modulus is outside 2048–8192 bits (RFC 7518 §3.3 requires at least 2048).
    #[error("RSA keys must have a 2048- to 8192-bit modulus, got {bits} bits")]
    RsaModulusSize {
        /// The modulus size in bits.
        bits: usize,
    },
    /// A JWK Set was refused as a whole; see [`JwkRefusal`](crate::jwk::JwkRefusal).
    #[error("{}", match index {
        Some(i) => format!("JWK Set refused: key {i}: {reason}"),
        None => format!("JWK Set refused: {reason}"),
    })]
    InvalidJwkSet {
        /// The position of the offending entry in `keys`, when one entry is at fault.
        index: Option<usize>,
        /// Why.
        reason: crate::jwk::JwkRefusal,
    },
    /// A key given as text is not canonical unpadded base64url.
    #[error("key is not canonical unpadded base64url")]
    InvalidKeyEncoding,
    /// A key set needs every key to have a `kid`.
    #[error("keys in a key set must have a key ID (kid)")]
    KeyWithoutKid,
    /// Two keys of a key set have the same `kid`.
    #[error("a key with this key ID (kid) is already in the key set")]
    DuplicateKid,
    /// [`KeySet::remove`](crate::KeySet::remove) was asked to remove the current signing key.
    #[error("the current key of a key set cannot be removed; make another key current first")]
    RemoveCurrentKey,
    /// [`Verifier::with_keys`](crate::Verifier::with_keys) or
    /// [`Verifier::with_jwk_set`](crate::Verifier::with_jwk_set) was given no key.
    #[error("a verifier needs at least one key")]
    NoKeys,
    /// The token's header has no `kid`, but the verifier holds a key set (or several keys).
    #[error("token header has no key ID (kid), and the verifier uses a key set")]
    MissingKid,
    /// No key has the `kid` the token names.
    #[error("no key matches the token's key ID (kid)")]
    UnknownKid,

    // ---- encoding and configuration --------------------------------------------------------
    /// The claims could not be encoded: they do not serialize to a JSON object, serialize a
    /// member twice (a custom claim named like a registered claim), or nest too deeply.
    #[error("claims cannot be encoded: {0}")]
    Encode(&'static str),
    /// [`ValidationBuilder::build`](crate::ValidationBuilder::build) refused an impossible
    /// configuration.
    #[error("invalid validation: {0}")]
    InvalidValidation(&'static str),
}

/// The error returned by everything in this crate: a boxed [`ErrorKind`], so `Result<_, Error>` stays
/// one pointer wide on the success path.
///
/// ```
/// use latchkey_jwt::{Algorithm, ErrorKind, HmacKey};
///
/// let err = HmacKey::from_secret(Algorithm::HS256, b"short").unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::KeyTooShort { min: 32, .. }));
/// assert_eq!(err.to_string(), "HS256 keys must be at least 32 bytes long, got 5");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<ErrorKind>);

impl Error {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// Consumes the error, returning its kind.
    #[must_use]
    pub fn into_kind(self) -> ErrorKind {
        *self.0
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {}
