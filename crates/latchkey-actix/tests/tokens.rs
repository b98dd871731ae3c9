//! The token extractors and responses end to end through an actix-web `App` (in-process): every
//! rejection, both transports, racing refreshes and the refresh-cookie rule.
#![cfg(feature = "tokens")]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use latchkey_actix::tokens::{
    Access, MaybeAccess, RefreshFailure, RefreshGrant, Reply, TokenResponse,
};
use latchkey_testkit::tokens::{service, ManualClock, START};
use latchkey_testkit::{FaultyTokenStore, UNAVAILABLE_DETAIL};
use latchkey_tokens::transport::{TokenTransport, MAX_REFRESH_BODY};
use latchkey_tokens::{MemoryTokenStore, TokenPair, TokenService};
use serde_json::{json, Value};

async fn me(Access(access): Access) -> String {
    access.subject().to_owned()
}

async fn maybe(MaybeAccess(access): MaybeAccess) -> String {
    access.map_or_else(|| "anonymous".to_owned(), |a| a.subject().to_owned())
}

async fn refresh(
    tokens: web::Data<TokenService>,
    grant: RefreshGrant,
) -> Result<TokenResponse, RefreshFailure> {
    grant.refresh(&tokens).await
}

async fn logout(transport: web::Data<TokenTransport>) -> Reply {
    Reply(transport.logout_reply())
}

struct Fixture {
    tokens: TokenService,
    store: Arc<FaultyTokenStore>,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(START);
    let store = Arc::new(FaultyTokenStore::new(Arc::new(MemoryTokenStore::new())));
    let events = Arc::new(Mutex::new(Vec::new()));
    let tokens = service(store.clone(), &clock, Duration::from_secs(30), &events);
    Fixture {
        tokens,
        store,
        clock,
    }
}

struct Answer {
    status: StatusCode,
    cookies: Vec<String>,
    challenge: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn deletes_refresh_cookie(&self) -> bool {
        self.cookies
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    }
}

async fn answer(response: ServiceResponse) -> Answer {
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    Answer {
        status,
        cookies,
        challenge,
        body,
    }
}

impl Fixture {
    async fn pair(&self) -> TokenPair {
        self.tokens.issue("alice", &json!({})).await.unwrap()
    }

    async fn send(&self, request: TestRequest) -> Answer {
        let transport = TokenTransport::builder()
            .access_cookie("access_token")
            .build()
            .unwrap();
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(self.tokens.clone()))
                .app_data(web::Data::new(transport))
                .route("/me", web::get().to(me))
                .route("/maybe", web::get().to(maybe))
                .route("/refresh", web::post().to(refresh))
                .route("/logout", web::post().to(logout)),
        )
        .await;
        answer(app.call(request.to_request()).await.unwrap()).await
    }
}

fn refresh_request(cookie: Option<&str>, body: String) -> TestRequest {
    let mut request = TestRequest::post()
        .uri("/refresh")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body);
    if let Some(token) = cookie {
        request = request.insert_header((header::COOKIE, format!("refresh_token={token}")));
    }
    request
}

fn get(path: &str, authorization: Option<String>) -> TestRequest {
    let request = TestRequest::get().uri(path);
    match authorization {
        Some(value) => request.insert_header((header::AUTHORIZATION, value)),
        None => request,
    }
}

