//! Shared helpers for the latchkey examples.
