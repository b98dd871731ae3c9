//! The [`SessionStore`] trait every backend implements, and its error type.

use std::error::Error as StdError;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::{Delta, SessionInfo, SessionKey, SessionRecord, Timestamp};

/// A boxed error from a backend, kept as the `source` of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed, grouped by what the caller does about it.
///
/// Adapters map [`Unavailable`](Self::Unavailable), [`Timeout`](Self::Timeout) and
/// [`Full`](Self::Full) to `503 Service Unavailable` (or, if the app chose so, carry on
/// without a session); [`Corrupt`](Self::Corrupt) means "treat as no session";
/// [`Conflict`](Self::Conflict) is handled inside the manager (retry with a fresh ID).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation (connection refused, I/O error,
    /// pool exhausted). The source says why.
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend did not answer within the configured time.
    #[error("session store timed out")]
    Timeout,
    /// A stored record could not be decoded. The source says why.
    #[error("session record is corrupt")]
    Corrupt(#[source] BoxError),
    /// `create` found a record under the same key already.
    #[error("a session with this key already exists")]
    Conflict,
    /// The store reached its configured capacity.
    #[error("session store is full")]
    Full,
}

impl StoreError {
    /// Whether the error means the store cannot serve requests right now (unavailable,
    /// timed out or full) — the cases an adapter turns into `503`.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout | Self::Full)
    }
}

/// Where sessions live. Implemented by [`MemoryStore`](crate::MemoryStore) and by the Redis
/// backend; any backend must pass the `latchkey-testkit` conformance suite.
///
/// Records are addressed by [`SessionKey`] (a hash of the session ID), never by the ID.
/// A record *expires* at [`SessionRecord::expires_at`], the earlier of its idle and absolute
/// deadlines, measured by the store's own clock. Every method below treats an expired record
/// exactly like a missing one, whether or not it has been physically purged yet, and a backend
/// must purge expired records by itself (TTL, sweeper) so that storage does not grow with dead
/// sessions.
///
/// The trait is object safe and every future is `Send`: use it as `Arc<dyn SessionStore>`.
/// There are no default methods: each guarantee below is the backend's to keep.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Stores a new session under `key`.
    ///
    /// Must never overwrite: if a live record already exists under `key`, nothing is changed
    /// and the result is [`StoreError::Conflict`] (the manager then retries with a fresh ID).
    /// The check and the insert are one atomic step. If `record.user_id` is set, the session
    /// joins that user's index in the same step.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] as above, [`StoreError::Full`] when a capacity limit is
    /// reached, or a backend failure.
    async fn create(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError>;

    /// Returns the live record under `key`, or `None` if there is none or it has expired.
    ///
    /// Must never return an expired record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the stored bytes cannot be decoded, or a backend failure.
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError>;

    /// Applies `delta` to the live record under `key`, atomically with respect to every other
    /// method on the same key (see [`Delta`] for the order). Keys the delta does not mention are
    /// left as they are, so two requests changing different keys both survive. A change of user
    /// moves the session between per-user indexes in the same step. The absolute deadline never
    /// changes, and the record still expires at the earlier of its deadlines.
    ///
    /// Returns `false`, changing nothing, if there is no live record: a session that was
    /// deleted or revoked while a request was in flight is never brought back.
    ///
    /// # Errors
    ///
    /// A backend failure; nothing is changed on error.
    async fn save(&self, key: &SessionKey, delta: &Delta) -> Result<bool, StoreError>;

    /// Sets `last_seen` and `idle_deadline` of the live record under `key` without rewriting its
    /// data (rolling expiry). Returns `false`, changing nothing, if there is no live record.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn touch(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
        idle_deadline: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Retires the live record under `key` after its ID was rotated: it stays loadable until
    /// `until` (a short grace period for requests already in flight on the old ID), then
    /// expires. Both deadlines become at most `until` (never later than they were), later
    /// `touch`/`save` calls cannot move its expiry past `until`, and it is no longer returned by
    /// [`list_for_user`](Self::list_for_user) — but [`delete`](Self::delete) and
    /// [`delete_all_for_user`](Self::delete_all_for_user) still remove it at once.
    /// Returns `false` if there is no live record.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn retire(&self, key: &SessionKey, until: Timestamp) -> Result<bool, StoreError>;

    /// Deletes the record under `key` (and its index entry). Returns whether a live record was
    /// deleted; deleting a missing key is not an error.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError>;

    /// The live, non-retired sessions of `user_id`, oldest first (by `created_at`, then key).
    /// A session appears here as soon as the `create` or `save` that gave it this user returns,
    /// and disappears when it is deleted, expires, is retired or changes user.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError>;

    /// Deletes every session of `user_id` ("log out everywhere"), retired ones included, except
    /// the one under `keep` if given ("log out my other devices"). Returns how many live
    /// sessions were deleted, counting what [`list_for_user`](Self::list_for_user) lists:
    /// retired IDs are deleted but not counted (each is the old ID of a session that lives on
    /// under a new one). When it returns, no deleted session can be loaded any more.
    ///
    /// # Errors
    ///
    /// A backend failure; some sessions may have been deleted before it.
    async fn delete_all_for_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<u64, StoreError>;

    /// The number of live sessions. May be approximate while other operations run concurrently,
    /// exact when the store is quiescent.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn count(&self) -> Result<u64, StoreError>;
}
