//! [`RedisThrottleStore`]: login budgets on Redis, shared by every instance of a service.

use std::fmt;
use std::sync::Arc;

use deadpool_redis::redis::Script;
use latchkey_session::StoreError;
use latchkey_throttle::{
    async_trait, Decision, Rule, ThrottleError, ThrottleKey, ThrottleStore, Timestamp,
};

use crate::conn::Lanes;
use crate::store::RedisStore;

/// One attempt on one budget, the arithmetic of `latchkey_throttle::Rule` in Lua. KEYS[1] the
/// budget (a string `attempts:last:until`, milliseconds). ARGV: now, free attempts, base delay,
/// max delay, forget-after (ms). Returns {0, until, 0} (in back-off: unchanged) or {1, attempts,
/// delay}. One key, so one slot: atomic on a cluster too.
const ATTEMPT: &str = r"
local now, free, base, maxd, forget =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n, last, untl = 0, 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local a, l, u = string.match(v, '^(%d+):(%d+):(%d+)$')
  if a then
    n, last, untl = tonumber(a), tonumber(l), tonumber(u)
    if now < untl then return {0, u, '0'} end
    if now - last >= forget then n = 0 end
  end
end
n = n + 1
local delay = 0
if n >= free then
  local d = n - free
  if d > 40 then d = 40 end
  delay = math.min(base * (2 ^ d), maxd)
end
untl = now + delay
local expires = math.max(untl, now + forget)
redis.call('SET', KEYS[1], string.format('%d:%d:%d', n, now, untl), 'PXAT', string.format('%d', expires))
return {1, n, string.format('%d', delay)}
";

/// Gives back one counted attempt (`latchkey_throttle::Rule::refund`). KEYS[1] the budget;
/// ARGV: base delay, max delay, forget-after, free attempts (ms). A missing or unreadable budget
/// is left alone. One key: atomic on a cluster too.
const REFUND: &str = r"
local base, maxd, forget, free =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local a, l = string.match(v, '^(%d+):(%d+):%d+$')
if not a then return 0 end
local n, last = tonumber(a), tonumber(l)
if n > 0 then n = n - 1 end
local delay = 0
if n >= free then
  local d = n - free
  if d > 40 then d = 40 end
  delay = math.min(base * (2 ^ d), maxd)
end
local untl = last + delay
local expires = math.max(untl, last + forget)
redis.call('SET', KEYS[1], string.format('%d:%d:%d', n, last, untl), 'PXAT', string.format('%d', expires))
return 1
";

/// A [`ThrottleStore`] on Redis or Redis Cluster, sharing a [`RedisStore`]'s connections,
/// prefix and timeouts. Each budget is one key, `<prefix>throttle:{<64-hex hash>}`, written by
/// one script per attempt (atomic, Cluster-safe) and expiring by its own TTL once its back-off
/// is over and it is forgotten.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_redis::{RedisStore, RedisStoreConfig, RedisThrottleStore};
/// use latchkey_throttle::Throttle;
///
/// let sessions = RedisStore::new(RedisStoreConfig::single("redis://127.0.0.1:6379").build()?)?;
/// let throttle = Throttle::builder(Arc::new(RedisThrottleStore::new(&sessions))).build()?;
/// # drop(throttle);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "throttle")))]
pub struct RedisThrottleStore {
    lanes: Arc<Lanes>,
    prefix: String,
    script: Arc<Script>,
    refund: Arc<Script>,
}

impl RedisThrottleStore {
    /// A throttle store on the connections of `sessions` (no new connection is opened).
    #[must_use]
    pub fn new(sessions: &RedisStore) -> Self {
        Self {
            lanes: Arc::clone(&sessions.inner.lanes),
            prefix: format!("{}throttle:", sessions.inner.keys.prefix()),
            script: Arc::new(Script::new(ATTEMPT)),
            refund: Arc::new(Script::new(REFUND)),
        }
    }

    /// The Redis key of `key`'s budget, for operators and tests.
    #[must_use]
    pub fn key_name(&self, key: &ThrottleKey) -> String {
        format!("{}{{{}}}", self.prefix, key.hex())
    }
}

impl fmt::Debug for RedisThrottleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisThrottleStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn throttle_error(err: StoreError) -> ThrottleError {
    match err {
        StoreError::Timeout => ThrottleError::Timeout,
        StoreError::Corrupt(source) => ThrottleError::Corrupt(source),
        StoreError::Unavailable(source) => ThrottleError::Unavailable(source),
        other => ThrottleError::Unavailable(Box::new(other)),
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl ThrottleStore for RedisThrottleStore {
    async fn attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        rule: &Rule,
    ) -> Result<Decision, ThrottleError> {
        let mut invocation = self.script.key(self.key_name(key));
        invocation
            .arg(now.as_unix_millis())
            .arg(rule.free_attempts)
            .arg(ms(rule.base_delay))
            .arg(ms(rule.max_delay))
            .arg(ms(rule.forget_after));
        let reply: (i64, u64, Option<u64>) = self
            .lanes
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
            .map_err(throttle_error)?;
        Ok(match reply {
            (0, until, _) => Decision::Blocked {
                until: Timestamp::from_unix_millis(until),
            },
            (_, attempts, delay) => {
                let delay = delay.unwrap_or(0);
                Decision::Counted {
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    until: (delay > 0)
                        .then(|| now.saturating_add(std::time::Duration::from_millis(delay))),
                }
            }
        })
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), ThrottleError> {
        let name = self.key_name(key);
        self.lanes
            .run(|mut c| async move {
                deadpool_redis::redis::cmd("DEL")
                    .arg(&name)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
            .map_err(throttle_error)
    }

    async fn refund(&self, key: &ThrottleKey, rule: &Rule) -> Result<(), ThrottleError> {
        let mut invocation = self.refund.key(self.key_name(key));
        invocation
            .arg(ms(rule.base_delay))
            .arg(ms(rule.max_delay))
            .arg(ms(rule.forget_after))
            .arg(rule.free_attempts);
        self.lanes
            .run(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
            .await
            .map_err(throttle_error)?;
        Ok(())
    }
}
