//! Key names and the hash fields of one session (see the crate docs, "Key layout").

use std::collections::HashMap;

use latchkey_session::{SessionKey, SessionMetadata, SessionRecord, StoreError, Timestamp};
use serde_json::Value;

use crate::error::corrupt;

/// Hash field: creation time (ms since the epoch).
pub(crate) const F_CREATED: &str = "@c";
/// Hash field: last seen (ms).
pub(crate) const F_SEEN: &str = "@s";
/// Hash field: idle deadline (ms).
pub(crate) const F_IDLE: &str = "@i";
/// Hash field: absolute deadline (ms).
pub(crate) const F_ABS: &str = "@a";
/// Hash field: retired until (ms), present only after `retire`.
pub(crate) const F_RETIRED: &str = "@r";
/// Hash field: user ID, present only for a logged-in session.
pub(crate) const F_USER: &str = "@u";
/// Hash field: metadata as JSON, present only when not empty.
pub(crate) const F_META: &str = "@m";
/// Prefix of every data field: data key `cart` is hash field `.cart`.
pub(crate) const DATA_PREFIX: char = '.';

/// Builds key names from the configured prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>{<hex of the ID's SHA-256>}`: the braces make the hash the cluster hash tag.
    pub(crate) fn session(&self, key: &SessionKey) -> String {
        self.session_hex(&key.to_hex())
    }

    pub(crate) fn session_hex(&self, hex: &str) -> String {
        format!("{}{{{hex}}}", self.prefix)
    }

    /// `<prefix>user:{<user ID>}`: the per-user index (a sorted set).
    pub(crate) fn user(&self, user_id: &str) -> String {
        format!("{}user:{{{user_id}}}", self.prefix)
    }

    /// A `SCAN MATCH` pattern for session keys only (not the user indexes): the prefix with the
    /// glob characters escaped, then `{*`.
    pub(crate) fn session_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 4);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str("{*");
        pattern
    }
}

/// The hash fields of a new record, as `(field, value)` pairs.
pub(crate) fn encode(record: &SessionRecord) -> Result<Vec<(String, String)>, StoreError> {
    let mut fields = Vec::with_capacity(6 + record.data.len());
    fields.push((F_CREATED.to_owned(), ms(record.created_at)));
    fields.push((F_SEEN.to_owned(), ms(record.last_seen)));
    fields.push((F_IDLE.to_owned(), ms(record.idle_deadline)));
    fields.push((F_ABS.to_owned(), ms(record.absolute_deadline)));
    if let Some(user) = &record.user_id {
        fields.push((F_USER.to_owned(), user.clone()));
    }
    if let Some(meta) = encode_metadata(&record.metadata)? {
        fields.push((F_META.to_owned(), meta));
    }
    for (key, value) in record.data.iter() {
        fields.push((data_field(key), value.to_string()));
    }
    Ok(fields)
}

pub(crate) fn encode_metadata(meta: &SessionMetadata) -> Result<Option<String>, StoreError> {
    if meta.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(meta)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(Box::new(e)))
}

pub(crate) fn data_field(key: &str) -> String {
    let mut field = String::with_capacity(key.len() + 1);
    field.push(DATA_PREFIX);
    field.push_str(key);
    field
}

pub(crate) fn ms(t: Timestamp) -> String {
    t.as_unix_millis().to_string()
}

/// When a stored session expires: the earlier of its deadlines and its retirement.
pub(crate) fn expiry(idle: Timestamp, abs: Timestamp, retired: Option<Timestamp>) -> Timestamp {
    let e = idle.min(abs);
    retired.map_or(e, |r| e.min(r))
}

fn parse_ms(raw: Option<&[u8]>, what: &'static str) -> Result<Timestamp, StoreError> {
    let raw = raw.ok_or_else(|| corrupt(what))?;
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Timestamp::from_unix_millis)
        .ok_or_else(|| corrupt(what))
}

fn parse_opt_ms(raw: Option<&[u8]>, what: &'static str) -> Result<Option<Timestamp>, StoreError> {
    raw.map(|r| parse_ms(Some(r), what)).transpose()
}

/// A decoded session hash.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) record: SessionRecord,
    pub(crate) retired: Option<Timestamp>,
}

impl Stored {
    pub(crate) fn expires_at(&self) -> Timestamp {
        expiry(
            self.record.idle_deadline,
            self.record.absolute_deadline,
            self.retired,
        )
    }
}

/// Decodes the reply of `HGETALL` on a session key. `None` for an empty hash (no such key).
pub(crate) fn decode(fields: HashMap<String, Vec<u8>>) -> Result<Option<Stored>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let get = |f: &str| fields.get(f).map(Vec::as_slice);
    let created = parse_ms(get(F_CREATED), "created-at")?;
    let seen = parse_ms(get(F_SEEN), "last-seen")?;
    let idle = parse_ms(get(F_IDLE), "idle deadline")?;
    let abs = parse_ms(get(F_ABS), "absolute deadline")?;
    let retired = parse_opt_ms(get(F_RETIRED), "retired-until")?;
    let mut record = SessionRecord::new(created, idle, abs);
    record.last_seen = seen;
    record.user_id = get(F_USER)
        .map(|raw| String::from_utf8(raw.to_vec()).map_err(|_| corrupt("user ID")))
        .transpose()?;
    if let Some(raw) = get(F_META) {
        record.metadata = serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(e.into()))?;
    }
    for (field, raw) in &fields {
        if let Some(key) = field.strip_prefix(DATA_PREFIX) {
            let value: Value =
                serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(e.into()))?;
            record.data.insert_value(key.to_owned(), value);
        }
    }
    Ok(Some(Stored { record, retired }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        let keys = Keys::new("session:");
        let key = SessionKey::from_bytes([0xab; 32]);
        assert_eq!(
            keys.session(&key),
            format!("session:{{{}}}", "ab".repeat(32))
        );
        assert_eq!(keys.user("alice"), "session:user:{alice}");
        assert_eq!(keys.session_pattern(), "session:{*");
        assert_eq!(Keys::new("a*b[").session_pattern(), "a\\*b\\[{*");
    }

    #[test]
    fn round_trip() {
        let mut record = SessionRecord::new(
            Timestamp::from_unix_millis(1),
            Timestamp::from_unix_millis(2),
            Timestamp::from_unix_millis(3),
        );
        record.user_id = Some("alice".into());
        record.metadata = SessionMetadata::with_user_agent("curl");
        record.data.insert("cart", &vec![1, 2]).unwrap();
        record.data.insert("@c", "not a meta field").unwrap();
        let fields: HashMap<String, Vec<u8>> = encode(&record)
            .unwrap()
            .into_iter()
            .map(|(f, v)| (f, v.into_bytes()))
            .collect();
        let stored = decode(fields).unwrap().unwrap();
        assert_eq!(stored.record, record);
        assert_eq!(stored.retired, None);
    }

    #[test]
    fn missing_or_bad_fields_are_corrupt() {
        let mut fields = HashMap::new();
        fields.insert(F_CREATED.to_owned(), b"x".to_vec());
        assert!(matches!(decode(fields), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode(HashMap::new()), Ok(None)));
    }
}
