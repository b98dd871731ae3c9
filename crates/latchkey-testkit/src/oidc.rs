//! [`MockOidc`]: an in-process OpenID provider on `127.0.0.1:0`, for testing a relying party
//! (latchkey-oauth, or your own) over real HTTP without a real provider.
//!
//! It serves discovery (OpenID Connect Discovery 1.0), the authorization endpoint and the token
//! endpoint of the authorization code flow with PKCE S256 (RFC 6749 §4.1, RFC 7636, OpenID
//! Connect Core 1.0 §3.1), RFC 9207's `iss` in authorization responses, and its JWK Set. It
//! follows those specifications strictly and invents no quirks of its own: a relying party that
//! works against it must also work against a real provider. The RS256 key is made at start and
//! can be rotated.
//!
//! For the relying party's failure and attack tests it has fault switches (a discovery document
//! that redirects, a key set that fails, a token endpoint that refuses) and ID-token tampering (a
//! closure that edits the header and claims before signing, and signing modes: `alg: none`,
//! HS256 keyed with the public key, a key not in the JWK Set, a random unknown `kid`), and it
//! counts the requests to each endpoint. [`RequestSink`] is a second server that only counts the
//! requests it gets: the target of a redirect nobody may follow.
//!
//! [`MockOidc::http_client`] is latchkey-oauth's own [`ReqwestClient`](latchkey_oauth::ReqwestClient)
//! (no redirects followed, a 10 s timeout, a 1 MiB cap): the tests talk to the mock through
//! the client a service would use.
//!
//! ## What the endpoints check
//!
//! - `GET /.well-known/openid-configuration`: `issuer`, the three endpoints, `code` only,
//!   `public` subjects, `RS256`, PKCE `S256`, `client_secret_basic` and `client_secret_post`,
//!   and RFC 9207's `authorization_response_iss_parameter_supported`.
//! - `GET /authorize`: `client_id` known and `redirect_uri` registered (exact match), else a
//!   `400` page and no redirect (RFC 6749 §4.1.2.1); then `response_type=code`, a `scope` with
//!   `openid`, a `code_challenge` with `code_challenge_method=S256`, `state` and `nonce`, and no
//!   repeated parameter, else a redirect with `error`, `error_description`, `state` and `iss`.
//!   Success: `302` to `redirect_uri?code=…&state=…&iss=…` (joined with `&` when the redirect URI
//!   has a query), for the user of [`MockOidc::sign_in_as`].
//! - `POST /token`: a form body; client authentication by exactly one of HTTP Basic (the ID and
//!   secret form-urlencoded inside, RFC 6749 §2.3.1) and `client_secret_post`, else
//!   `401 invalid_client` (`400 invalid_request` for both); `grant_type=authorization_code`; a
//!   code of this client, at most [`CODE_LIFETIME`] old, with the authorization request's
//!   `redirect_uri` and a `code_verifier` whose S256 challenge is the stored one, else
//!   `invalid_grant`. A code is single-use: the first request that presents it after the client
//!   authenticated consumes it, whatever that request's outcome. The answer: `access_token`,
//!   `token_type: Bearer`, `expires_in`, `id_token`, `scope`, with `Cache-Control: no-store`.
//!   The ID token is RS256 with the key's `kid`; its claims `iss`, `sub`, `aud` (the client ID),
//!   `exp` (`iat` + [`ID_TOKEN_LIFETIME`]), `iat`, `auth_time`, `nonce`, `at_hash`, `email`,
//!   `email_verified`.
//! - `GET /jwks`: the published public keys, `Cache-Control: public, max-age=N`.
//!
//! ## A sign-in against the mock
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! use latchkey_oauth::{Callback, HttpClient as _, PkceVerifier};
//! use latchkey_testkit::oidc::{MockOidc, DEFAULT_REDIRECT_URI};
//!
//! let mock = MockOidc::start().await;
//! let pkce = PkceVerifier::generate();
//! let challenge = pkce.challenge();
//!
//! // The browser's leg: the authorization request, answered with a redirect to the client.
//! let browser = reqwest::Client::builder()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()
//!     .unwrap();
//! let response = browser
//!     .get(mock.authorization_endpoint())
//!     .query(&[
//!         ("response_type", "code"),
//!         ("client_id", mock.client_id()),
//!         ("redirect_uri", DEFAULT_REDIRECT_URI),
//!         ("scope", "openid email"),
//!         ("state", "st-1"),
//!         ("nonce", "n-1"),
//!         ("code_challenge", challenge.as_str()),
//!         ("code_challenge_method", "S256"),
//!     ])
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 302);
//! let location = response.headers()["location"].to_str().unwrap();
//! let callback = Callback::from_query(location.split_once('?').unwrap().1).unwrap();
//! callback.check_issuer(mock.issuer(), true).unwrap();
//!
//! // The client's leg: the code for tokens, client_secret_basic.
//! let tokens = mock
//!     .http_client()
//!     .post_form(
//!         &mock.token_endpoint(),
//!         &[
//!             ("grant_type", "authorization_code"),
//!             ("code", callback.code.as_str()),
//!             ("redirect_uri", DEFAULT_REDIRECT_URI),
//!             ("code_verifier", pkce.expose()),
//!         ],
//!         Some((mock.client_id(), mock.client_secret())),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(tokens.status, 200);
//! let tokens: serde_json::Value = serde_json::from_slice(&tokens.body).unwrap();
//! assert_eq!(tokens["token_type"], "Bearer");
//! assert_eq!(mock.token_requests(), 1);
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use latchkey_jwt::jwk::JwkSet;
use latchkey_jwt::{Algorithm, RsaVerifyingKey};
use latchkey_oauth::{at_hash_of, pkce_challenge, HttpClient};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The client ID a [`MockOidc`] knows unless [`MockOidcBuilder::client`] says otherwise.
pub const DEFAULT_CLIENT_ID: &str = "latchkey-test-client";
/// The client secret of [`DEFAULT_CLIENT_ID`].
pub const DEFAULT_CLIENT_SECRET: &str = "latchkey-test-secret";
/// The redirect URI registered unless [`MockOidcBuilder::redirect_uri`] registers others.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The `sub` of the user who signs in unless [`MockOidc::sign_in_as`] names another.
pub const DEFAULT_SUBJECT: &str = "248289761001";
/// The e-mail address (verified) of the default user.
pub const DEFAULT_EMAIL: &str = "jane.doe@example.com";
/// The `kid` of the key made at start; rotations name their keys `k2`, `k3`, …
pub const FIRST_KID: &str = "k1";
/// The `kid` of the key that signs in [`IdTokenSigning::UnpublishedKey`] mode, never in the
/// JWK Set.
pub const UNPUBLISHED_KID: &str = "unpublished";
/// ID tokens expire this long after they are issued (`exp = iat + 600`).
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// The access token's `expires_in`.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// An authorization code is refused this long after it was issued (RFC 6749 §4.1.2 recommends
/// at most ten minutes).
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The key set's `Cache-Control: public, max-age` unless [`MockOidcBuilder::jwks_max_age`] says
/// otherwise.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// How the token endpoint signs ID tokens (set with [`MockOidc::sign_id_tokens`]). Every mode
/// but [`Current`](IdTokenSigning::Current) makes a token a correct relying party refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenSigning {
    /// RS256 with the current key, its `kid` in the header.
    #[default]
    Current,
    /// `"alg": "none"` and an empty signature (`header.payload.`), RFC 7519 §6's unsecured JWT.
    AlgNone,
    /// The algorithm-confusion attack: `"alg": "HS256"`, the current key's `kid`, and an HMAC
    /// keyed with the current public key's bytes in the given form.
    Hs256WithPublicKey(PublicKeyAsSecret),
    /// RS256 by a key of the right size whose `kid` ([`UNPUBLISHED_KID`]) is not in the JWK Set.
    UnpublishedKey,
    /// RS256 by the current key, but the header's `kid` is a fresh random one for each token
    /// (a relying party must not refetch the key set for every such token).
    RandomKid,
}

