//! The provider's key set, fetched from its `jwks_uri` and cached: per its `Cache-Control`
//! within bounds, refreshed once when a token names a key it does not hold (single-flight, at
//! most once a minute), and kept when the provider cannot be reached.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use latchkey_session::{Clock, SystemClock, Timestamp};

use crate::http::{HttpClient, HttpError};

/// The shortest time a fetched key set is used before it is fetched again.
pub const MIN_KEY_SET_AGE: Duration = Duration::from_secs(5 * 60);
/// The longest.
pub const MAX_KEY_SET_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The least time between two refreshes caused by an unknown key.
pub const UNKNOWN_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// A parser from the `jwks_uri` body to the key set type.
pub type ParseKeySet<T> =
    dyn Fn(&[u8]) -> Result<T, Box<dyn std::error::Error + Send + Sync>> + Send + Sync;

/// Why no key set could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// The request failed and no earlier set is held.
    #[error("key set request failed")]
    Http(#[source] HttpError),
    /// The `jwks_uri` answered something other than 200 (a redirect included) and no earlier
    /// set is held.
    #[error("key set answered HTTP {0}")]
    Status(u16),
    /// The body is not a usable key set and no earlier set is held.
    #[error("key set is malformed")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

struct State<T> {
    current: Option<Arc<T>>,
    fresh_until: Timestamp,
    last_forced: Option<Timestamp>,
    /// Bumped by every successful fetch: a waiter that sees it moved knows another task
    /// fetched while it waited.
    generation: u64,
    fetches: u64,
}

/// A cached key set of type `T` (latchkey-jwt's JWK Set, or anything `parse` makes).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use latchkey_oauth::{HttpClient, HttpError, HttpResponse, KeySetCache};
///
/// #[derive(Debug)]
/// struct Fixed;
/// #[async_trait::async_trait]
/// impl HttpClient for Fixed {
///     async fn get(&self, _: &str) -> Result<HttpResponse, HttpError> {
///         Ok(HttpResponse { status: 200, cache_control: Some("max-age=3600".into()), body: br#"{"keys":[]}"#.to_vec() })
///     }
///     async fn post_form(&self, _: &str, _: &[(&str, &str)], _: Option<(&str, &str)>) -> Result<HttpResponse, HttpError> {
///         unreachable!()
///     }
/// }
///
/// let cache = KeySetCache::new(Arc::new(Fixed), "https://id.example/keys", |body: &[u8]| {
///     Ok(serde_json::from_slice::<serde_json::Value>(body)?)
/// });
/// let keys = cache.current().await?;
/// assert_eq!(keys["keys"], serde_json::json!([]));
/// assert_eq!(cache.fetches(), 1);
/// cache.current().await?; // fresh for an hour: no second fetch
/// assert_eq!(cache.fetches(), 1);
/// # Ok::<(), latchkey_oauth::KeySetError>(())
/// # }).unwrap();
/// ```
pub struct KeySetCache<T> {
    http: Arc<dyn HttpClient>,
    jwks_uri: String,
    parse: Box<ParseKeySet<T>>,
    clock: Arc<dyn Clock>,
    state: Mutex<State<T>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl<T> fmt::Debug for KeySetCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySetCache")
            .field("jwks_uri", &self.jwks_uri)
            .field(
                "fetches",
                &self
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .fetches,
            )
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> KeySetCache<T> {
    /// A cache of the key set at `jwks_uri`, made by `parse`; nothing is fetched until used.
    pub fn new(
        http: Arc<dyn HttpClient>,
        jwks_uri: impl Into<String>,
        parse: impl Fn(&[u8]) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self {
            http,
            jwks_uri: jwks_uri.into(),
            parse: Box::new(parse),
            clock: Arc::new(SystemClock),
            state: Mutex::new(State {
                current: None,
                fresh_until: Timestamp::from_unix_millis(0),
                last_forced: None,
                generation: 0,
                fetches: 0,
            }),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many times the key set was requested (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }

    /// The key set: the cached one while fresh, else fetched again (one request however many
    /// callers wait). When the provider cannot be reached, or answers with something unusable,
    /// the last good set is kept and returned.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] only when no set was ever fetched.
    pub async fn current(&self) -> Result<Arc<T>, KeySetError> {
        let seen = {
            let st = self.lock();
            if let Some(current) = &st.current {
                if self.clock.now() < st.fresh_until {
                    return Ok(Arc::clone(current));
                }
            }
            st.generation
        };
        let _flight = self.refreshing.lock().await;
        {
            let st = self.lock();
            if st.generation != seen {
                if let Some(current) = &st.current {
                    return Ok(Arc::clone(current));
                }
            }
        }
        self.fetch_or_keep().await
    }

    /// For a token whose `kid` the current set does not hold: fetch the set again, unless an
    /// unknown key already caused a fetch in the last [`UNKNOWN_KEY_REFRESH_INTERVAL`] (then
    /// `None`: the key stays unknown). Concurrent callers share one fetch. A provider that
    /// rotated its keys is seen at once; a flood of made-up `kid`s costs at most one request
    /// a minute.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] only when no set was ever fetched.
    pub async fn refresh_for_unknown_key(&self) -> Result<Option<Arc<T>>, KeySetError> {
        let seen = self.lock().generation;
        let _flight = self.refreshing.lock().await;
        {
            let mut st = self.lock();
            if st.generation != seen {
                // Another caller fetched while this one waited: use its result.
                return Ok(st.current.clone());
            }
            let now = self.clock.now();
            if st
                .last_forced
                .is_some_and(|at| now.saturating_duration_since(at) < UNKNOWN_KEY_REFRESH_INTERVAL)
            {
                return Ok(None);
            }
            st.last_forced = Some(now);
        }
        self.fetch_or_keep().await.map(Some)
    }

    /// One request, with the refresh lock held.
    async fn fetch_or_keep(&self) -> Result<Arc<T>, KeySetError> {
        self.lock().fetches += 1;
        let result = match self.http.get(&self.jwks_uri).await {
            Err(err) => Err(KeySetError::Http(err)),
            Ok(response) if response.status != 200 => Err(KeySetError::Status(response.status)),
            Ok(response) => match (self.parse)(&response.body) {
                Ok(set) => Ok((set, max_age(response.cache_control.as_deref()))),
                Err(err) => Err(KeySetError::Malformed(err)),
            },
        };
        let mut st = self.lock();
        match result {
            Ok((set, age)) => {
                let set = Arc::new(set);
                st.current = Some(Arc::clone(&set));
                st.fresh_until = self.clock.now().saturating_add(age);
                st.generation += 1;
                Ok(set)
            }
            Err(err) => match st.current.clone() {
                Some(last) => {
                    // The last good set is kept; the provider is asked again after the
                    // shortest age, not on every request.
                    drop(err);
                    st.fresh_until = self.clock.now().saturating_add(MIN_KEY_SET_AGE);
                    st.generation += 1;
                    Ok(last)
                }
                None => Err(err),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key set's lifetime from `Cache-Control`: `max-age`, clamped to
/// [`MIN_KEY_SET_AGE`]..=[`MAX_KEY_SET_AGE`]; the minimum without one, or with `no-cache` /
/// `no-store` (a key set is still not fetched for every token).
fn max_age(cache_control: Option<&str>) -> Duration {
    let mut age = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-cache" || directive == "no-store" {
            return MIN_KEY_SET_AGE;
        }
        if let Some(secs) = directive.strip_prefix("max-age=") {
            age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age.unwrap_or(MIN_KEY_SET_AGE)
        .clamp(MIN_KEY_SET_AGE, MAX_KEY_SET_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpResponse;
    use latchkey_session::ManualClock;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct Provider {
        version: AtomicU64,
        down: AtomicBool,
        slow: AtomicBool,
    }

    #[async_trait::async_trait]
    impl HttpClient for Provider {
        async fn get(&self, _url: &str) -> Result<HttpResponse, HttpError> {
            if self.slow.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(HttpError::Timeout);
            }
            Ok(HttpResponse {
                status: 200,
                cache_control: Some("public, max-age=3600".into()),
                body: self.version.load(Ordering::SeqCst).to_string().into_bytes(),
            })
        }
        async fn post_form(
            &self,
            _: &str,
            _: &[(&str, &str)],
            _: Option<(&str, &str)>,
        ) -> Result<HttpResponse, HttpError> {
            Err(HttpError::Timeout)
        }
    }

    fn cache(provider: &Arc<Provider>, clock: &ManualClock) -> Arc<KeySetCache<u64>> {
        Arc::new(
            KeySetCache::new(
                Arc::clone(provider) as Arc<dyn HttpClient>,
                "https://id.example/keys",
                |body: &[u8]| Ok(std::str::from_utf8(body)?.parse::<u64>()?),
            )
            .with_clock(Arc::new(clock.clone())),
        )
    }

    fn clock() -> ManualClock {
        ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000))
    }

    #[test]
    fn cache_control_is_clamped() {
        assert_eq!(max_age(None), MIN_KEY_SET_AGE);
        assert_eq!(max_age(Some("max-age=60")), MIN_KEY_SET_AGE);
        assert_eq!(
            max_age(Some("public, max-age=3600")),
            Duration::from_secs(3600)
        );
        assert_eq!(max_age(Some("max-age=999999999")), MAX_KEY_SET_AGE);
        assert_eq!(max_age(Some("no-store, max-age=3600")), MIN_KEY_SET_AGE);
        assert_eq!(max_age(Some("max-age=junk")), MIN_KEY_SET_AGE);
    }

    #[tokio::test]
    async fn fresh_sets_are_reused_and_stale_ones_fetched_again() {
        let (provider, clock) = (Arc::new(Provider::default()), clock());
        let cache = cache(&provider, &clock);
        assert_eq!(*cache.current().await.unwrap(), 0);
        provider.version.store(1, Ordering::SeqCst);
        clock.advance(Duration::from_secs(3599));
        assert_eq!(*cache.current().await.unwrap(), 0, "still fresh");
        clock.advance(Duration::from_secs(1));
        assert_eq!(*cache.current().await.unwrap(), 1);
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn the_last_good_set_survives_an_outage() {
        let (provider, clock) = (Arc::new(Provider::default()), clock());
        let cache = cache(&provider, &clock);
        provider.down.store(true, Ordering::SeqCst);
        assert!(matches!(cache.current().await, Err(KeySetError::Http(_))));
        provider.down.store(false, Ordering::SeqCst);
        assert_eq!(*cache.current().await.unwrap(), 0);
        provider.down.store(true, Ordering::SeqCst);
        clock.advance(MAX_KEY_SET_AGE);
        assert_eq!(*cache.current().await.unwrap(), 0, "kept while unreachable");
        // ...and not asked again on every call meanwhile.
        let before = cache.fetches();
        assert_eq!(*cache.current().await.unwrap(), 0);
        assert_eq!(cache.fetches(), before);
        assert_eq!(
            cache.refresh_for_unknown_key().await.unwrap().as_deref(),
            Some(&0)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_hundred_unknown_kids_cost_at_most_one_fetch() {
        let (provider, clock) = (Arc::new(Provider::default()), clock());
        let cache = cache(&provider, &clock);
        cache.current().await.unwrap();
        provider.slow.store(true, Ordering::SeqCst);
        provider.version.store(7, Ordering::SeqCst);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.refresh_for_unknown_key().await })
            })
            .collect();
        for task in tasks {
            let answer = task.await.unwrap().unwrap();
            assert!(matches!(answer.as_deref(), None | Some(&7)));
        }
        assert_eq!(cache.fetches(), 2, "the first fetch and one refresh");
        // A minute later an unknown key may cause one more.
        clock.advance(UNKNOWN_KEY_REFRESH_INTERVAL);
        assert!(cache.refresh_for_unknown_key().await.unwrap().is_some());
        assert_eq!(cache.fetches(), 3);
    }

    #[tokio::test]
    async fn a_rotation_right_after_start_is_seen_at_once() {
        let (provider, clock) = (Arc::new(Provider::default()), clock());
        let cache = cache(&provider, &clock);
        assert_eq!(*cache.current().await.unwrap(), 0);
        provider.version.store(1, Ordering::SeqCst);
        // Only refreshes caused by unknown keys are rate-limited: the first one is immediate.
        assert_eq!(
            cache.refresh_for_unknown_key().await.unwrap().as_deref(),
            Some(&1)
        );
        assert_eq!(*cache.current().await.unwrap(), 1);
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn redirects_and_garbage_are_refused_without_a_set() {
        #[derive(Debug)]
        struct Redirect;
        #[async_trait::async_trait]
        impl HttpClient for Redirect {
            async fn get(&self, _: &str) -> Result<HttpResponse, HttpError> {
                Ok(HttpResponse {
                    status: 302,
                    cache_control: None,
                    body: Vec::new(),
                })
            }
            async fn post_form(
                &self,
                _: &str,
                _: &[(&str, &str)],
                _: Option<(&str, &str)>,
            ) -> Result<HttpResponse, HttpError> {
                Err(HttpError::Timeout)
            }
        }
        let cache: KeySetCache<u64> = KeySetCache::new(
            Arc::new(Redirect),
            "https://id.example/keys",
            |_: &[u8]| Ok(0),
        );
        assert!(matches!(
            cache.current().await,
            Err(KeySetError::Status(302))
        ));

        let (provider, clock) = (Arc::new(Provider::default()), clock());
        let garbage: KeySetCache<u64> = KeySetCache::new(
            provider as Arc<dyn HttpClient>,
            "https://id.example/keys",
            |_: &[u8]| Err("not a key set".into()),
        )
        .with_clock(Arc::new(clock));
        assert!(matches!(
            garbage.current().await,
            Err(KeySetError::Malformed(_))
        ));
    }
}
