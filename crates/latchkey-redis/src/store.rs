//! [`RedisStore`]: the [`SessionStore`] implementation.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_redis::redis::{self, AsyncCommands, RedisError, Value};
use latchkey_session::{
    Clock, Delta, SessionInfo, SessionKey, SessionRecord, SessionStore, StoreError, Timestamp,
};

use crate::config::RedisStoreConfig;
use crate::conn::{Handle, Lanes};
use crate::error::{corrupt, ConfigError};
use crate::layout::{self, data_field, ms, Keys, Times, F_META, F_TIMES, F_USER};
use crate::scripts::{
    CREATE_SCRIPT, DELETE_ALL_SCRIPT, DELETE_IF_USER_SCRIPT, DELETE_SCRIPT, INDEX_ADD_SCRIPT,
    INDEX_READ_SCRIPT, LIST_SCRIPT, RETIRE_SCRIPT, SAVE_FULL_SCRIPT, SAVE_SCRIPT,
};

/// Largest time sent to Redis: Lua numbers are exact up to here, and Redis accepts it as a
/// `PEXPIREAT`/`ZADD` argument.
const MAX_MS: u64 = (1 << 53) - 1;

fn clamped(t: Timestamp) -> String {
    t.as_unix_millis().min(MAX_MS).to_string()
}

/// A [`SessionStore`] on Redis or Redis Cluster. Cheap to clone (all clones share the lanes).
///
/// Build it with [`RedisStore::new`] from a [`RedisStoreConfig`]; it connects lazily, so a
/// service can start while Redis is down and begins to work as soon as Redis answers. Use
/// [`RedisStore::ping`] for a readiness check.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: Arc<Lanes>,
    keys: Keys,
    cap: u64,
    clock: Arc<dyn Clock>,
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
                cap: config
                    .max_sessions_per_user
                    .map_or(0, |n| u64::try_from(n.get()).unwrap_or(u64::MAX)),
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

    fn now(&self) -> String {
        ms(self.inner.clock.now())
    }

    fn mode(&self) -> &'static str {
        if self.inner.lanes.is_cluster() {
            "0"
        } else {
            "1"
        }
    }

    fn cluster(&self) -> bool {
        self.inner.lanes.is_cluster()
    }

    /// Cluster only: reads a user index and the sessions it names, pruning entries whose session
    /// is gone. Returns the live, non-retired sessions of the user.
    async fn cluster_list(
        &self,
        c: &mut Handle,
        user_id: &str,
        now: &str,
    ) -> Result<Vec<SessionInfo>, RedisError> {
        let idx = self.inner.keys.user(user_id);
        let members: Vec<String> = INDEX_READ_SCRIPT.key(&idx).arg(now).invoke_async(c).await?;
        let reads = members.iter().map(|m| {
            let mut c = c.clone();
            let key = self.inner.keys.session_hex(m);
            async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&[F_TIMES, F_USER, F_META])
                    .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                    .await
            }
        });
        let rows = futures::future::try_join_all(reads).await?;
        let now_ts = parse_now(now);
        let mut gone = Vec::new();
        let mut out = Vec::new();
        for (member, row) in members.iter().zip(rows) {
            let mut row = row.into_iter();
            let (times, user, meta) = (
                row.next().flatten(),
                row.next().flatten(),
                row.next().flatten(),
            );
            let Some(times) = times else {
                // The session is gone (deleted or expired): its entry can never become valid
                // again (a session is written before its index entry), so prune it.
                gone.push(member.clone());
                continue;
            };
            // An entry of a session that moved to another user is skipped, not pruned: the save
            // that moved it removes it, and pruning here could race with a move back.
            if user.as_deref() != Some(user_id.as_bytes()) {
                continue;
            }
            if let Some(info) = info_from(member, &times, meta, now_ts) {
                out.push(info);
            }
        }
        if !gone.is_empty() {
            let _: () = c.zrem(&idx, &gone).await?;
        }
        Ok(out)
    }

    /// Cluster only: after `member` joined `user_id`, delete the user's oldest other sessions
    /// beyond the cap. Not atomic with the join (the index and the sessions live in different
    /// slots); a concurrent join can briefly leave the user one over the cap.
    async fn cluster_cap(
        &self,
        c: &mut Handle,
        user_id: &str,
        member: &str,
        now: &str,
    ) -> Result<(), RedisError> {
        if self.inner.cap == 0 {
            return Ok(());
        }
        let mut others: Vec<SessionInfo> = self
            .cluster_list(c, user_id, now)
            .await?
            .into_iter()
            .filter(|i| i.key.to_hex() != member)
            .collect();
        let keep = usize::try_from(self.inner.cap - 1).unwrap_or(usize::MAX);
        if others.len() <= keep {
            return Ok(());
        }
        others.sort_by_key(|a| (a.created_at, *a.key.as_bytes()));
        let excess = others.len() - keep;
        let victims: Vec<String> = others.iter().take(excess).map(|i| i.key.to_hex()).collect();
        for hex in &victims {
            let _: i64 = DELETE_IF_USER_SCRIPT
                .key(self.inner.keys.session_hex(hex))
                .arg(now)
                .arg(user_id)
                .invoke_async(c)
                .await?;
        }
        let _: () = c.zrem(self.inner.keys.user(user_id), &victims).await?;
        Ok(())
    }
}

