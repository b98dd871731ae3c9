//! [`RedisTokenStore`]: the `latchkey-tokens` [`TokenStore`] on Redis and Redis Cluster.
//!
//! Layout, every key of one subject sharing the hash tag `{<subject tag hex>}` (one Cluster
//! slot), so each operation is one script on keys of one slot:
//!
//! - `<prefix>tok:{<tag>}:f:<family>` — a hash per family: `s` subject, `c` claims, `g`
//!   generation, `r` last rotation, `i` idle deadline, `a` absolute deadline, `e` the subject
//!   epoch it was born in, `x` = `1` once revoked. TTL: until `min(i, a)` (kept, as revoked,
//!   after a logout or a reuse, so the answer is `Revoked`, not `Unknown`).
//! - `<prefix>tok:{<tag>}:e` — the subject's epoch counter (absent = 0), created by the first
//!   "log out everywhere"; its TTL outlives every family of the subject.
//! - `<prefix>tok:{<tag>}:j:<jti>` — a denied access token, holding its `exp`; TTL until then.
//!
//! Times are seconds since the epoch from the service's clock, passed as arguments: the scripts
//! decide expiry by them, and the TTLs (relative to the same `now`) only collect garbage.
#![cfg(feature = "tokens")]
#![cfg_attr(docsrs, doc(cfg(feature = "tokens")))]

use std::fmt;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use deadpool_redis::redis::{self, Script};
use latchkey_tokens::store::{
    AccessCheck, AccessStatus, Epoch, FamilyView, NewFamily, RotateOutcome, RotateRequest,
    StoreError, TokenStore,
};
use latchkey_tokens::{FamilyId, SubjectTag};

use crate::config::RedisStoreConfig;
use crate::conn::Lanes;
use crate::error::ConfigError;

const HELPERS: &str = r"
local function num(s) return tonumber(s) end
-- Sets a TTL of `secs` (at least 1) seconds.
local function ttl(key, secs)
  if secs < 1 then secs = 1 end
  redis.call('EXPIRE', key, string.format('%d', secs))
end
-- Raises the TTL to `secs` if it is lower (or unset).
local function keep(key, secs)
  local t = redis.call('TTL', key)
  if t < secs then ttl(key, secs) end
end
local function str(n) return string.format('%d', n) end
";

/// KEYS: family, epoch. ARGV: now, subject, claims, idle deadline, absolute deadline.
/// Returns `{0}` on conflict, else `{1, epoch}`.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now, i, a = num(ARGV[1]), num(ARGV[4]), num(ARGV[5])
local e = redis.call('GET', KEYS[2]) or '0'
redis.call('HSET', KEYS[1], 's', ARGV[2], 'c', ARGV[3], 'g', '1', 'r', ARGV[1],
  'i', ARGV[4], 'a', ARGV[5], 'e', e)
ttl(KEYS[1], math.min(i, a) - now)
if e ~= '0' then keep(KEYS[2], a - now) end
return {1, e}
";

/// KEYS: family, epoch. ARGV: now, presented, idle, grace.
const ROTATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 's', 'c', 'g', 'r', 'i', 'a', 'e', 'x')
if not f[1] then return {'unknown'} end
local e = redis.call('GET', KEYS[2]) or '0'
if f[8] == '1' or f[7] ~= e then return {'revoked'} end
local now, g, r, i, a = num(ARGV[1]), num(f[3]), num(f[4]), num(f[5]), num(f[6])
if now >= math.min(i, a) then return {'expired'} end
local p = num(ARGV[2])
if p > g then return {'unknown'} end
local elapsed = now - r
if elapsed < 0 then elapsed = 0 end
if p == g then
  g = g + 1
  i = math.min(now + num(ARGV[3]), a)
  redis.call('HSET', KEYS[1], 'g', str(g), 'r', ARGV[1], 'i', str(i))
  ttl(KEYS[1], math.min(i, a) - now)
  return {'rotated', str(g), f[1], f[2], e, str(math.min(i, a))}
end
if p + 1 == g and elapsed < num(ARGV[4]) then
  return {'replayed', str(g), f[1], f[2], e, str(math.min(i, a))}
end
redis.call('HSET', KEYS[1], 'x', '1')
return {'reused', f[1], ARGV[2], str(g), str(elapsed)}
";

/// KEYS: family, epoch. ARGV: now. Returns 1 if the family was live.
const REVOKE_FAMILY: &str = r"
local f = redis.call('HMGET', KEYS[1], 'i', 'a', 'e', 'x')
if not f[1] then return 0 end
local e = redis.call('GET', KEYS[2]) or '0'
local live = f[4] ~= '1' and f[3] == e and num(ARGV[1]) < math.min(num(f[1]), num(f[2]))
redis.call('HSET', KEYS[1], 'x', '1')
if live then return 1 end
return 0
";

