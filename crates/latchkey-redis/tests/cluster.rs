//! Redis Cluster specifics: sessions spread over every master, the per-user index in another
//! slot, "log out everywhere" that reaches every node, and pruning of stale index entries.

#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::future::{join_all, BoxFuture};
use latchkey_session::{Delta, SessionStore, StoreError};
use latchkey_testkit::redis::{RedisCluster, RedisServer, RespValue};
use serde_json::json;

fn keys_on(node: &RedisServer) -> Vec<String> {
    match node.command(&["KEYS", "*"]).expect("KEYS") {
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

fn session_keys_per_node(nodes: &[RedisServer]) -> Vec<usize> {
    nodes
        .iter()
        .map(|n| keys_on(n).iter().filter(|k| !k.contains("user:")).count())
        .collect()
}

#[tokio::test]
async fn log_out_everywhere_reaches_every_node() {
    let cluster = cluster();
    let store = cluster_store(&cluster);
    let mut keys = Vec::new();
    for i in 0..30 {
        let (_id, key, mut record) = fresh(Duration::from_secs(60));
        record.user_id = Some("alice".into());
        record.data.insert("n", &i).unwrap();
        store.create(&key, &record, None).await.unwrap();
        keys.push(key);
    }
    // Another user's session must survive.
    let (_id, bob, mut record) = fresh(Duration::from_secs(60));
    record.user_id = Some("bob".into());
    store.create(&bob, &record, None).await.unwrap();

    let spread = session_keys_per_node(cluster.nodes());
    assert_eq!(spread.iter().sum::<usize>(), 31);
    assert!(
        spread.iter().all(|&n| n > 0),
        "sessions on every master: {spread:?}"
    );
    assert_eq!(store.list_for_user("alice").await.unwrap().len(), 30);
    assert_eq!(store.count().await.unwrap(), 31);

    // Keep one ("log out my other devices"); cycle another: both its sides must go too.
    let (_id, successor, mut moved) = fresh(Duration::from_secs(60));
    moved.user_id = Some("alice".into());
    let until = now().saturating_add(Duration::from_secs(10));
    assert_eq!(
        store
            .cycle(&keys[1], &successor, &moved, until, None)
            .await
            .unwrap(),
        latchkey_session::Admission::admitted()
    );
    let deleted = store
        .delete_all_for_user("alice", Some(&keys[0]))
        .await
        .unwrap();
    // 29 deleted: 28 originals and the successor; the retired one is not counted (it was not
    // listed either).
    assert_eq!(deleted, 29);
    for key in keys[1..].iter().chain([&successor]) {
        assert!(store.load(key).await.unwrap().is_none());
    }
    assert!(store.load(&keys[0]).await.unwrap().is_some());
    assert!(store.load(&bob).await.unwrap().is_some());
    assert_eq!(
        session_keys_per_node(cluster.nodes()).iter().sum::<usize>(),
        2
    );
    let left = store.list_for_user("alice").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, keys[0]);

    assert_eq!(store.delete_all_for_user("alice", None).await.unwrap(), 1);
    assert!(store.list_for_user("alice").await.unwrap().is_empty());
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn stale_index_entries_are_pruned_on_read_and_moves_between_users_are_safe() {
    let cluster = cluster();
    let store = cluster_store(&cluster);
    let (_a, gone, mut record) = fresh(Duration::from_secs(60));
    record.user_id = Some("carol".into());
    store.create(&gone, &record, None).await.unwrap();
    let (_b, moved, mut record) = fresh(Duration::from_secs(60));
    record.user_id = Some("carol".into());
    store.create(&moved, &record, None).await.unwrap();

    // Delete one session behind the store's back, on whichever node holds it: its index entry
    // is now stale.
    let name = store.session_key_name(&gone);
    let removed: i64 = cluster
        .nodes()
        .iter()
        .map(|n| match n.command(&["DEL", &name]).unwrap() {
            RespValue::Integer(n) => n,
            // MOVED from the nodes that do not own the slot.
            _ => 0,
        })
        .sum();
    assert_eq!(removed, 1);
    let index = store.user_index_key_name("carol");
    let zcard = |cluster: &latchkey_testkit::redis::RedisCluster| -> i64 {
        cluster
            .nodes()
            .iter()
            .filter_map(|n| match n.command(&["ZCARD", &index]).unwrap() {
                RespValue::Integer(n) => Some(n),
                _ => None,
            })
            .sum()
    };
    assert_eq!(zcard(&cluster), 2);
    let list = store.list_for_user("carol").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].key, moved);
    assert_eq!(zcard(&cluster), 1, "the stale entry was pruned");

    // Log dave in on the other session (a cycle): the new ID joins dave's index only.
    let (_id, daves, mut record) = fresh(Duration::from_secs(60));
    record.user_id = Some("dave".into());
    let until = now().saturating_add(Duration::from_secs(60));
    assert_eq!(
        store
            .cycle(&moved, &daves, &record, until, None)
            .await
            .unwrap(),
        latchkey_session::Admission::admitted()
    );
    assert!(store.list_for_user("carol").await.unwrap().is_empty());
    assert_eq!(store.list_for_user("dave").await.unwrap().len(), 1);
    // Log carol out everywhere: her retired ID goes, dave's session is not touched.
    assert_eq!(store.delete_all_for_user("carol", None).await.unwrap(), 0);
    assert!(store.load(&moved).await.unwrap().is_none());
    assert!(store.load(&daves).await.unwrap().is_some());
    assert_eq!(store.delete_all_for_user("dave", None).await.unwrap(), 1);
    assert!(store.load(&daves).await.unwrap().is_none());
}

