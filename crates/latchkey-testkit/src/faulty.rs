//! [`FaultyStore`]: a wrapper around any [`SessionStore`] that counts calls and injects the
//! failures a manager or an adapter must survive (store down, ID collisions).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use latchkey_session::{
    async_trait, Admission, Delta, SessionCap, SessionInfo, SessionKey, SessionRecord,
    SessionStore, StoreError, Timestamp,
};

/// The source of every injected [`StoreError::Unavailable`]. It reads like a real backend's
/// error, internal address included, so tests can check that no response ever shows it.
pub const UNAVAILABLE_DETAIL: &str = "connection refused to 10.1.2.3:6379 (internal detail)";

/// Wraps a store: counts every call, fails every call while [down](Self::set_down), and can
/// answer [`StoreError::Conflict`] to the next creates.
///
/// ```
/// use latchkey_session::{MemoryStore, SessionStore};
/// use latchkey_testkit::FaultyStore;
///
/// # #[tokio::main] async fn main() {
/// let store = FaultyStore::new(MemoryStore::new());
/// store.set_down(true);
/// assert!(store.count().await.unwrap_err().is_unavailable());
/// store.set_down(false);
/// assert_eq!(store.count().await.unwrap(), 0);
/// assert_eq!(store.calls(), 2);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FaultyStore<S> {
    inner: S,
    down: AtomicBool,
    conflicts: AtomicUsize,
    calls: AtomicUsize,
    creates: AtomicUsize,
    saves: AtomicUsize,
    touches: AtomicUsize,
}

impl<S: SessionStore> FaultyStore<S> {
    /// Wraps `inner`, up and counting from zero.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            conflicts: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            creates: AtomicUsize::new(0),
            saves: AtomicUsize::new(0),
            touches: AtomicUsize::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// While `true`, every call fails with [`StoreError::Unavailable`] (source:
    /// [`UNAVAILABLE_DETAIL`]) and reaches nothing.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` calls to `create` answer [`StoreError::Conflict`] (as a key collision would);
    /// `usize::MAX` makes every create conflict.
    pub fn conflict_next_creates(&self, n: usize) {
        self.conflicts.store(n, Ordering::SeqCst);
    }

    /// Calls of any method so far, failed ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls of `create` so far (conflicts included; not counted while down).
    pub fn creates(&self) -> usize {
        self.creates.load(Ordering::SeqCst)
    }

    /// Calls of `save` so far (not counted while down).
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// Calls of `touch` so far (not counted while down).
    pub fn touches(&self) -> usize {
        self.touches.load(Ordering::SeqCst)
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(UNAVAILABLE_DETAIL.into()))
        } else {
            Ok(())
        }
    }

    fn injected_conflict(&self) -> Result<(), StoreError> {
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultyStore<S> {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        self.enter()?;
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.injected_conflict()?;
        self.inner.create(key, record, cap).await
    }
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        self.enter()?;
        self.inner.load(key).await
    }
    async fn save(&self, key: &SessionKey, delta: &Delta) -> Result<bool, StoreError> {
        self.enter()?;
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, delta).await
    }
    async fn touch(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
        idle_deadline: Timestamp,
    ) -> Result<bool, StoreError> {
        self.enter()?;
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(key, last_seen, idle_deadline).await
    }
    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        record: &SessionRecord,
        retire_until: Timestamp,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        self.enter()?;
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.injected_conflict()?;
        self.inner.cycle(old, new, record, retire_until, cap).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.enter()?;
        self.inner.delete(key).await
    }
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.enter()?;
        self.inner.list_for_user(user_id).await
    }
    async fn delete_all_for_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<u64, StoreError> {
        self.enter()?;
        self.inner.delete_all_for_user(user_id, keep).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.enter()?;
        self.inner.count().await
    }
}
