//! Policy tests for `SessionManager`, with a manual clock and a store wrapper that counts
//! operations and injects failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_session::{
    ConfigError, CookieKey, ManualClock, MemoryStore, RequestHeaders, RequestOutcome, SameSite,
    SessionCapPolicy, SessionError, SessionEvent, SessionManager, SessionManagerBuilder,
    SessionStore, StoreError, StoreUnavailablePolicy, Timestamp,
};
use latchkey_testkit::FaultyStore;
use serde_json::json;

const MIN: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
const START: u64 = 1_700_000_000_000;

/// A `MemoryStore` on the test's clock, wrapped to count calls and inject failures.
type TestStore = FaultyStore<MemoryStore>;

fn test_store(clock: &ManualClock) -> TestStore {
    FaultyStore::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    )
}

struct Fixture {
    clock: ManualClock,
    store: Arc<TestStore>,
    manager: SessionManager,
    events: Arc<Mutex<Vec<SessionEvent>>>,
}

fn key() -> CookieKey {
    CookieKey::from_secret(b"0123456789abcdef0123456789abcdef").expect("test helper")
}

fn fixture_with(
    configure: impl FnOnce(
        latchkey_session::SessionManagerBuilder,
    ) -> latchkey_session::SessionManagerBuilder,
) -> Fixture {
    let clock = ManualClock::new(Timestamp::from_unix_millis(START));
    let store = Arc::new(test_store(&clock));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let builder = SessionManager::builder(Arc::clone(&store) as Arc<dyn SessionStore>, key())
        .clock(Arc::new(clock.clone()))
        .event_hook(move |e| sink.lock().expect("test helper").push(e.clone()));
    let manager = configure(builder).build().expect("test helper");
    Fixture {
        clock,
        store,
        manager,
        events,
    }
}

fn fixture() -> Fixture {
    fixture_with(|b| b)
}

/// `name=value` from a Set-Cookie value (what the browser sends back).
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("test helper")
        .to_owned()
}

impl Fixture {
    async fn count(&self) -> u64 {
        self.store.inner().count().await.expect("test helper")
    }

    /// One request that inserts `k = v`; returns the cookie to send next time.
    async fn create_session(&self, k: &str, v: i64) -> String {
        let session = self.manager.session(RequestHeaders::new());
        session.insert(k, &v).await.expect("test helper");
        let response = session
            .finish(RequestOutcome::Success)
            .await
            .expect("test helper");
        cookie_pair(
            response
                .set_cookie()
                .expect("a new session sets a cookie")
                .as_str(),
        )
    }

    async fn read(&self, cookie: &str, k: &str) -> Option<i64> {
        let session = self
            .manager
            .session(RequestHeaders::new().cookie(cookie.as_bytes()));
        let value = session.get::<i64>(k).await.expect("test helper");
        session
            .finish(RequestOutcome::Success)
            .await
            .expect("test helper");
        value
    }

    fn take_events(&self) -> Vec<SessionEvent> {
        std::mem::take(&mut *self.events.lock().expect("test helper"))
    }
}

#[tokio::test]
async fn ten_thousand_requests_that_never_write_store_nothing_and_send_no_cookie() {
    let f = fixture();
    let forged = format!("id={}.{}", "A".repeat(43), "B".repeat(43));
    for i in 0..10_000 {
        let cookie = match i % 4 {
            0 => None,
            1 => Some(b"id=garbage; other=1".as_slice()),
            2 => Some(forged.as_bytes()),
            _ => Some(b"\xff\xfe\xfd".as_slice()),
        };
        let session = f
            .manager
            .session(cookie.map_or(RequestHeaders::new(), |c| RequestHeaders::new().cookie(c)));
        if i % 2 == 0 {
            // read it: still nothing to store
            assert_eq!(session.get::<String>("user").await.unwrap(), None);
            assert!(session.is_empty().await.unwrap());
        }
        let response = session.finish(RequestOutcome::Success).await.unwrap();
        assert!(response.is_empty(), "request {i} must not send a cookie");
    }
    assert_eq!(f.count().await, 0);
    assert_eq!(f.store.creates(), 0);
    assert!(f.take_events().is_empty());
}

