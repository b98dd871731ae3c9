//! Access-token verification at each revocation level, side by side with plain latchkey-jwt
//! verification of the same token, and refresh throughput at 64 tasks, on `MemoryTokenStore`
//! and on a private `redis-server` (`RedisTokenStore`, one script per call).
//!
//! `cargo bench -p latchkey-benches --bench tokens`

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use latchkey_tokens::jwt::{Algorithm, Claim, HmacKey, KeySet, Validation, Verifier};
use latchkey_tokens::{Checks, MemoryTokenStore, RefreshKey, TokenPair, TokenService};
use serde::Deserialize;

const SECRET: [u8; 32] = [0x5a; 32];

fn keys() -> KeySet {
    let key = HmacKey::from_secret(Algorithm::HS256, &SECRET)
        .expect("key")
        .with_kid("k1");
    KeySet::new(key).expect("key set")
}

fn service() -> TokenService {
    service_on(Arc::new(MemoryTokenStore::new()))
}

fn service_on(store: Arc<dyn latchkey_tokens::TokenStore>) -> TokenService {
    TokenService::builder(
        store,
        keys(),
        RefreshKey::from_secret(&[0xa5; 32]).expect("refresh key"),
    )
    .issuer("https://auth.example.com")
    .audience("api")
    .build()
    .expect("service")
}

/// What the tokens layer reads besides the registered claims, for a like-for-like baseline.
#[derive(Deserialize)]
#[allow(dead_code)] // read by serde only
struct Extra {
    sid: String,
    sep: u64,
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tokens = service();
    let pair = rt
        .block_on(tokens.issue("user-42", &serde_json::json!({"role": "admin"})))
        .expect("issue");
    let token = pair.access_token().to_owned();
    let plain = Verifier::with_key_set(
        keys(),
        Validation::builder()
            .typ("at+jwt")
            .issuer("https://auth.example.com")
            .audience("api")
            .required_claims([Claim::Exp, Claim::Iat, Claim::Sub, Claim::Jti])
            .leeway(std::time::Duration::ZERO)
            .build()
            .expect("validation"),
    );

    let mut group = c.benchmark_group("access_verify_memory");
    group.throughput(Throughput::Elements(1));
    // In the same async harness as the others, so that only the tokens layer differs.
    group.bench_function("latchkey-jwt/plain", |b| {
        b.to_async(&rt)
            .iter(|| async { plain.verify::<Extra>(black_box(&token)).expect("valid") });
    });
    for (name, checks) in [
        ("latchkey-tokens/none", Checks::NONE),
        ("latchkey-tokens/epoch", Checks::SUBJECT_EPOCH),
        (
            "latchkey-tokens/epoch+family",
            Checks::SUBJECT_EPOCH | Checks::FAMILY,
        ),
        ("latchkey-tokens/all", Checks::ALL),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                tokens
                    .verify::<()>(black_box(&token), checks)
                    .await
                    .expect("valid")
            });
        });
    }
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let tokens = service();
    // 64 families, each refreshed by its own task, one refresh per task per iteration.
    let pairs: Vec<Arc<Mutex<TokenPair>>> = (0..64)
        .map(|i| {
            let pair = rt
                .block_on(tokens.issue(&format!("user-{i}"), &()))
                .expect("issue");
            Arc::new(Mutex::new(pair))
        })
        .collect();
    let mut group = c.benchmark_group("refresh_memory");
    group.throughput(Throughput::Elements(64));
    group.bench_function("latchkey-tokens/64_tasks", |b| {
        b.to_async(&rt).iter(|| async {
            refresh_each(&tokens, &pairs).await;
        });
    });
    group.finish();
}

/// One refresh of every pair, each in a task of its own, all at once; each pair keeps its
/// successor for the next round.
async fn refresh_each(tokens: &TokenService, pairs: &[Arc<Mutex<TokenPair>>]) {
    let mut tasks = tokio::task::JoinSet::new();
    for pair in pairs {
        let tokens = tokens.clone();
        let pair = pair.clone();
        tasks.spawn(async move {
            let current = pair.lock().expect("pair").refresh_token().to_owned();
            let next = tokens.refresh(&current).await.expect("refresh");
            *pair.lock().expect("pair") = next;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
}

/// 64 tasks at once: verification at each level and refresh, against Redis.
fn redis(c: &mut Criterion) {
    let server = latchkey_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let config = latchkey_redis::RedisStoreConfig::single(server.url())
        .build()
        .expect("config");
    let store = latchkey_redis::tokens::RedisTokenStore::new(config).expect("store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tokens = service_on(Arc::new(store));
    let pairs: Vec<Arc<Mutex<TokenPair>>> = (0..64)
        .map(|i| {
            let pair = rt
                .block_on(tokens.issue(&format!("user-{i}"), &()))
                .expect("issue");
            Arc::new(Mutex::new(pair))
        })
        .collect();
    let access: Arc<Vec<String>> = Arc::new(
        pairs
            .iter()
            .map(|p| p.lock().expect("pair").access_token().to_owned())
            .collect(),
    );
    let mut group = c.benchmark_group("tokens_redis_64_tasks");
    group.throughput(Throughput::Elements(64));
    for (name, checks) in [
        ("verify/none", Checks::NONE),
        ("verify/epoch", Checks::SUBJECT_EPOCH),
        ("verify/all", Checks::ALL),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..64 {
                    let tokens = tokens.clone();
                    let access = access.clone();
                    tasks.spawn(async move {
                        tokens
                            .verify::<()>(black_box(&access[i]), checks)
                            .await
                            .expect("valid")
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("task");
                }
            });
        });
    }
    group.bench_function("refresh", |b| {
        b.to_async(&rt).iter(|| async {
            refresh_each(&tokens, &pairs).await;
        });
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, verify, refresh, redis);
criterion_main!(benches);
