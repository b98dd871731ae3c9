//! The whole relying party in two calls: [`OidcClient::begin`] (the redirect to the provider)
//! and [`OidcClient::finish`] (the callback, every check in order).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use latchkey_jwt::jwk::JwkSet;
use latchkey_jwt::{Algorithm, ErrorKind, Validation, Verifier};
use latchkey_session::{Clock, SessionStore, SystemClock};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::callback::{Callback, CallbackError};
use crate::discovery::{DiscoveryError, ProviderMetadata};
use crate::http::{HttpClient, HttpError};
use crate::id_token::{check_id_token_claims, Expectations, IdTokenError, SignedIn};
use crate::keys::{KeySetCache, KeySetError};
use crate::pkce::PkceVerifier;
use crate::transaction::{TransactionError, Transactions};

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Where the browser goes to sign in, and the cookie that binds the sign-in to it.
pub struct AuthorizationRedirect {
    /// The provider's authorization URL with every parameter (`Location` of a `303`).
    pub location: String,
    /// `Set-Cookie` for the browser binding.
    pub set_cookie: String,
}

impl fmt::Debug for AuthorizationRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The location carries state and nonce; the cookie the binding.
        f.debug_struct("AuthorizationRedirect")
            .finish_non_exhaustive()
    }
}

/// A completed sign-in: who, and where to send them (a same-origin relative path).
#[derive(Clone, Debug)]
pub struct Completed {
    /// The identity and profile from the ID token.
    pub signed_in: SignedIn,
    /// The `next` of the sign-in, already checked by [`safe_next`](crate::safe_next).
    pub next: String,
}

/// Why the code exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The token endpoint could not be reached.
    #[error("token endpoint unreachable")]
    Http(#[source] HttpError),
    /// The token endpoint refused (RFC 6749 §5.2): `error` is its code when well-formed
    /// (`invalid_grant` for a wrong PKCE verifier or a used code).
    #[error("token endpoint refused the code: HTTP {status} {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The `error` code, or `unknown`.
        error: String,
    },
    /// The answer is not a Bearer token response with an `id_token`.
    #[error("token endpoint answer is malformed")]
    Malformed,
}

/// Why a sign-in failed: one variant per stage, each with the failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The callback itself: the provider's error, a missing code or state, RFC 9207 `iss`.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// The login transaction: unknown state, expired, another browser, replayed, store down.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// The code exchange.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// No key set could be had from the provider.
    #[error(transparent)]
    KeySet(#[from] KeySetError),
    /// The ID token: its signature, algorithm and key, or one of its claims.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// How the client is configured; see [`OidcClient::builder`].
#[derive(Debug)]
#[must_use]
pub struct OidcClientBuilder {
    http: Arc<dyn HttpClient>,
    metadata: ProviderMetadata,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    transactions: Transactions,
    scopes: String,
    aliases: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcConfigError {
    /// The provider configuration was refused.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// No algorithm allowed, or `none`/HMAC among them (an ID token from a provider is signed
    /// with the provider's key pair; an HMAC with the client secret is not accepted).
    #[error("ID token algorithms must be asymmetric and at least one")]
    Algorithms,
    /// The scopes do not include `openid`.
    #[error("scopes must include openid")]
    Scopes,
}

impl OidcClientBuilder {
    /// The client secret (sent by HTTP Basic to the token endpoint). Without one the client is
    /// public and relies on PKCE alone.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The login transactions, configured (by default [`Transactions::new`] on the store given
    /// to [`OidcClient::builder`]): for example
    /// [`insecure_for_http_development`](Transactions::insecure_for_http_development) on a
    /// plain-HTTP development server.
    pub fn transactions(mut self, transactions: Transactions) -> Self {
        self.transactions = transactions;
        self
    }

    /// Scopes, space-separated (default `openid email profile`); must include `openid`.
    pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
        self.scopes = scopes.into();
        self
    }

    /// Another spelling of the issuer that ID tokens may carry in `iss`.
    pub fn issuer_alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// The ID-token algorithms accepted (default `RS256` only, the one every OpenID provider
    /// must support). Keys of the provider's set with other algorithms are ignored.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Clock skew tolerated for `exp` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Another clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`OidcConfigError`].
    pub fn build(self) -> Result<OidcClient, OidcConfigError> {
        if self.algorithms.is_empty()
            || self.algorithms.iter().any(|a| a.as_str().starts_with("HS"))
        {
            return Err(OidcConfigError::Algorithms);
        }
        if !self.scopes.split(' ').any(|s| s == "openid") {
            return Err(OidcConfigError::Scopes);
        }
        let algorithms = self.algorithms.clone();
        let leeway = self.leeway;
        let keys = KeySetCache::new(
            Arc::clone(&self.http),
            self.metadata.jwks_uri.clone(),
            move |body: &[u8]| {
                let set = JwkSet::from_json(body, &algorithms)?;
                // Signature, algorithm and key only: the claims are checked afterwards, each
                // with its own error ([`check_id_token_claims`]).
                let validation = Validation::builder()
                    .required_claims([])
                    .allow_unvalidated_audience()
                    .leeway(leeway)
                    .build()?;
                Ok(Verifier::with_jwk_set(set, validation)?)
            },
        )
        .with_clock(Arc::clone(&self.clock));
        Ok(OidcClient {
            inner: Arc::new(Inner {
                http: self.http,
                metadata: self.metadata,
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_uri: self.redirect_uri,
                transactions: self.transactions,
                scopes: self.scopes,
                aliases: self.aliases,
                leeway: self.leeway,
                clock: self.clock,
                keys,
            }),
        })
    }
}

struct Inner {
    http: Arc<dyn HttpClient>,
    metadata: ProviderMetadata,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    transactions: Transactions,
    scopes: String,
    aliases: Vec<String>,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    keys: KeySetCache<Verifier>,
}

/// An OpenID Connect relying party for one provider and one client registration.
///
/// [`begin`](Self::begin) starts a login transaction and gives the redirect;
/// [`finish`](Self::finish) takes the callback's query and the browser's `Cookie` header and
/// checks, in order: the provider's error; the `state` (known, unexpired, this browser's —
/// and consumes it); RFC 9207 `iss`; the code exchange with the PKCE verifier; the ID token's
/// signature by a key of the provider's set (algorithm from the allow-list, never `none`,
/// never HMAC); then its claims (`iss`, `aud`, `azp`, `exp`, `iat`, `nonce`, `at_hash`).
/// The caller then maps [`Identity`](crate::Identity) (`iss`, `sub`) to a local account,
/// cycles its session ID (a login) and redirects to [`Completed::next`].
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.inner.metadata.issuer)
            .field("client_id", &self.inner.client_id)
            .field("redirect_uri", &self.inner.redirect_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: Option<String>,
}

