//! The end of a request: [`Session::finish`] turns what the handler did into store writes and
//! the headers to send, following the decision table on [`SessionManager`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::state::{Phase, State, Stored, Transport};
use super::ManagerInner;
use crate::{
    Admission, Delta, SessionError, SessionEvent, SessionId, SessionKey, SessionRecord, SetCookie,
    StoreUnavailablePolicy, Timestamp,
};
#[cfg(doc)]
use crate::{Session, SessionManager};

/// How the handler's response went, as [`Session::finish`] needs to know it.
///
/// On [`ServerError`](Self::ServerError) (the handler answered 5xx) the request's session
/// *changes* are not stored — no data write, no new session, no login or ID change, no
/// rolling touch — as users of tower-sessions expect: a failed request should not leave
/// half its effects behind. A `destroy()`/`logout()` still takes effect, and revocations
/// (`revoke_device`, `revoke_other_devices`, `revoke_all_for_user`) happened when they were
/// called: "log out" never depends on the rest of the handler succeeding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// Any status but 5xx. The default.
    #[default]
    Success,
    /// A 5xx response.
    ServerError,
}

impl RequestOutcome {
    /// The outcome of a response with HTTP status `status`.
    ///
    /// ```
    /// use latchkey_session::RequestOutcome;
    /// assert_eq!(RequestOutcome::from_status(404), RequestOutcome::Success);
    /// assert_eq!(RequestOutcome::from_status(503), RequestOutcome::ServerError);
    /// ```
    #[must_use]
    #[inline]
    pub fn from_status(status: u16) -> Self {
        if (500..600).contains(&status) {
            Self::ServerError
        } else {
            Self::Success
        }
    }
}

type BoxedFinish = Pin<Box<dyn Future<Output = Result<SessionResponse, SessionError>> + Send>>;

/// The future returned by [`Session::finish`]. When the request needs no store access (most
/// requests only read their session) it is ready at once and allocates nothing; otherwise
/// it runs the store writes.
#[must_use = "a session is only written when `finish` is awaited"]
pub struct Finish {
    state: FinishState,
}

enum FinishState {
    /// Nothing to write and nothing to send.
    Done,
    Writing(BoxedFinish),
}

impl Finish {
    pub(super) fn ready() -> Self {
        Self {
            state: FinishState::Done,
        }
    }

    pub(super) fn writing(future: BoxedFinish) -> Self {
        Self {
            state: FinishState::Writing(future),
        }
    }

    /// Whether the result is available without waiting: no store access was needed, and the
    /// result is then always an empty [`SessionResponse`] — an adapter may drop the `Finish`
    /// and send the handler's response unchanged, without polling it.
    #[must_use]
    #[inline]
    pub fn is_ready(&self) -> bool {
        matches!(self.state, FinishState::Done)
    }
}

impl fmt::Debug for Finish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finish")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Future for Finish {
    type Output = Result<SessionResponse, SessionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FinishState::Done => Poll::Ready(Ok(SessionResponse::default())),
            FinishState::Writing(future) => future.as_mut().poll(cx),
        }
    }
}

/// What [`Session::finish`] asks the adapter to add to the response. Its `Debug` output
/// contains no session ID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionResponse {
    pub(super) set_cookie: Option<SetCookie>,
    pub(super) header: Option<(String, String)>,
    pub(super) issued: Option<SessionKey>,
}

impl SessionResponse {
    /// The `Set-Cookie` header to add, if any.
    #[must_use]
    pub fn set_cookie(&self) -> Option<&SetCookie> {
        self.set_cookie.as_ref()
    }

    /// `(header name, signed token)` to add for a client using the session header, if any.
    #[must_use]
    pub fn session_header(&self) -> Option<(&str, &str)> {
        self.header.as_ref().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The store key of the session this response hands to the client (a new or cycled
    /// session, or a persistent cookie renewed), if it hands one.
    ///
    /// For a handler that finishes its session itself, before it answers, and must then act
    /// on the stored record: a login that re-checks the password once its session exists,
    /// and deletes that session ([`SessionStore::delete`](crate::SessionStore::delete)) if
    /// the password changed meanwhile.
    #[must_use]
    pub fn issued_key(&self) -> Option<SessionKey> {
        self.issued
    }

    /// Whether there is nothing to add.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set_cookie.is_none() && self.header.is_none()
    }
}

impl fmt::Debug for SessionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionResponse")
            .field("set_cookie", &self.set_cookie)
            .field("issued", &self.issued.is_some())
            .field(
                "header",
                &self.header.as_ref().map(|(n, _)| (n, "[redacted]")),
            )
            .finish()
    }
}

