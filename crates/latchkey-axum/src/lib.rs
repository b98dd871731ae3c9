#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bearer;
pub mod csrf;
mod rejection;
mod session;
#[cfg(feature = "tokens")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
pub mod tokens;

pub use bearer::{Bearer, BearerRejection};
pub use rejection::SessionRejection;
pub use session::{apply_session_response, ResponseFuture, Session, SessionLayer, SessionService};
