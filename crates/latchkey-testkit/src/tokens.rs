//! The [`TokenStore`] conformance suite: every promise of `latchkey-tokens` that depends on the
//! store — atomic rotation under races, the grace window, reuse detection, expiry, revocation,
//! and that a dump of the store holds nothing that works as a refresh token — as plain
//! `pub async fn`s driving a real [`TokenService`], and [`token_store_conformance!`](crate::token_store_conformance), which emits
//! one `#[tokio::test]` per check.
//!
//! Time is injected: each check drives a [`ManualClock`], and the service passes its time to the
//! store, so expiry is tested to the second on every backend without sleeping.
//!
//! ```
//! use latchkey_testkit::tokens::TokenBackend;
//! use latchkey_tokens::MemoryTokenStore;
//! use std::sync::Arc;
//!
//! # #[tokio::main]
//! # async fn main() {
//! let store = Arc::new(MemoryTokenStore::new());
//! let dump = store.clone();
//! let backend = TokenBackend::new(store, move || std::future::ready(dump.dump()));
//! latchkey_testkit::tokens::racing_refreshes_get_one_successor(backend).await;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_tokens::jwt::{Algorithm, Clock, HmacKey, KeySet};
use latchkey_tokens::{
    Checks, RefreshError, RefreshKey, ReuseEvent, Revocation, TokenPair, TokenService, TokenStore,
    TokenTypeHint, VerifyError,
};
use serde_json::{json, Value};
use tokio::task::JoinSet;

const DAY: u64 = 24 * 3600;
/// Where every check's clock starts (2030-03-17).
pub const START: u64 = 1_900_000_000;

/// A clock the test moves by hand. Clones share the time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at `now` (seconds since the epoch).
    #[must_use]
    pub fn new(now: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(now)))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The future a [`TokenBackend`]'s dump returns.
pub type DumpFuture = Pin<Box<dyn Future<Output = Vec<String>> + Send>>;

/// A store under test and a way to dump everything it holds (every key and value, as text).
pub struct TokenBackend {
    /// The store.
    pub store: Arc<dyn TokenStore>,
    dump: Box<dyn Fn() -> DumpFuture + Send + Sync>,
}

