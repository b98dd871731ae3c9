//! What a store holds for one session, and the change set ([`Delta`]) written back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{SessionKey, Timestamp};

/// The application data of one session: string keys to JSON values, typed through serde.
///
/// Stored as a sorted, exactly-sized vector behind an `Arc`, copied on write: cloning (what a
/// store does on every load) costs one reference-count increment, and a session with a
/// handful of keys stays compact.
///
/// ```
/// use latchkey_session::SessionData;
///
/// let mut data = SessionData::new();
/// data.insert("cart", &vec![1, 2, 3]).unwrap();
/// assert_eq!(data.get::<Vec<u32>>("cart").unwrap(), Some(vec![1, 2, 3]));
/// assert!(data.get::<String>("cart").is_err()); // wrong type: an error, not a panic
/// data.remove("cart");
/// assert!(data.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct SessionData(Option<Arc<Vec<(String, Value)>>>);

impl SessionData {
    /// An empty map (allocates nothing).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> &[(String, Value)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries()
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    fn entries_mut(&mut self) -> &mut Vec<(String, Value)> {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }

    /// The value under `key`, deserialized as `T`; `Ok(None)` when absent.
    ///
    /// # Errors
    ///
    /// When the stored JSON does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.get_value(key).map(T::deserialize).transpose()
    }

    /// The raw JSON value under `key`.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.entries()[i].1)
    }

    /// Serializes `value` and stores it under `key`, returning the previous value.
    ///
    /// # Errors
    ///
    /// When `value` cannot be represented as JSON (e.g. a map with non-string keys).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<Option<Value>, serde_json::Error> {
        let value = serde_json::to_value(value)?;
        Ok(self.insert_value(key, value))
    }

    /// Stores a raw JSON value under `key`, returning the previous value.
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries_mut()[i].1, value)),
            Err(i) => {
                let entries = self.entries_mut();
                // Exact growth: sessions hold a few keys and live long in memory.
                entries.reserve_exact(1);
                entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.find(key).ok()?;
        let entries = self.entries_mut();
        let (_, value) = entries.remove(i);
        entries.shrink_to_fit();
        Some(value)
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Whether there is no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Iterates over keys and values in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> + '_ {
        self.entries().iter().map(|(k, v)| (k, v))
    }

    /// Applies the data part of a delta: `clear` first, then every change in order.
    pub fn apply(&mut self, delta: &Delta) {
        if delta.clear {
            self.clear();
        }
        for (key, change) in &delta.changes {
            match change {
                Some(value) => match self.find(key) {
                    // Existing key: replace the value in place, no key allocation.
                    Ok(i) => self.entries_mut()[i].1 = value.clone(),
                    Err(_) => {
                        self.insert_value(key.clone(), value.clone());
                    }
                },
                None => {
                    self.remove(key);
                }
            }
        }
    }
}

impl PartialEq for SessionData {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for SessionData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for SessionData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, Value>::deserialize(deserializer).map(|map| map.into_iter().collect())
    }
}

impl FromIterator<(String, Value)> for SessionData {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        // Last value wins for a repeated key, as with a map.
        let map: BTreeMap<String, Value> = iter.into_iter().collect();
        if map.is_empty() {
            return Self::new();
        }
        let mut entries: Vec<(String, Value)> = map.into_iter().collect();
        entries.shrink_to_fit();
        Self(Some(Arc::new(entries)))
    }
}

/// Small facts about the client that created a session, shown in a "my devices" list.
///
/// Kept small on purpose: the manager truncates each field to
/// [`SessionMetadata::MAX_FIELD_LEN`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionMetadata {
    /// The `User-Agent` the session was created (or logged in) with.
    pub user_agent: Option<String>,
}

impl SessionMetadata {
    /// Longest value kept for any one field, in bytes.
    pub const MAX_FIELD_LEN: usize = 256;

