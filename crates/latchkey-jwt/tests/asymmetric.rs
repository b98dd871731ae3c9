//! RS256, PS256, ES256 and EdDSA: round trips, tampering, the algorithm-confusion attack, key
//! refusals, key selection by `kid`, Debug redaction, and interop with `jsonwebtoken` in both
//! directions on the same keys. The keys are the test fixtures in `tests/keys/`.
#![cfg(all(feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

mod common;

use common::{b64, mac, NOW};
use jsonwebtoken as jwt;
use latchkey_jwt::{
    Algorithm, Claims, EcdsaSigningKey, EcdsaVerifyingKey, Ed25519SigningKey, Ed25519VerifyingKey,
    ErrorKind, RsaSigningKey, RsaVerifyingKey, Signer, SigningKey, Validation, Verifier,
    VerifyingKey,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const RSA: &str = include_str!("keys/rsa2048.pem");
const RSA_PUB: &str = include_str!("keys/rsa2048.pub.pem");
const RSA_OTHER: &str = include_str!("keys/rsa2048-other.pem");
const RSA_1024_PUB: &str = include_str!("keys/rsa1024.pub.pem");
const EC: &str = include_str!("keys/p256.pem");
const EC_PUB: &str = include_str!("keys/p256.pub.pem");
const ED: &str = include_str!("keys/ed25519.pem");
const ED_PUB: &str = include_str!("keys/ed25519.pub.pem");

const ASYMMETRIC: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

fn signing_key(alg: Algorithm) -> SigningKey {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            RsaSigningKey::from_pkcs8_pem(alg, RSA).unwrap().into()
        }
        Algorithm::ES256 => EcdsaSigningKey::from_pkcs8_pem(EC).unwrap().into(),
        Algorithm::EdDSA => Ed25519SigningKey::from_pkcs8_pem(ED).unwrap().into(),
        _ => unreachable!(),
    }
}

/// The public key loaded from its own PEM file (not derived from the private key).
fn verifying_key(alg: Algorithm) -> VerifyingKey {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => RsaVerifyingKey::from_public_key_pem(alg, RSA_PUB)
            .unwrap()
            .into(),
        Algorithm::ES256 => EcdsaVerifyingKey::from_public_key_pem(EC_PUB)
            .unwrap()
            .into(),
        Algorithm::EdDSA => Ed25519VerifyingKey::from_public_key_pem(ED_PUB)
            .unwrap()
            .into(),
        _ => unreachable!(),
    }
}

fn public_pem(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => RSA_PUB,
        Algorithm::ES256 => EC_PUB,
        _ => ED_PUB,
    }
}

fn validation() -> Validation {
    Validation::builder().now(NOW).build().unwrap()
}

fn claims() -> Claims {
    Claims {
        sub: Some("user-42".into()),
        exp: Some(NOW + 600),
        ..Claims::new(())
    }
}

fn err(verifier: &Verifier, token: &str) -> ErrorKind {
    verifier.verify::<()>(token).unwrap_err().into_kind()
}

#[test]
fn every_algorithm_round_trips_and_names_itself() {
    for alg in ASYMMETRIC {
        let token = Signer::new(signing_key(alg)).sign(&claims()).unwrap();
        let verifier = Verifier::new(verifying_key(alg), validation());
        let t = verifier.verify_token::<()>(&token).unwrap();
        assert_eq!(t.header.alg(), alg.as_str());
        assert_eq!(t.claims.sub.as_deref(), Some("user-42"));
        // The public half derived from the private key verifies too.
        let derived = Verifier::new(signing_key(alg).verifying_key(), validation());
        assert!(derived.verify::<()>(&token).is_ok(), "{alg}");
    }
}

#[test]
fn signatures_have_the_lengths_of_rfc_7518() {
    for (alg, len) in [
        (Algorithm::RS256, 256),
        (Algorithm::PS256, 256),
        (Algorithm::ES256, 64),
        (Algorithm::EdDSA, 64),
    ] {
        let token = Signer::new(signing_key(alg)).sign(&claims()).unwrap();
        let sig = token.rsplit('.').next().unwrap();
        assert_eq!(sig.len(), (len * 4usize).div_ceil(3), "{alg}");
    }
}

