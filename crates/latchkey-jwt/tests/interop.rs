//! Interoperability with the `jsonwebtoken` crate (dev-dependency only): tokens it makes verify
//! here and tokens made here verify there, for HS256, HS384 and HS512, with registered and custom
//! claims.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

mod common;

use common::{secret, NOW};
use jsonwebtoken as jwt;
use latchkey_jwt::{Algorithm, Audience, Claims, HmacKey, Signer, Validation, Verifier};
use serde::{Deserialize, Serialize};

/// The same claims as jsonwebtoken sees them: one flat struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flat {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    roles: Vec<String>,
    tenant: Tenant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tenant {
    id: u32,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Custom {
    roles: Vec<String>,
    tenant: Tenant,
}

fn flat() -> Flat {
    Flat {
        iss: "https://auth.example.com".into(),
        sub: "user-42".into(),
        aud: vec!["api".into(), "billing".into()],
        exp: NOW + 600,
        nbf: NOW - 10,
        iat: NOW - 10,
        jti: "0f1e2d3c".into(),
        roles: vec!["admin".into(), "user".into()],
        tenant: Tenant {
            id: 7,
            name: "Ünïcødé \"quoted\"".into(),
        },
    }
}

fn ours(f: &Flat) -> Claims<Custom> {
    Claims {
        iss: Some(f.iss.clone()),
        sub: Some(f.sub.clone()),
        aud: Some(Audience::Many(f.aud.clone())),
        exp: Some(f.exp),
        nbf: Some(f.nbf),
        iat: Some(f.iat),
        jti: Some(f.jti.clone()),
        custom: Custom {
            roles: f.roles.clone(),
            tenant: f.tenant.clone(),
        },
    }
}

const ALGS: [(Algorithm, jwt::Algorithm); 3] = [
    (Algorithm::HS256, jwt::Algorithm::HS256),
    (Algorithm::HS384, jwt::Algorithm::HS384),
    (Algorithm::HS512, jwt::Algorithm::HS512),
];

fn our_verifier(alg: Algorithm) -> Verifier {
    Verifier::new(
        HmacKey::from_secret(alg, secret(alg)).unwrap(),
        Validation::builder()
            .issuer("https://auth.example.com")
            .audience("api")
            .now(NOW)
            .build()
            .unwrap(),
    )
}

fn their_validation(alg: jwt::Algorithm) -> jwt::Validation {
    let mut v = jwt::Validation::new(alg);
    v.set_audience(&["api"]);
    v.set_issuer(&["https://auth.example.com"]);
    // jsonwebtoken reads the system clock; our NOW is in the future of the test run's clock
    // only if the machine's clock is behind 2027, so give it room either way.
    v.validate_exp = false;
    v.validate_nbf = false;
    v
}

#[test]
fn tokens_from_jsonwebtoken_verify_here() {
    for (ours_alg, their_alg) in ALGS {
        let token = jwt::encode(
            &jwt::Header::new(their_alg),
            &flat(),
            &jwt::EncodingKey::from_secret(secret(ours_alg)),
        )
        .unwrap();
        let claims: Claims<Custom> = our_verifier(ours_alg).verify(&token).unwrap();
        assert_eq!(claims, ours(&flat()), "{ours_alg}");
    }
}

#[test]
fn tokens_from_here_verify_in_jsonwebtoken() {
    for (ours_alg, their_alg) in ALGS {
        let signer = Signer::new(HmacKey::from_secret(ours_alg, secret(ours_alg)).unwrap());
        let token = signer.sign(&ours(&flat())).unwrap();
        let data = jwt::decode::<Flat>(
            &token,
            &jwt::DecodingKey::from_secret(secret(ours_alg)),
            &their_validation(their_alg),
        )
        .unwrap();
        assert_eq!(data.claims, flat(), "{ours_alg}");
        assert_eq!(data.header.alg, their_alg);
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    }
}

#[test]
fn registered_claims_only_round_trip_both_ways() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Registered {
        sub: String,
        exp: u64,
    }
    for (ours_alg, their_alg) in ALGS {
        let theirs = jwt::encode(
            &jwt::Header::new(their_alg),
            &Registered {
                sub: "s".into(),
                exp: NOW + 5,
            },
            &jwt::EncodingKey::from_secret(secret(ours_alg)),
        )
        .unwrap();
        let v = Verifier::new(
            HmacKey::from_secret(ours_alg, secret(ours_alg)).unwrap(),
            Validation::builder().now(NOW).build().unwrap(),
        );
        let claims: Claims = v.verify(&theirs).unwrap();
        assert_eq!(
            (claims.sub.as_deref(), claims.exp),
            (Some("s"), Some(NOW + 5))
        );

        let ours = Signer::new(HmacKey::from_secret(ours_alg, secret(ours_alg)).unwrap())
            .sign(&Claims {
                sub: Some("s".into()),
                exp: Some(NOW + 5),
                ..Claims::new(())
            })
            .unwrap();
        let mut tv = jwt::Validation::new(their_alg);
        tv.validate_exp = false;
        let data =
            jwt::decode::<Registered>(&ours, &jwt::DecodingKey::from_secret(secret(ours_alg)), &tv)
                .unwrap();
        assert_eq!(
            data.claims,
            Registered {
                sub: "s".into(),
                exp: NOW + 5
            }
        );
    }
}

