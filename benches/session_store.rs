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
//! Timing: each task reads the clock when it starts its loop and when it ends it; a sample's
//! time runs from the first start to the last end. (Timing on the thread that spawns the tasks
//! would also count how long that third thread takes to be scheduled again on a 2-core machine
//! whose two cores the workers keep busy.)
//!
//! Memory: before the criterion groups run, a fresh child process per store (this binary,
//! re-run with `LATCHKEY_BENCH_MEMORY_OF` set) creates 10,000 sessions with a 200-byte payload
//! and reports how much its anonymous resident memory grew per session (`/proc/self/smaps_rollup`,
//! so malloc's per-block overhead and the tables' slack are included). There is deliberately no
//! counting global allocator: its shared counters are written by every allocation on every
//! thread, and with two cores allocating at once that cache line ping-pongs between them, which
//! throttled whichever store actually runs on both cores (latchkey's) far more than the
//! throughput of either store itself.
//!
//! Run: `cargo bench -p latchkey-benches --bench session_store -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use latchkey::session::{
    Clock, Delta, MemoryStore, SessionId, SessionKey, SessionRecord, SessionStore, SystemClock,
    Timestamp,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore as TowerStore;
use tower_sessions::MemoryStore as TowerMemoryStore;

use latchkey_benches::{payload, runtime, PAYLOAD_LEN, PRELOADED, TASKS};

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
        .create(&key, &latchkey_record(payload, times()), None)
        .await
        .expect("create");
    key
}

async fn tower_create(store: &TowerMemoryStore, payload: &Value) -> Record {
    let mut record = tower_record(payload, Id::default(), times());
    store.create(&mut record).await.expect("create");
    record
}

/// Set in the child process that measures one store's memory: `latchkey` or `tower-sessions`.
const MEMORY_CHILD: &str = "LATCHKEY_BENCH_MEMORY_OF";
/// Sessions created for the memory figure.
const MEMORY_SESSIONS: usize = 10_000;

/// This process's anonymous resident memory in bytes, or `None` off Linux. `smaps_rollup` walks
/// the page tables, so it is exact (the `VmRSS`-style counters are per-CPU approximations).
fn anonymous_resident_bytes() -> Option<usize> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let kib: usize = rollup
        .lines()
        .find_map(|line| line.strip_prefix("Anonymous:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// Growth of anonymous resident memory per session while `create` stores [`MEMORY_SESSIONS`]
/// sessions in `store`. One create first warms up the map's table, the allocator's arena and
/// the runtime's thread-locals, so the figure is about steady growth.
async fn growth_per_session<S, R>(
    store: S,
    payload: &Value,
    create: impl AsyncFn(&S, &Value) -> R,
) -> usize {
    let resident = || anonymous_resident_bytes().expect("smaps_rollup was readable just before");
    create(&store, payload).await;
    let before = resident();
    for _ in 0..MEMORY_SESSIONS {
        create(&store, payload).await;
    }
    let after = resident();
    drop(black_box(store));
    after.saturating_sub(before) / MEMORY_SESSIONS
}

/// In the child: create the sessions in one store and print the growth per session.
fn measure_memory_in_child(which: &str) {
    if anonymous_resident_bytes().is_none() {
        eprintln!("needs Linux's /proc/self/smaps_rollup");
        std::process::exit(2);
    }
    let rt = runtime();
    let payload = payload();
    let per_session = rt.block_on(async {
        match which {
            "latchkey" => growth_per_session(MemoryStore::new(), &payload, latchkey_create).await,
            "tower-sessions" => {
                growth_per_session(TowerMemoryStore::default(), &payload, tower_create).await
            }
            other => panic!("{MEMORY_CHILD}={other}: expected latchkey or tower-sessions"),
        }
    });
    println!("{per_session}");
}

/// Resident bytes per stored session, for both stores, each measured in a fresh child process
/// (so neither inherits the other's freed memory), printed before the benchmarks.
fn memory_per_session() {
    let exe = std::env::current_exe().expect("path of this bench binary");
    for (which, name) in [
        ("latchkey", "latchkey MemoryStore"),
        ("tower-sessions", "tower-sessions MemoryStore"),
    ] {
        let out = std::process::Command::new(&exe)
            .env(MEMORY_CHILD, which)
            .output()
            .expect("run the memory child process");
        match String::from_utf8_lossy(&out.stdout).trim().parse::<usize>() {
            Ok(per) if out.status.success() => println!(
                "memory/{name}: {per} resident bytes per session with a {PAYLOAD_LEN}-byte payload ({:.2}x payload)",
                per as f64 / PAYLOAD_LEN as f64
            ),
            _ => println!(
                "memory/{name}: not measured: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }
}

/// Spawns `$tasks` tasks, each with its own clone of `$state` (no shared reference count is
/// touched per operation), releases them together, runs `$body` `$iters` times in each, and
/// evaluates to the wall time from the first task starting its loop to the last one ending it.
macro_rules! run_tasks {
    ($tasks:expr, $iters:expr, $state:expr, |$st:ident, $task:ident, $i:ident| $body:block) => {{
        let barrier = Arc::new(tokio::sync::Barrier::new($tasks + 1));
        let mut handles = Vec::with_capacity($tasks);
        for $task in 0..$tasks {
            let $st = $state.clone();
            let barrier = Arc::clone(&barrier);
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let start = Instant::now();
                for $i in 0..$iters {
                    $body
                }
                (start, Instant::now())
            }));
        }
        barrier.wait().await;
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        for handle in handles {
            let (start, end) = handle.await.expect("bench task");
            first = Some(first.map_or(start, |f| f.min(start)));
            last = Some(last.map_or(end, |l| l.max(end)));
        }
        match (first, last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        }
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
                            .create(black_box(&keys[task * n + i]), &record, None)
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
    bench_create(c, &rt);
    bench_load_and_save(c, &rt);
}

criterion_group!(session_store, benches);

// `criterion_main!` plus the memory child's entry point.
fn main() {
    if let Some(which) = std::env::var_os(MEMORY_CHILD) {
        measure_memory_in_child(&which.to_string_lossy());
        return;
    }
    memory_per_session();
    session_store();
    Criterion::default().configure_from_args().final_summary();
}
