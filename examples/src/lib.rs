//! Shared helpers for the latchkey examples.
pub mod login;
