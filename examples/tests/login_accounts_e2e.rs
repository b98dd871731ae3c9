//! End to end, the parts of the login service that make it deployable: accounts in a database
//! (SQLite files, a private PostgreSQL), the login throttle, the password change, `/health`, a
//! restart with the same `SESSION_KEY`, and graceful shutdown. Every body runs against both
//! servers (`on_both_servers!`).

// The test bodies are plain `async fn`s run by the `#[tokio::test]`s `on_both_servers!`
// generates, so clippy's allow-unwrap-in-tests does not see them as tests.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey::session::{ManualClock, MemoryStore, SessionStore, Timestamp};
use latchkey::throttle::{MemoryThrottleStore, Throttle};
use latchkey_examples::accounts::{self, AccountError, UserStore};
use latchkey_testkit::postgres::PostgresServer;
use latchkey_testkit::redis::RedisServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{
    client, creds, devices, login, services_on, set_cookie, signup_and_login, sqlite_accounts,
    test_config, Framework, Server,
};

on_both_servers!(
    fifty_wrong_passwords_then_429_until_the_back_off_ends,
    many_accounts_from_one_address_are_throttled_and_a_proxy_header_is_opt_in,
    concurrent_signups_of_one_id_give_one_account_and_409s,
    password_change_logs_out_every_other_device,
    password_change_refusals,
    a_login_that_read_the_old_password_before_a_change_keeps_no_session,
    a_login_stored_just_before_a_change_is_signed_out_by_it,
    health_reports_the_store_and_the_database,
    accounts_and_sessions_survive_a_restart,
    a_database_outage_answers_503_never_a_wrong_password,
    shutdown_finishes_the_request_in_flight,
);

const PASSWORD: &str = "s3cret!pw";
const NEW_PASSWORD: &str = "n3w!secret";

