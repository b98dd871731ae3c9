//! Test kit for latchkey (not published).
//!
//! The [`SessionStore`] conformance suite: every behaviour `latchkey-session`'s manager relies
//! on, as plain `pub async fn`s, and [`session_store_conformance!`], which every backend's tests
//! invoke with a factory that returns a fresh, empty store: it emits one `#[tokio::test]` per
//! check, so one failure does not hide the others. Each check is also callable on its own.
//!
//! The checks use the real clock (a backend like Redis expires keys by its own time), with
//! deadlines of about a second, so the whole suite takes a few seconds. They panic on the first
//! violated guarantee, with a message naming it. Call them from a multi-threaded tokio runtime
//! (`#[tokio::test(flavor = "multi_thread")]`): the concurrency checks spawn tasks.
//!
//! ```
//! use std::sync::Arc;
//! use latchkey_session::{MemoryStore, SessionStore};
//!
//! # #[tokio::main]
//! # async fn main() {
//! // Or, in a test file: `latchkey_testkit::session_store_conformance!(|| async { ... });`
//! latchkey_testkit::revoke_between_load_and_cycle_leaves_no_session(Arc::new(MemoryStore::new())).await;
//! # }
//! ```
//!
//! The [`redis`] module starts private `redis-server` processes for the Redis backend's tests;
//! [`FaultyStore`] wraps any store to count calls and inject outages and ID collisions;
//! [`FaultyTokenStore`] does the same for token stores (outages). The [`oidc`] module's
//! [`MockOidc`](oidc::MockOidc) is an in-process OpenID provider for testing a relying party.

pub mod adapter;
mod faulty;
mod faulty_tokens;
pub mod oidc;
pub mod postgres;
pub mod redis;
pub mod throttle;
pub mod tokens;

pub use faulty::{FaultyStore, UNAVAILABLE_DETAIL};
pub use faulty_tokens::FaultyTokenStore;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use latchkey_session::{
    Admission, CookieKey, Delta, RequestHeaders, RequestOutcome, SessionCapPolicy, SessionEvent,
    SessionId, SessionKey, SessionManager, SessionMetadata, SessionRecord, SessionStore,
    StoreError, Timestamp,
};
use serde_json::{json, Value};
use tokio::task::JoinSet;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

fn fresh_key() -> SessionKey {
    SessionId::generate().key()
}

/// A record created now, with data `{"k": "v"}`, idle deadline in 30 min, absolute in 1 h.
fn sample_record() -> SessionRecord {
    let t = now();
    let mut record = SessionRecord::new(t, t.saturating_add(30 * MINUTE), t.saturating_add(HOUR));
    record.data.insert_value("k", json!("v"));
    record
}

fn user_record(user: &str, created_at: Timestamp) -> SessionRecord {
    let mut record = SessionRecord::new(
        created_at,
        now().saturating_add(30 * MINUTE),
        now().saturating_add(HOUR),
    );
    record.user_id = Some(user.to_owned());
    record.data.insert_value("user", json!(user));
    record
}

async fn must_load(store: &dyn SessionStore, key: &SessionKey, what: &str) -> SessionRecord {
    match store.load(key).await {
        Ok(Some(record)) => record,
        Ok(None) => panic!("{what}: expected a live session, load returned None"),
        Err(err) => panic!("{what}: load failed: {err:?}"),
    }
}

async fn must_be_gone(store: &dyn SessionStore, key: &SessionKey, what: &str) {
    let loaded = store.load(key).await.expect("load");
    assert!(
        loaded.is_none(),
        "{what}: expected no session, load returned {loaded:?}"
    );
}

/// `create` then `load` returns every field as stored.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn create_then_load_round_trips(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let mut record = sample_record();
    record.data.insert_value("n", json!(42));
    record.data.insert_value(
        "nested",
        json!({"a": [1, 2, {"b": null}], "s": "é\u{1F600}"}),
    );
    record.user_id = Some("alice".into());
    record.metadata = SessionMetadata::with_user_agent("Mozilla/5.0 (conformance)");
    store.create(&key, &record, None).await.expect("create");
    let loaded = must_load(&*store, &key, "after create").await;
    assert_eq!(loaded, record, "a loaded record must equal the created one");
}

/// `load` of a key never created is `None`.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn load_of_unknown_key_is_none(store: Arc<dyn SessionStore>) {
    must_be_gone(&*store, &fresh_key(), "unknown key").await;
    assert!(
        !store.delete(&fresh_key()).await.expect("delete"),
        "deleting nothing returns false"
    );
}

/// `ping` answers on a working store and stores nothing (a health check must never create a
/// session), however often it runs.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn ping_answers_and_stores_nothing(store: Arc<dyn SessionStore>) {
    let before = store.count().await.expect("count");
    for _ in 0..10 {
        store.ping().await.expect("ping");
    }
    assert_eq!(
        store.count().await.expect("count"),
        before,
        "ping stored something"
    );
}