/// KEYS: epoch. ARGV: now, keep until. Returns the new epoch.
const REVOKE_SUBJECT: &str = r"
local seq = redis.call('INCR', KEYS[1])
keep(KEYS[1], num(ARGV[2]) - num(ARGV[1]))
return seq
";

/// KEYS: jti. ARGV: now, until.
const DENY: &str = r"
local now, untl = num(ARGV[1]), num(ARGV[2])
if now >= untl then return 0 end
local old = redis.call('GET', KEYS[1])
if old and num(old) >= untl then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
ttl(KEYS[1], untl - now)
return 1
";

/// KEYS: epoch, family, jti. ARGV: now, epoch to match ('' = no check), family check, jti check.
/// Returns 0 active, 1 subject revoked, 2 family revoked, 3 token revoked.
const CHECK: &str = r"
local now = num(ARGV[1])
local e = redis.call('GET', KEYS[1]) or '0'
if ARGV[2] ~= '' and ARGV[2] ~= e then return 1 end
if ARGV[3] == '1' then
  local f = redis.call('HMGET', KEYS[2], 'i', 'a', 'e', 'x')
  if not f[1] or f[4] == '1' or f[3] ~= e or now >= math.min(num(f[1]), num(f[2])) then
    return 2
  end
end
if ARGV[4] == '1' then
  local u = redis.call('GET', KEYS[3])
  if u and now < num(u) then return 3 end
end
return 0
";

fn script(body: &str) -> Script {
    Script::new(&[HELPERS, body].concat())
}

static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CREATE));
static ROTATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(ROTATE));
static REVOKE_FAMILY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVOKE_FAMILY));
static REVOKE_SUBJECT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVOKE_SUBJECT));
static DENY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(DENY));
static CHECK_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CHECK));

/// A [`TokenStore`] on Redis or Redis Cluster (feature `tokens`). Cheap to clone.
///
/// Built from the same [`RedisStoreConfig`] as [`RedisStore`](crate::RedisStore) (URL or
/// cluster seeds, key prefix, timeouts); it connects lazily. Every method is one script on keys
/// of one hash slot — the family's key, and its subject's epoch and deny-list keys, which share
/// its hash tag — so each is atomic on a single node and on a cluster alike. Keys expire with
/// the deadlines they hold.
///
/// ```no_run
/// use std::sync::Arc;
/// use latchkey_redis::tokens::RedisTokenStore;
/// use latchkey_redis::RedisStoreConfig;
/// use latchkey_tokens::TokenStore;
///
/// let config = RedisStoreConfig::single("redis://127.0.0.1:6379").key_prefix("myapp:").build()?;
/// let store: Arc<dyn TokenStore> = Arc::new(RedisTokenStore::new(config)?);
/// # let _ = store;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisTokenStore {
    lanes: Arc<Lanes>,
    prefix: String,
    config: Arc<RedisStoreConfig>,
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("config", &self.config)
            .field("lanes", &self.lanes)
            .finish()
    }
}

fn map_err(err: latchkey_session::StoreError) -> StoreError {
    match err {
        latchkey_session::StoreError::Timeout => StoreError::Timeout,
        latchkey_session::StoreError::Corrupt(source) => StoreError::Corrupt(source),
        latchkey_session::StoreError::Unavailable(source) => StoreError::Unavailable(source),
        other => StoreError::Unavailable(Box::new(other)),
    }
}

/// A reply or record the store cannot decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed token store record: {0}")]
struct Malformed(&'static str);

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt(Box::new(Malformed(what)))
}

fn number(s: Option<&String>, what: &'static str) -> Result<u64, StoreError> {
    s.and_then(|s| s.parse().ok()).ok_or_else(|| corrupt(what))
}

impl RedisTokenStore {
    /// A store for `config`. Opens no connection yet: the first call does.
    ///
    /// # Errors
    /// [`ConfigError::Client`] if the redis client or the pool refuses the configuration.
    pub fn new(config: RedisStoreConfig) -> Result<Self, ConfigError> {
        let lanes = Lanes::new(&config)?;
        Ok(Self {
            lanes,
            prefix: format!("{}tok:", config.key_prefix),
            config: Arc::new(config),
        })
    }

    /// The name of the Redis key that holds `family` (for operators and tests).
    #[must_use]
    pub fn family_key_name(&self, family: &FamilyId) -> String {
        format!(
            "{}{{{}}}:f:{}",
            self.prefix,
            family.subject_tag().to_hex(),
            family.to_base64url()
        )
    }

    fn epoch_key(&self, tag: &SubjectTag) -> String {
        format!("{}{{{}}}:e", self.prefix, tag.to_hex())
    }

    fn jti_key(&self, tag: &SubjectTag, jti: &str) -> String {
        format!("{}{{{}}}:j:{jti}", self.prefix, tag.to_hex())
    }

    async fn invoke<T: redis::FromRedisValue + Send + 'static>(
        &self,
        invocation: redis::ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.lanes
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
            .map_err(map_err)
    }
}

