//! The bearer-JWT extractors end to end through an actix-web `App` (in-process).

use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use latchkey_actix::{Bearer, MaybeBearer};
use latchkey_jwt::{Algorithm, Claims, HmacKey, Signer, Validation, Verifier};
use serde::{Deserialize, Serialize};

const SECRET: [u8; 32] = [0x42; 32];
const NOW: u64 = 1_800_000_000;

#[derive(Debug, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

fn verifier() -> web::Data<Verifier> {
    let key = HmacKey::from_secret(Algorithm::HS256, &SECRET).expect("test fixture");
    let validation = Validation::builder()
        .audience("api")
        .now(NOW)
        .build()
        .expect("test fixture");
    web::Data::new(Verifier::new(key, validation))
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

async fn optional(MaybeBearer(claims): MaybeBearer) -> String {
    claims
        .and_then(|claims| claims.sub)
        .unwrap_or_else(|| "anonymous".into())
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

async fn send(request: TestRequest, with_verifier: bool) -> Reply {
    let mut app = App::new()
        .route("/required", web::get().to(required))
        .route("/optional", web::get().to(optional));
    if with_verifier {
        app = app.app_data(verifier());
    }
    let app = test::init_service(app).await;
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("test fixture").to_owned());
    let body = test::read_body(response).await;
    Reply {
        status,
        challenge,
        body: String::from_utf8(body.to_vec()).expect("test fixture"),
    }
}

async fn call(path: &str, authorization: Option<&str>) -> Reply {
    let mut request = TestRequest::get().uri(path);
    if let Some(value) = authorization {
        request = request.insert_header((header::AUTHORIZATION, value));
    }
    send(request, true).await
}

#[actix_web::test]
async fn a_valid_token_gives_its_claims() {
    let token = good_token();
    let reply = call("/required", Some(&format!("Bearer {token}"))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "user-7:admin")
    );
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let reply = call("/required", Some(&format!("bearer {token}"))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[actix_web::test]
async fn no_token_is_401_with_a_bare_challenge() {
    for authorization in [None, Some("Basic dXNlcjpwYXNz")] {
        let reply = call("/required", authorization).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.challenge.as_deref(), Some("Bearer"));
        assert_eq!(reply.body, r#"{"error":"unauthorized"}"#);
    }
}

#[actix_web::test]
async fn every_bad_token_is_the_same_opaque_401() {
    let cases = latchkey_testkit::adapter::refused_bearer_headers(
        &good_token(),
        &token_with(&SECRET, NOW - 3600, "api"),
        &token_with(&SECRET, NOW + 600, "other"),
        &token_with(&[0x43; 32], NOW + 600, "api"),
    );
    for authorization in &cases {
        for path in ["/required", "/optional"] {
            let reply = call(path, Some(authorization)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:.40}"
            );
            assert_eq!(
                reply.challenge.as_deref(),
                Some(r#"Bearer error="invalid_token""#),
                "{path} {authorization:.40}"
            );
            // Opaque: the code only. No reason, no claim, no token text, no key.
            assert_eq!(
                reply.body, r#"{"error":"invalid_token"}"#,
                "{path} {authorization:.40}"
            );
        }
    }
}

#[actix_web::test]
async fn optional_bearer() {
    let reply = call("/optional", None).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let reply = call("/optional", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let reply = call("/optional", Some(&format!("Bearer {}", good_token()))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "user-7")
    );
}

#[actix_web::test]
async fn two_authorization_headers_are_refused() {
    let token = good_token();
    let request = TestRequest::get()
        .uri("/required")
        .append_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .append_header((header::AUTHORIZATION, format!("Bearer {token}")));
    let reply = send(request, true).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
}

#[actix_web::test]
async fn a_token_without_a_verifier_in_the_app_is_an_opaque_500() {
    let request = TestRequest::get()
        .uri("/required")
        .insert_header((header::AUTHORIZATION, format!("Bearer {}", good_token())));
    let reply = send(request, false).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.challenge, None);
    assert_eq!(reply.body, r#"{"error":"internal_error"}"#);
}