#[test]
fn tampering_with_any_segment_is_refused() {
    for alg in ASYMMETRIC {
        let token = Signer::new(signing_key(alg)).sign(&claims()).unwrap();
        let verifier = Verifier::new(verifying_key(alg), validation());
        let (header, rest) = token.split_once('.').unwrap();
        let (payload, sig) = rest.split_once('.').unwrap();
        let other_payload = b64(format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 600).as_bytes());
        assert_eq!(
            err(&verifier, &format!("{header}.{other_payload}.{sig}")),
            ErrorKind::InvalidSignature,
            "{alg}"
        );
        // A zero byte in front keeps the value of an RSA signature: still refused.
        let zero_first = [&[0], base64_decode(sig).as_slice()].concat();
        assert_eq!(
            err(
                &verifier,
                &format!("{header}.{payload}.{}", b64(&zero_first))
            ),
            ErrorKind::InvalidSignature,
            "{alg}"
        );
        // Flip one bit in the middle of the signature.
        let mut raw = base64_decode(sig);
        raw[10] ^= 1;
        assert_eq!(
            err(&verifier, &format!("{header}.{payload}.{}", b64(&raw))),
            ErrorKind::InvalidSignature,
            "{alg}"
        );
        // Too short, too long, empty.
        for bad in [
            &raw[..raw.len() - 1],
            &[raw.as_slice(), &[0]].concat()[..],
            &[],
        ] {
            assert_eq!(
                err(&verifier, &format!("{header}.{payload}.{}", b64(bad))),
                ErrorKind::InvalidSignature,
                "{alg}"
            );
        }
        // Longer than any RSA-8192 signature: refused before decoding.
        let huge = "A".repeat(1368);
        assert_eq!(
            err(&verifier, &format!("{header}.{payload}.{huge}")),
            ErrorKind::InvalidSignature
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn another_key_of_the_same_type_does_not_verify() {
    let other = RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA_OTHER).unwrap();
    let token = Signer::new(other).sign(&claims()).unwrap();
    let verifier = Verifier::new(verifying_key(Algorithm::RS256), validation());
    assert_eq!(err(&verifier, &token), ErrorKind::InvalidSignature);
}

/// The algorithm-confusion attack: an attacker takes the server's *public* key, uses its bytes as
/// an HMAC secret and signs an HS256 token. A verifier that lets the header choose the algorithm
/// would check it with HMAC and the same bytes. Here the key fixes the algorithm.
#[test]
fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused() {
    for alg in ASYMMETRIC {
        let verifier = Verifier::new(verifying_key(alg), validation());
        let pem = public_pem(alg);
        let der = pem_body(pem);
        let jwk = jwk_of(&verifying_key(alg));
        for secret in [pem.as_bytes(), pem.trim().as_bytes(), &der, jwk.as_bytes()] {
            let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
            let payload = b64(format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 600).as_bytes());
            let input = format!("{header}.{payload}");
            let sig = mac(Algorithm::HS256, secret, input.as_bytes());
            let forged = format!("{input}.{}", b64(&sig));
            assert_eq!(
                err(&verifier, &forged),
                ErrorKind::AlgorithmMismatch {
                    expected: alg,
                    found: Some(Algorithm::HS256)
                },
                "{alg}"
            );
        }
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn jwk_of(key: &VerifyingKey) -> String {
    match key {
        VerifyingKey::Rsa(k) => format!(
            r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
            b64(&k.modulus()),
            b64(&k.exponent())
        ),
        VerifyingKey::Ecdsa(k) => {
            let (x, y) = k.coordinates();
            format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
                b64(&x),
                b64(&y)
            )
        }
        VerifyingKey::Ed25519(k) => {
            format!(
                r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
                b64(&k.to_bytes())
            )
        }
        _ => unreachable!(),
    }
}

#[test]
fn alg_none_is_refused_by_every_key_type() {
    let payload = b64(format!(r#"{{"exp":{}}}"#, NOW + 600).as_bytes());
    for alg in ASYMMETRIC {
        let verifier = Verifier::new(verifying_key(alg), validation());
        for none in ["none", "None", "NONE"] {
            let header = b64(format!(r#"{{"alg":"{none}"}}"#).as_bytes());
            for sig in ["", "AAAA"] {
                assert_eq!(
                    err(&verifier, &format!("{header}.{payload}.{sig}")),
                    ErrorKind::NoneAlgorithm
                );
            }
        }
    }
}

#[test]
fn a_token_of_one_algorithm_is_refused_by_a_key_of_another() {
    for signer_alg in ASYMMETRIC {
        let token = Signer::new(signing_key(signer_alg))
            .sign(&claims())
            .unwrap();
        for verifier_alg in ASYMMETRIC.into_iter().filter(|a| *a != signer_alg) {
            let verifier = Verifier::new(verifying_key(verifier_alg), validation());
            assert_eq!(
                err(&verifier, &token),
                ErrorKind::AlgorithmMismatch {
                    expected: verifier_alg,
                    found: Some(signer_alg)
                },
                "{signer_alg} token, {verifier_alg} key"
            );
        }
    }
}

#[test]
fn a_key_type_refuses_the_algorithms_of_other_types() {
    for alg in [
        Algorithm::HS256,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let expected = ErrorKind::KeyAlgorithmMismatch { algorithm: alg };
        assert_eq!(
            RsaVerifyingKey::from_public_key_pem(alg, RSA_PUB)
                .unwrap_err()
                .into_kind(),
            expected
        );
        assert_eq!(
            RsaSigningKey::from_pkcs8_pem(alg, RSA)
                .unwrap_err()
                .into_kind(),
            expected
        );
        let k = verifying_key(Algorithm::RS256);
        let VerifyingKey::Rsa(k) = k else {
            unreachable!()
        };
        assert_eq!(
            RsaVerifyingKey::from_components(alg, &k.modulus(), &k.exponent())
                .unwrap_err()
                .into_kind(),
            expected
        );
    }
}

#[test]
fn rsa_moduli_outside_2048_to_8192_bits_are_refused() {
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        assert_eq!(
            RsaVerifyingKey::from_public_key_pem(alg, RSA_1024_PUB)
                .unwrap_err()
                .into_kind(),
            ErrorKind::RsaModulusSize { bits: 1024 }
        );
    }
    let VerifyingKey::Rsa(k) = verifying_key(Algorithm::RS256) else {
        unreachable!()
    };
    let n = k.modulus();
    assert_eq!(
        RsaVerifyingKey::from_components(Algorithm::RS256, &n[..255], &k.exponent())
            .unwrap_err()
            .into_kind(),
        ErrorKind::RsaModulusSize { bits: 2040 }
    );
    let mut big = vec![0xffu8; 1025];
    big[1024] = 0xfd; // odd
    assert_eq!(
        RsaVerifyingKey::from_components(Algorithm::RS256, &big, &k.exponent())
            .unwrap_err()
            .into_kind(),
        ErrorKind::RsaModulusSize { bits: 8200 }
    );
    // Leading zero bytes do not count.
    let mut padded = vec![0u8; 3];
    padded.extend_from_slice(&n);
    let key = RsaVerifyingKey::from_components(Algorithm::RS256, &padded, &k.exponent()).unwrap();
    assert_eq!(key.modulus_bits(), 2048);
}

#[test]
fn malformed_keys_are_refused_without_echoing_them() {
    let garbage = "-----BEGIN PUBLIC KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PUBLIC KEY-----\n";
    let errors = [
        RsaVerifyingKey::from_public_key_pem(Algorithm::RS256, garbage).unwrap_err(),
        RsaVerifyingKey::from_public_key_pem(Algorithm::RS256, EC_PUB).unwrap_err(),
        RsaVerifyingKey::from_pkcs1_pem(Algorithm::RS256, RSA_PUB).unwrap_err(),
        RsaVerifyingKey::from_public_key_der(Algorithm::RS256, b"\x30\x00").unwrap_err(),
        RsaVerifyingKey::from_pkcs1_der(Algorithm::RS256, b"").unwrap_err(),
        RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, EC).unwrap_err(),
        RsaSigningKey::from_pkcs1_pem(Algorithm::RS256, RSA).unwrap_err(),
        RsaSigningKey::from_pkcs8_der(Algorithm::RS256, b"").unwrap_err(),
        RsaSigningKey::from_pkcs1_der(Algorithm::RS256, b"").unwrap_err(),
        EcdsaVerifyingKey::from_public_key_pem(RSA_PUB).unwrap_err(),
        EcdsaVerifyingKey::from_public_key_der(b"").unwrap_err(),
        EcdsaVerifyingKey::from_sec1_bytes(&[4u8; 65]).unwrap_err(),
        EcdsaVerifyingKey::from_coordinates(&[1u8; 32], &[2u8; 32]).unwrap_err(),
        EcdsaVerifyingKey::from_coordinates(&[1u8; 31], &[2u8; 32]).unwrap_err(),
        EcdsaSigningKey::from_pkcs8_pem(ED).unwrap_err(),
        EcdsaSigningKey::from_pkcs8_der(b"").unwrap_err(),
        EcdsaSigningKey::from_bytes(&[0u8; 32]).unwrap_err(),
        EcdsaSigningKey::from_bytes(&[0xffu8; 32]).unwrap_err(),
        Ed25519VerifyingKey::from_public_key_pem(EC_PUB).unwrap_err(),
        Ed25519VerifyingKey::from_public_key_der(b"").unwrap_err(),
        Ed25519VerifyingKey::from_bytes(&[1u8; 31]).unwrap_err(),
        Ed25519SigningKey::from_pkcs8_pem(RSA).unwrap_err(),
        Ed25519SigningKey::from_pkcs8_der(b"").unwrap_err(),
        Ed25519SigningKey::from_seed(&[1u8; 31]).unwrap_err(),
    ];
    for e in errors {
        assert!(
            matches!(e.kind(), ErrorKind::InvalidKey { .. }),
            "{:?}",
            e.kind()
        );
        let text = format!("{e} {e:?}");
        assert!(!text.contains("c2Vj"), "{text}");
    }
}

#[test]
fn small_order_ed25519_keys_are_refused() {
    // The identity point (y = 1) and the point of order 2 (y = -1): with such a key a signature
    // verifies for many messages under the lax (non-strict) check.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    for bytes in [identity, minus_one] {
        assert!(matches!(
            Ed25519VerifyingKey::from_bytes(&bytes).unwrap_err().kind(),
            ErrorKind::InvalidKey { .. }
        ));
    }
}

#[test]
fn ecdsa_signatures_with_zero_scalars_are_refused() {
    let verifier = Verifier::new(verifying_key(Algorithm::ES256), validation());
    let token = Signer::new(signing_key(Algorithm::ES256))
        .sign(&claims())
        .unwrap();
    let input = &token[..token.rfind('.').unwrap()];
    for sig in [[0u8; 64], [0xffu8; 64]] {
        assert_eq!(
            err(&verifier, &format!("{input}.{}", b64(&sig))),
            ErrorKind::InvalidSignature
        );
    }
}

#[test]
fn several_keys_are_selected_by_kid() {
    let rsa = RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA)
        .unwrap()
        .with_kid("rsa");
    let ec = EcdsaSigningKey::from_pkcs8_pem(EC).unwrap().with_kid("ec");
    let ed = Ed25519SigningKey::from_pkcs8_pem(ED)
        .unwrap()
        .with_kid("ed");
    let verifier = Verifier::with_keys(
        [
            SigningKey::from(rsa.clone()).verifying_key(),
            SigningKey::from(ec.clone()).verifying_key(),
            SigningKey::from(ed.clone()).verifying_key(),
        ],
        validation(),
    )
    .unwrap();
    for key in [
        SigningKey::from(rsa.clone()),
        ec.clone().into(),
        ed.clone().into(),
    ] {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert!(verifier.verify::<()>(&token).is_ok());
    }
    // A token without kid: refused when there are several keys...
    let no_kid = Signer::new(EcdsaSigningKey::from_pkcs8_pem(EC).unwrap())
        .sign(&claims())
        .unwrap();
    assert_eq!(err(&verifier, &no_kid), ErrorKind::MissingKid);
    // ...accepted when there is exactly one.
    let one = Verifier::with_keys([ec.verifying_key()], validation()).unwrap();
    assert!(one.verify::<()>(&no_kid).is_ok());
    // An unknown kid, and a kid that names a key of another algorithm.
    let unknown = Signer::new(
        EcdsaSigningKey::from_pkcs8_pem(EC)
            .unwrap()
            .with_kid("nope"),
    )
    .sign(&claims())
    .unwrap();
    assert_eq!(err(&verifier, &unknown), ErrorKind::UnknownKid);
    let wrong = Signer::new(EcdsaSigningKey::from_pkcs8_pem(EC).unwrap().with_kid("rsa"))
        .sign(&claims())
        .unwrap();
    assert_eq!(
        err(&verifier, &wrong),
        ErrorKind::AlgorithmMismatch {
            expected: Algorithm::RS256,
            found: Some(Algorithm::ES256)
        }
    );
    // Construction refusals.
    assert_eq!(
        Verifier::with_keys(Vec::<VerifyingKey>::new(), validation())
            .unwrap_err()
            .into_kind(),
        ErrorKind::NoKeys
    );
    assert_eq!(
        Verifier::with_keys([ec.verifying_key(), ec.verifying_key()], validation())
            .unwrap_err()
            .into_kind(),
        ErrorKind::DuplicateKid
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let pems = [RSA, EC, ED];
    let bodies: Vec<String> = pems
        .iter()
        .flat_map(|p| {
            p.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(|l| l[8..24].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for alg in ASYMMETRIC {
        let key = signing_key(alg);
        let signer = Signer::new(key.clone());
        let verifier = Verifier::new(verifying_key(alg), validation());
        let text = format!("{key:?} {signer:?} {verifier:?} {:?}", key.verifying_key());
        assert!(text.contains("[redacted]"), "{text}");
        for body in &bodies {
            assert!(!text.contains(body.as_str()), "{text}");
        }
    }
}

// ---- interop with jsonwebtoken ----------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Flat {
    sub: String,
    exp: u64,
    roles: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

fn jt_alg(alg: Algorithm) -> jwt::Algorithm {
    match alg {
        Algorithm::RS256 => jwt::Algorithm::RS256,
        Algorithm::PS256 => jwt::Algorithm::PS256,
        Algorithm::ES256 => jwt::Algorithm::ES256,
        _ => jwt::Algorithm::EdDSA,
    }
}

fn jt_keys(alg: Algorithm) -> (jwt::EncodingKey, jwt::DecodingKey) {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => (
            jwt::EncodingKey::from_rsa_pem(RSA.as_bytes()).unwrap(),
            jwt::DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).unwrap(),
        ),
        Algorithm::ES256 => (
            jwt::EncodingKey::from_ec_pem(EC.as_bytes()).unwrap(),
            jwt::DecodingKey::from_ec_pem(EC_PUB.as_bytes()).unwrap(),
        ),
        _ => (
            jwt::EncodingKey::from_ed_pem(ED.as_bytes()).unwrap(),
            jwt::DecodingKey::from_ed_pem(ED_PUB.as_bytes()).unwrap(),
        ),
    }
}

#[test]
fn jsonwebtoken_tokens_verify_here_and_ours_verify_there() {
    let flat = Flat {
        sub: "user-42".into(),
        exp: NOW + 600,
        roles: vec!["admin".into()],
    };
    for alg in ASYMMETRIC {
        let (enc, dec) = jt_keys(alg);
        let mut jt_validation = jwt::Validation::new(jt_alg(alg));
        jt_validation.validate_exp = false;
        jt_validation.required_spec_claims.clear();

        // theirs → ours
        let theirs = jwt::encode(&jwt::Header::new(jt_alg(alg)), &flat, &enc).unwrap();
        let verifier = Verifier::new(verifying_key(alg), validation());
        let c: Claims<Roles> = verifier.verify(&theirs).unwrap();
        assert_eq!(c.sub.as_deref(), Some("user-42"));
        assert_eq!(c.custom.roles, ["admin"]);

        // ours → theirs
        let ours = Signer::new(signing_key(alg))
            .sign(&Claims {
                sub: Some(flat.sub.clone()),
                exp: Some(flat.exp),
                ..Claims::new(Roles {
                    roles: flat.roles.clone(),
                })
            })
            .unwrap();
        let got = jwt::decode::<Flat>(&ours, &dec, &jt_validation).unwrap();
        assert_eq!(got.claims, flat, "{alg}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verification_never_panics_on_arbitrary_input(s in any::<String>(), alg in 0usize..4) {
        let verifier = Verifier::new(verifying_key(ASYMMETRIC[alg]), validation());
        let _ = verifier.verify::<()>(&s);
    }

    #[test]
    fn verification_never_panics_on_arbitrary_signatures(
        sig in proptest::collection::vec(any::<u8>(), 0..600),
        alg in 0usize..4,
    ) {
        let alg = ASYMMETRIC[alg];
        let token = Signer::new(signing_key(alg)).sign(&claims()).unwrap();
        let input = &token[..token.rfind('.').unwrap()];
        let verifier = Verifier::new(verifying_key(alg), validation());
        let forged = format!("{input}.{}", b64(&sig));
        prop_assert!(verifier.verify::<()>(&forged).is_err());
    }
}

/// PS256 is RSASSA-PSS with a 32-byte salt (RFC 7518 §3.5): a signature with another salt length
/// is refused, not auto-detected. Signed here with `rsa` itself, the crate under the `rsa`
/// feature.
#[test]
fn ps256_signatures_with_another_salt_length_are_refused() {
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};

    let private = rsa::PrivateKey::from_pkcs8_pem(RSA).unwrap();
    let verifier = Verifier::new(verifying_key(Algorithm::PS256), validation());
    let header = b64(br#"{"alg":"PS256","typ":"JWT"}"#);
    let payload = b64(format!(r#"{{"exp":{}}}"#, NOW + 600).as_bytes());
    let input = format!("{header}.{payload}");
    for (salt, ok) in [(32, true), (0, false), (20, false), (64, false)] {
        let key = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(private.clone(), salt);
        let sig = key.sign(input.as_bytes()).to_vec();
        let r = verifier.verify::<()>(&format!("{input}.{}", b64(&sig)));
        if ok {
            assert!(r.is_ok(), "salt {salt}");
        } else {
            assert_eq!(
                r.unwrap_err().into_kind(),
                ErrorKind::InvalidSignature,
                "salt {salt}"
            );
        }
    }
}

#[test]
fn generated_keys_sign_and_verify() {
    let ec = EcdsaSigningKey::generate().unwrap().with_kid("gen-ec");
    let other = EcdsaSigningKey::generate().unwrap();
    assert_ne!(
        ec.verifying_key().coordinates(),
        other.verifying_key().coordinates()
    );
    let rsa = RsaSigningKey::generate(Algorithm::PS256)
        .unwrap()
        .with_kid("gen-rsa");
    assert_eq!(rsa.verifying_key().modulus_bits(), 3072);
    assert_eq!(
        RsaSigningKey::generate(Algorithm::ES256)
            .unwrap_err()
            .into_kind(),
        ErrorKind::KeyAlgorithmMismatch {
            algorithm: Algorithm::ES256
        }
    );
    let verifier = Verifier::with_keys(
        [
            VerifyingKey::from(ec.verifying_key()),
            rsa.verifying_key().into(),
        ],
        validation(),
    )
    .unwrap();
    for key in [SigningKey::from(ec), rsa.into()] {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert!(verifier.verify::<()>(&token).is_ok());
    }
}
