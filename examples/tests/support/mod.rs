//! The end-to-end harness: the login example's exact router, served in-process on a free
//! loopback port, reqwest clients with their own cookie jars, and the browser test's programs.

#![allow(dead_code, missing_docs)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey::session::{CookieKey, SessionStore};
use latchkey::throttle::MemoryThrottleStore;
use latchkey_examples::accounts::{SqliteUserStore, UserStore};
use latchkey_examples::login::{self, LoginConfig, Services, Users};
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

/// Which server serves the login service: the axum `login` or the actix-web `actix_login`.
/// Every end-to-end test body runs against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framework {
    Axum,
    Actix,
}

/// Generates `name::axum` and `name::actix`, two tests that run the one body
/// `name(Framework)` against each server.
#[macro_export]
macro_rules! on_both_servers {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use super::support::Framework;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn axum() {
                super::$name(Framework::Axum).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn actix() {
                super::$name(Framework::Actix).await;
            }
        }
    )+};
}

/// A running login service.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) base: String,
    running: Option<Running>,
    /// The directory of the accounts' SQLite file when the harness made one.
    _accounts: Option<tempfile::TempDir>,
}

/// Accounts in a fresh SQLite file in a temporary directory (kept alive by the returned guard).
pub(crate) async fn sqlite_accounts() -> (Arc<dyn UserStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("accounts.db");
    let store = SqliteUserStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open sqlite");
    (Arc::new(store), dir)
}

/// The service's parts on `sessions` and `accounts`, with the default throttle in memory.
pub(crate) fn services_on(
    sessions: Arc<dyn SessionStore>,
    accounts: Arc<dyn UserStore>,
) -> Services {
    Services {
        users: Users::new(accounts).expect("users"),
        throttle: login::default_throttle(Arc::new(MemoryThrottleStore::new())).expect("throttle"),
        sessions,
        oidc: None,
    }
}

enum Running {
    Axum {
        shutdown: oneshot::Sender<()>,
        task: JoinHandle<std::io::Result<()>>,
    },
    /// actix-web runs on its own runtime: a thread of its own, stopped through its handle.
    Actix {
        handle: actix_web::dev::ServerHandle,
        thread: std::thread::JoinHandle<std::io::Result<()>>,
    },
}

/// The config the tests use: `Secure` off, because the tests talk plain HTTP to 127.0.0.1 and a
/// cookie jar (like a browser) never sends a `Secure` cookie over HTTP.
pub(crate) fn test_config() -> LoginConfig {
    let mut config = LoginConfig::new(CookieKey::from_secret(&[0x5a; 32]).expect("key"));
    config.cookie_secure = false;
    config
}

impl Server {
    pub(crate) async fn start(framework: Framework, store: Arc<dyn SessionStore>) -> Server {
        Self::start_with(framework, store, test_config()).await
    }

    /// The service on `store`, with accounts in a fresh SQLite file.
    pub(crate) async fn start_with(
        framework: Framework,
        store: Arc<dyn SessionStore>,
        config: LoginConfig,
    ) -> Server {
        let (accounts, dir) = sqlite_accounts().await;
        let mut server =
            Self::start_services(framework, services_on(store, accounts), config).await;
        server._accounts = Some(dir);
        server
    }

    /// The service on `services` as given.
    pub(crate) async fn start_services(
        framework: Framework,
        services: Services,
        config: LoginConfig,
    ) -> Server {
        Self::start_on(framework, bind(), services, config).await
    }

    /// The service on `services`, served on `listener` (bound first, so that the services
    /// can know the address: an OpenID redirect URI, say).
    pub(crate) async fn start_on(
        framework: Framework,
        listener: std::net::TcpListener,
        services: Services,
        config: LoginConfig,
    ) -> Server {
        match framework {
            Framework::Axum => {
                let app = login::router(services, &config).expect("router");
                listener.set_nonblocking(true).expect("non-blocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let addr = listener.local_addr().expect("local addr");
                let (shutdown, rx) = oneshot::channel::<()>();
                let task = tokio::spawn(login::serve(listener, app, async move {
                    let _ = rx.await;
                }));
                Self::running(addr, Running::Axum { shutdown, task })
            }
            Framework::Actix => {
                let app = login::actix::LoginApp::new(services, &config).expect("app");
                let addr = listener.local_addr().expect("local addr");
                let (tx, rx) = std::sync::mpsc::channel();
                let thread = std::thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        let server = login::actix::serve(listener, app, 1, false)?;
                        let _ = tx.send(server.handle());
                        server.await
                    })
                });
                let handle = rx.recv().expect("the actix server started");
                Self::running(addr, Running::Actix { handle, thread })
            }
        }
    }

    fn running(addr: SocketAddr, running: Running) -> Server {
        Server {
            addr,
            base: format!("http://{addr}"),
            running: Some(running),
            _accounts: None,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful shutdown; fails the test if the server errored or does not stop in time.
    pub(crate) async fn stop(mut self) {
        let stopped = match self.running.take() {
            None => return,
            Some(Running::Axum { shutdown, task }) => {
                let _ = shutdown.send(());
                tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .expect("server stops within 10 s")
                    .expect("server task")
            }
            Some(Running::Actix { handle, thread }) => {
                tokio::time::timeout(Duration::from_secs(10), handle.stop(true))
                    .await
                    .expect("server stops within 10 s");
                tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .expect("join")
                    .expect("server thread")
            }
        };
        stopped.expect("server result");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match self.running.take() {
            None => {}
            Some(Running::Axum { shutdown, .. }) => {
                let _ = shutdown.send(());
            }
            Some(Running::Actix { handle, .. }) => {
                // The command is sent now; the thread ends on its own.
                drop(handle.stop(false));
            }
        }
    }
}

/// A free loopback port, bound.
pub(crate) fn bind() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
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

/// `GET /sessions` as `client`: its account's device list (`{"sessions": [...]}`).
pub(crate) async fn devices(server: &Server, client: &reqwest::Client) -> serde_json::Value {
    client
        .get(server.url("/sessions"))
        .send()
        .await
        .expect("GET /sessions")
        .json()
        .await
        .expect("a JSON device list")
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
