//! One test per rejection cause, each asserting the exact error kind.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{b64, forge, forge_header, forge_raw, key, validation, NOW, SECRET_256};
use latchkey_jwt::{
    Algorithm, Audience, Claim, Claims, Error, ErrorKind, HmacKey, KeySet, Malformed, Part, Signer,
    Validation, Verifier,
};
use serde::{Deserialize, Serialize};

fn verifier() -> Verifier {
    Verifier::new(key(Algorithm::HS256), validation())
}

fn verify_with(v: &Verifier, token: &str) -> ErrorKind {
    v.verify::<serde_json::Map<String, serde_json::Value>>(token)
        .unwrap_err()
        .into_kind()
}

fn err(token: &str) -> ErrorKind {
    verify_with(&verifier(), token)
}

fn valid_token() -> String {
    Signer::new(key(Algorithm::HS256))
        .sign(&Claims {
            exp: Some(NOW + 100),
            ..Claims::new(())
        })
        .unwrap()
}

fn malformed(part: Part, reason: Malformed) -> ErrorKind {
    ErrorKind::Malformed { part, reason }
}

#[test]
fn baseline_the_valid_token_verifies() {
    let claims: Claims = verifier().verify(&valid_token()).unwrap();
    assert_eq!(claims.exp, Some(NOW + 100));
}

// ---- structure ------------------------------------------------------------------------------

#[test]
fn too_large_is_refused_before_decoding() {
    // Not even a JWS: the size cap must fire first.
    let huge = "!".repeat(8 * 1024 + 1);
    assert_eq!(
        err(&huge),
        ErrorKind::TooLarge {
            len: 8193,
            max: 8192
        }
    );
    let v = Verifier::new(
        key(Algorithm::HS256),
        Validation::builder()
            .now(NOW)
            .max_token_len(64)
            .build()
            .unwrap(),
    );
    assert!(matches!(
        verify_with(&v, &valid_token()),
        ErrorKind::TooLarge { max: 64, .. }
    ));
}

#[test]
fn segment_count_must_be_three() {
    let t = valid_token();
    let seg = malformed(Part::Header, Malformed::SegmentCount);
    assert_eq!(err(&t[..t.rfind('.').unwrap()]), seg);
    assert_eq!(err(&format!("{t}.")), seg);
    assert_eq!(err(&format!("{t}.abc")), seg);
    assert_eq!(err("abc"), seg);
    assert_eq!(err(""), seg);
}

#[test]
fn non_canonical_base64_is_rejected_in_every_segment() {
    let t = valid_token();
    let parts: Vec<&str> = t.split('.').collect();
    // Replaces segment `i`; when it is the header or payload, signs the result properly so that
    // the base64 check (not the signature) is what fails.
    let join = |i: usize, s: &str| {
        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        p[i] = s.to_owned();
        if i < 2 {
            let input = format!("{}.{}", p[0], p[1]);
            p[2] = b64(&common::mac(Algorithm::HS256, SECRET_256, input.as_bytes()));
        }
        p.join(".")
    };
    for (i, part) in [(0, Part::Header), (1, Part::Payload), (2, Part::Signature)] {
        let bad = malformed(part, Malformed::Base64);
        // Padding.
        assert_eq!(err(&join(i, &format!("{}=", parts[i]))), bad, "{part} pad");
        // Standard alphabet characters.
        assert_eq!(
            err(&join(i, &format!("+{}", &parts[i][1..]))),
            bad,
            "{part} +"
        );
        assert_eq!(
            err(&join(i, &format!("/{}", &parts[i][1..]))),
            bad,
            "{part} /"
        );
        // Whitespace.
        assert_eq!(
            err(&join(i, &format!("{} ", parts[i]))),
            bad,
            "{part} space"
        );
        assert_eq!(
            err(&join(i, &format!("{}\n", parts[i]))),
            bad,
            "{part} newline"
        );
        // Impossible length (4n + 1).
        let len1 = if parts[i].len().is_multiple_of(4) {
            format!("{}A", parts[i])
        } else {
            format!("{}{}", parts[i], &"AAAA"[..(5 - parts[i].len() % 4) % 4])
        };
        assert_eq!(len1.len() % 4, 1);
        assert_eq!(err(&join(i, &len1)), bad, "{part} length");
    }
}

