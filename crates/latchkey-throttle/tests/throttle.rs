//! The throttle's promises on the memory store: budgets hold under concurrency, back-off
//! grows and ends, success resets the account only, quiet budgets are forgotten, and a full
//! store fails closed.

use std::sync::Arc;
use std::time::Duration;

use latchkey_throttle::{
    Attempt, ConfigError, ManualClock, MemoryThrottleStore, Throttle, ThrottleError, ThrottleKey,
    ThrottleStore, Timestamp,
};

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000))
}

fn throttle(store: Arc<dyn ThrottleStore>, clock: &ManualClock) -> Throttle {
    Throttle::builder(store)
        .account_free_attempts(5)
        .client_free_attempts(20)
        .base_delay(Duration::from_secs(1))
        .max_delay(Duration::from_secs(60))
        .forget_after(Duration::from_secs(3600))
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid config")
}

fn keys(account: &str, client: &str) -> [ThrottleKey; 2] {
    [ThrottleKey::client(client), ThrottleKey::account(account)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_never_get_more_places_than_the_budget() {
    for _round in 0..20 {
        let clock = clock();
        let t = throttle(Arc::new(MemoryThrottleStore::new()), &clock);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let t = t.clone();
            tasks.spawn(async move {
                matches!(
                    t.attempt(&[ThrottleKey::account("alice")])
                        .await
                        .expect("attempt"),
                    Attempt::Allowed(_)
                )
            });
        }
        let mut allowed = 0;
        while let Some(done) = tasks.join_next().await {
            allowed += usize::from(done.expect("task"));
        }
        assert_eq!(
            allowed, 5,
            "a budget of 5 gives exactly 5 places to 64 racers"
        );
    }
}

#[tokio::test]
async fn fifty_wrong_passwords_then_the_right_one_after_the_back_off() {
    let clock = clock();
    let t = throttle(Arc::new(MemoryThrottleStore::new()), &clock);
    let mut allowed = 0;
    let mut first_refusal = None;
    for n in 0..50 {
        match t
            .attempt(&keys("alice", "198.51.100.1"))
            .await
            .expect("attempt")
        {
            Attempt::Allowed(_wrong_password) => allowed += 1,
            refused @ Attempt::Throttled { .. } => {
                first_refusal.get_or_insert(n);
                assert_eq!(refused.retry_after_secs(), Some(1));
            }
        }
    }
    assert_eq!(
        allowed, 5,
        "only the free attempts reached the password check"
    );
    assert_eq!(first_refusal, Some(5));

    // The right password is refused too while the back-off lasts...
    let refused = t
        .attempt(&keys("alice", "198.51.100.1"))
        .await
        .expect("attempt");
    assert!(matches!(refused, Attempt::Throttled { .. }));
    // ...and works once it is over; success resets the account's budget.
    clock.advance(Duration::from_secs(1));
    match t
        .attempt(&keys("alice", "198.51.100.1"))
        .await
        .expect("attempt")
    {
        Attempt::Allowed(place) => place.succeeded().await.expect("reset"),
        other => panic!("after the back-off the attempt must go ahead, got {other:?}"),
    }
    for _ in 0..4 {
        assert!(matches!(
            t.attempt(&[ThrottleKey::account("alice")])
                .await
                .expect("attempt"),
            Attempt::Allowed(_)
        ));
    }
}

#[tokio::test]
async fn the_back_off_doubles_up_to_its_ceiling() {
    let clock = clock();
    let t = throttle(Arc::new(MemoryThrottleStore::new()), &clock);
    let key = [ThrottleKey::account("bob")];
    for _ in 0..4 {
        assert!(matches!(
            t.attempt(&key).await.unwrap(),
            Attempt::Allowed(_)
        ));
    }
    let mut waits = Vec::new();
    for _ in 0..9 {
        assert!(matches!(
            t.attempt(&key).await.unwrap(),
            Attempt::Allowed(_)
        ));
        let refused = t.attempt(&key).await.unwrap();
        let secs = refused.retry_after_secs().expect("throttled");
        waits.push(secs);
        clock.advance(Duration::from_secs(secs));
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

#[tokio::test]
async fn many_accounts_from_one_client_are_throttled_by_the_client_budget() {
    let clock = clock();
    let t = throttle(Arc::new(MemoryThrottleStore::new()), &clock);
    let mut allowed = 0;
    for n in 0..100 {
        let account = format!("user{n}");
        if let Attempt::Allowed(_) = t.attempt(&keys(&account, "203.0.113.9")).await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 20,
        "one client gets its own budget across all accounts"
    );
    // Another client is not affected, and the accounts sprayed were charged once each.
    assert!(matches!(
        t.attempt(&keys("user0", "192.0.2.1")).await.unwrap(),
        Attempt::Allowed(_)
    ));
}

#[tokio::test]
async fn success_resets_the_account_but_never_the_client() {
    let clock = clock();
    let t = throttle(Arc::new(MemoryThrottleStore::new()), &clock);
    // 19 guesses against victims, then a login to the attacker's own account...
    for n in 0..19 {
        let _ = t
            .attempt(&keys(&format!("victim{n}"), "203.0.113.5"))
            .await
            .unwrap();
    }
    match t.attempt(&keys("mallory", "203.0.113.5")).await.unwrap() {
        Attempt::Allowed(place) => place.succeeded().await.unwrap(),
        other => panic!("the 20th attempt is still free, got {other:?}"),
    }
    // ...does not buy more guesses.
    assert!(matches!(
        t.attempt(&keys("victim99", "203.0.113.5")).await.unwrap(),
        Attempt::Throttled { .. }
    ));
}

#[tokio::test]
async fn a_quiet_budget_is_forgotten_and_swept() {
    let clock = clock();
    let store = Arc::new(MemoryThrottleStore::new());
    let t = throttle(Arc::clone(&store) as Arc<dyn ThrottleStore>, &clock);
    for _ in 0..3 {
        let _ = t.attempt(&[ThrottleKey::account("carol")]).await.unwrap();
    }
    assert_eq!(store.len(), 1);
    clock.advance(Duration::from_secs(3599));
    assert_eq!(
        store.sweep(latchkey_throttle::Clock::now(&clock)),
        0,
        "not forgotten yet"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.sweep(latchkey_throttle::Clock::now(&clock)), 1);
    assert!(store.is_empty());
    for _ in 0..5 {
        assert!(matches!(
            t.attempt(&[ThrottleKey::account("carol")]).await.unwrap(),
            Attempt::Allowed(_)
        ));
    }
}

#[tokio::test]
async fn a_full_store_fails_closed() {
    let clock = clock();
    let store = Arc::new(MemoryThrottleStore::new().with_capacity_limit(3));
    let t = throttle(store, &clock);
    for n in 0..3 {
        let _ = t
            .attempt(&[ThrottleKey::account(&format!("u{n}"))])
            .await
            .unwrap();
    }
    match t.attempt(&[ThrottleKey::account("u3")]).await {
        Err(ThrottleError::Full) => {}
        other => panic!("a full store must refuse, got {other:?}"),
    }
    // Known budgets keep working.
    assert!(t.attempt(&[ThrottleKey::account("u0")]).await.is_ok());
}

#[test]
fn impossible_configurations_are_refused() {
    let b = || Throttle::builder(Arc::new(MemoryThrottleStore::new()));
    assert_eq!(
        b().account_free_attempts(0).build().unwrap_err(),
        ConfigError::NoFreeAttempts
    );
    assert_eq!(
        b().client_free_attempts(0).build().unwrap_err(),
        ConfigError::NoFreeAttempts
    );
    assert_eq!(
        b().base_delay(Duration::ZERO).build().unwrap_err(),
        ConfigError::Delays
    );
    assert_eq!(
        b().base_delay(Duration::from_secs(10))
            .max_delay(Duration::from_secs(5))
            .build()
            .unwrap_err(),
        ConfigError::Delays
    );
    assert_eq!(
        b().forget_after(Duration::ZERO).build().unwrap_err(),
        ConfigError::Delays
    );
}

#[test]
fn nothing_identifying_in_debug_output() {
    let key = ThrottleKey::client("203.0.113.77");
    let text = format!("{key:?}");
    assert!(!text.contains("203.0.113"), "{text}");
    let refused = Attempt::Throttled {
        retry_after: Duration::from_millis(1),
    };
    assert_eq!(
        refused.retry_after_secs(),
        Some(1),
        "never a Retry-After of 0"
    );
}