/// Which bytes of the RSA public key [`IdTokenSigning::Hs256WithPublicKey`] uses as the HMAC
/// secret: the forms an attacker tries, because a confused verifier might use any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyAsSecret {
    /// The modulus `n`, unsigned big-endian (the JWK's decoded `n`).
    JwkModulus,
    /// The JWK Set entry's JSON text, as the mock serves it.
    JwkJson,
    /// DER SubjectPublicKeyInfo.
    SpkiDer,
    /// PEM `PUBLIC KEY` text (SubjectPublicKeyInfo), LF line endings.
    SpkiPem,
    /// PEM `RSA PUBLIC KEY` text (PKCS #1), LF line endings.
    Pkcs1Pem,
}

/// A fault of the token endpoint (set with [`MockOidc::fail_token_endpoint`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFault {
    /// `400` with the RFC 6749 §5.2 error response `{"error": code}`.
    Error(String),
    /// This status, with a plain-text body (a provider that is down or broken).
    Status(u16),
}

/// The header and claims editor of [`MockOidc::tamper_id_token`].
type Tamper = dyn Fn(&mut Map<String, Value>, &mut Map<String, Value>) + Send + Sync;

/// One RS256 key of the mock.
#[derive(Clone)]
struct MockKey {
    kid: String,
    signer: rsa::pkcs1v15::SigningKey<Sha256>,
    public: rsa::PublicKey,
    verifying: RsaVerifyingKey,
}

impl fmt::Debug for MockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockKey")
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The OS random number generator (through `rand`'s thread RNG, seeded from it) for the `rsa`
/// crate's `rand_core` generation.
struct SystemRandom;

impl rsa::rand_core::TryRng for SystemRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::random())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::random())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::RngCore::fill_bytes(&mut rand::rng(), dst);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRandom {}

/// A fresh RSA-2048 key (RS256) named `kid`. Blocks for a moment: call it off the runtime.
fn generate_key(kid: String) -> MockKey {
    let private = rsa::PrivateKey::new(&mut SystemRandom, 2048)
        .unwrap_or_else(|e| panic!("RSA-2048 key generation failed: {e}"));
    let public = private.to_public_key();
    let verifying =
        RsaVerifyingKey::from_components(Algorithm::RS256, &public.n_bytes(), &public.e_bytes())
            .unwrap_or_else(|e| panic!("the generated RSA key is refused: {e}"))
            .with_kid(kid.clone());
    MockKey {
        kid,
        signer: rsa::pkcs1v15::SigningKey::new(private),
        public,
        verifying,
    }
}

