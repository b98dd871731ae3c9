#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod callback;
mod discovery;
mod http;
mod id_token;
mod keys;
mod next;
mod pkce;
mod secret;
mod transaction;

pub use callback::{Callback, CallbackError, MAX_CALLBACK_QUERY};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use http::{HttpClient, HttpError, HttpResponse, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT};
pub use id_token::{
    at_hash_of, check_id_token_claims, Expectations, IdTokenError, Identity, Profile, SignedIn,
};
pub use keys::{
    KeySetCache, KeySetError, ParseKeySet, MAX_KEY_SET_AGE, MIN_KEY_SET_AGE,
    UNKNOWN_KEY_REFRESH_INTERVAL,
};
pub use next::{safe_next, MAX_NEXT_LEN};
pub use pkce::{pkce_challenge, PkceVerifier};
pub use secret::Secret;
pub use transaction::{
    Begun, LoginTransaction, TransactionError, Transactions, BINDING_COOKIE, TRANSACTION_LIFETIME,
};

// Re-exported so that `HttpClient` implementations use the same version.
pub use async_trait::async_trait;
