//! Feeds arbitrary bytes to the verifier (as a token, and as correctly signed header and payload
//! JSON) and to the unverified decoders. Nothing may panic; a correctly signed token must
//! round-trip.
#![no_main]

use latchkey_jwt::{dangerous, Algorithm, HmacKey, Signer, Validation, Verifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8; 32] = b"fuzzing secret, 32 bytes long!!!";

fuzz_target!(|data: &[u8]| {
    let key = HmacKey::from_secret(Algorithm::HS256, SECRET).expect("32 bytes");
    let validation = Validation::builder()
        .required_claims([])
        .allow_unvalidated_audience()
        .now(1_800_000_000)
        .build()
        .expect("valid");
    let verifier = Verifier::new(key.clone(), validation);

    // 1. The bytes as a token.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verifier.verify::<serde_json::Value>(s);
        let _ = dangerous::decode_header_unverified(s);
        let _ = dangerous::decode_unverified::<serde_json::Value>(s);
    }

    // 2. The bytes as the payload of a correctly signed token, so the strict JSON pre-scan and the
    //    claims decoder see arbitrary input after the signature check.
    let split = data.iter().position(|&b| b == 0).unwrap_or(0);
    let (header, payload) = if split > 0 {
        (&data[..split], &data[split + 1..])
    } else {
        (&br#"{"alg":"HS256"}"#[..], data)
    };
    let token = forge(header, payload);
    let r = verifier.verify::<serde_json::Value>(&token);
    if let Ok(claims) = r {
        // Anything accepted re-signs and verifies to the same claims.
        let again = Signer::new(key)
            .sign(&claims)
            .expect("accepted claims re-sign");
        // Re-serializing can lengthen the token (`1e2` becomes `100.0`) past the size cap, and
        // serde_json (without its `float_roundtrip` feature) may read a written float back one ULP
        // off, so the comparison is for claims without fractions.
        if again.len() <= verifier.validation().max_token_len() {
            let back = verifier
                .verify::<serde_json::Value>(&again)
                .expect("re-signed verifies");
            if !has_float(&claims.custom) {
                assert_eq!(back, claims);
            }
        }
    }
    let _ = verifier.verify::<()>(&token);
});

fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn forge(header: &[u8], payload: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64.encode(mac.finalize().into_bytes()))
}
