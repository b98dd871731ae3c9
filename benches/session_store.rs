//! Session store throughput: latchkey's `MemoryStore` side by side with `tower-sessions`'
//! `MemoryStore` (0.15), in the same run, for create, load and save-delta, from one task and
//! from 64 concurrent tasks on a 2-worker tokio runtime. Each session holds a 200-byte payload.
//!
//! - create: build a record and store it under a fresh ID (IDs are drawn before the clock
//!   starts; the `session_id/generate` group measures drawing them).
//! - load: read one of 10,000 pre-created sessions.
//! - save-delta: change one small key of an existing session. latchkey sends only that key
//!   (`save(key, &Delta)`); tower-sessions has no delta write, so it stores the whole record
//!   with the key changed — what its session layer does.
//!
//! Before the criterion groups run, a counting global allocator measures the heap bytes each
//! stored session costs in both stores (10,000 sessions, 200-byte payload, bytes requested
//! from the allocator; malloc's own per-block overhead is not included).
//!
//! Run: `cargo bench -p latchkey-benches --bench session_store -- --warm-up-time 1 --measurement-time 3`

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use latchkey::session::{
    Clock, Delta, MemoryStore, SessionId, SessionKey, SessionRecord, SessionStore, SystemClock,
    Timestamp,
};
use serde_json::{json, Value};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::runtime::Runtime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore as TowerStore;
use tower_sessions::MemoryStore as TowerMemoryStore;

/// Counts heap bytes (a safe wrapper crate: the workspace forbids `unsafe`, which a hand-written
/// `GlobalAlloc` needs).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net heap bytes allocated since `region` started.
fn net_bytes(region: &Region<'_, System>) -> isize {
    let change = region.change();
    let allocated = isize::try_from(change.bytes_allocated).unwrap_or(isize::MAX);
    let freed = isize::try_from(change.bytes_deallocated).unwrap_or(isize::MAX);
    allocated - freed + change.bytes_reallocated
}

const PAYLOAD_LEN: usize = 200;
const PRELOADED: usize = 10_000;
const TASKS: usize = 64;

fn payload() -> Value {
    // A 200-byte string value: 200 bytes of application data per session.
    Value::String("p".repeat(PAYLOAD_LEN))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Deadlines an hour ahead, computed once per sample rather than per operation.
#[derive(Clone, Copy)]
struct Times {
    now: Timestamp,
    end: Timestamp,
    tower_end: time::OffsetDateTime,
}

fn times() -> Times {
    let now = SystemClock.now();
    Times {
        now,
        end: now.saturating_add(Duration::from_secs(3600)),
        tower_end: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

fn latchkey_record(payload: &Value, t: Times) -> SessionRecord {
    let mut record = SessionRecord::new(t.now, t.end, t.end);
    record.data.insert_value("payload", payload.clone());
    record
}

fn tower_record(payload: &Value, id: Id, t: Times) -> Record {
    Record {
        id,
        data: HashMap::from([("payload".to_owned(), payload.clone())]),
        expiry_date: t.tower_end,
    }
}

async fn latchkey_create(store: &MemoryStore, payload: &Value) -> SessionKey {
    let key = SessionId::generate().key();
    store
        .create(&key, &latchkey_record(payload, times()))
        .await
        .expect("create");
    key
}

async fn tower_create(store: &TowerMemoryStore, payload: &Value) -> Record {
    let mut record = tower_record(payload, Id::default(), times());
    store.create(&mut record).await.expect("create");
    record
}

/// Heap bytes per stored session, for both stores, printed before the benchmarks.
fn memory_per_session(rt: &Runtime) {
    const N: isize = 10_000;
    let payload = payload();
    rt.block_on(async {
        let store = MemoryStore::new();
        // Warm up: let the map allocate its first table so the measure is about steady growth.
        latchkey_create(&store, &payload).await;
        let region = Region::new(GLOBAL);
        for _ in 0..N {
            latchkey_create(&store, &payload).await;
        }
        let per = net_bytes(&region) / N;
        println!(
            "memory/latchkey MemoryStore: {per} bytes per session with a {PAYLOAD_LEN}-byte payload ({:.2}x payload)",
            per as f64 / PAYLOAD_LEN as f64
        );
        drop(black_box(store));

        let store = TowerMemoryStore::default();
        tower_create(&store, &payload).await;
        let region = Region::new(GLOBAL);
        for _ in 0..N {
            tower_create(&store, &payload).await;
        }
        let per = net_bytes(&region) / N;
        println!(
            "memory/tower-sessions MemoryStore: {per} bytes per session with a {PAYLOAD_LEN}-byte payload ({:.2}x payload)",
            per as f64 / PAYLOAD_LEN as f64
        );
        drop(black_box(store));
    });
}

/// Spawns `$tasks` tasks, each with its own clone of `$state` (no shared reference count is
/// touched per operation), releases them together, runs `$body` `$iters` times in each, and
/// evaluates to the wall time until all are done.
macro_rules! run_tasks {
    ($tasks:expr, $iters:expr, $state:expr, |$st:ident, $task:ident, $i:ident| $body:block) => {{
        let barrier = Arc::new(tokio::sync::Barrier::new($tasks + 1));
        let mut handles = Vec::with_capacity($tasks);
        for $task in 0..$tasks {
            let $st = $state.clone();
            let barrier = Arc::clone(&barrier);
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                for $i in 0..$iters {
                    $body
                }
            }));
        }
        barrier.wait().await;
        let start = Instant::now();
        for handle in handles {
            handle.await.expect("bench task");
        }
        start.elapsed()
    }};
}

