//! Shared helpers for the latchkey examples.
pub mod accounts;
pub mod jwt_cli;
pub mod login;
