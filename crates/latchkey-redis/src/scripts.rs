//! The Lua scripts: each multi-step change of one session is one `EVALSHA` (one round trip,
//! atomic on the node that holds the session).
//!
//! Times travel as decimal strings of milliseconds since the epoch. Lua compares them as
//! numbers (`tonumber`, exact below 2^53 ms, i.e. for the next 285,000 years) but writes back
//! only the original strings, so a stored deadline is never reformatted.
//!
//! In single-node mode (`ARGV` "mode" = `1`) the scripts also maintain the per-user index in
//! the same step. They then touch keys they compute from the prefix (the user index, and for
//! the per-user cap other sessions of the user), which Redis allows outside cluster mode. In
//! cluster mode (`0`) a script touches only `KEYS[1]`, and the store updates the index in a
//! separate step, ordered so that a failure in between is safe (see `store.rs`).

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

/// Helpers every script needs.
const BASE: &str = r"
local function num(s) return tonumber(s) end
-- The earlier of two decimal-string times, as the original string.
local function minstr(a, b)
  if b and num(b) < num(a) then return b end
  return a
end
-- When a session expires: the earlier of idle deadline, absolute deadline and retirement.
local function expiry(i, a, r) return minstr(minstr(i, a), r) end
-- The @t field: created:seen:idle:abs[:retired]. Returns nil for a malformed value.
local function split(t)
  if not t then return nil end
  local c, s, i, a, r = string.match(t, '^(%d+):(%d+):(%d+):(%d+):?(%d*)$')
  if r == '' then r = false end
  return c, s, i, a, r
end
local function pack(c, s, i, a, r)
  if r then return c .. ':' .. s .. ':' .. i .. ':' .. a .. ':' .. r end
  return c .. ':' .. s .. ':' .. i .. ':' .. a
end
-- PEXPIREAT, clamped to what Redis and Lua numbers handle exactly.
local function pexat(key, t)
  if num(t) > 9007199254740991 then t = '9007199254740991' end
  redis.call('PEXPIREAT', key, t)
end
";

/// Helpers for the per-user index.
const INDEX: &str = r"
local function index_key(prefix, user) return prefix .. 'user:{' .. user .. '}' end
local function session_key(prefix, hex) return prefix .. '{' .. hex .. '}' end
-- Adds a session to a user index (score: its absolute deadline), drops entries of sessions
-- past their absolute deadline, and keeps the index alive as long as its longest session.
local function index_add(idx, member, score, now)
  redis.call('ZADD', idx, score, member)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] then pexat(idx, top[2]) end
end
-- Single node only: enforce the per-user cap by deleting the oldest live sessions of the user
-- other than `keep`, pruning index entries whose session is gone or moved to another user.
local function index_cap(prefix, user, keep, cap, now)
  if cap <= 0 then return end
  local idx = index_key(prefix, user)
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if m ~= keep then
      local h = redis.call('HMGET', session_key(prefix, m), '@t', '@u')
      local c, s, i, a, r = split(h[1])
      if not c or h[2] ~= user then
        redis.call('ZREM', idx, m)
      elseif (not r) and num(expiry(i, a, r)) > num(now) then
        table.insert(live, {num(c), m})
      end
    end
  end
  local excess = #live + 1 - cap
  if excess <= 0 then return end
  table.sort(live, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  for n = 1, excess do
    redis.call('DEL', session_key(prefix, live[n][2]))
    redis.call('ZREM', idx, live[n][2])
  end
end
";

/// Helpers for writing many fields (the Lua stack limits `unpack`).
const FIELDS: &str = r"
-- HSET of field f = v plus ARGV[from .. from + 2*n - 1] as field/value pairs.
local function hset_with(key, f, v, from, n)
  local last = from + 2 * n - 1
  local stop = math.min(from + 199, last)
  if n > 0 then
    redis.call('HSET', key, f, v, unpack(ARGV, from, stop))
  else
    redis.call('HSET', key, f, v)
  end
  local i = stop + 1
  while i <= last do
    stop = math.min(i + 199, last)
    redis.call('HSET', key, unpack(ARGV, i, stop))
    i = stop + 1
  end
end
local function hdel_list(key, list, from, to)
  local i = from
  while i <= to do
    local stop = math.min(i + 199, to)
    redis.call('HDEL', key, unpack(list, i, stop))
    i = stop + 1
  end
end
";

/// `create`. KEYS[1] session. ARGV: now, expires_at, mode, member, abs, cap, prefix,
/// has_user ('1'/'0'), user, times, n (field pairs), then the pairs. Returns 1 (created) or 0
/// (a live session exists: conflict, nothing changed).
const CREATE: &str = r"
local now, exp, mode, member, abs, cap, prefix, has_user, user, times, n =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9],
  ARGV[10], tonumber(ARGV[11])
