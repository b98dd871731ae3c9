//! Sign and verify-with-validation of one realistic HS256 token, latchkey-jwt side by side with
//! `jsonwebtoken` 11, `jwt-simple` 0.15, and the floors: the least work any HS256 JWT library must
//! do. Results and the command line are in BENCHMARKS.md.
//!
//! - sign floor: HMAC-SHA256, keyed per call, over the same signing input, plus base64url of the
//!   tag (no claim serialization at all).
//! - RS256 and ES256 (`verify-RS256`, `sign-RS256`, `verify-ES256`, `sign-ES256`): latchkey-jwt
//!   and `jsonwebtoken` on the same key (the test keys of latchkey-jwt) and the same token, with
//!   the same validation; in the interleaved pass too.
//!
//! - verify floor: base64url-decode of the signature and payload, HMAC-SHA256 from a pre-keyed state,
//!   constant-time compare, serde parse of the payload into the same flat struct — no header
//!   parsing, no claim validation, no strictness checks.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use latchkey::jwt::{Algorithm, Audience, Claims, HmacKey, Signer, Validation, Verifier};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const SECRET: &[u8; 32] = b"bench secret, 32 bytes long!!!!!";
const ISS: &str = "https://auth.example.com";
const AUD: &str = "api";

/// The claims as one flat struct (jsonwebtoken and the floors).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flat {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    roles: Vec<String>,
}

/// latchkey's custom part and jwt-simple's custom claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn flat(now: u64) -> Flat {
    Flat {
        sub: "user-1234567890".into(),
        iss: ISS.into(),
        aud: AUD.into(),
        exp: now + 3600,
        iat: now,
        jti: "3f1c1d2e-8b9a-4c6d-9e0f-1a2b3c4d5e6f".into(),
        roles: vec!["admin".into(), "billing".into()],
    }
}

fn ours(f: &Flat) -> Claims<Roles> {
    Claims {
        iss: Some(f.iss.clone()),
        sub: Some(f.sub.clone()),
        aud: Some(Audience::One(f.aud.clone())),
        exp: Some(f.exp),
        iat: Some(f.iat),
        jti: Some(f.jti.clone()),
        ..Claims::new(Roles {
            roles: f.roles.clone(),
        })
    }
}

fn jwt_simple_claims(f: &Flat) -> jwt_simple::prelude::JWTClaims<Roles> {
    use jwt_simple::prelude::*;
    let mut c = Claims::with_custom_claims(
        Roles {
            roles: f.roles.clone(),
        },
        Duration::from_secs(3600),
    )
    .with_issuer(&f.iss)
    .with_subject(&f.sub)
    .with_audience(&f.aud)
    .with_jwt_id(&f.jti);
    c.invalid_before = None;
    c.issued_at = Some(UnixTimeStamp::from_secs(f.iat));
    c.expires_at = Some(UnixTimeStamp::from_secs(f.exp));
    c
}

