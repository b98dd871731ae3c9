//! Redis session store throughput: latchkey's `RedisStore` side by side, in the same run and
//! against the same private `redis-server`, with `tower-sessions-redis-store` 0.16 (on fred 10)
//! and with the floor — the same number of raw `GET` / `SET EX` calls of a value of the same
//! size over one shared redis-rs multiplexed connection. 64 concurrent tasks on a 2-worker tokio
//! runtime; each session holds a 200-byte payload.
//!
//! - load: read one of 10,000 pre-created sessions.
//! - save_delta: change one small key of an existing session. latchkey sends only that key (one
//!   `EVALSHA` that checks the session is live, `HSET`s the key and moves the deadline);
//!   tower-sessions has no delta write, so it stores the whole record with the key changed,
//!   which is what its session layer does.
//!
//! Beside them, not targets, raw redis-rs calls that bound what any store could reach:
//! - load: latchkey's own `HGETALL` for the same keys, one per call and pipelined 8 to a request
//!   (what batching concurrent loads could buy) — the ceilings of a hash-per-session layout;
//! - save_delta: an `EVALSHA` of `return 1` with the save's arguments (the round trip of any
//!   script), a script that only `HSET`s the field and the times and moves the TTL (no liveness
//!   check), and the same two commands pipelined without a script (neither atomic nor checked).
//!
//! Criterion runs every contender in turn; then an interleaved pass
//! ([`latchkey_benches::interleaved`]) times them all round after round and prints the median of
//! same-round ratios, which the machine's drift cannot move. `-- interleaved` runs that pass
//! alone.
//!
//! The server is started by `latchkey_testkit::redis::RedisServer` on a free loopback port and
//! killed at the end; nothing touches port 6379.
//!
//! Run: `cargo bench -p latchkey-benches --bench redis_store -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
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

/// One store call (or, for a pipelined contender, a pipeline of several) in task `task`,
/// iteration `i`.
type Op = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |task, i| Box::pin(f(task, i)))
}

/// A named contender: `tasks` concurrent tasks, each op making `TASKS / tasks` store calls, so
/// that every contender keeps [`TASKS`] calls in flight.
struct Contender {
    name: &'static str,
    tasks: usize,
    op: Op,
}

impl Contender {
    fn new(name: &'static str, op: Op) -> Self {
        Self {
            name,
            tasks: TASKS,
            op,
        }
    }
}