impl ManagerInner {
    /// The store writes `finish` decided on, and the response that follows.
    pub(super) async fn finish_writes(
        &self,
        st: State,
        outcome: RequestOutcome,
    ) -> Result<SessionResponse, SessionError> {
        let m = self;
        let now = m.clock.now();
        let transport = st.transport;

        if st.destroy {
            let key = st
                .stored
                .as_ref()
                .map(|s| s.key)
                .or_else(|| st.incoming.as_ref().map(SessionId::key));
            let Some(key) = key else {
                return Ok(SessionResponse::default());
            };
            match m.store.delete(&key).await {
                Ok(true) => m.emit(SessionEvent::Destroyed { key }),
                Ok(false) => {}
                Err(err) => {
                    if m.unavailable == StoreUnavailablePolicy::Fail {
                        return Err(SessionError::Store(err));
                    }
                    tracing::warn!(error = %err, "could not delete a destroyed session; it expires on its own");
                }
            }
            return Ok(m.removal(transport));
        }

        if outcome == RequestOutcome::ServerError {
            if st.is_modified() || st.cycle {
                tracing::debug!(
                    "handler answered 5xx: this request's session changes were not stored"
                );
            }
            return Ok(SessionResponse::default());
        }

        match st.phase {
            Phase::Unloaded => return Ok(SessionResponse::default()),
            Phase::Degraded => {
                if st.is_modified() {
                    tracing::warn!(
                        "session store unavailable: this request's session changes were dropped"
                    );
                }
                return Ok(SessionResponse::default());
            }
            Phase::Loaded => {}
        }

        let is_empty = st.data.is_empty() && st.user_id.is_none();
        let modified = st.is_modified();
        let Some(stored) = st.stored else {
            // A new session: stored only if something was written to it.
            if is_empty {
                return Ok(SessionResponse::default());
            }
            let absolute = now.saturating_add(m.absolute_lifetime);
            let mut record = SessionRecord::new(
                now,
                now.saturating_add(m.idle_timeout).min(absolute),
                absolute,
            );
            record.data = st.data;
            record.user_id.clone_from(&st.user_id);
            record.metadata = st.metadata.unwrap_or_default();
            let (id, key, admission) = match m.store_under_fresh_id(&record, None).await {
                Ok(stored) => stored,
                Err(err) => return m.write_failed(err, "create"),
            };
            return match admission {
                Admission::Admitted { .. } => {
                    m.emit(SessionEvent::Created { key });
                    if let (true, Some(user_id)) = (st.logged_in, st.user_id) {
                        m.emit(SessionEvent::LoggedIn { key, user_id });
                    }
                    Ok(m.issue(&id, key, record.expires_at(), transport))
                }
                Admission::CapReached => Err(SessionError::TooManySessions),
                // `create` never answers this; treat it as "nothing stored".
                _ => Ok(SessionResponse::default()),
            };
        };

        if is_empty && (modified || st.cycle) {
            // Emptied by the handler: no empty sessions.
            return match m.store.delete(&stored.key).await {
                Ok(_) => Ok(m.removal(transport)),
                Err(err) => m.write_failed(err, "delete emptied session"),
            };
        }

        let idle_deadline = m.idle_deadline_at(&stored, now);

        if st.cycle {
            let mut record =
                SessionRecord::new(stored.created_at, idle_deadline, stored.absolute_deadline);
            record.last_seen = now;
            record.data = st.data;
            record.user_id.clone_from(&st.user_id);
            record.metadata = if st.logged_in {
                st.metadata.unwrap_or(stored.metadata)
            } else {
                stored.metadata
            };
            let until = now.saturating_add(m.cycle_grace);
            let (id, new, admission) = match m
                .store_under_fresh_id(&record, Some((&stored.key, until)))
                .await
            {
                Ok(stored) => stored,
                Err(err) => return m.write_failed(err, "cycle"),
            };
            return match admission {
                Admission::Admitted { .. } => {
                    m.emit(SessionEvent::Cycled {
                        old: stored.key,
                        new,
                    });
                    if let (true, Some(user_id)) = (st.logged_in, st.user_id) {
                        m.emit(SessionEvent::LoggedIn { key: new, user_id });
                    }
                    Ok(m.issue(&id, new, record.expires_at(), transport))
                }
                Admission::CapReached => Err(SessionError::TooManySessions),
                // Revoked, logged out or rotated by another request while this one ran: the
                // session is over, and this request must not start a new one from its copy.
                _ => {
                    tracing::debug!(key = %stored.key, "session gone or retired before its ID could change; not recreated");
                    Ok(m.removal(transport))
                }
            };
        }

        let incoming = st.incoming.unwrap_or_else(|| stored.id.clone());
        if modified {
            let mut delta = Delta::new(now, idle_deadline);
            delta.clear = st.cleared;
            delta.changes = st.changes;
            return match m.store.save(&stored.key, &delta).await {
                Ok(true) => Ok(m.refresh(&incoming, stored.key, idle_deadline, transport)),
                Ok(false) => {
                    tracing::debug!(key = %stored.key, "session vanished during the request (revoked or expired); not recreated");
                    Ok(m.removal(transport))
                }
                Err(err) => m.write_failed(err, "save"),
            };
        }

        // Only read: rolling expiry, throttled.
        if m.touch_due(&stored, now) {
            match m.store.touch(&stored.key, now, idle_deadline).await {
                Ok(true) => return Ok(m.refresh(&incoming, stored.key, idle_deadline, transport)),
                Ok(false) => {}
                // A failed touch only shortens the session; it is not worth failing the request.
                Err(err) => {
                    tracing::warn!(error = %err, "could not extend the session's idle deadline")
                }
            }
        }
        Ok(SessionResponse::default())
    }
}