/// A second `create` under a live key fails with `Conflict` and changes nothing.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn create_never_overwrites(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let original = sample_record();
    store.create(&key, &original, None).await.expect("create");
    let mut intruder = sample_record();
    intruder.data.insert_value("k", json!("overwritten"));
    intruder.user_id = Some("mallory".into());
    match store.create(&key, &intruder, None).await {
        Err(StoreError::Conflict) => {}
        other => panic!("create on a live key must be Conflict, got {other:?}"),
    }
    assert_eq!(must_load(&*store, &key, "after conflict").await, original);
    assert!(
        store
            .list_for_user("mallory")
            .await
            .expect("list")
            .is_empty(),
        "a refused create must not touch the user index"
    );
}

/// `save` sets and removes only the keys in the delta, honours `clear`, moves `last_seen`
/// and the idle deadline, and never the absolute deadline.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn save_applies_only_the_delta(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let mut record = sample_record();
    record.data.insert_value("keep", json!(1));
    record.data.insert_value("drop", json!(2));
    store.create(&key, &record, None).await.expect("create");

    let t = now().saturating_add(Duration::from_secs(1));
    let idle = t.saturating_add(40 * MINUTE);
    let delta = Delta::new(t, idle)
        .set("new", json!([1, 2]))
        .set("k", json!("v2"))
        .remove("drop");
    assert!(
        store.save(&key, &delta).await.expect("save"),
        "save on a live session returns true"
    );
    let loaded = must_load(&*store, &key, "after save").await;
    assert_eq!(
        loaded.data.get_value("keep"),
        Some(&json!(1)),
        "untouched key kept"
    );
    assert_eq!(loaded.data.get_value("drop"), None, "removed key gone");
    assert_eq!(loaded.data.get_value("new"), Some(&json!([1, 2])));
    assert_eq!(loaded.data.get_value("k"), Some(&json!("v2")));
    assert_eq!(loaded.last_seen, t);
    assert_eq!(loaded.idle_deadline, idle);
    assert_eq!(
        loaded.absolute_deadline, record.absolute_deadline,
        "absolute deadline never moves"
    );
    assert_eq!(loaded.created_at, record.created_at);

    let cleared = Delta::new(t, idle).cleared().set("only", json!(true));
    assert!(store.save(&key, &cleared).await.expect("save"));
    let loaded = must_load(&*store, &key, "after clear").await;
    assert_eq!(
        loaded.data.len(),
        1,
        "clear removes every key before the changes"
    );
    assert_eq!(loaded.data.get_value("only"), Some(&json!(true)));
}

/// `touch` moves `last_seen` and the idle deadline and leaves the data alone.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn touch_extends_without_rewriting_data(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let record = sample_record();
    store.create(&key, &record, None).await.expect("create");
    let t = now().saturating_add(Duration::from_secs(5));
    let idle = t.saturating_add(50 * MINUTE);
    assert!(store.touch(&key, t, idle).await.expect("touch"));
    let loaded = must_load(&*store, &key, "after touch").await;
    assert_eq!(loaded.data, record.data);
    assert_eq!(loaded.last_seen, t);
    assert_eq!(loaded.idle_deadline, idle);
    assert_eq!(loaded.absolute_deadline, record.absolute_deadline);
}

/// `delete` removes the session and its index entry; a second delete returns `false`.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn delete_removes_the_session(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    store
        .create(&key, &user_record("dora", now()), None)
        .await
        .expect("create");
    assert!(store.delete(&key).await.expect("delete"));
    must_be_gone(&*store, &key, "after delete").await;
    assert!(
        !store.delete(&key).await.expect("delete"),
        "second delete returns false"
    );
    assert!(
        store.list_for_user("dora").await.expect("list").is_empty(),
        "index entry removed"
    );
    // The key may be created again after a delete.
    store
        .create(&key, &sample_record(), None)
        .await
        .expect("create after delete");
}

/// `save`, `touch` and `cycle` on a deleted session change nothing and do not recreate it.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn save_and_touch_never_resurrect(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    store
        .create(&key, &user_record("erin", now()), None)
        .await
        .expect("create");
    store.delete(&key).await.expect("delete");
    let t = now();
    let idle = t.saturating_add(30 * MINUTE);
    let delta = Delta::new(t, idle).set("x", json!(1));
    assert!(
        !store.save(&key, &delta).await.expect("save"),
        "save of a deleted session is false"
    );
    assert!(
        !store.touch(&key, t, idle).await.expect("touch"),
        "touch of a deleted session is false"
    );
    let successor = fresh_key();
    assert_eq!(
        store
            .cycle(&key, &successor, &user_record("erin", t), idle, None)
            .await
            .expect("cycle"),
        Admission::SourceGone,
        "cycle of a deleted session stores nothing"
    );
    must_be_gone(&*store, &successor, "the successor of a deleted session").await;
    must_be_gone(&*store, &key, "after save/touch on a deleted session").await;
    assert!(store.list_for_user("erin").await.expect("list").is_empty());
    assert_eq!(store.count().await.expect("count"), 0);
}

