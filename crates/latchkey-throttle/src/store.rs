//! The [`ThrottleStore`] trait and its error.

use std::error::Error as StdError;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::{Decision, Rule, ThrottleKey, Timestamp};

/// A boxed error from a backend, kept as the `source` of a [`ThrottleError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why the throttle could not decide. The caller chooses what a login does then; failing
/// closed (`503`) is the safe answer, since an attacker who can make the store fail must not
/// thereby get unlimited guesses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The backend cannot be reached or refused the operation. The source says why.
    #[error("throttle store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend did not answer in time.
    #[error("throttle store timed out")]
    Timeout,
    /// The backend returned something it should not have. The source says why.
    #[error("throttle store returned a corrupt value")]
    Corrupt(#[source] BoxError),
    /// An in-memory store is at its capacity even after dropping forgotten budgets.
    #[error("throttle store is full")]
    Full,
}

/// Where budgets live. Implemented by [`MemoryThrottleStore`](crate::MemoryThrottleStore) and
/// by the Redis backend in `latchkey-redis`.
///
/// The trait is object safe and every future is `Send`: use it as `Arc<dyn ThrottleStore>`.
#[async_trait]
pub trait ThrottleStore: Debug + Send + Sync + 'static {
    /// Applies one attempt at `now` to the budget of `key` under `rule`, **atomically** with
    /// respect to every other call on the same key: `n` concurrent calls on a fresh budget
    /// with `rule.free_attempts = k` produce exactly `min(n, k)` decisions that start no
    /// back-off (plus the one that starts it). The arithmetic is [`Rule`]'s: a budget in
    /// back-off answers [`Decision::Blocked`] and is not changed; a budget quiet for
    /// `rule.forget_after` starts afresh. The store drops a budget once its back-off is over
    /// and it is forgotten (a TTL or a sweep), so storage does not grow with old attempts.
    ///
    /// # Errors
    ///
    /// A backend failure; nothing is counted then.
    async fn attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        rule: &Rule,
    ) -> Result<Decision, ThrottleError>;

    /// Forgets the budget of `key` (a successful login). Resetting a missing key is not an
    /// error.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn reset(&self, key: &ThrottleKey) -> Result<(), ThrottleError>;

    /// Gives back one counted attempt of `key`'s budget under `rule` ([`Rule::refund`]),
    /// atomically with respect to every other call on the same key: the attempt turned out to
    /// be a success, which a client budget does not count. Refunding a missing key is not an
    /// error and changes nothing.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn refund(&self, key: &ThrottleKey, rule: &Rule) -> Result<(), ThrottleError>;
}
