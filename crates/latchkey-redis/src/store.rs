//! [`RedisStore`]: the [`SessionStore`] implementation.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_redis::redis::{self, RedisError, Value};
use latchkey_session::{
    Admission, Clock, Delta, SessionCap, SessionCapPolicy, SessionInfo, SessionKey, SessionRecord,
    SessionStore, StoreError, Timestamp,
};

use crate::config::RedisStoreConfig;
use crate::conn::{Handle, Lanes};
use crate::error::{corrupt, ConfigError};
use crate::layout::{self, data_field, ms, Keys, Times, F_TIMES};
use crate::scripts::{
    CREATE_SCRIPT, CYCLE_SCRIPT, DELETE_ALL_SCRIPT, DELETE_SCRIPT, LIST_SCRIPT, SAVE_SCRIPT,
};

/// Largest time sent to Redis: Lua numbers are exact up to here, and Redis accepts it as a
/// `PEXPIREAT`/`ZADD` argument.
const MAX_MS: u64 = (1 << 53) - 1;

pub(crate) fn clamped(t: Timestamp) -> String {
    t.as_unix_millis().min(MAX_MS).to_string()
}

/// A [`SessionStore`] on Redis or Redis Cluster. Cheap to clone (all clones share the lanes).
///
/// Build it with [`RedisStore::new`] from a [`RedisStoreConfig`]; it connects lazily, so a
/// service can start while Redis is down and begins to work as soon as Redis answers. Use
/// [`RedisStore::ping`] for a readiness check.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) lanes: Arc<Lanes>,
    pub(crate) keys: Keys,
    pub(crate) clock: Arc<dyn Clock>,
    config: RedisStoreConfig,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("open_lanes", &self.inner.lanes.open_lanes())
            .finish()
    }
}

impl RedisStore {
    /// A store for `config`. Opens no connection yet: the first call does.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Client`] if the redis client or the pool refuses the configuration.
    pub fn new(config: RedisStoreConfig) -> Result<Self, ConfigError> {
        let lanes = Lanes::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                lanes,
                keys: Keys::new(&config.key_prefix),
                clock: Arc::clone(&config.clock),
                config,
            }),
        })
    }

    /// The configuration the store was built with.
    #[must_use]
    pub fn config(&self) -> &RedisStoreConfig {
        &self.inner.config
    }

    /// Sends `PING` through the store's connections: a readiness check that is bounded by the
    /// configured timeouts like every other call.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .lanes
            .run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// The name of the Redis key that holds the session under `key`
    /// (`<prefix>{<hex of the key>}`), for operators and tests.
    #[must_use]
    pub fn session_key_name(&self, key: &SessionKey) -> String {
        self.inner.keys.session(key)
    }

    /// The name of the per-user index key of `user_id` (`<prefix>user:{<user_id>}`).
    #[must_use]
    pub fn user_index_key_name(&self, user_id: &str) -> String {
        self.inner.keys.user(user_id)
    }

    pub(crate) fn now(&self) -> String {
        ms(self.inner.clock.now())
    }

    pub(crate) fn cluster(&self) -> bool {
        self.inner.lanes.is_cluster()
    }
}

pub(crate) fn parse_now(now: &str) -> Timestamp {
    Timestamp::from_unix_millis(now.parse().unwrap_or(0))
}

/// The listing form of a live, non-retired session, from its `@t` and `@m` fields.
pub(crate) fn info_from(
    member: &str,
    times: &[u8],
    meta: Option<Vec<u8>>,
    now: Timestamp,
) -> Option<SessionInfo> {
    let key = SessionKey::from_hex(member)?;
    let times = Times::parse(times)?;
    if times.retired.is_some() || times.expires_at() <= now {
        return None;
    }
    let mut record = SessionRecord::new(times.created, times.idle, times.abs);
    record.last_seen = times.seen;
    if let Some(meta) = meta {
        record.metadata = serde_json::from_slice(&meta).unwrap_or_default();
    }
    Some(record.info(key))
}

/// The cap as script arguments: the maximum (0 for none) and the policy.
pub(crate) fn cap_args(cap: Option<SessionCap>) -> (u32, &'static str) {
    match cap {
        None => (0, "evict"),
        Some(cap) => (
            cap.max.get(),
            match cap.policy {
                SessionCapPolicy::Refuse => "refuse",
                _ => "evict",
            },
        ),
    }
}

/// The single-node `CREATE` / `CYCLE` reply: `{status, evicted members...}`.
fn admission(reply: &[Value]) -> Result<Admission, StoreError> {
    match reply.first() {
        Some(Value::Int(1)) => Ok(Admission::Admitted {
            evicted: evicted_keys(&reply[1..]),
        }),
        Some(Value::Int(0)) => Err(StoreError::Conflict),
        Some(Value::Int(2)) => Ok(Admission::CapReached),
        Some(Value::Int(3)) => Ok(Admission::SourceGone),
        _ => Err(corrupt("admission reply")),
    }
}

