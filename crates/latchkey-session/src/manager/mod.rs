//! [`SessionManager`]: every session policy, framework-agnostic.
//!
//! The pieces, in the order a request meets them: [`builder`] (the configuration, validated
//! once), [`SessionManager::session`] (reads the request's headers, no store access), the
//! [`handle`] a handler works with ([`Session`]), its per-request [`state`], and [`finish`]
//! (the decision table that turns the request's changes into store writes and a response).
//! Errors and audit events live in [`error`].

mod builder;
mod error;
mod finish;
mod handle;
mod state;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use builder::SessionManagerBuilder;
pub use error::{ConfigError, SessionError, SessionEvent, StoreUnavailablePolicy};
pub use finish::{Finish, RequestOutcome, SessionResponse};
pub use handle::{Device, Session};

use crate::cookie::{CookieSettings, Signer, MAX_COOKIE_VALUE_LEN};
use crate::{
    Admission, Clock, CookieKey, SameSite, SessionCap, SessionId, SessionKey, SessionRecord,
    SessionStore, StoreError, SystemClock, Timestamp,
};
use error::EventHook;
use handle::SessionInner;
use state::{State, Transport};

/// How many fresh IDs `create` is tried with before a conflict is reported (a conflict between
/// two 256-bit random IDs means the random number generator is broken).
const CREATE_ATTEMPTS: usize = 3;

struct ManagerInner {
    store: Arc<dyn SessionStore>,
    signer: Signer,
    cookie: CookieSettings,
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    /// Touch when less than this much of the idle timeout remains.
    touch_below: Duration,
    cycle_grace: Duration,
    unavailable: StoreUnavailablePolicy,
    per_user_cap: Option<SessionCap>,
    hook: Option<EventHook>,
    header_name: Option<String>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ManagerInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.store)
            .field("keys", &self.signer)
            .field("cookie", &self.cookie)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("touch_below", &self.touch_below)
            .field("cycle_grace", &self.cycle_grace)
            .field("unavailable", &self.unavailable)
            .field("per_user_cap", &self.per_user_cap)
            .field("hook", &self.hook.as_ref().map(|_| "Fn(&SessionEvent)"))
            .field("header_name", &self.header_name)
            .field("clock", &self.clock)
            .finish()
    }
}

impl ManagerInner {
    pub(super) fn emit(&self, event: SessionEvent) {
        tracing::debug!(?event, "session event");
        if let Some(hook) = &self.hook {
            hook(&event);
        }
    }