#[tokio::test]
async fn an_untouched_session_costs_no_store_access() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    let before = f.store.calls();
    for _ in 0..100 {
        let session = f
            .manager
            .session(RequestHeaders::new().cookie(cookie.as_bytes()));
        assert!(session
            .finish(RequestOutcome::Success)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        f.store.calls(),
        before,
        "no load, no touch for an untouched session"
    );
}

#[tokio::test]
async fn a_write_creates_the_session_with_safe_cookie_attributes() {
    let f = fixture();
    let session = f.manager.session(RequestHeaders::new());
    session.insert("n", &7).await.unwrap();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let set_cookie = response.set_cookie().unwrap().as_str().to_owned();
    assert!(set_cookie.starts_with("id="));
    for attribute in ["; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(
        !set_cookie.contains("Max-Age"),
        "browser-session cookie by default"
    );
    assert_eq!(f.count().await, 1);
    let cookie = cookie_pair(&set_cookie);
    assert_eq!(f.read(&cookie, "n").await, Some(7));
    assert!(matches!(
        f.take_events().as_slice(),
        [SessionEvent::Created { .. }]
    ));
    // The Debug output of everything request-facing hides the ID.
    let id_text = &cookie["id=".len().."id=".len() + 43];
    let debug = format!("{response:?} {session:?} {:?}", f.manager);
    assert!(
        !debug.contains(id_text),
        "Debug leaked the session ID: {debug}"
    );
}

#[tokio::test]
async fn persistent_cookies_carry_max_age_and_custom_attributes() {
    let f = fixture_with(|b| {
        b.persistent(true)
            .cookie_name("__Host-sid")
            .same_site(SameSite::Strict)
            .idle_timeout(20 * MIN)
    });
    let session = f.manager.session(RequestHeaders::new());
    session.insert("n", &1).await.unwrap();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let set_cookie = response.set_cookie().unwrap().as_str();
    assert!(set_cookie.starts_with("__Host-sid="));
    assert!(set_cookie.contains("; Max-Age=1200;"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Strict"));
}

#[tokio::test]
async fn only_modified_sessions_are_written_and_only_the_delta() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    // Two requests load the same session, then each changes a different key.
    let r1 = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    let r2 = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(r1.get::<i64>("a").await.unwrap(), Some(1));
    assert_eq!(r2.get::<i64>("a").await.unwrap(), Some(1));
    r1.insert("b", &2).await.unwrap();
    r2.insert("c", &3).await.unwrap();
    r1.finish(RequestOutcome::Success).await.unwrap();
    r2.finish(RequestOutcome::Success).await.unwrap();
    assert_eq!(f.read(&cookie, "b").await, Some(2));
    assert_eq!(f.read(&cookie, "c").await, Some(3));
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    // Writing the same value again is not a modification.
    let saves = f.store.saves();
    let r3 = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    r3.insert("a", &1).await.unwrap();
    assert!(r3.finish(RequestOutcome::Success).await.unwrap().is_empty());
    assert_eq!(f.store.saves(), saves);
}

#[tokio::test]
async fn idle_timeout_expires_and_rolling_touch_is_throttled() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    // 10 min in: 20 of 30 min remain (> half): no touch.
    f.clock.advance(10 * MIN);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    assert_eq!(f.store.touches(), 0);
    // 16 min in: 14 min remain (< half): one touch, back to 30.
    f.clock.advance(6 * MIN);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    assert_eq!(f.store.touches(), 1);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    assert_eq!(f.store.touches(), 1, "only once per half idle timeout");
    // 16 + 29 = 45 min after creation: alive thanks to the touch.
    f.clock.advance(29 * MIN);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    // Then 31 idle minutes: gone.
    f.clock.advance(31 * MIN);
    assert_eq!(f.read(&cookie, "a").await, None);
    assert_eq!(f.count().await, 0);
}

