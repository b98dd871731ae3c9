//! Redis Cluster: the lifecycle changes that span slots. A session, its successor and its user
//! index hash to different slots, so no single script can see them all; the steps below are
//! ordered so that every contract of [`SessionStore`](latchkey_session::SessionStore) still
//! holds (single-node stores do each change in one script instead, see `scripts.rs`).
//!
//! **Storing a session of a user, or a successor** (`create` with a user, `cycle`):
//! 1. `C_PUT` writes it *pending* (`@t` behind a `p`, at most 30 s of TTL): loads, saves,
//!    touches and counts treat it as absent, so nothing can use it yet.
//! 2. `C_ADMIT` adds it to the user index under the cap, atomically on the index's slot: the
//!    index holds every session of the user that is live or pending, so concurrent logins are
//!    counted against each other there. Members the caller found retired or expired are not
//!    counted. Refused → the pending write is deleted. Evicted members leave the index here and
//!    their sessions are deleted (with their links) at the end, whatever happens in between.
//! 3. For a cycle, `C_RETIRE` retires the old session only if it is live and not retired, and
//!    links it to the successor (`@n`). Otherwise the successor is deleted: `SourceGone`.
//! 4. `C_ACTIVATE` makes the successor live, unless a revocation (an eviction by a concurrent
//!    login, "log out everywhere") deleted it meanwhile. The store then still reports it
//!    admitted: it was revoked right after it was stored, which is what the caller would see
//!    had the revocation come a moment later, and any evictions it made are reported.
//!
//! **Deleting** follows `@n`/`@p` links from one session to the next, one slot at a time.
//! A revocation that deletes the old session before step 3 makes the cycle fail; one that
//! deletes it after step 3 finds the link and deletes the successor; "log out everywhere"
//! reads the index, which holds a user's successor from step 2 on. So once a revocation
//! returns, no cycle in flight can leave a live session behind.

use deadpool_redis::redis::{self, AsyncCommands, RedisError, Value};
use latchkey_session::{
    Admission, SessionCap, SessionInfo, SessionKey, SessionRecord, StoreError, Timestamp,
};

use crate::conn::Handle;
use crate::layout::{Times, F_META, F_TIMES, F_USER};
use crate::scripts::{
    C_ACTIVATE_SCRIPT, C_ADMIT_SCRIPT, C_DELETE_SCRIPT, C_PUT_SCRIPT, C_RETIRE_SCRIPT,
    INDEX_READ_SCRIPT,
};
use crate::store::{cap_args, clamped, evicted_keys, info_from, parse_now, RedisStore};

/// The longest chain of cycle links a delete follows.
const MAX_LINKS: usize = 16;

/// How steps 3 and 4 of a store ended.
enum Step {
    Done,
    SourceGone,
}

/// What one `C_DELETE` found.
struct Deleted {
    status: i64,
    user: Option<String>,
    links: [Option<String>; 2],
}