impl OidcClient {
    /// A client for the provider described by `metadata` ([`ProviderMetadata::discover`] or
    /// [`ProviderMetadata::explicit`]), registered as `client_id` with `redirect_uri`, keeping
    /// its login transactions in `store` (your session store).
    pub fn builder(
        http: Arc<dyn HttpClient>,
        metadata: ProviderMetadata,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        store: Arc<dyn SessionStore>,
    ) -> OidcClientBuilder {
        OidcClientBuilder {
            http,
            metadata,
            client_id: client_id.into(),
            client_secret: None,
            redirect_uri: redirect_uri.into(),
            transactions: Transactions::new(store),
            scopes: "openid email profile".to_owned(),
            aliases: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            leeway: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }

    /// A builder for Google: its discovery document, and its second spelling of the issuer
    /// (`accounts.google.com`) accepted in `iss`.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError`] when the discovery document cannot be had or is refused.
    pub async fn google(
        http: Arc<dyn HttpClient>,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        store: Arc<dyn SessionStore>,
    ) -> Result<OidcClientBuilder, DiscoveryError> {
        let metadata = ProviderMetadata::discover(http.as_ref(), GOOGLE_ISSUER).await?;
        Ok(
            Self::builder(http, metadata, client_id, redirect_uri, store)
                .issuer_alias("accounts.google.com"),
        )
    }

    /// The login transactions (their cookie's name, for example).
    #[must_use]
    pub fn transactions(&self) -> &Transactions {
        &self.inner.transactions
    }

    /// The provider's configuration.
    #[must_use]
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// Starts a sign-in: stores a transaction and returns the provider URL to redirect the
    /// browser to, with the cookie binding it. `cookie_header` is the request's `Cookie`
    /// header; `next` is where to go afterwards (kept only if same-origin and relative).
    ///
    /// # Errors
    ///
    /// [`SignInError::Transaction`] when the store cannot keep the transaction.
    pub async fn begin(
        &self,
        next: Option<&str>,
        cookie_header: Option<&str>,
    ) -> Result<AuthorizationRedirect, SignInError> {
        let i = &self.inner;
        let begun = i
            .transactions
            .begin(&i.metadata.issuer, &i.redirect_uri, next, cookie_header)
            .await?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &i.client_id)
            .append_pair("redirect_uri", &i.redirect_uri)
            .append_pair("scope", &i.scopes)
            .append_pair("state", begun.state.expose())
            .append_pair("nonce", begun.nonce.expose())
            .append_pair("code_challenge", &begun.code_challenge)
            .append_pair("code_challenge_method", PkceVerifier::METHOD)
            .finish();
        let separator = if i.metadata.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(AuthorizationRedirect {
            location: format!("{}{separator}{query}", i.metadata.authorization_endpoint),
            set_cookie: begun.set_cookie,
        })
    }