local c, s, i, a, r = split(redis.call('HGET', KEYS[1], '@t'))
if c then
  if num(expiry(i, a, r)) > num(now) then return 0 end
  redis.call('DEL', KEYS[1])
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
hset_with(KEYS[1], '@t', times, 12, n)
pexat(KEYS[1], exp)
if mode == '1' and has_user == '1' then
  index_add(index_key(prefix, user), member, abs, now)
  index_cap(prefix, user, member, cap, now)
end
return 1
";

/// `save` and `touch` without a change of user or metadata: the hot path, a self-contained
/// script (no shared helpers: Lua builds every helper closure again on each call).
/// KEYS[1] session. ARGV: now, clear, last_seen, idle, n_set, n_del, then n_set field/value
/// pairs, then n_del fields. Returns 1, or 0 if there is no live session (nothing changed).
const SAVE: &str = r"
local t = redis.call('HGET', KEYS[1], '@t')
if not t then return 0 end
local c, s, i, a, r = string.match(t, '^(%d+):(%d+):(%d+):(%d+):?(%d*)$')
if not c then return 0 end
local now = tonumber(ARGV[1])
local ni, na = tonumber(i), tonumber(a)
local e = math.min(ni, na)
if r ~= '' then e = math.min(e, tonumber(r)) end
if e <= now then return 0 end
local n_set, n_del = tonumber(ARGV[5]), tonumber(ARGV[6])
if ARGV[2] == '1' then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 1) == '.' then redis.call('HDEL', KEYS[1], f) end
  end
end
for k = 7 + 2 * n_set, 6 + 2 * n_set + n_del do redis.call('HDEL', KEYS[1], ARGV[k]) end
-- A retired session never lives past its retirement, whatever the caller asks.
local idle = ARGV[4]
if r ~= '' and tonumber(r) < tonumber(idle) then idle = r end
local packed = c .. ':' .. ARGV[3] .. ':' .. idle .. ':' .. a
if r ~= '' then packed = packed .. ':' .. r end
if n_set <= 100 then
  redis.call('HSET', KEYS[1], '@t', packed, unpack(ARGV, 7, 6 + 2 * n_set))
else
  redis.call('HSET', KEYS[1], '@t', packed)
  for k = 7, 6 + 2 * n_set, 2 do redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1]) end
end
local exp = idle
if na < tonumber(exp) then exp = a end
if r ~= '' and tonumber(r) < tonumber(exp) then exp = r end
if tonumber(exp) > 9007199254740991 then exp = '9007199254740991' end
redis.call('PEXPIREAT', KEYS[1], exp)
return 1
";

/// `save` with a change of user or metadata. KEYS[1] session. ARGV: now, mode, prefix, member,
/// cap, clear, last_seen, idle, user_op (0 keep, 1 remove, 2 set), user, meta_op (same), meta,
/// n_set, n_del, then n_set field/value pairs, then n_del fields. Returns {0} if there is no
/// live session (nothing changed), else {1, previous user or false, absolute deadline}.
const SAVE_FULL: &str = r"
local now, mode, prefix, member, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local clear, seen, idle, user_op, user, meta_op, meta =
  ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local n_set, n_del = tonumber(ARGV[13]), tonumber(ARGV[14])
