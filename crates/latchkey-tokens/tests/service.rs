//! Every rejection path of `TokenService` that does not depend on the store backend, plus the
//! shape of the tokens and the redaction of secrets.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_testkit::tokens::{ManualClock, START};
use latchkey_tokens::jwt::dangerous::{decode_header_unverified, decode_unverified};
use latchkey_tokens::jwt::{Algorithm, Claims, ErrorKind, HmacKey, KeySet, Signer};
use latchkey_tokens::store::{
    AccessCheck, AccessStatus, Epoch, FamilyView, NewFamily, RotateOutcome, RotateRequest,
};
use latchkey_tokens::{
    Checks, ConfigError, FamilyId, IssueError, MemoryTokenStore, RefreshError, RefreshKey,
    StoreError, SubjectTag, TokenService, TokenStore, VerifyError,
};
use serde_json::{json, Value};

const ACCESS_SECRET: [u8; 32] = [0x11; 32];
const REFRESH_SECRET: [u8; 32] = [0x22; 32];

fn access_key(kid: &str, secret: &[u8]) -> HmacKey {
    HmacKey::from_secret(Algorithm::HS256, secret)
        .unwrap()
        .with_kid(kid)
}

fn keys() -> KeySet {
    KeySet::new(access_key("k1", &ACCESS_SECRET)).unwrap()
}

fn refresh_key() -> RefreshKey {
    RefreshKey::from_secret(&REFRESH_SECRET).unwrap()
}

