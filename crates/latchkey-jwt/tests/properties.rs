//! Property tests: arbitrary claims round-trip through sign and verify for every algorithm, any
//! single-character change to a valid token is rejected, and arbitrary input never panics the
//! verifier.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use common::{key, NOW};
use latchkey_jwt::{Algorithm, Audience, Claims, Signer, Validation, Verifier};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Custom {
    name: String,
    count: i64,
    ratio: Option<bool>,
    tags: Vec<String>,
    extra: BTreeMap<String, i64>,
}

fn alg() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::HS256),
        Just(Algorithm::HS384),
        Just(Algorithm::HS512)
    ]
}

fn audience() -> impl Strategy<Value = Audience> {
    prop_oneof![
        any::<String>().prop_map(Audience::One),
        proptest::collection::vec(any::<String>(), 0..4).prop_map(Audience::Many),
    ]
}

prop_compose! {
    fn claims()(
        iss in proptest::option::of(any::<String>()),
        sub in proptest::option::of(any::<String>()),
        aud in proptest::option::of(audience()),
        exp in proptest::option::of(NOW + 61..=u64::MAX),
        nbf in proptest::option::of(0..=NOW),
        // Any iat: a future one is informational (RFC 7519 §4.1.6) and accepted by default.
        iat in proptest::option::of(any::<u64>()),
        jti in proptest::option::of("[a-zA-Z0-9_-]{0,40}"),
        name in any::<String>(),
        count in any::<i64>(),
        ratio in any::<Option<bool>>(),
        tags in proptest::collection::vec(any::<String>(), 0..5),
        extra in proptest::collection::btree_map(any::<String>(), any::<i64>(), 0..5),
    ) -> Claims<Custom> {
        Claims { iss, sub, aud, exp, nbf, iat, jti, custom: Custom { name, count, ratio, tags, extra } }
    }
}

fn verifier(alg: Algorithm) -> Verifier {
    Verifier::new(
        key(alg),
        Validation::builder()
            .required_claims([])
            .allow_unvalidated_audience()
            .max_token_len(1 << 20)
            .now(NOW)
            .build()
            .unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_claims_round_trip(alg in alg(), claims in claims()) {
        let token = Signer::new(key(alg)).sign(&claims).unwrap();
        let back: Claims<Custom> = verifier(alg).verify(&token).unwrap();
        prop_assert_eq!(back, claims);
    }

    #[test]
    fn any_single_character_change_is_rejected(
        alg in alg(),
        claims in claims(),
        at in any::<prop::sample::Index>(),
        c in prop::char::any(),
    ) {
        let token = Signer::new(key(alg)).sign(&claims).unwrap();
        let i = at.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(i..=i, &c.to_string());
        prop_assume!(changed != token);
        prop_assert!(verifier(alg).verify::<Custom>(&changed).is_err());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = verifier(Algorithm::HS256).verify::<serde_json::Value>(&s);
        let _ = latchkey_jwt::dangerous::decode_unverified::<serde_json::Value>(&s);
    }

    #[test]
    fn arbitrary_base64url_segments_never_panic(
        h in proptest::collection::vec(any::<u8>(), 0..64),
        p in proptest::collection::vec(any::<u8>(), 0..64),
        s in "[A-Za-z0-9_-]{0,90}",
    ) {
        let token = format!("{}.{}.{s}", common::b64(&h), common::b64(&p));
        let _ = verifier(Algorithm::HS256).verify::<serde_json::Value>(&token);
        // Correctly signed garbage reaches the payload parser.
        let forged = common::forge_raw(Algorithm::HS256, br#"{"alg":"HS256"}"#, &p);
        let _ = verifier(Algorithm::HS256).verify::<serde_json::Value>(&forged);
        let _ = verifier(Algorithm::HS256).verify::<Custom>(&forged);
    }

    #[test]
    fn json_text_from_arbitrary_values_is_accepted_when_it_is_an_object(v in json_value()) {
        // Whatever serde_json writes is valid, duplicate-free JSON: the strict pre-scan must accept
        // it exactly when it is an object within the depth cap.
        let text = serde_json::to_string(&v).unwrap();
        let forged = common::forge_raw(Algorithm::HS256, br#"{"alg":"HS256"}"#, text.as_bytes());
        let r = verifier(Algorithm::HS256).verify::<serde_json::Value>(&forged);
        let registered_ok = v.as_object().is_some_and(|o| {
            ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"].iter().all(|k| !o.contains_key(*k))
        });
        if registered_ok && depth(&v) <= 16 {
            prop_assert!(r.is_ok(), "{:?} {}", r, text);
        } else if !v.is_object() {
            prop_assert!(r.is_err());
        }
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(20, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
