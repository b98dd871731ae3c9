//! Per-thread scratch buffers, so signing and verifying allocate only what they return.
//!
//! They hold serialized or decoded claims between calls (never key material) and are cleared
//! before each use. Buffers that grew past [`KEEP`] bytes are dropped rather than kept. A nested
//! call (a `Serialize` impl that itself signs a token) or a call during thread teardown simply gets
//! fresh buffers.

use std::cell::Cell;

/// Largest buffer kept between calls.
const KEEP: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct Scratch {
    /// Serialized claims (sign) or decoded payload (verify).
    pub(crate) bytes: Vec<u8>,
    /// Member names of the open objects, for
    /// [`to_vec_strict`](crate::strict_ser::to_vec_strict).
    pub(crate) names: crate::strict_ser::Names,
}

impl Scratch {
    fn reset(&mut self) {
        self.bytes.clear();
        if self.bytes.capacity() > KEEP {
            self.bytes = Vec::new();
        }
        self.names.clear();
        if self.names.capacity() > KEEP / 16 {
            self.names = Vec::new();
        }
    }
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers. They are taken out of the thread-local for the
/// call and put back after, so a nested call simply starts with empty ones.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.try_with(Cell::take).unwrap_or_default();
    s.reset();
    let r = f(&mut s);
    let _ = SCRATCH.try_with(|c| c.set(s));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_use_gets_fresh_buffers() {
        let r = with_scratch(|outer| {
            outer.bytes.extend_from_slice(b"outer");
            let inner = with_scratch(|inner| {
                assert!(inner.bytes.is_empty());
                inner.bytes.extend_from_slice(b"inner");
                inner.bytes.len()
            });
            (outer.bytes.clone(), inner)
        });
        assert_eq!(r, (b"outer".to_vec(), 5));
        // Put back, and cleared before the next use.
        with_scratch(|s| {
            assert!(s.bytes.is_empty());
            assert!(s.bytes.capacity() >= 5);
        });
    }
}