async fn generate_key_off_runtime(kid: String) -> MockKey {
    tokio::task::spawn_blocking(move || generate_key(kid))
        .await
        .unwrap_or_else(|e| panic!("RSA key generation task failed: {e}"))
}

/// The user the authorization endpoint signs in.
#[derive(Clone, Debug)]
struct User {
    sub: String,
    email: String,
    email_verified: bool,
}

/// What an authorization code was issued for.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    scope: String,
    user: User,
    auth_time: u64,
    issued: Instant,
    used: bool,
}

#[derive(Default)]
struct Faults {
    discovery_redirect: Option<String>,
    response_iss: Option<String>,
    jwks_error: bool,
    jwks_unavailable: bool,
    token: Option<TokenFault>,
    signing: IdTokenSigning,
    tamper: Option<Arc<Tamper>>,
}

struct Inner {
    /// The published keys; the first signs.
    keys: Vec<MockKey>,
    next_kid: u32,
    unpublished: Option<MockKey>,
    user: User,
    codes: HashMap<String, Grant>,
    faults: Faults,
}

#[derive(Debug)]
struct Config {
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    jwks_max_age: Duration,
    iss_in_response: bool,
    consent_page: bool,
}

#[derive(Default)]
struct Counters {
    discovery: AtomicU64,
    authorize: AtomicU64,
    token: AtomicU64,
    jwks: AtomicU64,
}

struct Shared {
    issuer: String,
    config: Config,
    stopped: AtomicBool,
    counters: Counters,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a handler cannot leave the state half-written in a way that matters to a
        // test; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Builds a [`MockOidc`] with another client, other redirect URIs, another key-set lifetime or
/// without RFC 9207 `iss`. From [`MockOidc::builder`].
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// use std::time::Duration;
/// use latchkey_testkit::oidc::MockOidc;
///
/// let mock = MockOidc::builder()
///     .client("my-app", "my-secret")
///     .redirect_uri("http://127.0.0.1:8080/auth/callback")
///     .jwks_max_age(Duration::from_secs(600))
///     .start()
///     .await;
/// assert_eq!(mock.client_id(), "my-app");
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct MockOidcBuilder {
    client_id: String,
    client_secret: String,
    redirect_uris: Option<Vec<String>>,
    jwks_max_age: Duration,
    iss_in_response: bool,
    consent_page: bool,
}

impl MockOidcBuilder {
    /// The one client the provider knows (default [`DEFAULT_CLIENT_ID`] /
    /// [`DEFAULT_CLIENT_SECRET`]), a confidential client that authenticates with
    /// `client_secret_basic` or `client_secret_post`.
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = secret.into();
        self
    }

    /// Registers a redirect URI (matched exactly, RFC 6749 §3.1.2.3); the first call replaces
    /// [`DEFAULT_REDIRECT_URI`]. It may carry a query, never a fragment.
    ///
    /// # Panics
    ///
    /// If `uri` has a fragment (RFC 6749 §3.1.2).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        let uri = uri.into();
        assert!(
            !uri.contains('#'),
            "a redirect URI must not have a fragment"
        );
        self.redirect_uris.get_or_insert_with(Vec::new).push(uri);
        self
    }

    /// The key set's `Cache-Control: public, max-age` (default [`DEFAULT_JWKS_MAX_AGE`]).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// Whether a successful authorization answers with a consent page (`200`, a link
    /// `#continue` to the redirect back) instead of the `302` (default `false`). Real
    /// providers show such a page, and the redirect back then starts on the provider's site:
    /// a browser treats it as a cross-site navigation and withholds `SameSite=Strict` cookies
    /// from it, which the immediate `302` of the default does not show.
    pub fn consent_page(mut self, show: bool) -> Self {
        self.consent_page = show;
        self
    }

    /// Whether authorization responses carry RFC 9207's `iss` (default `true`); discovery's
    /// `authorization_response_iss_parameter_supported` says the same.
    pub fn authorization_response_iss(mut self, send: bool) -> Self {
        self.iss_in_response = send;
        self
    }

    /// Makes the first key ([`FIRST_KID`]), binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, or outside a tokio runtime.
    pub async fn start(self) -> MockOidc {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("MockOidc: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("MockOidc: no local address: {e}"));
        let key = generate_key_off_runtime(FIRST_KID.to_owned()).await;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            config: Config {
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_uris: self
                    .redirect_uris
                    .unwrap_or_else(|| vec![DEFAULT_REDIRECT_URI.to_owned()]),
                jwks_max_age: self.jwks_max_age,
                iss_in_response: self.iss_in_response,
                consent_page: self.consent_page,
            },
            stopped: AtomicBool::new(false),
            counters: Counters::default(),
            inner: Mutex::new(Inner {
                keys: vec![key],
                next_kid: 2,
                unpublished: None,
                user: User {
                    sub: DEFAULT_SUBJECT.to_owned(),
                    email: DEFAULT_EMAIL.to_owned(),
                    email_verified: true,
                },
                codes: HashMap::new(),
                faults: Faults::default(),
            }),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockOidc { shared, addr, task }
    }
}

