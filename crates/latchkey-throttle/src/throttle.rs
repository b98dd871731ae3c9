//! [`Throttle`]: the policy a login handler asks before it verifies a password.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    Clock, Decision, KeyKind, Rule, SystemClock, ThrottleError, ThrottleKey, ThrottleStore,
};

/// A configuration `build` refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `free_attempts` is zero: every attempt would be refused.
    #[error("free attempts must be at least 1")]
    NoFreeAttempts,
    /// `base_delay` is zero or above `max_delay`, or `forget_after` is zero.
    #[error("back-off delays must be positive and base_delay <= max_delay")]
    Delays,
}

/// The answer to [`Throttle::attempt`].
#[derive(Debug)]
#[must_use = "a throttled attempt must be refused, an allowed one reported on success"]
pub enum Attempt {
    /// Go ahead (verify the password). The attempt is already counted; call
    /// [`Place::succeeded`] if the login succeeds.
    Allowed(Place),
    /// Refuse without verifying anything: answer `429 Too Many Requests` with
    /// `Retry-After` ([`Attempt::retry_after_secs`]).
    Throttled {
        /// How long until the next attempt may go ahead.
        retry_after: Duration,
    },
}

impl Attempt {
    /// For a throttled attempt, the `Retry-After` value in whole seconds (rounded up, at
    /// least 1); `None` when allowed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use latchkey_throttle::Attempt;
    ///
    /// let refused = Attempt::Throttled { retry_after: Duration::from_millis(1500) };
    /// assert_eq!(refused.retry_after_secs(), Some(2));
    /// ```
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Allowed(_) => None,
            Self::Throttled { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(secs.max(1))
            }
        }
    }
}

/// An allowed attempt. Dropping it means the attempt failed (it stays counted).
pub struct Place {
    inner: Arc<Inner>,
    accounts: Vec<ThrottleKey>,
    clients: Vec<ThrottleKey>,
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Place")
            .field("accounts", &self.accounts.len())
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Place {
    /// The login succeeded: forget the budgets of the account keys of this attempt, and give
    /// the client keys back this attempt's place (a client budget counts failures only, so an
    /// office behind one address can log in all day). Client budgets are never reset, so
    /// logging in to one's own account between guesses does not wipe the guesses against
    /// others.
    ///
    /// # Errors
    ///
    /// A store failure (the budget then runs out on its own).
    pub async fn succeeded(self) -> Result<(), ThrottleError> {
        for key in &self.accounts {
            self.inner.store.reset(key).await?;
        }
        for key in &self.clients {
            self.inner.store.refund(key, &self.inner.client).await?;
        }
        Ok(())
    }
}

struct Inner {
    store: Arc<dyn ThrottleStore>,
    account: Rule,
    client: Rule,
    clock: Arc<dyn Clock>,
}

/// Per-account and per-client attempt budgets over a [`ThrottleStore`]. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use latchkey_throttle::{MemoryThrottleStore, Throttle};
///
/// let throttle = Throttle::builder(Arc::new(MemoryThrottleStore::new()))
///     .account_free_attempts(3)
///     .max_delay(Duration::from_secs(300))
///     .build()
///     .unwrap();
/// # drop(throttle);
/// ```
#[derive(Clone)]
pub struct Throttle {
    inner: Arc<Inner>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("store", &self.inner.store)
            .field("account", &self.inner.account)
            .field("client", &self.inner.client)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Throttle`]; see the crate docs for the defaults.
#[must_use]
pub struct ThrottleBuilder {
    store: Arc<dyn ThrottleStore>,
    account: Rule,
    client: Rule,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ThrottleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleBuilder")
            .field("account", &self.account)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ThrottleBuilder {
    /// Attempts per account before the back-off starts (default 5).
    pub fn account_free_attempts(mut self, n: u32) -> Self {
        self.account.free_attempts = n;
        self
    }

    /// Attempts per client before the back-off starts (default 20: many users may share one
    /// address).
    pub fn client_free_attempts(mut self, n: u32) -> Self {
        self.client.free_attempts = n;
        self
    }

    /// The first back-off (default 1 s), for both kinds.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.account.base_delay = delay;
        self.client.base_delay = delay;
        self
    }

    /// The back-off ceiling (default 15 min), for both kinds.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.account.max_delay = delay;
        self.client.max_delay = delay;
        self
    }

    /// How long a quiet budget is remembered (default 1 h), for both kinds.
    pub fn forget_after(mut self, window: Duration) -> Self {
        self.account.forget_after = window;
        self.client.forget_after = window;
        self
    }

    /// The clock (default [`SystemClock`]); tests inject a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for zero free attempts or impossible delays.
    pub fn build(self) -> Result<Throttle, ConfigError> {
        for rule in [&self.account, &self.client] {
            if rule.free_attempts == 0 {
                return Err(ConfigError::NoFreeAttempts);
            }
            if rule.base_delay.is_zero()
                || rule.base_delay > rule.max_delay
                || rule.forget_after.is_zero()
            {
                return Err(ConfigError::Delays);
            }
        }
        Ok(Throttle {
            inner: Arc::new(Inner {
                store: self.store,
                account: self.account,
                client: self.client,
                clock: self.clock,
            }),
        })
    }
}

impl Throttle {
    /// Starts a configuration over `store`.
    pub fn builder(store: Arc<dyn ThrottleStore>) -> ThrottleBuilder {
        let rule = |free| Rule {
            free_attempts: free,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        };
        ThrottleBuilder {
            store,
            account: rule(5),
            client: rule(20),
            clock: Arc::new(SystemClock),
        }
    }

    /// The rule for keys of `kind`.
    #[must_use]
    pub fn rule(&self, kind: KeyKind) -> &Rule {
        match kind {
            KeyKind::Client => &self.inner.client,
            _ => &self.inner.account,
        }
    }

    /// Asks for a place for one login attempt counted against every key in `keys`, in order
    /// (pass the client key first: a throttled client then spends no account budget). The
    /// first key in back-off ends the walk with [`Attempt::Throttled`], and the keys before it
    /// are refunded the place they counted: a refused attempt counts against no budget. Each
    /// key's count is taken atomically by the store, so concurrent attempts never get more
    /// places than the budget has.
    ///
    /// # Errors
    ///
    /// A store failure: refuse the login (fail closed).
    pub async fn attempt(&self, keys: &[ThrottleKey]) -> Result<Attempt, ThrottleError> {
        let now = self.inner.clock.now();
        for (at, key) in keys.iter().enumerate() {
            let rule = self.rule(key.kind());
            if let Decision::Blocked { until } = self.inner.store.attempt(key, now, rule).await? {
                // A refused attempt counts nowhere: give the keys before this one back the
                // place they just counted, so that a client retrying one throttled account
                // does not run down its own budget as well.
                for earlier in &keys[..at] {
                    self.inner
                        .store
                        .refund(earlier, self.rule(earlier.kind()))
                        .await?;
                }
                return Ok(Attempt::Throttled {
                    retry_after: until.saturating_duration_since(now),
                });
            }
        }
        Ok(Attempt::Allowed(Place {
            inner: Arc::clone(&self.inner),
            accounts: keys
                .iter()
                .filter(|k| k.kind() == KeyKind::Account)
                .cloned()
                .collect(),
            clients: keys
                .iter()
                .filter(|k| k.kind() == KeyKind::Client)
                .cloned()
                .collect(),
        }))
    }
}