#[tokio::test]
async fn absolute_lifetime_wins_over_activity() {
    let f = fixture_with(|b| b.absolute_lifetime(2 * 3600 * Duration::from_secs(1)));
    let cookie = f.create_session("a", 1).await;
    // Active every 20 minutes for 1h40: alive.
    for _ in 0..5 {
        f.clock.advance(20 * MIN);
        assert_eq!(f.read(&cookie, "a").await, Some(1));
    }
    // 2h after creation: gone despite the activity.
    f.clock.advance(20 * MIN);
    assert_eq!(f.read(&cookie, "a").await, None);
}

#[tokio::test]
async fn cycle_id_moves_data_keeps_old_id_for_the_grace_period_and_never_extends_absolute() {
    let f = fixture_with(|b| b.idle_timeout(DAY));
    let old = f.create_session("a", 1).await;
    f.take_events();
    // Six days later, cycle.
    for _ in 0..6 {
        f.clock.advance(DAY - MIN);
        assert_eq!(f.read(&old, "a").await, Some(1));
    }
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(old.as_bytes()));
    session.insert("b", &2).await.unwrap();
    session.cycle_id().await.unwrap();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let new = cookie_pair(response.set_cookie().unwrap().as_str());
    assert_ne!(new, old);
    assert_eq!(f.read(&new, "a").await, Some(1));
    assert_eq!(f.read(&new, "b").await, Some(2));
    let events = f.take_events();
    assert!(matches!(events.as_slice(), [SessionEvent::Cycled { old: o, new: n }] if o != n));
    // The old ID is readable during the grace period (10 s), then gone.
    f.clock.advance(Duration::from_secs(5));
    assert_eq!(f.read(&old, "a").await, Some(1));
    f.clock.advance(Duration::from_secs(6));
    assert_eq!(f.read(&old, "a").await, None);
    // The absolute lifetime (7 days from creation) still holds for the new ID.
    let created = Timestamp::from_unix_millis(START);
    f.clock.set(created.saturating_add(7 * DAY - 12 * 60 * MIN));
    assert_eq!(f.read(&new, "a").await, Some(1)); // keeps it from idling out
    f.clock.set(created.saturating_add(7 * DAY - MIN));
    assert_eq!(f.read(&new, "a").await, Some(1));
    f.clock.set(created.saturating_add(7 * DAY));
    assert_eq!(
        f.read(&new, "a").await,
        None,
        "cycling must not extend the absolute lifetime"
    );
}

#[tokio::test]
async fn login_cycles_the_id_and_emits_events_with_keys_only() {
    let f = fixture();
    let anonymous = f.create_session("cart", 3).await;
    f.take_events();
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(anonymous.as_bytes()));
    session.set_user_agent("Firefox");
    session.login("alice").await.unwrap();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let logged_in = cookie_pair(response.set_cookie().unwrap().as_str());
    assert_ne!(logged_in, anonymous, "login must change the ID (fixation)");
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(logged_in.as_bytes()));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("alice"));
    assert_eq!(
        s.get::<i64>("cart").await.unwrap(),
        Some(3),
        "data survives login"
    );
    let devices = s.list_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].current);
    assert_eq!(
        devices[0].info.metadata.user_agent.as_deref(),
        Some("Firefox")
    );
    s.finish(RequestOutcome::Success).await.unwrap();
    let events = f.take_events();
    assert!(
        matches!(
            events.as_slice(),
            [SessionEvent::Cycled { .. }, SessionEvent::LoggedIn { user_id, .. }] if user_id == "alice"
        ),
        "{events:?}"
    );
    let id_text = &logged_in[3..46];
    assert!(
        !format!("{events:?}").contains(id_text),
        "events must never carry the ID"
    );
    // The pre-login ID does not carry the login, even during the grace period.
    let old = f
        .manager
        .session(RequestHeaders::new().cookie(anonymous.as_bytes()));
    assert_eq!(old.user_id().await.unwrap(), None);
}