/// An OpenID provider on `127.0.0.1:0`, serving discovery, the authorization code flow with
/// PKCE S256, and its JWK Set, for tests (see the [module docs](self)). It stops when dropped.
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// use latchkey_oauth::{HttpClient as _, ProviderMetadata};
/// use latchkey_testkit::oidc::MockOidc;
///
/// let mock = MockOidc::start().await;
/// let http = mock.http_client();
/// let metadata = ProviderMetadata::discover(&*http, mock.issuer()).await.unwrap();
/// assert_eq!(metadata.jwks_uri, mock.jwks_uri());
///
/// let jwks = http.get(&metadata.jwks_uri).await.unwrap();
/// assert!(String::from_utf8(jwks.body).unwrap().contains(r#""kid":"k1""#));
/// assert_eq!(mock.discovery_requests(), 1);
/// assert_eq!(mock.jwks_requests(), 1);
/// # }
/// ```
pub struct MockOidc {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl fmt::Debug for MockOidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockOidc")
            .field("issuer", &self.shared.issuer)
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Drop for MockOidc {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

impl MockOidc {
    /// A provider with the defaults: client [`DEFAULT_CLIENT_ID`], redirect URI
    /// [`DEFAULT_REDIRECT_URI`], RFC 9207 `iss` on, key-set max-age [`DEFAULT_JWKS_MAX_AGE`].
    ///
    /// # Panics
    ///
    /// As [`MockOidcBuilder::start`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder, for another client, other redirect URIs and the other settings.
    pub fn builder() -> MockOidcBuilder {
        MockOidcBuilder {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uris: None,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            iss_in_response: true,
            consent_page: false,
        }
    }

    /// A [`RequestSink`]: the place to point [`MockOidc::redirect_discovery_to`] at.
    ///
    /// # Panics
    ///
    /// As [`RequestSink::start`].
    pub async fn start_sink() -> RequestSink {
        RequestSink::start().await
    }

    /// Stops serving: the port is closed, and a connection a client still holds open gets `503`
    /// with `Connection: close`. Dropping the mock does the same.
    pub async fn stop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The address the mock listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{issuer}/.well-known/openid-configuration`.
    #[must_use]
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.issuer)
    }

    /// `{issuer}/authorize`.
    #[must_use]
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.shared.issuer)
    }

    /// `{issuer}/token`.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.shared.issuer)
    }

    /// `{issuer}/jwks`.
    #[must_use]
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// The client ID the provider knows.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    /// That client's secret.
    #[must_use]
    pub fn client_secret(&self) -> &str {
        &self.shared.config.client_secret
    }

    /// The registered redirect URIs.
    #[must_use]
    pub fn redirect_uris(&self) -> &[String] {
        &self.shared.config.redirect_uris
    }

    /// An HTTP client for this mock: latchkey-oauth's [`ReqwestClient`](latchkey_oauth::ReqwestClient)
    /// (any will do; the mock is plain HTTP on loopback).
    ///
    /// # Panics
    ///
    /// If reqwest cannot build a client (never without TLS to initialise).
    #[must_use]
    pub fn http_client(&self) -> Arc<dyn HttpClient> {
        Arc::new(
            latchkey_oauth::ReqwestClient::new()
                .unwrap_or_else(|e| panic!("MockOidc::http_client: {e}")),
        )
    }

    /// From now on, the authorization endpoint signs in this user (default [`DEFAULT_SUBJECT`],
    /// [`DEFAULT_EMAIL`], verified). A code already issued keeps the user it was issued for.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.sign_in_as("user-2", "max@example.org", false);
    /// # }
    /// ```
    pub fn sign_in_as(
        &self,
        sub: impl Into<String>,
        email: impl Into<String>,
        email_verified: bool,
    ) {
        self.shared.lock().user = User {
            sub: sub.into(),
            email: email.into(),
            email_verified,
        };
    }

    /// The `kid` of the key that signs now.
    #[must_use]
    pub fn current_kid(&self) -> String {
        self.shared.lock().keys[0].kid.clone()
    }

    /// The `kid`s in the JWK Set, the signing key's first.
    #[must_use]
    pub fn published_kids(&self) -> Vec<String> {
        self.shared
            .lock()
            .keys
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// Makes a new key (`k2`, `k3`, …) that signs from now on and replaces every published key
    /// in the JWK Set (the old key is gone at once, as after an emergency rotation). Returns
    /// its `kid`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// assert_eq!(mock.current_kid(), FIRST_KID);
    /// assert_eq!(mock.rotate_key().await, "k2");
    /// assert_eq!(mock.published_kids(), ["k2"]);
    /// # }
    /// ```
    pub async fn rotate_key(&self) -> String {
        self.rotate(false).await
    }

    /// Like [`rotate_key`](Self::rotate_key), but the old keys stay in the JWK Set after the
    /// new one (a planned rotation, where tokens signed just before still verify).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.rotate_key_keeping_old().await;
    /// assert_eq!(mock.published_kids(), ["k2", "k1"]);
    /// # }
    /// ```
    pub async fn rotate_key_keeping_old(&self) -> String {
        self.rotate(true).await
    }

    async fn rotate(&self, keep_old: bool) -> String {
        let kid = {
            let mut inner = self.shared.lock();
            let kid = format!("k{}", inner.next_kid);
            inner.next_kid += 1;
            kid
        };
        let key = generate_key_off_runtime(kid.clone()).await;
        let mut inner = self.shared.lock();
        if !keep_old {
            inner.keys.clear();
        }
        inner.keys.insert(0, key);
        kid
    }

    /// With `Some(url)`, discovery answers `302 Found` with `Location: url` (a relying party
    /// must refuse it and never contact `url`; see [`RequestSink`]); `None` serves the
    /// document again.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// let sink = MockOidc::start_sink().await;
    /// mock.redirect_discovery_to(Some(&sink.url()));
    /// # }
    /// ```
    pub fn redirect_discovery_to(&self, url: Option<&str>) {
        self.shared.lock().faults.discovery_redirect = url.map(str::to_owned);
    }

    /// With `Some(iss)`, authorization responses (successes and errors) carry this `iss`
    /// instead of the issuer: the mix-up attack RFC 9207 detects, where another provider's
    /// response reaches the client. `None` sends the issuer again (when
    /// [`MockOidcBuilder::authorization_response_iss`] is on).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::MockOidc;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.send_iss_in_responses(Some("https://attacker.example"));
    /// # }
    /// ```
    pub fn send_iss_in_responses(&self, iss: Option<&str>) {
        self.shared.lock().faults.response_iss = iss.map(str::to_owned);
    }

    /// While `true`, the JWK Set endpoint answers `500 Internal Server Error`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// use latchkey_oauth::HttpClient as _;
    ///
    /// mock.fail_jwks(true);
    /// let response = mock.http_client().get(&mock.jwks_uri()).await.unwrap();
    /// assert_eq!(response.status, 500);
    /// # }
    /// ```
    pub fn fail_jwks(&self, fail: bool) {
        self.shared.lock().faults.jwks_error = fail;
    }

    /// While `true`, the JWK Set endpoint answers `503 Service Unavailable` (the key server is
    /// down; takes precedence over [`fail_jwks`](Self::fail_jwks)).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.jwks_unavailable(true);
    /// # }
    /// ```
    pub fn jwks_unavailable(&self, down: bool) {
        self.shared.lock().faults.jwks_unavailable = down;
    }

    /// With `Some(fault)`, every token request gets that answer (after being counted, before
    /// any check, and without consuming the code); `None` serves tokens again.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.fail_token_endpoint(Some(TokenFault::Error("invalid_grant".into())));
    /// mock.fail_token_endpoint(Some(TokenFault::Status(503)));
    /// # }
    /// ```
    pub fn fail_token_endpoint(&self, fault: Option<TokenFault>) {
        self.shared.lock().faults.token = fault;
    }

    /// How ID tokens are signed from now on (default [`IdTokenSigning::Current`]).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.sign_id_tokens(IdTokenSigning::Hs256WithPublicKey(PublicKeyAsSecret::SpkiPem));
    /// mock.sign_id_tokens(IdTokenSigning::AlgNone);
    /// mock.reset_faults(); // RS256 with the current key again
    /// # }
    /// ```
    pub fn sign_id_tokens(&self, mode: IdTokenSigning) {
        self.shared.lock().faults.signing = mode;
    }

    /// Calls `edit` on the JOSE header and the claims of every ID token from now on, just before
    /// it is signed (in the mode of [`sign_id_tokens`](Self::sign_id_tokens), whatever the
    /// edited `alg` says).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::MockOidc;
    ///
    /// let mock = MockOidc::start().await;
    /// mock.tamper_id_token(|_header, claims| {
    ///     claims.insert("aud".into(), "someone-else".into());
    /// });
    /// # }
    /// ```
    pub fn tamper_id_token<F>(&self, edit: F)
    where
        F: Fn(&mut Map<String, Value>, &mut Map<String, Value>) + Send + Sync + 'static,
    {
        self.shared.lock().faults.tamper = Some(Arc::new(edit));
    }

    /// Stops tampering with ID tokens.
    pub fn stop_tampering(&self) {
        self.shared.lock().faults.tamper = None;
    }

    /// Clears every fault and tampering switch: the mock serves correctly again.
    pub fn reset_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    /// Requests to the discovery document so far.
    #[must_use]
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// use latchkey_testkit::oidc::*;
    ///
    /// let mock = MockOidc::start().await;
    /// use latchkey_oauth::ProviderMetadata;
    ///
    /// ProviderMetadata::discover(&*mock.http_client(), mock.issuer()).await.unwrap();
    /// assert_eq!(mock.discovery_requests(), 1);
    /// assert_eq!(mock.jwks_requests(), 0);
    /// # }
    /// ```
    pub fn discovery_requests(&self) -> u64 {
        self.shared.counters.discovery.load(Ordering::SeqCst)
    }

    /// Requests to the authorization endpoint so far.
    #[must_use]
    pub fn authorize_requests(&self) -> u64 {
        self.shared.counters.authorize.load(Ordering::SeqCst)
    }

    /// Requests to the token endpoint so far.
    #[must_use]
    pub fn token_requests(&self) -> u64 {
        self.shared.counters.token.load(Ordering::SeqCst)
    }

    /// Requests to the JWK Set so far.
    #[must_use]
    pub fn jwks_requests(&self) -> u64 {
        self.shared.counters.jwks.load(Ordering::SeqCst)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The answer on a connection that outlived [`MockOidc::stop`].
fn stopped() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONNECTION, "close")],
        "stopped",
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value, cache: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, cache),
        ],
        body.to_string(),
    )
        .into_response()
}

