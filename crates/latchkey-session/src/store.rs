//! The [`SessionStore`] trait every backend implements, and its error type.

use std::error::Error as StdError;
use std::fmt::Debug;

use async_trait::async_trait;

use std::num::NonZeroU32;

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

/// What a store does when a new session of a user would exceed its [`SessionCap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionCapPolicy {
    /// Delete the user's oldest sessions to make room (each one reported in
    /// [`Admission::Admitted::evicted`]). The default.
    #[default]
    RevokeOldest,
    /// Store nothing and answer [`Admission::CapReached`].
    Refuse,
}

/// At most `max` live sessions per user, enforced by the store *atomically* with the
/// [`create`](SessionStore::create) or [`cycle`](SessionStore::cycle) that adds a session to a
/// user, so that any number of concurrent logins leaves at most `max` live sessions.
///
/// "Oldest" means the earliest absolute deadline, then the smallest key: with a fixed absolute
/// lifetime that is the order of creation (cycling an ID keeps the absolute deadline, so a
/// session keeps its place).
///
/// ```
/// use std::num::NonZeroU32;
/// use latchkey_session::{SessionCap, SessionCapPolicy};
///
/// let one_device = SessionCap::new(NonZeroU32::MIN, SessionCapPolicy::RevokeOldest);
/// assert_eq!(one_device.max.get(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCap {
    /// The most live, non-retired sessions one user may have.
    pub max: NonZeroU32,
    /// What happens to the session that would be one too many.
    pub policy: SessionCapPolicy,
}

impl SessionCap {
    /// A cap of `max` sessions per user, enforced with `policy`.
    #[must_use]
    pub fn new(max: NonZeroU32, policy: SessionCapPolicy) -> Self {
        Self { max, policy }
    }
}

/// The result of [`SessionStore::create`] and [`SessionStore::cycle`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// The session is stored and live.
    Admitted {
        /// Sessions of the same user deleted, in the same atomic step, to stay within the cap
        /// (policy [`SessionCapPolicy::RevokeOldest`]), oldest first. Empty without a cap.
        evicted: Vec<SessionKey>,
    },
    /// Nothing was stored: the user already has `cap.max` live sessions and the policy is
    /// [`SessionCapPolicy::Refuse`].
    CapReached,
    /// `cycle` only: nothing was stored because the old session is not live any more (deleted,
    /// revoked, expired) or was retired already. The request that asked for the cycle has
    /// lost its session.
    SourceGone,
}

impl Admission {
    /// An admission that evicted nothing.
    #[must_use]
    pub fn admitted() -> Self {
        Self::Admitted {
            evicted: Vec::new(),
        }
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
/// A record's user is fixed when the record is stored: a login or logout never rewrites a
/// record, it stores a new one ([`cycle`](Self::cycle)) or deletes it. A *retired* record is
/// the old side of a cycle: it stays loadable for a short grace (for requests already in flight
/// on the old ID), is never listed, can never be cycled again, and is linked to its successor
/// so that deleting either one deletes both.
///
/// **Revocation wins every race.** Once [`delete`](Self::delete) or
/// [`delete_all_for_user`](Self::delete_all_for_user) returns, no call that was in flight —
/// a `save`, a `touch`, a `cycle` from the deleted record or from its retired predecessor —
/// can make any of the deleted sessions, or a successor of them, loadable again.
///
/// The trait is object safe and every future is `Send`: use it as `Arc<dyn SessionStore>`.
/// There are no default methods: each guarantee below is the backend's to keep.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Stores a new session under `key`.
    ///
    /// Must never overwrite: if a live record already exists under `key`, nothing is changed
    /// and the result is [`StoreError::Conflict`] (the manager then retries with a fresh ID).
    /// If `record.user_id` is set, the session joins that user's index, and `cap` (if any) is
    /// enforced for that user; the check, the insert, the index entry and any eviction are
    /// one atomic step with respect to every other `create`, `cycle` and delete of that user.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] as above, [`StoreError::Full`] when a capacity limit is
    /// reached, or a backend failure (nothing is stored then).
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError>;

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
    /// left as they are, so two requests changing different keys both survive. The absolute
    /// deadline never changes, a retired record never lives past its retirement, and the record
    /// still expires at the earlier of its deadlines.
    ///
    /// Returns `false`, changing nothing, if there is no live record: a session that was
    /// deleted or revoked while a request was in flight is never brought back.
    ///
    /// # Errors
    ///
    /// A backend failure; nothing is changed on error.
    async fn save(&self, key: &SessionKey, delta: &Delta) -> Result<bool, StoreError>;

    /// Sets `last_seen` and `idle_deadline` of the live record under `key` without rewriting its
    /// data (rolling expiry); a retired record never lives past its retirement. Returns
    /// `false`, changing nothing, if there is no live record.
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

    /// Moves a session to a new ID (`cycle_id`, login): stores `record` under `new` and retires
    /// the record under `old`, as **one atomic step that succeeds only while `old` is live and
    /// not retired** — otherwise nothing is stored and the result is
    /// [`Admission::SourceGone`]. `record.user_id` and `cap` are handled as by
    /// [`create`](Self::create), with `old` not counted against the cap (it is being replaced).
    ///
    /// The retired `old` stays loadable until `retire_until` (both its deadlines become at
    /// most `retire_until`, and nothing moves them later), is no longer listed, and is linked
    /// with `new`: deleting either deletes both, and deleting a user's sessions deletes both.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if a live record exists under `new`, [`StoreError::Full`], or a
    /// backend failure; in every case nothing is stored and `old` is unchanged — except that a
    /// backend failure may leave `old` retired (it then dies at `retire_until`).
    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        record: &SessionRecord,
        retire_until: Timestamp,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError>;

    /// Deletes the record under `key`, its index entry, and the records it is linked with by
    /// cycles (its retired predecessor, its successor). Returns whether the record under `key`
    /// was live; deleting a missing key is not an error.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError>;

    /// The live, non-retired sessions of `user_id`, oldest first (by `created_at`, then key).
    /// A session appears here as soon as the `create` or `cycle` that stored it returns, and
    /// disappears when it is deleted, expires or is retired.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError>;

    /// Deletes every session of `user_id` ("log out everywhere"), retired ones and successors
    /// of cycles in flight included, except the one under `keep` if given ("log out my other
    /// devices") and the records linked with it. Returns how many live sessions were deleted,
    /// counting what [`list_for_user`](Self::list_for_user) lists: retired IDs are deleted but
    /// not counted (each is the old ID of a session that lives on under a new one). When it
    /// returns, no deleted session can be loaded any more, and none can come back.
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

    /// One cheap round trip that proves the backend answers, for health checks. It never
    /// creates, changes or extends a session. The default loads the all-zero key, which no
    /// session ID hashes to (so it finds nothing); a backend with a cheaper probe may override
    /// it.
    ///
    /// # Errors
    ///
    /// A backend failure.
    async fn ping(&self) -> Result<(), StoreError> {
        self.load(&SessionKey::from_bytes([0; 32]))
            .await
            .map(|_| ())
    }
}