/// Runs `op(task, i)` `iters` times in each of `tasks` tasks; returns the wall time.
async fn run_tasks(tasks: usize, iters: u64, op: Op) -> Duration {
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

/// Calls per pipeline in the `raw-HGETALL-pipelined` ceiling.
const PIPELINE: usize = 8;

struct Contenders {
    ours: RedisStore,
    our_keys: Arc<Vec<SessionKey>>,
    /// The Redis keys of `our_keys` (`lk:{<hex>}`, the documented layout).
    our_hash_keys: Arc<Vec<String>>,
    /// Copies of the hashes behind `our_hash_keys`, which the raw write ceilings overwrite.
    copy_hash_keys: Arc<Vec<String>>,
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
        ours.create(&key, &record, None).await.expect("create");
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
    let our_hash_keys: Vec<String> = our_keys
        .iter()
        .map(|key| format!("lk:{{{}}}", key.to_hex()))
        .collect();
    let mut copy_hash_keys = Vec::with_capacity(PRELOADED);
    for (i, key) in our_hash_keys.iter().enumerate() {
        let fields: Vec<(String, Vec<u8>)> = raw.hgetall(key).await.expect("HGETALL");
        let copy = format!("copy:{{{i}}}");
        let _: () = raw.hset_multiple(&copy, &fields).await.expect("HSET");
        let _: () = raw.expire(&copy, 3600).await.expect("EXPIRE");
        copy_hash_keys.push(copy);
    }
    Contenders {
        ours,
        our_keys: Arc::new(our_keys),
        our_hash_keys: Arc::new(our_hash_keys),
        copy_hash_keys: Arc::new(copy_hash_keys),
        tower,
        tower_records: Arc::new(tower_records),
        raw,
        raw_keys: Arc::new(raw_keys),
        raw_value,
    }
}

/// The load contenders: latchkey, tower-sessions-redis-store, the GET floor, and two ceilings
/// of any load on a hash-per-session layout over redis-rs.
fn load_contenders(k: &Contenders) -> Vec<Contender> {
    let (s, keys) = (k.ours.clone(), Arc::clone(&k.our_keys));
    let latchkey = op(move |task, i| {
        let s = s.clone();
        let key = keys[pick(task, i)];
        async move {
            black_box(s.load(black_box(&key)).await.expect("load").expect("live"));
        }
    });
    let (s, records) = (k.tower.clone(), Arc::clone(&k.tower_records));
    let tower = op(move |task, i| {
        let s = s.clone();
        let id = records[pick(task, i)].id;
        async move {
            black_box(s.load(black_box(&id)).await.expect("load").expect("live"));
        }
    });
    let (conn, keys) = (k.raw.clone(), Arc::clone(&k.raw_keys));
    let floor = op(move |task, i| {
        let mut conn = conn.clone();
        let keys = Arc::clone(&keys);
        async move {
            let value: Option<Vec<u8>> = conn
                .get(black_box(&keys[pick(task, i)]))
                .await
                .expect("GET");
            black_box(value.expect("present"));
        }
    });
    // The HGETALL latchkey's load sends, raw over the floor's connection, one per call.
    let (conn, keys) = (k.raw.clone(), Arc::clone(&k.our_hash_keys));
    let hgetall = op(move |task, i| {
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
    });
    // The same HGETALLs, PIPELINE to a request: what batching concurrent loads into pipelines
    // could reach at best (it saves redis-rs's per-request cost, not the reply parsing).
    let (conn, keys) = (k.raw.clone(), Arc::clone(&k.our_hash_keys));
    let pipelined = op(move |task, i| {
        let mut conn = conn.clone();
        let keys = Arc::clone(&keys);
        async move {
            let mut pipe = redis::pipe();
            for j in 0..PIPELINE {
                pipe.cmd("HGETALL").arg(&keys[pick(task * PIPELINE + j, i)]);
            }
            let replies: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut conn).await.expect("pipeline");
            assert!(replies.iter().all(|r| !r.is_empty()), "present");
            black_box(replies);
        }
    });
    vec![
        Contender::new("latchkey", latchkey),
        Contender::new("tower-sessions-redis-store", tower),
        Contender::new("raw-GET-floor", floor),
        Contender::new("raw-HGETALL-same-keys", hgetall),
        Contender {
            name: "raw-HGETALL-pipelined",
            tasks: TASKS / PIPELINE,
            op: pipelined,
        },
    ]
}

/// A script that does no work: the round trip of any save script with the save's arguments.
const SCRIPT_NOTHING: &str = "return 1";
/// The least a delta save must do on a hash (write the changed field and the times, move the
/// TTL), without checking that the session is still live or reading its other deadlines.
const SCRIPT_UNCHECKED: &str = "
redis.call('HSET', KEYS[1], '@t', ARGV[3], ARGV[7], ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1";

/// The save_delta contenders: latchkey, tower-sessions-redis-store, the SET EX floor, and
/// three ceilings of any delta write that moves the TTL.
fn save_contenders(k: &Contenders) -> Vec<Contender> {
    let (now, end, _) = deadlines();
    let (s, keys) = (k.ours.clone(), Arc::clone(&k.our_keys));
    let latchkey = op(move |task, i| {
        let s = s.clone();
        let key = keys[pick(task, i)];
        async move {
            let delta = Delta::new(now, end).set("counter", json!(i));
            assert!(s.save(black_box(&key), &delta).await.expect("save"));
        }
    });
    let (s, records) = (k.tower.clone(), Arc::clone(&k.tower_records));
    let tower = op(move |task, i| {
        let s = s.clone();
        let records = Arc::clone(&records);
        async move {
            let mut record = records[pick(task, i)].clone();
            record.data.insert("counter".to_owned(), json!(i));
            s.save(black_box(&record)).await.expect("save");
        }
    });
    let (conn, keys, value) = (
        k.raw.clone(),
        Arc::clone(&k.raw_keys),
        Arc::clone(&k.raw_value),
    );
    let floor = op(move |task, i| {
        let mut conn = conn.clone();
        let keys = Arc::clone(&keys);
        let value = Arc::clone(&value);
        async move {
            let _: () = conn
                .set_ex(black_box(&keys[pick(task, i)]), value.as_str(), 3600)
                .await
                .expect("SET EX");
        }
    });
    // The ceilings write the copies, with the arguments latchkey's save script gets.
    let times = format!(
        "{0}:{0}:{1}:{1}",
        now.as_unix_millis(),
        end.as_unix_millis()
    );
    let end_ms = end.as_unix_millis().to_string();
    let script = |source: &'static str| {
        let (conn, keys) = (k.raw.clone(), Arc::clone(&k.copy_hash_keys));
        let script = Arc::new(redis::Script::new(source));
        let (times, end_ms) = (times.clone(), end_ms.clone());
        op(move |task, i| {
            let mut conn = conn.clone();
            let (keys, script) = (Arc::clone(&keys), Arc::clone(&script));
            let (times, end_ms) = (times.clone(), end_ms.clone());
            async move {
                let saved: i64 = script
                    .key(black_box(&keys[pick(task, i)]))
                    .arg(&times)
                    .arg("0")
                    .arg(&times)
                    .arg(&end_ms)
                    .arg(1)
                    .arg(0)
                    .arg(".counter")
                    .arg(json!(i).to_string())
                    .invoke_async(&mut conn)
                    .await
                    .expect("EVALSHA");
                assert_eq!(saved, 1);
            }
        })
    };
    let (nothing, unchecked) = (script(SCRIPT_NOTHING), script(SCRIPT_UNCHECKED));
    // The same two writes pipelined: neither atomic nor checked, no script at all.
    let (conn, keys) = (k.raw.clone(), Arc::clone(&k.copy_hash_keys));
    let pipelined = op(move |task, i| {
        let mut conn = conn.clone();
        let keys = Arc::clone(&keys);
        let (times, end_ms) = (times.clone(), end_ms.clone());
        async move {
            let key = black_box(&keys[pick(task, i)]);
            let _: () = redis::pipe()
                .cmd("HSET")
                .arg(key)
                .arg("@t")
                .arg(&times)
                .arg(".counter")
                .arg(json!(i).to_string())
                .ignore()
                .cmd("PEXPIREAT")
                .arg(key)
                .arg(&end_ms)
                .ignore()
                .query_async(&mut conn)
                .await
                .expect("pipeline");
        }
    });
    vec![
        Contender::new("latchkey", latchkey),
        Contender::new("tower-sessions-redis-store", tower),
        Contender::new("raw-SET-EX-floor", floor),
        Contender::new("raw-EVALSHA-return-1", nothing),
        Contender::new("raw-script-HSET-PEXPIREAT", unchecked),
        Contender::new("raw-pipeline-HSET-PEXPIREAT", pipelined),
    ]
}