impl TokenBackend {
    /// A backend from a store and a function that dumps it.
    pub fn new<F>(store: Arc<dyn TokenStore>, dump: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Vec<String>> + Send + 'static,
    {
        TokenBackend {
            store,
            dump: Box::new(move || Box::pin(dump())),
        }
    }

    /// Everything the store holds, as text.
    pub async fn dump(&self) -> Vec<String> {
        (self.dump)().await
    }
}

impl fmt::Debug for TokenBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBackend")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// A service on `store` with test keys, issuer `https://auth.test`, audience `api`, the default
/// lifetimes (15 min, 14 d idle, 30 d absolute), `grace` and `clock`; reuse events go to
/// `events`.
///
/// # Panics
/// Never with these fixed keys.
pub fn service(
    store: Arc<dyn TokenStore>,
    clock: &ManualClock,
    grace: Duration,
    events: &Arc<Mutex<Vec<ReuseEvent>>>,
) -> TokenService {
    let key = HmacKey::from_secret(Algorithm::HS256, &[0x5a; 32])
        .expect("key")
        .with_kid("k1");
    let events = events.clone();
    TokenService::builder(
        store,
        KeySet::new(key).expect("key set"),
        RefreshKey::from_secret(&[0xa5; 32]).expect("refresh key"),
    )
    .issuer("https://auth.test")
    .audience("api")
    .grace(grace)
    .clock(clock.clone())
    .on_reuse(move |e| events.lock().expect("events").push(e.clone()))
    .build()
    .expect("valid service")
}

struct Fixture {
    backend: TokenBackend,
    clock: ManualClock,
    events: Arc<Mutex<Vec<ReuseEvent>>>,
    tokens: TokenService,
}

fn fixture(backend: TokenBackend, grace: Duration) -> Fixture {
    let clock = ManualClock::new(START);
    let events = Arc::new(Mutex::new(Vec::new()));
    let tokens = service(backend.store.clone(), &clock, grace, &events);
    Fixture {
        backend,
        clock,
        events,
        tokens,
    }
}

const GRACE: Duration = Duration::from_secs(30);

async fn login(tokens: &TokenService, subject: &str) -> TokenPair {
    tokens
        .issue(subject, &json!({ "role": "user" }))
        .await
        .expect("issue")
}

async fn refresh_ok(tokens: &TokenService, pair: &TokenPair, what: &str) -> TokenPair {
    match tokens.refresh(pair.refresh_token()).await {
        Ok(next) => next,
        Err(err) => panic!("{what}: refresh must succeed, got {err:?}"),
    }
}

async fn refresh_fails(tokens: &TokenService, token: &str, what: &str) -> RefreshError {
    match tokens.refresh(token).await {
        Ok(pair) => panic!("{what}: refresh must fail, got {pair:?}"),
        Err(err) => {
            assert!(
                err.is_final(),
                "{what}: a store error is not an answer: {err:?}"
            );
            err
        }
    }
}

async fn verify_ok(tokens: &TokenService, pair: &TokenPair, checks: Checks, what: &str) {
    if let Err(err) = tokens.verify::<Value>(pair.access_token(), checks).await {
        panic!("{what}: access token must verify with {checks:?}, got {err:?}");
    }
}

async fn verify_revoked(
    tokens: &TokenService,
    pair: &TokenPair,
    checks: Checks,
    by: Revocation,
    what: &str,
) {
    match tokens.verify::<Value>(pair.access_token(), checks).await {
        Err(VerifyError::Revoked(r)) if r == by => {}
        other => panic!("{what}: access token must be revoked by {by:?}, got {other:?}"),
    }
}

/// Login, verify with every check, refresh: generation 1 then 2, the caller's claims in every
/// access token, the old access token still valid (it was not revoked).
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn login_refresh_verify_round_trip(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let pair = login(&f.tokens, "alice").await;
    assert_eq!(pair.generation(), 1);
    let access = f
        .tokens
        .verify::<Value>(pair.access_token(), Checks::ALL)
        .await
        .expect("fresh access token verifies with every check");
    assert_eq!(access.subject(), "alice");
    assert_eq!(access.claims.custom["role"], json!("user"));
    assert_eq!(access.family, pair.family());

    f.clock.advance(60);
    let next = refresh_ok(&f.tokens, &pair, "first refresh").await;
    assert_eq!(
        next.generation(),
        2,
        "a refresh moves the generation by one"
    );
    assert_eq!(
        next.family(),
        pair.family(),
        "a refresh stays in the family"
    );
    assert_ne!(next.refresh_token(), pair.refresh_token());
    let access = f
        .tokens
        .verify::<Value>(next.access_token(), Checks::ALL)
        .await
        .expect("refreshed access token verifies");
    assert_eq!(
        access.claims.custom["role"],
        json!("user"),
        "claims survive"
    );
    assert_eq!(access.claims.iat, Some(START + 60));
    verify_ok(&f.tokens, &pair, Checks::ALL, "the older access token").await;
    assert!(f.events.lock().expect("events").is_empty());
}

/// 64 tasks refresh one token at once: all succeed with the same successor refresh token, the
/// generation moves by exactly one, and the family stays alive (the successor refreshes, the
/// access tokens verify).
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn racing_refreshes_get_one_successor(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let pair = login(&f.tokens, "alice").await;
    let token: Arc<str> = pair.refresh_token().into();
    let mut tasks = JoinSet::new();
    for _ in 0..64 {
        let tokens = f.tokens.clone();
        let token = token.clone();
        tasks.spawn(async move { tokens.refresh(&token).await });
    }
    let mut successors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(next) => successors.push(next),
            Err(err) => panic!("a racing refresh must succeed, got {err:?}"),
        }
    }
    assert_eq!(successors.len(), 64);
    for next in &successors {
        assert_eq!(
            next.refresh_token(),
            successors[0].refresh_token(),
            "every racer gets the same successor"
        );
        assert_eq!(next.generation(), 2, "the generation moves by exactly one");
        verify_ok(&f.tokens, next, Checks::ALL, "a racer's access token").await;
    }
    assert!(f.events.lock().expect("events").is_empty(), "no reuse");
    let third = refresh_ok(&f.tokens, &successors[0], "the successor").await;
    assert_eq!(
        third.generation(),
        3,
        "the family is alive and moved by one"
    );
}

