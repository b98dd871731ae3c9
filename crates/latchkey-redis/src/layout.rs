//! Key names and the hash fields of one session (see the crate docs, "Key layout").

use deadpool_redis::redis::Value;
use latchkey_session::{SessionKey, SessionMetadata, SessionRecord, StoreError, Timestamp};

use crate::error::corrupt;

/// Hash field: the session's times, `<created>:<last seen>:<idle deadline>:<absolute
/// deadline>[:<retired until>]`, each in milliseconds since the epoch. One field, so that a load
/// reads (and a save rewrites) one short value instead of five.
pub(crate) const F_TIMES: &str = "@t";
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

/// The `@t` value and the other hash fields of a new record, as `(field, value)` pairs.
pub(crate) fn encode(
    record: &SessionRecord,
) -> Result<(String, Vec<(String, String)>), StoreError> {
    let mut fields = Vec::with_capacity(2 + record.data.len());
    if let Some(user) = &record.user_id {
        fields.push((F_USER.to_owned(), user.clone()));
    }
    if let Some(meta) = encode_metadata(&record.metadata)? {
        fields.push((F_META.to_owned(), meta));
    }
    for (key, value) in record.data.iter() {
        fields.push((data_field(key), value.to_string()));
    }
    Ok((times(record, None), fields))
}

/// The `@t` value of a record.
pub(crate) fn times(record: &SessionRecord, retired: Option<Timestamp>) -> String {
    let mut t = format!(
        "{}:{}:{}:{}",
        record.created_at.as_unix_millis(),
        record.last_seen.as_unix_millis(),
        record.idle_deadline.as_unix_millis(),
        record.absolute_deadline.as_unix_millis()
    );
    if let Some(r) = retired {
        t.push(':');
        t.push_str(&r.as_unix_millis().to_string());
    }
    t
}

/// The parsed `@t` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) created: Timestamp,
    pub(crate) seen: Timestamp,
    pub(crate) idle: Timestamp,
    pub(crate) abs: Timestamp,
    pub(crate) retired: Option<Timestamp>,
}

impl Times {
    pub(crate) fn parse(raw: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut parts = text.split(':').map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse::<u64>().ok().map(Timestamp::from_unix_millis)
        });
        let created = parts.next()??;
        let seen = parts.next()??;
        let idle = parts.next()??;
        let abs = parts.next()??;
        let retired = match parts.next() {
            None => None,
            Some(r) => Some(r?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            created,
            seen,
            idle,
            abs,
            retired,
        })
    }

    /// When the session expires: the earlier of its deadlines and its retirement.
    pub(crate) fn expires_at(&self) -> Timestamp {
        expiry(self.idle, self.abs, self.retired)
    }
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

/// Decodes the reply of `HGETALL` on a session key (field, value, field, value, ...).
/// `None` for an empty reply (no such key). Expired or not is the caller's question.
pub(crate) fn decode(
    pairs: &[Value],
) -> Result<Option<(SessionRecord, Option<Timestamp>)>, StoreError> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut times = None;
    let mut user = None;
    let mut meta = None;
    let mut data = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let [Value::BulkString(field), Value::BulkString(value)] = pair else {
            return Err(corrupt("session hash reply"));
        };
        match field.as_slice() {
            // A cluster write in progress (`cluster.rs`): not live yet, or never.
            b"@t" if value.first() == Some(&b'p') => return Ok(None),
            b"@t" => times = Some(Times::parse(value).ok_or_else(|| corrupt("times"))?),
            b"@u" => {
                user = Some(String::from_utf8(value.clone()).map_err(|_| corrupt("user ID"))?);
            }
            b"@m" => meta = Some(value),
            [b'.', key @ ..] => {
                let key = std::str::from_utf8(key).map_err(|_| corrupt("data key"))?;
                let value: serde_json::Value =
                    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt(e.into()))?;
                data.push((key.to_owned(), value));
            }
            _ => {}
        }
    }
    let times = times.ok_or_else(|| corrupt("times missing"))?;
    let mut record = SessionRecord::new(times.created, times.idle, times.abs);
    record.last_seen = times.seen;
    record.user_id = user;
    if let Some(raw) = meta {
        record.metadata = serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(e.into()))?;
    }
    record.data = data.into_iter().collect();
    Ok(Some((record, times.retired)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(fields: Vec<(String, String)>) -> Vec<Value> {
        fields
            .into_iter()
            .flat_map(|(f, v)| {
                [
                    Value::BulkString(f.into_bytes()),
                    Value::BulkString(v.into_bytes()),
                ]
            })
            .collect()
    }

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
            Timestamp::from_unix_millis(u64::MAX),
        );
        record.user_id = Some("alice".into());
        record.metadata = SessionMetadata::with_user_agent("curl");
        record.data.insert("cart", &vec![1, 2]).unwrap();
        record.data.insert("@t", "not a bookkeeping field").unwrap();
        let (times, mut fields) = encode(&record).unwrap();
        fields.push((F_TIMES.to_owned(), times));
        let (decoded, retired) = decode(&reply(fields)).unwrap().unwrap();
        assert_eq!(decoded, record);
        assert_eq!(retired, None);
    }

    #[test]
    fn times_parse() {
        let t = Times::parse(b"1:2:3:4:5").unwrap();
        assert_eq!(t.retired, Some(Timestamp::from_unix_millis(5)));
        assert_eq!(t.expires_at(), Timestamp::from_unix_millis(3));
        for bad in [
            &b""[..],
            b"1:2:3",
            b"1:2:3:4:5:6",
            b"1:2:x:4",
            b"1:2:3:4:",
            b"-1:2:3:4",
        ] {
            assert!(Times::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn missing_or_bad_fields_are_corrupt() {
        let bad = reply(vec![(F_TIMES.to_owned(), "x".to_owned())]);
        assert!(matches!(decode(&bad), Err(StoreError::Corrupt(_))));
        let no_times = reply(vec![(".a".to_owned(), "1".to_owned())]);
        assert!(matches!(decode(&no_times), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode(&[]), Ok(None)));
    }
}