#[tokio::test]
async fn destroy_deletes_and_clears_the_cookie() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    f.take_events();
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    session.logout();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let removal = response.set_cookie().unwrap();
    assert!(removal.is_removal());
    assert!(removal.as_str().starts_with("id=; Max-Age=0"));
    assert_eq!(f.count().await, 0);
    assert_eq!(f.read(&cookie, "a").await, None);
    assert!(matches!(
        f.take_events().as_slice(),
        [SessionEvent::Destroyed { .. }]
    ));
    // Destroying when there is no session sends nothing.
    let none = f.manager.session(RequestHeaders::new());
    none.destroy();
    assert!(none
        .finish(RequestOutcome::Success)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn emptying_a_session_deletes_it() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(session.remove("a").await.unwrap(), Some(json!(1)));
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    assert!(response.set_cookie().unwrap().is_removal());
    assert_eq!(f.count().await, 0);
}

#[tokio::test]
async fn a_revoked_session_is_not_recreated_by_a_request_in_flight() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    let in_flight = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(in_flight.get::<i64>("a").await.unwrap(), Some(1));
    // Meanwhile: remote logout.
    let key = in_flight.key().await.unwrap().unwrap();
    assert!(f.store.inner().delete(&key).await.unwrap());
    in_flight.insert("b", &2).await.unwrap();
    let response = in_flight.finish(RequestOutcome::Success).await.unwrap();
    assert!(
        response.set_cookie().is_some_and(|c| c.is_removal()),
        "the revoked client is told to drop its cookie, got {response:?}"
    );
    assert_eq!(f.count().await, 0);
}

#[tokio::test]
async fn a_server_error_stores_no_changes_but_a_logout_still_happens() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;

    // Data written by a handler that then failed is not saved.
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    s.insert("a", &2).await.unwrap();
    let finish = s.finish(RequestOutcome::ServerError);
    assert!(finish.is_ready(), "nothing to write after a 5xx");
    assert!(finish.await.unwrap().is_empty());
    assert_eq!(f.read(&cookie, "a").await, Some(1));

    // A login in a failed request neither creates a session nor changes the ID.
    let s = f.manager.session(RequestHeaders::new());
    s.login("alice").await.unwrap();
    assert!(s
        .finish(RequestOutcome::ServerError)
        .await
        .unwrap()
        .is_empty());
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    s.login("alice").await.unwrap();
    assert!(s
        .finish(RequestOutcome::ServerError)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        f.count().await,
        1,
        "no session was created by either failed login"
    );
    assert_eq!(
        f.read(&cookie, "a").await,
        Some(1),
        "the old ID still works"
    );

    // A logout in a failed request still logs out.
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    s.logout();
    let response = s.finish(RequestOutcome::ServerError).await.unwrap();
    assert!(response.set_cookie().is_some_and(|c| c.is_removal()));
    assert_eq!(f.count().await, 0);
    assert_eq!(
        RequestOutcome::from_status(500),
        RequestOutcome::ServerError
    );
    assert_eq!(RequestOutcome::from_status(499), RequestOutcome::Success);
    assert_eq!(RequestOutcome::from_status(600), RequestOutcome::Success);
}