/// A [`UserStore`] around another that counts account lookups (every password check starts
/// with one, so a request that made none did no argon2 work) and can hold the next lookup
/// until the test releases it — before reading (`hold_next`) or after (`hold_next_after_read`,
/// so the held request carries what the account was when it read it); `skip` lookups pass
/// before a hold applies.
#[derive(Debug)]
struct Probe {
    inner: Arc<dyn UserStore>,
    lookups: AtomicUsize,
    hold_next: AtomicBool,
    hold_next_after_read: AtomicBool,
    skip: AtomicUsize,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Probe {
    fn new(inner: Arc<dyn UserStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            lookups: AtomicUsize::new(0),
            hold_next: AtomicBool::new(false),
            hold_next_after_read: AtomicBool::new(false),
            skip: AtomicUsize::new(0),
            entered: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        })
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserStore for Probe {
    async fn linked_account(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, AccountError> {
        self.inner.linked_account(issuer, subject).await
    }

    async fn insert_linked(
        &self,
        id: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(), AccountError> {
        self.inner.insert_linked(id, issuer, subject).await
    }

    async fn insert(&self, id: &str, password_hash: &str) -> Result<(), AccountError> {
        self.inner.insert(id, password_hash).await
    }

    async fn password_hash(&self, id: &str) -> Result<Option<String>, AccountError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let skipped = self
            .skip
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !skipped && self.hold_next.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        let hash = self.inner.password_hash(id).await;
        if !skipped && self.hold_next_after_read.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        hash
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<bool, AccountError> {
        self.inner.set_password_hash(id, password_hash).await
    }

    async fn ping(&self) -> Result<(), AccountError> {
        self.inner.ping().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

async fn post_login(
    server: &Server,
    c: &reqwest::Client,
    id: &str,
    password: &str,
) -> reqwest::Response {
    c.post(server.url("/login"))
        .json(&creds(id, password))
        .send()
        .await
        .unwrap()
}

/// The status, the `Retry-After` header and the JSON body of `response`.
async fn answer(response: reqwest::Response) -> (StatusCode, Option<u64>, Value) {
    let status = response.status();
    let retry = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

async fn fifty_wrong_passwords_then_429_until_the_back_off_ends(framework: Framework) {
    let (accounts, _dir) = sqlite_accounts().await;
    let probe = Probe::new(accounts);
    let mut services = services_on(Arc::new(MemoryStore::new()), probe.clone());
    // The default throttle on a clock the test moves: the back-off does not run out while a
    // loaded machine is still hashing the guesses, and the test waits for none of it.
    let clock = ManualClock::new(Timestamp::from_system_time(std::time::SystemTime::now()));
    services.throttle = Throttle::builder(Arc::new(MemoryThrottleStore::new()))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let server = Server::start_services(framework, services, test_config()).await;
    let c = client("guesser/1.0");
    let signup = c
        .post(server.url("/signup"))
        .json(&creds("victim01", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);

    // The same 50 guesses against a known and an unknown ID get the same answers.
    let mut runs = Vec::new();
    for id in ["victim01", "nobody001"] {
        let before = probe.lookups();
        let mut answers = Vec::new();
        for n in 0..50 {
            let (status, retry, body) =
                answer(post_login(&server, &c, id, &format!("wrong{n}!x")).await).await;
            answers.push((status, body["error"].as_str().map(str::to_owned)));
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry = retry.expect("a 429 says when to retry");
                assert!(retry >= 1, "Retry-After {retry}");
                assert_eq!(body["retry_after"], json!(retry));
            } else {
                assert!(retry.is_none());
            }
        }
        // 5 free failures, then the back-off: every further guess within it is refused before
        // the account is even looked up, so no argon2 work is done for it.
        assert!(answers[..5]
            .iter()
            .all(|(s, e)| *s == StatusCode::UNAUTHORIZED
                && e.as_deref() == Some("invalid_credentials")));
        assert!(
            answers[5..]
                .iter()
                .all(|(s, e)| *s == StatusCode::TOO_MANY_REQUESTS
                    && e.as_deref() == Some("too_many_attempts")),
            "{answers:?}"
        );
        assert_eq!(
            probe.lookups() - before,
            5,
            "45 throttled guesses, no lookup and no hash"
        );
        runs.push(answers);
    }
    assert_eq!(
        runs[0], runs[1],
        "a known and an unknown ID are throttled alike"
    );

    // The right password is refused during the back-off...
    let (status, retry, _) = answer(post_login(&server, &c, "victim01", PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...and works once it is over (the clock moves by what Retry-After says, not a guess).
    clock.advance(Duration::from_secs(retry.unwrap()) + Duration::from_millis(100));
    let (status, _, body) = answer(post_login(&server, &c, "victim01", PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The success reset the account's budget: a typo now (from another browser) is a plain
    // 401, not a 429.
    let other = client("other/1.0");
    let (status, _, _) = answer(post_login(&server, &other, "victim01", "typo1!xyz").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn many_accounts_from_one_address_are_throttled_and_a_proxy_header_is_opt_in(
    framework: Framework,
) {
    // Without a configured header, X-Forwarded-For is the client's word and is ignored.
    for trust_header in [false, true] {
        let mut config = test_config();
        if trust_header {
            config.client_ip_header = Some(http::HeaderName::from_static("x-forwarded-for"));
        }
        let server = Server::start_with(framework, Arc::new(MemoryStore::new()), config).await;
        let c = client("sprayer/1.0");
        let mut statuses = Vec::new();
        for n in 0..25 {
            let response = c
                .post(server.url("/login"))
                .header("x-forwarded-for", "198.51.100.1")
                .json(&creds(&format!("spray{n:04}"), "wrong1!pw"))
                .send()
                .await
                .unwrap();
            statuses.push(response.status());
        }
        // 20 failures per address are free, each against a fresh account.
        assert!(
            statuses[..20]
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED),
            "{statuses:?}"
        );
        assert!(
            statuses[20..]
                .iter()
                .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        // Another forwarded address: a new client only when the service trusts the header.
        let other = c
            .post(server.url("/login"))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.50")
            .json(&creds("spray9999", "wrong1!pw"))
            .send()
            .await
            .unwrap();
        let expected = if trust_header {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(other.status(), expected, "trust_header={trust_header}");
        server.stop().await;
    }
}

async fn concurrent_signups_of_one_id_give_one_account_and_409s(framework: Framework) {
    let server = Server::start(framework, Arc::new(MemoryStore::new())).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let url = server.url("/signup");
        tasks.spawn(async move {
            let c = client("racer/1.0");
            let response = c
                .post(url)
                .json(&creds("racer001", &format!("pass{n}!word")))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body, n)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body, n) = done.unwrap();
        match status {
            StatusCode::CREATED => winners.push(n),
            StatusCode::CONFLICT => assert_eq!(body["error"], "id_taken"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one sign-up wins");
    // The account is the winner's: its password logs in.
    let c = client("racer/1.0");
    login(&server, &c, "racer001", &format!("pass{}!word", winners[0])).await;
    server.stop().await;
}

async fn change_password(
    server: &Server,
    c: &reqwest::Client,
    csrf: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = c.post(server.url("/password")).json(body);
    if let Some(token) = csrf {
        request = request.header("x-csrf-token", token);
    }
    request.send().await.unwrap()
}

async fn me_status(server: &Server, c: &reqwest::Client) -> StatusCode {
    c.get(server.url("/me")).send().await.unwrap().status()
}

async fn password_change_logs_out_every_other_device(framework: Framework) {
    let server = Server::start(framework, Arc::new(MemoryStore::new())).await;
    let laptop = client("laptop/1.0");
    let phone = client("phone/1.0");
    let (token, old_cookie) = signup_and_login(&server, &laptop, "owner001", PASSWORD).await;
    login(&server, &phone, "owner001", PASSWORD).await;

    let response = change_password(
        &server,
        &laptop,
        Some(&token),
        &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let new_cookie = set_cookie(&response).expect("the session ID is cycled");
    assert_ne!(
        support::cookie_pair(&new_cookie),
        support::cookie_pair(&old_cookie)
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 1, "{body}");

    // The phone is out at once; the laptop stays in; only the new password works.
    assert_eq!(me_status(&server, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&server, &laptop).await, StatusCode::OK);
    let devices = devices(&server, &laptop).await;
    assert_eq!(
        devices["sessions"].as_array().unwrap().len(),
        1,
        "{devices}"
    );
    let (status, _, _) = answer(post_login(&server, &phone, "owner001", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    login(&server, &phone, "owner001", NEW_PASSWORD).await;
    server.stop().await;
}

async fn a_login_that_read_the_old_password_before_a_change_keeps_no_session(framework: Framework) {
    let (accounts, _dir) = sqlite_accounts().await;
    let probe = Probe::new(accounts);
    let services = services_on(Arc::new(MemoryStore::new()), probe.clone());
    let server = Server::start_services(framework, services, test_config()).await;
    let laptop = client("laptop/1.0");
    let (token, _) = signup_and_login(&server, &laptop, "owner002", PASSWORD).await;

    // The phone's login has read the account (the old hash) and is held there...
    probe.hold_next_after_read.store(true, Ordering::SeqCst);
    let phone = client("phone/1.0");
    let url = server.url("/login");
    let in_flight = {
        let phone = phone.clone();
        tokio::spawn(async move {
            phone
                .post(url)
                .json(&creds("owner002", PASSWORD))
                .send()
                .await
        })
    };
    probe.entered.notified().await;
    // ...while the owner changes the password on the laptop (the phone has no session yet).
    let response = change_password(
        &server,
        &laptop,
        Some(&token),
        &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 0, "{body}");

    // The phone's password check then succeeds against the old hash it read, but the login
    // sees the change before its session is kept: 401, and no session for the phone.
    probe.release.notify_one();
    let (status, _, body) = answer(in_flight.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(me_status(&server, &phone).await, StatusCode::UNAUTHORIZED);
    let devices = devices(&server, &laptop).await;
    assert_eq!(
        devices["sessions"].as_array().unwrap().len(),
        1,
        "{devices}"
    );
    server.stop().await;
}

async fn a_login_stored_just_before_a_change_is_signed_out_by_it(framework: Framework) {
    let (accounts, _dir) = sqlite_accounts().await;
    let probe = Probe::new(accounts);
    let services = services_on(Arc::new(MemoryStore::new()), probe.clone());
    let server = Server::start_services(framework, services, test_config()).await;
    let laptop = client("laptop/1.0");
    let (token, _) = signup_and_login(&server, &laptop, "owner003", PASSWORD).await;

    // The phone's login checks the password (first lookup), stores its session, checks the
    // password again (second lookup: still the old hash) and is held there, before it answers...
    probe.skip.store(1, Ordering::SeqCst);
    probe.hold_next_after_read.store(true, Ordering::SeqCst);
    let phone = client("phone/1.0");
    let url = server.url("/login");
    let in_flight = {
        let phone = phone.clone();
        tokio::spawn(async move {
            phone
                .post(url)
                .json(&creds("owner003", PASSWORD))
                .send()
                .await
        })
    };
    probe.entered.notified().await;
    assert_eq!(
        probe.lookups(),
        5,
        "the sign-up's, then a check and a re-check per login"
    );
    // ...when the owner changes the password on the laptop: the phone's session already
    // exists, so the change signs it out.
    let response = change_password(
        &server,
        &laptop,
        Some(&token),
        &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 1, "{body}");

    // The phone's login was right when it checked, so it answers 200; its session is gone.
    probe.release.notify_one();
    let (status, _, body) = answer(in_flight.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(me_status(&server, &phone).await, StatusCode::UNAUTHORIZED);
    let devices = devices(&server, &laptop).await;
    assert_eq!(
        devices["sessions"].as_array().unwrap().len(),
        1,
        "{devices}"
    );
    server.stop().await;
}

async fn password_change_refusals(framework: Framework) {
    let server = Server::start(framework, Arc::new(MemoryStore::new())).await;
    let c = client("owner/1.0");
    let anonymous = client("anonymous/1.0");
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });

    // Not logged in.
    let response = change_password(&server, &anonymous, None, &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let (token, _) = signup_and_login(&server, &c, "owner002", PASSWORD).await;
    // Logged in but without the CSRF token.
    let response = change_password(&server, &c, None, &body).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A new password against the rule.
    let response = change_password(
        &server,
        &c,
        Some(&token),
        &json!({ "current_password": PASSWORD, "new_password": "short" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_password"
    );
    // A body of the wrong shape.
    let response =
        change_password(&server, &c, Some(&token), &json!({ "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A wrong current password: 403, and it is a password check under the throttle, so
    // guessing through this route is throttled as on /login.
    let wrong = json!({ "current_password": "wrong1!pw", "new_password": NEW_PASSWORD });
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            change_password(&server, &c, Some(&token), &wrong)
                .await
                .status(),
        );
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::FORBIDDEN),
        "{statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Nothing changed: still logged in, the old password still the password.
    assert_eq!(me_status(&server, &c).await, StatusCode::OK);
    let other = client("other/1.0");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the account's 1 s back-off
    login(&server, &other, "owner002", PASSWORD).await;
    server.stop().await;
}

async fn health_reports_the_store_and_the_database(framework: Framework) {
    let store = Arc::new(MemoryStore::new());
    let server = Server::start(framework, store.clone()).await;
    let c = client("probe/1.0");
    for _ in 0..3 {
        let response = c.get(server.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(set_cookie(&response).is_none(), "a probe gets no cookie");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "status": "ok", "sessions": "ok", "accounts": "ok", "database": "sqlite" })
        );
    }
    assert_eq!(
        store.count().await.unwrap(),
        0,
        "health never creates a session"
    );
    server.stop().await;
}

async fn accounts_and_sessions_survive_a_restart(framework: Framework) {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("accounts.db");
    let database = database.to_str().unwrap().to_owned();
    // Each start opens everything afresh from its URLs, as `cargo run --example login` does;
    // the cookie key is the same (`SESSION_KEY`).
    let start = || async {
        let stores = latchkey_examples::login::stores(Some(&redis.url())).unwrap();
        let accounts = accounts::open(Some(&database)).await.unwrap();
        let services = latchkey_examples::login::Services {
            users: latchkey_examples::login::Users::new(accounts).unwrap(),
            throttle: latchkey_examples::login::default_throttle(stores.throttle).unwrap(),
            sessions: stores.sessions,
            oidc: None,
        };
        Server::start_services(framework, services, test_config()).await
    };
    let first = start().await;
    let laptop = client("laptop/1.0");
    signup_and_login(&first, &laptop, "stayer01", PASSWORD).await;
    assert_eq!(me_status(&first, &laptop).await, StatusCode::OK);
    first.stop().await;

    let second = start().await;
    // The cookie the first instance set still works: the session is in Redis, the key the same.
    let response = laptop
        .get(format!("{}/me", second.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the session survived the restart"
    );
    // The account is in the SQLite file: its password logs a new device in, and its ID is taken.
    login(&second, &client("phone/1.0"), "stayer01", PASSWORD).await;
    let again = client("x/1.0")
        .post(second.url("/signup"))
        .json(&creds("stayer01", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    second.stop().await;
}

async fn a_database_outage_answers_503_never_a_wrong_password(framework: Framework) {
    let postgres = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let accounts = accounts::open(Some(&postgres.url())).await.unwrap();
    assert_eq!(accounts.backend(), "postgres");
    let store = Arc::new(MemoryStore::new());
    let server =
        Server::start_services(framework, services_on(store, accounts), test_config()).await;
    let c = client("device/1.0");
    signup_and_login(&server, &c, "pguser01", PASSWORD).await;
    let health: Value = c
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "postgres");
    assert_eq!(health["accounts"], "ok");

    // The database goes away.
    tokio::task::spawn_blocking(move || drop(postgres))
        .await
        .unwrap();
    for (id, password) in [
        ("pguser01", PASSWORD),
        ("pguser01", "wrong1!pw"),
        ("nobody01", PASSWORD),
    ] {
        let (status, retry, body) =
            answer(post_login(&server, &client("d/1.0"), id, password).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"], "unavailable");
        assert!(retry.is_some());
    }
    let signup = client("new/1.0")
        .post(server.url("/signup"))
        .json(&creds("pguser02", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = c.get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    assert_eq!(
        health,
        json!({ "status": "unavailable", "sessions": "ok", "accounts": "unavailable", "database": "postgres" })
    );
    // Sessions do not depend on the database: the logged-in device stays in.
    assert_eq!(me_status(&server, &c).await, StatusCode::OK);
    server.stop().await;
}

async fn shutdown_finishes_the_request_in_flight(framework: Framework) {
    let (accounts, _dir) = sqlite_accounts().await;
    let probe = Probe::new(accounts);
    let services = services_on(Arc::new(MemoryStore::new()), probe.clone());
    let server = Server::start_services(framework, services, test_config()).await;
    let c = client("device/1.0");
    let signup = c
        .post(server.url("/signup"))
        .json(&creds("inflight1", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);

    // A login that is inside its handler, held at the account lookup...
    probe.hold_next.store(true, Ordering::SeqCst);
    let url = server.url("/login");
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        client("device/1.0")
            .post(url)
            .json(&creds("inflight1", PASSWORD))
            .send()
            .await
    });
    probe.entered.notified().await;
    // ...when the server is told to stop.
    let stopping = tokio::spawn(server.stop());
    // New connections are refused once the listener is closed (polled, not timed).
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "the listener closes on shutdown");
    assert!(
        !stopping.is_finished(),
        "the server waits for the request in flight"
    );
    probe.release.notify_one();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), StatusCode::OK, "and answered in full");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "inflight1");
    stopping.await.unwrap();
}
