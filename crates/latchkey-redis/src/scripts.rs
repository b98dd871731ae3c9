//! The Lua scripts: each multi-step change of one session is one `EVALSHA` (one round trip,
//! atomic on the node that holds the session).
//!
//! Times travel as decimal strings of milliseconds since the epoch. Lua compares them as
//! numbers (`tonumber`, exact below 2^53 ms, i.e. for the next 285,000 years) but writes back
//! only the original strings, so a stored deadline is never reformatted.
//!
//! On a single node every lifecycle change is one script: `CREATE` and `CYCLE` check the
//! per-user cap, write the session, index it and evict in one step, and `DELETE` /
//! `DELETE_ALL` follow cycle links. They touch keys they compute from the prefix (the user
//! index, other sessions of the user), which Redis allows outside cluster mode. On a cluster a
//! script touches only `KEYS[1]`, and `cluster.rs` runs the `C_*` scripts in an order that
//! keeps every contract (see there).
//!
//! Session hash fields: `@t` times (`created:seen:idle:abs[:retired]`, or the same behind a
//! `p` while a cluster write is pending: not live), `@u` user, `@m` metadata, `@n` the
//! successor and `@p` the predecessor of a cycle (hex keys), `.<key>` data.

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

/// Helpers for the per-user index, the cap and linked deletes.
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
local function oldest_first(x, y)
  if x[1] ~= y[1] then return x[1] < y[1] end
  return x[2] < y[2]
end
-- Single node: deletes the session `hex` and, transitively, the sessions its cycle links name
-- (with `within` set, only those of that user or of no user), sparing `spare`. Returns whether
-- the first was live, and how many deleted sessions were live, unretired sessions of `within`.
local function del_linked(prefix, hex, now, within, spare)
  local todo, steps, first, counted = {hex}, 0, nil, 0
  while #todo > 0 and steps < 16 do
    steps = steps + 1
    local m = table.remove(todo)
    if m ~= spare then
      local k = session_key(prefix, m)
      local h = redis.call('HMGET', k, '@t', '@u', '@n', '@p')
      local ok = first == nil or not within or not h[2] or h[2] == within
      if ok and redis.call('DEL', k) == 1 then
        if h[2] then redis.call('ZREM', index_key(prefix, h[2]), m) end
        local c, s, i, a, r = split(h[1])
        local live = c and num(expiry(i, a, r)) > num(now)
        if first == nil then first = live and 1 or 0 end
        if within and h[2] == within and live and not r then counted = counted + 1 end
        if h[3] then table.insert(todo, h[3]) end
        if h[4] then table.insert(todo, h[4]) end
      elseif first == nil then
        first = 0
      end
    end
  end
  return first or 0, counted
end
-- Single node: the per-user cap for one more session of `user` (`except`: the session being
-- replaced, not counted). Returns false to refuse, else the evicted members (deleted here).
local function admit(prefix, user, except, cap, policy, now)
  if cap <= 0 then return {} end
  local idx = index_key(prefix, user)
  local z = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
  local live = {}
  for n = 1, #z, 2 do
    local m = z[n]
    if m ~= except then
      local h = redis.call('HMGET', session_key(prefix, m), '@t', '@u')
      local c, s, i, a, r = split(h[1])
      if not h[1] or h[2] ~= user then
        redis.call('ZREM', idx, m)
      elseif c and (not r) and num(expiry(i, a, r)) > num(now) then
        table.insert(live, {num(z[n + 1]), m})
      end
    end
  end
  local excess = #live + 1 - cap
  if excess <= 0 then return {} end
  if policy == 'refuse' then return false end
  table.sort(live, oldest_first)
  local victims = {}
  for n = 1, excess do
    del_linked(prefix, live[n][2], now, nil, except)
    table.insert(victims, live[n][2])
  end
  return victims
end
-- Writes a session hash: `@t`, the field/value pairs ARGV[from ..], TTL at `exp`.
local function put(key, times, from, n, exp)
  hset_with(key, '@t', times, from, n)
  pexat(key, exp)
