//! The [`TokenStore`] trait every backend implements, its records, outcomes and error type.
//!
//! All times are seconds since the Unix epoch, passed in by the caller from the service's
//! [`Clock`](latchkey_jwt::Clock): a backend decides "expired" by the `now` it is given, never by
//! its own clock, so tests can inject time on every backend. A backend's own expiry (a Redis TTL,
//! a sweep) is garbage collection only and must never remove a record before the deadline it
//! was given.

use std::error::Error as StdError;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::refresh::{FamilyId, SubjectTag};

/// A boxed error from a backend, kept as the `source` of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed, grouped by what the caller does about it: all of them mean
/// "cannot decide now" (adapters answer 503) — never "the token is bad".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation. The source says why.
    #[error("token store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend did not answer in time.
    #[error("token store timed out")]
    Timeout,
    /// A stored record could not be decoded. The source says why.
    #[error("token store record is corrupt")]
    Corrupt(#[source] BoxError),
    /// [`TokenStore::create_family`] found a family under the same ID.
    #[error("a token family with this ID already exists")]
    Conflict,
}

/// A new family, as [`TokenStore::create_family`] stores it (generation 1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewFamily {
    /// The subject (`sub`) of every token of the family.
    pub subject: String,
    /// The caller's access-token claims, a JSON object, repeated in every access token.
    pub claims: String,
    /// Creation time (the login).
    pub created_at: u64,
    /// The family dies at this time unless a refresh renews it (then `now + idle`).
    pub idle_deadline: u64,
    /// The family dies at this time at the latest; nothing ever moves it.
    pub absolute_deadline: u64,
}

impl NewFamily {
    /// A family record with the given fields.
    #[must_use]
    pub fn new(
        subject: String,
        claims: String,
        created_at: u64,
        idle_deadline: u64,
        absolute_deadline: u64,
    ) -> Self {
        NewFamily {
            subject,
            claims,
            created_at,
            idle_deadline: idle_deadline.min(absolute_deadline),
            absolute_deadline,
        }
    }
}

/// What [`TokenStore::rotate`] is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotateRequest {
    /// The generation of the presented refresh token.
    pub presented: u64,
    /// The current time.
    pub now: u64,
    /// Idle lifetime in seconds: a rotation sets the idle deadline to
    /// `min(now + idle, absolute_deadline)`.
    pub idle: u64,
    /// Grace window in seconds (0: off): the previous generation is accepted while
    /// `now - rotated_at < grace`.
    pub grace: u64,
}

impl RotateRequest {
    /// A request with the given fields.
    #[must_use]
    pub fn new(presented: u64, now: u64, idle: u64, grace: u64) -> Self {
        RotateRequest {
            presented,
            now,
            idle,
            grace,
        }
    }
}

/// A live family after [`TokenStore::rotate`] or [`TokenStore::create_family`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FamilyView {
    /// The current generation (the one whose refresh token the caller hands out).
    pub generation: u64,
    /// The family's subject.
    pub subject: String,
    /// The caller's claims, as stored.
    pub claims: String,
    /// The subject's revocation epoch the family belongs to.
    pub epoch: u64,
    /// When the family dies unless refreshed: `min(idle_deadline, absolute_deadline)`.
    pub expires_at: u64,
}

impl FamilyView {
    /// A view with the given fields.
    #[must_use]
    pub fn new(
        generation: u64,
        subject: String,
        claims: String,
        epoch: u64,
        expires_at: u64,
    ) -> Self {
        FamilyView {
            generation,
            subject,
            claims,
            epoch,
            expires_at,
        }
    }
}

/// The result of [`TokenStore::rotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The presented generation was current: the family moved to `generation + 1`.
    Rotated(FamilyView),
    /// The presented generation was the previous one, within the grace window: nothing changed,
    /// and the view names the current generation — the same successor the winner got.
    Replayed(FamilyView),
    /// The presented generation was retired (older than the previous one, or the previous one
    /// outside the grace window): the family is now revoked.
    Reused {
        /// The family's subject.
        subject: String,
        /// The generation presented.
        presented: u64,
        /// The family's generation when the reuse was detected.
        current: u64,
        /// Seconds since the family last rotated (when the presented generation is the previous
        /// one, exactly how long ago it was retired; otherwise a lower bound).
        elapsed: u64,
    },
    /// The family outlived its idle or absolute deadline.
    Expired,
    /// The family was revoked (logout, reuse, or its subject's epoch moved on).
    Revoked,
    /// No such family, or a generation the family never reached.
    Unknown,
}

/// The state of a subject's revocation epoch after [`TokenStore::revoke_subject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Epoch {
    /// The epoch number: 0 before the first "log out everywhere", then +1 each time.
    pub seq: u64,
}

impl Epoch {
    /// The epoch numbered `seq`.
    #[must_use]
    pub fn new(seq: u64) -> Self {
        Epoch { seq }
    }
}

/// The revocation checks of one access-token verification, answered by
/// [`TokenStore::check_access`] in one round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessCheck<'a> {
    /// The current time.
    pub now: u64,
    /// The token's subject tag.
    pub subject: SubjectTag,
    /// Check that the subject's epoch is still this one (the token's `sep` claim).
    pub epoch: Option<u64>,
    /// Check that this family is live and not revoked (the token's `sid`).
    pub family: Option<&'a FamilyId>,
    /// Check that this `jti` is not on the subject's deny-list.
    pub jti: Option<&'a str>,
}