fn view(reply: &[String]) -> Result<FamilyView, StoreError> {
    match reply {
        [_, g, s, c, e, exp] => Ok(FamilyView::new(
            number(Some(g), "generation")?,
            s.clone(),
            c.clone(),
            number(Some(e), "epoch")?,
            number(Some(exp), "deadline")?,
        )),
        _ => Err(corrupt("rotate reply")),
    }
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn create_family(
        &self,
        family: &FamilyId,
        record: &NewFamily,
    ) -> Result<FamilyView, StoreError> {
        let mut invocation = CREATE_SCRIPT.prepare_invoke();
        invocation
            .key(self.family_key_name(family))
            .key(self.epoch_key(&family.subject_tag()))
            .arg(record.created_at)
            .arg(&record.subject)
            .arg(&record.claims)
            .arg(record.idle_deadline)
            .arg(record.absolute_deadline);
        let reply: Vec<String> = self.invoke(invocation).await?;
        match reply.as_slice() {
            [ok, e] if ok == "1" => Ok(FamilyView::new(
                1,
                record.subject.clone(),
                record.claims.clone(),
                number(Some(e), "epoch")?,
                record.idle_deadline.min(record.absolute_deadline),
            )),
            [conflict] if conflict == "0" => Err(StoreError::Conflict),
            _ => Err(corrupt("create reply")),
        }
    }

    async fn rotate(
        &self,
        family: &FamilyId,
        request: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError> {
        let mut invocation = ROTATE_SCRIPT.prepare_invoke();
        invocation
            .key(self.family_key_name(family))
            .key(self.epoch_key(&family.subject_tag()))
            .arg(request.now)
            .arg(request.presented)
            .arg(request.idle)
            .arg(request.grace);
        let reply: Vec<String> = self.invoke(invocation).await?;
        let Some(kind) = reply.first() else {
            return Err(corrupt("rotate reply"));
        };
        Ok(match kind.as_str() {
            "rotated" => RotateOutcome::Rotated(view(&reply)?),
            "replayed" => RotateOutcome::Replayed(view(&reply)?),
            "reused" => match reply.as_slice() {
                [_, s, p, g, elapsed] => RotateOutcome::Reused {
                    subject: s.clone(),
                    presented: number(Some(p), "generation")?,
                    current: number(Some(g), "generation")?,
                    elapsed: number(Some(elapsed), "elapsed")?,
                },
                _ => return Err(corrupt("rotate reply")),
            },
            "expired" => RotateOutcome::Expired,
            "revoked" => RotateOutcome::Revoked,
            "unknown" => RotateOutcome::Unknown,
            _ => return Err(corrupt("rotate reply")),
        })
    }

    async fn revoke_family(&self, family: &FamilyId, now: u64) -> Result<bool, StoreError> {
        let mut invocation = REVOKE_FAMILY_SCRIPT.prepare_invoke();
        invocation
            .key(self.family_key_name(family))
            .key(self.epoch_key(&family.subject_tag()))
            .arg(now);
        let live: i64 = self.invoke(invocation).await?;
        Ok(live == 1)
    }

    async fn revoke_subject(
        &self,
        subject: &SubjectTag,
        now: u64,
        keep_until: u64,
    ) -> Result<Epoch, StoreError> {
        let mut invocation = REVOKE_SUBJECT_SCRIPT.prepare_invoke();
        invocation
            .key(self.epoch_key(subject))
            .arg(now)
            .arg(keep_until);
        let seq: u64 = self.invoke(invocation).await?;
        Ok(Epoch::new(seq))
    }

    async fn deny_jti(
        &self,
        subject: &SubjectTag,
        jti: &str,
        now: u64,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut invocation = DENY_SCRIPT.prepare_invoke();
        invocation
            .key(self.jti_key(subject, jti))
            .arg(now)
            .arg(until);
        let _: i64 = self.invoke(invocation).await?;
        Ok(())
    }

    async fn check_access(&self, check: &AccessCheck<'_>) -> Result<AccessStatus, StoreError> {
        let tag = check.subject;
        let family = check.family.map_or_else(
            || format!("{}{{{}}}:f:", self.prefix, tag.to_hex()),
            |f| self.family_key_name(f),
        );
        let mut invocation = CHECK_SCRIPT.prepare_invoke();
        invocation
            .key(self.epoch_key(&tag))
            .key(family)
            .key(self.jti_key(&tag, check.jti.unwrap_or_default()))
            .arg(check.now)
            .arg(check.epoch.map_or_else(String::new, |e| e.to_string()))
            .arg(if check.family.is_some() { "1" } else { "0" })
            .arg(if check.jti.is_some() { "1" } else { "0" });
        let status: i64 = self.invoke(invocation).await?;
        Ok(match status {
            0 => AccessStatus::Active,
            1 => AccessStatus::SubjectRevoked,
            2 => AccessStatus::FamilyRevoked,
            3 => AccessStatus::TokenRevoked,
            _ => return Err(corrupt("check reply")),
        })
    }
}