/// A thief replays the victim's old refresh token after the grace window: reuse, the family is
/// revoked, an event names it; then both the thief's and the victim's next refresh fail, and the
/// family's access tokens fail the family check.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn replay_after_grace_revokes_the_family(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let stolen = login(&f.tokens, "alice").await;
    f.clock.advance(5);
    let victim = refresh_ok(&f.tokens, &stolen, "victim").await;
    f.clock.advance(GRACE.as_secs());
    match f.tokens.refresh(stolen.refresh_token()).await {
        Err(RefreshError::Reused) => {}
        other => panic!("a replay after the window is reuse, got {other:?}"),
    }
    {
        let events = f.events.lock().expect("events");
        assert_eq!(events.len(), 1, "one reuse event");
        let e = &events[0];
        assert_eq!(e.family, stolen.family());
        assert_eq!(e.subject, "alice");
        assert_eq!((e.presented, e.current), (1, 2));
        assert_eq!(e.elapsed, GRACE, "elapsed since the token was retired");
    }
    refresh_fails(&f.tokens, stolen.refresh_token(), "thief again").await;
    let err = refresh_fails(&f.tokens, victim.refresh_token(), "victim after the replay").await;
    assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
    verify_revoked(
        &f.tokens,
        &victim,
        Checks::FAMILY,
        Revocation::Family,
        "victim",
    )
    .await;
    verify_revoked(
        &f.tokens,
        &stolen,
        Checks::FAMILY,
        Revocation::Family,
        "thief",
    )
    .await;
}

/// The thief refreshes first; the victim's (now retired) token after the window is reuse, and
/// then the thief's successor is refused.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn thief_first_then_victim_kills_the_thief(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let victim = login(&f.tokens, "alice").await;
    let thief = refresh_ok(&f.tokens, &victim, "thief").await;
    f.clock.advance(3600);
    let err = refresh_fails(&f.tokens, victim.refresh_token(), "victim").await;
    assert!(matches!(err, RefreshError::Reused), "got {err:?}");
    let err = refresh_fails(&f.tokens, thief.refresh_token(), "thief's successor").await;
    assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
}

/// Within the window only the immediately previous generation is accepted: presenting
/// generation N − 2 is reuse even a second after the rotation.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn older_than_previous_is_reuse_within_grace(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let first = login(&f.tokens, "alice").await;
    let second = refresh_ok(&f.tokens, &first, "1 -> 2").await;
    let third = refresh_ok(&f.tokens, &second, "2 -> 3").await;
    f.clock.advance(1);
    let again = refresh_ok(&f.tokens, &second, "2 within the window").await;
    assert_eq!(
        again.refresh_token(),
        third.refresh_token(),
        "same successor"
    );
    let err = refresh_fails(&f.tokens, first.refresh_token(), "generation 1 at N = 3").await;
    assert!(matches!(err, RefreshError::Reused), "got {err:?}");
    let events = f.events.lock().expect("events");
    assert_eq!((events[0].presented, events[0].current), (1, 3));
}

/// The window's edge: the previous generation is accepted while less than `grace` has passed
/// since the rotation (29 s of 30), and is reuse at exactly `grace`. A grace of zero accepts no
/// previous generation at all.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn grace_window_edges(backend: TokenBackend) {
    let store = backend.store.clone();
    let f = fixture(backend, GRACE);
    let first = login(&f.tokens, "alice").await;
    let second = refresh_ok(&f.tokens, &first, "rotation").await;
    f.clock.advance(GRACE.as_secs() - 1);
    let again = refresh_ok(&f.tokens, &first, "29 s after").await;
    assert_eq!(again.refresh_token(), second.refresh_token());
    f.clock.advance(1);
    let err = refresh_fails(&f.tokens, first.refresh_token(), "30 s after").await;
    assert!(matches!(err, RefreshError::Reused), "got {err:?}");

    let events = Arc::new(Mutex::new(Vec::new()));
    let strict = service(store, &f.clock, Duration::ZERO, &events);
    let first = login(&strict, "bob").await;
    let second = refresh_ok(&strict, &first, "rotation without grace").await;
    let err = refresh_fails(&strict, first.refresh_token(), "replay, grace 0").await;
    assert!(matches!(err, RefreshError::Reused), "got {err:?}");
    let err = refresh_fails(&strict, second.refresh_token(), "successor, grace 0").await;
    assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
}

