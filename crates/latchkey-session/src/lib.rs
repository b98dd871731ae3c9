#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod b64;
mod cookie;
mod csrf;
mod id;
mod manager;
#[cfg(feature = "memory")]
mod memory;
mod record;
mod store;
mod time;

pub use cookie::{
    join_cookie_headers, CookieKey, KeyError, SameSite, SetCookie, MAX_COOKIE_VALUE_LEN,
};
pub use csrf::{
    CsrfProtection, CsrfRefusal, InvalidOrigin, OriginAllowed, OriginConfigError, OriginHeaders,
    OriginPolicy, OriginPolicyBuilder, OriginRefusal, OriginVerdict, RequestMethod, TokenRefusal,
    TokenVerdict, CSRF_SESSION_KEY, DEFAULT_CSRF_HEADER,
};
pub use id::{SessionId, SessionKey, SESSION_ID_BYTES, SESSION_ID_TEXT_LEN};
pub use manager::{
    ConfigError, Device, Finish, RequestHeaders, RequestOutcome, Session, SessionError,
    SessionEvent, SessionManager, SessionManagerBuilder, SessionResponse, StoreUnavailablePolicy,
};
#[cfg(feature = "memory")]
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use record::{Delta, SessionData, SessionInfo, SessionMetadata, SessionRecord};
pub use store::{Admission, BoxError, SessionCap, SessionCapPolicy, SessionStore, StoreError};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

// Re-exported so store implementations and callers use the same versions.
pub use async_trait::async_trait;
pub use serde_json;
