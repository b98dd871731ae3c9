//! The JWK Set parser: what it accepts, what it skips (and counts), what fails the whole set —
//! one test per refusal — and verification through `Verifier::with_jwk_set`.
#![cfg(all(feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

mod common;

use common::{b64, NOW};
use latchkey_jwt::jwk::{JwkRefusal, JwkSet, MAX_JWK_SET_KEYS, MAX_JWK_SET_LEN};
use latchkey_jwt::{
    Algorithm, Claims, EcdsaSigningKey, Ed25519SigningKey, ErrorKind, RsaSigningKey,
    RsaVerifyingKey, Signer, Validation, Verifier,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const RSA: &str = include_str!("keys/rsa2048.pem");
const RSA_1024_PUB: &str = include_str!("keys/rsa1024.pub.pem");
const EC: &str = include_str!("keys/p256.pem");
const ED: &str = include_str!("keys/ed25519.pem");

const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

fn rsa_jwk() -> Value {
    let k = RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA)
        .unwrap()
        .verifying_key();
    json!({"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
           "n": b64(&k.modulus()), "e": b64(&k.exponent())})
}

fn rsa_n() -> Vec<u8> {
    RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA)
        .unwrap()
        .verifying_key()
        .modulus()
}

fn ec_jwk() -> Value {
    let (x, y) = EcdsaSigningKey::from_pkcs8_pem(EC)
        .unwrap()
        .verifying_key()
        .coordinates();
    json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256",
           "x": b64(&x), "y": b64(&y)})
}

fn ed_jwk() -> Value {
    let x = Ed25519SigningKey::from_pkcs8_pem(ED)
        .unwrap()
        .verifying_key()
        .to_bytes();
    json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "x": b64(&x)})
}