/// `cycle` moves a session to a new key in one step: the new record is live and listed, the
/// old one stays loadable until the retirement deadline but is unlisted, cannot be extended
/// by `touch`, and can never be cycled again; a cycle from a missing key stores nothing.
/// `delete_all_for_user` removes both sides (counting only the listed one).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn cycle_moves_the_session_and_retires_the_old_key(store: Arc<dyn SessionStore>) {
    let old = fresh_key();
    store
        .create(&old, &user_record("fay", now()), None)
        .await
        .expect("create");
    let new = fresh_key();
    let until = now().saturating_add(10 * MINUTE);
    let mut moved = user_record("fay", now());
    moved.data.insert_value("moved", json!(true));
    assert_eq!(
        store
            .cycle(&old, &new, &moved, until, None)
            .await
            .expect("cycle"),
        Admission::admitted()
    );
    assert_eq!(
        must_load(&*store, &new, "the successor")
            .await
            .data
            .get_value("moved"),
        Some(&json!(true))
    );
    let loaded = must_load(&*store, &old, "retired, within grace").await;
    assert!(
        loaded.expires_at() <= until,
        "a cycle caps the old record's expiry at the retirement deadline"
    );
    let listed: Vec<SessionKey> = store
        .list_for_user("fay")
        .await
        .expect("list")
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(listed, vec![new], "only the successor is listed");
    let t = now();
    store
        .touch(&old, t, t.saturating_add(HOUR))
        .await
        .expect("touch");
    assert!(
        must_load(&*store, &old, "retired, touched")
            .await
            .expires_at()
            <= until,
        "touch cannot extend a retired session"
    );
    let again = fresh_key();
    assert_eq!(
        store
            .cycle(&old, &again, &user_record("fay", now()), until, None)
            .await
            .expect("cycle"),
        Admission::SourceGone,
        "a retired record can never be cycled again"
    );
    must_be_gone(&*store, &again, "the refused successor of a retired record").await;
    let nowhere = fresh_key();
    assert_eq!(
        store
            .cycle(
                &fresh_key(),
                &nowhere,
                &user_record("fay", now()),
                until,
                None
            )
            .await
            .expect("cycle"),
        Admission::SourceGone,
        "a cycle from a missing record stores nothing"
    );
    must_be_gone(&*store, &nowhere, "the successor of a missing record").await;
    assert_eq!(
        store
            .delete_all_for_user("fay", None)
            .await
            .expect("delete_all"),
        1,
        "the retired ID is deleted but not counted: it was never listed"
    );
    must_be_gone(&*store, &old, "retired, after delete_all_for_user").await;
    must_be_gone(&*store, &new, "successor, after delete_all_for_user").await;
}

/// A retired record dies with its successor and the successor with it: deleting either side
/// of a cycle deletes both, whoever the sides belong to (an anonymous session logged in).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn deleting_either_side_of_a_cycle_deletes_both(store: Arc<dyn SessionStore>) {
    let until = now().saturating_add(10 * MINUTE);
    for delete_old in [false, true] {
        let old = fresh_key();
        store
            .create(&old, &sample_record(), None)
            .await
            .expect("create");
        let new = fresh_key();
        assert_eq!(
            store
                .cycle(&old, &new, &user_record("gil", now()), until, None)
                .await
                .expect("cycle"),
            Admission::admitted()
        );
        let (target, other) = if delete_old {
            (&old, &new)
        } else {
            (&new, &old)
        };
        assert!(store.delete(target).await.expect("delete"));
        must_be_gone(&*store, other, "the other side of a deleted cycle").await;
        must_be_gone(&*store, target, "the deleted side").await;
        assert!(store.list_for_user("gil").await.expect("list").is_empty());
    }
    // A chain of two cycles within the grace: deleting the newest reaches back to the first.
    let a = fresh_key();
    let b = fresh_key();
    let c = fresh_key();
    store
        .create(&a, &user_record("gil", now()), None)
        .await
        .expect("create");
    store
        .cycle(&a, &b, &user_record("gil", now()), until, None)
        .await
        .expect("cycle");
    store
        .cycle(&b, &c, &user_record("gil", now()), until, None)
        .await
        .expect("cycle");
    assert!(store.delete(&c).await.expect("delete"));
    must_be_gone(&*store, &a, "the first of a chain").await;
    must_be_gone(&*store, &b, "the middle of a chain").await;
}