/// A consent page whose `#continue` link goes back to the relying party (`location` is a
/// registered redirect URI with a form-urlencoded query: no `"`, `<` or `>` in it).
fn consent_page(location: &str) -> Response {
    let href = location.replace('&', "&amp;");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><meta charset=\"utf-8\"><title>Mock provider</title>\
             <p>Sign in to the application?</p><a id=\"continue\" href=\"{href}\">Continue</a>"
        ),
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "unusable redirect location").into_response(),
    }
}

/// `uri` with `params` appended to its query, form-urlencoded (RFC 6749 §4.1.2: retaining the
/// query the redirect URI already has).
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let query = query.finish();
    let separator = match uri.split_once('?') {
        None => "?",
        Some((_, "")) => "",
        Some((_, q)) if q.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{separator}{query}")
}

/// Form parameters, each at most once (RFC 6749 §3.1, §3.2); an empty value counts as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(text: &[u8]) -> Self {
        Params(
            form_urlencoded::parse(text)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of `name`; `Err` when it is repeated.
    fn get(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        match found.next() {
            Some(_) => Err(()),
            None => Ok(first),
        }
    }

    fn repeated(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.0[..*i].iter().any(|(o, _)| o == k))
            .map(|(_, (k, _))| k.as_str())
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.counters.discovery.fetch_add(1, Ordering::SeqCst);
    if s.stopped.load(Ordering::SeqCst) {
        return stopped();
    }
    if let Some(target) = s.lock().faults.discovery_redirect.clone() {
        return redirect(&target);
    }
    let issuer = &s.issuer;
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "email", "email_verified"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": s.config.iss_in_response,
    });
    json_response(StatusCode::OK, &document, "public, max-age=3600")
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.counters.jwks.fetch_add(1, Ordering::SeqCst);
    if s.stopped.load(Ordering::SeqCst) {
        return stopped();
    }
    let inner = s.lock();
    if inner.faults.jwks_unavailable {
        return (StatusCode::SERVICE_UNAVAILABLE, "key server unavailable").into_response();
    }
    if inner.faults.jwks_error {
        return (StatusCode::INTERNAL_SERVER_ERROR, "key server error").into_response();
    }
    let set = match JwkSet::from_keys(inner.keys.iter().map(|k| k.verifying.clone())) {
        Ok(set) => set,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let cache = format!("public, max-age={}", s.config.jwks_max_age.as_secs());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CACHE_CONTROL, cache),
        ],
        set.to_json(),
    )
        .into_response()
}

