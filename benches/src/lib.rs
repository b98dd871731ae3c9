//! Shared helpers for the latchkey benches: the workload every store bench uses, so that the
//! memory and Redis figures are taken on the same payload, session count and task count.

use serde_json::Value;
use tokio::runtime::Runtime;

/// Bytes of application data in every bench session.
pub const PAYLOAD_LEN: usize = 200;
/// Sessions created before the load and save groups run.
pub const PRELOADED: usize = 10_000;
/// Concurrent tasks in the "many tasks" groups.
pub const TASKS: usize = 64;

/// The session payload: one JSON string of [`PAYLOAD_LEN`] bytes.
#[must_use]
pub fn payload() -> Value {
    Value::String("p".repeat(PAYLOAD_LEN))
}

/// A 2-worker multi-threaded tokio runtime (one worker per core of the development machine).
///
/// # Panics
///
/// If the runtime cannot be built.
#[must_use]
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