/// The absolute deadline (login + 30 d) is never extended by refreshes: a refresh one second
/// before it works, at the deadline and one second after it the family is expired. Access
/// tokens never outlive it.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn absolute_deadline_is_never_extended(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let deadline = START + 30 * DAY;
    let mut pair = login(&f.tokens, "alice").await;
    for day in [10, 20] {
        f.clock.set(START + day * DAY);
        pair = refresh_ok(&f.tokens, &pair, "within the lifetime").await;
    }
    f.clock.set(deadline - 1);
    pair = refresh_ok(&f.tokens, &pair, "one second before the absolute deadline").await;
    assert_eq!(
        pair.expires_in(),
        1,
        "the access token ends with the family"
    );
    assert_eq!(pair.refresh_expires_in(), 1);
    let last = pair.clone();
    f.clock.set(deadline);
    let err = refresh_fails(&f.tokens, last.refresh_token(), "at the deadline").await;
    assert!(matches!(err, RefreshError::Expired), "got {err:?}");
    f.clock.set(deadline + 1);
    let err = refresh_fails(&f.tokens, last.refresh_token(), "one second after").await;
    assert!(matches!(err, RefreshError::Expired), "got {err:?}");
    assert!(
        f.tokens
            .verify::<Value>(last.access_token(), Checks::NONE)
            .await
            .is_err(),
        "no access token outlives its family"
    );
}

/// The idle deadline (14 d) expires an unused family, and each refresh renews it.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn idle_deadline_expires_and_is_renewed(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let idle = 14 * DAY;
    let pair = login(&f.tokens, "alice").await;
    f.clock.set(START + idle - 1);
    let pair = refresh_ok(&f.tokens, &pair, "one second before the idle deadline").await;
    f.clock.set(START + idle + 1);
    let pair = refresh_ok(&f.tokens, &pair, "past the first deadline, renewed").await;
    f.clock.set(START + idle + 1 + idle);
    let err = refresh_fails(&f.tokens, pair.refresh_token(), "idle for 14 days").await;
    assert!(matches!(err, RefreshError::Expired), "got {err:?}");
}

/// Log out everywhere: every family and access token of the subject issued before
/// `revoke_subject` is refused at once, other subjects are untouched, and a login after it
/// works — in the same second, too (the epoch is exact, not rounded to the second).
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn logout_everywhere_is_exact_to_the_call(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let laptop = login(&f.tokens, "alice").await;
    let phone = login(&f.tokens, "alice").await;
    let bob = login(&f.tokens, "bob").await;
    // Same second as the logins and the logout: only the order decides.
    f.tokens.revoke_subject("alice").await.expect("revoke all");
    for (pair, what) in [(&laptop, "laptop"), (&phone, "phone")] {
        verify_revoked(
            &f.tokens,
            pair,
            Checks::SUBJECT_EPOCH,
            Revocation::Subject,
            what,
        )
        .await;
        verify_revoked(&f.tokens, pair, Checks::FAMILY, Revocation::Family, what).await;
        let err = refresh_fails(&f.tokens, pair.refresh_token(), what).await;
        assert!(matches!(err, RefreshError::Revoked), "{what}: got {err:?}");
    }
    verify_ok(
        &f.tokens,
        &laptop,
        Checks::NONE,
        "the stateless level ignores revocation",
    )
    .await;
    verify_ok(&f.tokens, &bob, Checks::ALL, "another subject").await;
    refresh_ok(&f.tokens, &bob, "another subject's refresh").await;

    let again = login(&f.tokens, "alice").await;
    verify_ok(
        &f.tokens,
        &again,
        Checks::ALL,
        "a login in the same second, after",
    )
    .await;
    let next = refresh_ok(&f.tokens, &again, "its refresh").await;
    f.clock.advance(1);
    f.tokens
        .revoke_subject("alice")
        .await
        .expect("revoke all again");
    verify_revoked(
        &f.tokens,
        &next,
        Checks::SUBJECT_EPOCH,
        Revocation::Subject,
        "2nd",
    )
    .await;
}

