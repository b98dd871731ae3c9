//! The page in a real browser: headless Chromium, driven over WebDriver by Debian's
//! `chromedriver`, against the login example on a loopback port. It signs up and logs in through
//! the form, sees this device in the device list, logs out, changes the password through the
//! form, and meets the login throttle's message after five wrong guesses — proving the HttpOnly
//! cookie, `credentials: "include"`, the CSRF header and the error messages work where users
//! meet them. A second test signs in with an OpenID provider (the testkit's `MockOidc`) by
//! clicking the page's button, across two sites, with a `SameSite=Strict` session cookie.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`. When they are missing the test
//! installs them (once, as root or with passwordless sudo: `support::require`); when it cannot,
//! it fails with a message that says how to install them — it never skips.
//!
//! The WebDriver client is a few JSON calls over reqwest (already a dev-dependency) rather than
//! another crate: the test needs seven endpoints of the W3C protocol.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::session::{MemoryStore, SameSite, SessionStore};
use latchkey_examples::login::env;
use latchkey_testkit::oidc::MockOidc;
use serde_json::{json, Value};
use support::{
    bind, require, services_on, sqlite_accounts, test_config, Framework, Server, CHROMEDRIVER,
    CHROMIUM,
};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free loopback port, killed on drop, and the browser it is to start.
struct Driver {
    child: Child,
    base: String,
    chromium: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
}

impl Browser {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut request = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let response = request.send().await.expect("webdriver call");
        let status = response.status();
        let reply: Value = response.json().await.expect("webdriver json");
        assert!(status.is_success(), "{method} {path}: {reply}");
        reply["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found[ELEMENT].as_str().expect("element id").to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Polls `script` (which returns a boolean) until it is true, for at most 15 s.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.eval("return document.body.innerText").await;
                panic!("timed out waiting for {what}; the page shows: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(&url).send().await;
    }
}

/// Blocking: may install the browser first.
fn start_driver() -> Driver {
    let chromium = require(&CHROMIUM);
    let driver = require(&CHROMEDRIVER);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
        chromium,
        _profile: tempfile::tempdir().expect("profile dir"),
    }
}

