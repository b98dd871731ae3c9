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
    store.create(&key, &record, None).await.unwrap();
    assert!(matches!(
        store.create(&key, &record, None).await,
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
async fn odd_user_ids_get_their_own_index() {
    let server = server();
    let store = store(&server);
    // An empty user ID is still a user; braces in a user ID cannot reach another key.
    for user in ["", "a}b", "{x}", "user:{y}"] {
        let (_id, key, mut record) = fresh(Duration::from_secs(60));
        record.user_id = Some(user.to_owned());
        store.create(&key, &record, None).await.unwrap();
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
