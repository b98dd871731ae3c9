//! [`MemoryStore`]: a concurrent in-process [`SessionStore`].

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;

use crate::{
    Admission, Clock, Delta, SessionCap, SessionCapPolicy, SessionData, SessionInfo, SessionKey,
    SessionMetadata, SessionRecord, SessionStore, StoreError, SystemClock, Timestamp,
};

/// The longest chain of cycle links a delete follows (each link is an ID rotated within the
/// grace period of the one before it, so real chains are one or two long).
const MAX_LINKS: usize = 16;

/// Hasher for [`SessionKey`]s: the key is already a uniformly distributed SHA-256 output and
/// `SessionKey`'s `Hash` feeds its first 8 bytes through `write_u64`, so that value is the hash.
/// Stored keys all come from server-generated random IDs, so a client cannot skew the table.
#[derive(Clone, Copy, Debug, Default)]
struct KeyHashBuilder;

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }
}

#[derive(Debug)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for SessionKey; a plain FNV-1a fold keeps the type total.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One stored session, laid out compactly. The data is a copy-on-write [`SessionData`], so a
/// load clones it under the shard lock by bumping a reference count only, and a save mutates it
/// in place unless a loader still holds the previous version.
struct Entry {
    data: SessionData,
    created_at: Timestamp,
    last_seen: Timestamp,
    idle_deadline: Timestamp,
    absolute_deadline: Timestamp,
    user_id: Option<Arc<str>>,
    metadata: Option<Box<SessionMetadata>>,
    retired: bool,
    /// Cycle links (the retired predecessor, the successor), boxed: most sessions have none.
    links: Option<Box<Links>>,
}

/// The records a cycle linked an entry with: deleting one deletes the others.
#[derive(Debug, Default)]
struct Links {
    prev: Option<SessionKey>,
    next: Option<SessionKey>,
}

impl Entry {
    fn from_record(record: &SessionRecord) -> Self {
        Self {
            data: record.data.clone(),
            created_at: record.created_at,
            last_seen: record.last_seen,
            idle_deadline: record.idle_deadline,
            absolute_deadline: record.absolute_deadline,
            user_id: record.user_id.as_deref().map(Arc::from),
            metadata: (!record.metadata.is_empty()).then(|| Box::new(record.metadata.clone())),
            retired: false,
            links: None,
        }
    }

    fn linked(&self) -> [Option<SessionKey>; 2] {
        self.links
            .as_deref()
            .map_or([None, None], |l| [l.prev, l.next])
    }

    fn is_linked_to(&self, key: &SessionKey) -> bool {
        self.linked().contains(&Some(*key))
    }

    fn expires_at(&self) -> Timestamp {
        self.idle_deadline.min(self.absolute_deadline)
    }

    fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at()
    }

    fn info(&self, key: SessionKey) -> SessionInfo {
        let mut record =
            SessionRecord::new(self.created_at, self.idle_deadline, self.absolute_deadline);
        record.last_seen = self.last_seen;
        if let Some(metadata) = &self.metadata {
            record.metadata = (**metadata).clone();
        }
        record.info(key)
    }

    fn apply_data(&mut self, delta: &Delta) {
        self.data.apply(delta);
    }
}

/// The parts of an entry copied out under the lock; turned into a record after releasing it.
struct Snapshot {
    data: SessionData,
    created_at: Timestamp,
    last_seen: Timestamp,
    idle_deadline: Timestamp,
    absolute_deadline: Timestamp,
    user_id: Option<Arc<str>>,
    metadata: Option<SessionMetadata>,
}

impl Snapshot {
    fn into_record(self) -> SessionRecord {
        let mut record =
            SessionRecord::new(self.created_at, self.idle_deadline, self.absolute_deadline);
        record.last_seen = self.last_seen;
        record.data = self.data;
        record.user_id = self.user_id.map(|u| String::from(&*u));
        if let Some(metadata) = self.metadata {
            record.metadata = metadata;
        }
        record
    }
}

type UserIndex = DashMap<Arc<str>, HashSet<SessionKey, KeyHashBuilder>>;