impl<'a> AccessCheck<'a> {
    /// A check with the given fields.
    #[must_use]
    pub fn new(
        now: u64,
        subject: SubjectTag,
        epoch: Option<u64>,
        family: Option<&'a FamilyId>,
        jti: Option<&'a str>,
    ) -> Self {
        AccessCheck {
            now,
            subject,
            epoch,
            family,
            jti,
        }
    }
}

/// The answer of [`TokenStore::check_access`]: the first failed check, in the order epoch,
/// family, `jti`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessStatus {
    /// Every requested check passed.
    Active,
    /// The subject's epoch moved on ("log out everywhere").
    SubjectRevoked,
    /// The family is revoked, expired or unknown.
    FamilyRevoked,
    /// The `jti` is on the deny-list.
    TokenRevoked,
}

/// Where token families, subject epochs and the `jti` deny-list live. Implemented by
/// [`MemoryTokenStore`](crate::MemoryTokenStore) and by the Redis backend; any backend must
/// pass the `latchkey-testkit` token conformance suite.
///
/// A family is live at `now` while `now < min(idle_deadline, absolute_deadline)` and it is not
/// revoked. A family belongs to the subject epoch that was current when it was created; once the
/// epoch of its [`SubjectTag`] moves on, it counts as revoked everywhere. Every method treats an
/// expired record like a missing one, and a backend must purge expired records by itself, but
/// never before their deadline; a revoked family is kept (as revoked) until its deadline, so
/// that its tokens are answered [`RotateOutcome::Revoked`] rather than `Unknown`.
///
/// The store holds no secret: no refresh token, no MAC, no key.
///
/// The trait is object safe and every future is `Send`: use it as `Arc<dyn TokenStore>`. There
/// are no default methods: each guarantee below is the backend's to keep.
#[async_trait]
pub trait TokenStore: Debug + Send + Sync + 'static {
    /// Stores a new family at generation 1, in the subject epoch current at that moment, and
    /// returns it. Also keeps the subject's epoch record alive at least until the family's
    /// absolute deadline. Never overwrites.
    ///
    /// The epoch read and the insert are one atomic step with respect to
    /// [`revoke_subject`](Self::revoke_subject): a family is either created before a
    /// "log out everywhere" (and revoked by it) or after it (and alive).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the family exists, or a backend failure.
    async fn create_family(
        &self,
        family: &FamilyId,
        record: &NewFamily,
    ) -> Result<FamilyView, StoreError>;

    /// Presents generation `request.presented` of `family`, as **one atomic step** with respect
    /// to every other method on the family and its subject epoch:
    ///
    /// In this order:
    /// - family missing: `Unknown`;
    /// - family revoked, or its epoch not the subject's current one: `Revoked`;
    /// - `now` at or past the family's deadline: `Expired`;
    /// - `presented` greater than the current generation N (a token the store never reached,
    ///   e.g. after a store lost writes): `Unknown`, nothing changes;
    /// - `presented == N`: the generation becomes N + 1, the last-rotation time becomes `now`,
    ///   the idle deadline `min(now + idle, absolute)`: `Rotated` with N + 1;
    /// - `presented == N − 1` and `now − last rotation < grace`: nothing changes, `Replayed`
    ///   with N (so every racer gets the same successor);
    /// - any other `presented` (older than N − 1, or N − 1 outside the window): the family is
    ///   revoked, `Reused`.
    ///
    /// # Errors
    /// A backend failure; the family may then have rotated or not, but never branched.
    async fn rotate(
        &self,
        family: &FamilyId,
        request: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError>;

    /// Revokes `family` (logout). Returns whether it was live. Revoking a missing, expired or
    /// revoked family is not an error.
    ///
    /// # Errors
    /// A backend failure.
    async fn revoke_family(&self, family: &FamilyId, now: u64) -> Result<bool, StoreError>;

    /// Moves the subject's epoch on ("log out everywhere"): every family of `subject` created
    /// before counts as revoked, and every access token carrying an older epoch fails the epoch
    /// check, as soon as this returns. Keeps the epoch record at least until `keep_until` (the
    /// latest absolute deadline any family of the subject can have).
    ///
    /// # Errors
    /// A backend failure.
    async fn revoke_subject(
        &self,
        subject: &SubjectTag,
        now: u64,
        keep_until: u64,
    ) -> Result<Epoch, StoreError>;

    /// Puts `jti` on the subject's deny-list until `until` (the token's `exp`); after that the
    /// entry may be purged. Idempotent.
    ///
    /// # Errors
    /// A backend failure.
    async fn deny_jti(
        &self,
        subject: &SubjectTag,
        jti: &str,
        now: u64,
        until: u64,
    ) -> Result<(), StoreError>;

    /// Answers the requested revocation checks of one access token, in one round trip.
    ///
    /// # Errors
    /// A backend failure.
    async fn check_access(&self, check: &AccessCheck<'_>) -> Result<AccessStatus, StoreError>;
}
