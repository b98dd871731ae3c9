//! Shared helpers for the latchkey examples.
pub mod jwt_cli;
pub mod login;
