//! Test kit for latchkey (not published).
//!
//! The [`SessionStore`] conformance suite: every behaviour `latchkey-session`'s manager relies
//! on, as plain `pub async fn`s. Every backend's tests call [`run_conformance_suite`] with a
//! factory that returns a fresh, empty store; each check is also callable on its own.
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
//! latchkey_testkit::run_conformance_suite(|| async {
//!     Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>
//! })
//! .await;
//! # }
//! ```
//!
//! The [`redis`] module starts private `redis-server` processes for the Redis backend's tests;
//! [`FaultyStore`] wraps any store to count calls and inject outages and ID collisions.

mod faulty;
pub mod redis;

pub use faulty::{FaultyStore, UNAVAILABLE_DETAIL};

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use latchkey_session::{
    CookieKey, Delta, SessionCapPolicy, SessionEvent, SessionId, SessionKey, SessionManager,
    SessionMetadata, SessionRecord, SessionStore, StoreError, Timestamp,
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

/// Runs every check, each against a fresh store from `factory`.
///
/// # Panics
///
/// On the first guarantee the store breaks.
pub async fn run_conformance_suite<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SessionStore>>,
{
    create_then_load_round_trips(factory().await).await;
    load_of_unknown_key_is_none(factory().await).await;
    create_never_overwrites(factory().await).await;
    save_applies_only_the_delta(factory().await).await;
    touch_extends_without_rewriting_data(factory().await).await;
    delete_removes_the_session(factory().await).await;
    save_and_touch_never_resurrect(factory().await).await;
    retire_keeps_the_session_readable_but_unlisted(factory().await).await;
    per_user_index_lists_and_follows_user_changes(factory().await).await;
    delete_all_for_user_keeps_one(factory().await).await;
    per_user_cap_through_the_manager(factory().await).await;
    concurrent_writers_on_different_keys_both_survive(factory().await).await;
    thousand_concurrent_sessions_nothing_lost(factory().await).await;
    count_counts_live_sessions(factory().await).await;
    expired_sessions_are_never_returned(factory().await).await;
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
    store.create(&key, &record).await.expect("create");
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

/// A second `create` under a live key fails with `Conflict` and changes nothing.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn create_never_overwrites(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let original = sample_record();
    store.create(&key, &original).await.expect("create");
    let mut intruder = sample_record();
    intruder.data.insert_value("k", json!("overwritten"));
    intruder.user_id = Some("mallory".into());
    match store.create(&key, &intruder).await {
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
    store.create(&key, &record).await.expect("create");

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

    let with_meta = Delta::new(t, idle).metadata(SessionMetadata::with_user_agent("curl/8"));
    assert!(store.save(&key, &with_meta).await.expect("save"));
    let loaded = must_load(&*store, &key, "after metadata").await;
    assert_eq!(loaded.metadata.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(
        loaded.data.len(),
        1,
        "a metadata-only delta leaves data alone"
    );
}

/// `touch` moves `last_seen` and the idle deadline and leaves the data alone.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn touch_extends_without_rewriting_data(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    let record = sample_record();
    store.create(&key, &record).await.expect("create");
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
        .create(&key, &user_record("dora", now()))
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
        .create(&key, &sample_record())
        .await
        .expect("create after delete");
}

/// `save`, `touch` and `retire` on a deleted session return `false` and do not recreate it.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn save_and_touch_never_resurrect(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    store
        .create(&key, &user_record("erin", now()))
        .await
        .expect("create");
    store.delete(&key).await.expect("delete");
    let t = now();
    let idle = t.saturating_add(30 * MINUTE);
    let delta = Delta::new(t, idle)
        .set("x", json!(1))
        .user(Some("erin".into()));
    assert!(
        !store.save(&key, &delta).await.expect("save"),
        "save of a deleted session is false"
    );
    assert!(
        !store.touch(&key, t, idle).await.expect("touch"),
        "touch of a deleted session is false"
    );
    assert!(
        !store.retire(&key, idle).await.expect("retire"),
        "retire of a deleted session is false"
    );
    must_be_gone(&*store, &key, "after save/touch on a deleted session").await;
    assert!(store.list_for_user("erin").await.expect("list").is_empty());
    assert_eq!(store.count().await.expect("count"), 0);
}

/// A retired session stays loadable until its grace deadline, is not listed for its user,
/// cannot be extended by `touch`, and is still removed by `delete_all_for_user` (which does
/// not count it: it counts only what `list_for_user` lists).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn retire_keeps_the_session_readable_but_unlisted(store: Arc<dyn SessionStore>) {
    let key = fresh_key();
    store
        .create(&key, &user_record("fay", now()))
        .await
        .expect("create");
    let until = now().saturating_add(10 * MINUTE);
    assert!(store.retire(&key, until).await.expect("retire"));
    let loaded = must_load(&*store, &key, "retired, within grace").await;
    assert!(
        loaded.expires_at() <= until,
        "retire caps the expiry at `until`"
    );
    assert!(
        store.list_for_user("fay").await.expect("list").is_empty(),
        "a retired session is not listed"
    );
    let t = now();
    store
        .touch(&key, t, t.saturating_add(HOUR))
        .await
        .expect("touch");
    let loaded = must_load(&*store, &key, "retired, touched").await;
    assert!(
        loaded.expires_at() <= until,
        "touch cannot extend a retired session"
    );
    assert_eq!(
        store
            .delete_all_for_user("fay", None)
            .await
            .expect("delete_all"),
        0,
        "a retired ID is deleted but not counted: it was never listed"
    );
    must_be_gone(&*store, &key, "retired, after delete_all_for_user").await;
}