fn set(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn parse(keys: &[Value]) -> Result<JwkSet, ErrorKind> {
    JwkSet::from_json(set(keys), &ALL).map_err(|e| e.into_kind())
}

fn refused(keys: &[Value]) -> (Option<usize>, JwkRefusal) {
    match parse(keys) {
        Err(ErrorKind::InvalidJwkSet { index, reason }) => (index, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn with(mut v: Value, member: &str, value: Value) -> Value {
    v[member] = value;
    v
}

fn without(mut v: Value, member: &str) -> Value {
    v.as_object_mut().unwrap().remove(member);
    v
}

fn validation() -> Validation {
    Validation::builder().now(NOW).build().unwrap()
}

fn claims() -> Claims {
    Claims {
        exp: Some(NOW + 600),
        ..Claims::new(())
    }
}

#[test]
fn a_provider_set_verifies_tokens_of_each_key() {
    let jwks = parse(&[rsa_jwk(), ec_jwk(), ed_jwk()]).unwrap();
    assert_eq!((jwks.len(), jwks.skipped()), (3, 0));
    assert_eq!(
        jwks.get("rsa-1").map(|k| k.algorithm()),
        Some(Algorithm::RS256)
    );
    let verifier = Verifier::with_jwk_set(jwks, validation()).unwrap();
    let signers = [
        Signer::new(
            RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA)
                .unwrap()
                .with_kid("rsa-1"),
        ),
        Signer::new(
            EcdsaSigningKey::from_pkcs8_pem(EC)
                .unwrap()
                .with_kid("ec-1"),
        ),
        Signer::new(
            Ed25519SigningKey::from_pkcs8_pem(ED)
                .unwrap()
                .with_kid("ed-1"),
        ),
    ];
    for s in &signers {
        assert!(verifier.verify::<()>(&s.sign(&claims()).unwrap()).is_ok());
    }
    // No kid, several keys: refused.
    let no_kid = Signer::new(EcdsaSigningKey::from_pkcs8_pem(EC).unwrap())
        .sign(&claims())
        .unwrap();
    assert_eq!(
        verifier.verify::<()>(&no_kid).unwrap_err().into_kind(),
        ErrorKind::MissingKid
    );
    // No kid, exactly one key: accepted.
    let one = Verifier::with_jwk_set(parse(&[ec_jwk()]).unwrap(), validation()).unwrap();
    assert!(one.verify::<()>(&no_kid).is_ok());
}

#[test]
fn the_algorithm_comes_from_the_jwk_never_from_the_token() {
    // The JWK says PS256; an RS256 token by the same private key is refused.
    let jwks = JwkSet::from_json(
        set(&[with(rsa_jwk(), "alg", json!("PS256"))]),
        &[Algorithm::RS256, Algorithm::PS256],
    )
    .unwrap();
    let verifier = Verifier::with_jwk_set(jwks, validation()).unwrap();
    let rs = Signer::new(
        RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA)
            .unwrap()
            .with_kid("rsa-1"),
    )
    .sign(&claims())
    .unwrap();
    assert_eq!(
        verifier.verify::<()>(&rs).unwrap_err().into_kind(),
        ErrorKind::AlgorithmMismatch {
            expected: Algorithm::PS256,
            found: Some(Algorithm::RS256)
        }
    );
    let ps = Signer::new(
        RsaSigningKey::from_pkcs8_pem(Algorithm::PS256, RSA)
            .unwrap()
            .with_kid("rsa-1"),
    )
    .sign(&claims())
    .unwrap();
    assert!(verifier.verify::<()>(&ps).is_ok());
}

#[test]
fn an_rsa_jwk_without_alg_takes_the_one_rsa_algorithm_of_the_allow_list() {
    let bare = without(rsa_jwk(), "alg");
    let jwks = JwkSet::from_json(set(std::slice::from_ref(&bare)), &[Algorithm::PS256]).unwrap();
    assert_eq!(jwks.keys()[0].algorithm(), Algorithm::PS256);
    let jwks = JwkSet::from_json(set(std::slice::from_ref(&bare)), &[Algorithm::ES256]).unwrap();
    assert_eq!((jwks.len(), jwks.skipped()), (0, 1));
    assert_eq!(
        JwkSet::from_json(set(&[bare]), &[Algorithm::RS256, Algorithm::PS256])
            .unwrap_err()
            .into_kind(),
        ErrorKind::InvalidJwkSet {
            index: Some(0),
            reason: JwkRefusal::AmbiguousAlgorithm
        }
    );
    // EC and OKP keys have one algorithm each.
    let jwks = parse(&[without(ec_jwk(), "alg"), without(ed_jwk(), "alg")]).unwrap();
    assert_eq!(jwks.keys()[0].algorithm(), Algorithm::ES256);
    assert_eq!(jwks.keys()[1].algorithm(), Algorithm::EdDSA);
}

#[test]
fn keys_outside_the_allow_list_are_skipped() {
    let jwks = JwkSet::from_json(set(&[rsa_jwk(), ec_jwk()]), &[Algorithm::ES256]).unwrap();
    assert_eq!((jwks.len(), jwks.skipped()), (1, 1));
    assert!(jwks.get("rsa-1").is_none());
    // An empty allow-list keeps nothing, and a verifier needs a key.
    let none = JwkSet::from_json(set(&[rsa_jwk()]), &[]).unwrap();
    assert!(none.is_empty());
    assert_eq!(
        Verifier::with_jwk_set(none, validation())
            .unwrap_err()
            .into_kind(),
        ErrorKind::NoKeys
    );
}

#[test]
fn unknown_key_types_curves_algorithms_and_uses_are_skipped_and_counted() {
    let skipped = [
        json!({"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA"}),
        json!({"kty": "oct-new"}),
        with(ec_jwk(), "crv", json!("P-384")),
        json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}),
        json!({"kty": "OKP", "crv": "Ed448", "x": "AAAA"}),
        with(rsa_jwk(), "alg", json!("RS512")),
        with(ed_jwk(), "alg", json!("Ed25519")),
        with(rsa_jwk(), "use", json!("enc")),
        with(rsa_jwk(), "key_ops", json!(["encrypt", "wrapKey"])),
    ];
    for (i, entry) in skipped.iter().enumerate() {
        let mut keys = vec![ec_jwk()];
        let mut entry = entry.clone();
        entry["kid"] = json!(format!("other-{i}"));
        keys.push(entry);
        let jwks = parse(&keys).unwrap_or_else(|e| panic!("entry {i}: {e:?}"));
        assert_eq!((jwks.len(), jwks.skipped()), (1, 1), "entry {i}");
    }
    let ops = with(rsa_jwk(), "key_ops", json!(["verify"]));
    assert_eq!(parse(&[ops]).unwrap().len(), 1);
}