/// `list_for_user` lists live sessions oldest first and follows logins (cycles to another user)
/// and logouts (deletes).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn per_user_index_lists_and_follows_logins(store: Arc<dyn SessionStore>) {
    let base = now().saturating_sub(HOUR);
    let keys: Vec<SessionKey> = (0..3).map(|_| fresh_key()).collect();
    // Created out of order: the list must still be oldest first.
    for (i, key) in [2u64, 0, 1].iter().zip(&keys) {
        let mut record = user_record("gus", base.saturating_add(Duration::from_secs(*i)));
        record.metadata = SessionMetadata::with_user_agent(&format!("agent-{i}"));
        store.create(key, &record, None).await.expect("create");
    }
    let bob = fresh_key();
    store
        .create(&bob, &user_record("bob", base), None)
        .await
        .expect("create");
    let anonymous = fresh_key();
    store
        .create(&anonymous, &sample_record(), None)
        .await
        .expect("create");

    let list = store.list_for_user("gus").await.expect("list");
    let listed: Vec<SessionKey> = list.iter().map(|i| i.key).collect();
    assert_eq!(listed, vec![keys[1], keys[2], keys[0]], "oldest first");
    assert_eq!(list[0].metadata.user_agent.as_deref(), Some("agent-0"));
    assert_eq!(list[0].created_at, base);
    assert!(store
        .list_for_user("nobody")
        .await
        .expect("list")
        .is_empty());

    // Log the anonymous session in as gus (a cycle), and log bob in on one of gus's sessions.
    let until = now().saturating_add(MINUTE);
    let gus_login = fresh_key();
    assert_eq!(
        store
            .cycle(
                &anonymous,
                &gus_login,
                &user_record("gus", now()),
                until,
                None
            )
            .await
            .expect("cycle"),
        Admission::admitted()
    );
    let bob_login = fresh_key();
    assert_eq!(
        store
            .cycle(
                &keys[0],
                &bob_login,
                &user_record("bob", now()),
                until,
                None
            )
            .await
            .expect("cycle"),
        Admission::admitted()
    );
    let gus: Vec<SessionKey> = store
        .list_for_user("gus")
        .await
        .expect("list")
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(gus.len(), 3);
    assert!(gus.contains(&gus_login) && !gus.contains(&keys[0]));
    assert_eq!(store.list_for_user("bob").await.expect("list").len(), 2);
    // Logging out deletes the session, and it leaves the index.
    assert!(store.delete(&keys[1]).await.expect("delete"));
    assert_eq!(store.list_for_user("gus").await.expect("list").len(), 2);
}

/// `delete_all_for_user` removes every session of the user but the kept one, returns the
/// count, and leaves other users alone.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn delete_all_for_user_keeps_one(store: Arc<dyn SessionStore>) {
    let keys: Vec<SessionKey> = (0..4).map(|_| fresh_key()).collect();
    for key in &keys {
        store
            .create(key, &user_record("hal", now()), None)
            .await
            .expect("create");
    }
    let other = fresh_key();
    store
        .create(&other, &user_record("ivy", now()), None)
        .await
        .expect("create");

    assert_eq!(
        store
            .delete_all_for_user("hal", Some(&keys[2]))
            .await
            .expect("delete_all"),
        3
    );
    for (i, key) in keys.iter().enumerate() {
        if i == 2 {
            must_load(&*store, key, "the kept session").await;
        } else {
            must_be_gone(&*store, key, "a revoked session").await;
        }
    }
    let left: Vec<SessionKey> = store
        .list_for_user("hal")
        .await
        .expect("list")
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(left, vec![keys[2]]);
    must_load(&*store, &other, "another user's session").await;

    assert_eq!(
        store
            .delete_all_for_user("hal", None)
            .await
            .expect("delete_all"),
        1
    );
    must_be_gone(&*store, &keys[2], "after log out everywhere").await;
    assert_eq!(
        store
            .delete_all_for_user("hal", None)
            .await
            .expect("delete_all"),
        0
    );
    assert_eq!(store.count().await.expect("count"), 1);
}

fn manager(
    store: Arc<dyn SessionStore>,
    cap: usize,
    policy: SessionCapPolicy,
) -> (SessionManager, Arc<Mutex<Vec<SessionEvent>>>) {
    manager_with_clock(store, cap, policy, Arc::new(latchkey_session::SystemClock))
}

/// [`manager`] on an injected clock, for checks that need distinct creation times without
/// sleeping. The store keeps its own clock, so the injected one must stay close to real time.
fn manager_with_clock(
    store: Arc<dyn SessionStore>,
    cap: usize,
    policy: SessionCapPolicy,
    clock: Arc<dyn latchkey_session::Clock>,
) -> (SessionManager, Arc<Mutex<Vec<SessionEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let key = CookieKey::from_secret(&[7; 32]).expect("key");
    let manager = SessionManager::builder(store, key)
        .max_sessions_per_user(cap, policy)
        .cycle_grace(Duration::ZERO)
        .clock(clock)
        .event_hook(move |e| sink.lock().expect("events").push(e.clone()))
        .build()
        .expect("manager");
    (manager, events)
}

