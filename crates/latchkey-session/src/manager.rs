//! [`SessionManager`]: every session policy, framework-agnostic; and the per-request
//! [`Session`] handle.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::cookie::{is_attribute_value, is_token, CookieSettings, Signer, MAX_COOKIE_VALUE_LEN};
use crate::{
    Clock, CookieKey, Delta, SameSite, SessionData, SessionId, SessionInfo, SessionKey,
    SessionMetadata, SessionRecord, SessionStore, SetCookie, StoreError, SystemClock, Timestamp,
};

/// How many fresh IDs `create` is tried with before a conflict is reported (a conflict between
/// two 256-bit random IDs means the random number generator is broken).
const CREATE_ATTEMPTS: usize = 3;

/// What the manager does when the store cannot be reached (or times out, or is full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUnavailablePolicy {
    /// Return [`SessionError::Store`] from the session call and from
    /// [`SessionManager::finish`]; adapters answer `503 Service Unavailable`. The default.
    #[default]
    Fail,
    /// Carry on as an anonymous request: the session reads as empty, changes made to it are
    /// dropped at the end of the request (logged at `warn`), and no cookie is changed, so the
    /// client keeps its session for when the store is back. Operations that cannot be faked
    /// (login, cycling the ID, the device list) still fail with [`SessionError::Degraded`].
    Anonymous,
}

/// What `login` does when the user already has `max_sessions_per_user` sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionCapPolicy {
    /// Revoke the user's oldest sessions (by creation time) to make room. The default.
    #[default]
    RevokeOldest,
    /// Refuse the new login with [`SessionError::TooManySessions`].
    Refuse,
}

/// A lifecycle event, for audit logs. Events carry [`SessionKey`]s (hashes), never IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new session was stored.
    Created {
        /// The new session.
        key: SessionKey,
    },
    /// A user logged in; `key` is the session's new key (login always cycles the ID).
    LoggedIn {
        /// The session after the login.
        key: SessionKey,
        /// Who logged in.
        user_id: String,
    },
    /// The session's ID was rotated; the data moved from `old` to `new`.
    Cycled {
        /// The retired key (readable for the grace period, then gone).
        old: SessionKey,
        /// The new key.
        new: SessionKey,
    },
    /// One session of a user was revoked (per-user cap, or a remote logout from the device list).
    Revoked {
        /// The revoked session.
        key: SessionKey,
        /// Its user.
        user_id: String,
    },
    /// All sessions of a user (but possibly the current one) were revoked.
    RevokedAll {
        /// The user.
        user_id: String,
        /// How many sessions were deleted.
        count: u64,
    },
    /// The store returned a record that the manager's clock says has expired (clocks of the
    /// application and of the store disagree); it was treated as no session.
    ExpiredOnRead {
        /// The expired session.
        key: SessionKey,
    },
    /// The session was destroyed (logout).
    Destroyed {
        /// The destroyed session.
        key: SessionKey,
    },
}

type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync + 'static>;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed; [`SessionError::is_unavailable`] tells whether to answer 503.
    #[error("session store error")]
    Store(#[source] StoreError),
    /// The store was unavailable when this request's session was loaded and the app chose
    /// [`StoreUnavailablePolicy::Anonymous`]; this operation needs the store.
    #[error("session store unavailable earlier in this request")]
    Degraded,
    /// A value could not be serialized to, or deserialized from, JSON.
    #[error("session value could not be converted")]
    Data(#[source] serde_json::Error),
    /// `login` refused: the user already has the maximum number of sessions
    /// ([`SessionCapPolicy::Refuse`]).
    #[error("too many sessions for this user")]
    TooManySessions,
    /// The operation needs a logged-in user.
    #[error("no user is logged in to this session")]
    NotLoggedIn,
}

impl SessionError {
    /// Whether this means "the session store cannot serve requests now": adapters answer 503.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(err) => err.is_unavailable(),
            Self::Degraded => true,
            _ => false,
        }
    }
}

