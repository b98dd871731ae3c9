//! The bearer-JWT extractor end to end through an axum `Router` (in-process, `oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use latchkey_axum::Bearer;
use latchkey_jwt::{Algorithm, Claims, HmacKey, Signer, Validation, Verifier};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const SECRET: [u8; 32] = [0x42; 32];
const NOW: u64 = 1_800_000_000;

#[derive(Debug, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

fn verifier() -> Arc<Verifier> {
    let key = HmacKey::from_secret(Algorithm::HS256, &SECRET).expect("test fixture");
    let validation = Validation::builder()
        .audience("api")
        .now(NOW)
        .build()
        .expect("test fixture");
    Arc::new(Verifier::new(key, validation))
}

fn token_with(secret: &[u8], exp: u64, aud: &str) -> String {
    let key = HmacKey::from_secret(Algorithm::HS256, secret).expect("test fixture");
    let claims = Claims {
        sub: Some("user-7".into()),
        aud: Some(aud.into()),
        exp: Some(exp),
        ..Claims::new(Roles {
            roles: vec!["admin".into()],
        })
    };
    Signer::new(key).sign(&claims).expect("test fixture")
}

fn good_token() -> String {
    token_with(&SECRET, NOW + 600, "api")
}

async fn required(Bearer(claims): Bearer<Roles>) -> String {
    format!(
        "{}:{}",
        claims.sub.unwrap_or_default(),
        claims.custom.roles.join(",")
    )
}

async fn optional(bearer: Option<Bearer>) -> String {
    match bearer {
        Some(Bearer(claims)) => claims.sub.unwrap_or_default(),
        None => "anonymous".into(),
    }
}

fn app() -> Router {
    Router::new()
        .route("/required", get(required))
        .route("/optional", get(optional))
        .with_state(verifier())
}

async fn call(path: &str, authorization: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app()
        .oneshot(request.body(Body::empty()).expect("test fixture"))
        .await
        .expect("test fixture");
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("test fixture").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("test fixture")
        .to_bytes();
    (
        status,
        challenge,
        String::from_utf8(body.to_vec()).expect("test fixture"),
    )
}

#[tokio::test]
async fn a_valid_token_gives_its_claims() {
    let token = good_token();
    let (status, _, body) = call("/required", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "user-7:admin");
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let (status, _, _) = call("/required", Some(&format!("bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    for authorization in [None, Some("Basic dXNlcjpwYXNz")] {
        let (status, challenge, body) = call("/required", authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body, r#"{"error":"unauthorized"}"#);
    }
}

#[tokio::test]
async fn every_bad_token_is_the_same_opaque_401() {
    let cases = latchkey_testkit::adapter::refused_bearer_headers(
        &good_token(),
        &token_with(&SECRET, NOW - 3600, "api"),
        &token_with(&SECRET, NOW + 600, "other"),
        &token_with(&[0x43; 32], NOW + 600, "api"),
    );
    for authorization in &cases {
        let (status, challenge, body) = call("/required", Some(authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:.40}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{authorization:.40}"
        );
        // Opaque: the code only. No reason, no claim, no token text, no key.
        assert_eq!(body, r#"{"error":"invalid_token"}"#, "{authorization:.40}");
        // And the optional form refuses it too rather than treating it as anonymous.
        let (status, _, body) = call("/optional", Some(authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:.40}");
        assert_eq!(body, r#"{"error":"invalid_token"}"#);
    }
}

#[tokio::test]
async fn optional_bearer() {
    let (status, _, body) = call("/optional", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    let (status, _, body) = call("/optional", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    let (status, _, body) = call("/optional", Some(&format!("Bearer {}", good_token()))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "user-7"));
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let token = good_token();
    let request = Request::get("/required")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("test fixture");
    let response = app().oneshot(request).await.expect("test fixture");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
