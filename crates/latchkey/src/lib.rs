#![doc = include_str!("../README.md")]
//!
//! # Examples
//!
//! Each example is part of these docs (and tested) when its feature is on; the docs built with
//! `--all-features` show them all.
//!
#![cfg_attr(feature = "jwt", doc = include_str!("docs/jwt.md"))]
#![cfg_attr(feature = "jwt-rsa", doc = include_str!("docs/jwt-rsa.md"))]
#![cfg_attr(feature = "session", doc = include_str!("docs/session.md"))]
#![cfg_attr(feature = "memory", doc = include_str!("docs/memory.md"))]
#![cfg_attr(feature = "redis", doc = include_str!("docs/redis.md"))]
#![cfg_attr(feature = "axum", doc = include_str!("docs/axum.md"))]
#![cfg_attr(feature = "actix", doc = include_str!("docs/actix.md"))]
#![cfg_attr(feature = "tokens", doc = include_str!("docs/tokens.md"))]
#![cfg_attr(feature = "throttle", doc = include_str!("docs/throttle.md"))]
#![cfg_attr(feature = "oauth", doc = include_str!("docs/oauth.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
#[doc(inline)]
pub use latchkey_jwt as jwt;

#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
#[doc(inline)]
pub use latchkey_session as session;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use latchkey_redis as redis;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[doc(inline)]
pub use latchkey_axum as axum;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
#[doc(inline)]
pub use latchkey_actix as actix;

#[cfg(feature = "tokens")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
#[doc(inline)]
pub use latchkey_tokens as tokens;

#[cfg(feature = "throttle")]
#[cfg_attr(docsrs, doc(cfg(feature = "throttle")))]
#[doc(inline)]
pub use latchkey_throttle as throttle;

#[cfg(feature = "oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth")))]
#[doc(inline)]
pub use latchkey_oauth as oauth;