/// Hex members in a script reply, as keys (anything else is skipped).
pub(crate) fn evicted_keys(members: &[Value]) -> Vec<SessionKey> {
    members
        .iter()
        .filter_map(|m| match m {
            Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(SessionKey::from_hex),
            _ => None,
        })
        .collect()
}

impl RedisStore {
    /// Single node: the arguments `CREATE` and `CYCLE` share (cap, user, the record's fields)
    /// appended to `invocation`, which is then run.
    async fn admit_record(
        &self,
        mut invocation: redis::ScriptInvocation<'static>,
        record: &SessionRecord,
        times: &str,
        fields: &[(String, String)],
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        let (max, policy) = cap_args(cap);
        invocation
            .arg(max)
            .arg(policy)
            .arg(self.inner.keys.prefix())
            .arg(if record.user_id.is_some() { "1" } else { "0" })
            .arg(record.user_id.as_deref().unwrap_or(""))
            .arg(times)
            .arg(fields.len());
        for (field, value) in fields {
            invocation.arg(field).arg(value);
        }
        let reply: Vec<Value> = self
            .inner
            .lanes
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        admission(&reply)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        let (times, fields) = layout::encode(record)?;
        if self.cluster() {
            return self
                .cluster_store(key, record, None, &times, &fields, cap)
                .await;
        }
        let mut invocation = CREATE_SCRIPT.key(self.inner.keys.session(key));
        invocation
            .arg(self.now())
            .arg(clamped(record.expires_at()))
            .arg(key.to_hex())
            .arg(clamped(record.absolute_deadline));
        self.admit_record(invocation, record, &times, &fields, cap)
            .await
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let session = self.inner.keys.session(key);
        let reply: Value = self
            .inner
            .lanes
            .run(|mut c| async move {
                redis::cmd("HGETALL")
                    .arg(&session)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let decoded = match &reply {
            Value::Array(pairs) => layout::decode(pairs)?,
            // RESP3 answers HGETALL with a map.
            Value::Map(map) => {
                let pairs: Vec<Value> = map
                    .iter()
                    .flat_map(|(f, v)| [f.clone(), v.clone()])
                    .collect();
                layout::decode(&pairs)?
            }
            _ => return Err(corrupt("HGETALL reply")),
        };
        let Some((record, retired)) = decoded else {
            return Ok(None);
        };
        let expires = layout::expiry(record.idle_deadline, record.absolute_deadline, retired);
        if expires <= self.inner.clock.now() {
            return Ok(None);
        }
        Ok(Some(record))
    }

    async fn save(&self, key: &SessionKey, delta: &Delta) -> Result<bool, StoreError> {
        let session = self.inner.keys.session(key);
        let mut sets = Vec::new();
        let mut dels = Vec::new();
        for (k, change) in &delta.changes {
            match change {
                Some(value) => sets.push((data_field(k), value.to_string())),
                None => dels.push(data_field(k)),
            }
        }
        let mut invocation = SAVE_SCRIPT.key(&session);
        invocation
            .arg(self.now())
            .arg(if delta.clear { "1" } else { "0" })
            .arg(ms(delta.last_seen))
            .arg(ms(delta.idle_deadline))
            .arg(sets.len())
            .arg(dels.len());
        for (f, v) in &sets {
            invocation.arg(f).arg(v);
        }
        for f in &dels {
            invocation.arg(f);
        }
        self.inner
            .lanes
            .run(|mut c| async move {
                let saved: i64 = invocation.invoke_async(&mut c).await?;
                Ok(saved == 1)
            })
            .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
        idle_deadline: Timestamp,
    ) -> Result<bool, StoreError> {
        self.save(key, &Delta::new(last_seen, idle_deadline)).await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        record: &SessionRecord,
        retire_until: Timestamp,
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        if old == new {
            return Ok(Admission::SourceGone);
        }
        let (times, fields) = layout::encode(record)?;
        if self.cluster() {
            return self
                .cluster_store(new, record, Some((old, retire_until)), &times, &fields, cap)
                .await;
        }
        let mut invocation = CYCLE_SCRIPT.key(self.inner.keys.session(old));
        invocation
            .key(self.inner.keys.session(new))
            .arg(self.now())
            .arg(clamped(retire_until))
            .arg(old.to_hex())
            .arg(new.to_hex())
            .arg(clamped(record.expires_at()))
            .arg(clamped(record.absolute_deadline));
        self.admit_record(invocation, record, &times, &fields, cap)
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let member = key.to_hex();
        if self.cluster() {
            return self.cluster_delete(&member).await;
        }
        let session = self.inner.keys.session(key);
        let now = self.now();
        self.inner
            .lanes
            .run(|mut c| async move {
                let live: i64 = DELETE_SCRIPT
                    .key(&session)
                    .arg(&now)
                    .arg(self.inner.keys.prefix())
                    .arg(&member)
                    .invoke_async(&mut c)
                    .await?;
                Ok(live == 1)
            })
            .await
    }

    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = self.now();
        let mut out = if self.cluster() {
            self.cluster_list_for_user(user_id, &now).await?
        } else {
            let idx = self.inner.keys.user(user_id);
            let now_ts = parse_now(&now);
            let flat: Vec<Option<Vec<u8>>> = self
                .inner
                .lanes
                .run(|mut c| async move {
                    LIST_SCRIPT
                        .key(&idx)
                        .arg(&now)
                        .arg(self.inner.keys.prefix())
                        .arg(user_id)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            let mut out = Vec::with_capacity(flat.len() / 3);
            for row in flat.chunks(3) {
                let [member, times, meta] = <[Option<Vec<u8>>; 3]>::try_from(row.to_vec())
                    .map_err(|_| corrupt("user index reply"))?;
                let member = member
                    .and_then(|m| String::from_utf8(m).ok())
                    .ok_or_else(|| corrupt("user index member"))?;
                let times = times.ok_or_else(|| corrupt("user index times"))?;
                if let Some(info) = info_from(&member, &times, meta, now_ts) {
                    out.push(info);
                }
            }
            out
        };
        out.sort_by_key(|a| (a.created_at, *a.key.as_bytes()));
        Ok(out)
    }

    async fn delete_all_for_user(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let idx = self.inner.keys.user(user_id);
        let keep = keep.map(SessionKey::to_hex).unwrap_or_default();
        if !self.cluster() {
            return self
                .inner
                .lanes
                .run(|mut c| async move {
                    DELETE_ALL_SCRIPT
                        .key(&idx)
                        .arg(&now)
                        .arg(self.inner.keys.prefix())
                        .arg(user_id)
                        .arg(&keep)
                        .invoke_async(&mut c)
                        .await
                })
                .await;
        }
        self.cluster_delete_all(user_id, &keep, &now).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let now = self.inner.clock.now();
        let pattern = self.inner.keys.session_pattern();
        let cluster = self.cluster();
        self.inner
            .lanes
            .run(|mut c| async move {
                let nodes = if cluster {
                    masters(&mut c).await?
                } else {
                    vec![None]
                };
                let mut live = 0u64;
                for node in nodes {
                    let mut cursor = 0u64;
                    loop {
                        let mut scan = redis::cmd("SCAN");
                        scan.arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(1000)
                            .arg("TYPE")
                            .arg("hash");
                        let (next, keys): (u64, Vec<String>) =
                            query_on(&mut c, &scan, &node).await?;
                        if !keys.is_empty() {
                            let mut pipe = redis::pipe();
                            for key in &keys {
                                pipe.cmd("HGET").arg(key).arg(F_TIMES);
                            }
                            let rows: Vec<Option<Vec<u8>>> = pipe_on(&mut c, &pipe, &node).await?;
                            live += rows
                                .iter()
                                .flatten()
                                .filter_map(|t| Times::parse(t))
                                .filter(|t| t.expires_at() > now)
                                .count() as u64;
                        }
                        cursor = next;
                        if cursor == 0 {
                            break;
                        }
                    }
                }
                Ok(live)
            })
            .await
    }
}

/// A cluster node to route a command to; `None` on a single node.
type Node = Option<(String, u16)>;

#[cfg(feature = "cluster")]
async fn masters(c: &mut Handle) -> Result<Vec<Node>, RedisError> {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(c).await?;
    let mut out = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (parts.get(1), parts.get(2)) else {
            continue;
        };
        // A failing master is kept: counting it fails loudly instead of undercounting.
        if !flags.split(',').any(|f| f == "master") || flags.contains("noaddr") {
            continue;
        }
        // `ip:port@cport[,hostname]`
        let hostport = addr.split('@').next().unwrap_or_default();
        if let Some((host, port)) = hostport.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                out.push(Some((host.to_owned(), port)));
            }
        }
    }
    Ok(out)
}

