//! The [`ThrottleStore`] conformance checks: the promises of `latchkey-throttle` that every
//! throttle backend must keep, as plain `pub async fn`s and [`throttle_store_conformance!`](crate::throttle_store_conformance),
//! which emits one `#[tokio::test]` per check. The checks drive a [`Throttle`] with an injected
//! clock; keys are fresh per check, so a shared backend can run them side by side.

use std::sync::Arc;
use std::time::Duration;

use latchkey_throttle::{Attempt, ManualClock, Throttle, ThrottleKey, ThrottleStore, Timestamp};

fn clock() -> ManualClock {
    // Real time, so that a backend with its own TTLs (Redis) keeps the budgets meanwhile.
    ManualClock::new(Timestamp::from_system_time(std::time::SystemTime::now()))
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

/// 64 concurrent attempts against a budget of 5 get exactly 5 places (20 rounds).
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn concurrent_attempts_never_get_more_places_than_the_budget(
    store: Arc<dyn ThrottleStore>,
) {
    for round in 0..20 {
        let clock = clock();
        let t = throttle(Arc::clone(&store), &clock);
        let account = format!("racer{round}");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (t, account) = (t.clone(), account.clone());
            tasks.spawn(async move {
                matches!(
                    t.attempt(&[ThrottleKey::account(&account)])
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

/// 50 wrong attempts: only the free ones reach the password check; the right password is refused until the back-off ends, then works and resets the account.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn fifty_wrong_passwords_then_the_right_one_after_the_back_off(
    store: Arc<dyn ThrottleStore>,
) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
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

/// The back-off doubles from the base delay up to the ceiling.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn the_back_off_doubles_up_to_its_ceiling(store: Arc<dyn ThrottleStore>) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
    let key = [ThrottleKey::account("bob")];
    for _ in 0..4 {
        assert!(matches!(
            t.attempt(&key).await.expect("attempt"),
            Attempt::Allowed(_)
        ));
    }
    let mut waits = Vec::new();
    for _ in 0..9 {
        assert!(matches!(
            t.attempt(&key).await.expect("attempt"),
            Attempt::Allowed(_)
        ));
        let refused = t.attempt(&key).await.expect("attempt");
        let secs = refused.retry_after_secs().expect("throttled");
        waits.push(secs);
        clock.advance(Duration::from_secs(secs));
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

/// Attempts spread over many accounts from one client are throttled by the client budget.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn many_accounts_from_one_client_are_throttled_by_the_client_budget(
    store: Arc<dyn ThrottleStore>,
) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
    let mut allowed = 0;
    for n in 0..100 {
        let account = format!("user{n}");
        if let Attempt::Allowed(_) = t
            .attempt(&keys(&account, "203.0.113.9"))
            .await
            .expect("attempt")
        {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 20,
        "one client gets its own budget across all accounts"
    );
    // Another client is not affected, and the accounts sprayed were charged once each.
    assert!(matches!(
        t.attempt(&keys("user0", "192.0.2.1"))
            .await
            .expect("attempt"),
        Attempt::Allowed(_)
    ));
}

/// A success resets the account budget and refunds its own place to the client, but never
/// resets the client budget: guesses made before it still count.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn success_resets_the_account_but_never_the_client(store: Arc<dyn ThrottleStore>) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
    // 19 guesses against victims, then a login to the attacker's own account...
    for n in 0..19 {
        let _ = t
            .attempt(&keys(&format!("victim{n}"), "203.0.113.5"))
            .await
            .expect("attempt");
    }
    match t
        .attempt(&keys("mallory", "203.0.113.5"))
        .await
        .expect("attempt")
    {
        Attempt::Allowed(place) => place.succeeded().await.expect("attempt"),
        other => panic!("the 20th attempt is still free, got {other:?}"),
    }
    // ...gives back only its own place: one more guess, then the back-off.
    assert!(matches!(
        t.attempt(&keys("victim98", "203.0.113.5"))
            .await
            .expect("attempt"),
        Attempt::Allowed(_)
    ));
    assert!(matches!(
        t.attempt(&keys("victim99", "203.0.113.5"))
            .await
            .expect("attempt"),
        Attempt::Throttled { .. }
    ));
}

/// Successful logins from one client (an office behind one address) never spend its budget,
/// even when 64 run at once; a refund on a missing budget is harmless.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn successes_do_not_spend_the_client_budget(store: Arc<dyn ThrottleStore>) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
    let client = "198.51.100.20";
    for round in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..16 {
            let t = t.clone();
            tasks.spawn(async move {
                match t
                    .attempt(&keys(&format!("staff{round}x{n}"), client))
                    .await
                    .expect("attempt")
                {
                    Attempt::Allowed(place) => {
                        place.succeeded().await.expect("succeeded");
                        true
                    }
                    Attempt::Throttled { .. } => false,
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            assert!(
                done.expect("task"),
                "48 successful logins from one client, 16 at a time, are never throttled"
            );
        }
    }
    // The budget is whole again: 20 failures are free, the 21st is not.
    for n in 0..20 {
        assert!(
            matches!(
                t.attempt(&keys(&format!("guess{n}"), client))
                    .await
                    .expect("attempt"),
                Attempt::Allowed(_)
            ),
            "failure {n} is within the budget"
        );
    }
    assert!(matches!(
        t.attempt(&keys("guess20", client)).await.expect("attempt"),
        Attempt::Throttled { .. }
    ));
    // Refunding a budget that does not exist changes nothing and is not an error.
    let rule = *t.rule(latchkey_throttle::KeyKind::Client);
    store
        .refund(&ThrottleKey::client("192.0.2.200"), &rule)
        .await
        .expect("refund of a missing key");
    assert!(matches!(
        t.attempt(&keys("fresh", "192.0.2.200"))
            .await
            .expect("attempt"),
        Attempt::Allowed(_)
    ));
}

/// A refused attempt counts against no budget: retrying a throttled account does not run
/// down the client's budget.
///
/// # Panics
///
/// If the store breaks the guarantee.
pub async fn a_refused_attempt_spends_no_budget(store: Arc<dyn ThrottleStore>) {
    let clock = clock();
    let t = throttle(Arc::clone(&store), &clock);
    let client = "198.51.100.77";
    for n in 0..35 {
        let attempt = t.attempt(&keys("target", client)).await.expect("attempt");
        assert_eq!(
            matches!(attempt, Attempt::Allowed(_)),
            n < 5,
            "attempt {n}: 5 free, then the account's back-off"
        );
    }
    // The client counted only the 5 that went ahead: 15 more failures are free.
    for n in 0..15 {
        assert!(
            matches!(
                t.attempt(&keys(&format!("other{n}"), client))
                    .await
                    .expect("attempt"),
                Attempt::Allowed(_)
            ),
            "client failure {} of 20",
            n + 6
        );
    }
    assert!(matches!(
        t.attempt(&keys("other99", client)).await.expect("attempt"),
        Attempt::Throttled { .. }
    ));
}

/// Emits one `#[tokio::test]` per throttle check, each with a store from `$factory` (called
/// with no arguments, returning a future of `(Arc<dyn ThrottleStore>, guard)`; the guard, such
/// as a private server, lives until the test ends).
///
/// ```
/// mod memory {
///     use std::sync::Arc;
///     use latchkey_throttle::{MemoryThrottleStore, ThrottleStore};
///
///     latchkey_testkit::throttle_store_conformance!(|| async {
///         (Arc::new(MemoryThrottleStore::new()) as Arc<dyn ThrottleStore>, ())
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! throttle_store_conformance {
    ($factory:expr) => {
        $crate::throttle_store_conformance!(@checks $factory;
            concurrent_attempts_never_get_more_places_than_the_budget,
            fifty_wrong_passwords_then_the_right_one_after_the_back_off,
            the_back_off_doubles_up_to_its_ceiling,
            many_accounts_from_one_client_are_throttled_by_the_client_budget,
            success_resets_the_account_but_never_the_client,
            successes_do_not_spend_the_client_budget,
            a_refused_attempt_spends_no_budget,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let factory = $factory;
                let (store, _guard) = factory().await;
                $crate::throttle::$check(store).await;
            }
        )*
    };
}
