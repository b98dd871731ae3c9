//! The login transaction: what the callback must find again, kept server-side.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use latchkey_session::{Clock, SessionKey, SessionRecord, SessionStore, StoreError, SystemClock};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::next::safe_next;
use crate::pkce::PkceVerifier;
use crate::secret::Secret;

/// How long a login transaction lives: ten minutes from the authorization redirect.
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(600);

/// The default name of the browser-binding cookie. `__Host-`: only this exact origin, over
/// HTTPS, with `Path=/`, can set it.
pub const BINDING_COOKIE: &str = "__Host-latchkey-oauth";

/// The most cookies of our name read from one `Cookie` header (a parent domain can add some).
const MAX_BINDING_CANDIDATES: usize = 8;

/// The data key the transaction is stored under, inside its store record.
const DATA_KEY: &str = "latchkey.oauth.transaction";

/// Domain labels for the hashes of the two secrets the store indexes or compares.
const STATE_LABEL: &str = "latchkey-oauth/state";
const BINDING_LABEL: &str = "latchkey-oauth/binding";

/// A pending sign-in, found again by the callback and consumed by it.
///
/// Nothing in it is sent to the browser but the `state` (which is not stored: the record's key
/// is a hash of it) and the browser-binding value (stored only as a hash).
#[derive(Clone)]
pub struct LoginTransaction {
    /// The issuer the user was sent to.
    pub issuer: String,
    /// The `redirect_uri` of the authorization request, repeated in the code exchange.
    pub redirect_uri: String,
    /// Where to go after sign-in: already a same-origin relative path ([`safe_next`]).
    pub next: String,
    /// The `nonce` the ID token must carry.
    pub nonce: Secret,
    /// The PKCE verifier for the code exchange.
    pub pkce: PkceVerifier,
    /// When the authorization redirect was made.
    pub created_at: latchkey_session::Timestamp,
}

impl fmt::Debug for LoginTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginTransaction")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("next", &self.next)
            .field("nonce", &self.nonce)
            .field("pkce", &self.pkce)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// What [`Transactions::begin`] gives the caller for the authorization redirect.
pub struct Begun {
    /// The `state` parameter.
    pub state: Secret,
    /// The `nonce` parameter.
    pub nonce: Secret,
    /// The `code_challenge` parameter (method [`PkceVerifier::METHOD`]).
    pub code_challenge: String,
    /// The `Set-Cookie` value that binds the transaction to this browser.
    pub set_cookie: String,
}

impl fmt::Debug for Begun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Begun")
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("code_challenge", &self.code_challenge)
            .field("set_cookie", &"[redacted]")
            .finish()
    }
}

/// Why a callback's `state` was refused. None of the messages contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// No `state`, a malformed one, or one no transaction is stored under (never made, or
    /// already consumed: a replayed callback ends here).
    #[error("unknown or missing state")]
    UnknownState,
    /// The transaction is older than [`TRANSACTION_LIFETIME`].
    #[error("the sign-in took too long; start again")]
    Expired,
    /// The `state` is known but this browser does not hold the transaction's binding cookie:
    /// the callback was started in another browser (login CSRF) or the cookie is gone.
    #[error("this sign-in was not started in this browser")]
    NotThisBrowser,
    /// Another callback with the same `state` consumed the transaction at the same moment.
    #[error("this sign-in was already completed")]
    Replayed,
    /// The store failed; nothing was consumed.
    #[error("login transaction store failed")]
    Store(#[source] StoreError),
}

/// Stored form of a transaction (one JSON value in the record's data).
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    binding: String,
    issuer: String,
    redirect_uri: String,
    next: String,
    nonce: String,
    verifier: String,
    created_at: u64,
}