async fn login(
    manager: &SessionManager,
    user: &str,
) -> Result<String, latchkey_session::SessionError> {
    let session = manager.session(RequestHeaders::new());
    session.login(user).await?;
    let response = session.finish(RequestOutcome::Success).await?;
    let cookie = response.set_cookie().expect("login sets a cookie");
    Ok(cookie
        .as_str()
        .split(';')
        .next()
        .expect("name=value")
        .to_owned())
}

async fn user_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    let session = manager.session(RequestHeaders::new().cookie(cookie.as_bytes()));
    let user = session.user_id().await.expect("load");
    session
        .finish(RequestOutcome::Success)
        .await
        .expect("finish");
    user
}

/// The per-user cap, enforced by the manager on top of this store: with a cap of 2 and
/// `RevokeOldest` a third login revokes the oldest session; with `Refuse` it is refused.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn per_user_cap_through_the_manager(store: Arc<dyn SessionStore>) {
    // Distinct creation times without sleeping: the manager's clock is stepped by hand.
    let clock = latchkey_session::ManualClock::new(now());
    let (revoking, events) = manager_with_clock(
        Arc::clone(&store),
        2,
        SessionCapPolicy::RevokeOldest,
        Arc::new(clock.clone()),
    );
    let first = login(&revoking, "jo").await.expect("login 1");
    clock.advance(Duration::from_millis(5));
    let second = login(&revoking, "jo").await.expect("login 2");
    clock.advance(Duration::from_millis(5));
    let third = login(&revoking, "jo").await.expect("login 3");
    assert_eq!(
        user_of(&revoking, &first).await,
        None,
        "the oldest session was revoked"
    );
    assert_eq!(user_of(&revoking, &second).await.as_deref(), Some("jo"));
    assert_eq!(user_of(&revoking, &third).await.as_deref(), Some("jo"));
    assert_eq!(store.list_for_user("jo").await.expect("list").len(), 2);
    assert!(events
        .lock()
        .expect("events")
        .iter()
        .any(|e| matches!(e, SessionEvent::Revoked { user_id, .. } if user_id == "jo")));

    let (refusing, _) = manager(Arc::clone(&store), 2, SessionCapPolicy::Refuse);
    match login(&refusing, "jo").await {
        Err(latchkey_session::SessionError::TooManySessions) => {}
        other => panic!("a login over the cap must be refused, got {other:?}"),
    }
    assert_eq!(store.list_for_user("jo").await.expect("list").len(), 2);
}

/// Two requests that change different keys of one session at the same time both survive
/// (repeated 50 times to give a lost update a chance to show).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn concurrent_writers_on_different_keys_both_survive(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    store
        .create(&key, &sample_record(), None)
        .await
        .expect("create");
    for round in 0..50 {
        let mut tasks = JoinSet::new();
        for writer in ["a", "b"] {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let t = now();
                let delta = Delta::new(t, t.saturating_add(30 * MINUTE))
                    .set(format!("{writer}{round}"), json!(round));
                assert!(store.save(&key, &delta).await.expect("save"));
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("writer task");
        }
    }
    let loaded = must_load(&*store, &key, "after concurrent writers").await;
    for round in 0..50 {
        for writer in ["a", "b"] {
            assert_eq!(
                loaded.data.get_value(&format!("{writer}{round}")),
                Some(&json!(round)),
                "write {writer}{round} was lost"
            );
        }
    }
    assert_eq!(
        loaded.data.get_value("k"),
        Some(&json!("v")),
        "an untouched key was lost"
    );
}

/// 1,000 sessions created, loaded and saved from 50 concurrent tasks: none is lost or mixed up.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn thousand_concurrent_sessions_nothing_lost(store: Arc<dyn SessionStore>) {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut mine = Vec::with_capacity(PER_TASK);
            for i in 0..PER_TASK {
                let key = fresh_key();
                let mut record = sample_record();
                let tag = json!({"task": task, "i": i});
                record.data.insert_value("tag", tag.clone());
                store.create(&key, &record, None).await.expect("create");
                tokio::task::yield_now().await;
                let loaded = store.load(&key).await.expect("load").expect("just created");
                assert_eq!(loaded.data.get_value("tag"), Some(&tag));
                let t = now();
                let delta = Delta::new(t, t.saturating_add(30 * MINUTE)).set("saved", json!(i));
                assert!(store.save(&key, &delta).await.expect("save"));
                mine.push((key, tag, i));
            }
            mine
        });
    }
    let mut all: Vec<(SessionKey, Value, usize)> = Vec::with_capacity(TASKS * PER_TASK);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.expect("task"));
    }
    assert_eq!(all.len(), TASKS * PER_TASK);
    for (key, tag, i) in &all {
        let loaded = must_load(&*store, key, "one of 1,000 concurrent sessions").await;
        assert_eq!(loaded.data.get_value("tag"), Some(tag));
        assert_eq!(loaded.data.get_value("saved"), Some(&json!(i)));
    }
    assert_eq!(store.count().await.expect("count"), 1000);
}