fn benches(c: &mut Criterion) {
    use jwt_simple::prelude::MACLike as _;

    let f = flat(now());

    // latchkey-jwt
    let key = HmacKey::from_secret(Algorithm::HS256, SECRET).expect("32-byte key");
    let signer = Signer::new(key.clone());
    let verifier = Verifier::new(
        key,
        Validation::builder()
            .issuer(ISS)
            .audience(AUD)
            .build()
            .expect("valid validation"),
    );
    let our_claims = ours(&f);
    let token = signer.sign(&our_claims).expect("sign");

    // jsonwebtoken
    let jt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let jt_enc = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let jt_dec = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut jt_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jt_validation.set_issuer(&[ISS]);
    jt_validation.set_audience(&[AUD]);

    // jwt-simple
    let js_key = jwt_simple::prelude::HS256Key::from_bytes(SECRET);
    let js_claims = jwt_simple_claims(&f);
    let js_options = jwt_simple::prelude::VerificationOptions {
        allowed_issuers: Some([ISS.to_owned()].into_iter().collect()),
        allowed_audiences: Some([AUD.to_owned()].into_iter().collect()),
        ..Default::default()
    };

    // Every library must verify every library's token (same claims, same key).
    {
        let jt_token = jsonwebtoken::encode(&jt_header, &f, &jt_enc).expect("jsonwebtoken sign");
        let js_token = js_key
            .authenticate(js_claims.clone())
            .expect("jwt-simple sign");
        for t in [&token, &jt_token, &js_token] {
            verifier.verify::<Roles>(t).expect("latchkey verifies");
            jsonwebtoken::decode::<Flat>(t, &jt_dec, &jt_validation)
                .expect("jsonwebtoken verifies");
            js_key
                .verify_token::<Roles>(t, Some(js_options.clone()))
                .expect("jwt-simple verifies");
        }
    }

    // Each operation is written once and run by both passes: criterion's groups, then the
    // interleaved pass (see `latchkey_benches::interleaved`), whose ratios to latchkey-jwt are
    // measured within the same few milliseconds.
    let signing_input = &token[..token.rfind('.').expect("three segments")];
    let sign_ours = || signer.sign(black_box(&our_claims)).expect("sign");
    let sign_jt =
        || jsonwebtoken::encode(black_box(&jt_header), black_box(&f), &jt_enc).expect("sign");
    let sign_js = || {
        js_key
            .authenticate(black_box(js_claims.clone()))
            .expect("sign")
    };
    let sign_fl = || sign_floor(signing_input);
    let pre_keyed = Hmac::<Sha256>::new_from_slice(SECRET).expect("any length");
    let verify_ours = || verifier.verify::<Roles>(black_box(&token)).expect("verify");
    let verify_jt = || {
        jsonwebtoken::decode::<Flat>(black_box(&token), &jt_dec, &jt_validation).expect("verify")
    };
    let verify_js = || {
        js_key
            .verify_token::<Roles>(black_box(&token), Some(js_options.clone()))
            .expect("verify")
    };
    let verify_fl = || verify_floor(&pre_keyed, &token);

    let mut g = c.benchmark_group("sign");
    g.bench_function("latchkey-jwt", |b| b.iter(sign_ours));
    g.bench_function("jsonwebtoken", |b| b.iter(sign_jt));
    g.bench_function("jwt-simple", |b| b.iter(sign_js));
    g.bench_function("floor", |b| b.iter(sign_fl));
    g.finish();
    let mut g = c.benchmark_group("verify");
    g.bench_function("latchkey-jwt", |b| b.iter(verify_ours));
    g.bench_function("jsonwebtoken", |b| b.iter(verify_jt));
    g.bench_function("jwt-simple", |b| b.iter(verify_js));
    g.bench_function("floor", |b| b.iter(verify_fl));
    g.finish();

    if !latchkey_benches::interleaved_wanted() {
        return;
    }
    use latchkey_benches::batch;
    let (mut s0, mut s1, mut s2, mut s3) = (
        batch(sign_ours),
        batch(sign_jt),
        batch(sign_js),
        batch(sign_fl),
    );
    latchkey_benches::interleaved(
        "sign",
        &mut [
            ("latchkey-jwt", &mut s0),
            ("jsonwebtoken", &mut s1),
            ("jwt-simple", &mut s2),
            ("floor", &mut s3),
        ],
        &[0],
        None,
        300,
        2_000,
    );
    let (mut v0, mut v1, mut v2, mut v3) = (
        batch(verify_ours),
        batch(verify_jt),
        batch(verify_js),
        batch(verify_fl),
    );
    latchkey_benches::interleaved(
        "verify",
        &mut [
            ("latchkey-jwt", &mut v0),
            ("jsonwebtoken", &mut v1),
            ("jwt-simple", &mut v2),
            ("floor", &mut v3),
        ],
        &[0],
        None,
        300,
        1_000,
    );
}

