//! Helpers shared by the integration tests: forging tokens from raw header and payload bytes.
#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failure here is a test failure

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use latchkey_jwt::{Algorithm, HmacKey, Validation};

pub(crate) const SECRET_256: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
pub(crate) const SECRET_384: &[u8; 48] = b"0123456789abcdef0123456789abcdef0123456789abcdef";
pub(crate) const SECRET_512: &[u8; 64] =
    b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A fixed "now" for every test.
pub(crate) const NOW: u64 = 1_800_000_000;

pub(crate) fn secret(alg: Algorithm) -> &'static [u8] {
    match alg {
        Algorithm::HS256 => SECRET_256,
        Algorithm::HS384 => SECRET_384,
        _ => SECRET_512,
    }
}

pub(crate) fn key(alg: Algorithm) -> HmacKey {
    HmacKey::from_secret(alg, secret(alg)).unwrap()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC of `input` with `secret` under `alg`, computed independently of latchkey-jwt.
pub(crate) fn mac(alg: Algorithm, secret: &[u8], input: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::HS256 => Hmac::<sha2::Sha256>::new_from_slice(secret)
            .unwrap()
            .chain_update(input)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HS384 => Hmac::<sha2::Sha384>::new_from_slice(secret)
            .unwrap()
            .chain_update(input)
            .finalize()
            .into_bytes()
            .to_vec(),
        _ => Hmac::<sha2::Sha512>::new_from_slice(secret)
            .unwrap()
            .chain_update(input)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// A correctly signed token over arbitrary header and payload bytes.
pub(crate) fn forge_raw(alg: Algorithm, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = mac(alg, secret(alg), input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A correctly signed HS256 token over arbitrary payload JSON, with a plain header.
pub(crate) fn forge(payload: &str) -> String {
    forge_raw(
        Algorithm::HS256,
        br#"{"alg":"HS256","typ":"JWT"}"#,
        payload.as_bytes(),
    )
}

/// A correctly signed HS256 token with an arbitrary header.
pub(crate) fn forge_header(header: &str) -> String {
    forge_raw(
        Algorithm::HS256,
        header.as_bytes(),
        format!(r#"{{"exp":{}}}"#, NOW + 100).as_bytes(),
    )
}

/// Default validation at `NOW`.
pub(crate) fn validation() -> Validation {
    Validation::builder().now(NOW).build().unwrap()
}
