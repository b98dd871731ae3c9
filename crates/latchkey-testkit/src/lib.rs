//! placeholder crate docs (the sessions-core work replaces this paragraph).
//!
//! NOTE to whoever writes this file: keep `pub mod redis;` — the private redis-server helpers
//! (issue 5) live in `src/redis.rs` and are tested in `tests/redis_helpers.rs`.

pub mod redis;