/// `list_for_user` lists live sessions oldest first and follows user changes made by `save`.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn per_user_index_lists_and_follows_user_changes(store: Arc<dyn SessionStore>) {
    let base = now().saturating_sub(HOUR);
    let keys: Vec<SessionKey> = (0..3).map(|_| fresh_key()).collect();
    // Created out of order: the list must still be oldest first.
    for (i, key) in [2u64, 0, 1].iter().zip(&keys) {
        let mut record = user_record("gus", base.saturating_add(Duration::from_secs(*i)));
        record.metadata = SessionMetadata::with_user_agent(&format!("agent-{i}"));
        store.create(key, &record).await.expect("create");
    }
    let bob = fresh_key();
    store
        .create(&bob, &user_record("bob", base))
        .await
        .expect("create");
    let anonymous = fresh_key();
    store
        .create(&anonymous, &sample_record())
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

    // Log the anonymous session in as gus, and move one of gus's sessions to bob.
    let t = now();
    let idle = t.saturating_add(30 * MINUTE);
    assert!(store
        .save(&anonymous, &Delta::new(t, idle).user(Some("gus".into())))
        .await
        .expect("save"));
    assert!(store
        .save(&keys[0], &Delta::new(t, idle).user(Some("bob".into())))
        .await
        .expect("save"));
    let gus: Vec<SessionKey> = store
        .list_for_user("gus")
        .await
        .expect("list")
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(gus.len(), 3);
    assert!(gus.contains(&anonymous) && !gus.contains(&keys[0]));
    assert_eq!(store.list_for_user("bob").await.expect("list").len(), 2);
    // Logging out (user None) leaves the index.
    assert!(store
        .save(&keys[1], &Delta::new(t, idle).user(None))
        .await
        .expect("save"));
    assert_eq!(store.list_for_user("gus").await.expect("list").len(), 2);
    assert_eq!(
        must_load(&*store, &keys[1], "logged out").await.user_id,
        None
    );
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
            .create(key, &user_record("hal", now()))
            .await
            .expect("create");
    }
    let other = fresh_key();
    store
        .create(&other, &user_record("ivy", now()))
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
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let key = CookieKey::from_secret(&[7; 32]).expect("key");
    let manager = SessionManager::builder(store, key)
        .max_sessions_per_user(cap, policy)
        .cycle_grace(Duration::ZERO)
        .event_hook(move |e| sink.lock().expect("events").push(e.clone()))
        .build()
        .expect("manager");
    (manager, events)
}

async fn login(
    manager: &SessionManager,
    user: &str,
) -> Result<String, latchkey_session::SessionError> {
    let session = manager.load_from_headers(None, None);
    session.login(user).await?;
    let response = manager.finish(&session).await?;
    let cookie = response.set_cookie().expect("login sets a cookie");
    Ok(cookie
        .as_str()
        .split(';')
        .next()
        .expect("name=value")
        .to_owned())
}

async fn user_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    let session = manager.load_from_headers(Some(cookie.as_bytes()), None);
    let user = session.user_id().await.expect("load");
    manager.finish(&session).await.expect("finish");
    user
}

/// The per-user cap, enforced by the manager on top of this store: with a cap of 2 and
/// `RevokeOldest` a third login revokes the oldest session; with `Refuse` it is refused.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn per_user_cap_through_the_manager(store: Arc<dyn SessionStore>) {
    let (revoking, events) = manager(Arc::clone(&store), 2, SessionCapPolicy::RevokeOldest);
    let first = login(&revoking, "jo").await.expect("login 1");
    // created_at orders the sessions; make sure the first is strictly older.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = login(&revoking, "jo").await.expect("login 2");
    tokio::time::sleep(Duration::from_millis(5)).await;
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
    store.create(&key, &sample_record()).await.expect("create");
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
                store.create(&key, &record).await.expect("create");
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
        store.create(key, &sample_record()).await.expect("create");
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
    store.create(&idle, &record).await.expect("create");

    let absolute = fresh_key();
    let mut record = user_record("kim", t);
    record.absolute_deadline = soon;
    store.create(&absolute, &record).await.expect("create");
    // Touching past the absolute deadline must not keep it alive.
    assert!(store.touch(&absolute, t, far).await.expect("touch"));

    let retired = fresh_key();
    store
        .create(&retired, &user_record("kim", t))
        .await
        .expect("create");
    assert!(store.retire(&retired, soon).await.expect("retire"));

    let live = fresh_key();
    store
        .create(&live, &user_record("kim", t))
        .await
        .expect("create");

    assert_eq!(store.count().await.expect("count"), 4);
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
        1,
        "expired sessions are not counted"
    );
    must_load(&*store, &live, "the live session").await;
    // An expired key is free again.
    store
        .create(&idle, &sample_record())
        .await
        .expect("create over an expired key");
}