impl RedisStore {
    /// `create` (`prev: None`) and `cycle` on a cluster: the four steps in the module docs.
    pub(crate) async fn cluster_store(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        prev: Option<(&SessionKey, Timestamp)>,
        times: &str,
        fields: &[(String, String)],
        cap: Option<SessionCap>,
    ) -> Result<Admission, StoreError> {
        let member = key.to_hex();
        let session = self.inner.keys.session(key);
        let now = self.now();
        let exp = clamped(record.expires_at());
        let abs = clamped(record.absolute_deadline);
        let pending = record.user_id.is_some() || prev.is_some();
        let prev_hex = prev.map(|(old, _)| old.to_hex()).unwrap_or_default();
        let mut put = C_PUT_SCRIPT.key(&session);
        put.arg(&now)
            .arg(&exp)
            .arg(if pending { "1" } else { "0" })
            .arg(&prev_hex)
            .arg(times)
            .arg(fields.len());
        for (field, value) in fields {
            put.arg(field).arg(value);
        }
        let outcome = self
            .inner
            .lanes
            .run(|mut c| async move {
                let stored: i64 = put.invoke_async(&mut c).await?;
                if stored != 1 {
                    return Ok(None);
                }
                if !pending {
                    return Ok(Some(Admission::admitted()));
                }
                let mut evicted = Vec::new();
                if let Some(user) = &record.user_id {
                    let idx = self.inner.keys.user(user);
                    let skip = if cap.is_some() {
                        self.uncounted(&mut c, user, &idx, &now).await?
                    } else {
                        Vec::new()
                    };
                    let (max, policy) = cap_args(cap);
                    let mut admit = C_ADMIT_SCRIPT.key(&idx);
                    admit
                        .arg(&now)
                        .arg(&member)
                        .arg(&abs)
                        .arg(max)
                        .arg(policy)
                        .arg(&prev_hex);
                    for m in &skip {
                        admit.arg(m);
                    }
                    let reply: Vec<Value> = admit.invoke_async(&mut c).await?;
                    if !matches!(reply.first(), Some(Value::Int(1))) {
                        let _: () = c.del(&session).await?;
                        return Ok(Some(Admission::CapReached));
                    }
                    evicted = evicted_keys(&reply[1..]);
                }
                let result = self
                    .retire_and_activate(&mut c, &session, &member, record, prev, &now, &exp)
                    .await;
                // Evicted members left the index in `C_ADMIT`: their sessions go now, whatever
                // became of this one.
                for victim in &evicted {
                    self.delete_linked(&mut c, &victim.to_hex(), "", "", &now)
                        .await?;
                }
                Ok(Some(match result? {
                    Step::Done => Admission::Admitted { evicted },
                    Step::SourceGone => Admission::SourceGone,
                }))
            })
            .await?;
        outcome.ok_or(StoreError::Conflict)
    }

    /// Steps 3 and 4: retire the old side (if any), then activate. `SourceGone` if the old
    /// side was not live (the pending write is undone).
    #[allow(clippy::too_many_arguments)]
    async fn retire_and_activate(
        &self,
        c: &mut Handle,
        session: &str,
        member: &str,
        record: &SessionRecord,
        prev: Option<(&SessionKey, Timestamp)>,
        now: &str,
        exp: &str,
    ) -> Result<Step, RedisError> {
        if let Some((old, until)) = prev {
            let retired: i64 = C_RETIRE_SCRIPT
                .key(self.inner.keys.session(old))
                .arg(now)
                .arg(clamped(until))
                .arg(member)
                .invoke_async(c)
                .await?;
            if retired != 1 {
                let _: () = c.del(session).await?;
                if let Some(user) = &record.user_id {
                    let _: () = c.zrem(self.inner.keys.user(user), member).await?;
                }
                return Ok(Step::SourceGone);
            }
        }
        // 0: revoked while pending (see the module docs): nothing to undo.
        let _activated: i64 = C_ACTIVATE_SCRIPT
            .key(session)
            .arg(exp)
            .invoke_async(c)
            .await?;
        Ok(Step::Done)
    }

    /// Members of a user index that do not count against the cap: retired, expired or another
    /// user's. Entries whose session is gone are pruned. Pending sessions count (they are
    /// logins in flight).
    async fn uncounted(
        &self,
        c: &mut Handle,
        user_id: &str,
        idx: &str,
        now: &str,
    ) -> Result<Vec<String>, RedisError> {
        let members: Vec<String> = INDEX_READ_SCRIPT.key(idx).arg(now).invoke_async(c).await?;
        let rows = self.read_members(c, &members).await?;
        let now_ts = parse_now(now);
        let mut skip = Vec::new();
        let mut gone = Vec::new();
        for (member, (times, user, _)) in members.into_iter().zip(rows) {
            let Some(times) = times else {
                gone.push(member);
                continue;
            };
            if user.as_deref() != Some(user_id.as_bytes()) {
                skip.push(member);
                continue;
            }
            if times.first() == Some(&b'p') {
                continue;
            }
            match Times::parse(&times) {
                Some(t) if t.retired.is_none() && t.expires_at() > now_ts => {}
                _ => skip.push(member),
            }
        }
        if !gone.is_empty() {
            let _: () = c.zrem(idx, &gone).await?;
        }
        Ok(skip)
    }

