//! Redis session store throughput: latchkey's `RedisStore` side by side, in the same run and
//! against the same private `redis-server`, with `tower-sessions-redis-store` 0.16 (on fred 10)
//! and with the floor — the same number of raw `GET` / `SET EX` calls of a value of the same
//! size over one shared redis-rs multiplexed connection. 64 concurrent tasks on a 2-worker tokio
//! runtime; each session holds a 200-byte payload.
//!
//! - load: read one of 10,000 pre-created sessions. A fourth line, `raw-HGETALL-same-keys`, sends
//!   latchkey's own `HGETALL` raw over the floor's connection: the ceiling of a load on a
//!   hash-per-session layout, there to show how much of the gap to the GET floor is the layout.
//! - save_delta: change one small key of an existing session. latchkey sends only that key (one
//!   `EVALSHA` that checks the session is live, `HSET`s the key and moves the deadline);
//!   tower-sessions has no delta write, so it stores the whole record with the key changed,
//!   which is what its session layer does.
//!
//! The server is started by `latchkey_testkit::redis::RedisServer` on a free loopback port and
//! killed at the end; nothing touches port 6379.
//!
//! Run: `cargo bench -p latchkey-benches --bench redis_store -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use latchkey::session::{
    Clock, Delta, SessionId, SessionKey, SessionRecord, SessionStore, SystemClock, Timestamp,
};
use latchkey_redis::{RedisStore, RedisStoreConfig};
use latchkey_testkit::redis::RedisServer;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::json;
use tokio::runtime::Runtime;
use tower_sessions_core_014::session::{Id, Record};
use tower_sessions_core_014::SessionStore as TowerStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config as FredConfig, Pool};
use tower_sessions_redis_store::RedisStore as TowerRedisStore;

use latchkey_benches::{payload, runtime, PRELOADED, TASKS};

/// fred clients in tower-sessions-redis-store's pool (the size its README uses).
const FRED_POOL: usize = 6;

fn deadlines() -> (Timestamp, Timestamp, time::OffsetDateTime) {
    let now = SystemClock.now();
    let hour = Duration::from_secs(3600);
    (
        now,
        now.saturating_add(hour),
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    )
}

/// Runs `op(task, i)` `iters` times in each of `tasks` tasks; returns the wall time.
async fn run_tasks<F, Fut>(tasks: usize, iters: u64, op: F) -> Duration
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let op = Arc::clone(&op);
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..iters {
                op(task, i).await;
            }
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    for handle in handles {
        handle.await.expect("bench task");
    }
    start.elapsed()
}

fn pick(task: usize, i: u64) -> usize {
    (task * 997 + usize::try_from(i).unwrap_or(0)) % PRELOADED
}

struct Contenders {
    ours: RedisStore,
    our_keys: Arc<Vec<SessionKey>>,
    /// The Redis keys of `our_keys` (`lk:{<hex>}`, the documented layout).
    our_hash_keys: Arc<Vec<String>>,
    tower: TowerRedisStore<Pool>,
    tower_records: Arc<Vec<Record>>,
    raw: MultiplexedConnection,
    raw_keys: Arc<Vec<String>>,
    raw_value: Arc<String>,
}

async fn setup(server: &RedisServer) -> Contenders {
    let payload = payload();
    let ours = RedisStore::new(
        RedisStoreConfig::single(server.url())
            .key_prefix("lk:")
            .build()
            .expect("config"),
    )
    .expect("store");
    let (now, end, tower_end) = deadlines();
    let mut our_keys = Vec::with_capacity(PRELOADED);
    for _ in 0..PRELOADED {
        let key = SessionId::generate().key();
        let mut record = SessionRecord::new(now, end, end);
        record.data.insert_value("payload", payload.clone());
        ours.create(&key, &record).await.expect("create");
        our_keys.push(key);
    }

    let pool = Pool::new(
        FredConfig::from_url(&server.url()).expect("fred config"),
        None,
        None,
        None,
        FRED_POOL,
    )
    .expect("fred pool");
    let _connection = pool.init().await.expect("fred connect");
    let tower = TowerRedisStore::new(pool);
    let mut tower_records = Vec::with_capacity(PRELOADED);
    for _ in 0..PRELOADED {
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("payload".to_owned(), payload.clone())]),
            expiry_date: tower_end,
        };
        tower.create(&mut record).await.expect("tower create");
        tower_records.push(record);
    }

    let client = redis::Client::open(server.url()).expect("redis client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    // The floor's value: the session payload as latchkey stores it (its JSON text).
    let raw_value = Arc::new(payload.to_string());
    let mut raw_keys = Vec::with_capacity(PRELOADED);
    for i in 0..PRELOADED {
        let key = format!("raw:{i}");
        let _: () = raw
            .set_ex(&key, raw_value.as_str(), 3600)
            .await
            .expect("raw set");
        raw_keys.push(key);
    }
    let our_hash_keys = our_keys
        .iter()
        .map(|key| format!("lk:{{{}}}", key.to_hex()))
        .collect();
    Contenders {
        ours,
        our_keys: Arc::new(our_keys),
        our_hash_keys: Arc::new(our_hash_keys),
        tower,
        tower_records: Arc::new(tower_records),
        raw,
        raw_keys: Arc::new(raw_keys),
        raw_value,
    }
}