/// A `400` page for a request whose client or redirect URI cannot be trusted: never redirected
/// (RFC 6749 §4.1.2.1).
fn bad_authorize_request(reason: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("invalid authorization request: {reason}"),
    )
        .into_response()
}

async fn authorize(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    s.counters.authorize.fetch_add(1, Ordering::SeqCst);
    if s.stopped.load(Ordering::SeqCst) {
        return stopped();
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let Ok(client_id) = params.get("client_id") else {
        return bad_authorize_request("client_id is repeated");
    };
    if client_id != Some(s.config.client_id.as_str()) {
        return bad_authorize_request("unknown client_id");
    }
    let Ok(redirect_uri) = params.get("redirect_uri") else {
        return bad_authorize_request("redirect_uri is repeated");
    };
    // OpenID Connect Core §3.1.2.1: redirect_uri is required, and must match exactly.
    let Some(redirect_uri) = redirect_uri.filter(|r| s.config.redirect_uris.iter().any(|u| u == r))
    else {
        return bad_authorize_request("redirect_uri is missing or not registered for this client");
    };
    let state = params.get("state").ok().flatten();
    let mixed_up = s.lock().faults.response_iss.clone();
    let iss = match &mixed_up {
        Some(other) => Some(other.as_str()),
        None => s.config.iss_in_response.then_some(s.issuer.as_str()),
    };
    let refuse = |error: &str, description: &str| {
        let mut out = vec![("error", error), ("error_description", description)];
        out.extend(state.map(|st| ("state", st)));
        out.extend(iss.map(|i| ("iss", i)));
        redirect(&with_query(redirect_uri, &out))
    };
    if params.repeated().is_some() {
        return refuse("invalid_request", "a parameter is repeated");
    }
    let one = |name: &str| params.get(name).ok().flatten();
    match one("response_type") {
        None => return refuse("invalid_request", "response_type is missing"),
        Some("code") => {}
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only the code response type is supported",
            )
        }
    }
    let scope = one("scope").unwrap_or("");
    if !scope.split(' ').any(|s| s == "openid") {
        return refuse("invalid_scope", "the openid scope is required");
    }
    let Some(code_challenge) = one("code_challenge") else {
        return refuse("invalid_request", "code_challenge is required (PKCE)");
    };
    if one("code_challenge_method") != Some("S256") {
        return refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not supported)",
        );
    }
    let valid_challenge = code_challenge.len() == 43
        && code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_challenge {
        return refuse("invalid_request", "code_challenge is not a S256 challenge");
    }
    let Some(state) = state else {
        return refuse("invalid_request", "state is required by this provider");
    };
    let Some(nonce) = one("nonce") else {
        return refuse("invalid_request", "nonce is required by this provider");
    };

    let code = random_token();
    {
        let mut inner = s.lock();
        let user = inner.user.clone();
        inner.codes.insert(
            code.clone(),
            Grant {
                client_id: s.config.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.to_owned(),
                nonce: nonce.to_owned(),
                scope: scope.to_owned(),
                user,
                auth_time: now_secs(),
                issued: Instant::now(),
                used: false,
            },
        );
    }
    let mut out = vec![("code", code.as_str()), ("state", state)];
    out.extend(iss.map(|i| ("iss", i)));
    let location = with_query(redirect_uri, &out);
    if s.config.consent_page {
        return consent_page(&location);
    }
    redirect(&location)
}