#[test]
fn a_kid_written_by_jsonwebtoken_selects_our_key() {
    let mut header = jwt::Header::new(jwt::Algorithm::HS512);
    header.kid = Some("2026-11".into());
    let token = jwt::encode(
        &header,
        &flat(),
        &jwt::EncodingKey::from_secret(secret(Algorithm::HS512)),
    )
    .unwrap();
    let old = HmacKey::from_secret(Algorithm::HS256, secret(Algorithm::HS256))
        .unwrap()
        .with_kid("2026-10");
    let new = HmacKey::from_secret(Algorithm::HS512, secret(Algorithm::HS512))
        .unwrap()
        .with_kid("2026-11");
    let mut keys = latchkey_jwt::KeySet::new(old).unwrap();
    keys.insert(new).unwrap();
    let v = Verifier::with_key_set(
        keys,
        Validation::builder()
            .audience("api")
            .now(NOW)
            .build()
            .unwrap(),
    );
    let token = v.verify_token::<Custom>(&token).unwrap();
    assert_eq!(token.header.kid(), Some("2026-11"));
}

/// An issuer that writes times as floats (JavaScript's `Date.now() / 1000`, Python's
/// `time.time()`): the payload is written by hand and signed independently of latchkey-jwt, and
/// by jsonwebtoken from a struct with `f64` times; both verify, with the times rounded towards
/// the stricter side (`exp` and `iat` down, `nbf` up).
#[test]
fn tokens_with_float_times_verify() {
    let payload = format!(
        r#"{{"iss":"https://auth.example.com","aud":"api","exp":{}.75,"nbf":{}.25,"iat":{}.25}}"#,
        NOW + 600,
        NOW - 10,
        NOW - 10,
    );
    let by_hand = common::forge_raw(
        Algorithm::HS256,
        br#"{"alg":"HS256","typ":"JWT"}"#,
        payload.as_bytes(),
    );

    #[derive(Serialize)]
    struct FloatTimes {
        iss: &'static str,
        aud: &'static str,
        exp: f64,
        nbf: f64,
        iat: f64,
    }
    #[allow(clippy::cast_precision_loss)] // NOW is far below 2^53
    let t = |s: u64, frac: f64| s as f64 + frac;
    let by_jsonwebtoken = jwt::encode(
        &jwt::Header::new(jwt::Algorithm::HS256),
        &FloatTimes {
            iss: "https://auth.example.com",
            aud: "api",
            exp: t(NOW + 600, 0.75),
            nbf: t(NOW - 10, 0.25),
            iat: t(NOW - 10, 0.25),
        },
        &jwt::EncodingKey::from_secret(secret(Algorithm::HS256)),
    )
    .unwrap();

    for token in [by_hand, by_jsonwebtoken] {
        let claims: Claims = our_verifier(Algorithm::HS256).verify(&token).unwrap();
        assert_eq!(claims.exp, Some(NOW + 600));
        assert_eq!(claims.nbf, Some(NOW - 9));
        assert_eq!(claims.iat, Some(NOW - 10));
    }
}