    /// Completes a sign-in from the callback's query string (without `?`) and the browser's
    /// `Cookie` header. See the type's docs for the order of the checks.
    ///
    /// # Errors
    ///
    /// The first failed check, as a [`SignInError`].
    pub async fn finish(
        &self,
        query: &str,
        cookie_header: Option<&str>,
    ) -> Result<Completed, SignInError> {
        let i = &self.inner;
        let callback = Callback::from_query(query)?;
        let tx = i
            .transactions
            .consume(Some(&callback.state), cookie_header)
            .await?;
        callback.check_issuer(
            &tx.issuer,
            i.metadata.authorization_response_iss_parameter_supported,
        )?;
        let (id_token, access_token) = self
            .exchange(&callback.code, &tx.redirect_uri, &tx.pkce)
            .await?;
        let (alg, claims) = self.verify_signature(&id_token).await?;
        let now = i.clock.now().as_unix_millis() / 1000;
        let signed_in = check_id_token_claims(
            &claims,
            &Expectations {
                issuer: &i.metadata.issuer,
                issuer_aliases: &i.aliases,
                client_id: &i.client_id,
                nonce: tx.nonce.expose(),
                access_token: access_token.as_deref(),
                alg: alg.as_str(),
                now,
                leeway: i.leeway,
            },
        )?;
        Ok(Completed {
            signed_in,
            next: tx.next,
        })
    }

    /// The code exchange (RFC 6749 §4.1.3 with RFC 7636's `code_verifier`).
    async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        pkce: &PkceVerifier,
    ) -> Result<(String, Option<String>), ExchangeError> {
        let i = &self.inner;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.expose()),
        ];
        let basic = match &i.client_secret {
            Some(secret) => Some((i.client_id.as_str(), secret.as_str())),
            None => {
                form.push(("client_id", i.client_id.as_str()));
                None
            }
        };
        let response = i
            .http
            .post_form(&i.metadata.token_endpoint, &form, basic)
            .await
            .map_err(ExchangeError::Http)?;
        if response.status != 200 {
            let error = serde_json::from_slice::<TokenErrorResponse>(&response.body)
                .ok()
                .and_then(|e| e.error)
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
                .unwrap_or_else(|| "unknown".to_owned());
            return Err(ExchangeError::Refused {
                status: response.status,
                error,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&response.body).map_err(|_| ExchangeError::Malformed)?;
        let bearer = parsed
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        match (bearer, parsed.id_token) {
            (true, Some(id_token)) => Ok((id_token, parsed.access_token)),
            _ => Err(ExchangeError::Malformed),
        }
    }

    /// The ID token's signature by a key of the provider's set; on an unknown `kid`, the set is
    /// fetched again once (rate-limited by [`KeySetCache`]).
    async fn verify_signature(
        &self,
        id_token: &str,
    ) -> Result<(Algorithm, Map<String, Value>), SignInError> {
        let keys = &self.inner.keys;
        let verifier = keys.current().await?;
        match verify(&verifier, id_token) {
            Err(IdTokenError::UnknownKey) => match keys.refresh_for_unknown_key().await? {
                Some(fresh) => verify(&fresh, id_token).map_err(SignInError::from),
                None => Err(IdTokenError::UnknownKey.into()),
            },
            other => other.map_err(SignInError::from),
        }
    }
}

fn verify(
    verifier: &Verifier,
    token: &str,
) -> Result<(Algorithm, Map<String, Value>), IdTokenError> {
    let token = verifier
        .verify_token::<Map<String, Value>>(token)
        .map_err(|err| match err.kind() {
            ErrorKind::UnknownKid | ErrorKind::MissingKid => IdTokenError::UnknownKey,
            ErrorKind::NoneAlgorithm
            | ErrorKind::AlgorithmMismatch { .. }
            | ErrorKind::UnsupportedAlgorithm => IdTokenError::Algorithm,
            ErrorKind::InvalidSignature => IdTokenError::Signature,
            ErrorKind::Expired => IdTokenError::Expired,
            ErrorKind::NotYetValid => IdTokenError::NotYetValid,
            _ => IdTokenError::Malformed,
        })?;
    let alg = token.header.algorithm().ok_or(IdTokenError::Algorithm)?;
    let Ok(Value::Object(all)) = serde_json::to_value(&token.claims) else {
        return Err(IdTokenError::Malformed);
    };
    Ok((alg, all))
}