    /// The live record of `id`, with its store key and the time it was found live.
    #[inline]
    pub(super) async fn load_record(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionKey, SessionRecord, Timestamp)>, StoreError> {
        let key = id.key();
        match self.store.load(&key).await {
            Ok(Some(record)) => {
                let now = self.clock.now();
                if record.is_expired(now) {
                    self.emit(SessionEvent::ExpiredOnRead { key });
                    Ok(None)
                } else {
                    Ok(Some((key, record, now)))
                }
            }
            Ok(None) => Ok(None),
            Err(StoreError::Corrupt(source)) => {
                tracing::warn!(%key, error = %source, "corrupt session record treated as no session");
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Stores `record` under a fresh ID — a new session (`from: None`) or the successor of a
    /// cycled one — retrying on collision; returns the ID, its store key (hashed once here,
    /// not again by the caller) and what the store decided.
    async fn store_under_fresh_id(
        &self,
        record: &SessionRecord,
        from: Option<(&SessionKey, Timestamp)>,
    ) -> Result<(SessionId, SessionKey, Admission), StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate();
            let key = id.key();
            let stored = match from {
                None => self.store.create(&key, record, self.per_user_cap).await,
                Some((old, retire_until)) => {
                    self.store
                        .cycle(old, &key, record, retire_until, self.per_user_cap)
                        .await
                }
            };
            match stored {
                Ok(admission) => {
                    if let Admission::Admitted { evicted } = &admission {
                        self.emit_evictions(evicted, record.user_id.as_deref());
                    }
                    return Ok((id, key, admission));
                }
                Err(StoreError::Conflict) => {
                    tracing::warn!("session key collision on create; retrying with a fresh ID");
                }
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict)
    }

    fn emit_evictions(&self, evicted: &[SessionKey], user_id: Option<&str>) {
        if let Some(user_id) = user_id {
            for key in evicted {
                self.emit(SessionEvent::Revoked {
                    key: *key,
                    user_id: user_id.to_owned(),
                });
            }
        }
    }

    fn max_age_secs(&self, expires_at: Timestamp) -> u64 {
        let remaining = expires_at.saturating_duration_since(self.clock.now());
        remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0)
    }

    fn issue(
        &self,
        id: &SessionId,
        key: SessionKey,
        expires_at: Timestamp,
        transport: Transport,
    ) -> SessionResponse {
        let token = self.signer.sign(id);
        match transport {
            Transport::Header => SessionResponse {
                set_cookie: None,
                issued: self.header_name.is_some().then_some(key),
                header: self.header_name.clone().map(|name| (name, token)),
            },
            Transport::Cookie => SessionResponse {
                set_cookie: Some(self.cookie.set(&token, self.max_age_secs(expires_at))),
                header: None,
                issued: Some(key),
            },
        }
    }

    fn removal(&self, transport: Transport) -> SessionResponse {
        match transport {
            Transport::Cookie => SessionResponse {
                set_cookie: Some(self.cookie.removal()),
                header: None,
                issued: None,
            },
            Transport::Header => SessionResponse::default(),
        }
    }

    /// Maps a store error at the end of the request through the unavailable policy.
    fn write_failed(
        &self,
        err: StoreError,
        what: &'static str,
    ) -> Result<SessionResponse, SessionError> {
        match self.unavailable {
            StoreUnavailablePolicy::Fail => Err(SessionError::Store(err)),
            StoreUnavailablePolicy::Anonymous => {
                tracing::warn!(error = %err, what, "session store failed; continuing without saving the session");
                Ok(SessionResponse::default())
            }
        }
    }
}

/// All session policy, independent of any web framework. Cheap to clone (an `Arc` inside).
///
/// An adapter calls [`session`](Self::session) with the request's headers before the handler
/// (no store access), hands the [`Session`] to the handler, and calls
/// [`Session::finish`] after it to learn which `Set-Cookie` (if any) to send. `finish`
/// decides, by policy:
///
/// | What the request did | Store operation | Response |
/// |---|---|---|
/// | never touched the session, or only read it (no cookie) | none | nothing |
/// | wrote to a session that did not exist | `create` (fresh ID) | `Set-Cookie` |
/// | wrote to an existing session | `save` (only the changes) | `Set-Cookie` if persistent |
/// | only read, < threshold of the idle timeout left | `touch` | `Set-Cookie` if persistent |
/// | `cycle_id()` / `login()` | `cycle`: new ID, old one retired (grace) | `Set-Cookie` |
/// | `cycle_id()` / `login()` on a session revoked meanwhile | none (the `cycle` is refused) | removal cookie |
/// | `destroy()` / `logout()` | `delete` (and its cycle links) | removal cookie |
/// | emptied an existing session | `delete` | removal cookie |
/// | the handler answered 5xx ([`RequestOutcome::ServerError`]) | only a `destroy()` is carried out | removal cookie after `destroy()`, else nothing |
///
/// A session nothing was ever written to is never stored and never gets a cookie.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_session::{CookieKey, MemoryStore, RequestHeaders, RequestOutcome, SessionManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = CookieKey::from_secret(&[42; 32])?; // load 32+ random bytes from your secrets
/// let manager = SessionManager::builder(Arc::new(MemoryStore::new()), key).build()?;
///
/// // Request 1: no cookie yet; the handler logs the user in.
/// let session = manager.session(RequestHeaders::new());
/// session.login("alice").await?;
/// session.insert("theme", &"dark").await?;
/// let response = session.finish(RequestOutcome::Success).await?;
/// let set_cookie = response.set_cookie().expect("a new session sends a cookie");
///
/// // Request 2: the browser sends the cookie back.
/// let cookie = set_cookie.as_str().split(';').next().unwrap();
/// let session = manager.session(RequestHeaders::new().cookie(cookie.as_bytes()));
/// assert_eq!(session.user_id().await?.as_deref(), Some("alice"));
/// assert_eq!(session.get::<String>("theme").await?.as_deref(), Some("dark"));
/// // Read-only: no write, no cookie.
/// assert!(session.finish(RequestOutcome::Success).await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionManager {
    inner: Arc<ManagerInner>,
}

