//! [`MemoryTokenStore`]: the in-process [`TokenStore`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::refresh::{FamilyId, SubjectTag};
use crate::store::{
    AccessCheck, AccessStatus, Epoch, FamilyView, NewFamily, RotateOutcome, RotateRequest,
    StoreError, TokenStore,
};

/// Expired records are swept once every this many writes.
const SWEEP_EVERY: u64 = 1024;

#[derive(Clone, Debug)]
struct Family {
    subject: String,
    claims: String,
    generation: u64,
    rotated_at: u64,
    idle_deadline: u64,
    absolute_deadline: u64,
    epoch: u64,
    revoked: bool,
}

impl Family {
    fn expires_at(&self) -> u64 {
        self.idle_deadline.min(self.absolute_deadline)
    }

    fn view(&self, epoch: u64) -> FamilyView {
        FamilyView::new(
            self.generation,
            self.subject.clone(),
            self.claims.clone(),
            epoch,
            self.expires_at(),
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct EpochRecord {
    seq: u64,
    keep_until: u64,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<FamilyId, Family>,
    epochs: HashMap<SubjectTag, EpochRecord>,
    denied: HashMap<SubjectTag, HashMap<String, u64>>,
    writes: u64,
}

impl State {
    fn epoch(&self, tag: &SubjectTag, now: u64) -> u64 {
        self.epochs
            .get(tag)
            .filter(|e| now < e.keep_until)
            .map_or(0, |e| e.seq)
    }

    fn wrote(&mut self, now: u64) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.families.retain(|_, f| now < f.expires_at());
            self.epochs.retain(|_, e| now < e.keep_until);
            self.denied.retain(|_, jtis| {
                jtis.retain(|_, until| now < *until);
                !jtis.is_empty()
            });
        }
    }
}

/// A [`TokenStore`] in process memory: one mutex around all state, so every method is one
/// atomic step. Expired records are swept as writes go by. Nothing survives a restart, and
/// several processes do not share it — use the Redis backend for that.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_tokens::{MemoryTokenStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
/// # let _ = store;
/// ```
#[derive(Default)]
pub struct MemoryTokenStore {
    state: Mutex<State>,
}

impl MemoryTokenStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied step behind (each step
        // mutates after all checks), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every stored key and value, as text — what a dump or a backup of this store would
    /// reveal. For audits and the conformance suite's store-dump check.
    #[must_use]
    pub fn dump(&self) -> Vec<String> {
        let state = self.lock();
        let mut out = Vec::new();
        for (id, f) in &state.families {
            out.push(id.to_base64url());
            out.push(format!("{:?}", id.as_bytes()));
            out.extend([
                f.subject.clone(),
                f.claims.clone(),
                f.generation.to_string(),
                f.rotated_at.to_string(),
                f.idle_deadline.to_string(),
                f.absolute_deadline.to_string(),
                f.epoch.to_string(),
                f.revoked.to_string(),
            ]);
        }
        for (tag, e) in &state.epochs {
            out.extend([tag.to_hex(), e.seq.to_string(), e.keep_until.to_string()]);
        }
        for (tag, jtis) in &state.denied {
            out.push(tag.to_hex());
            for (jti, until) in jtis {
                out.extend([jti.clone(), until.to_string()]);
            }
        }
        out
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryTokenStore")
            .field("families", &state.families.len())
            .field("epochs", &state.epochs.len())
            .field("denied", &state.denied.len())
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn create_family(
        &self,
        family: &FamilyId,
        record: &NewFamily,
    ) -> Result<FamilyView, StoreError> {
        let now = record.created_at;
        let mut state = self.lock();
        if state
            .families
            .get(family)
            .is_some_and(|f| now < f.expires_at())
        {
            return Err(StoreError::Conflict);
        }
        let tag = family.subject_tag();
        let epoch = state.epoch(&tag, now);
        let keep = state.epochs.entry(tag).or_insert(EpochRecord {
            seq: epoch,
            keep_until: 0,
        });
        keep.seq = epoch;
        keep.keep_until = keep.keep_until.max(record.absolute_deadline);
        let f = Family {
            subject: record.subject.clone(),
            claims: record.claims.clone(),
            generation: 1,
            rotated_at: now,
            idle_deadline: record.idle_deadline.min(record.absolute_deadline),
            absolute_deadline: record.absolute_deadline,
            epoch,
            revoked: false,
        };
        let view = f.view(epoch);
        state.families.insert(*family, f);
        state.wrote(now);
        Ok(view)
    }

    async fn rotate(
        &self,
        family: &FamilyId,
        request: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError> {
        let now = request.now;
        let mut state = self.lock();
        let epoch = state.epoch(&family.subject_tag(), now);
        let Some(f) = state.families.get_mut(family) else {
            return Ok(RotateOutcome::Unknown);
        };
        if f.revoked || f.epoch != epoch {
            return Ok(RotateOutcome::Revoked);
        }
        if now >= f.expires_at() {
            return Ok(RotateOutcome::Expired);
        }
        if request.presented > f.generation {
            return Ok(RotateOutcome::Unknown);
        }
        let elapsed = now.saturating_sub(f.rotated_at);
        let outcome = if request.presented == f.generation {
            f.generation += 1;
            f.rotated_at = now;
            f.idle_deadline = now.saturating_add(request.idle).min(f.absolute_deadline);
            RotateOutcome::Rotated(f.view(epoch))
        } else if request.presented + 1 == f.generation && elapsed < request.grace {
            return Ok(RotateOutcome::Replayed(f.view(epoch)));
        } else {
            f.revoked = true;
            RotateOutcome::Reused {
                subject: f.subject.clone(),
                presented: request.presented,
                current: f.generation,
                elapsed,
            }
        };
        state.wrote(now);
        Ok(outcome)
    }

    async fn revoke_family(&self, family: &FamilyId, now: u64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let epoch = state.epoch(&family.subject_tag(), now);
        let Some(f) = state.families.get_mut(family) else {
            return Ok(false);
        };
        let was_live = now < f.expires_at() && !f.revoked && f.epoch == epoch;
        f.revoked = true;
        Ok(was_live)
    }

    async fn revoke_subject(
        &self,
        subject: &SubjectTag,
        now: u64,
        keep_until: u64,
    ) -> Result<Epoch, StoreError> {
        let mut state = self.lock();
        let seq = state.epoch(subject, now) + 1;
        let e = state
            .epochs
            .entry(*subject)
            .or_insert(EpochRecord { seq, keep_until });
        e.seq = seq;
        e.keep_until = e.keep_until.max(keep_until);
        state.wrote(now);
        Ok(Epoch { seq })
    }

    async fn deny_jti(
        &self,
        subject: &SubjectTag,
        jti: &str,
        now: u64,
        until: u64,
    ) -> Result<(), StoreError> {
        if now >= until {
            return Ok(());
        }
        let mut state = self.lock();
        let entry = state
            .denied
            .entry(*subject)
            .or_default()
            .entry(jti.to_owned())
            .or_insert(0);
        *entry = (*entry).max(until);
        state.wrote(now);
        Ok(())
    }

    async fn check_access(&self, check: &AccessCheck<'_>) -> Result<AccessStatus, StoreError> {
        let state = self.lock();
        let epoch = state.epoch(&check.subject, check.now);
        if check.epoch.is_some_and(|e| e != epoch) {
            return Ok(AccessStatus::SubjectRevoked);
        }
        if let Some(family) = check.family {
            let live = state
                .families
                .get(family)
                .is_some_and(|f| !f.revoked && check.now < f.expires_at() && f.epoch == epoch);
            if !live {
                return Ok(AccessStatus::FamilyRevoked);
            }
        }
        if let Some(jti) = check.jti {
            if state
                .denied
                .get(&check.subject)
                .and_then(|jtis| jtis.get(jti))
                .is_some_and(|until| check.now < *until)
            {
                return Ok(AccessStatus::TokenRevoked);
            }
        }
        Ok(AccessStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_records_are_swept() {
        let store = MemoryTokenStore::new();
        let tag = SubjectTag::of("alice");
        let t0 = 1_000;
        // One write short of a sweep: 1022 logins and a denied jti.
        for _ in 0..SWEEP_EVERY - 2 {
            let record = NewFamily::new("alice".into(), "{}".into(), t0, t0 + 10, t0 + 20);
            store
                .create_family(&FamilyId::generate(&tag), &record)
                .await
                .unwrap();
        }
        store.deny_jti(&tag, "j", t0, t0 + 5).await.unwrap();
        assert_eq!(store.lock().families.len(), 1022);
        // The next write, after every deadline, sweeps them all.
        let later = t0 + 100;
        let record = NewFamily::new("bob".into(), "{}".into(), later, later + 10, later + 20);
        let live = FamilyId::generate(&SubjectTag::of("bob"));
        store.create_family(&live, &record).await.unwrap();
        let state = store.lock();
        assert_eq!(state.families.len(), 1, "only the live family is left");
        assert!(state.families.contains_key(&live));
        assert!(state.denied.is_empty());
    }
}
