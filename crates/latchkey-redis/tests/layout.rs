//! What an operator sees in Redis: key names, TTLs that match the deadlines, and never a
//! session ID.

mod common;

use std::time::Duration;

use common::*;
use latchkey_session::{Delta, SessionMetadata, SessionStore};
use latchkey_testkit::redis::{RedisServer, RespValue};
use serde_json::json;

fn int(server: &RedisServer, args: &[&str]) -> i64 {
    match server.command(args).expect("raw command") {
        RespValue::Integer(n) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn strings(value: RespValue) -> Vec<String> {
    match value {
        RespValue::Array(Some(items)) => items
            .into_iter()
            .map(|v| match v {
                RespValue::Bulk(Some(s)) => s,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn keys_and_values_never_contain_the_session_id() {
    let server = server();
    let store = store(&server);
    let mut ids = Vec::new();
    for i in 0..20 {
        let (id, key, mut record) = fresh(Duration::from_secs(60));
        record.data.insert("n", &i).unwrap();
        record.data.insert("note", "some value").unwrap();
        record.user_id = Some(format!("user{}", i % 3));
        record.metadata = SessionMetadata::with_user_agent("test-agent/1.0");
        store.create(&key, &record, None).await.unwrap();
        let delta =
            Delta::new(now(), now().saturating_add(Duration::from_secs(60))).set("step", json!(i));
        assert!(store.save(&key, &delta).await.unwrap());
        assert_eq!(
            store.session_key_name(&key),
            format!("session:{{{}}}", key.to_hex())
        );
        ids.push(id);
    }

    // Test-only full listing: what `redis-cli --scan` shows.
    let keys = strings(server.command(&["KEYS", "*"]).unwrap());
    assert_eq!(keys.len(), 20 + 3, "{keys:?}");
    let mut dump = String::new();
    for key in &keys {
        dump.push_str(key);
        dump.push('\n');
        let kind = server.command(&["TYPE", key]).unwrap();
        let values = match kind {
            RespValue::Simple(t) if t == "hash" => server.command(&["HGETALL", key]).unwrap(),
            RespValue::Simple(t) if t == "zset" => server
                .command(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
                .unwrap(),
            other => panic!("unexpected key type {other:?} for {key}"),
        };
        for v in strings(values) {
            dump.push_str(&v);
            dump.push('\n');
        }
        assert!(
            key.starts_with("session:{") || key.starts_with("session:user:{"),
            "{key}"
        );
    }
    for id in &ids {
        let text = id.expose_secret();
        assert!(!dump.contains(&text), "the store holds a session ID");
        // Nor a recognisable chunk of it.
        assert!(!dump.contains(&text[..16]));
    }
    // The index holds key hashes, which the dump does contain: the check above is not vacuous.
    assert!(dump.contains(&ids[0].key().to_hex()));
}

#[tokio::test]
async fn ttls_follow_the_deadlines_and_redis_drops_dead_sessions() {
    let server = server();
    let store = store(&server);
    let (_id, key, mut record) = fresh(Duration::from_millis(800));
    record.user_id = Some("ttl-user".into());
    store.create(&key, &record, None).await.unwrap();
    let name = store.session_key_name(&key);
    let index = store.user_index_key_name("ttl-user");

    let pttl = int(&server, &["PTTL", &name]);
    assert!((1..=800).contains(&pttl), "PTTL {pttl}");
    // The index lives as long as its longest session's absolute deadline (one hour).
    let index_ttl = int(&server, &["PTTL", &index]);
    assert!(index_ttl > 3_500_000, "index PTTL {index_ttl}");

    // Touch moves the TTL with the idle deadline.
    assert!(store
        .touch(&key, now(), now().saturating_add(Duration::from_secs(30)))
        .await
        .unwrap());
    let pttl = int(&server, &["PTTL", &name]);
    assert!((20_000..=30_000).contains(&pttl), "PTTL after touch {pttl}");

    // Back to a short idle deadline; then nobody touches it and Redis drops it by itself.
    assert!(store
        .touch(
            &key,
            now(),
            now().saturating_add(Duration::from_millis(300))
        )
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    // EXISTS through the raw client, not the store: the key itself is gone.
    assert_eq!(int(&server, &["EXISTS", &name]), 0);
    assert!(store.load(&key).await.unwrap().is_none());
    // The expired session's index entry is pruned on the next read.
    assert!(store.list_for_user("ttl-user").await.unwrap().is_empty());
    assert_eq!(int(&server, &["ZCARD", &index]), 0);
}

#[tokio::test]
async fn absolute_deadline_caps_the_ttl_and_a_cycle_shortens_it() {
    let server = server();
    let store = store(&server);
    let (_id, key, mut record) = fresh(Duration::from_secs(600));
    record.absolute_deadline = now().saturating_add(Duration::from_secs(5));
    store.create(&key, &record, None).await.unwrap();
    let name = store.session_key_name(&key);
    let pttl = int(&server, &["PTTL", &name]);
    assert!((1..=5_000).contains(&pttl), "PTTL {pttl}");
    // Touch cannot move the expiry past the absolute deadline.
    store
        .touch(&key, now(), now().saturating_add(Duration::from_secs(600)))
        .await
        .unwrap();
    let pttl = int(&server, &["PTTL", &name]);
    assert!((1..=5_000).contains(&pttl), "PTTL after touch {pttl}");
    let (_id, successor, moved) = fresh(Duration::from_secs(600));
    let until = now().saturating_add(Duration::from_millis(200));
    assert_eq!(
        store
            .cycle(&key, &successor, &moved, until, None)
            .await
            .unwrap(),
        latchkey_session::Admission::admitted()
    );
    let pttl = int(&server, &["PTTL", &name]);
    assert!(
        (1..=200).contains(&pttl),
        "PTTL after the cycle retired it {pttl}"
    );
}

#[tokio::test]
async fn save_writes_only_the_changed_fields() {
    let server = server();
    let store = store(&server);
    let (_id, key, mut record) = fresh(Duration::from_secs(60));
    record.data.insert("keep", "untouched").unwrap();
    record.data.insert("drop", "soon gone").unwrap();
    store.create(&key, &record, None).await.unwrap();
    let name = store.session_key_name(&key);
    // Change the stored field behind the store's back: a delta that does not mention it must
    // not rewrite it.
    server
        .command(&["HSET", &name, ".keep", "\"changed by someone else\""])
        .unwrap();
    let delta = Delta::new(now(), now().saturating_add(Duration::from_secs(60)))
        .set("new", json!(1))
        .remove("drop");
    assert!(store.save(&key, &delta).await.unwrap());
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        loaded.data.get::<String>("keep").unwrap().as_deref(),
        Some("changed by someone else")
    );
    assert!(!loaded.data.contains_key("drop"));
    assert_eq!(loaded.data.get::<i64>("new").unwrap(), Some(1));
}

#[tokio::test]
async fn undecodable_record_is_corrupt_not_a_panic() {
    let server = server();
    let store = store(&server);
    let (_id, key, record) = fresh(Duration::from_secs(60));
    store.create(&key, &record, None).await.unwrap();
    let name = store.session_key_name(&key);
    server.command(&["HSET", &name, ".x", "{not json"]).unwrap();
    let err = store.load(&key).await.unwrap_err();
    assert!(
        matches!(err, latchkey_session::StoreError::Corrupt(_)),
        "{err:?}"
    );
    server.command(&["HSET", &name, "@t", "yesterday"]).unwrap();
    let err = store.load(&key).await.unwrap_err();
    assert!(
        matches!(err, latchkey_session::StoreError::Corrupt(_)),
        "{err:?}"
    );
}
