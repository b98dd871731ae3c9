//! The whole latchkey-testkit token conformance suite against `MemoryTokenStore`.

use std::sync::Arc;

use latchkey_testkit::tokens::TokenBackend;
use latchkey_tokens::MemoryTokenStore;

fn backend() -> TokenBackend {
    let store = Arc::new(MemoryTokenStore::new());
    let dump = store.clone();
    TokenBackend::new(store, move || std::future::ready(dump.dump()))
}

mod memory {
    latchkey_testkit::token_store_conformance!(|| async { super::backend() });
}