    /// `@t`, `@u`, `@m` of each member's session, read concurrently.
    async fn read_members(
        &self,
        c: &mut Handle,
        members: &[String],
    ) -> Result<Vec<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>)>, RedisError> {
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
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut row = row.into_iter();
                (
                    row.next().flatten(),
                    row.next().flatten(),
                    row.next().flatten(),
                )
            })
            .collect())
    }

    /// Deletes the session `member` and, transitively, the sessions its cycle links name
    /// (`within`/`keep` as in `C_DELETE`), keeping the user indexes tidy. Returns the first
    /// session's `C_DELETE` status and how many deleted sessions were live, unretired
    /// sessions of `within`.
    async fn delete_linked(
        &self,
        c: &mut Handle,
        member: &str,
        within: &str,
        keep: &str,
        now: &str,
    ) -> Result<(i64, u64), RedisError> {
        let mut todo = vec![member.to_owned()];
        let mut first = None;
        let mut counted = 0;
        let mut steps = 0;
        while let Some(m) = todo.pop() {
            steps += 1;
            if steps > MAX_LINKS || m == keep {
                continue;
            }
            let reply: Vec<Value> = C_DELETE_SCRIPT
                .key(self.inner.keys.session_hex(&m))
                .arg(now)
                .arg(within)
                .arg(keep)
                .invoke_async(c)
                .await?;
            let deleted = parse_deleted(&reply);
            first.get_or_insert(deleted.status);
            if deleted.status < 0 {
                continue;
            }
            if deleted.status == 1 && !within.is_empty() && deleted.user.as_deref() == Some(within)
            {
                counted += 1;
            }
            if let Some(user) = &deleted.user {
                let _: () = c.zrem(self.inner.keys.user(user), &m).await?;
            }
            todo.extend(deleted.links.into_iter().flatten());
        }
        Ok((first.unwrap_or(-1), counted))
    }

    /// `delete` on a cluster.
    pub(crate) async fn cluster_delete(&self, member: &str) -> Result<bool, StoreError> {
        let now = self.now();
        self.inner
            .lanes
            .run(|mut c| async move {
                let (status, _) = self.delete_linked(&mut c, member, "", "", &now).await?;
                Ok(status >= 1)
            })
            .await
    }

    /// `delete_all_for_user` on a cluster: every member of the index (retired ones and
    /// successors in flight included), each with its links.
    pub(crate) async fn cluster_delete_all(
        &self,
        user_id: &str,
        keep: &str,
        now: &str,
    ) -> Result<u64, StoreError> {
        let idx = self.inner.keys.user(user_id);
        self.inner
            .lanes
            .run(|mut c| async move {
                let members: Vec<String> = c.zrange(&idx, 0, -1).await?;
                let mut deleted = 0;
                for m in members.iter().filter(|m| m.as_str() != keep) {
                    deleted += self.delete_linked(&mut c, m, user_id, keep, now).await?.1;
                }
                Ok(deleted)
            })
            .await
    }

    /// `list_for_user` on a cluster: the index, then each session where it lives; entries
    /// whose session is gone are pruned.
    pub(crate) async fn cluster_list_for_user(
        &self,
        user_id: &str,
        now: &str,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let idx = self.inner.keys.user(user_id);
        self.inner
            .lanes
            .run(|mut c| async move {
                let members: Vec<String> = INDEX_READ_SCRIPT
                    .key(&idx)
                    .arg(now)
                    .invoke_async(&mut c)
                    .await?;
                let rows = self.read_members(&mut c, &members).await?;
                let now_ts = parse_now(now);
                let mut gone = Vec::new();
                let mut out = Vec::new();
                for (member, (times, user, meta)) in members.iter().zip(rows) {
                    let Some(times) = times else {
                        // The session is gone (deleted or expired): its entry can never become
                        // valid again, so prune it.
                        gone.push(member.clone());
                        continue;
                    };
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
            })
            .await
    }
}

fn parse_deleted(reply: &[Value]) -> Deleted {
    let text = |v: Option<&Value>| match v {
        Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
        _ => None,
    };
    Deleted {
        status: match reply.first() {
            Some(Value::Int(n)) => *n,
            _ => -1,
        },
        user: text(reply.get(1)),
        links: [text(reply.get(2)), text(reply.get(3))],
    }
}