#[test]
fn private_key_members_fail_the_set() {
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        for base in [rsa_jwk(), ec_jwk(), ed_jwk(), json!({"kty": "oct"})] {
            assert_eq!(
                refused(&[ec_jwk(), with(base, member, json!("AAAA"))]),
                (Some(1), JwkRefusal::PrivateKey),
                "{member}"
            );
        }
    }
}

#[test]
fn missing_members_fail_the_set() {
    for (base, member) in [
        (rsa_jwk(), "kty"),
        (rsa_jwk(), "n"),
        (rsa_jwk(), "e"),
        (ec_jwk(), "crv"),
        (ec_jwk(), "x"),
        (ec_jwk(), "y"),
        (ed_jwk(), "crv"),
        (ed_jwk(), "x"),
    ] {
        assert_eq!(
            refused(&[without(base, member)]),
            (Some(0), JwkRefusal::MissingMember(member)),
            "{member}"
        );
    }
}

#[test]
fn mistyped_or_badly_encoded_members_fail_the_set() {
    let ec = ec_jwk();
    let x = ec["x"].as_str().unwrap().to_owned();
    for (base, member, value) in [
        (rsa_jwk(), "kty", json!(1)),
        (rsa_jwk(), "kid", json!(7)),
        (rsa_jwk(), "alg", json!(["RS256"])),
        (rsa_jwk(), "use", json!(null)),
        (rsa_jwk(), "key_ops", json!("verify")),
        (rsa_jwk(), "key_ops", json!(["verify", 1])),
        (rsa_jwk(), "key_ops", json!(["verify", "verify"])),
        (rsa_jwk(), "e", json!("AQAB=")),
        (rsa_jwk(), "e", json!("AQ+B")),
        (rsa_jwk(), "n", json!(12)),
        (rsa_jwk(), "e", json!(b64(&[0, 1, 0, 1]))),
        (rsa_jwk(), "n", json!(b64(&[&[0u8][..], &rsa_n()].concat()))),
        (ec.clone(), "crv", json!(256)),
        (ec.clone(), "x", json!(format!("{x}="))),
        (ec.clone(), "x", json!(&x[..42])),
        (ec.clone(), "y", json!(b64(&[1u8; 33]))),
        (ed_jwk(), "x", json!(b64(&[1u8; 31]))),
    ] {
        assert_eq!(
            refused(&[with(base, member, value.clone())]),
            (Some(0), JwkRefusal::InvalidMember(member)),
            "{member}: {value}"
        );
    }
}

#[test]
fn an_alg_of_another_key_type_fails_the_set() {
    // Among them the JWK form of algorithm confusion: an RSA key offered for HS256.
    for (base, alg) in [
        (rsa_jwk(), "HS256"),
        (rsa_jwk(), "ES256"),
        (ec_jwk(), "RS256"),
        (ec_jwk(), "HS256"),
        (ed_jwk(), "ES256"),
        (ed_jwk(), "HS512"),
    ] {
        assert_eq!(
            refused(&[with(base, "alg", json!(alg))]),
            (Some(0), JwkRefusal::AlgorithmMismatch),
            "{alg}"
        );
    }
}

