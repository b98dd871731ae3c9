//! [`SessionManagerBuilder`]: every setting with a safe default, validated once by `build`.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::error::EventHook;
use super::{ManagerInner, SessionManager};
use crate::cookie::{is_attribute_value, is_token, CookieSettings, Signer};
use crate::{
    Clock, ConfigError, CookieKey, SameSite, SessionCap, SessionCapPolicy, SessionEvent,
    SessionStore, StoreUnavailablePolicy,
};

/// Builds a [`SessionManager`]; every setting has a safe default. See [`SessionManager::builder`].
#[must_use]
pub struct SessionManagerBuilder {
    pub(super) store: Arc<dyn SessionStore>,
    pub(super) keys: Vec<CookieKey>,
    pub(super) cookie: CookieSettings,
    pub(super) idle_timeout: Duration,
    pub(super) absolute_lifetime: Duration,
    pub(super) touch_threshold: f64,
    pub(super) cycle_grace: Duration,
    pub(super) unavailable: StoreUnavailablePolicy,
    pub(super) per_user_cap: Option<(usize, SessionCapPolicy)>,
    pub(super) hook: Option<EventHook>,
    pub(super) header_name: Option<String>,
    pub(super) clock: Arc<dyn Clock>,
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

    /// Cookie name (default `id`). Must be an RFC 7230 token.
    ///
    /// Behind HTTPS, prefer a `__Host-` name such as `__Host-id`: browsers accept such a cookie
    /// only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain (or a network
    /// attacker on plain HTTP) cannot plant a session cookie of that name that would be read
    /// before the real one. `build` refuses a `__Host-` name without those attributes, and a
    /// `__Secure-` name without `Secure` ([`ConfigError::CookiePrefix`]). The default stays
    /// `id` so that plain-HTTP development (`secure(false)`) works without a rename.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use latchkey_session::{ConfigError, CookieKey, MemoryStore, SessionManager};
    /// # let builder = || SessionManager::builder(
    /// #     Arc::new(MemoryStore::new()),
    /// #     CookieKey::from_secret(&[7; 32]).unwrap(),
    /// # );
    /// assert!(builder().cookie_name("__Host-id").build().is_ok());
    /// assert!(matches!(
    ///     builder().cookie_name("__Host-id").secure(false).build(),
    ///     Err(ConfigError::CookiePrefix("__Host-"))
    /// ));
    /// ```
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

    /// At most `max` live sessions per user (unlimited by default). The store enforces it
    /// atomically with the write that adds a session to a user, so it holds however many
    /// logins run at once: with [`SessionCapPolicy::RevokeOldest`] the user's oldest sessions
    /// are revoked (one [`SessionEvent::Revoked`] each); with [`SessionCapPolicy::Refuse`] the
    /// new login fails with [`SessionError::TooManySessions`](crate::SessionError::TooManySessions).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use latchkey_session::{CookieKey, MemoryStore, SessionCapPolicy, SessionManager};
    /// // One device at a time: a new login signs the previous device out.
    /// let manager = SessionManager::builder(
    ///     Arc::new(MemoryStore::new()),
    ///     CookieKey::from_secret(&[7; 32]).unwrap(),
    /// )
    /// .max_sessions_per_user(1, SessionCapPolicy::RevokeOldest)
    /// .build()
    /// .unwrap();
    /// # drop(manager);
    /// ```
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

    /// The clock deadlines are computed with (default [`SystemClock`](crate::SystemClock)).
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
        if let Some(prefix) = self.cookie.prefix_violation() {
            return Err(ConfigError::CookiePrefix(prefix));
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
        let per_user_cap = match self.per_user_cap {
            None => None,
            Some((max, policy)) => {
                let max = u32::try_from(max).unwrap_or(u32::MAX);
                let max = NonZeroU32::new(max).ok_or(ConfigError::ZeroSessionCap)?;
                Some(SessionCap::new(max, policy))
            }
        };
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
                per_user_cap,
                hook: self.hook,
                header_name: self.header_name.map(|h| h.to_ascii_lowercase()),
                clock: self.clock,
            }),
        })
    }
}