local h = redis.call('HMGET', KEYS[1], '@t', '@u')
local c, s, i, a, r = split(h[1])
if not c or num(expiry(i, a, r)) <= num(now) then return {0} end
if clear == '1' then
  local data = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 1) == '.' then table.insert(data, f) end
  end
  hdel_list(KEYS[1], data, 1, #data)
end
if n_del > 0 then hdel_list(KEYS[1], ARGV, 15 + 2 * n_set, 14 + 2 * n_set + n_del) end
idle = minstr(idle, r)
hset_with(KEYS[1], '@t', pack(c, seen, idle, a, r), 15, n_set)
if user_op == '2' then redis.call('HSET', KEYS[1], '@u', user)
elseif user_op == '1' then redis.call('HDEL', KEYS[1], '@u') end
if meta_op == '2' then redis.call('HSET', KEYS[1], '@m', meta)
elseif meta_op == '1' then redis.call('HDEL', KEYS[1], '@m') end
pexat(KEYS[1], expiry(idle, a, r))
if mode == '1' and user_op ~= '0' then
  local old = h[2]
  local new = nil
  if user_op == '2' then new = user end
  if old ~= new then
    if old then redis.call('ZREM', index_key(prefix, old), member) end
    if new then
      index_add(index_key(prefix, new), member, a, now)
      index_cap(prefix, new, member, cap, now)
    end
  end
end
return {1, h[2] or false, a}
";

/// `retire`. KEYS[1] session. ARGV: now, until. Returns 1, or 0 if there is no live session.
/// Both deadlines become at most `until`, and the retirement never moves later.
const RETIRE: &str = r"
local now, u = ARGV[1], ARGV[2]
local c, s, i, a, r = split(redis.call('HGET', KEYS[1], '@t'))
if not c or num(expiry(i, a, r)) <= num(now) then return 0 end
u = minstr(u, r)
i = minstr(i, u)
a = minstr(a, u)
redis.call('HSET', KEYS[1], '@t', pack(c, s, i, a, u))
pexat(KEYS[1], expiry(i, a, u))
return 1
";

/// `delete`. KEYS[1] session. ARGV: now, mode, prefix, member. Returns {live (0/1), user or
/// false}; {0, false} when there was nothing to delete.
const DELETE: &str = r"
local now, mode, prefix, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local h = redis.call('HMGET', KEYS[1], '@t', '@u')
if redis.call('DEL', KEYS[1]) == 0 then return {0, false} end
local c, s, i, a, r = split(h[1])
local live = 0
if c and num(expiry(i, a, r)) > num(now) then live = 1 end
if mode == '1' and h[2] then redis.call('ZREM', index_key(prefix, h[2]), member) end
return {live, h[2] or false}
";

/// Cluster `delete_all_for_user`, per session. KEYS[1] session. ARGV: now, user. Deletes the
/// session only if it still belongs to `user`. Returns 1 (deleted, was live and not retired),
/// 0 (deleted, was expired or retired), -1 (no such session), -2 (belongs to someone else:
/// kept).
const DELETE_IF_USER: &str = r"
local now, user = ARGV[1], ARGV[2]
local h = redis.call('HMGET', KEYS[1], '@t', '@u')
if not h[1] and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if h[2] ~= user then return -2 end
redis.call('DEL', KEYS[1])
local c, s, i, a, r = split(h[1])
if c and (not r) and num(expiry(i, a, r)) > num(now) then return 1 end
return 0
";

/// Single-node `list_for_user`. KEYS[1] user index. ARGV: now, prefix, user. Prunes entries
/// whose session is gone or belongs to another user; returns a flat array of member, times,
/// meta-or-false for each live, non-retired session.
const LIST: &str = r"
local now, prefix, user = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HMGET', session_key(prefix, m), '@t', '@u', '@m')
  local c, s, i, a, r = split(h[1])
  if not c or h[2] ~= user then
    redis.call('ZREM', KEYS[1], m)
  elseif (not r) and num(expiry(i, a, r)) > num(now) then
    table.insert(out, m)
    table.insert(out, h[1])
    table.insert(out, h[3] or false)
  end
end
return out
";

/// Single-node `delete_all_for_user`. KEYS[1] user index. ARGV: now, prefix, user, keep
/// ('' for none). Returns how many live, non-retired sessions were deleted.
const DELETE_ALL: &str = r"
local now, prefix, user, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= keep then
    local k = session_key(prefix, m)
    local h = redis.call('HMGET', k, '@t', '@u')
    if h[2] == user then
      redis.call('DEL', k)
      local c, s, i, a, r = split(h[1])
      if c and (not r) and num(expiry(i, a, r)) > num(now) then n = n + 1 end
    end
    redis.call('ZREM', KEYS[1], m)
  end
end
return n
";

/// Cluster: add one session to a user index. KEYS[1] index. ARGV: now, member, score.
const INDEX_ADD: &str = r"
index_add(KEYS[1], ARGV[2], ARGV[3], ARGV[1])
return 1
";

/// Cluster: drop entries past their absolute deadline and return the rest. KEYS[1] index.
/// ARGV: now.
const INDEX_READ: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

fn script(parts: &[&str]) -> Script {
    Script::new(&parts.concat())
}

pub(crate) static CREATE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX, FIELDS, CREATE]));
pub(crate) static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[SAVE]));
pub(crate) static SAVE_FULL_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX, FIELDS, SAVE_FULL]));
pub(crate) static RETIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[BASE, RETIRE]));
pub(crate) static DELETE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX, DELETE]));
pub(crate) static DELETE_IF_USER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, DELETE_IF_USER]));
pub(crate) static LIST_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[BASE, INDEX, LIST]));
pub(crate) static DELETE_ALL_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX, DELETE_ALL]));
pub(crate) static INDEX_ADD_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX, INDEX_ADD]));
pub(crate) static INDEX_READ_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX_READ]));