/// A configuration the builder refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is not an RFC 7230 token.
    #[error("invalid cookie name")]
    InvalidCookieName,
    /// The `Path` or `Domain` attribute contains characters that are not allowed.
    #[error("invalid cookie {0} attribute")]
    InvalidCookieAttribute(&'static str),
    /// `SameSite=None` without `Secure` is rejected by browsers.
    #[error("SameSite=None requires Secure")]
    SameSiteNoneWithoutSecure,
    /// A timeout or lifetime is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The rolling-touch threshold is outside `(0, 1]`.
    #[error("rolling touch threshold must be in (0, 1]")]
    InvalidTouchThreshold,
    /// The session header name is not a valid header name.
    #[error("invalid session header name")]
    InvalidHeaderName,
    /// `max_sessions_per_user(0, ..)` would forbid every login.
    #[error("max sessions per user must be at least 1")]
    ZeroSessionCap,
}

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
    per_user_cap: Option<(usize, SessionCapPolicy)>,
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
    fn emit(&self, event: SessionEvent) {
        tracing::debug!(?event, "session event");
        if let Some(hook) = &self.hook {
            hook(&event);
        }
    }

    /// The live record of `id`, with its store key and the time it was found live.
    async fn load_record(
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

    /// Stores `record` under a fresh ID, retrying on collision; returns the ID and its store key
    /// (hashed once here, not again by the caller).
    async fn create_with_fresh_id(
        &self,
        record: &SessionRecord,
    ) -> Result<(SessionId, SessionKey), StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate();
            let key = id.key();
            match self.store.create(&key, record).await {
                Ok(()) => return Ok((id, key)),
                Err(StoreError::Conflict) => {
                    tracing::warn!("session key collision on create; retrying with a fresh ID");
                }
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict)
    }

    fn max_age_secs(&self, expires_at: Timestamp) -> u64 {
        let remaining = expires_at.saturating_duration_since(self.clock.now());
        remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0)
    }

    fn issue(
        &self,
        id: &SessionId,
        expires_at: Timestamp,
        transport: Transport,
    ) -> SessionResponse {
        let token = self.signer.sign(id);
        match transport {
            Transport::Header => SessionResponse {
                set_cookie: None,
                header: self.header_name.clone().map(|name| (name, token)),
            },
            Transport::Cookie => SessionResponse {
                set_cookie: Some(self.cookie.set(&token, self.max_age_secs(expires_at))),
                header: None,
            },
        }
    }

    fn removal(&self, transport: Transport) -> SessionResponse {
        match transport {
            Transport::Cookie => SessionResponse {
                set_cookie: Some(self.cookie.removal()),
                header: None,
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

/// Builds a [`SessionManager`]; every setting has a safe default. See [`SessionManager::builder`].
#[must_use]
pub struct SessionManagerBuilder {
    store: Arc<dyn SessionStore>,
    keys: Vec<CookieKey>,
    cookie: CookieSettings,
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    touch_threshold: f64,
    cycle_grace: Duration,
    unavailable: StoreUnavailablePolicy,
    per_user_cap: Option<(usize, SessionCapPolicy)>,
    hook: Option<EventHook>,
    header_name: Option<String>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SessionManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManagerBuilder")
            .field("store", &self.store)
            .field("keys", &self.keys.len())
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl SessionManagerBuilder {
    /// Also accept cookies signed with `key` (key rotation: the first key signs, any verifies).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use latchkey_session::{CookieKey, MemoryStore, SessionManager};
    /// let new = CookieKey::from_secret(&[2; 32]).unwrap();
    /// let old = CookieKey::from_secret(&[1; 32]).unwrap();
    /// let manager = SessionManager::builder(Arc::new(MemoryStore::new()), new)
    ///     .verification_key(old)
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn verification_key(mut self, key: CookieKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Cookie name (default `id`). Must be an RFC 7230 token; `__Host-` prefixed names are fine.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }

    /// `Secure` attribute (default `true`). Turn off only for plain-HTTP local development.
    pub fn secure(mut self, secure: bool) -> Self {
        self.cookie.secure = secure;
        self
    }

    /// `HttpOnly` attribute (default `true`): scripts cannot read the cookie.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }

    /// `SameSite` attribute (default [`SameSite::Lax`]).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// `Path` attribute (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// `Domain` attribute (default none: host-only cookie).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// `true`: a persistent cookie with `Max-Age` = the session's remaining lifetime, re-sent
    /// whenever the session is written or touched. `false` (the default): a browser-session
    /// cookie, dropped when the browser closes; the server-side deadlines apply either way.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.cookie.persistent = persistent;
        self
    }

    /// Idle timeout (default 30 minutes): a session not used for this long expires.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Absolute lifetime (default 7 days) from creation; nothing extends it, not even cycling.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_lifetime = lifetime;
        self
    }

    /// Rolling expiry: a request that only reads the session extends its idle deadline (one
    /// `touch`) when less than this fraction of the idle timeout remains. Default `0.5`; `1.0`
    /// touches on every request.
    pub fn rolling_touch_threshold(mut self, fraction: f64) -> Self {
        self.touch_threshold = fraction;
        self
    }

    /// How long a rotated-away ID stays readable for requests already in flight (default 10 s).
    /// Zero retires it at once.
    pub fn cycle_grace(mut self, grace: Duration) -> Self {
        self.cycle_grace = grace;
        self
    }

    /// What to do when the store is unavailable (default [`StoreUnavailablePolicy::Fail`]).
    pub fn store_unavailable(mut self, policy: StoreUnavailablePolicy) -> Self {
        self.unavailable = policy;
        self
    }

    /// At most `max` sessions per user, enforced at `login` by `policy`. Unlimited by default.
    pub fn max_sessions_per_user(mut self, max: usize, policy: SessionCapPolicy) -> Self {
        self.per_user_cap = Some((max, policy));
        self
    }

    /// Call `hook` with every [`SessionEvent`]. It runs on the request path: keep it quick
    /// (e.g. send to a channel).
    pub fn event_hook(mut self, hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Also accept the signed session token in the request header `name` (for API and mobile
    /// clients; off by default). A request that carries this header at all — any value, even
    /// empty, to start a session — is answered through the same header instead of a cookie.
    pub fn session_header(mut self, name: impl Into<String>) -> Self {
        self.header_name = Some(name.into());
        self
    }

    /// The clock deadlines are computed with (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an invalid cookie name or attribute, `SameSite=None` without
    /// `Secure`, a zero timeout, a touch threshold outside `(0, 1]`, an invalid header name or a
    /// zero per-user cap.
    pub fn build(self) -> Result<SessionManager, ConfigError> {
        if !is_token(&self.cookie.name) {
            return Err(ConfigError::InvalidCookieName);
        }
        if !is_attribute_value(&self.cookie.path) {
            return Err(ConfigError::InvalidCookieAttribute("Path"));
        }
        if let Some(domain) = &self.cookie.domain {
            if !is_attribute_value(domain) {
                return Err(ConfigError::InvalidCookieAttribute("Domain"));
            }
        }
        if self.cookie.same_site == SameSite::None && !self.cookie.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("idle timeout"));
        }
        if self.absolute_lifetime.is_zero() {
            return Err(ConfigError::ZeroDuration("absolute lifetime"));
        }
        if !(self.touch_threshold > 0.0 && self.touch_threshold <= 1.0) {
            return Err(ConfigError::InvalidTouchThreshold);
        }
        if let Some(name) = &self.header_name {
            if !is_token(name) {
                return Err(ConfigError::InvalidHeaderName);
            }
        }
        if matches!(self.per_user_cap, Some((0, _))) {
            return Err(ConfigError::ZeroSessionCap);
        }
        let touch_below = self.idle_timeout.mul_f64(self.touch_threshold);
        Ok(SessionManager {
            inner: Arc::new(ManagerInner {
                store: self.store,
                signer: Signer::new(self.keys),
                cookie: self.cookie,
                idle_timeout: self.idle_timeout,
                absolute_lifetime: self.absolute_lifetime,
                touch_below,
                cycle_grace: self.cycle_grace,
                unavailable: self.unavailable,
                per_user_cap: self.per_user_cap,
                hook: self.hook,
                header_name: self.header_name.map(|h| h.to_ascii_lowercase()),
                clock: self.clock,
            }),
        })
    }
}

/// All session policy, independent of any web framework. Cheap to clone (an `Arc` inside).
///
/// An adapter calls [`load_from_headers`](Self::load_from_headers) before the handler (no store
/// access), hands the [`Session`] to the handler, and calls [`finish`](Self::finish) after it
/// to learn which `Set-Cookie` (if any) to send. `finish` decides, by policy:
///
/// | What the request did | Store operation | Response |
/// |---|---|---|
/// | never touched the session, or only read it (no cookie) | none | nothing |
/// | wrote to a session that did not exist | `create` (fresh ID) | `Set-Cookie` |
/// | wrote to an existing session | `save` (only the changes) | `Set-Cookie` if persistent |
/// | only read, < threshold of the idle timeout left | `touch` | `Set-Cookie` if persistent |
/// | `cycle_id()` / `login()` | `create` new ID, `retire` old (grace) | `Set-Cookie` |
/// | `destroy()` / `logout()` | `delete` | removal cookie |
/// | emptied an existing session | `delete` | removal cookie |
///
/// A session nothing was ever written to is never stored and never gets a cookie.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_session::{CookieKey, MemoryStore, SessionManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = CookieKey::from_secret(&[42; 32])?; // load 32+ random bytes from your secrets
/// let manager = SessionManager::builder(Arc::new(MemoryStore::new()), key).build()?;
///
/// // Request 1: no cookie yet; the handler logs the user in.
/// let session = manager.load_from_headers(None, None);
/// session.login("alice").await?;
/// session.insert("theme", &"dark").await?;
/// let response = manager.finish(&session).await?;
/// let set_cookie = response.set_cookie().expect("a new session sends a cookie");
///
/// // Request 2: the browser sends the cookie back.
/// let cookie = set_cookie.as_str().split(';').next().unwrap();
/// let session = manager.load_from_headers(Some(cookie.as_bytes()), None);
/// assert_eq!(session.user_id().await?.as_deref(), Some("alice"));
/// assert_eq!(session.get::<String>("theme").await?.as_deref(), Some("dark"));
/// assert!(manager.finish(&session).await?.is_empty()); // read-only: no write, no cookie
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionManager {
    inner: Arc<ManagerInner>,
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

    /// The session of one request, from the raw `Cookie` header value and (if enabled) the
    /// session header value. Does not touch the store: loading happens on first use.
    ///
    /// Anything that does not verify — malformed, unsigned, wrongly signed, oversized,
    /// non-UTF-8 — simply means "no session" (logged at debug level, without the value).
    #[must_use]
    pub fn load_from_headers(
        &self,
        cookie_header: Option<&[u8]>,
        session_header: Option<&[u8]>,
    ) -> Session {
        let m = &self.inner;
        let (incoming, transport) = match (m.header_name.is_some(), session_header) {
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
                cookie_header.and_then(|h| m.signer.find_in_cookie_header(h, &m.cookie.name)),
                Transport::Cookie,
            ),
        };
        Session {
            inner: Arc::new(SessionInner {
                manager: Arc::clone(&self.inner),
                state: Mutex::new(State::new(incoming, transport)),
            }),
        }
    }

    /// Applies the policy after the handler ran (see the table on [`SessionManager`]) and
    /// returns what to add to the response. Calling it again for the same session returns an
    /// empty response; changes made after it are ignored.
    ///
    /// A failed write never loses the session: the store is left as it was and the client's
    /// cookie is not changed.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] when a store write fails and the policy is
    /// [`StoreUnavailablePolicy::Fail`].
    pub async fn finish(&self, session: &Session) -> Result<SessionResponse, SessionError> {
        if self.finish_without_store(session) {
            return Ok(SessionResponse::default());
        }
        let st = {
            let mut guard = session.state();
            if guard.finished {
                return Ok(SessionResponse::default());
            }
            guard.finished = true;
            std::mem::replace(&mut *guard, State::finished())
        };
        // Boxed: this future stays small for the common request that only read its session,
        // at the price of one allocation next to a store write.
        Box::pin(self.finish_writes(st)).await
    }

    /// [`finish`](Self::finish) for the case that needs no store access, done synchronously:
    /// when the session was never used, or was only read and its idle deadline is not due
    /// for extension, it is finished (there is nothing to add to the response) and `true`
    /// is returned. Otherwise nothing happens and `false` says that
    /// [`finish`](Self::finish) must run. Adapters use it to skip allocating a future for
    /// the requests that make up most traffic.
    ///
    /// Whether a read-only session is due for extension is judged at the time it was loaded.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use latchkey_session::{CookieKey, MemoryStore, SessionManager};
    /// # let manager = SessionManager::builder(
    /// #     Arc::new(MemoryStore::new()),
    /// #     CookieKey::from_secret(&[7; 32]).unwrap(),
    /// # ).build().unwrap();
    /// let session = manager.load_from_headers(None, None);
    /// // The handler never used its session: nothing to store, no cookie.
    /// assert!(manager.finish_without_store(&session));
    /// ```
    #[must_use]
    pub fn finish_without_store(&self, session: &Session) -> bool {
        let mut guard = session.state();
        if guard.finished {
            return true;
        }
        if !self.inner.nothing_to_write(&guard) {
            return false;
        }
        // Nothing to take out of the state: marking it is enough to ignore later changes.
        guard.finished = true;
        true
    }

    /// The store writes [`finish`](Self::finish) decided on, and the response that follows.
    async fn finish_writes(&self, st: State) -> Result<SessionResponse, SessionError> {
        let m = &*self.inner;
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
            let (id, key) = match m.create_with_fresh_id(&record).await {
                Ok(created) => created,
                Err(err) => return m.write_failed(err, "create"),
            };
            m.emit(SessionEvent::Created { key });
            if let (true, Some(user_id)) = (st.logged_in, st.user_id) {
                m.emit(SessionEvent::LoggedIn { key, user_id });
            }
            return Ok(m.issue(&id, record.expires_at(), transport));
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
            let (id, new) = match m.create_with_fresh_id(&record).await {
                Ok(created) => created,
                Err(err) => return m.write_failed(err, "create cycled session"),
            };
            let until = now.saturating_add(m.cycle_grace);
            match m.store.retire(&stored.key, until).await {
                Ok(_) => {}
                Err(err) => tracing::warn!(
                    error = %err,
                    old = %stored.key,
                    "could not retire the old session ID; it lives until its own deadline"
                ),
            }
            m.emit(SessionEvent::Cycled {
                old: stored.key,
                new,
            });
            if let (true, Some(user_id)) = (st.logged_in, st.user_id) {
                m.emit(SessionEvent::LoggedIn { key: new, user_id });
            }
            return Ok(m.issue(&id, record.expires_at(), transport));
        }

        let incoming = st.incoming.unwrap_or_else(|| stored.id.clone());
        if modified {
            let mut delta = Delta::new(now, idle_deadline);
            delta.clear = st.cleared;
            delta.changes = st.changes;
            if st.user_changed {
                delta.user_id = Some(st.user_id);
            }
            return match m.store.save(&stored.key, &delta).await {
                Ok(true) => Ok(m.refresh(&incoming, idle_deadline, transport)),
                Ok(false) => {
                    tracing::debug!(key = %stored.key, "session vanished during the request (revoked or expired); not recreated");
                    Ok(SessionResponse::default())
                }
                Err(err) => m.write_failed(err, "save"),
            };
        }

        // Only read: rolling expiry, throttled.
        if m.touch_due(&stored, now) {
            match m.store.touch(&stored.key, now, idle_deadline).await {
                Ok(true) => return Ok(m.refresh(&incoming, idle_deadline, transport)),
                Ok(false) => {}
                // A failed touch only shortens the session; it is not worth failing the request.
                Err(err) => {
                    tracing::warn!(error = %err, "could not extend the session's idle deadline")
                }
            }
        }
        Ok(SessionResponse::default())
    }

    /// Deletes every session of `user_id` ("log out everywhere", e.g. after a password
    /// change). Returns how many were deleted.
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

impl ManagerInner {
    /// True when `finish` has nothing to do for `st`: an unused or degraded session, or a
    /// loaded one that was only read and whose idle deadline needs no extension yet (judged
    /// at the time it was loaded). Must agree with `finish_writes`, which answers these
    /// cases the same way, without writing.
    fn nothing_to_write(&self, st: &State) -> bool {
        if st.destroy {
            return false;
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
    fn idle_deadline_at(&self, stored: &Stored, now: Timestamp) -> Timestamp {
        now.saturating_add(self.idle_timeout)
            .min(stored.absolute_deadline)
    }

    /// The rolling-expiry rule for a session that was only read: extend it when less than the
    /// touch threshold of its idle timeout remains and the deadline would actually move.
    fn touch_due(&self, stored: &Stored, now: Timestamp) -> bool {
        let remaining = stored.idle_deadline.saturating_duration_since(now);
        remaining < self.touch_below && self.idle_deadline_at(stored, now) > stored.idle_deadline
    }

    /// After a save or touch: persistent cookies get a fresh `Max-Age`; browser-session cookies
    /// and header clients need nothing.
    fn refresh(
        &self,
        id: &SessionId,
        idle_deadline: Timestamp,
        transport: Transport,
    ) -> SessionResponse {
        if transport == Transport::Cookie && self.cookie.persistent {
            self.issue(id, idle_deadline, transport)
        } else {
            SessionResponse::default()
        }
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

/// What [`SessionManager::finish`] asks the adapter to add to the response. Its `Debug` output
/// contains no session ID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionResponse {
    set_cookie: Option<SetCookie>,
    header: Option<(String, String)>,
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
            .field(
                "header",
                &self.header.as_ref().map(|(n, _)| (n, "[redacted]")),
            )
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Cookie,
    Header,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Unloaded,
    Loaded,
    Degraded,
}

/// The session as it exists in the store (when it does).
struct Stored {
    id: SessionId,
    key: SessionKey,
    /// When this request found the session live.
    loaded_at: Timestamp,
    created_at: Timestamp,
    idle_deadline: Timestamp,
    absolute_deadline: Timestamp,
    metadata: SessionMetadata,
}

struct State {
    incoming: Option<SessionId>,
    transport: Transport,
    phase: Phase,
    stored: Option<Stored>,
    data: SessionData,
    user_id: Option<String>,
    changes: BTreeMap<String, Option<Value>>,
    cleared: bool,
    user_changed: bool,
    logged_in: bool,
    cycle: bool,
    destroy: bool,
    metadata: Option<SessionMetadata>,
    finished: bool,
}

impl State {
    fn new(incoming: Option<SessionId>, transport: Transport) -> Self {
        Self {
            incoming,
            transport,
            phase: Phase::Unloaded,
            stored: None,
            data: SessionData::new(),
            user_id: None,
            changes: BTreeMap::new(),
            cleared: false,
            user_changed: false,
            logged_in: false,
            cycle: false,
            destroy: false,
            metadata: None,
            finished: false,
        }
    }

    fn finished() -> Self {
        let mut st = Self::new(None, Transport::Cookie);
        st.finished = true;
        st
    }

    fn is_modified(&self) -> bool {
        self.cleared || !self.changes.is_empty() || self.user_changed
    }

    fn current_key(&self) -> Option<SessionKey> {
        self.stored.as_ref().map(|s| s.key)
    }
}

struct SessionInner {
    manager: Arc<ManagerInner>,
    state: Mutex<State>,
}

/// One request's session. Cheap to clone (clones share state); loads from the store on first
/// use, so a request that never touches it costs nothing.
///
/// Reads and writes go to an in-memory copy; [`SessionManager::finish`] writes only what
/// changed. All methods are safe to call from several tasks of the same request.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state();
        f.debug_struct("Session")
            .field("key", &st.current_key())
            .field("phase", &st.phase)
            .field("modified", &st.is_modified())
            .field("cycle", &st.cycle)
            .field("destroy", &st.destroy)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock; if one ever did, the state is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, loaded from the store on first use (and only then). Never holds the lock
    /// across the store call.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let incoming = {
            let st = self.state();
            if st.phase != Phase::Unloaded {
                return Ok(st);
            }
            st.incoming.clone()
        };
        let m = &self.inner.manager;
        let loaded = match &incoming {
            None => Ok(None),
            Some(id) => m.load_record(id).await,
        };
        let mut st = self.state();
        if st.phase != Phase::Unloaded {
            return Ok(st); // another task of this request loaded it meanwhile
        }
        match loaded {
            Ok(Some((key, record, loaded_at))) => {
                st.stored = incoming.map(|id| Stored {
                    id,
                    key,
                    loaded_at,
                    created_at: record.created_at,
                    idle_deadline: record.idle_deadline,
                    absolute_deadline: record.absolute_deadline,
                    metadata: record.metadata,
                });
                st.data = record.data;
                st.user_id = record.user_id;
                st.phase = Phase::Loaded;
                Ok(st)
            }
            Ok(None) => {
                st.phase = Phase::Loaded;
                Ok(st)
            }
            Err(err) => match m.unavailable {
                StoreUnavailablePolicy::Fail => Err(SessionError::Store(err)),
                StoreUnavailablePolicy::Anonymous => {
                    tracing::warn!(error = %err, "session store unavailable; continuing as an anonymous request");
                    st.phase = Phase::Degraded;
                    Ok(st)
                }
            },
        }
    }

    /// The value under `key`, deserialized as `T`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`), [`SessionError::Data`] if the
    /// value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.loaded()
            .await?
            .data
            .get(key)
            .map_err(SessionError::Data)
    }

    /// The raw JSON value under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        Ok(self.loaded().await?.data.get_value(key).cloned())
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] if `value` cannot be serialized (nothing changes then), or
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(SessionError::Data)?;
        self.insert_value(key, value).await
    }

    /// Stores a raw JSON value under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if st.data.get_value(key) == Some(&value) {
            return Ok(()); // unchanged: no write
        }
        st.data.insert_value(key, value.clone());
        st.changes.insert(key.to_owned(), Some(value));
        Ok(())
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        let mut st = self.loaded().await?;
        let old = st.data.remove(key);
        if old.is_some() {
            st.changes.insert(key.to_owned(), None);
        }
        Ok(old)
    }

    /// Removes every key (the user, if any, stays logged in; use [`logout`](Self::logout)).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if !st.data.is_empty() || !st.changes.is_empty() {
            st.data.clear();
            st.changes.clear();
            st.cleared = true;
        }
        Ok(())
    }

    /// Whether the session holds no data and no user.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        let st = self.loaded().await?;
        Ok(st.data.is_empty() && st.user_id.is_none())
    }

    /// The logged-in user.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn user_id(&self) -> Result<Option<String>, SessionError> {
        Ok(self.loaded().await?.user_id.clone())
    }

    /// The key of the session as loaded from the store (`None` for a new session). Its hex
    /// form identifies "this device" in [`list_devices`](Self::list_devices).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn key(&self) -> Result<Option<SessionKey>, SessionError> {
        Ok(self.loaded().await?.current_key())
    }

    /// Moves the session to a fresh ID at the end of the request (session-fixation defence;
    /// call it on every privilege change — [`login`](Self::login) does). The data and the
    /// absolute deadline carry over; the old ID stays readable for the grace period, then dies.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails, [`SessionError::Degraded`] if the store was
    /// unavailable when the session was loaded.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if st.phase == Phase::Degraded {
            return Err(SessionError::Degraded);
        }
        st.cycle = true;
        Ok(())
    }

    /// Logs `user_id` in: enforces the per-user cap, then sets the user and cycles the ID.
    /// The session's data carries over (a cart filled before login survives), except when the
    /// session belonged to a *different* user: then it starts empty.
    ///
    /// # Errors
    ///
    /// [`SessionError::TooManySessions`] if the cap is reached and the policy is
    /// [`SessionCapPolicy::Refuse`]; [`SessionError::Store`] or [`SessionError::Degraded`] if the
    /// store cannot be used (a login never silently falls back to anonymous).
    pub async fn login(&self, user_id: impl Into<String>) -> Result<(), SessionError> {
        let user_id = user_id.into();
        let current = {
            let st = self.loaded().await?;
            if st.phase == Phase::Degraded {
                return Err(SessionError::Degraded);
            }
            st.current_key()
        };
        let m = &self.inner.manager;
        if let Some((cap, policy)) = m.per_user_cap {
            let mut others = m
                .store
                .list_for_user(&user_id)
                .await
                .map_err(SessionError::Store)?;
            others.retain(|info| Some(info.key) != current);
            if others.len() >= cap {
                if policy == SessionCapPolicy::Refuse {
                    return Err(SessionError::TooManySessions);
                }
                let excess = others.len() + 1 - cap;
                for info in others.iter().take(excess) {
                    if m.store
                        .delete(&info.key)
                        .await
                        .map_err(SessionError::Store)?
                    {
                        m.emit(SessionEvent::Revoked {
                            key: info.key,
                            user_id: user_id.clone(),
                        });
                    }
                }
            }
        }
        let mut st = self.state();
        if st
            .user_id
            .as_deref()
            .is_some_and(|previous| previous != user_id)
        {
            // Another user's data never carries over into this user's session.
            st.data.clear();
            st.changes.clear();
            st.cleared = true;
        }
        st.user_id = Some(user_id);
        st.user_changed = true;
        st.logged_in = true;
        st.cycle = true;
        Ok(())
    }

    /// Ends the session: same as [`destroy`](Self::destroy).
    pub fn logout(&self) {
        self.destroy();
    }

    /// Deletes the session at the end of the request and sends a cookie that removes it from
    /// the browser. Needs no store access before then.
    pub fn destroy(&self) {
        self.state().destroy = true;
    }

    /// Records the client's `User-Agent`, stored (truncated) when the session is created or a
    /// user logs in, for the device list. Does not by itself cause a write.
    pub fn set_user_agent(&self, user_agent: &str) {
        self.state().metadata = Some(SessionMetadata::with_user_agent(user_agent));
    }

    async fn user_and_key(&self) -> Result<(String, Option<SessionKey>), SessionError> {
        let st = self.loaded().await?;
        if st.phase == Phase::Degraded {
            return Err(SessionError::Degraded);
        }
        let user = st.user_id.clone().ok_or(SessionError::NotLoggedIn)?;
        Ok((user, st.current_key()))
    }

    /// The logged-in user's sessions ("my devices"), oldest first, marking this one.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn list_devices(&self) -> Result<Vec<Device>, SessionError> {
        let (user, current) = self.user_and_key().await?;
        let m = &self.inner.manager;
        let list = m
            .store
            .list_for_user(&user)
            .await
            .map_err(SessionError::Store)?;
        Ok(list
            .into_iter()
            .map(|info| Device {
                current: Some(info.key) == current,
                info,
            })
            .collect())
    }

    /// Revokes one of the logged-in user's *other* sessions by its key (remote logout).
    /// Returns `false` if `key` is not a live session of this user. Revoking the current
    /// session is [`destroy`](Self::destroy).
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn revoke_device(&self, key: &SessionKey) -> Result<bool, SessionError> {
        let (user, current) = self.user_and_key().await?;
        if Some(*key) == current {
            self.destroy();
            return Ok(true);
        }
        let m = &self.inner.manager;
        let mine = m
            .store
            .list_for_user(&user)
            .await
            .map_err(SessionError::Store)?;
        if !mine.iter().any(|info| info.key == *key) {
            return Ok(false);
        }
        let deleted = m.store.delete(key).await.map_err(SessionError::Store)?;
        if deleted {
            m.emit(SessionEvent::Revoked {
                key: *key,
                user_id: user,
            });
        }
        Ok(deleted)
    }

    /// Revokes all the logged-in user's sessions except this one ("log out my other devices").
    /// Returns how many were revoked.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn revoke_other_devices(&self) -> Result<u64, SessionError> {
        let (user, current) = self.user_and_key().await?;
        let m = &self.inner.manager;
        let count = m
            .store
            .delete_all_for_user(&user, current.as_ref())
            .await
            .map_err(SessionError::Store)?;
        m.emit(SessionEvent::RevokedAll {
            user_id: user,
            count,
        });
        Ok(count)
    }
}

/// One entry of [`Session::list_devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// The session's listing (key hash, times, user agent).
    pub info: SessionInfo,
    /// Whether it is the session of the current request.
    pub current: bool,
}