async fn open_browser(driver: &Driver) -> Browser {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    // Wait for the driver to listen.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http.get(format!("{}/status", driver.base)).send().await {
            Ok(response) if response.status().is_success() => break,
            _ if Instant::now() > deadline => panic!("chromedriver did not come up"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let capabilities = json!({
        "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": driver.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ],
            },
        }},
    });
    let response = http
        .post(format!("{}/session", driver.base))
        .json(&capabilities)
        .send()
        .await
        .expect("new session");
    let reply: Value = response.json().await.expect("json");
    let session = reply["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
        .to_owned();
    Browser {
        http,
        session,
        base: driver.base.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_in_see_this_device_and_log_out_in_chromium() {
    let store = Arc::new(MemoryStore::new());
    let server = Server::start(Framework::Axum, store.clone()).await;
    let driver = tokio::task::spawn_blocking(start_driver).await.unwrap();
    let browser = open_browser(&driver).await;

    browser.goto(&server.url("/")).await;
    browser
        .wait_for(
            "the login form",
            "return !document.getElementById('login-form').hidden",
        )
        .await;
    // The session cookie is HttpOnly: the page's scripts never see it.
    browser.type_into("#id", "browser01").await;
    browser.type_into("#password", "Chr0me!pw").await;
    browser.click("#signup").await;
    browser
        .wait_for(
            "the account view",
            "return !document.getElementById('account').hidden \
             && document.getElementById('whoami').textContent === 'browser01'",
        )
        .await;
    assert_eq!(browser.eval("return document.cookie").await, json!(""));

    // This device is in the list, marked as the current one, with the browser's user agent.
    browser
        .wait_for(
            "this device in the list",
            "return document.querySelectorAll('#devices li.current').length === 1",
        )
        .await;
    let listed = browser
        .eval("return document.querySelector('#devices li.current').textContent")
        .await;
    let listed = listed.as_str().unwrap();
    assert!(listed.starts_with("This device"), "{listed}");
    assert!(listed.contains("Chrome"), "{listed}");
    assert_eq!(store.count().await.unwrap(), 1);

    // Log out: a POST with the CSRF header (the layer would answer 403 without it).
    browser.click("#logout").await;
    browser
        .wait_for(
            "the logged-out view",
            "return !document.getElementById('login-form').hidden \
             && document.getElementById('message').textContent === 'Logged out.'",
        )
        .await;
    assert_eq!(store.count().await.unwrap(), 0);

    // Log in again through the form (the login path, not sign-up), then reload: the cookie
    // carries the session across page loads.
    browser.type_into("#id", "browser01").await;
    browser.type_into("#password", "Chr0me!pw").await;
    browser.click("#login").await;
    browser
        .wait_for(
            "logged in again",
            "return !document.getElementById('account').hidden",
        )
        .await;
    browser.goto(&server.url("/")).await;
    browser
        .wait_for(
            "still logged in after a reload",
            "return !document.getElementById('account').hidden \
             && document.getElementById('whoami').textContent === 'browser01'",
        )
        .await;

    // Change the password through the form: the other devices are logged out (none here), this
    // one stays in.
    browser.type_into("#current-password", "Chr0me!pw").await;
    browser.type_into("#new-password", "N3w!chrome").await;
    browser.click("#change-password").await;
    browser
        .wait_for(
            "the password change",
            "return document.getElementById('message').textContent              === 'Password changed; logged out 0 other device(s).'              && !document.getElementById('account').hidden",
        )
        .await;
    browser.click("#logout").await;
    browser
        .wait_for(
            "logged out",
            "return !document.getElementById('login-form').hidden",
        )
        .await;

    // Guessing through the form: five wrong passwords, then the throttle's message.
    for n in 0..6 {
        browser.type_into("#id", "browser01").await;
        browser
            .type_into("#password", &format!("Wr0ng!{n}xx"))
            .await;
        browser.click("#login").await;
        let expected = if n < 5 {
            "wrong id or password"
        } else {
            "Too many failed attempts. Try again in 1 second."
        };
        browser
            .wait_for(
                &format!("the answer to guess {n}: {expected}"),
                &format!("return document.getElementById('message').textContent === '{expected}'"),
            )
            .await;
        // Cleared, so that the next guess's identical answer is seen anew.
        browser
            .eval("document.getElementById('message').textContent = ''; return true")
            .await;
    }
    // After the back-off the new password logs in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    browser.type_into("#id", "browser01").await;
    browser.type_into("#password", "N3w!chrome").await;
    browser.click("#login").await;
    browser
        .wait_for(
            "logged in with the new password",
            "return !document.getElementById('account').hidden",
        )
        .await;

    browser.quit().await;
    drop(driver);
    server.stop().await;
}

/// "Sign in with …" in a real browser, across sites: the page is served as `localhost`, the
/// provider as `127.0.0.1` (another site), and the session cookie is `SameSite=Strict`. The
/// browser-binding cookie must come back on the provider's cross-site redirect (it is `Lax`;
/// a `Strict` one would be withheld and the callback refused as another browser's), and the
/// session must be there once the callback's page has moved on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_the_provider_across_sites_in_chromium() {
    let listener = bind();
    let port = listener.local_addr().unwrap().port();
    let site = format!("http://localhost:{port}");
    let redirect_uri = format!("{site}/oidc/callback");
    let mock = MockOidc::builder()
        .client("browser-test", "browser-test-secret")
        .redirect_uri(&redirect_uri)
        .consent_page(true)
        .start()
        .await;
    mock.sign_in_as("browser-subject", "someone@example.com", true);
    let sessions: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut config = test_config();
    config.same_site = SameSite::Strict;
    let mock = Arc::new(mock);
    let oidc = env::sign_in_with_mock(
        Arc::clone(&mock),
        "Mock",
        &redirect_uri,
        &config,
        Arc::clone(&sessions),
    )
    .await
    .unwrap();
    let (accounts, _dir) = sqlite_accounts().await;
    let mut services = services_on(Arc::clone(&sessions), accounts);
    services.oidc = Some(oidc);
    let server = Server::start_on(Framework::Axum, listener, services, config).await;
    let driver = tokio::task::spawn_blocking(start_driver).await.unwrap();
    let browser = open_browser(&driver).await;

    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "the Sign in with button",
            "return !document.getElementById('oidc').hidden \
             && document.getElementById('oidc-name').textContent === 'Mock'",
        )
        .await;
    browser.click("#oidc-link").await;
    // At the provider: its consent page, on its own site; the user continues from there, so
    // the way back is a cross-site navigation.
    browser
        .wait_for(
            "the provider's consent page",
            "return location.hostname === '127.0.0.1' && !!document.getElementById('continue')",
        )
        .await;
    browser.click("#continue").await;
    browser
        .wait_for(
            "the account view after the provider",
            "return location.href === 'http://localhost:' + location.port + '/' \
             && !document.getElementById('account').hidden \
             && document.getElementById('whoami').textContent.startsWith('x')",
        )
        .await;
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(browser.eval("return document.cookie").await, json!(""));
    browser
        .wait_for(
            "this device in the list",
            "return document.querySelectorAll('#devices li.current').length === 1",
        )
        .await;
    // A reload (a same-site navigation) still carries the Strict session cookie.
    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "still signed in after a reload",
            "return !document.getElementById('account').hidden",
        )
        .await;
    assert_eq!(
        sessions.count().await.unwrap(),
        1,
        "one session, no transaction left"
    );

    browser.quit().await;
    drop(driver);
    server.stop().await;
}