/// RFC 7009 for a refresh token: the family is revoked (its refresh tokens, and its access
/// tokens through the family check); revoking it again, or revoking something unknown or
/// malformed, is not an error.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn revoking_a_refresh_token_revokes_its_family(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let pair = login(&f.tokens, "alice").await;
    let next = refresh_ok(&f.tokens, &pair, "rotation").await;
    let other = login(&f.tokens, "alice").await;
    // Revoking with the retired token works too, and a wrong hint does not matter.
    f.tokens
        .revoke(pair.refresh_token(), Some(TokenTypeHint::AccessToken))
        .await
        .expect("revoke");
    let err = refresh_fails(&f.tokens, next.refresh_token(), "after logout").await;
    assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
    verify_revoked(
        &f.tokens,
        &next,
        Checks::FAMILY,
        Revocation::Family,
        "its access",
    )
    .await;
    verify_ok(
        &f.tokens,
        &other,
        Checks::ALL,
        "another family of the subject",
    )
    .await;
    assert!(
        f.events.lock().expect("events").is_empty(),
        "logout is not reuse"
    );
    for junk in [next.refresh_token(), "", "not a token", "a.b.c"] {
        f.tokens
            .revoke(junk, None)
            .await
            .expect("revoking junk is Ok");
    }
}

/// RFC 7009 for an access token: its `jti` is refused until it expires; the family's other
/// tokens are untouched.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn revoking_an_access_token_denies_its_jti(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let pair = login(&f.tokens, "alice").await;
    f.tokens
        .revoke(pair.access_token(), None)
        .await
        .expect("revoke access token");
    verify_revoked(
        &f.tokens,
        &pair,
        Checks::JTI,
        Revocation::Token,
        "revoked jti",
    )
    .await;
    verify_ok(
        &f.tokens,
        &pair,
        Checks::SUBJECT_EPOCH | Checks::FAMILY,
        "other levels",
    )
    .await;
    let next = refresh_ok(&f.tokens, &pair, "the family lives on").await;
    verify_ok(&f.tokens, &next, Checks::ALL, "a new access token").await;
}

/// Logout races refreshes of the same family: once `revoke` returns, every successor any racer
/// got is refused, and no racer's refresh branches the family.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn logout_wins_against_racing_refreshes(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let pair = login(&f.tokens, "alice").await;
    let token: Arc<str> = pair.refresh_token().into();
    let mut tasks = JoinSet::new();
    for _ in 0..32 {
        let tokens = f.tokens.clone();
        let token = token.clone();
        tasks.spawn(async move { tokens.refresh(&token).await.ok() });
    }
    f.tokens
        .revoke(pair.refresh_token(), None)
        .await
        .expect("logout");
    let mut got = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        got.extend(joined.expect("task"));
    }
    for next in got {
        let err = refresh_fails(&f.tokens, next.refresh_token(), "successor after logout").await;
        assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
        verify_revoked(
            &f.tokens,
            &next,
            Checks::FAMILY,
            Revocation::Family,
            "racer",
        )
        .await;
    }
}

/// "Log out everywhere" races refreshes of the subject's families: once `revoke_subject`
/// returns, every successor any racer got is refused, by the refresh and by the epoch check.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn logout_everywhere_wins_against_racing_refreshes(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let mut tasks = JoinSet::new();
    for _ in 0..4 {
        let pair = login(&f.tokens, "alice").await;
        let token: Arc<str> = pair.refresh_token().into();
        for _ in 0..8 {
            let tokens = f.tokens.clone();
            let token = token.clone();
            tasks.spawn(async move { tokens.refresh(&token).await.ok() });
        }
    }
    f.tokens.revoke_subject("alice").await.expect("revoke all");
    let mut got = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        got.extend(joined.expect("task"));
    }
    for next in got {
        let err = refresh_fails(
            &f.tokens,
            next.refresh_token(),
            "successor after logout-all",
        )
        .await;
        assert!(matches!(err, RefreshError::Revoked), "got {err:?}");
        verify_revoked(
            &f.tokens,
            &next,
            Checks::SUBJECT_EPOCH,
            Revocation::Subject,
            "racer after logout-all",
        )
        .await;
    }
}

