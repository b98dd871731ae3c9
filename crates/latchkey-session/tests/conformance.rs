//! The testkit's conformance suite against `MemoryStore` (also the check that the suite itself
//! compiles against the public API a backend sees): one test per check, per configuration.

mod default_store {
    use std::sync::Arc;

    use latchkey_session::{MemoryStore, SessionStore};

    latchkey_testkit::session_store_conformance!(|| async {
        Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>
    });
}

mod capped_store_with_fast_sweeper {
    use std::sync::Arc;
    use std::time::Duration;

    use latchkey_session::{MemoryStore, SessionStore};

    latchkey_testkit::session_store_conformance!(|| async {
        Arc::new(
            MemoryStore::builder()
                .max_sessions(10_000)
                .sweep_interval(Duration::from_millis(50))
                .build(),
        ) as Arc<dyn SessionStore>
    });
}
