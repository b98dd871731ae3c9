#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod next;
mod pkce;
mod secret;
mod transaction;

pub use next::{safe_next, MAX_NEXT_LEN};
pub use pkce::{pkce_challenge, PkceVerifier};
pub use secret::Secret;
pub use transaction::{
    Begun, LoginTransaction, TransactionError, Transactions, BINDING_COOKIE, TRANSACTION_LIFETIME,
};