fn bench_group(c: &mut Criterion, rt: &Runtime, group: &str, contenders: &[Contender]) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(TASKS as u64));
    for contender in contenders {
        let id = BenchmarkId::new(contender.name, format!("{TASKS}_tasks"));
        group.bench_function(id, |b| {
            b.to_async(rt)
                .iter_custom(|iters| run_tasks(contender.tasks, iters, Arc::clone(&contender.op)));
        });
    }
    group.finish();
}

/// The same contenders interleaved (see [`latchkey_benches::interleaved`]): every round runs
/// each for `TASKS * 200` calls; the ratios are to latchkey (for tower-sessions-redis-store,
/// latchkey's speed-up; for a floor or ceiling, latchkey's fraction of it) and to
/// tower-sessions-redis-store.
fn bench_interleaved(rt: &Runtime, title: &str, contenders: &[Contender]) {
    let calls = u32::try_from(TASKS * 200).expect("small");
    let mut runs: Vec<_> = contenders
        .iter()
        .map(|contender| {
            move |n: u32| {
                let iters = u64::from(n) / TASKS as u64;
                rt.block_on(run_tasks(contender.tasks, iters, Arc::clone(&contender.op)));
            }
        })
        .collect();
    let mut variants: Vec<latchkey_benches::Variant<'_>> = contenders
        .iter()
        .zip(runs.iter_mut())
        .map(|(contender, run)| (contender.name, run as &mut dyn FnMut(u32)))
        .collect();
    latchkey_benches::interleaved(title, &mut variants, &[0, 1], None, 50, calls);
}

fn benches(c: &mut Criterion) {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "redis_store: private redis-server on port {}",
        server.port()
    );
    let rt = runtime();
    let contenders = rt.block_on(setup(&server));
    let load = load_contenders(&contenders);
    let save = save_contenders(&contenders);
    bench_group(c, &rt, "redis_store/load", &load);
    bench_group(c, &rt, "redis_store/save_delta", &save);
    if latchkey_benches::interleaved_wanted() {
        bench_interleaved(&rt, "redis_store/load", &load);
        bench_interleaved(&rt, "redis_store/save_delta", &save);
    }
    drop((load, save, contenders));
    drop(rt);
    drop(server);
}

criterion_group!(redis_store, benches);
criterion_main!(redis_store);
