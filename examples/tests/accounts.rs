//! The login service's account stores: the same checks against SQLite (a temporary file) and
//! a private PostgreSQL (started on a free loopback port by the testkit).
#![allow(clippy::unwrap_used)] // test code: a failed step should panic with its error

use std::sync::Arc;

use latchkey_examples::accounts::{self, AccountError, UserStore};
use latchkey_testkit::postgres::PostgresServer;

async fn checks(
    open: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn UserStore>>>>,
) {
    let store = open().await;
    assert!(store.ping().await.is_ok());
    assert_eq!(store.password_hash("nobody1").await.unwrap(), None);
    store.insert("alice01", "$argon2id$hash-a").await.unwrap();
    assert_eq!(
        store.password_hash("alice01").await.unwrap().as_deref(),
        Some("$argon2id$hash-a")
    );
    assert!(matches!(
        store.insert("alice01", "$argon2id$other").await,
        Err(AccountError::Taken)
    ));
    assert_eq!(
        store.password_hash("alice01").await.unwrap().as_deref(),
        Some("$argon2id$hash-a"),
        "a refused sign-up changes nothing"
    );

    // Concurrent sign-ups of one ID: the database decides, exactly one wins.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.insert("racer01", &format!("$argon2id$h{n}")).await });
    }
    let (mut won, mut taken) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(()) => won += 1,
            Err(AccountError::Taken) => taken += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, taken), (1, 15));

    assert!(store
        .set_password_hash("alice01", "$argon2id$hash-b")
        .await
        .unwrap());
    assert!(!store
        .set_password_hash("nobody1", "$argon2id$x")
        .await
        .unwrap());

    // External identities: an account made with its identity, found by (issuer, subject)
    // only — the same subject at another issuer is someone else.
    const ISS: &str = "https://id.example";
    assert_eq!(store.linked_account(ISS, "sub-1").await.unwrap(), None);
    store.insert_linked("ext0001", ISS, "sub-1").await.unwrap();
    assert_eq!(
        store.linked_account(ISS, "sub-1").await.unwrap().as_deref(),
        Some("ext0001")
    );
    assert_eq!(
        store
            .linked_account("https://other.example", "sub-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.password_hash("ext0001").await.unwrap().as_deref(),
        Some(accounts::NO_PASSWORD)
    );
    // A taken ID links nothing (both or neither).
    assert!(matches!(
        store.insert_linked("alice01", ISS, "sub-2").await,
        Err(AccountError::Taken)
    ));
    assert_eq!(store.linked_account(ISS, "sub-2").await.unwrap(), None);
    // Concurrent first sign-ins of one identity under different new IDs: exactly one links.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .insert_linked(&format!("ext1{n:03}"), ISS, "sub-3")
                .await
        });
    }
    let (mut won, mut taken) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(()) => won += 1,
            Err(AccountError::Taken) => taken += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, taken), (1, 15));
    let winner = store.linked_account(ISS, "sub-3").await.unwrap().unwrap();
    for n in 0..16 {
        let id = format!("ext1{n:03}");
        assert_eq!(
            store.password_hash(&id).await.unwrap().is_some(),
            id == winner,
            "the losers' accounts were rolled back"
        );
    }

    // A second open (a restart) migrates nothing twice and finds the accounts.
    drop(store);
    let again = open().await;
    assert_eq!(
        again.password_hash("alice01").await.unwrap().as_deref(),
        Some("$argon2id$hash-b")
    );
    assert!(again.password_hash("racer01").await.unwrap().is_some());
    assert_eq!(
        again.linked_account(ISS, "sub-1").await.unwrap().as_deref(),
        Some("ext0001")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_accounts_unique_and_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.db").display().to_string();
    checks(move || {
        let path = path.clone();
        Box::pin(async move { accounts::open(Some(&path)).await.unwrap() })
    })
    .await;
    let store = accounts::open(Some(&format!(
        "sqlite://{}",
        dir.path().join("other.db").display()
    )))
    .await
    .unwrap();
    assert_eq!(store.backend(), "sqlite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_accounts_unique_and_across_restarts() {
    let pg = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.url();
    checks(move || {
        let url = url.clone();
        Box::pin(async move {
            let store = accounts::open(Some(&url)).await.unwrap();
            assert_eq!(store.backend(), "postgres");
            store
        })
    })
    .await;
}

#[tokio::test]
async fn bad_urls_and_dead_databases_are_typed_errors() {
    assert!(matches!(
        accounts::open(Some("mysql://root@127.0.0.1/x")).await,
        Err(AccountError::BadUrl)
    ));
    // A PostgreSQL that is not there: a typed error within the acquire timeout, no panic.
    let pg = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.url();
    drop(pg);
    match accounts::open(Some(&url)).await {
        Err(AccountError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let secret = "postgres://app:s3cret@127.0.0.1:1/db";
    if let Err(err) = accounts::open(Some(secret)).await {
        let text = format!("{err} {err:?}");
        assert!(!text.contains("s3cret"), "no password in errors: {text}");
    }
}
