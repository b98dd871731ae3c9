#![doc = include_str!("../README.md")]

mod error;
mod memory;
pub mod refresh;
mod service;
pub mod store;
pub mod transport;

pub use error::{ConfigError, IssueError, RefreshError, Revocation, VerifyError};
pub use memory::MemoryTokenStore;
pub use refresh::{FamilyId, RefreshKey, RefreshKeyTooShort, SubjectTag};
pub use service::{
    AccessToken, Checks, ReuseEvent, TokenPair, TokenService, TokenServiceBuilder, TokenTypeHint,
    ACCESS_TOKEN_TYP, DEFAULT_ABSOLUTE_LIFETIME, DEFAULT_ACCESS_TTL, DEFAULT_GRACE,
    DEFAULT_IDLE_LIFETIME,
};
pub use store::{StoreError, TokenStore};

/// The JWT core this crate signs access tokens with (its keys, claims and clock).
pub use latchkey_jwt as jwt;
