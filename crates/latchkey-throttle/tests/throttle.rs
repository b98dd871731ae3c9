//! The memory store's own behaviour (sweeping, capacity, configuration). The promises every
//! backend keeps are the testkit's throttle conformance checks, run here too.

mod conformance {
    use std::sync::Arc;

    use latchkey_throttle::{MemoryThrottleStore, ThrottleStore};

    latchkey_testkit::throttle_store_conformance!(|| async {
        (
            Arc::new(MemoryThrottleStore::new()) as Arc<dyn ThrottleStore>,
            (),
        )
    });
}

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
