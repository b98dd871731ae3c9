#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod key;
#[cfg(feature = "memory")]
mod memory;
mod rule;
mod store;
mod throttle;

pub use key::{KeyKind, ThrottleKey};
#[cfg(feature = "memory")]
pub use memory::MemoryThrottleStore;
pub use rule::{BudgetState, Decision, Rule};
pub use store::{BoxError, ThrottleError, ThrottleStore};
pub use throttle::{Attempt, ConfigError, Place, Throttle, ThrottleBuilder};

// Re-exported so store implementations use the same versions.
pub use async_trait::async_trait;
pub use latchkey_session::{Clock, ManualClock, SystemClock, Timestamp};
