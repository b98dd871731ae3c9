//! Basic round trips on a single node (the conformance suite covers the full contract).

mod common;

use std::time::Duration;

use common::*;
use latchkey_session::{Delta, SessionStore, StoreError};
use serde_json::json;

#[tokio::test]
async fn create_load_save_delete() {
    let server = server();
    let store = store(&server);
    let (_id, key, mut record) = fresh(Duration::from_secs(60));
    record.data.insert("cart", &vec![1, 2]).unwrap();
    record.user_id = Some("alice".into());
    store.create(&key, &record).await.unwrap();
    assert!(matches!(
        store.create(&key, &record).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.load(&key).await.unwrap().unwrap(), record);

    let delta = Delta::new(now(), now().saturating_add(Duration::from_secs(60)))
        .set("theme", json!("dark"))
        .remove("cart");
    assert!(store.save(&key, &delta).await.unwrap());
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        loaded.data.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert!(!loaded.data.contains_key("cart"));

    let list = store.list_for_user("alice").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(store.delete(&key).await.unwrap());
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(store.list_for_user("alice").await.unwrap().is_empty());
    assert!(!store.save(&key, &delta).await.unwrap());
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn per_user_cap_revokes_the_oldest_in_the_same_step() {
    let server = server();
    let config = latchkey_redis::RedisStoreConfig::single(server.url())
        .max_sessions_per_user(2)
        .build()
        .unwrap();
    let store = latchkey_redis::RedisStore::new(config).unwrap();
    let mut keys = Vec::new();
    for i in 0..3u64 {
        let (_id, key, mut record) = fresh(Duration::from_secs(60));
        record.user_id = Some("erin".into());
        record.created_at =
            latchkey_session::Timestamp::from_unix_millis(record.created_at.as_unix_millis() + i);
        store.create(&key, &record).await.unwrap();
        keys.push(key);
    }
    // A session that joins the user by a save (login after an anonymous visit) counts too, and
    // is never the one revoked, even though it is the oldest.
    let (_id, anon, mut record) = fresh(Duration::from_secs(60));
    record.created_at = latchkey_session::Timestamp::from_unix_millis(1);
    store.create(&anon, &record).await.unwrap();
    let delta =
        Delta::new(now(), now().saturating_add(Duration::from_secs(60))).user(Some("erin".into()));
    assert!(store.save(&anon, &delta).await.unwrap());
    let listed: Vec<_> = store
        .list_for_user("erin")
        .await
        .unwrap()
        .iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(listed, vec![anon, keys[2]]);
    assert!(store.load(&keys[0]).await.unwrap().is_none());
    assert!(store.load(&keys[1]).await.unwrap().is_none());
}

#[tokio::test]
async fn odd_user_ids_get_their_own_index() {
    let server = server();
    let store = store(&server);
    // An empty user ID is still a user; braces in a user ID cannot reach another key.
    for user in ["", "a}b", "{x}", "user:{y}"] {
        let (_id, key, mut record) = fresh(Duration::from_secs(60));
        record.user_id = Some(user.to_owned());
        store.create(&key, &record).await.unwrap();
        let listed = store.list_for_user(user).await.unwrap();
        assert_eq!(listed.len(), 1, "{user:?}");
        assert_eq!(listed[0].key, key);
    }
    for user in ["", "a}b", "{x}", "user:{y}"] {
        assert_eq!(
            store.delete_all_for_user(user, None).await.unwrap(),
            1,
            "{user:?}"
        );
    }
    assert_eq!(store.count().await.unwrap(), 0);
}