#[test]
fn non_zero_trailing_bits_are_rejected() {
    // "e30" is base64url of "{}"; "e31" decodes to the same bytes with a non-zero trailing bit.
    assert_eq!(b64(b"{}"), "e30");
    let t = valid_token();
    // The signature of HS256 is 43 characters: its last character carries 2 unused bits.
    let sig = &t[t.rfind('.').unwrap() + 1..];
    let last = sig.as_bytes()[42];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    assert_eq!(idx & 0b11, 0);
    let tweaked = format!("{}{}", &t[..t.len() - 1], alphabet[idx | 1] as char);
    assert_eq!(err(&tweaked), malformed(Part::Signature, Malformed::Base64));
    let p10 = b64(br#"{"exp":12}"#); // 10 bytes -> 14 chars, last carries 4 unused bits
    let last = p10.as_bytes()[13];
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let p10_bad = format!("{}{}", &p10[..13], alphabet[idx | 1] as char);
    // The payload is only decoded after the signature verifies, so sign it properly.
    let input = format!("{}.{}", b64(br#"{"alg":"HS256"}"#), p10_bad);
    let sig = b64(&common::mac(Algorithm::HS256, SECRET_256, input.as_bytes()));
    assert_eq!(
        err(&format!("{input}.{sig}")),
        malformed(Part::Payload, Malformed::Base64)
    );
}

#[test]
fn invalid_utf8_is_rejected() {
    let t = forge_raw(
        Algorithm::HS256,
        b"{\"alg\":\"HS256\",\"x\":\"\xff\"}",
        b"{}",
    );
    assert_eq!(err(&t), malformed(Part::Header, Malformed::Utf8));
    let t = forge_raw(Algorithm::HS256, br#"{"alg":"HS256"}"#, b"{\"x\":\"\xc3\"}");
    assert_eq!(err(&t), malformed(Part::Payload, Malformed::Utf8));
}

#[test]
fn byte_order_mark_is_rejected() {
    let t = forge_raw(Algorithm::HS256, b"\xEF\xBB\xBF{\"alg\":\"HS256\"}", b"{}");
    assert_eq!(err(&t), malformed(Part::Header, Malformed::ByteOrderMark));
    let t = forge_raw(Algorithm::HS256, br#"{"alg":"HS256"}"#, b"\xEF\xBB\xBF{}");
    assert_eq!(err(&t), malformed(Part::Payload, Malformed::ByteOrderMark));
}

#[test]
fn json_that_is_not_an_object_is_rejected() {
    assert_eq!(
        err(&forge_header(r#"["alg","HS256"]"#)),
        malformed(Part::Header, Malformed::NotAnObject)
    );
    assert_eq!(
        err(&forge(r#""exp""#)),
        malformed(Part::Payload, Malformed::NotAnObject)
    );
    assert_eq!(
        err(&forge("1800000000")),
        malformed(Part::Payload, Malformed::NotAnObject)
    );
}

#[test]
fn invalid_json_is_rejected() {
    assert_eq!(
        err(&forge_header(r#"{"alg":"HS256""#)),
        malformed(Part::Header, Malformed::Json)
    );
    assert_eq!(
        err(&forge(r#"{"exp":1800000100,}"#)),
        malformed(Part::Payload, Malformed::Json)
    );
    assert_eq!(
        err(&forge(r#"{"exp":01}"#)),
        malformed(Part::Payload, Malformed::Json)
    );
    assert_eq!(
        err(&forge(r#"{"exp":1800000100} {}"#)),
        malformed(Part::Payload, Malformed::Json)
    );
    assert_eq!(
        err(&forge(r#"{"x":tru}"#)),
        malformed(Part::Payload, Malformed::Json)
    );
    assert_eq!(err(&forge("")), malformed(Part::Payload, Malformed::Json));
}

#[test]
fn lone_surrogates_are_rejected_even_in_ignored_claims() {
    // serde_json alone accepts these when the member is ignored.
    let lone = malformed(Part::Payload, Malformed::LoneSurrogate);
    assert_eq!(err(&forge(r#"{"exp":1800000100,"x":"\ud800"}"#)), lone);
    assert_eq!(err(&forge(r#"{"exp":1800000100,"x":"\udfff"}"#)), lone);
    assert_eq!(err(&forge(r#"{"exp":1800000100,"\ud800":1}"#)), lone);
    assert_eq!(
        err(&forge_header(r#"{"alg":"HS256","x":"\ud83d"}"#)),
        malformed(Part::Header, Malformed::LoneSurrogate)
    );
    // A proper pair is fine.
    let ok = verifier()
        .verify::<serde_json::Value>(&forge(r#"{"exp":1800000100,"x":"\ud83d\ude00"}"#))
        .unwrap();
    assert_eq!(ok.custom["x"], "😀");
}

#[test]
fn duplicate_member_names_are_rejected_anywhere() {
    assert_eq!(
        err(&forge_header(r#"{"alg":"HS256","alg":"none"}"#)),
        ErrorKind::DuplicateKey { part: Part::Header }
    );
    let dup = ErrorKind::DuplicateKey {
        part: Part::Payload,
    };
    assert_eq!(err(&forge(r#"{"exp":1800000100,"exp":1}"#)), dup);
    // Same name after unescaping.
    assert_eq!(err(&forge(r#"{"exp":1800000100,"\u0065xp":1}"#)), dup);
    // Nested, and in a custom claim the caller's type ignores.
    assert_eq!(err(&forge(r#"{"exp":1800000100,"x":{"a":1,"a":2}}"#)), dup);
    assert_eq!(
        err(&forge(r#"{"exp":1800000100,"x":[{"a":1,"\u0061":2}]}"#)),
        dup
    );
}

#[test]
fn nesting_deeper_than_the_cap_is_rejected() {
    let deep = format!(
        r#"{{"exp":1800000100,"x":{}1{}}}"#,
        "[".repeat(16),
        "]".repeat(16)
    );
    assert_eq!(
        err(&forge(&deep)),
        ErrorKind::NestingTooDeep {
            part: Part::Payload,
            max: 16
        }
    );
    let ok = format!(
        r#"{{"exp":1800000100,"x":{}1{}}}"#,
        "[".repeat(15),
        "]".repeat(15)
    );
    assert!(verifier().verify::<serde_json::Value>(&forge(&ok)).is_ok());
    let deep_header = format!(
        r#"{{"alg":"HS256","x":{}1{}}}"#,
        "[".repeat(16),
        "]".repeat(16)
    );
    assert_eq!(
        err(&forge_header(&deep_header)),
        ErrorKind::NestingTooDeep {
            part: Part::Header,
            max: 16
        }
    );
}

#[test]
fn missing_alg_is_rejected() {
    assert_eq!(
        err(&forge_header(r#"{"typ":"JWT"}"#)),
        ErrorKind::MissingHeader { field: "alg" }
    );
}

#[test]
fn header_parameters_must_have_their_rfc_types() {
    let cases = [
        (r#"{"alg":256}"#, "alg", "a string"),
        (r#"{"alg":"HS256","typ":1}"#, "typ", "a string"),
        (r#"{"alg":"HS256","kid":null}"#, "kid", "a string"),
        (r#"{"alg":"HS256","cty":["JWT"]}"#, "cty", "a string"),
        (
            r#"{"alg":"HS256","crit":[]}"#,
            "crit",
            "a non-empty array of strings",
        ),
        (
            r#"{"alg":"HS256","crit":"exp"}"#,
            "crit",
            "a non-empty array of strings",
        ),
        (
            r#"{"alg":"HS256","crit":[1]}"#,
            "crit",
            "a non-empty array of strings",
        ),
    ];
    for (header, field, expected) in cases {
        assert_eq!(
            err(&forge_header(header)),
            ErrorKind::InvalidHeader { field, expected },
            "{header}"
        );
    }
}

#[test]
fn unknown_crit_is_rejected() {
    assert_eq!(
        err(&forge_header(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#)),
        ErrorKind::UnsupportedCrit
    );
    assert_eq!(
        err(&forge_header(
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#
        )),
        ErrorKind::UnsupportedCrit
    );
}

#[test]
fn alg_none_is_rejected_in_any_case() {
    for alg in ["none", "NONE", "None", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes());
        let payload = b64(format!(r#"{{"exp":{}}}"#, NOW + 100).as_bytes());
        assert_eq!(
            err(&format!("{header}.{payload}.")),
            ErrorKind::NoneAlgorithm,
            "{alg}"
        );
        // Even "signed" with the key.
        assert_eq!(
            err(&forge_header(&format!(r#"{{"alg":"{alg}"}}"#))),
            ErrorKind::NoneAlgorithm
        );
    }
}

#[test]
fn algorithm_must_be_the_keys() {
    let t384 = Signer::new(key(Algorithm::HS384))
        .sign(&Claims {
            exp: Some(NOW + 100),
            ..Claims::new(())
        })
        .unwrap();
    assert_eq!(
        err(&t384),
        ErrorKind::AlgorithmMismatch {
            expected: Algorithm::HS256,
            found: Some(Algorithm::HS384)
        }
    );
    for alg in ["RS512", "ES384", "hs256", "HS256 ", "eddsa", ""] {
        assert_eq!(
            err(&forge_header(&format!(r#"{{"alg":"{alg}"}}"#))),
            ErrorKind::AlgorithmMismatch {
                expected: Algorithm::HS256,
                found: None
            },
            "{alg:?}"
        );
    }
    // An asymmetric algorithm is refused by an HMAC key whatever the crate features.
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        assert_eq!(
            err(&forge_header(&format!(r#"{{"alg":"{alg}"}}"#))),
            ErrorKind::AlgorithmMismatch {
                expected: Algorithm::HS256,
                found: Some(alg)
            },
        );
    }
}

#[test]
fn bad_signatures_are_rejected() {
    let t = valid_token();
    let dot = t.rfind('.').unwrap();
    // Another key.
    let other = HmacKey::from_secret(Algorithm::HS256, &[9u8; 32]).unwrap();
    let v = Verifier::new(other, validation());
    assert_eq!(verify_with(&v, &t), ErrorKind::InvalidSignature);
    // A flipped character in the signature (keeping canonical base64).
    let mut bytes = t.clone().into_bytes();
    bytes[dot + 1] = if bytes[dot + 1] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        err(&String::from_utf8(bytes).unwrap()),
        ErrorKind::InvalidSignature
    );
    // Truncated, empty, too long.
    assert_eq!(err(&t[..t.len() - 3]), ErrorKind::InvalidSignature);
    assert_eq!(err(&t[..=dot]), ErrorKind::InvalidSignature);
    assert_eq!(err(&format!("{t}AAAA")), ErrorKind::InvalidSignature);
    assert_eq!(
        err(&format!("{t}{}", "A".repeat(200))),
        ErrorKind::InvalidSignature
    );
    // A changed payload.
    let other_payload = b64(format!(r#"{{"exp":{}}}"#, NOW + 10_000).as_bytes());
    let parts: Vec<&str> = t.split('.').collect();
    assert_eq!(
        err(&format!("{}.{other_payload}.{}", parts[0], parts[2])),
        ErrorKind::InvalidSignature
    );
}

#[test]
fn the_payload_is_not_parsed_before_the_signature_verifies() {
    // Garbage payload with a wrong signature: the answer is the signature, not the JSON.
    let t = valid_token();
    let parts: Vec<&str> = t.split('.').collect();
    let junk = b64(b"{not json");
    assert_eq!(
        err(&format!("{}.{junk}.{}", parts[0], parts[2])),
        ErrorKind::InvalidSignature
    );
}

// ---- claims ---------------------------------------------------------------------------------

fn claims_token(payload: serde_json::Value) -> String {
    forge(&payload.to_string())
}

#[test]
fn expired_is_rejected_after_the_leeway() {
    // Default leeway 60 s: exp = NOW - 60 is expired, NOW - 59 is not.
    assert_eq!(
        err(&claims_token(serde_json::json!({"exp": NOW - 60}))),
        ErrorKind::Expired
    );
    assert!(verifier()
        .verify::<()>(&claims_token(serde_json::json!({"exp": NOW - 59})))
        .is_ok());
    let strict = Verifier::new(
        key(Algorithm::HS256),
        Validation::builder()
            .now(NOW)
            .leeway(Duration::ZERO)
            .build()
            .unwrap(),
    );
    // RFC 7519 §4.1.4: not accepted *on* or after exp.
    assert_eq!(
        verify_with(&strict, &claims_token(serde_json::json!({"exp": NOW}))),
        ErrorKind::Expired
    );
}

#[test]
fn not_yet_valid_is_rejected() {
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "nbf": NOW + 61}));
    assert_eq!(err(&t), ErrorKind::NotYetValid);
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "nbf": NOW + 60}));
    assert!(verifier().verify::<()>(&t).is_ok());
}

#[test]
fn a_future_iat_is_accepted_by_default() {
    // RFC 7519 §4.1.6: iat is informational.
    for iat in [NOW + 61, NOW + 100_000, u64::MAX] {
        let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": iat}));
        let claims: Claims = verifier().verify(&t).unwrap();
        assert_eq!(claims.iat, Some(iat));
    }
}

#[test]
fn issued_in_the_future_is_rejected_when_opted_in() {
    let v = with(Validation::builder().reject_issued_in_future());
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW + 61}));
    assert_eq!(verify_with(&v, &t), ErrorKind::IssuedInFuture);
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": u64::MAX}));
    assert_eq!(verify_with(&v, &t), ErrorKind::IssuedInFuture);
    // Within the leeway, or absent, it passes.
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW + 60}));
    assert!(v.verify::<()>(&t).is_ok());
    let t = claims_token(serde_json::json!({"exp": NOW + 1000}));
    assert!(v.verify::<()>(&t).is_ok());
    // The leeway applies to it as to exp and nbf.
    let strict = with(
        Validation::builder()
            .reject_issued_in_future()
            .leeway(Duration::ZERO),
    );
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW + 1}));
    assert_eq!(verify_with(&strict, &t), ErrorKind::IssuedInFuture);
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW}));
    assert!(strict.verify::<()>(&t).is_ok());
    // A fractional iat is rounded down before the comparison.
    let t = forge(&format!(r#"{{"exp":{},"iat":{}.9}}"#, NOW + 1000, NOW));
    assert!(strict.verify::<()>(&t).is_ok());
    // It is checked before max_age, and independently of it.
    let both = with(
        Validation::builder()
            .reject_issued_in_future()
            .max_age(Duration::from_secs(300)),
    );
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW + 61}));
    assert_eq!(verify_with(&both, &t), ErrorKind::IssuedInFuture);
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW - 361}));
    assert_eq!(verify_with(&both, &t), ErrorKind::TooOld);
}

#[test]
fn too_old_is_rejected_with_max_age() {
    let v = Verifier::new(
        key(Algorithm::HS256),
        Validation::builder()
            .now(NOW)
            .max_age(Duration::from_secs(300))
            .build()
            .unwrap(),
    );
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW - 361}));
    assert_eq!(verify_with(&v, &t), ErrorKind::TooOld);
    let t = claims_token(serde_json::json!({"exp": NOW + 1000, "iat": NOW - 360}));
    assert!(v.verify::<()>(&t).is_ok());
    // max_age requires iat.
    let t = claims_token(serde_json::json!({"exp": NOW + 1000}));
    assert_eq!(verify_with(&v, &t), ErrorKind::MissingClaim(Claim::Iat));
}

fn with(b: latchkey_jwt::ValidationBuilder) -> Verifier {
    Verifier::new(key(Algorithm::HS256), b.now(NOW).build().unwrap())
}

#[test]
fn wrong_audience_is_rejected() {
    let v = with(Validation::builder().audience("api").audience("admin"));
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "aud": "billing"}));
    assert_eq!(verify_with(&v, &t), ErrorKind::WrongAudience);
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "aud": ["billing", "web"]}));
    assert_eq!(verify_with(&v, &t), ErrorKind::WrongAudience);
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "aud": []}));
    assert_eq!(verify_with(&v, &t), ErrorKind::WrongAudience);
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "aud": ["billing", "admin"]}));
    assert!(v.verify::<()>(&t).is_ok());
    let t = claims_token(serde_json::json!({"exp": NOW + 9}));
    assert_eq!(verify_with(&v, &t), ErrorKind::MissingClaim(Claim::Aud));
}

#[test]
fn an_audience_nobody_asked_about_is_rejected_unless_opted_out() {
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "aud": "api"}));
    assert_eq!(err(&t), ErrorKind::UnexpectedAudience);
    let v = with(Validation::builder().allow_unvalidated_audience());
    assert!(v.verify::<()>(&t).is_ok());
}

#[test]
fn wrong_issuer_is_rejected() {
    let v = with(
        Validation::builder()
            .issuer("https://a")
            .issuer("https://b"),
    );
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "iss": "https://c"}));
    assert_eq!(verify_with(&v, &t), ErrorKind::WrongIssuer);
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "iss": "https://b"}));
    assert!(v.verify::<()>(&t).is_ok());
    let t = claims_token(serde_json::json!({"exp": NOW + 9}));
    assert_eq!(verify_with(&v, &t), ErrorKind::MissingClaim(Claim::Iss));
}

#[test]
fn wrong_subject_is_rejected() {
    let v = with(Validation::builder().subject("user-1"));
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "sub": "user-2"}));
    assert_eq!(verify_with(&v, &t), ErrorKind::WrongSubject);
    let t = claims_token(serde_json::json!({"exp": NOW + 9}));
    assert_eq!(verify_with(&v, &t), ErrorKind::MissingClaim(Claim::Sub));
}

#[test]
fn wrong_or_missing_typ_is_rejected_when_required() {
    let v = with(Validation::builder().typ("at+jwt"));
    let wrong = ErrorKind::WrongType {
        expected: "at+jwt".into(),
    };
    let claims = Claims {
        exp: Some(NOW + 9),
        ..Claims::new(())
    };
    let plain = Signer::new(key(Algorithm::HS256)).sign(&claims).unwrap();
    assert_eq!(verify_with(&v, &plain), wrong);
    let untyped = Signer::new(key(Algorithm::HS256))
        .without_typ()
        .sign(&claims)
        .unwrap();
    assert_eq!(verify_with(&v, &untyped), wrong);
    let typed = Signer::new(key(Algorithm::HS256))
        .with_typ("application/AT+JWT")
        .sign(&claims)
        .unwrap();
    assert!(v.verify::<()>(&typed).is_ok());
}

#[test]
fn missing_required_claims_are_rejected() {
    // exp is required by default.
    let t = claims_token(serde_json::json!({"sub": "x"}));
    assert_eq!(err(&t), ErrorKind::MissingClaim(Claim::Exp));
    let v = with(Validation::builder().required_claims([Claim::Exp, Claim::Jti]));
    let t = claims_token(serde_json::json!({"exp": NOW + 9}));
    assert_eq!(verify_with(&v, &t), ErrorKind::MissingClaim(Claim::Jti));
    // Opting out of exp.
    let v = with(Validation::builder().required_claims([]));
    assert!(v.verify::<()>(&claims_token(serde_json::json!({}))).is_ok());
}

#[test]
fn registered_claims_must_have_their_types() {
    let time = "a NumericDate (a non-negative number of seconds since the epoch)";
    let cases = [
        (serde_json::json!({"exp": "1800000100"}), Claim::Exp, time),
        (serde_json::json!({"exp": -1}), Claim::Exp, time),
        (serde_json::json!({"exp": null}), Claim::Exp, time),
        (
            serde_json::json!({"exp": NOW + 9, "nbf": true}),
            Claim::Nbf,
            time,
        ),
        (
            serde_json::json!({"exp": NOW + 9, "iat": [1]}),
            Claim::Iat,
            time,
        ),
        (
            serde_json::json!({"exp": NOW + 9, "iss": 1}),
            Claim::Iss,
            "a string",
        ),
        (
            serde_json::json!({"exp": NOW + 9, "sub": null}),
            Claim::Sub,
            "a string",
        ),
        (
            serde_json::json!({"exp": NOW + 9, "jti": {}}),
            Claim::Jti,
            "a string",
        ),
        (
            serde_json::json!({"exp": NOW + 9, "aud": 1}),
            Claim::Aud,
            "a string or an array of strings",
        ),
        (
            serde_json::json!({"exp": NOW + 9, "aud": ["a", 1]}),
            Claim::Aud,
            "a string or an array of strings",
        ),
    ];
    for (payload, claim, expected) in cases {
        assert_eq!(
            err(&claims_token(payload.clone())),
            ErrorKind::InvalidClaimType { claim, expected },
            "{payload}"
        );
    }
}

/// A token for hand-written payload JSON, verified at `now` with `exp` not required and the
/// leeway at zero, so the decoded times can be read back exactly.
fn verify_at(now: u64, payload: &str) -> Result<Claims, ErrorKind> {
    let v = Validation::builder()
        .required_claims([])
        .leeway(Duration::ZERO)
        .now(now)
        .build()
        .unwrap();
    Verifier::new(key(Algorithm::HS256), v)
        .verify::<()>(&forge(payload))
        .map_err(Error::into_kind)
}

fn verify_raw(payload: &str) -> Result<Claims, ErrorKind> {
    verify_at(NOW, payload)
}

#[test]
fn numeric_dates_in_every_spelling_decode_to_the_same_second() {
    // RFC 7519 §2: a NumericDate is a JSON numeric value; these all denote 1800000100.
    for spelling in [
        "1800000100",
        "1800000100.0",
        "1800000100.000",
        "1.8000001e9",
        "1.8000001E+9",
        "18000001e2",
        "180000010000e-2",
        "1800000100e0",
    ] {
        for claim in ["exp", "nbf", "iat"] {
            let payload = format!(r#"{{"{claim}":{spelling}}}"#);
            // At this now the date is valid as any of the three (nbf = now is valid).
            let claims = verify_at(1_800_000_100 - u64::from(claim == "exp"), &payload)
                .unwrap_or_else(|e| panic!("{payload}: {e:?}"));
            let got = match claim {
                "exp" => claims.exp,
                "nbf" => claims.nbf,
                _ => claims.iat,
            };
            assert_eq!(got, Some(1_800_000_100), "{payload}");
        }
    }
    // Zero, including negative zero, is the epoch.
    for spelling in ["0", "0.0", "-0", "-0.0", "0e5"] {
        let claims = verify_raw(&format!(r#"{{"iat":{spelling}}}"#)).unwrap();
        assert_eq!(claims.iat, Some(0), "{spelling}");
    }
    // Plain integers keep their full u64 range.
    let claims = verify_raw(r#"{"exp":18446744073709551615}"#).unwrap();
    assert_eq!(claims.exp, Some(u64::MAX));
}

#[test]
fn fractional_numeric_dates_round_towards_the_stricter_side() {
    // exp and iat down, nbf up.
    let claims =
        verify_raw(r#"{"exp":1900000000.5,"nbf":1700000000.25,"iat":1700000000.75}"#).unwrap();
    assert_eq!(claims.exp, Some(1_900_000_000));
    assert_eq!(claims.nbf, Some(1_700_000_001));
    assert_eq!(claims.iat, Some(1_700_000_000));
    let claims = verify_raw(r#"{"exp":1900000000.999,"nbf":1700000000.001}"#).unwrap();
    assert_eq!(claims.exp, Some(1_900_000_000));
    assert_eq!(claims.nbf, Some(1_700_000_001));
    // A whole value written with a fraction is not moved.
    let claims = verify_raw(r#"{"exp":1900000000.0,"nbf":1700000000.0}"#).unwrap();
    assert_eq!(claims.exp, Some(1_900_000_000));
    assert_eq!(claims.nbf, Some(1_700_000_000));

    // What the rounding does to validation, leeway zero, now = NOW.
    // exp half a second after now: floored to now, and a token is not accepted on exp.
    assert_eq!(
        verify_raw(&format!(r#"{{"exp":{NOW}.5}}"#)).unwrap_err(),
        ErrorKind::Expired
    );
    assert!(verify_raw(&format!(r#"{{"exp":{}.5}}"#, NOW + 1)).is_ok());
    // nbf a quarter second after now: ceiled to now + 1, not yet valid.
    assert_eq!(
        verify_raw(&format!(r#"{{"nbf":{}.25}}"#, NOW)).unwrap_err(),
        ErrorKind::NotYetValid
    );
    assert!(verify_raw(&format!(r#"{{"nbf":{}.75}}"#, NOW - 1)).is_ok());
    // iat floored: with max_age 10 s, issued 10.5 s ago is too old (it counts as 11 s).
    let v = with(
        Validation::builder()
            .required_claims([])
            .leeway(Duration::ZERO)
            .max_age(Duration::from_secs(10)),
    );
    let t = forge(&format!(r#"{{"iat":{}.5}}"#, NOW - 11));
    assert_eq!(verify_with(&v, &t), ErrorKind::TooOld);
    let t = forge(&format!(r#"{{"iat":{}.0}}"#, NOW - 10));
    assert!(v.verify::<()>(&t).is_ok());
}

#[test]
fn numeric_dates_out_of_range_are_rejected() {
    let time = "a NumericDate (a non-negative number of seconds since the epoch)";
    for value in [
        // Negative, in every spelling.
        "-1",
        "-1.0",
        "-0.5",
        "-1e3",
        "-9223372036854775808",
        // Not written as a plain integer and after 9999-12-31T23:59:59Z.
        "253402300800.0",
        "253402300799.5",
        "2.534023008e11",
        "9007199254740991.0",
        "1e19",
        "1e300",
        // Above u64::MAX: serde_json reads it as a double.
        "18446744073709551616",
        "100000000000000000000000",
    ] {
        for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
            let payload = format!(r#"{{"{claim}":{value}}}"#);
            assert_eq!(
                verify_raw(&payload).unwrap_err(),
                ErrorKind::InvalidClaimType {
                    claim,
                    expected: time
                },
                "{payload}"
            );
        }
    }
    // The last non-integer spelling accepted is 9999-12-31T23:59:59Z; as a plain integer,
    // anything up to u64::MAX (see the spelling test).
    let claims = verify_raw(r#"{"exp":253402300799.0}"#).unwrap();
    assert_eq!(claims.exp, Some(253_402_300_799));
    let claims = verify_raw(r#"{"exp":9007199254740993}"#).unwrap();
    assert_eq!(claims.exp, Some(9_007_199_254_740_993));
    // JSON has no NaN or infinity: those, and numbers too large even for a double, are not JSON.
    for value in ["NaN", "Infinity", "-Infinity", "1e400"] {
        let payload = format!(r#"{{"exp":{value}}}"#);
        assert_eq!(
            verify_raw(&payload).unwrap_err(),
            malformed(Part::Payload, Malformed::Json),
            "{payload}"
        );
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

#[test]
fn custom_claims_of_the_wrong_shape_are_rejected() {
    let v = verifier();
    let t = claims_token(serde_json::json!({"exp": NOW + 9, "roles": "admin"}));
    assert_eq!(
        v.verify::<Roles>(&t).unwrap_err().into_kind(),
        ErrorKind::InvalidCustomClaims {
            claim: Some("roles".into())
        }
    );
    let t = claims_token(serde_json::json!({"exp": NOW + 9}));
    assert!(matches!(
        v.verify::<Roles>(&t).unwrap_err().into_kind(),
        ErrorKind::InvalidCustomClaims { .. }
    ));
}

#[test]
fn unsupported_algorithm_names_do_not_parse() {
    for name in [
        "HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA",
    ] {
        assert_eq!(name.parse::<Algorithm>().unwrap().as_str(), name);
    }
    for name in [
        "hs256", "RS512", "ES384", "rs256", "EDDSA", "Ed25519", "none", "", "HS256 ",
    ] {
        assert_eq!(
            name.parse::<Algorithm>().unwrap_err().into_kind(),
            ErrorKind::UnsupportedAlgorithm
        );
    }
}

// ---- keys -----------------------------------------------------------------------------------

#[test]
fn short_keys_are_refused() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        assert_eq!(
            HmacKey::from_secret(alg, &vec![1u8; min - 1])
                .unwrap_err()
                .into_kind(),
            ErrorKind::KeyTooShort {
                algorithm: alg,
                min,
                len: min - 1
            }
        );
        assert!(HmacKey::from_secret(alg, &vec![1u8; min]).is_ok());
    }
    assert!(matches!(
        HmacKey::from_secret(Algorithm::HS256, b"")
            .unwrap_err()
            .kind(),
        ErrorKind::KeyTooShort { len: 0, .. }
    ));
}

#[test]
fn hmac_keys_are_never_made_for_asymmetric_algorithms() {
    // Algorithm confusion starts with an HMAC key built from a public key's bytes: refused for
    // every asymmetric algorithm, whatever the length of the "secret".
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        assert_eq!(
            HmacKey::from_secret(alg, &[7u8; 512])
                .unwrap_err()
                .into_kind(),
            ErrorKind::KeyAlgorithmMismatch { algorithm: alg }
        );
        assert_eq!(
            HmacKey::from_base64url(alg, &b64(&[7u8; 64]))
                .unwrap_err()
                .into_kind(),
            ErrorKind::KeyAlgorithmMismatch { algorithm: alg }
        );
    }
}

#[test]
fn keys_in_non_canonical_base64url_are_refused() {
    let good = b64(&[5u8; 32]);
    assert!(HmacKey::from_base64url(Algorithm::HS256, &good).is_ok());
    for bad in [
        format!("{good}="),
        format!("+{}", &good[1..]),
        format!("/{}", &good[1..]),
        format!(" {good}"),
        "%%%".into(),
    ] {
        let e = HmacKey::from_base64url(Algorithm::HS256, &bad).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidKeyEncoding, "{bad}");
        assert!(!e.to_string().contains(&good));
    }
}

fn kid_key(alg: Algorithm, kid: &str) -> HmacKey {
    key(alg).with_kid(kid)
}

#[test]
fn key_sets_refuse_keys_without_kid_and_duplicates() {
    assert_eq!(
        KeySet::new(key(Algorithm::HS256)).unwrap_err().into_kind(),
        ErrorKind::KeyWithoutKid
    );
    let mut set = KeySet::new(kid_key(Algorithm::HS256, "a")).unwrap();
    assert_eq!(
        set.insert(key(Algorithm::HS384)).unwrap_err().into_kind(),
        ErrorKind::KeyWithoutKid
    );
    assert_eq!(
        set.insert(kid_key(Algorithm::HS384, "a"))
            .unwrap_err()
            .into_kind(),
        ErrorKind::DuplicateKid
    );
    assert_eq!(
        set.set_current("zzz").unwrap_err().into_kind(),
        ErrorKind::UnknownKid
    );
    assert_eq!(
        set.remove("a").unwrap_err().into_kind(),
        ErrorKind::RemoveCurrentKey
    );
}

#[test]
fn key_set_rotation_signs_with_current_and_verifies_by_kid() {
    let mut set = KeySet::new(kid_key(Algorithm::HS256, "old")).unwrap();
    let claims = Claims {
        exp: Some(NOW + 9),
        ..Claims::new(())
    };
    let old_token = Signer::from_key_set(&set).sign(&claims).unwrap();
    set.insert(kid_key(Algorithm::HS512, "new")).unwrap();
    set.set_current("new").unwrap();
    let new_token = Signer::from_key_set(&set).sign(&claims).unwrap();
    let v = Verifier::with_key_set(set.clone(), validation());
    assert_eq!(
        v.verify_token::<()>(&old_token).unwrap().header.kid(),
        Some("old")
    );
    let t = v.verify_token::<()>(&new_token).unwrap();
    assert_eq!((t.header.kid(), t.header.alg()), (Some("new"), "HS512"));
    // Retiring the old key stops its tokens.
    set.remove("old").unwrap();
    let v = Verifier::with_key_set(set, validation());
    assert_eq!(verify_with(&v, &old_token), ErrorKind::UnknownKid);
}

#[test]
fn a_key_set_verifier_needs_a_kid() {
    let set = KeySet::new(kid_key(Algorithm::HS256, "a")).unwrap();
    let v = Verifier::with_key_set(set, validation());
    assert_eq!(verify_with(&v, &valid_token()), ErrorKind::MissingKid);
}

#[test]
fn an_unknown_kid_is_rejected() {
    let set = KeySet::new(kid_key(Algorithm::HS256, "a")).unwrap();
    let v = Verifier::with_key_set(set, validation());
    let t = Signer::new(kid_key(Algorithm::HS256, "b"))
        .sign(&Claims {
            exp: Some(NOW + 9),
            ..Claims::new(())
        })
        .unwrap();
    assert_eq!(verify_with(&v, &t), ErrorKind::UnknownKid);
    // A single named key refuses tokens naming another key.
    let v = Verifier::new(kid_key(Algorithm::HS256, "a"), validation());
    assert_eq!(verify_with(&v, &t), ErrorKind::UnknownKid);
}

#[test]
fn the_kids_key_decides_the_algorithm() {
    // Key "a" is HS256; a token that names "a" but says HS512 is refused, even though the set
    // holds an HS512 key too.
    let mut set = KeySet::new(kid_key(Algorithm::HS256, "a")).unwrap();
    set.insert(kid_key(Algorithm::HS512, "b")).unwrap();
    let v = Verifier::with_key_set(set, validation());
    let t = forge_raw(
        Algorithm::HS512,
        br#"{"alg":"HS512","kid":"a"}"#,
        format!(r#"{{"exp":{}}}"#, NOW + 9).as_bytes(),
    );
    assert_eq!(
        verify_with(&v, &t),
        ErrorKind::AlgorithmMismatch {
            expected: Algorithm::HS256,
            found: Some(Algorithm::HS512)
        }
    );
}

// ---- encoding and configuration --------------------------------------------------------------

#[test]
fn claims_that_would_duplicate_a_member_are_not_signed() {
    #[derive(Serialize)]
    struct Sneaky {
        exp: u64,
    }
    let claims = Claims {
        exp: Some(NOW + 9),
        ..Claims::new(Sneaky { exp: u64::MAX })
    };
    assert!(matches!(
        Signer::new(key(Algorithm::HS256))
            .sign(&claims)
            .unwrap_err()
            .kind(),
        ErrorKind::Encode(_)
    ));
    // Custom claims that are not an object.
    assert!(matches!(
        Signer::new(key(Algorithm::HS256))
            .sign(&Claims::new("just a string"))
            .unwrap_err()
            .kind(),
        ErrorKind::Encode(_)
    ));
}

#[test]
fn impossible_validations_are_refused() {
    let cases = [
        Validation::builder().issuer(""),
        Validation::builder().audience(""),
        Validation::builder().subject(""),
        Validation::builder().typ(""),
        Validation::builder()
            .audience("api")
            .allow_unvalidated_audience(),
        Validation::builder().max_age(Duration::ZERO),
        Validation::builder().max_token_len(10),
        Validation::builder().max_depth(0),
        Validation::builder().max_depth(65),
    ];
    for b in cases {
        let dbg = format!("{b:?}");
        assert!(
            matches!(
                b.build().unwrap_err().kind(),
                ErrorKind::InvalidValidation(_)
            ),
            "{dbg}"
        );
    }
}

// ---- hygiene ----------------------------------------------------------------------------------

#[test]
fn errors_and_debug_output_never_contain_secrets_or_token_text() {
    const MARK: &str = "SECRETMARKER";
    let secret = format!("{MARK}{MARK}{MARK}xxxxxxxx");
    let k = HmacKey::from_secret(Algorithm::HS256, secret.as_bytes()).unwrap();
    assert!(!format!("{k:?}").contains(MARK));
    let signer = Signer::new(k.clone());
    assert!(!format!("{signer:?}").contains(MARK));
    let set = KeySet::new(k.clone().with_kid("a")).unwrap();
    let v = Verifier::with_key_set(set, validation());
    assert!(!format!("{v:?}").contains(MARK));

    let tokens = [
        forge_header(&format!(r#"{{"alg":"{MARK}"}}"#)),
        forge_header(&format!(r#"{{"alg":"HS256","kid":"{MARK}"}}"#)),
        forge_header(&format!(r#"{{"alg":"HS256","crit":["{MARK}"]}}"#)),
        forge(&format!(r#"{{"exp":"{MARK}"}}"#)),
        forge(&format!(r#"{{"exp":{},"roles":"{MARK}"}}"#, NOW + 9)),
        forge(&format!(r#"{{"exp":{},"{MARK}":1,"{MARK}":2}}"#, NOW + 9)),
        forge(&format!(r#"{{"exp":{},"aud":"{MARK}"}}"#, NOW + 9)),
    ];
    let single = Verifier::new(k, validation());
    for t in &tokens {
        for e in [
            single.verify::<Roles>(t).unwrap_err(),
            v.verify::<Roles>(t).unwrap_err(),
        ] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(MARK), "{shown}");
            assert!(!shown.contains(t.as_str()));
        }
    }
    // A custom member name that is not a plain identifier is not echoed either.
    let t = forge(&format!(r#"{{"exp":{},"roles":1,"x":1}}"#, NOW + 9));
    let e = verifier().verify::<Roles>(&t).unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::InvalidCustomClaims {
            claim: Some("roles".into())
        }
    );
}

#[test]
fn error_messages_read_well() {
    let e: Error = ErrorKind::Malformed {
        part: Part::Signature,
        reason: Malformed::Base64,
    }
    .into();
    assert_eq!(
        e.to_string(),
        "malformed token signature: not canonical unpadded base64url"
    );
    let e: Error = ErrorKind::MissingClaim(Claim::Exp).into();
    assert_eq!(e.to_string(), "token has no `exp` claim");
    let e: Error = ErrorKind::AlgorithmMismatch {
        expected: Algorithm::HS256,
        found: None,
    }
    .into();
    assert_eq!(
        e.to_string(),
        "token algorithm (unsupported) does not match the key's algorithm HS256"
    );
    let _ = Audience::from("x");
}