/// `count` counts created sessions and forgets deleted ones.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn count_counts_live_sessions(store: Arc<dyn SessionStore>) {
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "a fresh store is empty"
    );
    let keys: Vec<SessionKey> = (0..5).map(|_| fresh_key()).collect();
    for key in &keys {
        store
            .create(key, &sample_record(), None)
            .await
            .expect("create");
    }
    assert_eq!(store.count().await.expect("count"), 5);
    store.delete(&keys[0]).await.expect("delete");
    assert_eq!(store.count().await.expect("count"), 4);
}

/// With real time: sessions past their idle deadline, their absolute deadline (even if touched
/// beyond it) or their retirement are never returned by `load`, not listed, not counted, and
/// `save`/`touch` on them return `false`; a live one next to them is unaffected. About 1.2 s.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn expired_sessions_are_never_returned(store: Arc<dyn SessionStore>) {
    let t = now();
    let soon = t.saturating_add(Duration::from_millis(600));
    let far = t.saturating_add(HOUR);

    let idle = fresh_key();
    let mut record = user_record("kim", t);
    record.idle_deadline = soon;
    store.create(&idle, &record, None).await.expect("create");

    let absolute = fresh_key();
    let mut record = user_record("kim", t);
    record.absolute_deadline = soon;
    store
        .create(&absolute, &record, None)
        .await
        .expect("create");
    // Touching past the absolute deadline must not keep it alive.
    assert!(store.touch(&absolute, t, far).await.expect("touch"));

    let retired = fresh_key();
    store
        .create(&retired, &user_record("kim", t), None)
        .await
        .expect("create");
    let successor = fresh_key();
    assert_eq!(
        store
            .cycle(&retired, &successor, &sample_record(), soon, None)
            .await
            .expect("cycle"),
        Admission::admitted()
    );

    let live = fresh_key();
    store
        .create(&live, &user_record("kim", t), None)
        .await
        .expect("create");

    assert_eq!(store.count().await.expect("count"), 5);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    for (key, what) in [
        (&idle, "idle-expired"),
        (&absolute, "absolute-expired"),
        (&retired, "retired"),
    ] {
        must_be_gone(&*store, key, what).await;
        let n = now();
        assert!(
            !store
                .touch(key, n, n.saturating_add(HOUR))
                .await
                .expect("touch"),
            "touch of an expired ({what}) session must be false"
        );
        let delta = Delta::new(n, n.saturating_add(HOUR)).set("x", json!(1));
        assert!(
            !store.save(key, &delta).await.expect("save"),
            "save of an expired ({what}) session must be false"
        );
        must_be_gone(&*store, key, what).await;
    }
    let listed: Vec<SessionKey> = store
        .list_for_user("kim")
        .await
        .expect("list")
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(listed, vec![live], "only the live session is listed");
    assert_eq!(
        store.count().await.expect("count"),
        2,
        "expired sessions are not counted (the live one and the anonymous successor remain)"
    );
    must_load(&*store, &live, "the live session").await;
    // An expired key is free again.
    store
        .create(&idle, &sample_record(), None)
        .await
        .expect("create over an expired key");
}

/// A manager with a 10 s cycle grace (so retired IDs stay loadable during the check) and no
/// cap, recording its events.
fn graceful_manager(store: Arc<dyn SessionStore>) -> SessionManager {
    let key = CookieKey::from_secret(&[7; 32]).expect("key");
    SessionManager::builder(store, key)
        .cycle_grace(Duration::from_secs(10))
        .build()
        .expect("manager")
}

fn cookie_of(response: &latchkey_session::SessionResponse) -> Option<String> {
    response
        .set_cookie()
        .filter(|c| !c.is_removal())
        .and_then(|c| c.as_str().split(';').next())
        .map(str::to_owned)
}

/// Revocation wins the race against an ID change in flight: a request loads its session,
/// the session is revoked (log out everywhere, or remotely by its key), and then the request
/// calls `cycle_id()` or `login()`. No session survives, the response clears the cookie, and
/// the store holds nothing of that user.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn revoke_between_load_and_cycle_leaves_no_session(store: Arc<dyn SessionStore>) {
    let manager = graceful_manager(Arc::clone(&store));
    for (n, (remote, by_login)) in [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        let user = format!("lea{n}");
        let cookie = login(&manager, &user).await.expect("login");
        let in_flight = manager.session(RequestHeaders::new().cookie(cookie.as_bytes()));
        assert_eq!(
            in_flight.user_id().await.expect("load").as_deref(),
            Some(user.as_str())
        );
        if remote {
            let key = in_flight.key().await.expect("key").expect("stored");
            assert!(store.delete(&key).await.expect("remote revoke"));
        } else {
            assert_eq!(manager.revoke_all_for_user(&user).await.expect("revoke"), 1);
        }
        if by_login {
            in_flight.login(&user).await.expect("login call");
        } else {
            in_flight.cycle_id().await.expect("cycle_id call");
        }
        let response = in_flight
            .finish(RequestOutcome::Success)
            .await
            .expect("finish");
        let what = format!("remote={remote} login={by_login}");
        assert!(
            response.set_cookie().is_some_and(|c| c.is_removal()),
            "{what}: the response must clear the cookie, got {response:?}"
        );
        assert!(
            store.list_for_user(&user).await.expect("list").is_empty(),
            "{what}: no session of the user may survive"
        );
        assert_eq!(user_of(&manager, &cookie).await, None, "{what}");
    }
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "nothing live is left"
    );
}