fn bench_load(c: &mut Criterion, rt: &Runtime, k: &Contenders) {
    let mut group = c.benchmark_group("redis_store/load");
    group.throughput(Throughput::Elements(TASKS as u64));
    let id = |name: &str| BenchmarkId::new(name, format!("{TASKS}_tasks"));
    group.bench_function(id("latchkey"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let s = k.ours.clone();
            let keys = Arc::clone(&k.our_keys);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let s = s.clone();
                    let key = keys[pick(task, i)];
                    async move {
                        black_box(s.load(black_box(&key)).await.expect("load").expect("live"));
                    }
                })
                .await
            }
        });
    });
    group.bench_function(id("tower-sessions-redis-store"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let s = k.tower.clone();
            let records = Arc::clone(&k.tower_records);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let s = s.clone();
                    let id = records[pick(task, i)].id;
                    async move {
                        black_box(s.load(black_box(&id)).await.expect("load").expect("live"));
                    }
                })
                .await
            }
        });
    });
    // Not a target: the same HGETALL latchkey's load sends, raw over the floor's connection.
    // It is the ceiling of any load on a hash-per-session layout with redis-rs.
    group.bench_function(id("raw-HGETALL-same-keys"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let conn = k.raw.clone();
            let keys = Arc::clone(&k.our_hash_keys);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let mut conn = conn.clone();
                    let keys = Arc::clone(&keys);
                    async move {
                        let fields: Vec<Vec<u8>> = redis::cmd("HGETALL")
                            .arg(black_box(&keys[pick(task, i)]))
                            .query_async(&mut conn)
                            .await
                            .expect("HGETALL");
                        assert!(!fields.is_empty(), "present");
                        black_box(fields);
                    }
                })
                .await
            }
        });
    });
    group.bench_function(id("raw-GET-floor"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let conn = k.raw.clone();
            let keys = Arc::clone(&k.raw_keys);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let mut conn = conn.clone();
                    let keys = Arc::clone(&keys);
                    async move {
                        let value: Option<Vec<u8>> = conn
                            .get(black_box(&keys[pick(task, i)]))
                            .await
                            .expect("GET");
                        black_box(value.expect("present"));
                    }
                })
                .await
            }
        });
    });
    group.finish();
}

fn bench_save_delta(c: &mut Criterion, rt: &Runtime, k: &Contenders) {
    let mut group = c.benchmark_group("redis_store/save_delta");
    group.throughput(Throughput::Elements(TASKS as u64));
    let id = |name: &str| BenchmarkId::new(name, format!("{TASKS}_tasks"));
    group.bench_function(id("latchkey"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let s = k.ours.clone();
            let keys = Arc::clone(&k.our_keys);
            async move {
                let (now, end, _) = deadlines();
                run_tasks(TASKS, iters, move |task, i| {
                    let s = s.clone();
                    let key = keys[pick(task, i)];
                    async move {
                        let delta = Delta::new(now, end).set("counter", json!(i));
                        assert!(s.save(black_box(&key), &delta).await.expect("save"));
                    }
                })
                .await
            }
        });
    });
    group.bench_function(id("tower-sessions-redis-store"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let s = k.tower.clone();
            let records = Arc::clone(&k.tower_records);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let s = s.clone();
                    let records = Arc::clone(&records);
                    async move {
                        let mut record = records[pick(task, i)].clone();
                        record.data.insert("counter".to_owned(), json!(i));
                        s.save(black_box(&record)).await.expect("save");
                    }
                })
                .await
            }
        });
    });
    group.bench_function(id("raw-SET-EX-floor"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let conn = k.raw.clone();
            let keys = Arc::clone(&k.raw_keys);
            let value = Arc::clone(&k.raw_value);
            async move {
                run_tasks(TASKS, iters, move |task, i| {
                    let mut conn = conn.clone();
                    let keys = Arc::clone(&keys);
                    let value = Arc::clone(&value);
                    async move {
                        let _: () = conn
                            .set_ex(black_box(&keys[pick(task, i)]), value.as_str(), 3600)
                            .await
                            .expect("SET EX");
                    }
                })
                .await
            }
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "redis_store: private redis-server on port {}",
        server.port()
    );
    let rt = runtime();
    let contenders = rt.block_on(setup(&server));
    bench_load(c, &rt, &contenders);
    bench_save_delta(c, &rt, &contenders);
    drop(contenders);
    drop(rt);
    drop(server);
}

criterion_group!(redis_store, benches);
criterion_main!(redis_store);