/// An RFC 6749 §5.2 error response.
fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({ "error": error, "error_description": description }),
        "no-store",
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"latchkey-mock\""),
        );
    }
    response
}

fn invalid_client() -> Response {
    token_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
}

fn invalid_grant(description: &str) -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// One `application/x-www-form-urlencoded` component, decoded (RFC 6749 §2.3.1 encodes the
/// client ID and secret this way before Basic encoding them).
fn form_decode(component: &str) -> Option<String> {
    let text = format!("v={component}");
    let mut pairs: Vec<String> = form_urlencoded::parse(text.as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    (pairs.len() == 1).then(|| pairs.remove(0))
}

/// The client ID and secret of an `Authorization: Basic` header; `Err` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    })();
    Some(parsed.ok_or(()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_code_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.counters.token.fetch_add(1, Ordering::SeqCst);
    if s.stopped.load(Ordering::SeqCst) {
        return stopped();
    }
    if let Some(fault) = s.lock().faults.token.clone() {
        return match fault {
            TokenFault::Error(code) => token_error(
                StatusCode::BAD_REQUEST,
                &code,
                "the mock was told to refuse",
            ),
            TokenFault::Status(status) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "token endpoint fault",
            )
                .into_response(),
        };
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if form_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let params = Params::parse(&body);
    if params.repeated().is_some() {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a parameter is repeated",
        );
    }
    let one = |name: &str| params.get(name).ok().flatten();

    // Client authentication (RFC 6749 §2.3.1): exactly one method.
    let (client_id, secret) = match (basic_credentials(&headers), one("client_secret")) {
        (Some(_), Some(_)) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one client authentication method",
            )
        }
        (Some(Err(())), None) => return invalid_client(),
        (Some(Ok((id, secret))), None) => {
            if one("client_id").is_some_and(|form_id| form_id != id) {
                return invalid_client();
            }
            (id, secret)
        }
        (None, Some(secret)) => match one("client_id") {
            Some(id) => (id.to_owned(), secret.to_owned()),
            None => return invalid_client(),
        },
        (None, None) => return invalid_client(),
    };
    if client_id != s.config.client_id || secret != s.config.client_secret {
        return invalid_client();
    }

    match one("grant_type") {
        None => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            )
        }
        Some("authorization_code") => {}
        Some(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only authorization_code is supported",
            )
        }
    }
    let Some(code) = one("code") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code is missing",
        );
    };

    let (grant, signing, tamper, key) = {
        let mut inner = s.lock();
        let Some(grant) = inner.codes.get_mut(code) else {
            return invalid_grant("unknown authorization code");
        };
        // Single use, whatever the outcome of this request (RFC 6749 §4.1.2).
        let first_use = !std::mem::replace(&mut grant.used, true);
        let grant = grant.clone();
        if !first_use {
            return invalid_grant("the authorization code was already used");
        }
        let faults = &inner.faults;
        (
            grant,
            faults.signing,
            faults.tamper.clone(),
            inner.keys[0].clone(),
        )
    };
    if grant.client_id != client_id {
        return invalid_grant("the code was issued to another client");
    }
    if grant.issued.elapsed() > CODE_LIFETIME {
        return invalid_grant("the authorization code expired");
    }
    if one("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri is not the one of the authorization request");
    }
    match one("code_verifier") {
        Some(v) if is_code_verifier(v) && pkce_challenge(v) == grant.code_challenge => {}
        _ => return invalid_grant("the PKCE code_verifier does not match the code_challenge"),
    }

    let signing_key = match signing {
        IdTokenSigning::UnpublishedKey => Some(unpublished_key(&s).await),
        _ => None,
    };
    let access_token = random_token();
    let now = now_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), s.issuer.clone().into());
    claims.insert("sub".into(), grant.user.sub.clone().into());
    claims.insert("aud".into(), client_id.clone().into());
    claims.insert("exp".into(), (now + ID_TOKEN_LIFETIME.as_secs()).into());
    claims.insert("iat".into(), now.into());
    claims.insert("auth_time".into(), grant.auth_time.into());
    claims.insert("nonce".into(), grant.nonce.clone().into());
    if let Some(at_hash) = at_hash_of(&access_token, "RS256") {
        claims.insert("at_hash".into(), at_hash.into());
    }
    claims.insert("email".into(), grant.user.email.clone().into());
    claims.insert("email_verified".into(), grant.user.email_verified.into());

    let id_token = match sign_id_token(signing, &key, signing_key.as_ref(), tamper, claims) {
        Ok(t) => t,
        Err(e) => return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e),
    };
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(),
            "id_token": id_token,
            "scope": grant.scope,
        }),
        "no-store",
    );
    // RFC 6749 §5.1: no-store, and Pragma for HTTP/1.0 caches.
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The key of [`IdTokenSigning::UnpublishedKey`], made the first time it is needed.
async fn unpublished_key(s: &Shared) -> MockKey {
    if let Some(key) = s.lock().unpublished.clone() {
        return key;
    }
    let key = generate_key_off_runtime(UNPUBLISHED_KID.to_owned()).await;
    s.lock().unpublished.get_or_insert(key).clone()
}

