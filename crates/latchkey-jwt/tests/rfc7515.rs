//! Known-answer test: RFC 7515 (JSON Web Signature), Appendix A.1, "Example JWS Using HMAC
//! SHA-256". Token, key (the JWK `k`) and claims copied from
//! https://www.rfc-editor.org/rfc/rfc7515#appendix-A.1 — the header and payload contain CRLF line
//! breaks, which is why their base64url looks unusual.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use latchkey_jwt::dangerous::decode_header_unverified;
use latchkey_jwt::{Algorithm, Claims, ErrorKind, HmacKey, Validation, Verifier};
use serde::Deserialize;

/// RFC 7515 A.1.1, the JWK's `k` member.
const K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// RFC 7515 A.1.1, the complete JWS Compact Serialization.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// `exp` of the example: 2011-03-22T18:43:00Z.
const EXP: u64 = 1_300_819_380;

#[derive(Debug, Deserialize, PartialEq)]
struct Custom {
    #[serde(rename = "http://example.com/is_root")]
    is_root: bool,
}

fn verifier(now: u64) -> Verifier {
    let key = HmacKey::from_base64url(Algorithm::HS256, K).unwrap();
    Verifier::new(key, Validation::builder().now(now).build().unwrap())
}

#[test]
fn rfc7515_a1_verifies_and_its_claims_decode() {
    let token = verifier(EXP - 3600).verify_token::<Custom>(TOKEN).unwrap();
    assert_eq!(token.header.alg(), "HS256");
    assert_eq!(token.header.typ(), Some("JWT"));
    let claims: Claims<Custom> = token.claims;
    assert_eq!(claims.iss.as_deref(), Some("joe"));
    assert_eq!(claims.exp, Some(EXP));
    assert_eq!(claims.custom, Custom { is_root: true });
}

#[test]
fn rfc7515_a1_is_expired_today() {
    let err = verifier(EXP + 61).verify::<Custom>(TOKEN).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Expired);
}

#[test]
fn rfc7515_a1_header_reads_unverified() {
    let header = decode_header_unverified(TOKEN).unwrap();
    assert_eq!(header.algorithm(), Some(Algorithm::HS256));
}

#[test]
fn rfc7515_a1_fails_with_another_key() {
    let other = HmacKey::from_secret(Algorithm::HS256, &[0u8; 64]).unwrap();
    let v = Verifier::new(other, Validation::builder().now(EXP - 1).build().unwrap());
    assert_eq!(
        v.verify::<Custom>(TOKEN).unwrap_err().kind(),
        &ErrorKind::InvalidSignature
    );
}
