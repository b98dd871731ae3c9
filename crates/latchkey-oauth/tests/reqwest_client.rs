//! `ReqwestClient` keeps the `HttpClient` contract against a real loopback server: redirects
//! are returned, not followed; bodies stop at the cap; slow answers time out; Basic
//! credentials are form-encoded first (RFC 6749 §2.3.1).
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use latchkey_oauth::{HttpClient, HttpError, ReqwestClient};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_redirect_is_returned_and_its_target_never_contacted() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let target = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "evil" }
    }))
    .await;
    let location = format!("{target}/.well-known/openid-configuration");
    let origin = serve(Router::new().route(
        "/.well-known/openid-configuration",
        get(move || async move { (StatusCode::FOUND, [(header::LOCATION, location)]) }),
    ))
    .await;
    let http = ReqwestClient::new().unwrap();
    let response = http
        .get(&format!("{origin}/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    // Discovery refuses it, and nothing reached the target.
    assert!(matches!(
        latchkey_oauth::ProviderMetadata::discover(&http, &origin).await,
        Err(latchkey_oauth::DiscoveryError::Status(302))
    ));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bodies_stop_at_the_cap_and_slow_answers_time_out() {
    let base = serve(
        Router::new()
            .route("/big", get(|| async { "x".repeat(4096) }))
            .route(
                "/chunked",
                get(|| async {
                    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>("y".repeat(1024)));
                    axum::body::Body::from_stream(futures_stream(chunks))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route(
                "/keys",
                get(|| async { ([(header::CACHE_CONTROL, "max-age=600")], "{}") }),
            ),
    )
    .await;
    let http = ReqwestClient::with_limits(Duration::from_millis(300), 1024).unwrap();
    assert!(matches!(
        http.get(&format!("{base}/big")).await,
        Err(HttpError::TooLarge)
    ));
    assert!(matches!(
        http.get(&format!("{base}/chunked")).await,
        Err(HttpError::TooLarge)
    ));
    assert!(matches!(
        http.get(&format!("{base}/slow")).await,
        Err(HttpError::Timeout)
    ));
    let keys = http.get(&format!("{base}/keys")).await.unwrap();
    assert_eq!(keys.cache_control.as_deref(), Some("max-age=600"));
    assert_eq!(keys.body, b"{}");
}

fn futures_stream<I: Iterator + Send + 'static>(items: I) -> impl futures::Stream<Item = I::Item> {
    futures::stream::iter(items)
}

#[tokio::test]
async fn basic_credentials_are_form_encoded_first() {
    let base = serve(Router::new().route(
        "/token",
        post(|headers: HeaderMap, body: String| async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let kind = headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            format!("{auth}\n{kind}\n{body}").into_response()
        }),
    ))
    .await;
    let http = ReqwestClient::new().unwrap();
    let response = http
        .post_form(
            &format!("{base}/token"),
            &[("grant_type", "authorization_code"), ("code", "a b&c")],
            Some(("my client", "s3:cr%t")),
        )
        .await
        .unwrap();
    let text = String::from_utf8(response.body).unwrap();
    let mut lines = text.lines();
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("my+client:s3%3Acr%25t");
    assert_eq!(lines.next().unwrap(), format!("Basic {expected}"));
    assert_eq!(lines.next().unwrap(), "application/x-www-form-urlencoded");
    assert_eq!(
        lines.next().unwrap(),
        "grant_type=authorization_code&code=a+b%26c"
    );
    // The response's Debug shows no body (token responses hold tokens).
    let again = http
        .post_form(&format!("{base}/token"), &[("code", "secret-code")], None)
        .await
        .unwrap();
    assert!(!format!("{again:?}").contains("secret-code"));
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let http = ReqwestClient::new().unwrap();
    assert!(matches!(
        http.get(&format!("http://{addr}/")).await,
        Err(HttpError::Transport(_))
    ));
}