/// The secret of [`IdTokenSigning::Hs256WithPublicKey`].
fn public_key_bytes(key: &MockKey, form: PublicKeyAsSecret) -> Result<Vec<u8>, String> {
    let failed = |e: &dyn fmt::Display| format!("cannot encode the public key: {e}");
    Ok(match form {
        PublicKeyAsSecret::JwkModulus => key.public.n_bytes().to_vec(),
        PublicKeyAsSecret::JwkJson => {
            let set = JwkSet::from_keys([key.verifying.clone()]).map_err(|e| failed(&e))?;
            let doc: Value = serde_json::from_str(&set.to_json()).map_err(|e| failed(&e))?;
            doc["keys"][0].to_string().into_bytes()
        }
        PublicKeyAsSecret::SpkiDer => key
            .public
            .to_public_key_der()
            .map_err(|e| failed(&e))?
            .as_bytes()
            .to_vec(),
        PublicKeyAsSecret::SpkiPem => key
            .public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| failed(&e))?
            .into_bytes(),
        PublicKeyAsSecret::Pkcs1Pem => key
            .public
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| failed(&e))?
            .into_bytes(),
    })
}

/// Builds the header for `mode`, lets `tamper` edit header and claims, then signs as `mode` says.
fn sign_id_token(
    mode: IdTokenSigning,
    key: &MockKey,
    unpublished: Option<&MockKey>,
    tamper: Option<Arc<Tamper>>,
    mut claims: Map<String, Value>,
) -> Result<String, String> {
    let signer = unpublished.unwrap_or(key);
    let mut header = Map::new();
    header.insert("typ".into(), "JWT".into());
    let (alg, kid) = match mode {
        IdTokenSigning::AlgNone => ("none", key.kid.clone()),
        IdTokenSigning::Hs256WithPublicKey(_) => ("HS256", key.kid.clone()),
        IdTokenSigning::RandomKid => (
            "RS256",
            format!(
                "unknown-{}",
                URL_SAFE_NO_PAD.encode(rand::random::<[u8; 9]>())
            ),
        ),
        _ => ("RS256", signer.kid.clone()),
    };
    header.insert("alg".into(), alg.into());
    header.insert("kid".into(), kid.into());
    if let Some(tamper) = tamper {
        tamper(&mut header, &mut claims);
    }
    let mut input = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()));
    let signature: Vec<u8> = match mode {
        IdTokenSigning::AlgNone => Vec::new(),
        IdTokenSigning::Hs256WithPublicKey(form) => {
            let secret = public_key_bytes(key, form)?;
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&secret)
                .map_err(|e| format!("HMAC key: {e}"))?;
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => signer
            .signer
            .try_sign(input.as_bytes())
            .map_err(|e| format!("RSA signing failed: {e}"))?
            .to_vec(),
    };
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(input)
}

/// A server on `127.0.0.1:0` that answers every request `404` and counts it: point a redirect
/// at it, and `requests() == 0` proves that nobody followed.
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// use latchkey_oauth::ProviderMetadata;
/// use latchkey_testkit::oidc::{MockOidc, RequestSink};
///
/// let mock = MockOidc::start().await;
/// let sink = RequestSink::start().await;
/// mock.redirect_discovery_to(Some(&sink.url()));
/// assert!(ProviderMetadata::discover(&*mock.http_client(), mock.issuer()).await.is_err());
/// assert_eq!(sink.requests(), 0);
/// # }
/// ```
pub struct RequestSink {
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RequestSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSink")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl Drop for RequestSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RequestSink {
    /// Binds `127.0.0.1:0` and starts counting.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, or outside a tokio runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("RequestSink: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("RequestSink: no local address: {e}"));
        let count = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&count);
        let app = Router::new().fallback(any(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                StatusCode::NOT_FOUND
            }
        }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RequestSink { addr, count, task }
    }

    /// `http://127.0.0.1:PORT/sink`: any path counts.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/sink", self.addr)
    }

    /// Requests received so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}