/// The sign floor: HMAC-SHA256 keyed per call over the signing input, base64url of the tag.
fn sign_floor(signing_input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(black_box(SECRET)).expect("any length");
    mac.update(black_box(signing_input).as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The verify floor: base64url-decode, pre-keyed HMAC check, serde parse into a flat struct.
fn verify_floor(pre_keyed: &Hmac<Sha256>, token: &str) -> Flat {
    let t: &str = black_box(token);
    let (input, sig) = t.rsplit_once('.').expect("three segments");
    let payload = &input[input.find('.').expect("three segments") + 1..];
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
    let mut mac = pre_keyed.clone();
    mac.update(input.as_bytes());
    mac.verify_slice(&sig).expect("signature");
    let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice::<Flat>(&json).expect("claims")
}

/// The test keys of latchkey-jwt: public, test-only.
const RSA_PEM: &str = include_str!("../crates/latchkey-jwt/tests/keys/rsa2048.pem");
const RSA_PUB_PEM: &str = include_str!("../crates/latchkey-jwt/tests/keys/rsa2048.pub.pem");
const EC_PEM: &str = include_str!("../crates/latchkey-jwt/tests/keys/p256.pem");
const EC_PUB_PEM: &str = include_str!("../crates/latchkey-jwt/tests/keys/p256.pub.pem");

/// RS256 and ES256: latchkey-jwt against jsonwebtoken, same key, same token, same validation.
fn asymmetric(c: &mut Criterion) {
    use latchkey::jwt::{EcdsaSigningKey, EcdsaVerifyingKey, RsaSigningKey, RsaVerifyingKey};
    use latchkey::jwt::{SigningKey, VerifyingKey};

    let f = flat(now());
    let our_claims = ours(&f);
    let validation = || {
        Validation::builder()
            .issuer(ISS)
            .audience(AUD)
            .build()
            .expect("valid validation")
    };
    let cases: [(
        &str,
        SigningKey,
        VerifyingKey,
        jsonwebtoken::Algorithm,
        jsonwebtoken::EncodingKey,
        jsonwebtoken::DecodingKey,
    ); 2] = [
        (
            "RS256",
            RsaSigningKey::from_pkcs8_pem(Algorithm::RS256, RSA_PEM)
                .expect("RSA key")
                .into(),
            RsaVerifyingKey::from_public_key_pem(Algorithm::RS256, RSA_PUB_PEM)
                .expect("RSA public key")
                .into(),
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("RSA key"),
            jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUB_PEM.as_bytes())
                .expect("RSA public key"),
        ),
        (
            "ES256",
            EcdsaSigningKey::from_pkcs8_pem(EC_PEM)
                .expect("P-256 key")
                .into(),
            EcdsaVerifyingKey::from_public_key_pem(EC_PUB_PEM)
                .expect("P-256 public key")
                .into(),
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::EncodingKey::from_ec_pem(EC_PEM.as_bytes()).expect("P-256 key"),
            jsonwebtoken::DecodingKey::from_ec_pem(EC_PUB_PEM.as_bytes())
                .expect("P-256 public key"),
        ),
    ];
    for (name, sk, vk, jt_alg, jt_enc, jt_dec) in cases {
        let signer = Signer::new(sk);
        let verifier = Verifier::new(vk, validation());
        let jt_header = jsonwebtoken::Header::new(jt_alg);
        let mut jt_validation = jsonwebtoken::Validation::new(jt_alg);
        jt_validation.set_issuer(&[ISS]);
        jt_validation.set_audience(&[AUD]);
        // One token, verified by both (and each library's token by the other, as a check).
        let token = signer.sign(&our_claims).expect("sign");
        let jt_token = jsonwebtoken::encode(&jt_header, &f, &jt_enc).expect("jsonwebtoken sign");
        for t in [&token, &jt_token] {
            verifier.verify::<Roles>(t).expect("latchkey verifies");
            jsonwebtoken::decode::<Flat>(t, &jt_dec, &jt_validation)
                .expect("jsonwebtoken verifies");
        }

        let sign_ours = || signer.sign(black_box(&our_claims)).expect("sign");
        let sign_jt =
            || jsonwebtoken::encode(black_box(&jt_header), black_box(&f), &jt_enc).expect("sign");
        let verify_ours = || verifier.verify::<Roles>(black_box(&token)).expect("verify");
        let verify_jt = || {
            jsonwebtoken::decode::<Flat>(black_box(&token), &jt_dec, &jt_validation)
                .expect("verify")
        };

        let mut g = c.benchmark_group(format!("verify-{name}"));
        g.bench_function("latchkey-jwt", |b| b.iter(verify_ours));
        g.bench_function("jsonwebtoken", |b| b.iter(verify_jt));
        g.finish();
        let mut g = c.benchmark_group(format!("sign-{name}"));
        g.bench_function("latchkey-jwt", |b| b.iter(sign_ours));
        g.bench_function("jsonwebtoken", |b| b.iter(sign_jt));
        g.finish();

        if !latchkey_benches::interleaved_wanted() {
            continue;
        }
        use latchkey_benches::batch;
        // RSA signing costs about a millisecond, verifying tens of microseconds: fewer
        // operations per round than for HMAC, the same 300 rounds.
        let (verify_n, sign_n) = if name == "RS256" { (20, 2) } else { (20, 20) };
        let (mut v0, mut v1) = (batch(verify_ours), batch(verify_jt));
        latchkey_benches::interleaved(
            &format!("verify {name}"),
            &mut [("latchkey-jwt", &mut v0), ("jsonwebtoken", &mut v1)],
            &[0, 1],
            None,
            300,
            verify_n,
        );
        let (mut s0, mut s1) = (batch(sign_ours), batch(sign_jt));
        latchkey_benches::interleaved(
            &format!("sign {name}"),
            &mut [("latchkey-jwt", &mut s0), ("jsonwebtoken", &mut s1)],
            &[0, 1],
            None,
            300,
            sign_n,
        );
    }
}

criterion_group!(jwt, benches, asymmetric);
criterion_main!(jwt);