#[test]
fn invalid_keys_fail_the_set() {
    // A point off the curve, a small-order Ed25519 point, an even modulus.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let rsa = rsa_jwk();
    let mut n = base64_decode(rsa["n"].as_str().unwrap());
    *n.last_mut().unwrap() &= 0xfe;
    for entry in [
        with(ec_jwk(), "y", json!(b64(&[1u8; 32]))),
        with(ed_jwk(), "x", json!(b64(&identity))),
        with(rsa_jwk(), "n", json!(b64(&n))),
        with(rsa_jwk(), "e", json!(b64(&[1]))),
    ] {
        assert_eq!(refused(&[entry]), (Some(0), JwkRefusal::InvalidKey));
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn rsa_moduli_below_2048_bits_fail_the_set() {
    let small = RsaVerifyingKey::from_public_key_pem(Algorithm::RS256, RSA_1024_PUB);
    assert!(small.is_err());
    // Build the 1024-bit JWK from the DER: the modulus is the first big INTEGER.
    let der = pem_body(RSA_1024_PUB);
    let n = &der[der.len() - 5 - 129..der.len() - 5];
    assert_eq!(n[0], 0);
    let entry = json!({"kty": "RSA", "alg": "RS256", "n": b64(&n[1..]), "e": "AQAB"});
    assert_eq!(refused(&[entry]), (Some(0), JwkRefusal::RsaModulusSize));
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn duplicate_kids_fail_the_set() {
    let twin = with(ed_jwk(), "kid", json!("ec-1"));
    assert_eq!(
        refused(&[ec_jwk(), twin]),
        (Some(1), JwkRefusal::DuplicateKid)
    );
}

#[test]
fn entries_that_are_not_objects_fail_the_set() {
    for entry in [json!("RSA"), json!(null), json!([rsa_jwk()])] {
        assert_eq!(
            refused(&[ec_jwk(), entry]),
            (Some(1), JwkRefusal::NotAnObject)
        );
    }
}

#[test]
fn malformed_documents_are_refused() {
    let cases: Vec<(Vec<u8>, JwkRefusal)> = vec![
        (b"not json".to_vec(), JwkRefusal::Malformed),
        (b"{\"keys\": [}".to_vec(), JwkRefusal::Malformed),
        (
            b"\xEF\xBB\xBF{\"keys\": []}".to_vec(),
            JwkRefusal::Malformed,
        ),
        (
            b"{\"keys\": [], \"keys\": []}".to_vec(),
            JwkRefusal::Malformed,
        ),
        (
            b"{\"keys\": [{\"kty\": \"EC\", \"kty\": \"RSA\"}]}".to_vec(),
            JwkRefusal::Malformed,
        ),
        (
            b"{\"keys\": [[[[[[[[[[]]]]]]]]]]}".to_vec(),
            JwkRefusal::Malformed,
        ),
        (b"\xff".to_vec(), JwkRefusal::Malformed),
        (b"{}".to_vec(), JwkRefusal::MissingKeys),
        (b"[]".to_vec(), JwkRefusal::Malformed),
        (b"{\"keys\": {}}".to_vec(), JwkRefusal::MissingKeys),
        (b"{\"Keys\": []}".to_vec(), JwkRefusal::MissingKeys),
    ];
    for (doc, reason) in cases {
        assert_eq!(
            JwkSet::from_json(&doc, &ALL).unwrap_err().into_kind(),
            ErrorKind::InvalidJwkSet {
                index: None,
                reason
            },
            "{}",
            String::from_utf8_lossy(&doc)
        );
    }
    // An empty set parses (and then makes no verifier).
    assert!(JwkSet::from_json(r#"{"keys": []}"#, &ALL)
        .unwrap()
        .is_empty());
}

#[test]
fn size_limits_are_enforced() {
    let big = format!(
        r#"{{"keys": [], "pad": "{}"}}"#,
        "x".repeat(MAX_JWK_SET_LEN)
    );
    assert_eq!(
        JwkSet::from_json(&big, &ALL).unwrap_err().into_kind(),
        ErrorKind::InvalidJwkSet {
            index: None,
            reason: JwkRefusal::TooLarge
        }
    );
    let many: Vec<Value> = (0..=MAX_JWK_SET_KEYS)
        .map(|i| json!({"kty": "unknown", "kid": i.to_string()}))
        .collect();
    assert_eq!(refused(&many), (None, JwkRefusal::TooManyKeys));
    let enough: Vec<Value> = many[..MAX_JWK_SET_KEYS].to_vec();
    assert_eq!(parse(&enough).unwrap().skipped(), MAX_JWK_SET_KEYS);
}

#[test]
fn errors_and_debug_output_never_contain_key_material() {
    let rsa = rsa_jwk();
    let n = rsa["n"].as_str().unwrap()[..16].to_owned();
    let jwks = parse(&[rsa_jwk(), ec_jwk(), ed_jwk()]).unwrap();
    let text = format!("{jwks:?}");
    assert!(!text.contains(&n), "{text}");
    assert!(!text.contains(&ec_jwk()["x"].as_str().unwrap()[..16]));
    let err = JwkSet::from_json(set(&[with(rsa_jwk(), "d", json!(n.clone()))]), &ALL).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&n), "{text}");
    assert_eq!(
        err.to_string(),
        "JWK Set refused: key 0: has a private key member"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_documents_never_panic(doc in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = JwkSet::from_json(&doc, &ALL);
    }

    #[test]
    fn arbitrary_member_values_never_panic(
        member in prop::sample::select(vec!["kty", "crv", "alg", "use", "key_ops", "kid", "n", "e", "x", "y"]),
        value in "[ -~]{0,48}",
        base in 0usize..3,
    ) {
        let entry = [rsa_jwk(), ec_jwk(), ed_jwk()][base].clone();
        let _ = parse(&[with(entry, member, json!(value))]);
    }
}

#[test]
fn published_sets_parse_back_to_the_same_keys() {
    let rsa = RsaSigningKey::from_pkcs8_pem(Algorithm::PS256, RSA)
        .unwrap()
        .with_kid("rsa-ps");
    let ec = EcdsaSigningKey::from_pkcs8_pem(EC)
        .unwrap()
        .with_kid("ec-1");
    let ed = Ed25519SigningKey::from_pkcs8_pem(ED).unwrap();
    let published = JwkSet::from_keys([
        latchkey_jwt::VerifyingKey::from(rsa.verifying_key()),
        ec.verifying_key().into(),
        ed.verifying_key().into(),
    ])
    .unwrap();
    let json = published.to_json();
    let doc: Value = serde_json::from_str(&json).unwrap();
    for entry in doc["keys"].as_array().unwrap() {
        for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(entry.get(member).is_none(), "{member}");
        }
        assert_eq!(entry["use"], "sig");
    }
    let back = JwkSet::from_json(
        &json,
        &[Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA],
    )
    .unwrap();
    assert_eq!((back.len(), back.skipped()), (3, 0));
    assert_eq!(back.keys()[0].algorithm(), Algorithm::PS256);
    assert_eq!(back.keys()[2].kid(), None);
    // Exactly one key without kid... but three keys: name them to verify.
    let verifier = Verifier::with_jwk_set(back, validation()).unwrap();
    for signer in [Signer::new(rsa), Signer::new(ec)] {
        assert!(verifier
            .verify::<()>(&signer.sign(&claims()).unwrap())
            .is_ok());
    }
    // A secret is never published; kids stay unique.
    let hmac = latchkey_jwt::HmacKey::from_secret(Algorithm::HS256, &[1u8; 32]).unwrap();
    assert_eq!(
        JwkSet::from_keys([hmac]).unwrap_err().into_kind(),
        ErrorKind::KeyAlgorithmMismatch {
            algorithm: Algorithm::HS256
        }
    );
    let ec2 = EcdsaSigningKey::from_pkcs8_pem(EC)
        .unwrap()
        .with_kid("ec-1");
    let ec3 = EcdsaSigningKey::from_pkcs8_pem(EC)
        .unwrap()
        .with_kid("ec-1");
    assert_eq!(
        JwkSet::from_keys([ec2.verifying_key(), ec3.verifying_key()])
            .unwrap_err()
            .into_kind(),
        ErrorKind::DuplicateKid
    );
}