/// Login transactions in a [`SessionStore`], one record per transaction under a hash of its
/// `state`, with no user (so they never count against a user's sessions or show in a device
/// list) and a deadline a little past [`TRANSACTION_LIFETIME`] (so that an expired transaction
/// is still found and refused as [`Expired`](TransactionError::Expired) rather than unknown).
///
/// Each browser holds one binding cookie (a random value, stored in transactions only as a
/// hash); every transaction it starts is bound to the same value, so two login tabs do not
/// break each other.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::sync::Arc;
/// use latchkey_oauth::Transactions;
/// use latchkey_session::MemoryStore;
///
/// let transactions = Transactions::new(Arc::new(MemoryStore::new()));
/// let begun = transactions
///     .begin("https://issuer.example", "https://app.example/callback", Some("/me"), None)
///     .await?;
/// // Redirect to the provider with begun.state, begun.nonce, begun.code_challenge and send
/// // begun.set_cookie. On the callback, with the browser's Cookie header:
/// let cookie = begun.set_cookie.split(';').next().unwrap();
/// let tx = transactions.consume(Some(begun.state.expose()), Some(cookie)).await?;
/// assert_eq!(tx.next, "/me");
/// // Consumed: the same callback again is refused.
/// assert!(transactions.consume(Some(begun.state.expose()), Some(cookie)).await.is_err());
/// # Ok::<(), latchkey_oauth::TransactionError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Transactions {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    cookie_name: String,
    secure: bool,
}