/// The request headers a [`SessionManager`] reads, by name: the raw `Cookie` header and, if
/// [`session_header`](SessionManagerBuilder::session_header) is enabled, the raw value of that
/// header. Its `Debug` output shows only which headers are present, never their values.
///
/// ```
/// use latchkey_session::RequestHeaders;
///
/// let headers = RequestHeaders::new().cookie(b"id=abc; theme=dark");
/// assert_eq!(format!("{headers:?}"), "RequestHeaders { cookie: true, session_header: false }");
/// ```
#[derive(Clone, Copy, Default)]
#[must_use]
pub struct RequestHeaders<'a> {
    cookie: Option<&'a [u8]>,
    session_header: Option<&'a [u8]>,
}

impl<'a> RequestHeaders<'a> {
    /// No headers: a request without a session.
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw `Cookie` header value (all cookies of the request, as sent).
    #[inline]
    pub fn cookie(mut self, value: &'a [u8]) -> Self {
        self.cookie = Some(value);
        self
    }

    /// The raw value of the session header (see
    /// [`SessionManager::session_header_name`]); ignored unless the header transport is enabled.
    #[inline]
    pub fn session_header(mut self, value: &'a [u8]) -> Self {
        self.session_header = Some(value);
        self
    }
}

impl fmt::Debug for RequestHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHeaders")
            .field("cookie", &self.cookie.is_some())
            .field("session_header", &self.session_header.is_some())
            .finish()
    }
}

impl SessionManager {
    /// Starts a configuration with the store and the key that signs cookies.
    pub fn builder(store: Arc<dyn SessionStore>, signing_key: CookieKey) -> SessionManagerBuilder {
        SessionManagerBuilder {
            store,
            keys: vec![signing_key],
            cookie: CookieSettings {
                name: "id".to_owned(),
                http_only: true,
                secure: true,
                same_site: SameSite::Lax,
                path: "/".to_owned(),
                domain: None,
                persistent: false,
            },
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(7 * 24 * 60 * 60),
            touch_threshold: 0.5,
            cycle_grace: Duration::from_secs(10),
            unavailable: StoreUnavailablePolicy::Fail,
            per_user_cap: None,
            hook: None,
            header_name: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The session of one request, from its headers. Does not touch the store: loading
    /// happens on first use, and [`Session::finish`] ends it.
    ///
    /// Anything that does not verify — malformed, unsigned, wrongly signed, oversized,
    /// non-UTF-8 — simply means "no session" (logged at debug level, without the value).
    pub fn session(&self, headers: RequestHeaders<'_>) -> Session {
        let m = &self.inner;
        let (incoming, transport) = match (m.header_name.is_some(), headers.session_header) {
            (true, Some(value)) => {
                let id = if value.len() > MAX_COOKIE_VALUE_LEN {
                    tracing::debug!(len = value.len(), "oversized session header ignored");
                    None
                } else if value.is_empty() {
                    None
                } else {
                    m.signer.verify(trim(value))
                };
                (id, Transport::Header)
            }
            _ => (
                headers
                    .cookie
                    .and_then(|h| m.signer.find_in_cookie_header(h, &m.cookie.name)),
                Transport::Cookie,
            ),
        };
        Session::new(SessionInner {
            manager: Arc::clone(&self.inner),
            state: Mutex::new(State::new(incoming, transport)),
        })
    }

    /// Deletes every session of `user_id` ("log out everywhere", e.g. after a password
    /// change), and with them every cycle in flight from one of them. Returns how many were
    /// deleted. Once it returns, none of them can be loaded or brought back by a request
    /// that was in flight.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if the store fails.
    pub async fn revoke_all_for_user(&self, user_id: &str) -> Result<u64, SessionError> {
        let count = self
            .inner
            .store
            .delete_all_for_user(user_id, None)
            .await
            .map_err(SessionError::Store)?;
        self.inner.emit(SessionEvent::RevokedAll {
            user_id: user_id.to_owned(),
            count,
        });
        Ok(count)
    }

    /// The store behind this manager.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The session cookie's name.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie.name
    }

    /// The session header's name (lowercase), if the header transport is enabled.
    #[must_use]
    pub fn session_header_name(&self) -> Option<&str> {
        self.inner.header_name.as_deref()
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