#[tokio::test]
async fn a_frozen_node_times_out_its_own_slots_only() {
    let cluster = cluster();
    let store = store_with_timeouts(&cluster, Duration::from_millis(500));
    let owned = sessions_by_owner(&cluster, &store).await;

    cluster.nodes()[0].pause().unwrap();
    for key in owned[0].iter().take(3) {
        let started = std::time::Instant::now();
        let err = store.load(key).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }
    // The healthy nodes keep serving their sessions meanwhile.
    for key in owned[1].iter().chain(&owned[2]) {
        assert!(store.load(key).await.unwrap().is_some());
    }
    cluster.nodes()[0].resume().unwrap();
    for key in owned.iter().flatten() {
        assert!(store.load(key).await.unwrap().is_some());
    }
}

/// The node that holds `name` (asked of each running node; a stopped node owns nothing).
/// A store on `cluster` whose connect and command timeouts are both `timeout`.
fn store_with_timeouts(cluster: &RedisCluster, timeout: Duration) -> latchkey_redis::RedisStore {
    let config = latchkey_redis::RedisStoreConfig::cluster(cluster.urls())
        .connect_timeout(timeout)
        .command_timeout(timeout)
        .build()
        .expect("valid cluster config");
    latchkey_redis::RedisStore::new(config).expect("store")
}

/// Creates 30 sessions without a user (so `create` touches only the session's own node, no
/// index key) and returns their keys grouped by the index of the node that holds them; every
/// node holds at least two.
async fn sessions_by_owner(
    cluster: &RedisCluster,
    store: &latchkey_redis::RedisStore,
) -> Vec<Vec<latchkey_session::SessionKey>> {
    let mut owned: Vec<Vec<latchkey_session::SessionKey>> = vec![Vec::new(); 3];
    for _ in 0..30 {
        let (_id, key, record) = fresh(Duration::from_secs(60));
        store.create(&key, &record, None).await.expect("create");
        let owner = owner_of(cluster, &store.session_key_name(&key)).expect("an owner");
        owned[owner].push(key);
    }
    assert!(owned.iter().all(|keys| keys.len() >= 2), "{owned:?}");
    owned
}

fn owner_of(cluster: &RedisCluster, name: &str) -> Option<usize> {
    cluster
        .nodes()
        .iter()
        .position(|n| matches!(n.command(&["EXISTS", name]), Ok(RespValue::Integer(1))))
}

/// The first line of `CLUSTER INFO` on a node, e.g. `cluster_state:ok`.
fn cluster_state(node: &RedisServer) -> String {
    match node.command(&["CLUSTER", "INFO"]) {
        Ok(RespValue::Bulk(Some(info))) => info.lines().next().unwrap_or_default().to_owned(),
        other => format!("{other:?}"),
    }
}

/// Runs `call` and says how long it took.
async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = call.await;
    (result, started.elapsed())
}