#[test]
fn cookie_name_prefixes_are_checked_at_build_time() {
    let build = |f: &dyn Fn(SessionManagerBuilder) -> SessionManagerBuilder| {
        f(SessionManager::builder(Arc::new(MemoryStore::new()), key())).build()
    };
    assert!(build(&|b| b.cookie_name("__Host-id")).is_ok());
    assert!(build(&|b| b.cookie_name("__Secure-id")).is_ok());
    for (what, result) in [
        (
            "no Secure",
            build(&|b| b.cookie_name("__Host-id").secure(false)),
        ),
        (
            "a Path",
            build(&|b| b.cookie_name("__Host-id").path("/app")),
        ),
        (
            "a Domain",
            build(&|b| b.cookie_name("__host-id").domain("example.com")),
        ),
    ] {
        assert!(
            matches!(result, Err(ConfigError::CookiePrefix("__Host-"))),
            "__Host- with {what} must be refused"
        );
    }
    assert!(matches!(
        build(&|b| b.cookie_name("__Secure-id").secure(false)),
        Err(ConfigError::CookiePrefix("__Secure-"))
    ));
}

#[tokio::test]
async fn per_user_cap_revokes_the_oldest_or_refuses() {
    let f = fixture_with(|b| b.max_sessions_per_user(1, SessionCapPolicy::RevokeOldest));
    let login = |user: &'static str| {
        let manager = f.manager.clone();
        async move {
            let s = manager.session(RequestHeaders::new());
            s.login(user).await?;
            let r = s.finish(RequestOutcome::Success).await?;
            Ok::<_, SessionError>(cookie_pair(r.set_cookie().unwrap().as_str()))
        }
    };
    let first = login("bob").await.unwrap();
    f.clock.advance(MIN);
    let second = login("bob").await.unwrap();
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(first.as_bytes()));
    assert_eq!(
        s.user_id().await.unwrap(),
        None,
        "the first device was logged out"
    );
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(second.as_bytes()));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("bob"));
    assert!(f
        .take_events()
        .iter()
        .any(|e| matches!(e, SessionEvent::Revoked { .. })));

    let g = fixture_with(|b| b.max_sessions_per_user(1, SessionCapPolicy::Refuse));
    let s = g.manager.session(RequestHeaders::new());
    s.login("carol").await.unwrap();
    s.finish(RequestOutcome::Success).await.unwrap();
    let s = g.manager.session(RequestHeaders::new());
    assert!(matches!(
        s.login("carol").await,
        Err(SessionError::TooManySessions)
    ));
    assert!(s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    assert_eq!(g.count().await, 1);
}

#[tokio::test]
async fn device_list_revoke_one_and_revoke_others() {
    let f = fixture();
    let mut cookies = Vec::new();
    for agent in ["phone", "laptop", "tablet"] {
        let s = f.manager.session(RequestHeaders::new());
        s.set_user_agent(agent);
        s.login("dan").await.unwrap();
        let r = s.finish(RequestOutcome::Success).await.unwrap();
        cookies.push(cookie_pair(r.set_cookie().unwrap().as_str()));
        f.clock.advance(MIN);
    }
    let intruder = {
        let s = f.manager.session(RequestHeaders::new());
        s.login("eve").await.unwrap();
        let r = s.finish(RequestOutcome::Success).await.unwrap();
        cookie_pair(r.set_cookie().unwrap().as_str())
    };
    let phone = f
        .manager
        .session(RequestHeaders::new().cookie(cookies[0].as_bytes()));
    let devices = phone.list_devices().await.unwrap();
    let agents: Vec<_> = devices
        .iter()
        .map(|d| d.info.metadata.user_agent.clone().unwrap())
        .collect();
    assert_eq!(agents, ["phone", "laptop", "tablet"]);
    assert_eq!(devices.iter().filter(|d| d.current).count(), 1);
    assert!(devices[0].current);
    // Eve cannot revoke Dan's laptop by its key.
    let eve = f
        .manager
        .session(RequestHeaders::new().cookie(intruder.as_bytes()));
    assert!(!eve.revoke_device(&devices[1].info.key).await.unwrap());
    // Dan revokes his laptop from his phone.
    assert!(phone.revoke_device(&devices[1].info.key).await.unwrap());
    let laptop = f
        .manager
        .session(RequestHeaders::new().cookie(cookies[1].as_bytes()));
    assert_eq!(laptop.user_id().await.unwrap(), None);
    // Then all but this one.
    assert_eq!(phone.revoke_other_devices().await.unwrap(), 1);
    assert_eq!(phone.list_devices().await.unwrap().len(), 1);
    phone.finish(RequestOutcome::Success).await.unwrap();
    // Anonymous sessions have no device list.
    let anon = f.manager.session(RequestHeaders::new());
    assert!(matches!(
        anon.list_devices().await,
        Err(SessionError::NotLoggedIn)
    ));
    // Admin: log eve out everywhere.
    assert_eq!(f.manager.revoke_all_for_user("eve").await.unwrap(), 1);
}

