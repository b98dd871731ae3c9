//! The end-to-end harness: the login example's exact router, served in-process on a free
//! loopback port, reqwest clients with their own cookie jars, and the browser test's programs.

#![allow(dead_code, missing_docs)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey::session::{CookieKey, SessionStore};
use latchkey_examples::login::{self, LoginConfig, Users};
use latchkey_testkit::redis::{find_or_install, SystemTool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Debian's headless-capable Chromium. Both browser programs come from the same two packages,
/// so one `apt-get install` brings both.
pub(crate) const CHROMIUM: SystemTool = SystemTool {
    names: &["chromium", "chromium-browser"],
    packages: &["chromium", "chromium-driver"],
};

/// The WebDriver server for [`CHROMIUM`].
pub(crate) const CHROMEDRIVER: SystemTool = SystemTool {
    names: &["chromedriver"],
    packages: &["chromium", "chromium-driver"],
};

/// The path of `tool`, installed first when it is missing and the test may install packages
/// (as root or with passwordless sudo, see `find_or_install`); otherwise the test fails with a
/// message that says how to install it. It never skips.
pub(crate) fn require(tool: &SystemTool) -> String {
    match find_or_install(tool) {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(e) => panic!("{e}"),
    }
}

/// A running login service.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) base: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// The config the tests use: `Secure` off, because the tests talk plain HTTP to 127.0.0.1 and a
/// cookie jar (like a browser) never sends a `Secure` cookie over HTTP.
pub(crate) fn test_config() -> LoginConfig {
    let mut config = LoginConfig::new(CookieKey::from_secret(&[0x5a; 32]).expect("key"));
    config.cookie_secure = false;
    config
}

impl Server {
    pub(crate) async fn start(store: Arc<dyn SessionStore>) -> Server {
        Self::start_with(store, test_config()).await
    }

    pub(crate) async fn start_with(store: Arc<dyn SessionStore>, config: LoginConfig) -> Server {
        let users = Users::new().expect("users");
        let app = login::router(store, users, &config).expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(login::serve(listener, app, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            base: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful shutdown; fails the test if the server errored or does not stop in time.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within 10 s")
                .expect("server task")
                .expect("server result");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A client with its own cookie jar, like one browser.
pub(crate) fn client(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(user_agent)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A client with no cookie jar (every request anonymous unless a cookie is set by hand).
pub(crate) fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub(crate) fn creds(id: &str, password: &str) -> serde_json::Value {
    serde_json::json!({ "id": id, "password": password })
}

/// `name=value` of a `Set-Cookie` header.
pub(crate) fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().expect("name=value").trim()
}

pub(crate) fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// Signs up (201) and logs in `client`; returns the CSRF token and the `Set-Cookie` header.
pub(crate) async fn signup_and_login(
    server: &Server,
    client: &reqwest::Client,
    id: &str,
    password: &str,
) -> (String, String) {
    let response = client
        .post(server.url("/signup"))
        .json(&creds(id, password))
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), 201, "signup");
    login(server, client, id, password).await
}

/// Logs `client` in; returns the CSRF token and the `Set-Cookie` header.
pub(crate) async fn login(
    server: &Server,
    client: &reqwest::Client,
    id: &str,
    password: &str,
) -> (String, String) {
    let response = client
        .post(server.url("/login"))
        .json(&creds(id, password))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login");
    let cookie = set_cookie(&response).expect("login sets a cookie");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["id"], id);
    (
        body["csrf_token"].as_str().expect("csrf token").to_owned(),
        cookie,
    )
}