#[tokio::test]
async fn a_stopped_node_fails_its_slots_within_the_timeout_and_serves_again_after_restart() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    // One connect timeout plus one command timeout plus scheduling slack.
    const BOUND: Duration = Duration::from_millis(3 * 500);
    let mut cluster = cluster();
    let store = store_with_timeouts(&cluster, TIMEOUT);
    let owned = sessions_by_owner(&cluster, &store).await;

    let node_id = |node: &RedisServer| match node.command(&["CLUSTER", "MYID"]) {
        Ok(RespValue::Bulk(Some(id))) => id,
        other => panic!("{other:?}"),
    };
    let id_before = node_id(&cluster.nodes()[0]);

    // Kill node 0 (no shutdown, nothing saved) and, at the same time, use sessions on every node.
    cluster.nodes_mut()[0].stop();
    let delta = Delta::new(now(), now().saturating_add(Duration::from_secs(60))).set("x", json!(1));
    let on_dead: Vec<BoxFuture<'_, _>> = vec![
        Box::pin(async { store.load(&owned[0][0]).await.map(|r| r.is_some()) }),
        Box::pin(async { store.load(&owned[0][1]).await.map(|r| r.is_some()) }),
        Box::pin(store.save(&owned[0][0], &delta)),
    ];
    let mut on_live: Vec<BoxFuture<'_, _>> = owned[1..]
        .iter()
        .flatten()
        .map(|key| -> BoxFuture<'_, _> {
            Box::pin(async { store.load(key).await.map(|r| r.is_some()) })
        })
        .collect();
    on_live.push(Box::pin(store.save(&owned[1][0], &delta)));
    let (dead, live) = futures::join!(
        join_all(on_dead.into_iter().map(timed)),
        join_all(on_live.into_iter().map(timed)),
    );
    for (result, took) in dead {
        let err = result.unwrap_err();
        // `Timeout` after the full command timeout, not `Unavailable` at once as on a single
        // node: the cluster client (redis-rs 1.8) keeps the request, reconnects to the node in
        // the background and retries (waiting 1.28 s between some retries), so it never reports
        // the refused connection before the store's command timeout ends the call.
        assert!(matches!(err, StoreError::Timeout), "{err:?}");
        assert!(took < BOUND, "took {took:?}");
    }
    // Not held up by the requests waiting for node 0 on the same connections.
    for (result, took) in live {
        assert!(result.unwrap(), "a live node's session is there");
        assert!(took < TIMEOUT, "took {took:?}");
    }
    // The healthy masters were still serving because Redis had not yet declared node 0 failed.
    for node in &cluster.nodes()[1..] {
        assert_eq!(cluster_state(node), "cluster_state:ok");
    }

    // After the node timeout (2 s) the other masters mark node 0 FAIL; without replicas its
    // slots are uncovered, and with Redis's default `cluster-require-full-coverage yes` the whole
    // cluster refuses every key (CLUSTERDOWN). That is Redis, not the store: from then on the
    // healthy nodes' sessions fail too, still typed and still within the bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.nodes()[1..]
        .iter()
        .all(|n| cluster_state(n) == "cluster_state:fail")
    {
        assert!(
            Instant::now() < deadline,
            "the cluster never noticed node 0 died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for key in [&owned[1][0], &owned[2][0], &owned[0][0]] {
        let started = Instant::now();
        let err = store.load(key).await.unwrap_err();
        // CLUSTERDOWN is retried by the cluster client after a 1.28 s wait, longer than the
        // command timeout: the store never sees it and reports `Timeout`.
        assert!(matches!(err, StoreError::Timeout), "{err:?}");
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    }

    // Restart node 0 on the same port with its nodes.conf: same node ID, same slots, no data.
    cluster.nodes_mut()[0].restart().unwrap();
    assert_eq!(
        node_id(&cluster.nodes()[0]),
        id_before,
        "node 0 kept its nodes.conf"
    );
    // Redis needs a few seconds to clear the FAIL flag (twice the node timeout) and let node 0
    // serve again; the store has nothing to do with it.
    cluster.wait_until_ok().unwrap();
    // The same store (no rebuild) creates and loads a new session on node 0's slots. A call may
    // still fail (typed, bounded) while the client reconnects; none did in practice.
    let ok = Instant::now();
    let mut failures = Vec::new();
    let on_node_0 = loop {
        assert!(
            ok.elapsed() < Duration::from_secs(5),
            "no session created on the restarted node: {failures:?}"
        );
        let (_id, key, record) = fresh(Duration::from_secs(60));
        let started = Instant::now();
        match store.create(&key, &record, None).await {
            Ok(_) => {
                if owner_of(&cluster, &store.session_key_name(&key)) == Some(0) {
                    break (key, record);
                }
            }
            Err(err) => {
                assert!(err.is_unavailable(), "{err:?}");
                assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
                failures.push(err);
            }
        }
    };
    assert_eq!(
        store.load(&on_node_0.0).await.unwrap().as_ref(),
        Some(&on_node_0.1)
    );
    // Node 0 lost its data (no persistence): a clean miss, not an error.
    for key in &owned[0] {
        assert!(store.load(key).await.unwrap().is_none());
    }
    for key in owned[1..].iter().flatten() {
        assert!(store.load(key).await.unwrap().is_some());
    }
}