#[tokio::test]
async fn store_down_with_fail_policy_is_an_unavailable_error_and_loses_nothing() {
    let f = fixture();
    let cookie = f.create_session("a", 1).await;
    // Down while loading.
    f.store.set_down(true);
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    let err = s.get::<i64>("a").await.unwrap_err();
    assert!(err.is_unavailable());
    assert!(
        std::error::Error::source(&err).is_some(),
        "the store error is kept as source"
    );
    assert!(s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    // Up while loading, down while saving.
    f.store.set_down(false);
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    s.insert("a", &2).await.unwrap();
    s.cycle_id().await.unwrap();
    f.store.set_down(true);
    let err = s.finish(RequestOutcome::Success).await.unwrap_err();
    assert!(err.is_unavailable());
    // Back up: the session is still there, unchanged, under the old cookie.
    f.store.set_down(false);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    // A new session that cannot be created: an error, not a panic or a bogus cookie.
    f.store.set_down(true);
    let s = f.manager.session(RequestHeaders::new());
    s.insert("x", &1).await.unwrap();
    assert!(s
        .finish(RequestOutcome::Success)
        .await
        .unwrap_err()
        .is_unavailable());
}

#[tokio::test]
async fn store_down_with_anonymous_policy_carries_on_without_a_session() {
    let f = fixture_with(|b| b.store_unavailable(StoreUnavailablePolicy::Anonymous));
    let cookie = f.create_session("a", 1).await;
    f.store.set_down(true);
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), None, "reads as anonymous");
    s.insert("b", &2).await.unwrap();
    assert!(matches!(s.login("x").await, Err(SessionError::Degraded)));
    assert!(matches!(s.cycle_id().await, Err(SessionError::Degraded)));
    assert!(
        s.finish(RequestOutcome::Success).await.unwrap().is_empty(),
        "cookie untouched"
    );
    // A write that fails at the end is dropped, not an error.
    f.store.set_down(false);
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    s.insert("c", &3).await.unwrap();
    f.store.set_down(true);
    assert!(s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    f.store.set_down(false);
    assert_eq!(
        f.read(&cookie, "a").await,
        Some(1),
        "the session survived the outage"
    );
    assert_eq!(f.read(&cookie, "b").await, None);
}

#[tokio::test]
async fn a_key_collision_on_create_is_retried_with_a_fresh_id() {
    let f = fixture();
    f.store.conflict_next_creates(2);
    let cookie = f.create_session("a", 1).await;
    assert_eq!(f.store.creates(), 3);
    assert_eq!(f.read(&cookie, "a").await, Some(1));
    // A store that always conflicts: a Conflict error after a bounded number of tries.
    f.store.conflict_next_creates(usize::MAX);
    let s = f.manager.session(RequestHeaders::new());
    s.insert("a", &1).await.unwrap();
    assert!(matches!(
        s.finish(RequestOutcome::Success).await,
        Err(SessionError::Store(StoreError::Conflict))
    ));
}