fn bench_create(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("session_store/create");
    for tasks in [1, TASKS] {
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_function(
            BenchmarkId::new("latchkey", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| async move {
                    // IDs are drawn before the clock starts (their cost is the session_id group),
                    // and a fresh store per sample keeps memory bounded; dropping it is not timed.
                    let n = usize::try_from(iters).expect("iters fits usize");
                    let keys: Arc<Vec<SessionKey>> = Arc::new(
                        (0..tasks * n)
                            .map(|_| SessionId::generate().key())
                            .collect(),
                    );
                    let state = (MemoryStore::new(), keys, Arc::new(payload()), times());
                    let store = state.0.clone();
                    let elapsed = run_tasks!(tasks, n, state, |st, task, i| {
                        let (store, keys, payload, t) = &st;
                        let record = latchkey_record(payload, *t);
                        store
                            .create(black_box(&keys[task * n + i]), &record)
                            .await
                            .expect("create");
                    });
                    drop(store);
                    elapsed
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("tower-sessions", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| async move {
                    let n = usize::try_from(iters).expect("iters fits usize");
                    let ids: Arc<Vec<Id>> =
                        Arc::new((0..tasks * n).map(|_| Id::default()).collect());
                    let state = (
                        TowerMemoryStore::default(),
                        ids,
                        Arc::new(payload()),
                        times(),
                    );
                    let store = state.0.clone();
                    let elapsed = run_tasks!(tasks, n, state, |st, task, i| {
                        let (store, ids, payload, t) = &st;
                        let mut record = tower_record(payload, black_box(ids[task * n + i]), *t);
                        store.create(&mut record).await.expect("create");
                    });
                    drop(store);
                    elapsed
                });
            },
        );
    }
    group.finish();

    // What each library pays to draw a new session ID: latchkey reads 32 bytes from the OS
    // generator (getrandom) and hashes them into the store key; tower-sessions draws an i128
    // from rand's user-space thread generator.
    let mut group = c.benchmark_group("session_id/generate");
    group.bench_function("latchkey (OsRng 256 bit + SHA-256 key)", |b| {
        b.iter(|| black_box(SessionId::generate().key()));
    });
    group.bench_function("tower-sessions (ThreadRng 128 bit)", |b| {
        b.iter(|| black_box(Id::default()));
    });
    group.finish();
}

fn bench_load_and_save(c: &mut Criterion, rt: &Runtime) {
    let payload = payload();
    let (ours, our_keys, tower, tower_records) = rt.block_on(async {
        let ours = MemoryStore::new();
        let mut our_keys = Vec::with_capacity(PRELOADED);
        let tower = TowerMemoryStore::default();
        let mut tower_records = Vec::with_capacity(PRELOADED);
        for _ in 0..PRELOADED {
            our_keys.push(latchkey_create(&ours, &payload).await);
            tower_records.push(tower_create(&tower, &payload).await);
        }
        (ours, Arc::new(our_keys), tower, Arc::new(tower_records))
    });
    // Spread tasks over the preloaded sessions.
    let pick = |task: usize, i: usize| (task * 997 + i) % PRELOADED;

    let mut group = c.benchmark_group("session_store/load");
    for tasks in [1, TASKS] {
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_function(
            BenchmarkId::new("latchkey", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| {
                    let state = (ours.clone(), Arc::clone(&our_keys));
                    async move {
                        let n = usize::try_from(iters).expect("iters fits usize");
                        run_tasks!(tasks, n, state, |st, task, i| {
                            let (store, keys) = &st;
                            let key = &keys[pick(task, i)];
                            black_box(
                                store
                                    .load(black_box(key))
                                    .await
                                    .expect("load")
                                    .expect("live"),
                            );
                        })
                    }
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("tower-sessions", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| {
                    let state = (tower.clone(), Arc::clone(&tower_records));
                    async move {
                        let n = usize::try_from(iters).expect("iters fits usize");
                        run_tasks!(tasks, n, state, |st, task, i| {
                            let (store, records) = &st;
                            let id = &records[pick(task, i)].id;
                            black_box(
                                store
                                    .load(black_box(id))
                                    .await
                                    .expect("load")
                                    .expect("live"),
                            );
                        })
                    }
                });
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("session_store/save_delta");
    for tasks in [1, TASKS] {
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_function(
            BenchmarkId::new("latchkey", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| {
                    let state = (ours.clone(), Arc::clone(&our_keys), times());
                    async move {
                        let n = usize::try_from(iters).expect("iters fits usize");
                        run_tasks!(tasks, n, state, |st, task, i| {
                            let (store, keys, t) = &st;
                            let delta = Delta::new(t.now, t.end).set("counter", json!(i));
                            let saved = store.save(black_box(&keys[pick(task, i)]), &delta).await;
                            assert!(saved.expect("save"));
                        })
                    }
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("tower-sessions", format!("{tasks}_tasks")),
            |b| {
                b.to_async(rt).iter_custom(|iters| {
                    let state = (tower.clone(), Arc::clone(&tower_records));
                    async move {
                        let n = usize::try_from(iters).expect("iters fits usize");
                        run_tasks!(tasks, n, state, |st, task, i| {
                            let (store, records) = &st;
                            let mut record = records[pick(task, i)].clone();
                            record.data.insert("counter".to_owned(), json!(i));
                            store.save(black_box(&record)).await.expect("save");
                        })
                    }
                });
            },
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    memory_per_session(&rt);
    bench_create(c, &rt);
    bench_load_and_save(c, &rt);
}

criterion_group!(session_store, benches);
criterion_main!(session_store);