#[cfg(not(feature = "cluster"))]
async fn masters(_: &mut Handle) -> Result<Vec<Node>, RedisError> {
    Ok(vec![None])
}

async fn query_on<T: redis::FromRedisValue>(
    c: &mut Handle,
    cmd: &redis::Cmd,
    node: &Node,
) -> Result<T, RedisError> {
    match (c, node) {
        #[cfg(feature = "cluster")]
        (Handle::Cluster(cc), Some((host, port))) => {
            use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
            let value = cc
                .route_command(
                    cmd.clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    }),
                )
                .await?;
            redis::from_redis_value(value).map_err(Into::into)
        }
        (c, _) => cmd.query_async(c).await,
    }
}

async fn pipe_on<T: redis::FromRedisValue>(
    c: &mut Handle,
    pipe: &redis::Pipeline,
    node: &Node,
) -> Result<T, RedisError> {
    match (c, node) {
        #[cfg(feature = "cluster")]
        (Handle::Cluster(cc), Some((host, port))) => {
            use redis::cluster_routing::SingleNodeRoutingInfo;
            let values = cc
                .route_pipeline(
                    pipe.clone(),
                    0,
                    pipe.len(),
                    SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    },
                )
                .await?;
            redis::from_redis_value(Value::Array(values)).map_err(Into::into)
        }
        (c, _) => pipe.query_async(c).await,
    }
}