#[tokio::test]
async fn a_record_the_store_returns_after_its_expiry_is_rejected_with_an_event() {
    // The store's clock lags the application's by an hour.
    let app_clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let store_clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let store = Arc::new(MemoryStore::builder().clock(Arc::new(store_clock)).build());
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let manager = SessionManager::builder(store, key())
        .clock(Arc::new(app_clock.clone()))
        .event_hook(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let s = manager.session(RequestHeaders::new());
    s.insert("a", &1).await.unwrap();
    let cookie = cookie_pair(
        s.finish(RequestOutcome::Success)
            .await
            .unwrap()
            .set_cookie()
            .unwrap()
            .as_str(),
    );
    app_clock.advance(60 * MIN);
    let s = manager.session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), None);
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(SessionEvent::ExpiredOnRead { .. })
    ));
}

#[tokio::test]
async fn session_header_transport_for_api_clients() {
    let f = fixture_with(|b| b.session_header("X-Session"));
    assert_eq!(f.manager.session_header_name(), Some("x-session"));
    // A client announces header mode with an empty header.
    let s = f.manager.session(RequestHeaders::new().session_header(b""));
    s.insert("a", &1).await.unwrap();
    let response = s.finish(RequestOutcome::Success).await.unwrap();
    assert!(
        response.set_cookie().is_none(),
        "header clients get no cookie"
    );
    let (name, token) = response.session_header().unwrap();
    assert_eq!(name, "x-session");
    let token = token.to_owned();
    let s = f
        .manager
        .session(RequestHeaders::new().session_header(token.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), Some(1));
    s.finish(RequestOutcome::Success).await.unwrap();
    // Garbage in the header is no session, never an error.
    let s = f
        .manager
        .session(RequestHeaders::new().session_header(b"\xff garbage"));
    assert_eq!(s.get::<i64>("a").await.unwrap(), None);
    // Off by default: the header is ignored.
    let g = fixture();
    let s = g
        .manager
        .session(RequestHeaders::new().session_header(token.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), None);
}

#[tokio::test]
async fn key_rotation_accepts_old_cookies_and_reissues_with_the_new_key() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let store: Arc<dyn SessionStore> = Arc::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let old_key = CookieKey::from_secret(&[1; 32]).unwrap();
    let new_key = CookieKey::from_secret(&[2; 32]).unwrap();
    let before = SessionManager::builder(Arc::clone(&store), old_key.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let s = before.session(RequestHeaders::new());
    s.insert("a", &1).await.unwrap();
    let cookie = cookie_pair(
        s.finish(RequestOutcome::Success)
            .await
            .unwrap()
            .set_cookie()
            .unwrap()
            .as_str(),
    );
    let after = SessionManager::builder(Arc::clone(&store), new_key.clone())
        .verification_key(old_key)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let s = after.session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), Some(1));
    let only_new = SessionManager::builder(store, new_key)
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    let s = only_new.session(RequestHeaders::new().cookie(cookie.as_bytes()));
    assert_eq!(s.get::<i64>("a").await.unwrap(), None);
}

#[test]
fn invalid_configurations_are_refused() {
    let store = || {
        Arc::new(
            MemoryStore::builder()
                .sweep_interval(Duration::ZERO)
                .build(),
        ) as Arc<dyn SessionStore>
    };
    let err = |b: latchkey_session::SessionManagerBuilder| b.build().unwrap_err();
    assert_eq!(
        err(SessionManager::builder(store(), key()).cookie_name("a b")),
        ConfigError::InvalidCookieName
    );
    assert_eq!(
        err(SessionManager::builder(store(), key()).cookie_name("")),
        ConfigError::InvalidCookieName
    );
    assert_eq!(
        err(SessionManager::builder(store(), key()).path("/a;b")),
        ConfigError::InvalidCookieAttribute("Path")
    );
    assert_eq!(
        err(SessionManager::builder(store(), key()).domain("x.com; Secure")),
        ConfigError::InvalidCookieAttribute("Domain")
    );
    assert_eq!(
        err(SessionManager::builder(store(), key())
            .same_site(SameSite::None)
            .secure(false)),
        ConfigError::SameSiteNoneWithoutSecure
    );
    assert!(SessionManager::builder(store(), key())
        .same_site(SameSite::None)
        .build()
        .is_ok());
    assert_eq!(
        err(SessionManager::builder(store(), key()).idle_timeout(Duration::ZERO)),
        ConfigError::ZeroDuration("idle timeout")
    );
    assert_eq!(
        err(SessionManager::builder(store(), key()).absolute_lifetime(Duration::ZERO)),
        ConfigError::ZeroDuration("absolute lifetime")
    );
    for bad in [0.0, -1.0, 1.5, f64::NAN] {
        assert_eq!(
            err(SessionManager::builder(store(), key()).rolling_touch_threshold(bad)),
            ConfigError::InvalidTouchThreshold
        );
    }
    assert_eq!(
        err(SessionManager::builder(store(), key()).session_header("bad header")),
        ConfigError::InvalidHeaderName
    );
    assert_eq!(
        err(SessionManager::builder(store(), key())
            .max_sessions_per_user(0, SessionCapPolicy::Refuse)),
        ConfigError::ZeroSessionCap
    );
}