impl fmt::Debug for Transactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactions")
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Transactions {
    /// Transactions in `store`, with the system clock, the [`BINDING_COOKIE`] name and
    /// `Secure` cookies.
    #[must_use]
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            cookie_name: BINDING_COOKIE.to_owned(),
            secure: true,
        }
    }

    /// Another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Plain-HTTP development only: a cookie without `Secure`, named without the `__Host-`
    /// prefix (which requires `Secure`).
    #[must_use]
    pub fn insecure_for_http_development(mut self) -> Self {
        self.secure = false;
        self.cookie_name = BINDING_COOKIE.trim_start_matches("__Host-").to_owned();
        self
    }

    /// The binding cookie's name.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Starts a transaction for a redirect to `issuer`; `cookie_header` is the request's
    /// `Cookie` header (its binding cookie, if any, is reused), `next` is kept only when it is
    /// a same-origin relative path.
    ///
    /// # Errors
    ///
    /// [`TransactionError::Store`] when the store cannot keep the transaction.
    pub async fn begin(
        &self,
        issuer: &str,
        redirect_uri: &str,
        next: Option<&str>,
        cookie_header: Option<&str>,
    ) -> Result<Begun, TransactionError> {
        let binding = cookie_header
            .and_then(|header| self.binding_candidates(header).next())
            .unwrap_or_else(Secret::generate);
        let nonce = Secret::generate();
        let pkce = PkceVerifier::generate();
        let now = self.clock.now();
        let stored = Stored {
            v: 1,
            binding: hex(&binding.digest(BINDING_LABEL)),
            issuer: issuer.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            next: safe_next(next).to_owned(),
            nonce: nonce.expose().to_owned(),
            verifier: pkce.expose().to_owned(),
            created_at: now.as_unix_millis(),
        };
        let value = serde_json::to_value(&stored)
            .map_err(|err| TransactionError::Store(StoreError::Corrupt(Box::new(err))))?;
        // Kept a minute past its lifetime, so that a late callback is told it expired.
        let deadline = now.saturating_add(TRANSACTION_LIFETIME + Duration::from_secs(60));
        let mut record = SessionRecord::new(now, deadline, deadline);
        record.data.insert_value(DATA_KEY, value);
        // A collision of 256-bit random values does not happen; one retry covers a store that
        // still holds a record under the key for any other reason.
        for _ in 0..2 {
            let state = Secret::generate();
            match self.store.create(&state_key(&state), &record, None).await {
                Ok(_) => {
                    return Ok(Begun {
                        state,
                        nonce,
                        code_challenge: pkce.challenge(),
                        set_cookie: self.set_cookie(&binding),
                    })
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(TransactionError::Store(err)),
            }
        }
        Err(TransactionError::Store(StoreError::Conflict))
    }

    /// Finds the transaction of a callback's `state`, checks that it is unexpired and bound
    /// to this browser (`cookie_header`), and consumes it: of any number of callbacks with
    /// the same `state`, at most one ever gets it.
    ///
    /// A refused binding leaves the transaction in place (whoever learnt a `state` cannot
    /// cancel the real user's sign-in with it).
    ///
    /// # Errors
    ///
    /// One [`TransactionError`] per refusal, checked in this order: unknown `state`, expired,
    /// not this browser, consumed meanwhile; or a store failure.
    pub async fn consume(
        &self,
        state: Option<&str>,
        cookie_header: Option<&str>,
    ) -> Result<LoginTransaction, TransactionError> {
        let state = state
            .and_then(Secret::parse)
            .ok_or(TransactionError::UnknownState)?;
        let key = state_key(&state);
        let record = self
            .store
            .load(&key)
            .await
            .map_err(TransactionError::Store)?
            .ok_or(TransactionError::UnknownState)?;
        let stored: Stored = record
            .data
            .get(DATA_KEY)
            .ok()
            .flatten()
            .filter(|s: &Stored| s.v == 1)
            .ok_or(TransactionError::UnknownState)?;
        let created_at = latchkey_session::Timestamp::from_unix_millis(stored.created_at);
        if self.clock.now().saturating_duration_since(created_at) >= TRANSACTION_LIFETIME {
            // Gone for good: no use keeping it until the store drops it.
            let _ = self.store.delete(&key).await;
            return Err(TransactionError::Expired);
        }
        let bound = cookie_header.is_some_and(|header| {
            self.binding_candidates(header).any(|candidate| {
                bool::from(
                    hex(&candidate.digest(BINDING_LABEL))
                        .as_bytes()
                        .ct_eq(stored.binding.as_bytes()),
                )
            })
        });
        if !bound {
            return Err(TransactionError::NotThisBrowser);
        }
        // `delete` answers true to exactly one caller: the consumption is atomic.
        if !self
            .store
            .delete(&key)
            .await
            .map_err(TransactionError::Store)?
        {
            return Err(TransactionError::Replayed);
        }
        let (Some(nonce), Some(pkce)) = (
            Secret::parse(&stored.nonce),
            PkceVerifier::parse(&stored.verifier),
        ) else {
            return Err(TransactionError::UnknownState);
        };
        Ok(LoginTransaction {
            issuer: stored.issuer,
            redirect_uri: stored.redirect_uri,
            next: safe_next(Some(&stored.next)).to_owned(),
            nonce,
            pkce,
            created_at,
        })
    }

    /// The well-formed values of our cookie in a `Cookie` header, at most
    /// `MAX_BINDING_CANDIDATES`.
    fn binding_candidates<'a>(&'a self, header: &'a str) -> impl Iterator<Item = Secret> + 'a {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| name.trim() == self.cookie_name)
            .take(MAX_BINDING_CANDIDATES)
            .filter_map(|(_, value)| Secret::parse(value.trim()))
    }

    /// `Set-Cookie` for the binding: `HttpOnly`, `SameSite=Lax` (the provider sends the user
    /// back with a cross-site top-level GET, which `Strict` would strip the cookie from),
    /// `Path=/`, `Secure` unless disabled, and the transaction's lifetime as `Max-Age`.
    fn set_cookie(&self, binding: &Secret) -> String {
        format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            binding.expose(),
            TRANSACTION_LIFETIME.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }
}

fn state_key(state: &Secret) -> SessionKey {
    SessionKey::from_bytes(state.digest(STATE_LABEL))
}

fn hex(bytes: &[u8; 32]) -> String {
    SessionKey::from_bytes(*bytes).to_hex()
}
