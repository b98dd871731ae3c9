//! The errors of [`TokenService`](crate::TokenService). None of them holds a token or a key.

use crate::store::StoreError;

/// Why [`TokenService::refresh`](crate::TokenService::refresh) gave no new pair.
///
/// Adapters clear the refresh-token cookie for the first four (the token will never work again)
/// and only for them: [`StoreUnavailable`](Self::StoreUnavailable) may succeed on retry, and a
/// request that merely lost a race to a concurrent refresh is not an error at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// A retired refresh token was presented: the family is now revoked.
    #[error("refresh token reuse detected; the token family is revoked")]
    Reused,
    /// The family reached its idle or absolute deadline.
    #[error("refresh token expired")]
    Expired,
    /// The family was revoked (logout, log out everywhere, an earlier reuse).
    #[error("refresh token revoked")]
    Revoked,
    /// Not a refresh token of this service, or its family is unknown.
    #[error("unknown refresh token")]
    Unknown,
    /// The store could not answer; nothing is known about the token.
    #[error("token store unavailable")]
    StoreUnavailable(#[source] StoreError),
}

impl RefreshError {
    /// Whether the refresh token is dead for good (everything but
    /// [`StoreUnavailable`](Self::StoreUnavailable)), so the client should forget it.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::StoreUnavailable(_))
    }
}

/// What revoked an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// Its subject was logged out everywhere after it was issued.
    Subject,
    /// Its family was revoked, expired or killed by reuse detection.
    Family,
    /// It was revoked by itself (its `jti`).
    Token,
}

/// Why [`TokenService::verify`](crate::TokenService::verify) refused an access token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not a valid access token of this service (malformed, bad signature, wrong
    /// `typ`, issuer or audience, expired, a refresh token, …). The source says which check.
    #[error("invalid access token")]
    Invalid(#[source] latchkey_jwt::Error),
    /// The token is valid but revoked.
    #[error("access token revoked")]
    Revoked(Revocation),
    /// A revocation check could not be made.
    #[error("token store unavailable")]
    StoreUnavailable(#[source] StoreError),
}

/// Why [`TokenService::issue`](crate::TokenService::issue) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The subject or the caller's claims cannot be used.
    #[error("invalid claims: {0}")]
    InvalidClaims(&'static str),
    /// The access token could not be signed.
    #[error("access token cannot be signed")]
    Sign(#[source] latchkey_jwt::Error),
    /// The store failed; no family was created.
    #[error("token store unavailable")]
    Store(#[source] StoreError),
}

/// Why [`TokenServiceBuilder::build`](crate::TokenServiceBuilder::build) refused a
/// configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Access tokens need a non-empty issuer and audience (RFC 9068 §2.2).
    #[error("an issuer and an audience are required")]
    MissingIssuerOrAudience,
    /// A lifetime is out of range.
    #[error("invalid lifetime: {0}")]
    Lifetime(&'static str),
    /// The access-token validation was refused.
    #[error("invalid access-token validation")]
    Validation(#[source] latchkey_jwt::Error),
}