#[tokio::test]
async fn finish_twice_and_writes_after_finish_do_nothing() {
    let f = fixture();
    let s = f.manager.session(RequestHeaders::new());
    s.insert("a", &1).await.unwrap();
    assert!(!s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    assert!(s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    assert_eq!(f.count().await, 1);
    s.insert("b", &2).await.unwrap();
    assert!(s.finish(RequestOutcome::Success).await.unwrap().is_empty());
    assert_eq!(f.store.saves(), 0);
}

#[tokio::test]
async fn logging_in_as_another_user_does_not_inherit_the_previous_users_data() {
    let f = fixture();
    let s = f.manager.session(RequestHeaders::new());
    s.login("alice").await.unwrap();
    s.insert("secret", &"alice's").await.unwrap();
    let r = s.finish(RequestOutcome::Success).await.unwrap();
    let alice = cookie_pair(r.set_cookie().unwrap().as_str());
    // Same browser, bob logs in without logging alice out first.
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(alice.as_bytes()));
    s.login("bob").await.unwrap();
    assert_eq!(s.get::<String>("secret").await.unwrap(), None);
    let r = s.finish(RequestOutcome::Success).await.unwrap();
    let bob = cookie_pair(r.set_cookie().unwrap().as_str());
    let s = f
        .manager
        .session(RequestHeaders::new().cookie(bob.as_bytes()));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("bob"));
    assert_eq!(s.get::<String>("secret").await.unwrap(), None);
    assert!(f
        .store
        .inner()
        .list_for_user("alice")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_response_names_the_key_of_the_session_it_hands_out() {
    let f = fixture();
    // Nothing written: no key.
    let untouched = f.manager.session(RequestHeaders::new());
    let response = untouched.finish(RequestOutcome::Success).await.unwrap();
    assert_eq!(response.issued_key(), None);

    // A new session: the key of the stored record, which deleting removes.
    let cookie = f.create_session("n", 1).await;
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    let before = session.key().await.unwrap().expect("the session exists");
    session.login("alice").await.unwrap();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    let issued = response.issued_key().expect("a login hands out a session");
    assert_ne!(issued, before, "the login cycled the ID");
    let next = cookie_pair(response.set_cookie().unwrap().as_str());
    assert_eq!(f.read(&next, "n").await, Some(1));
    assert!(f.store.delete(&issued).await.unwrap());
    assert_eq!(
        f.read(&next, "n").await,
        None,
        "the key named the live session"
    );
    assert_eq!(
        f.read(&cookie, "n").await,
        None,
        "its predecessor went with it"
    );

    // A logout's removal cookie names no session.
    let cookie = f.create_session("n", 2).await;
    let session = f
        .manager
        .session(RequestHeaders::new().cookie(cookie.as_bytes()));
    session.logout();
    let response = session.finish(RequestOutcome::Success).await.unwrap();
    assert!(response.set_cookie().is_some());
    assert_eq!(response.issued_key(), None);
}
