//! [`MemoryThrottleStore`]: budgets in a concurrent map, for one process.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::{BudgetState, Decision, Rule, ThrottleError, ThrottleKey, ThrottleStore, Timestamp};

/// How many new budgets are stored between two sweeps of forgotten ones.
const SWEEP_EVERY: u64 = 4096;

/// An in-memory [`ThrottleStore`] for a single process: one entry per key in a sharded map,
/// each attempt applied under that entry's shard lock. Forgotten budgets are swept as new
/// ones arrive; with [`with_capacity_limit`](Self::with_capacity_limit) a store that is still
/// full after a sweep answers [`ThrottleError::Full`] (fail closed) instead of growing.
///
/// A fleet of instances needs a shared store (Redis) for the budgets to hold across it.
///
/// ```
/// use latchkey_throttle::MemoryThrottleStore;
/// let store = MemoryThrottleStore::new().with_capacity_limit(100_000);
/// # drop(store);
/// ```
pub struct MemoryThrottleStore {
    budgets: DashMap<String, (BudgetState, Timestamp)>,
    inserts: AtomicU64,
    max_entries: usize,
}

impl MemoryThrottleStore {
    /// A store holding at most 1,000,000 budgets.
    #[must_use]
    pub fn new() -> Self {
        Self {
            budgets: DashMap::new(),
            inserts: AtomicU64::new(0),
            max_entries: 1_000_000,
        }
    }

    /// At most `max` budgets (each about 150 bytes).
    #[must_use]
    pub fn with_capacity_limit(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// Budgets held, forgotten-but-unswept ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.budgets.len()
    }

    /// Whether no budget is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Drops every budget that is past its back-off and forgotten at `now`; returns how many.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let before = self.budgets.len();
        self.budgets.retain(|_, (_, expires)| now < *expires);
        before.saturating_sub(self.budgets.len())
    }
}

impl Default for MemoryThrottleStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryThrottleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryThrottleStore")
            .field("budgets", &self.budgets.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

#[async_trait]
impl ThrottleStore for MemoryThrottleStore {
    async fn attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        rule: &Rule,
    ) -> Result<Decision, ThrottleError> {
        if !self.budgets.contains_key(key.hex()) {
            if self.inserts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1
                || self.budgets.len() >= self.max_entries
            {
                self.sweep(now);
            }
            if self.budgets.len() >= self.max_entries {
                return Err(ThrottleError::Full);
            }
        }
        match self.budgets.entry(key.hex().to_owned()) {
            Entry::Occupied(mut slot) => {
                let (state, expires) = *slot.get();
                let live = (now < expires).then_some(state);
                let (next, decision) = rule.next(live, now);
                if let Some(next) = next {
                    slot.insert((next, rule.expires_at(&next)));
                }
                Ok(decision)
            }
            Entry::Vacant(slot) => {
                let (next, decision) = rule.next(None, now);
                if let Some(next) = next {
                    slot.insert((next, rule.expires_at(&next)));
                }
                Ok(decision)
            }
        }
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), ThrottleError> {
        self.budgets.remove(key.hex());
        Ok(())
    }

    async fn refund(&self, key: &ThrottleKey, rule: &Rule) -> Result<(), ThrottleError> {
        if let Some(mut slot) = self.budgets.get_mut(key.hex()) {
            let (state, _) = *slot;
            if let Some(state) = rule.refund(Some(state)) {
                *slot = (state, rule.expires_at(&state));
            }
        }
        Ok(())
    }
}