fn parse_now(now: &str) -> Timestamp {
    Timestamp::from_unix_millis(now.parse().unwrap_or(0))
}

/// The listing form of a live, non-retired session, from its `@t` and `@m` fields.
fn info_from(
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

/// `Some(Some(user))` / `Some(None)` / `None` as the script's op code and argument.
fn user_op(change: &Option<Option<String>>) -> (&'static str, &str) {
    match change {
        None => ("0", ""),
        Some(None) => ("1", ""),
        Some(Some(user)) => ("2", user.as_str()),
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, key: &SessionKey, record: &SessionRecord) -> Result<(), StoreError> {
        let (times, fields) = layout::encode(record)?;
        let session = self.inner.keys.session(key);
        let member = key.to_hex();
        let now = self.now();
        let abs = clamped(record.absolute_deadline);
        let mut invocation = CREATE_SCRIPT.key(&session);
        invocation
            .arg(&now)
            .arg(clamped(record.expires_at()))
            .arg(self.mode())
            .arg(&member)
            .arg(&abs)
            .arg(self.inner.cap)
            .arg(self.inner.keys.prefix())
            .arg(if record.user_id.is_some() { "1" } else { "0" })
            .arg(record.user_id.as_deref().unwrap_or(""))
            .arg(&times)
            .arg(fields.len());
        for (field, value) in &fields {
            invocation.arg(field).arg(value);
        }
        let cluster = self.cluster();
        let user = record.user_id.clone();
        let created = self
            .inner
            .lanes
            .run(|mut c| async move {
                let created: i64 = invocation.invoke_async(&mut c).await?;
                if created != 1 || !cluster {
                    return Ok(created);
                }
                let Some(user) = user else {
                    return Ok(created);
                };
                // Cluster: the session is written first, then indexed. Until the index write
                // succeeds, `create` has not returned, so the ID has not been handed out.
                let idx = self.inner.keys.user(&user);
                let indexed: Result<i64, RedisError> = INDEX_ADD_SCRIPT
                    .key(&idx)
                    .arg(&now)
                    .arg(&member)
                    .arg(&abs)
                    .invoke_async(&mut c)
                    .await;
                if let Err(err) = indexed {
                    // Best effort: do not leave an unindexed session of a user behind. Even if
                    // this fails too, nobody holds its ID and it expires by its TTL.
                    let _: Result<(), RedisError> = c.del(&session).await;
                    return Err(err);
                }
                self.cluster_cap(&mut c, &user, &member, &now).await?;
                Ok(created)
            })
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
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
        let member = key.to_hex();
        let now = self.now();
        let (uop, user) = user_op(&delta.user_id);
        let (mop, meta) = match &delta.metadata {
            None => ("0", String::new()),
            Some(m) => match layout::encode_metadata(m)? {
                None => ("1", String::new()),
                Some(json) => ("2", json),
            },
        };
        let mut sets = Vec::new();
        let mut dels = Vec::new();
        for (k, change) in &delta.changes {
            match change {
                Some(value) => sets.push((data_field(k), value.to_string())),
                None => dels.push(data_field(k)),
            }
        }
        if delta.user_id.is_none() && delta.metadata.is_none() {
            // The hot path: data and deadlines only, one short script.
            let mut invocation = SAVE_SCRIPT.key(&session);
            invocation
                .arg(&now)
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
            return self
                .inner
                .lanes
                .run(|mut c| async move {
                    let saved: i64 = invocation.invoke_async(&mut c).await?;
                    Ok(saved == 1)
                })
                .await;
        }
        let mut invocation = SAVE_FULL_SCRIPT.key(&session);
        invocation
            .arg(&now)
            .arg(self.mode())
            .arg(self.inner.keys.prefix())
            .arg(&member)
            .arg(self.inner.cap)
            .arg(if delta.clear { "1" } else { "0" })
            .arg(ms(delta.last_seen))
            .arg(ms(delta.idle_deadline))
            .arg(uop)
            .arg(user)
            .arg(mop)
            .arg(&meta)
            .arg(sets.len())
            .arg(dels.len());
        for (f, v) in &sets {
            invocation.arg(f).arg(v);
        }
        for f in &dels {
            invocation.arg(f);
        }
        let cluster = self.cluster();
        let new_user = match &delta.user_id {
            Some(Some(u)) => Some(u.clone()),
            _ => None,
        };
        let changes_user = delta.user_id.is_some();
        self.inner
            .lanes
            .run(|mut c| async move {
                if !(cluster && changes_user) {
                    let reply: Vec<Value> = invocation.invoke_async(&mut c).await?;
                    return Ok(matches!(reply.first(), Some(Value::Int(1))));
                }
                // Cluster and a change of user: join the new user's index *before* the session
                // says it belongs to that user, so "log out everywhere" can never miss it. If
                // the session write then fails, the new index holds an entry whose session names
                // another user; readers skip it and it is dropped at its absolute deadline.
                if let Some(user) = &new_user {
                    let times: Option<Vec<u8>> = c.hget(&session, F_TIMES).await?;
                    let Some(abs) = times.as_deref().and_then(Times::parse).map(|t| t.abs) else {
                        return Ok(false);
                    };
                    let abs = clamped(abs);
                    let _: i64 = INDEX_ADD_SCRIPT
                        .key(self.inner.keys.user(user))
                        .arg(&now)
                        .arg(&member)
                        .arg(&abs)
                        .invoke_async(&mut c)
                        .await?;
                }
                let reply: Vec<Value> = invocation.invoke_async(&mut c).await?;
                if !matches!(reply.first(), Some(Value::Int(1))) {
                    if let Some(user) = &new_user {
                        let _: () = c.zrem(self.inner.keys.user(user), &member).await?;
                    }
                    return Ok(false);
                }
                let old: Option<String> = match reply.get(1) {
                    Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                    _ => None,
                };
                if let Some(old) = old.filter(|o| Some(o) != new_user.as_ref()) {
                    let _: () = c.zrem(self.inner.keys.user(&old), &member).await?;
                }
                if let Some(user) = &new_user {
                    self.cluster_cap(&mut c, user, &member, &now).await?;
                }
                Ok(true)
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

    async fn retire(&self, key: &SessionKey, until: Timestamp) -> Result<bool, StoreError> {
        let session = self.inner.keys.session(key);
        let now = self.now();
        let until = clamped(until);
        self.inner
            .lanes
            .run(|mut c| async move {
                let done: i64 = RETIRE_SCRIPT
                    .key(&session)
                    .arg(&now)
                    .arg(&until)
                    .invoke_async(&mut c)
                    .await?;
                Ok(done == 1)
            })
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let session = self.inner.keys.session(key);
        let member = key.to_hex();
        let now = self.now();
        let cluster = self.cluster();
        let mode = self.mode();
        self.inner
            .lanes
            .run(|mut c| async move {
                let (live, user): (i64, Option<String>) = DELETE_SCRIPT
                    .key(&session)
                    .arg(&now)
                    .arg(mode)
                    .arg(self.inner.keys.prefix())
                    .arg(&member)
                    .invoke_async(&mut c)
                    .await?;
                if cluster {
                    if let Some(user) = user {
                        // The session is gone already; a failure here leaves an entry that the
                        // next read of the index prunes.
                        let _: () = c.zrem(self.inner.keys.user(&user), &member).await?;
                    }
                }
                Ok(live == 1)
            })
            .await
    }

    async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = self.now();
        let mut out = if self.cluster() {
            self.inner
                .lanes
                .run(|mut c| async move { self.cluster_list(&mut c, user_id, &now).await })
                .await?
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
        // Cluster: the user's sessions live on any node. Read the whole index (not only the
        // live entries: retired sessions must go too), delete each session that still belongs
        // to the user where it lives, then drop the entries.
        self.inner
            .lanes
            .run(|mut c| async move {
                let members: Vec<String> = c.zrange(&idx, 0, -1).await?;
                let targets: Vec<&String> = members.iter().filter(|m| **m != keep).collect();
                let deletes = targets.iter().map(|m| {
                    let mut c = c.clone();
                    let key = self.inner.keys.session_hex(m);
                    let now = &now;
                    async move {
                        DELETE_IF_USER_SCRIPT
                            .key(&key)
                            .arg(now)
                            .arg(user_id)
                            .invoke_async::<i64>(&mut c)
                            .await
                    }
                });
                let results = futures::future::try_join_all(deletes).await?;
                let live = results.iter().filter(|r| **r == 1).count();
                if !targets.is_empty() {
                    let _: () = c.zrem(&idx, &targets).await?;
                }
                Ok(u64::try_from(live).unwrap_or(u64::MAX))
            })
            .await
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