    /// Metadata with a user agent (truncated to [`Self::MAX_FIELD_LEN`] on a char boundary).
    #[must_use]
    pub fn with_user_agent(user_agent: &str) -> Self {
        Self {
            user_agent: Some(truncate(user_agent, Self::MAX_FIELD_LEN).to_owned()),
        }
    }

    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.user_agent.is_none()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One session as a store holds it (minus the key).
///
/// The session expires at the *earlier* of `idle_deadline` and `absolute_deadline`
/// ([`SessionRecord::expires_at`]); a store must never return a record past that instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Application data.
    pub data: SessionData,
    /// When the session was first stored.
    pub created_at: Timestamp,
    /// When a request last wrote or touched the session.
    pub last_seen: Timestamp,
    /// The session dies if not touched before this instant (rolling).
    pub idle_deadline: Timestamp,
    /// The session dies at this instant whatever happens; nothing ever moves it later.
    pub absolute_deadline: Timestamp,
    /// The logged-in user, if any; the per-user index is keyed by it.
    pub user_id: Option<String>,
    /// Client facts for the device list.
    pub metadata: SessionMetadata,
}

impl SessionRecord {
    /// A record with no data and no user, created and last seen at `now`.
    #[must_use]
    pub fn new(now: Timestamp, idle_deadline: Timestamp, absolute_deadline: Timestamp) -> Self {
        Self {
            data: SessionData::new(),
            created_at: now,
            last_seen: now,
            idle_deadline,
            absolute_deadline,
            user_id: None,
            metadata: SessionMetadata::default(),
        }
    }

    /// The instant the session expires: the earlier of its two deadlines.
    #[must_use]
    pub fn expires_at(&self) -> Timestamp {
        self.idle_deadline.min(self.absolute_deadline)
    }

    /// Whether the session is expired at `now` (expiry is exclusive: alive strictly before it).
    #[must_use]
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at()
    }

    /// Applies a delta the way a store must (see [`Delta`]).
    pub fn apply(&mut self, delta: &Delta) {
        self.data.apply(delta);
        self.last_seen = delta.last_seen;
        self.idle_deadline = delta.idle_deadline;
    }

    /// The listing form of this record.
    #[must_use]
    pub fn info(&self, key: SessionKey) -> SessionInfo {
        SessionInfo {
            key,
            created_at: self.created_at,
            last_seen: self.last_seen,
            idle_deadline: self.idle_deadline,
            absolute_deadline: self.absolute_deadline,
            metadata: self.metadata.clone(),
        }
    }
}

/// Only what one request changed, so that concurrent requests changing different keys of the
/// same session both survive.
///
/// A store applies it to the stored record atomically, in this order: if `clear`, remove every
/// data key; then apply `changes` (`Some` sets, `None` removes); set `last_seen` and
/// `idle_deadline`. `absolute_deadline`, the user and the metadata never change: a login or
/// logout stores a new record ([`SessionStore::cycle`](crate::SessionStore::cycle)) or deletes
/// the old one.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Delta {
    /// Remove every data key before applying `changes`.
    pub clear: bool,
    /// Keys set (`Some`) or removed (`None`).
    pub changes: BTreeMap<String, Option<Value>>,
    /// New last-seen time.
    pub last_seen: Timestamp,
    /// New idle deadline.
    pub idle_deadline: Timestamp,
}

impl Delta {
    /// A delta that changes no data and only moves `last_seen` and `idle_deadline`.
    #[must_use]
    pub fn new(last_seen: Timestamp, idle_deadline: Timestamp) -> Self {
        Self {
            clear: false,
            changes: BTreeMap::new(),
            last_seen,
            idle_deadline,
        }
    }

    /// Sets `key` to `value`.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: Value) -> Self {
        self.changes.insert(key.into(), Some(value));
        self
    }

    /// Removes `key`.
    #[must_use]
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.changes.insert(key.into(), None);
        self
    }

    /// Removes every key first.
    #[must_use]
    pub fn cleared(mut self) -> Self {
        self.clear = true;
        self
    }
}

/// One entry of a user's session list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's key (the hash, never the ID).
    pub key: SessionKey,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last written or touched.
    pub last_seen: Timestamp,
    /// Idle deadline.
    pub idle_deadline: Timestamp,
    /// Absolute deadline.
    pub absolute_deadline: Timestamp,
    /// Client facts.
    pub metadata: SessionMetadata,
}

impl SessionInfo {
    /// The earlier of the two deadlines.
    #[must_use]
    pub fn expires_at(&self) -> Timestamp {
        self.idle_deadline.min(self.absolute_deadline)
    }
}
