//! Shared helpers for the latchkey benches.