/// Logins race a "log out everywhere": each login either happened before it (its access token
/// fails the epoch check and its refresh is revoked) or after it (both work) — never a mix.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn logins_racing_logout_everywhere_are_consistent(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let mut tasks = JoinSet::new();
    for _ in 0..32 {
        let tokens = f.tokens.clone();
        tasks.spawn(async move { login(&tokens, "alice").await });
    }
    f.tokens.revoke_subject("alice").await.expect("revoke all");
    while let Some(joined) = tasks.join_next().await {
        let pair = joined.expect("task");
        let access = f
            .tokens
            .verify::<Value>(pair.access_token(), Checks::SUBJECT_EPOCH)
            .await;
        let refresh = f.tokens.refresh(pair.refresh_token()).await;
        match (access, refresh) {
            (Ok(_), Ok(_)) => {}
            (Err(VerifyError::Revoked(Revocation::Subject)), Err(RefreshError::Revoked)) => {}
            (a, r) => panic!("a login is either before or after the logout: {a:?} / {r:?}"),
        }
    }
}

/// The store dump: after a login and three refreshes, no stored key or value works as a refresh
/// token (each is `Unknown`, none is even taken for a retired one) or as an access token, and
/// none contains a refresh token issued; the live token still works afterwards.
///
/// # Panics
/// If the store breaks the guarantee.
pub async fn store_dump_holds_no_working_token(backend: TokenBackend) {
    let f = fixture(backend, GRACE);
    let mut issued = vec![login(&f.tokens, "alice").await];
    for _ in 0..3 {
        f.clock.advance(60);
        let next = refresh_ok(&f.tokens, issued.last().expect("pair"), "refresh").await;
        issued.push(next);
    }
    f.tokens
        .revoke(issued[3].access_token(), None)
        .await
        .expect("deny a jti too");
    let dump = f.backend.dump().await;
    assert!(!dump.is_empty(), "the dump must show what the store holds");
    for value in &dump {
        for pair in &issued {
            assert!(
                !value.contains(pair.refresh_token()),
                "the store holds a refresh token"
            );
        }
        match f.tokens.refresh(value).await {
            Err(RefreshError::Unknown) => {}
            other => panic!("a stored value presented as a refresh token: {other:?}"),
        }
        assert!(
            f.tokens.verify::<Value>(value, Checks::NONE).await.is_err(),
            "a stored value works as an access token"
        );
    }
    assert!(f.events.lock().expect("events").is_empty());
    let last = refresh_ok(&f.tokens, &issued[3], "the live token").await;
    assert_eq!(last.generation(), 5);
}

/// Emits one `#[tokio::test]` per token conformance check, each against a fresh backend from
/// `$factory` (callable with no arguments, returning a future of
/// [`TokenBackend`](crate::tokens::TokenBackend); with `with_guard:`, of `(TokenBackend, guard)`,
/// the guard dropped when the test ends).
///
/// ```
/// mod memory {
///     use std::sync::Arc;
///     use latchkey_testkit::tokens::TokenBackend;
///     use latchkey_tokens::MemoryTokenStore;
///
///     latchkey_testkit::token_store_conformance!(|| async {
///         let store = Arc::new(MemoryTokenStore::new());
///         let dump = store.clone();
///         TokenBackend::new(store, move || std::future::ready(dump.dump()))
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! token_store_conformance {
    (with_guard: $factory:expr) => {
        $crate::token_store_conformance!(@all $factory);
    };
    ($factory:expr) => {
        $crate::token_store_conformance!(@all || async {
            let factory = $factory;
            (factory().await, ())
        });
    };
    (@all $factory:expr) => {
        $crate::token_store_conformance!(@checks $factory;
            login_refresh_verify_round_trip,
            racing_refreshes_get_one_successor,
            replay_after_grace_revokes_the_family,
            thief_first_then_victim_kills_the_thief,
            older_than_previous_is_reuse_within_grace,
            grace_window_edges,
            absolute_deadline_is_never_extended,
            idle_deadline_expires_and_is_renewed,
            logout_everywhere_is_exact_to_the_call,
            revoking_a_refresh_token_revokes_its_family,
            revoking_an_access_token_denies_its_jti,
            logout_wins_against_racing_refreshes,
            logout_everywhere_wins_against_racing_refreshes,
            logins_racing_logout_everywhere_are_consistent,
            store_dump_holds_no_working_token,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let factory = $factory;
                let (backend, _guard) = factory().await;
                $crate::tokens::$check(backend).await;
            }
        )*
    };
}