struct Inner {
    sessions: DashMap<SessionKey, Entry, KeyHashBuilder>,
    /// user → keys of that user's sessions (retired ones included, so "log out everywhere"
    /// reaches them). Lock order: a `sessions` shard, then a `users` shard, never the reverse,
    /// and every index change happens while the session's shard lock is held, so the index
    /// always matches the sessions map.
    users: UserIndex,
    /// Entries physically present in `sessions` (expired but unpurged included). Kept only when
    /// there is a cap: a counter every create and delete touches is a cache line both cores
    /// fight over, so an uncapped store does without it.
    len: AtomicUsize,
    max_sessions: Option<usize>,
    /// Serializes every change of a session's lifecycle that involves a user or a link —
    /// `create` of a user's session, `cycle`, `delete`, `delete_all_for_user` — so that a cap
    /// check and its insert, or a cycle's liveness check and its insert, are one step that no
    /// revocation can fall between. Loads, saves, touches and anonymous creates (the hot
    /// paths) never take it. Never held across an `.await`.
    lifecycle: Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl Inner {
    fn index(&self, user: &Arc<str>, key: SessionKey) {
        self.users.entry(Arc::clone(user)).or_default().insert(key);
    }

    fn unindex(users: &UserIndex, user: &Arc<str>, key: &SessionKey) {
        if let MapEntry::Occupied(mut slot) = users.entry(Arc::clone(user)) {
            slot.get_mut().remove(key);
            if slot.get().is_empty() {
                slot.remove();
            }
        }
    }

    /// Removes the entry under `key` if `pred` holds, keeping the index consistent.
    /// Returns the removed entry's expiry.
    fn remove_if(&self, key: &SessionKey, pred: impl FnOnce(&Entry) -> bool) -> Option<Timestamp> {
        match self.sessions.entry(*key) {
            MapEntry::Occupied(slot) if pred(slot.get()) => {
                if let Some(user) = &slot.get().user_id {
                    Self::unindex(&self.users, user, key);
                }
                let (_, entry) = slot.remove_entry();
                self.uncount(1);
                Some(entry.expires_at())
            }
            _ => None,
        }
    }

    /// A snapshot of the keys indexed under `user_id` (the index shard is not held afterwards).
    fn user_keys(&self, user_id: &str) -> Vec<SessionKey> {
        self.users
            .get(user_id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Removes the entry under `key` and, transitively, every entry linked with it by cycles,
    /// except `spare`; with `within` set, links are followed only to entries of that user or
    /// of no user (a user's "log out everywhere" never reaches another user's login). Returns
    /// whether the entry under `key` was live, and how many removed entries were live,
    /// non-retired sessions of `within`. Call with the lifecycle lock held.
    fn remove_linked(
        &self,
        key: &SessionKey,
        now: Timestamp,
        spare: Option<&SessionKey>,
        within: Option<&str>,
    ) -> (bool, u64) {
        let mut todo = vec![*key];
        let mut first_live = None;
        let mut listed = 0;
        let mut steps = 0;
        while let Some(k) = todo.pop() {
            steps += 1;
            if steps > MAX_LINKS || Some(&k) == spare {
                continue;
            }
            let first = first_live.is_none();
            let mut linked = [None, None];
            let mut counts = false;
            let removed = self.remove_if(&k, |e| {
                let user = e.user_id.as_deref();
                if !first && within.is_some() && user.is_some() && user != within {
                    return false;
                }
                linked = e.linked();
                counts = within.is_some() && user == within && !e.retired && !e.is_expired(now);
                true
            });
            if first {
                first_live = Some(removed.is_some_and(|expires_at| now < expires_at));
            }
            if removed.is_some() {
                listed += u64::from(counts);
                todo.extend(linked.into_iter().flatten());
            }
        }
        (first_live.unwrap_or(false), listed)
    }

    /// The live, non-retired sessions of `user_id` other than `except`, oldest first by
    /// (absolute deadline, key): the order a cap evicts in.
    fn cap_candidates(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
        now: Timestamp,
    ) -> Vec<(Timestamp, SessionKey)> {
        let mut live: Vec<(Timestamp, SessionKey)> = self
            .user_keys(user_id)
            .into_iter()
            .filter(|k| Some(k) != except)
            .filter_map(|k| {
                let e = self.sessions.get(&k)?;
                (e.user_id.as_deref() == Some(user_id) && !e.retired && !e.is_expired(now))
                    .then_some((e.absolute_deadline, k))
            })
            .collect();
        live.sort_unstable();
        live
    }

    /// The cap decision for one more session of `user_id`: `Err(CapReached)` to refuse, or
    /// the keys to evict after the new session is stored.
    fn admit(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
        cap: Option<SessionCap>,
        now: Timestamp,
    ) -> Result<Vec<SessionKey>, Admission> {
        let Some(cap) = cap else {
            return Ok(Vec::new());
        };
        let max = usize::try_from(cap.max.get()).unwrap_or(usize::MAX);
        let live = self.cap_candidates(user_id, except, now);
        if live.len() < max {
            return Ok(Vec::new());
        }
        match cap.policy {
            SessionCapPolicy::Refuse => Err(Admission::CapReached),
            SessionCapPolicy::RevokeOldest => {
                Ok(live[..=live.len() - max].iter().map(|(_, k)| *k).collect())
            }
        }
    }

    /// Inserts `entry` under `key` unless a live record is there. Keeps the index and the
    /// slot count right.
    fn insert_new(&self, key: &SessionKey, entry: Entry) -> Result<(), StoreError> {
        self.reserve_slot()?;
        match self.sessions.entry(*key) {
            MapEntry::Occupied(mut slot) => {
                // The slot reserved above is not needed either way.
                self.uncount(1);
                // The clock is read only here: a fresh key (every create but a collision)
                // needs no expiry check, and a clock read is a noticeable part of a create.
                if !slot.get().is_expired(self.clock.now()) {
                    return Err(StoreError::Conflict);
                }
                if let Some(user) = &slot.get().user_id {
                    Self::unindex(&self.users, user, key);
                }
                if let Some(user) = &entry.user_id {
                    self.index(user, *key);
                }
                slot.insert(entry);
            }
            MapEntry::Vacant(slot) => {
                if let Some(user) = &entry.user_id {
                    self.index(user, *key);
                }
                slot.insert(entry);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn purge_if_expired(&self, key: &SessionKey, now: Timestamp) {
        self.remove_if(key, |e| e.is_expired(now));
    }

    fn sweep(&self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        self.sessions.retain(|key, entry| {
            if entry.is_expired(now) {
                if let Some(user) = &entry.user_id {
                    Self::unindex(&self.users, user, key);
                }
                removed += 1;
                false
            } else {
                true
            }
        });
        self.uncount(removed);
        removed
    }

    fn uncount(&self, n: usize) {
        if self.max_sessions.is_some() {
            self.len.fetch_sub(n, Ordering::Relaxed);
        }
    }

    fn reserve_slot(&self) -> Result<(), StoreError> {
        let Some(max) = self.max_sessions else {
            return Ok(());
        };
        let before = self.len.fetch_add(1, Ordering::Relaxed);
        if before >= max {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Full);
        }
        Ok(())
    }
}

/// An in-memory [`SessionStore`] for a single process.
///
/// - **Concurrent**: records live in a sharded [`DashMap`] keyed by [`SessionKey`]; each
///   operation locks one shard, so tasks on different cores rarely wait for each other.
/// - **Expiry**: an expired record is never returned and is removed when read; a background
///   task (started if a tokio runtime is running when the store is built) purges the rest every
///   [`sweep_interval`](MemoryStoreBuilder::sweep_interval), so memory does not grow with dead
///   sessions. The task holds only a weak reference and ends once the last clone of the store
///   is dropped. [`MemoryStore::purge_expired`] runs a sweep by hand.
/// - **Per-user index** updated under the same lock as the record, so it is always consistent.
/// - **Capacity**: with [`max_sessions`](MemoryStoreBuilder::max_sessions), `create` fails
///   with [`StoreError::Full`] when that many records are held (expired records still count
///   until they are purged).
///
/// Data does not survive a restart and is not shared between processes: use the Redis backend
/// for that. Clones share the same data.
///
/// ```
/// use latchkey_session::{MemoryStore, SessionId, SessionRecord, SessionStore, Timestamp};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), latchkey_session::StoreError> {
/// let store = MemoryStore::new();
/// let key = SessionId::generate().key();
/// let now = Timestamp::from_system_time(std::time::SystemTime::now());
/// let far = now.saturating_add(std::time::Duration::from_secs(60));
/// store.create(&key, &SessionRecord::new(now, far, far), None).await?;
/// assert!(store.load(&key).await?.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.inner.sessions.len())
            .field("max_sessions", &self.inner.max_sessions)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Configuration for a [`MemoryStore`]; see [`MemoryStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub struct MemoryStoreBuilder {
    max_sessions: Option<usize>,
    sweep_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl MemoryStoreBuilder {
    /// Refuse to create more than `max` sessions ([`StoreError::Full`]). Unlimited by default.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    /// How often the background task purges expired records (default 30 s). A zero interval
    /// disables the background task.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The clock expiry is measured with (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the store, starting the sweeper if a tokio runtime is running.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        let inner = Arc::new(Inner {
            sessions: DashMap::with_hasher(KeyHashBuilder),
            users: DashMap::new(),
            len: AtomicUsize::new(0),
            max_sessions: self.max_sessions,
            lifecycle: Mutex::new(()),
            clock: self.clock,
        });
        if !self.sweep_interval.is_zero() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(sweeper(Arc::downgrade(&inner), self.sweep_interval));
            } else {
                tracing::debug!(
                    "no tokio runtime: MemoryStore purges expired sessions on read only"
                );
            }
        }
        MemoryStore { inner }
    }
}

async fn sweeper(store: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(inner) = store.upgrade() else { break };
        // A sweep walks every shard: keep it off the async worker threads.
        let removed = tokio::task::spawn_blocking(move || inner.sweep()).await;
        match removed {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired sessions"),
            Ok(_) => {}
            Err(_) => break, // runtime shutting down
        }
    }
}

impl MemoryStore {
    /// A store with default settings (no cap, sweep every 30 s, system clock).
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configure a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_sessions: None,
            sweep_interval: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }

    /// Purges every expired record now; returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        self.inner.sweep()
    }

    /// Records physically held, expired-but-unpurged ones included.
    #[must_use]
    pub fn len_including_expired(&self) -> usize {
        self.inner.sessions.len()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        let inner = &*self.inner;
        let entry = Entry::from_record(record);
        let Some(user) = record.user_id.as_deref() else {
            // No user, no cap, no links: the hot path takes no lifecycle lock.
            inner.insert_new(key, entry)?;
            return Ok(Admission::admitted());
        };
        let _lifecycle = inner.lock();
        let now = inner.clock.now();
        let evict = match inner.admit(user, None, cap, now) {
            Ok(evict) => evict,
            Err(refused) => return Ok(refused),
        };
        inner.insert_new(key, entry)?;
        for victim in &evict {
            inner.remove_linked(victim, now, Some(key), None);
        }
        Ok(Admission::Admitted { evicted: evict })
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let snapshot = match inner.sessions.get(key) {
            None => return Ok(None),
            Some(entry) if entry.is_expired(now) => None,
            Some(entry) => Some(Snapshot {
                data: entry.data.clone(),
                created_at: entry.created_at,
                last_seen: entry.last_seen,
                idle_deadline: entry.idle_deadline,
                absolute_deadline: entry.absolute_deadline,
                user_id: entry.user_id.clone(),
                metadata: entry.metadata.as_deref().cloned(),
            }),
        };
        match snapshot {
            Some(snapshot) => Ok(Some(snapshot.into_record())),
            None => {
                inner.purge_if_expired(key, now);
                Ok(None)
            }
        }
    }

    async fn save(&self, key: &SessionKey, delta: &Delta) -> Result<bool, StoreError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        {
            let Some(mut entry) = inner.sessions.get_mut(key) else {
                return Ok(false);
            };
            if !entry.is_expired(now) {
                entry.apply_data(delta);
                entry.last_seen = delta.last_seen;
                entry.idle_deadline = delta.idle_deadline;
                return Ok(true);
            }
        }
        inner.purge_if_expired(key, now);
        Ok(false)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
        idle_deadline: Timestamp,
    ) -> Result<bool, StoreError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        {
            let Some(mut entry) = inner.sessions.get_mut(key) else {
                return Ok(false);
            };
            if !entry.is_expired(now) {
                entry.last_seen = last_seen;
                entry.idle_deadline = idle_deadline;
                return Ok(true);
            }
        }
        inner.purge_if_expired(key, now);
        Ok(false)
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        record: &SessionRecord,
        retire_until: Timestamp,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        let inner = &*self.inner;
        let _lifecycle = inner.lock();
        let now = inner.clock.now();
        let source_live = inner
            .sessions
            .get(old)
            .is_some_and(|e| !e.retired && !e.is_expired(now));
        if !source_live || old == new {
            return Ok(Admission::SourceGone);
        }
        let evict = match record.user_id.as_deref() {
            Some(user) => match inner.admit(user, Some(old), cap, now) {
                Ok(evict) => evict,
                Err(refused) => return Ok(refused),
            },
            None => Vec::new(),
        };
        let mut entry = Entry::from_record(record);
        entry.links = Some(Box::new(Links {
            prev: Some(*old),
            next: None,
        }));
        inner.insert_new(new, entry)?;
        // Still live: every path that removes or retires a record takes the lifecycle lock,
        // and an expiry in between only shortens the grace.
        if let Some(mut e) = inner.sessions.get_mut(old) {
            e.idle_deadline = e.idle_deadline.min(retire_until);
            e.absolute_deadline = e.absolute_deadline.min(retire_until);
            e.retired = true;
            e.links.get_or_insert_with(Box::default).next = Some(*new);
        }
        for victim in &evict {
            inner.remove_linked(victim, now, Some(new), None);
        }
        Ok(Admission::Admitted { evicted: evict })
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let inner = &*self.inner;
        let _lifecycle = inner.lock();
        Ok(inner.remove_linked(key, inner.clock.now(), None, None).0)
    }

    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let keys = inner.user_keys(user_id);
        let mut out = Vec::with_capacity(keys.len());
        let mut expired = Vec::new();
        for key in keys {
            if let Some(entry) = inner.sessions.get(&key) {
                if entry.user_id.as_deref() != Some(user_id) {
                    continue;
                }
                if entry.is_expired(now) {
                    expired.push(key);
                } else if !entry.retired {
                    out.push(entry.info(key));
                }
            }
        }
        for key in expired {
            inner.purge_if_expired(&key, now);
        }
        out.sort_by_key(|a| (a.created_at, a.key));
        Ok(out)
    }

    async fn delete_all_for_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<u64, StoreError> {
        let inner = &*self.inner;
        let _lifecycle = inner.lock();
        let now = inner.clock.now();
        let keys = inner.user_keys(user_id);
        let mut deleted = 0;
        for key in keys.iter().filter(|k| Some(*k) != keep) {
            let Some(spared) = inner.sessions.get(key).and_then(|e| {
                // The retired predecessor of the kept session is the kept device itself.
                (e.user_id.as_deref() == Some(user_id))
                    .then(|| keep.is_some_and(|k| e.is_linked_to(k)))
            }) else {
                continue;
            };
            if !spared {
                deleted += inner.remove_linked(key, now, keep, Some(user_id)).1;
            }
        }
        Ok(deleted)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let now = self.inner.clock.now();
        let live = self
            .inner
            .sessions
            .iter()
            .filter(|e| !e.is_expired(now))
            .count();
        Ok(u64::try_from(live).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, SessionId};

    fn record(now: Timestamp, secs: u64) -> SessionRecord {
        let end = now.saturating_add(Duration::from_secs(secs));
        SessionRecord::new(now, end, end)
    }

    #[tokio::test]
    async fn sweeper_purges_and_keeps_index_consistent() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .sweep_interval(Duration::ZERO)
            .build();
        let now = clock.now();
        for i in 0..10u64 {
            let mut r = record(now, 10 + i);
            r.user_id = Some("alice".into());
            store
                .create(&SessionId::generate().key(), &r, None)
                .await
                .unwrap();
        }
        assert_eq!(store.len_including_expired(), 10);
        clock.advance(Duration::from_secs(15));
        assert_eq!(store.purge_expired(), 6);
        assert_eq!(store.len_including_expired(), 4);
        assert_eq!(store.list_for_user("alice").await.unwrap().len(), 4);
        clock.advance(Duration::from_secs(100));
        assert_eq!(store.purge_expired(), 4);
        assert!(
            store.inner.users.is_empty(),
            "index entry for alice must be gone"
        );
    }

    #[tokio::test]
    async fn background_sweeper_runs_and_stops_with_the_store() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .sweep_interval(Duration::from_millis(20))
            .build();
        store
            .create(&SessionId::generate().key(), &record(clock.now(), 1), None)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(2));
        let weak = Arc::downgrade(&store.inner);
        for _ in 0..100 {
            if store.len_including_expired() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.len_including_expired(), 0);
        drop(store);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            weak.upgrade().is_none(),
            "the sweeper must not keep the store alive"
        );
    }

    #[tokio::test]
    async fn cap_counts_and_frees_slots() {
        let store = MemoryStore::builder().max_sessions(2).build();
        let now = SystemClock.now();
        let a = SessionId::generate().key();
        store.create(&a, &record(now, 60), None).await.unwrap();
        store
            .create(&SessionId::generate().key(), &record(now, 60), None)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create(&SessionId::generate().key(), &record(now, 60), None)
                .await,
            Err(StoreError::Full)
        ));
        // A conflicting create does not leak a slot.
        assert!(store.delete(&a).await.unwrap());
        store.create(&a, &record(now, 60), None).await.unwrap();
        assert!(matches!(
            store.create(&a, &record(now, 60), None).await,
            Err(StoreError::Full | StoreError::Conflict)
        ));
        assert_eq!(store.len_including_expired(), 2);
        assert_eq!(
            store.inner.len.load(Ordering::Relaxed),
            2,
            "cap counter matches the map"
        );
        // Expired sessions free their slots when purged.
        assert_eq!(store.purge_expired(), 0);
    }
}