end
-- Whether a live record exists under `key` (a pending or corrupt one counts as taken).
local function taken(key, now)
  local c, s, i, a, r = split(redis.call('HGET', key, '@t'))
  if c then
    if num(expiry(i, a, r)) > num(now) then return true end
    redis.call('DEL', key)
    return false
  end
  return redis.call('EXISTS', key) == 1
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
";

/// Single-node `create`. KEYS[1] session. ARGV: now, exp, member, abs, cap, policy, prefix,
/// has_user ('1'/'0'), user, times, n (field pairs), then the pairs. Returns {0} (a live session
/// exists: conflict), {2} (cap reached, policy refuse) or {1, evicted members...}.
const CREATE: &str = r"
local now, exp, member, abs, cap, policy, prefix, has_user, user, times, n =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8] == '1',
  ARGV[9], ARGV[10], tonumber(ARGV[11])
if taken(KEYS[1], now) then return {0} end
local victims = {}
if has_user then
  victims = admit(prefix, user, nil, cap, policy, now)
  if not victims then return {2} end
end
put(KEYS[1], times, 12, n, exp)
if has_user then index_add(index_key(prefix, user), member, abs, now) end
return {1, unpack(victims)}
";

/// Single-node `cycle`. KEYS[1] old session, KEYS[2] new session. ARGV: now, until, old member,
/// new member, exp, abs, cap, policy, prefix, has_user ('1'/'0'), user, times, n, then the
/// pairs.
/// Returns {3} (old not live or retired: nothing changed), {0} (conflict), {2} (cap) or
/// {1, evicted members...}.
const CYCLE: &str = r"
local now, u, old, new, exp, abs, cap, policy, prefix, has_user, user, times, n =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9],
  ARGV[10] == '1', ARGV[11], ARGV[12], tonumber(ARGV[13])
local c, s, i, a, r = split(redis.call('HGET', KEYS[1], '@t'))
if not c or r or num(expiry(i, a, r)) <= num(now) then return {3} end
if taken(KEYS[2], now) then return {0} end
local victims = {}
if has_user then
  victims = admit(prefix, user, old, cap, policy, now)
  if not victims then return {2} end
end
put(KEYS[2], times, 14, n, exp)
redis.call('HSET', KEYS[2], '@p', old)
if has_user then index_add(index_key(prefix, user), new, abs, now) end
i = minstr(i, u)
a = minstr(a, u)
redis.call('HSET', KEYS[1], '@t', pack(c, s, i, a, u), '@n', new)
pexat(KEYS[1], expiry(i, a, u))
return {1, unpack(victims)}
";

/// `save` and `touch`: the hot path, a self-contained script (no shared helpers: Lua builds
/// every helper closure again on each call). KEYS[1] session. ARGV: now, clear, last_seen,
/// idle, n_set, n_del, then n_set field/value pairs, then n_del fields. Returns 1, or 0 if
/// there is no live session (nothing changed; a pending `@t` does not match the pattern).
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

/// Single-node `delete`. KEYS[1] session. ARGV: now, prefix, member. Returns 1 if the session
/// was live; deletes its cycle links too.
const DELETE: &str = r"
local live = del_linked(ARGV[2], ARGV[3], ARGV[1], nil, nil)
return live
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
    local h = redis.call('HMGET', session_key(prefix, m), '@u', '@n', '@p')
    if h[1] == user and (keep == '' or (h[2] ~= keep and h[3] ~= keep)) then
      local live, counted = del_linked(prefix, m, now, user, keep)
      n = n + counted
    end
  end
end
return n
";

/// Cluster: write a session hash. KEYS[1] session. ARGV: now, exp, pending ('1': write `@t`
/// behind a `p` with a TTL of at most 30 s, to be activated), prev ('' or the predecessor's
/// member), times, n, then the pairs. Returns 1, or 0 on conflict.
const C_PUT: &str = r"
local now, exp, pending, prev, times, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
if taken(KEYS[1], now) then return 0 end
if pending == '1' then
  times = 'p' .. times
  exp = minstr(exp, tostring(num(now) + 30000))
end
put(KEYS[1], times, 7, n, exp)
if prev ~= '' then redis.call('HSET', KEYS[1], '@p', prev) end
return 1
";