/// Log out on the new ID after a login also kills the pre-login ID still in its grace, and a
/// retired ID can never be cycled into a new live session.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn logout_kills_the_retired_predecessor_and_it_cannot_be_promoted(
    store: Arc<dyn SessionStore>,
) {
    let manager = graceful_manager(Arc::clone(&store));
    let anonymous = |manager: SessionManager| async move {
        let s = manager.session(RequestHeaders::new());
        s.insert("cart", &[1, 2]).await.expect("insert");
        cookie_of(&s.finish(RequestOutcome::Success).await.expect("finish")).expect("cookie")
    };
    let login_on = |manager: SessionManager, cookie: String| async move {
        let s = manager.session(RequestHeaders::new().cookie(cookie.as_bytes()));
        s.login("ned").await.expect("login");
        cookie_of(&s.finish(RequestOutcome::Success).await.expect("finish")).expect("cookie")
    };

    // Promotion: a request on the retired pre-login ID asks for a new ID.
    let before = anonymous(manager.clone()).await;
    let after = login_on(manager.clone(), before.clone()).await;
    let stale = manager.session(RequestHeaders::new().cookie(before.as_bytes()));
    assert!(
        stale.get_value("cart").await.expect("load").is_some(),
        "within the grace the old ID is still readable"
    );
    stale.cycle_id().await.expect("cycle_id call");
    let response = stale.finish(RequestOutcome::Success).await.expect("finish");
    assert!(
        cookie_of(&response).is_none(),
        "a retired ID must not be cycled into a new session, got {response:?}"
    );
    assert_eq!(store.list_for_user("ned").await.expect("list").len(), 1);
    assert_eq!(user_of(&manager, &after).await.as_deref(), Some("ned"));

    // Logout on the new ID: the old one dies with it.
    let s = manager.session(RequestHeaders::new().cookie(after.as_bytes()));
    s.logout();
    let response = s.finish(RequestOutcome::Success).await.expect("finish");
    assert!(response.set_cookie().is_some_and(|c| c.is_removal()));
    let stale = manager.session(RequestHeaders::new().cookie(before.as_bytes()));
    assert!(
        stale.is_empty().await.expect("load"),
        "after logout the pre-login ID must be gone, not readable for the rest of the grace"
    );
    stale.cycle_id().await.expect("cycle_id call");
    stale.insert("cart", &[3]).await.expect("insert");
    let response = stale.finish(RequestOutcome::Success).await.expect("finish");
    // Writing to a dead ID starts a brand-new anonymous session at most, never a logged-in one.
    if let Some(cookie) = cookie_of(&response) {
        assert_eq!(user_of(&manager, &cookie).await, None);
    }
    assert!(store.list_for_user("ned").await.expect("list").is_empty());
}

