//! What the manager reports: errors, the configuration it refuses, and lifecycle events.

use std::sync::Arc;

use crate::{SessionKey, StoreError};

/// What the manager does when the store cannot be reached (or times out, or is full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUnavailablePolicy {
    /// Return [`SessionError::Store`] from the session call and from
    /// [`Session::finish`](crate::Session::finish); adapters answer `503 Service Unavailable`.
    /// The default.
    #[default]
    Fail,
    /// Carry on as an anonymous request: the session reads as empty, changes made to it are
    /// dropped at the end of the request (logged at `warn`), and no cookie is changed, so the
    /// client keeps its session for when the store is back. Operations that cannot be faked
    /// (login, cycling the ID, the device list) still fail with [`SessionError::Degraded`].
    Anonymous,
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

pub(super) type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync + 'static>;

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
    /// ([`SessionCapPolicy::Refuse`](crate::SessionCapPolicy::Refuse)). Returned by `login`
    /// when the cap is already full then, and by `finish` when concurrent logins filled it
    /// meanwhile (the store enforces the cap atomically; nothing was stored).
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
    /// A `__Host-` cookie name without `Secure`, `Path=/` and no `Domain`, or a `__Secure-`
    /// name without `Secure`: browsers would drop the cookie. Carries the prefix.
    #[error("the cookie name prefix {0} needs Secure (and, for __Host-, Path=/ and no Domain)")]
    CookiePrefix(&'static str),
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