/// Cluster: admit a member into a user index under the cap. KEYS[1] index. ARGV: now, member,
/// score, cap, policy, except ('' for none), then the members not to count (retired, expired,
/// another user's). Returns {2} (refused: nothing added) or {1, evicted members...} (removed
/// from the index here; the caller deletes their sessions).
const C_ADMIT: &str = r"
local now, member, score, cap, policy, except =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local skip = {}
for k = 7, #ARGV do skip[ARGV[k]] = true end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local victims = {}
if cap > 0 then
  local z = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local live = {}
  for n = 1, #z, 2 do
    local m = z[n]
    if m ~= member and m ~= except and not skip[m] then table.insert(live, {num(z[n + 1]), m}) end
  end
  local excess = #live + 1 - cap
  if excess > 0 then
    if policy == 'refuse' then return {2} end
    table.sort(live, oldest_first)
    for n = 1, excess do
      redis.call('ZREM', KEYS[1], live[n][2])
      table.insert(victims, live[n][2])
    end
  end
end
index_add(KEYS[1], member, score, now)
return {1, unpack(victims)}
";

/// Cluster: retire the old side of a cycle. KEYS[1] old session. ARGV: now, until, new member.
/// Returns 1, or 0 (not live, retired already or pending: nothing changed).
const C_RETIRE: &str = r"
local now, u, new = ARGV[1], ARGV[2], ARGV[3]
local c, s, i, a, r = split(redis.call('HGET', KEYS[1], '@t'))
if not c or r or num(expiry(i, a, r)) <= num(now) then return 0 end
i = minstr(i, u)
a = minstr(a, u)
redis.call('HSET', KEYS[1], '@t', pack(c, s, i, a, u), '@n', new)
pexat(KEYS[1], expiry(i, a, u))
return 1
";

/// Cluster: make a pending session live. KEYS[1] session. ARGV: exp. Returns 1, or 0 if it
/// is gone (revoked while pending).
const C_ACTIVATE: &str = r"
local t = redis.call('HGET', KEYS[1], '@t')
if not t or string.sub(t, 1, 1) ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], '@t', string.sub(t, 2))
pexat(KEYS[1], ARGV[1])
return 1
";

/// Cluster: delete one session. KEYS[1] session. ARGV: now, within ('' for anyone: delete;
/// else only a session of that user or of no user), keep ('' or a member: a session linked to
/// it is spared). Returns {status, user or false, next or false, prev or false}; status -1 (no
/// such session), -2 (kept: another user's, or linked to `keep`), 0 (deleted, was expired),
/// 1 (deleted, was live and not retired), 2 (deleted, was live and retired).
const C_DELETE: &str = r"
local now, within, keep = ARGV[1], ARGV[2], ARGV[3]
local h = redis.call('HMGET', KEYS[1], '@t', '@u', '@n', '@p')
if not h[1] and redis.call('EXISTS', KEYS[1]) == 0 then return {-1, false, false, false} end
if within ~= '' and h[2] and h[2] ~= within then return {-2, false, false, false} end
if keep ~= '' and (h[3] == keep or h[4] == keep) then return {-2, false, false, false} end
redis.call('DEL', KEYS[1])
local c, s, i, a, r = split(h[1])
local status = 0
if c and num(expiry(i, a, r)) > num(now) then
  if r then status = 2 else status = 1 end
end
return {status, h[2] or false, h[3] or false, h[4] or false}
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
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, CREATE]));
pub(crate) static CYCLE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, CYCLE]));
pub(crate) static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[SAVE]));
pub(crate) static DELETE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, DELETE]));
pub(crate) static LIST_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, LIST]));
pub(crate) static DELETE_ALL_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, DELETE_ALL]));
pub(crate) static C_PUT_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, C_PUT]));
pub(crate) static C_ADMIT_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, FIELDS, INDEX, C_ADMIT]));
pub(crate) static C_RETIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[BASE, C_RETIRE]));
pub(crate) static C_ACTIVATE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, C_ACTIVATE]));
pub(crate) static C_DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[BASE, C_DELETE]));
pub(crate) static INDEX_READ_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[BASE, INDEX_READ]));