/// Revocation wins against many ID changes in flight at once: `delete_all_for_user` races
/// 16 concurrent `cycle`s of the user's sessions (10 rounds). When everything is done, not
/// one session of the user — old or new — is loadable.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn revoke_all_races_concurrent_cycles(store: Arc<dyn SessionStore>) {
    for round in 0..10 {
        let user = format!("max{round}");
        let olds: Vec<SessionKey> = (0..16).map(|_| fresh_key()).collect();
        for old in &olds {
            store
                .create(old, &user_record(&user, now()), None)
                .await
                .expect("create");
        }
        let news: Vec<SessionKey> = (0..16).map(|_| fresh_key()).collect();
        let barrier = Arc::new(tokio::sync::Barrier::new(17));
        let mut tasks = JoinSet::new();
        for (old, new) in olds.iter().copied().zip(news.iter().copied()) {
            let (store, barrier, user) = (Arc::clone(&store), Arc::clone(&barrier), user.clone());
            tasks.spawn(async move {
                barrier.wait().await;
                let until = now().saturating_add(10 * MINUTE);
                store
                    .cycle(&old, &new, &user_record(&user, now()), until, None)
                    .await
                    .expect("cycle");
            });
        }
        {
            let (store, barrier, user) = (Arc::clone(&store), Arc::clone(&barrier), user.clone());
            tasks.spawn(async move {
                barrier.wait().await;
                store
                    .delete_all_for_user(&user, None)
                    .await
                    .expect("delete_all");
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task");
        }
        // Cycles that finished before the revocation left successors it had to reach; the
        // rest must have found their source gone.
        for key in olds.iter().chain(&news) {
            must_be_gone(
                &*store,
                key,
                &format!("round {round}: after log out everywhere"),
            )
            .await;
        }
        assert!(store.list_for_user(&user).await.expect("list").is_empty());
    }
}

/// The per-user cap holds under concurrency: 64 logins of one user at once with a cap of 2
/// leave exactly 2 live sessions — with `RevokeOldest` (and one `Revoked` event per evicted
/// session) and with `Refuse` (and every other login refused).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn cap_holds_under_concurrent_logins(store: Arc<dyn SessionStore>) {
    for policy in [SessionCapPolicy::RevokeOldest, SessionCapPolicy::Refuse] {
        let user = format!("cap-{policy:?}");
        let (manager, events) = manager(Arc::clone(&store), 2, policy);
        let mut tasks = JoinSet::new();
        for _ in 0..64 {
            let (manager, user) = (manager.clone(), user.clone());
            tasks.spawn(async move {
                let session = manager.session(RequestHeaders::new());
                session.login(&user).await?;
                let response = session.finish(RequestOutcome::Success).await?;
                // No cookie: a backend may evict a login still in flight (Cluster).
                Ok::<_, latchkey_session::SessionError>(cookie_of(&response))
            });
        }
        let mut cookies = Vec::new();
        let mut refused = 0;
        while let Some(done) = tasks.join_next().await {
            match done.expect("task") {
                Ok(cookie) => cookies.extend(cookie),
                Err(latchkey_session::SessionError::TooManySessions) => refused += 1,
                Err(other) => panic!("{policy:?}: unexpected login error {other:?}"),
            }
        }
        let listed = store.list_for_user(&user).await.expect("list").len();
        assert_eq!(listed, 2, "{policy:?}: exactly the cap is live");
        let mut live = 0;
        for cookie in &cookies {
            if user_of(&manager, cookie).await.is_some() {
                live += 1;
            }
        }
        assert_eq!(live, 2, "{policy:?}: exactly the cap of cookies still work");
        let revoked = events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| matches!(e, SessionEvent::Revoked { user_id, .. } if *user_id == user))
            .count();
        match policy {
            SessionCapPolicy::Refuse => {
                assert_eq!(refused, 62, "Refuse: every login over the cap is refused");
                assert_eq!(revoked, 0);
            }
            _ => {
                assert_eq!(refused, 0, "RevokeOldest refuses nothing");
                assert_eq!(revoked, 62, "one Revoked event per evicted session");
            }
        }
    }
}

/// Emits one `#[tokio::test]` per conformance check, each against a fresh store from
/// `$factory` (an expression callable with no arguments that returns a future of
/// `Arc<dyn SessionStore>`; it is evaluated once per test). One failing check does not hide
/// the others. Invoke it once per backend configuration, inside a module of its own:
///
/// ```
/// mod memory {
///     use std::sync::Arc;
///     use latchkey_session::{MemoryStore, SessionStore};
///
///     latchkey_testkit::session_store_conformance!(|| async {
///         Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>
///     });
/// }
/// # fn main() {}
/// ```
///
/// A backend whose store needs something kept alive for the test (a private server) uses the
/// `with_guard:` form: the factory returns `(store, guard)`, and the guard is dropped when the
/// test ends.
///
/// ```
/// mod memory_with_guard {
///     use std::sync::Arc;
///     use latchkey_session::{MemoryStore, SessionStore};
///
///     latchkey_testkit::session_store_conformance!(with_guard: || async {
///         (Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>, ())
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! session_store_conformance {
    (with_guard: $factory:expr) => {
        $crate::session_store_conformance!(@all $factory);
    };
    ($factory:expr) => {
        $crate::session_store_conformance!(@all || async {
            let factory = $factory;
            (factory().await, ())
        });
    };
    (@all $factory:expr) => {
        $crate::session_store_conformance!(@checks $factory;
            create_then_load_round_trips,
            load_of_unknown_key_is_none,
            ping_answers_and_stores_nothing,
            create_never_overwrites,
            save_applies_only_the_delta,
            touch_extends_without_rewriting_data,
            delete_removes_the_session,
            save_and_touch_never_resurrect,
            cycle_moves_the_session_and_retires_the_old_key,
            deleting_either_side_of_a_cycle_deletes_both,
            per_user_index_lists_and_follows_logins,
            delete_all_for_user_keeps_one,
            per_user_cap_through_the_manager,
            cap_holds_under_concurrent_logins,
            revoke_between_load_and_cycle_leaves_no_session,
            logout_kills_the_retired_predecessor_and_it_cannot_be_promoted,
            revoke_all_races_concurrent_cycles,
            concurrent_writers_on_different_keys_both_survive,
            thousand_concurrent_sessions_nothing_lost,
            count_counts_live_sessions,
            expired_sessions_are_never_returned,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let factory = $factory;
                let (store, _guard) = factory().await;
                $crate::$check(store).await;
            }
        )*
    };
}
