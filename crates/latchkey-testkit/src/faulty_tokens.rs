//! [`FaultyTokenStore`]: a wrapper around any [`TokenStore`] that counts calls and can be taken
//! down, for the "store unavailable" paths of the token service and its adapters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use latchkey_tokens::store::{
    AccessCheck, AccessStatus, Epoch, FamilyView, NewFamily, RotateOutcome, RotateRequest,
};
use latchkey_tokens::{FamilyId, StoreError, SubjectTag, TokenStore};

use crate::UNAVAILABLE_DETAIL;

/// Wraps a token store: counts every call and, while [down](Self::set_down), fails every call
/// with [`StoreError::Unavailable`] (source: [`UNAVAILABLE_DETAIL`], which reads like a real
/// backend's error so tests can check no response shows it) without reaching the inner store.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_testkit::FaultyTokenStore;
/// use latchkey_tokens::{FamilyId, MemoryTokenStore, StoreError, SubjectTag, TokenStore};
///
/// # #[tokio::main] async fn main() {
/// let store = FaultyTokenStore::new(Arc::new(MemoryTokenStore::new()));
/// let family = FamilyId::generate(&SubjectTag::of("alice"));
/// store.set_down(true);
/// assert!(matches!(store.revoke_family(&family, 0).await, Err(StoreError::Unavailable(_))));
/// store.set_down(false);
/// assert!(!store.revoke_family(&family, 0).await.unwrap());
/// assert_eq!(store.calls(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct FaultyTokenStore {
    inner: Arc<dyn TokenStore>,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl FaultyTokenStore {
    /// Wraps `inner`, up and counting from zero.
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        FaultyTokenStore {
            inner,
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn TokenStore> {
        &self.inner
    }

    /// While `true`, every call fails and reaches nothing.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls of any method so far, failed ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(UNAVAILABLE_DETAIL.into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TokenStore for FaultyTokenStore {
    async fn create_family(
        &self,
        family: &FamilyId,
        record: &NewFamily,
    ) -> Result<FamilyView, StoreError> {
        self.enter()?;
        self.inner.create_family(family, record).await
    }

    async fn rotate(
        &self,
        family: &FamilyId,
        request: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError> {
        self.enter()?;
        self.inner.rotate(family, request).await
    }

    async fn revoke_family(&self, family: &FamilyId, now: u64) -> Result<bool, StoreError> {
        self.enter()?;
        self.inner.revoke_family(family, now).await
    }

    async fn revoke_subject(
        &self,
        subject: &SubjectTag,
        now: u64,
        keep_until: u64,
    ) -> Result<Epoch, StoreError> {
        self.enter()?;
        self.inner.revoke_subject(subject, now, keep_until).await
    }

    async fn deny_jti(
        &self,
        subject: &SubjectTag,
        jti: &str,
        now: u64,
        until: u64,
    ) -> Result<(), StoreError> {
        self.enter()?;
        self.inner.deny_jti(subject, jti, now, until).await
    }

    async fn check_access(&self, check: &AccessCheck<'_>) -> Result<AccessStatus, StoreError> {
        self.enter()?;
        self.inner.check_access(check).await
    }
}
