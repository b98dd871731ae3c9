//! End to end, "Sign in with …" on the login service against an in-process OpenID provider
//! (latchkey-testkit's `MockOidc`): the browser's hops one by one (no redirect followed by the
//! client), the session that results, account linking by (`iss`, `sub`), and the refusals the
//! service answers. Every body runs against both servers (`on_both_servers!`).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use latchkey::session::{MemoryStore, SameSite, SessionStore};
use latchkey_examples::login::env;
use latchkey_testkit::oidc::MockOidc;
use reqwest::StatusCode;
use serde_json::Value;
use support::{bind, devices, services_on, sqlite_accounts, test_config, Framework, Server};

on_both_servers!(
    signing_in_with_the_provider_logs_the_browser_in,
    a_callback_in_another_browser_is_refused_and_logs_nobody_in,
    the_flow_works_with_a_strict_session_cookie,
    no_provider_means_404s,
);

/// The service with `mock` as its provider; the provider knows the service's callback URL.
async fn start(
    framework: Framework,
    same_site: SameSite,
) -> (Server, Arc<MockOidc>, tempfile::TempDir) {
    let listener = bind();
    let addr = listener.local_addr().unwrap();
    let redirect_uri = format!("http://{addr}/oidc/callback");
    let mock = Arc::new(
        MockOidc::builder()
            .client("login-test", "login-test-secret")
            .redirect_uri(&redirect_uri)
            .start()
            .await,
    );
    let sessions: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut config = test_config();
    config.same_site = same_site;
    let oidc = env::sign_in_with_mock(
        Arc::clone(&mock),
        "Mock",
        &redirect_uri,
        &config,
        Arc::clone(&sessions),
    )
    .await
    .unwrap();
    let (accounts, dir) = sqlite_accounts().await;
    let mut services = services_on(sessions, accounts);
    services.oidc = Some(oidc);
    let server = Server::start_on(framework, listener, services, config).await;
    (server, mock, dir)
}

/// A browser: a cookie jar, no redirect followed (each hop is checked).
fn browser(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `/oidc/start` → the provider → the callback URL it sends the browser back to.
async fn to_provider_and_back(server: &Server, browser: &reqwest::Client, next: &str) -> String {
    let start = browser
        .get(server.url(&format!("/oidc/start?next={next}")))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    assert!(
        start.headers().get("set-cookie").is_some(),
        "the binding cookie"
    );
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    let back = browser.get(authorize).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&server.url("/oidc/callback?")),
        "{callback}"
    );
    callback
}

async fn me(server: &Server, browser: &reqwest::Client) -> (StatusCode, Value) {
    let response = browser.get(server.url("/me")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn signing_in_with_the_provider_logs_the_browser_in(framework: Framework) {
    let (server, mock, _dir) = start(framework, SameSite::Lax).await;
    let provider = browser("b/1")
        .get(server.url("/oidc"))
        .send()
        .await
        .unwrap();
    assert_eq!(provider.json::<Value>().await.unwrap()["name"], "Mock");

    let laptop = browser("laptop/1.0");
    let callback = to_provider_and_back(&server, &laptop, "%2Fdevices").await;
    let landed = laptop.get(callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::OK);
    let page = landed.text().await.unwrap();
    assert!(page.contains(r#"content="0;url=/devices""#), "{page}");
    let (status, body) = me(&server, &laptop).await;
    assert_eq!(status, StatusCode::OK);
    let account = body["id"].as_str().unwrap().to_owned();

    // The same session as a password login: listed under "my devices" with its agent.
    let devices = devices(&server, &laptop).await;
    let list = devices["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{devices}");
    assert_eq!(list[0]["user_agent"], "laptop/1.0");

    // Another browser, the same person at the provider: the same account, two devices.
    let phone = browser("phone/1.0");
    let callback = to_provider_and_back(&server, &phone, "%2F").await;
    assert_eq!(
        phone.get(callback).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(me(&server, &phone).await.1["id"], account.as_str());

    // Someone else with the same e-mail address: another account.
    mock.sign_in_as("another-subject", "jane.doe@example.com", true);
    let other = browser("other/1.0");
    let callback = to_provider_and_back(&server, &other, "%2F").await;
    assert_eq!(
        other.get(callback).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (_, body) = me(&server, &other).await;
    assert_ne!(body["id"], account.as_str());

    // An open redirect through next is not possible.
    let callback = to_provider_and_back(&server, &laptop, "%2F%2Fevil.example").await;
    let page = laptop
        .get(callback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"content="0;url=/""#), "{page}");
    server.stop().await;
}

async fn a_callback_in_another_browser_is_refused_and_logs_nobody_in(framework: Framework) {
    let (server, mock, _dir) = start(framework, SameSite::Lax).await;
    // The attacker goes to the provider and sends the victim the callback link (login CSRF).
    let attacker = browser("attacker/1.0");
    let callback = to_provider_and_back(&server, &attacker, "%2F").await;
    let victim = browser("victim/1.0");
    let refused = victim.get(&callback).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "not_this_browser");
    assert_eq!(me(&server, &victim).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        mock.token_requests(),
        0,
        "no code was exchanged for the victim"
    );

    // The callback replayed after the real browser used it.
    assert_eq!(
        attacker.get(&callback).send().await.unwrap().status(),
        StatusCode::OK
    );
    let replay = attacker.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "unknown_sign_in"
    );

    // A garbage callback.
    let garbage = victim
        .get(server.url("/oidc/callback?state=%00&code="))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    // The provider said no.
    let declined = victim
        .get(server.url("/oidc/callback?error=access_denied&state=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        declined.json::<Value>().await.unwrap()["error"],
        "provider_refused"
    );
    server.stop().await;
}

async fn the_flow_works_with_a_strict_session_cookie(framework: Framework) {
    let (server, _mock, _dir) = start(framework, SameSite::Strict).await;
    let b = browser("strict/1.0");
    let callback = to_provider_and_back(&server, &b, "%2Fme").await;
    let landed = b.get(callback).send().await.unwrap();
    // The callback ends a cross-site redirect chain, which a browser does not send a Strict
    // cookie on: the service answers a page that navigates on (same-site), never a redirect.
    assert_eq!(landed.status(), StatusCode::OK);
    let cookie = landed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(landed
        .text()
        .await
        .unwrap()
        .contains(r#"content="0;url=/me""#));
    assert_eq!(me(&server, &b).await.0, StatusCode::OK);
    server.stop().await;
}

async fn no_provider_means_404s(framework: Framework) {
    let (accounts, _dir) = sqlite_accounts().await;
    let services = services_on(Arc::new(MemoryStore::new()), accounts);
    let server = Server::start_services(framework, services, test_config()).await;
    let b = browser("b/1");
    for path in ["/oidc", "/oidc/start", "/oidc/callback?code=a&state=b"] {
        let response = b.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    server.stop().await;
}
