//! The testkit's conformance suite against `MemoryStore` (also the check that the suite itself
//! compiles against the public API a backend sees).

use std::sync::Arc;

use latchkey_session::{MemoryStore, SessionStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    latchkey_testkit::run_conformance_suite(|| async {
        Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_with_a_cap_and_fast_sweeper_passes_too() {
    latchkey_testkit::run_conformance_suite(|| async {
        Arc::new(
            MemoryStore::builder()
                .max_sessions(10_000)
                .sweep_interval(std::time::Duration::from_millis(50))
                .build(),
        ) as Arc<dyn SessionStore>
    })
    .await;
}