fn service_on(store: Arc<dyn TokenStore>, clock: &ManualClock) -> TokenService {
    TokenService::builder(store, keys(), refresh_key())
        .issuer("https://auth.test")
        .audience("api")
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn service() -> (TokenService, ManualClock) {
    let clock = ManualClock::new(START);
    (service_on(Arc::new(MemoryTokenStore::new()), &clock), clock)
}

fn invalid(result: Result<latchkey_tokens::AccessToken<Value>, VerifyError>) -> ErrorKind {
    match result {
        Err(VerifyError::Invalid(err)) => err.into_kind(),
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

/// Signs `claims` like the service does, but with any typ/key: what an attacker holding a token
/// of another kind (or the key, for the shape tests) could present.
fn forge(typ: &str, key: HmacKey, claims: Value, sub: &str, iss: &str, aud: &str) -> String {
    Signer::new(key)
        .with_typ(typ)
        .sign(&Claims {
            iss: Some(iss.into()),
            sub: Some(sub.into()),
            aud: Some(aud.into()),
            exp: Some(START + 600),
            iat: Some(START),
            jti: Some("j".into()),
            ..Claims::new(claims)
        })
        .unwrap()
}

#[tokio::test]
async fn access_tokens_have_the_rfc_9068_shape() {
    let (tokens, _) = service();
    let pair = tokens
        .issue("alice", &json!({"scope": "read"}))
        .await
        .unwrap();
    let header = decode_header_unverified(pair.access_token()).unwrap();
    assert_eq!(header.typ(), Some("at+jwt"));
    assert_eq!(header.alg(), "HS256");
    assert_eq!(header.kid(), Some("k1"));
    let token = decode_unverified::<Value>(pair.access_token()).unwrap();
    let c = token.claims;
    assert_eq!(c.iss.as_deref(), Some("https://auth.test"));
    assert_eq!(c.sub.as_deref(), Some("alice"));
    assert!(c.aud.unwrap().contains("api"));
    assert_eq!(c.iat, Some(START));
    assert_eq!(c.exp, Some(START + 15 * 60), "default lifetime 15 min");
    assert_eq!(c.jti.unwrap().len(), 22, "128-bit jti");
    assert_eq!(c.custom["sid"], json!(pair.family().to_base64url()));
    assert_eq!(c.custom["sep"], json!(0));
    assert_eq!(c.custom["scope"], json!("read"));
    assert_eq!(pair.expires_in(), 900);
    assert_eq!(pair.token_type(), "Bearer");
    assert_eq!(pair.refresh_expires_in(), 14 * 24 * 3600);
    assert_eq!(pair.refresh_token().len(), 87);
    assert!(!pair.refresh_token().contains('.'), "opaque, not a JWT");
    // Two logins: different families, different jtis.
    let other = tokens.issue("alice", &()).await.unwrap();
    assert_ne!(other.family(), pair.family());
    assert_eq!(other.family().subject_tag(), SubjectTag::of("alice"));
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token_and_vice_versa() {
    let (tokens, _) = service();
    let pair = tokens.issue("alice", &()).await.unwrap();
    let kind = invalid(tokens.verify(pair.refresh_token(), Checks::NONE).await);
    assert!(matches!(kind, ErrorKind::Malformed { .. }), "{kind:?}");
    assert!(matches!(
        tokens.refresh(pair.access_token()).await,
        Err(RefreshError::Unknown)
    ));
}

#[tokio::test]
async fn a_jwt_of_another_type_signed_with_the_same_key_is_refused() {
    let (tokens, _) = service();
    let pair = tokens.issue("alice", &()).await.unwrap();
    let sid = pair.family().to_base64url();
    let claims = json!({"sid": sid, "sep": 0});
    let key = || access_key("k1", &ACCESS_SECRET);
    // The very same claims, with typ JWT (an ID token, say): refused.
    let id_token = forge(
        "JWT",
        key(),
        claims.clone(),
        "alice",
        "https://auth.test",
        "api",
    );
    let kind = invalid(tokens.verify(&id_token, Checks::NONE).await);
    assert!(matches!(kind, ErrorKind::WrongType { .. }), "{kind:?}");
    // No typ at all: refused.
    let untyped = Signer::new(key())
        .without_typ()
        .sign(&Claims {
            sub: Some("alice".into()),
            exp: Some(START + 600),
            ..Claims::new(claims.clone())
        })
        .unwrap();
    let kind = invalid(tokens.verify(&untyped, Checks::NONE).await);
    assert!(matches!(kind, ErrorKind::WrongType { .. }), "{kind:?}");
    // The control: the same forge with at+jwt passes, so the typ was the only difference.
    let ok = forge("at+jwt", key(), claims, "alice", "https://auth.test", "api");
    tokens.verify::<Value>(&ok, Checks::ALL).await.unwrap();
}

#[tokio::test]
async fn wrong_issuer_audience_key_and_claims_are_refused() {
    let (tokens, clock) = service();
    let pair = tokens.issue("alice", &()).await.unwrap();
    let sid = pair.family().to_base64url();
    let good = json!({"sid": sid, "sep": 0});
    let key = || access_key("k1", &ACCESS_SECRET);
    type Expect = fn(&ErrorKind) -> bool;
    let cases: Vec<(String, Expect)> = vec![
        (
            forge(
                "at+jwt",
                key(),
                good.clone(),
                "alice",
                "https://evil",
                "api",
            ),
            |k| matches!(k, ErrorKind::WrongIssuer),
        ),
        (
            forge(
                "at+jwt",
                key(),
                good.clone(),
                "alice",
                "https://auth.test",
                "other",
            ),
            |k| matches!(k, ErrorKind::WrongAudience),
        ),
        (
            forge(
                "at+jwt",
                access_key("k1", &[0x33; 32]),
                good.clone(),
                "alice",
                "https://auth.test",
                "api",
            ),
            |k| matches!(k, ErrorKind::InvalidSignature),
        ),
        (
            forge(
                "at+jwt",
                access_key("k9", &ACCESS_SECRET),
                good.clone(),
                "alice",
                "https://auth.test",
                "api",
            ),
            |k| matches!(k, ErrorKind::UnknownKid),
        ),
        (
            forge(
                "at+jwt",
                key(),
                json!({"sid": "short", "sep": 0}),
                "alice",
                "https://auth.test",
                "api",
            ),
            |k| matches!(k, ErrorKind::InvalidCustomClaims { claim: Some(c) } if c == "sid"),
        ),
        (
            forge(
                "at+jwt",
                key(),
                json!({"sep": 0}),
                "alice",
                "https://auth.test",
                "api",
            ),
            |k| matches!(k, ErrorKind::InvalidCustomClaims { .. }),
        ),
    ];
    for (i, (token, expected)) in cases.iter().enumerate() {
        let kind = invalid(tokens.verify(token, Checks::NONE).await);
        assert!(expected(&kind), "case {i}: {kind:?}");
    }
    // Expiry: valid one second before exp, refused at and after it (leeway 0).
    clock.set(START + 899);
    tokens
        .verify::<Value>(pair.access_token(), Checks::NONE)
        .await
        .unwrap();
    clock.set(START + 901);
    let kind = invalid(tokens.verify(pair.access_token(), Checks::NONE).await);
    assert!(matches!(kind, ErrorKind::Expired), "{kind:?}");
    // Garbage.
    for junk in ["", "a.b.c", "eyJ.eyJ.sig"] {
        invalid(tokens.verify(junk, Checks::NONE).await);
    }
}

#[tokio::test]
async fn forged_and_foreign_refresh_tokens_are_unknown() {
    let (tokens, clock) = service();
    let pair = tokens.issue("alice", &()).await.unwrap();
    let mut forged = pair.refresh_token().to_owned().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for token in [forged.as_str(), "", "x", &"A".repeat(87)] {
        assert!(matches!(
            tokens.refresh(token).await,
            Err(RefreshError::Unknown)
        ));
    }
    // A service with another refresh key does not know these tokens.
    let foreign = TokenService::builder(
        tokens.store().clone(),
        keys(),
        RefreshKey::from_secret(&[0x44; 32]).unwrap(),
    )
    .issuer("https://auth.test")
    .audience("api")
    .clock(clock.clone())
    .build()
    .unwrap();
    assert!(matches!(
        foreign.refresh(pair.refresh_token()).await,
        Err(RefreshError::Unknown)
    ));
    // The genuine token is untouched by all of this.
    assert_eq!(
        tokens
            .refresh(pair.refresh_token())
            .await
            .unwrap()
            .generation(),
        2
    );
}

#[tokio::test]
async fn key_rotation_for_both_token_kinds() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let old = service_on(store.clone(), &clock);
    let pair = old.issue("alice", &()).await.unwrap();

    let mut rotated_keys = keys();
    rotated_keys.insert(access_key("k2", &[0x55; 32])).unwrap();
    rotated_keys.set_current("k2").unwrap();
    let new = TokenService::builder(
        store,
        rotated_keys,
        RefreshKey::from_secret(&[0x66; 32]).unwrap(),
    )
    .issuer("https://auth.test")
    .audience("api")
    .previous_refresh_key(refresh_key())
    .clock(clock.clone())
    .build()
    .unwrap();
    // Old tokens still work under the new keys...
    new.verify::<Value>(pair.access_token(), Checks::ALL)
        .await
        .unwrap();
    let next = new.refresh(pair.refresh_token()).await.unwrap();
    // ...and new ones are minted under the new keys, which the old service does not know.
    assert_eq!(
        decode_header_unverified(next.access_token()).unwrap().kid(),
        Some("k2")
    );
    assert!(old
        .verify::<Value>(next.access_token(), Checks::NONE)
        .await
        .is_err());
    assert!(matches!(
        old.refresh(next.refresh_token()).await,
        Err(RefreshError::Unknown)
    ));
    // Within the grace window the old token's replay gets the new-key successor too.
    assert_eq!(
        new.refresh(pair.refresh_token())
            .await
            .unwrap()
            .refresh_token(),
        next.refresh_token()
    );
}

#[tokio::test]
async fn issue_refuses_bad_subjects_and_claims() {
    let (tokens, _) = service();
    for (subject, claims) in [
        ("", json!({})),
        ("alice", json!([1, 2])),
        ("alice", json!("scalar")),
        ("alice", json!({"sub": "mallory"})),
        ("alice", json!({"sid": "x"})),
        ("alice", json!({"sep": 9})),
        ("alice", json!({"exp": 1})),
    ] {
        match tokens.issue(subject, &claims).await {
            Err(IssueError::InvalidClaims(_)) => {}
            other => panic!("{subject:?} {claims}: {other:?}"),
        }
    }
}

#[test]
fn builder_refuses_impossible_configurations() {
    fn ok(b: latchkey_tokens::TokenServiceBuilder) -> latchkey_tokens::TokenServiceBuilder {
        b.issuer("i").audience("a")
    }
    let build =
        |f: fn(latchkey_tokens::TokenServiceBuilder) -> latchkey_tokens::TokenServiceBuilder| {
            f(TokenService::builder(
                Arc::new(MemoryTokenStore::new()),
                keys(),
                refresh_key(),
            ))
            .build()
        };
    assert!(matches!(
        build(|b| b.audience("api")),
        Err(ConfigError::MissingIssuerOrAudience)
    ));
    assert!(matches!(
        build(|b| b.issuer("i")),
        Err(ConfigError::MissingIssuerOrAudience)
    ));
    assert!(matches!(
        build(|b| b.issuer("").audience("api")),
        Err(ConfigError::MissingIssuerOrAudience)
    ));
    assert!(matches!(
        build(|b| ok(b).access_ttl(Duration::ZERO)),
        Err(ConfigError::Lifetime(_))
    ));
    assert!(matches!(
        build(|b| ok(b).idle_lifetime(Duration::from_millis(500))),
        Err(ConfigError::Lifetime(_))
    ));
    assert!(matches!(
        build(|b| ok(b).idle_lifetime(Duration::from_secs(31 * 24 * 3600))),
        Err(ConfigError::Lifetime(_))
    ));
    assert!(matches!(
        build(|b| ok(b)
            .idle_lifetime(Duration::from_secs(30))
            .grace(Duration::from_secs(30))),
        Err(ConfigError::Lifetime(_))
    ));
    assert!(build(|b| ok(b).grace(Duration::ZERO)).is_ok());
}

#[tokio::test]
async fn nothing_secret_in_debug_or_errors() {
    let (tokens, _) = service();
    let pair = tokens.issue("alice", &()).await.unwrap();
    let texts = [
        format!("{pair:?}"),
        format!("{tokens:?}"),
        format!("{:?}", refresh_key()),
        format!("{:?}", tokens.refresh("garbage").await.unwrap_err()),
        format!(
            "{:?}",
            tokens
                .verify::<Value>(pair.refresh_token(), Checks::NONE)
                .await
                .unwrap_err()
        ),
        tokens
            .verify::<Value>(pair.refresh_token(), Checks::NONE)
            .await
            .unwrap_err()
            .to_string(),
    ];
    let tag = &pair.refresh_token()[40..];
    let signature = pair.access_token().rsplit('.').next().unwrap();
    for text in &texts {
        assert!(!text.contains(tag), "refresh token in {text}");
        assert!(!text.contains(signature), "access token in {text}");
        assert!(
            !text.contains("17, 17, 17") && !text.contains("34, 34"),
            "key in {text}"
        );
    }
    assert!(texts[0].contains("[redacted]"));
}

/// A store that is down: every method fails.
#[derive(Debug)]
struct DownStore;

#[async_trait]
impl TokenStore for DownStore {
    async fn create_family(&self, _: &FamilyId, _: &NewFamily) -> Result<FamilyView, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn rotate(&self, _: &FamilyId, _: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn revoke_family(&self, _: &FamilyId, _: u64) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn revoke_subject(&self, _: &SubjectTag, _: u64, _: u64) -> Result<Epoch, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn deny_jti(&self, _: &SubjectTag, _: &str, _: u64, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
    async fn check_access(&self, _: &AccessCheck<'_>) -> Result<AccessStatus, StoreError> {
        Err(StoreError::Timeout)
    }
}

#[tokio::test]
async fn a_store_outage_is_never_taken_for_a_bad_token() {
    let clock = ManualClock::new(START);
    let up = service_on(Arc::new(MemoryTokenStore::new()), &clock);
    let pair = up.issue("alice", &()).await.unwrap();
    let down = service_on(Arc::new(DownStore), &clock);

    let err = down.refresh(pair.refresh_token()).await.unwrap_err();
    assert!(matches!(
        err,
        RefreshError::StoreUnavailable(StoreError::Timeout)
    ));
    assert!(
        !err.is_final(),
        "an outage must not clear the refresh cookie"
    );
    assert!(matches!(
        down.verify::<Value>(pair.access_token(), Checks::SUBJECT_EPOCH)
            .await,
        Err(VerifyError::StoreUnavailable(_))
    ));
    // The stateless level needs no store.
    down.verify::<Value>(pair.access_token(), Checks::NONE)
        .await
        .unwrap();
    assert!(matches!(
        down.issue("alice", &()).await,
        Err(IssueError::Store(StoreError::Timeout))
    ));
    assert!(down.revoke(pair.refresh_token(), None).await.is_err());
    assert!(down.revoke(pair.access_token(), None).await.is_err());
    // An unknown token needs no store: still not an error.
    down.revoke("junk", None).await.unwrap();
    assert!(down.revoke_subject("alice").await.is_err());
}

#[tokio::test]
async fn a_generation_the_store_never_reached_is_unknown_and_changes_nothing() {
    let store = MemoryTokenStore::new();
    let family = FamilyId::generate(&SubjectTag::of("alice"));
    let record = NewFamily::new("alice".into(), "{}".into(), START, START + 100, START + 200);
    store.create_family(&family, &record).await.unwrap();
    assert!(matches!(
        store.create_family(&family, &record).await,
        Err(StoreError::Conflict)
    ));
    let ahead = RotateRequest::new(5, START + 1, 100, 30);
    assert_eq!(
        store.rotate(&family, &ahead).await.unwrap(),
        RotateOutcome::Unknown
    );
    let current = RotateRequest::new(1, START + 1, 100, 30);
    assert!(matches!(
        store.rotate(&family, &current).await.unwrap(),
        RotateOutcome::Rotated(v) if v.generation == 2
    ));
    let other = FamilyId::generate(&SubjectTag::of("alice"));
    assert_eq!(
        store.rotate(&other, &current).await.unwrap(),
        RotateOutcome::Unknown
    );
}

#[tokio::test]
async fn claims_the_signer_refuses_leave_no_family_behind() {
    let (tokens, _) = service();
    // 20 levels of nesting: a JSON object, but deeper than any verifier accepts.
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!({ "n": deep });
    }
    match tokens.issue("alice", &json!({ "deep": deep })).await {
        Err(IssueError::Sign(err)) => {
            assert!(matches!(err.kind(), ErrorKind::Encode(_)), "{err:?}");
        }
        other => panic!("expected a signing error, got {other:?}"),
    }
}

#[test]
fn token_type_hints_parse_only_their_rfc_7009_names() {
    use latchkey_tokens::TokenTypeHint;
    assert_eq!(
        TokenTypeHint::from_name("access_token"),
        Some(TokenTypeHint::AccessToken)
    );
    assert_eq!(
        TokenTypeHint::from_name("refresh_token"),
        Some(TokenTypeHint::RefreshToken)
    );
    for other in ["", "Access_Token", "id_token", "refresh"] {
        assert_eq!(TokenTypeHint::from_name(other), None, "{other}");
    }
}