#[actix_web::test]
async fn access_from_bearer_or_cookie_and_every_rejection() {
    let f = fixture();
    let pair = f.pair().await;
    let ok = f
        .send(get("/me", Some(format!("Bearer {}", pair.access_token()))))
        .await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "alice"));
    let ok = f
        .send(get("/me", None).insert_header((
            header::COOKIE,
            format!("access_token={}", pair.access_token()),
        )))
        .await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "alice"));

    let missing = f.send(get("/me", None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.challenge.as_deref(), Some("Bearer"));
    for value in [
        "Bearer".to_owned(),
        "Bearer a b".to_owned(),
        format!("Bearer {}", pair.refresh_token()),
    ] {
        let refused = f.send(get("/me", Some(value.clone()))).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            refused.challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(refused.body, r#"{"error":"invalid_token"}"#);
    }
    f.store.set_down(true);
    let down = f
        .send(get("/me", Some(format!("Bearer {}", pair.access_token()))))
        .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.body, r#"{"error":"temporarily_unavailable"}"#);
    assert!(!down.body.contains(UNAVAILABLE_DETAIL));
}

#[actix_web::test]
async fn maybe_access_is_none_without_a_token_and_refuses_a_bad_one() {
    let f = fixture();
    let pair = f.pair().await;
    assert_eq!(f.send(get("/maybe", None)).await.body, "anonymous");
    let ok = f
        .send(get(
            "/maybe",
            Some(format!("Bearer {}", pair.access_token())),
        ))
        .await;
    assert_eq!(ok.body, "alice");
    let bad = f.send(get("/maybe", Some("Bearer x.y.z".to_owned()))).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn missing_app_data_is_a_500() {
    let app = test::init_service(
        App::new()
            .route("/me", web::get().to(me))
            .route("/refresh", web::post().to(refresh)),
    )
    .await;
    let response = app
        .call(get("/me", Some("Bearer a.b.c".into())).to_request())
        .await
        .unwrap();
    let me = answer(response).await;
    assert_eq!(me.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(me.body, r#"{"error":"internal_error"}"#);
    let response = app
        .call(refresh_request(Some("x"), String::new()).to_request())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn refresh_by_cookie_or_body_and_racing_duplicates() {
    let f = fixture();
    let pair = f.pair().await;
    let first = f
        .send(refresh_request(Some(pair.refresh_token()), String::new()))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.cookies.len(), 2, "{:?}", first.cookies);
    assert!(first.json().get("refresh_token").is_none());
    // A racing duplicate of the same cookie: the same successor, nothing deleted.
    let second = f
        .send(refresh_request(Some(pair.refresh_token()), String::new()))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(!second.deletes_refresh_cookie(), "{:?}", second.cookies);
    assert_eq!(first.cookies[0], second.cookies[0]);

    let pair = f.pair().await;
    let body = json!({ "refresh_token": pair.refresh_token() }).to_string();
    let by_body = f.send(refresh_request(None, body)).await;
    assert_eq!(by_body.status, StatusCode::OK);
    assert!(by_body.cookies.is_empty(), "{:?}", by_body.cookies);
    assert!(by_body.json()["refresh_token"].is_string());
}

#[actix_web::test]
async fn malformed_refresh_requests_are_invalid_request() {
    let f = fixture();
    let pair = f.pair().await;
    let token = pair.refresh_token();
    let oversized = format!(
        r#"{{"refresh_token":"{token}","pad":"{}"}}"#,
        "x".repeat(MAX_REFRESH_BODY)
    );
    for (cookie, body) in [
        (None, String::new()),
        (None, oversized.clone()),
        (Some(token), oversized),
        (None, "{\"refresh_token\":".to_owned()),
        (None, "\u{0}\u{1}".to_owned()),
        (Some(token), json!({ "refresh_token": token }).to_string()),
    ] {
        let refused = f.send(refresh_request(cookie, body.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body:.40}");
        assert!(refused.cookies.is_empty());
        assert_eq!(refused.json(), json!({ "error": "invalid_request" }));
    }
    let ok = f.send(refresh_request(Some(token), String::new())).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "nothing above consumed the token"
    );
}

#[actix_web::test]
async fn dead_cookie_is_deleted_but_an_outage_keeps_it() {
    let f = fixture();
    let pair = f.pair().await;
    assert_eq!(
        f.send(refresh_request(Some(pair.refresh_token()), String::new()))
            .await
            .status,
        StatusCode::OK
    );
    f.store.set_down(true);
    let down = f
        .send(refresh_request(Some(pair.refresh_token()), String::new()))
        .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        down.cookies.is_empty(),
        "the cookie is kept: {:?}",
        down.cookies
    );
    assert_eq!(down.json(), json!({ "error": "temporarily_unavailable" }));
    f.store.set_down(false);

    f.clock.advance(31);
    let reused = f
        .send(refresh_request(Some(pair.refresh_token()), String::new()))
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert!(reused.deletes_refresh_cookie(), "{:?}", reused.cookies);
    assert_eq!(reused.json(), json!({ "error": "invalid_grant" }));
    let body = json!({ "refresh_token": pair.refresh_token() }).to_string();
    let by_body = f.send(refresh_request(None, body)).await;
    assert_eq!(by_body.status, StatusCode::BAD_REQUEST);
    assert!(by_body.cookies.is_empty());
}

#[actix_web::test]
async fn logout_reply_deletes_the_cookies() {
    let f = fixture();
    let out = f.send(TestRequest::post().uri("/logout")).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.deletes_refresh_cookie());
    assert_eq!(out.cookies.len(), 2);
}