impl ManagerInner {
    /// True when `finish` has nothing to do for `st`: a failed request that did not destroy its
    /// session, an unused or degraded session, or a loaded one that was only read and whose idle deadline needs no extension yet (judged
    /// at the time it was loaded). Must agree with `finish_writes`, which answers these
    /// cases the same way, without writing.
    #[inline]
    pub(super) fn nothing_to_write(&self, st: &State, outcome: RequestOutcome) -> bool {
        if st.destroy {
            return false;
        }
        if outcome == RequestOutcome::ServerError {
            return true;
        }
        match st.phase {
            Phase::Unloaded => true,
            Phase::Degraded => !st.is_modified(),
            Phase::Loaded => {
                let Some(stored) = &st.stored else {
                    return st.data.is_empty() && st.user_id.is_none();
                };
                if st.cycle || st.is_modified() {
                    return false;
                }
                !self.touch_due(stored, stored.loaded_at)
            }
        }
    }

    /// The idle deadline a request at `now` gives `stored`: one idle timeout later, never past
    /// the absolute deadline.
    #[inline]
    pub(super) fn idle_deadline_at(&self, stored: &Stored, now: Timestamp) -> Timestamp {
        now.saturating_add(self.idle_timeout)
            .min(stored.absolute_deadline)
    }

    /// The rolling-expiry rule for a session that was only read: extend it when less than the
    /// touch threshold of its idle timeout remains and the deadline would actually move.
    #[inline]
    fn touch_due(&self, stored: &Stored, now: Timestamp) -> bool {
        let remaining = stored.idle_deadline.saturating_duration_since(now);
        remaining < self.touch_below && self.idle_deadline_at(stored, now) > stored.idle_deadline
    }

    /// After a save or touch: persistent cookies get a fresh `Max-Age`; browser-session cookies
    /// and header clients need nothing.
    fn refresh(
        &self,
        id: &SessionId,
        key: SessionKey,
        idle_deadline: Timestamp,
        transport: Transport,
    ) -> SessionResponse {
        if transport == Transport::Cookie && self.cookie.persistent {
            self.issue(id, key, idle_deadline, transport)
        } else {
            SessionResponse::default()
        }
    }
}
