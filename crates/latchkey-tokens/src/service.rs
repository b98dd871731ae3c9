//! [`TokenService`]: issue, refresh, verify and revoke token pairs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_jwt::{
    Audience, Claim, Claims, Clock, ErrorKind, KeySet, Signer, SystemClock, Validation, Verifier,
};
use rand::TryRngCore as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ConfigError, IssueError, RefreshError, Revocation, VerifyError};
use crate::refresh::{open, FamilyId, RefreshKey, SubjectTag};
use crate::store::{
    AccessCheck, AccessStatus, Epoch, FamilyView, NewFamily, RotateOutcome, RotateRequest,
    StoreError, TokenStore,
};

/// The header `typ` of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Default idle lifetime of a refresh-token family: 14 days, renewed by every refresh.
pub const DEFAULT_IDLE_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default absolute lifetime of a refresh-token family: 30 days from login, never extended.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default grace window in which the previous refresh token still gets the current successor.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Claim names the service writes itself; caller claims may not use them.
const RESERVED: [&str; 9] = [
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "sep",
];

/// Which revocation checks [`TokenService::verify`] makes beyond the signature and claims. Combine
/// with `|`. Each check costs nothing extra once any is on: all are answered by one
/// [`TokenStore::check_access`] call.
///
/// ```
/// use latchkey_tokens::Checks;
///
/// let checks = Checks::SUBJECT_EPOCH | Checks::FAMILY;
/// assert!(checks.contains(Checks::FAMILY) && !checks.contains(Checks::JTI));
/// assert_eq!(Checks::ALL, Checks::SUBJECT_EPOCH | Checks::FAMILY | Checks::JTI);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Checks(u8);

impl Checks {
    /// Signature and claims only: stateless, no store call.
    pub const NONE: Checks = Checks(0);
    /// Refuses tokens of a subject logged out everywhere ([`TokenService::revoke_subject`]) since
    /// the token was issued.
    pub const SUBJECT_EPOCH: Checks = Checks(1);
    /// Refuses tokens whose family (login) was revoked, expired, or killed by reuse detection.
    pub const FAMILY: Checks = Checks(2);
    /// Refuses tokens revoked one by one ([`TokenService::revoke`] of an access token).
    pub const JTI: Checks = Checks(4);
    /// Every check.
    pub const ALL: Checks = Checks(7);

    /// Whether every check of `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Checks) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Checks {
    type Output = Checks;
    fn bitor(self, rhs: Checks) -> Checks {
        Checks(self.0 | rhs.0)
    }
}

/// What a client is given: an access token and a refresh token, with the fields of an OAuth 2.0
/// token response (RFC 6749 §5.1). `Debug` redacts both tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    refresh_expires_in: u64,
    family: FamilyId,
    generation: u64,
}

impl TokenPair {
    /// The access token (a JWS, `typ: at+jwt`).
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The refresh token (opaque, 87 characters of base64url).
    #[must_use]
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// Always `Bearer`.
    #[must_use]
    pub fn token_type(&self) -> &'static str {
        "Bearer"
    }

    /// Seconds until the access token expires.
    #[must_use]
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// Seconds until the refresh token expires unless used (its idle or absolute deadline).
    #[must_use]
    pub fn refresh_expires_in(&self) -> u64 {
        self.refresh_expires_in
    }

    /// The family (login) both tokens belong to.
    #[must_use]
    pub fn family(&self) -> FamilyId {
        self.family
    }

    /// The refresh token's generation: 1 at login, +1 per rotation.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("family", &self.family)
            .field("generation", &self.generation)
            .finish()
    }
}

/// A verified access token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessToken<T> {
    /// The registered claims (`sub`, `jti`, `exp`, … are always set) and the caller's claims.
    pub claims: Claims<T>,
    /// The family (`sid`).
    pub family: FamilyId,
    /// The subject epoch the token was issued in (`sep`).
    pub epoch: u64,
}

impl<T> AccessToken<T> {
    /// The subject (`sub`).
    #[must_use]
    pub fn subject(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }
}

/// A token type hint of RFC 7009 §2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The hint from its RFC 7009 name; unknown names give `None` (the server then searches
    /// every token type, RFC 7009 §2.1).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "access_token" => Some(Self::AccessToken),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

/// Emitted when a retired refresh token is presented (theft or a broken client): the family is
/// revoked by then. Holds no token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReuseEvent {
    /// The revoked family.
    pub family: FamilyId,
    /// Its subject.
    pub subject: String,
    /// The generation presented.
    pub presented: u64,
    /// The family's generation at that moment.
    pub current: u64,
    /// Time since the family last rotated (for `presented == current - 1`, how long ago the
    /// presented token was retired; otherwise a lower bound).
    pub elapsed: Duration,
}

type ReuseListener = Arc<dyn Fn(&ReuseEvent) + Send + Sync + 'static>;

#[derive(Debug, Clone)]
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

#[derive(Serialize)]
struct AccessOut<'a> {
    sid: &'a str,
    sep: u64,
    #[serde(flatten)]
    custom: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct AccessIn<T> {
    sid: String,
    sep: u64,
    #[serde(flatten)]
    custom: T,
}

/// Issues, refreshes, verifies and revokes access/refresh token pairs against a
/// [`TokenStore`]. Cheap to clone (one `Arc`): hand clones to handlers and tasks.
///
/// - **Access token**: a JWS from `latchkey-jwt` with header `typ: at+jwt`, claims
///   `iss sub aud exp iat jti`, `sid` (the family) and `sep` (the subject epoch), plus the
///   caller's claims (RFC 9068's shape). Signed with the current key of a [`KeySet`], verified
///   with any key of it.
/// - **Refresh token**: opaque; family ID, generation and a MAC under a [`RefreshKey`] (see the
///   [`refresh`](crate::refresh) module). The store keeps only family state.
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TokenStore>,
    signer: Signer,
    verifier: Verifier,
    refresh_keys: Arc<[RefreshKey]>,
    issuer: String,
    audience: String,
    access_ttl: u64,
    idle: u64,
    absolute: u64,
    grace: u64,
    clock: SharedClock,
    on_reuse: Option<ReuseListener>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("store", &self.inner.store)
            .field("signer", &self.inner.signer)
            .field("refresh_keys", &self.inner.refresh_keys.len())
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("access_ttl", &self.inner.access_ttl)
            .field("idle", &self.inner.idle)
            .field("absolute", &self.inner.absolute)
            .field("grace", &self.inner.grace)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenService`]; [`build`](Self::build) refuses impossible configurations.
#[must_use]
pub struct TokenServiceBuilder {
    store: Arc<dyn TokenStore>,
    access_keys: KeySet,
    refresh_keys: Vec<RefreshKey>,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl: Duration,
    idle: Duration,
    absolute: Duration,
    grace: Duration,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    on_reuse: Option<ReuseListener>,
}

impl fmt::Debug for TokenServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenServiceBuilder")
            .field("store", &self.store)
            .field("access_keys", &self.access_keys)
            .field("refresh_keys", &self.refresh_keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenServiceBuilder {
    /// The `iss` of every access token, and the only issuer accepted (required).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` of every access token, and the only audience accepted (required).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Access-token lifetime (default 15 min). An access token never outlives its family.
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Idle lifetime of a family, renewed by every refresh (default 14 days).
    pub fn idle_lifetime(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Absolute lifetime of a family from login, never extended (default 30 days).
    pub fn absolute_lifetime(mut self, absolute: Duration) -> Self {
        self.absolute = absolute;
        self
    }

    /// Grace window for concurrent refreshes (default 30 s; zero turns it off): within it, the
    /// immediately previous refresh token gets the same successor as the winner.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Clock skew tolerated on access-token `exp` (default 0: the issuer is the verifier).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Also accepts refresh tokens minted under `key` (key rotation: the key given to
    /// [`TokenService::builder`] signs; the previous ones only verify).
    pub fn previous_refresh_key(mut self, key: RefreshKey) -> Self {
        self.refresh_keys.push(key);
        self
    }

    /// The clock for every time decision, in the service and (through the times it passes) in
    /// the store (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Called, after the family is revoked, whenever refresh-token reuse is detected (also
    /// logged as a `tracing` warning).
    pub fn on_reuse(mut self, listener: impl Fn(&ReuseEvent) + Send + Sync + 'static) -> Self {
        self.on_reuse = Some(Arc::new(listener));
        self
    }

    /// Checks the configuration and builds the service.
    ///
    /// # Errors
    /// [`ConfigError`] when the issuer or audience is missing or empty, when a lifetime is zero,
    /// when the idle lifetime exceeds the absolute one, or when the grace window is not shorter
    /// than the idle lifetime.
    pub fn build(self) -> Result<TokenService, ConfigError> {
        let issuer = self.issuer.filter(|s| !s.is_empty());
        let audience = self.audience.filter(|s| !s.is_empty());
        let (Some(issuer), Some(audience)) = (issuer, audience) else {
            return Err(ConfigError::MissingIssuerOrAudience);
        };
        let secs = |d: Duration| d.as_secs();
        if secs(self.access_ttl) == 0 || secs(self.idle) == 0 || secs(self.absolute) == 0 {
            return Err(ConfigError::Lifetime(
                "lifetimes must be at least one second",
            ));
        }
        if self.idle > self.absolute {
            return Err(ConfigError::Lifetime(
                "the idle lifetime exceeds the absolute lifetime",
            ));
        }
        if self.grace >= self.idle {
            return Err(ConfigError::Lifetime(
                "the grace window must be shorter than the idle lifetime",
            ));
        }
        let clock = SharedClock(self.clock);
        let validation = Validation::builder()
            .typ(ACCESS_TOKEN_TYP)
            .issuer(issuer.clone())
            .audience(audience.clone())
            .required_claims([Claim::Exp, Claim::Iat, Claim::Sub, Claim::Jti])
            .leeway(self.leeway)
            .clock(clock.clone())
            .build()
            .map_err(ConfigError::Validation)?;
        Ok(TokenService {
            inner: Arc::new(Inner {
                store: self.store,
                signer: Signer::from_key_set(&self.access_keys).with_typ(ACCESS_TOKEN_TYP),
                verifier: Verifier::with_key_set(self.access_keys, validation),
                refresh_keys: self.refresh_keys.into(),
                issuer,
                audience,
                access_ttl: secs(self.access_ttl),
                idle: secs(self.idle),
                absolute: secs(self.absolute),
                grace: secs(self.grace),
                clock,
                on_reuse: self.on_reuse,
            }),
        })
    }
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    if let Err(err) = rand::rngs::OsRng.try_fill_bytes(&mut bytes) {
        panic!("the operating system's random number generator failed: {err}");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn invalid_claim(claim: &str) -> VerifyError {
    VerifyError::Invalid(
        ErrorKind::InvalidCustomClaims {
            claim: Some(claim.to_owned()),
        }
        .into(),
    )
}

impl TokenService {
    /// A builder: `store` keeps family state, `access_keys` sign access tokens (current key)
    /// and verify them (any key), `refresh_key` authenticates refresh tokens.
    pub fn builder(
        store: Arc<dyn TokenStore>,
        access_keys: KeySet,
        refresh_key: RefreshKey,
    ) -> TokenServiceBuilder {
        TokenServiceBuilder {
            store,
            access_keys,
            refresh_keys: vec![refresh_key],
            issuer: None,
            audience: None,
            access_ttl: DEFAULT_ACCESS_TTL,
            idle: DEFAULT_IDLE_LIFETIME,
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
            grace: DEFAULT_GRACE,
            leeway: Duration::ZERO,
            clock: Arc::new(SystemClock),
            on_reuse: None,
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The current time by the service's clock.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// Starts a family (a login) for `subject` and returns its first pair. `claims` (a struct
    /// or map serializing to a JSON object, or `()`) go into every access token of the family.
    ///
    /// # Errors
    /// [`IssueError::InvalidClaims`] for an empty subject, claims that are not an object or use a
    /// name the service writes itself; [`IssueError::Store`] when the store fails.
    pub async fn issue<T: Serialize>(
        &self,
        subject: &str,
        claims: &T,
    ) -> Result<TokenPair, IssueError> {
        if subject.is_empty() {
            return Err(IssueError::InvalidClaims("the subject is empty"));
        }
        let custom = match serde_json::to_value(claims) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            _ => {
                return Err(IssueError::InvalidClaims(
                    "the claims must serialize to a JSON object",
                ))
            }
        };
        if custom.keys().any(|k| RESERVED.contains(&k.as_str())) {
            return Err(IssueError::InvalidClaims(
                "a claim is named like one the service writes (iss sub aud exp nbf iat jti sid sep)",
            ));
        }
        let stored = serde_json::to_string(&custom)
            .map_err(|_| IssueError::InvalidClaims("the claims cannot be encoded"))?;
        let now = self.now();
        let family = FamilyId::generate(&SubjectTag::of(subject));
        let record = NewFamily::new(
            subject.to_owned(),
            stored,
            now,
            now.saturating_add(self.inner.idle),
            now.saturating_add(self.inner.absolute),
        );
        let view = self
            .inner
            .store
            .create_family(&family, &record)
            .await
            .map_err(IssueError::Store)?;
        match self.pair(family, &view, &custom, now) {
            Ok(pair) => Ok(pair),
            Err(err) => {
                // Never leave a family behind whose tokens were not handed out.
                let _ = self.inner.store.revoke_family(&family, now).await;
                Err(IssueError::Sign(err))
            }
        }
    }

    fn pair(
        &self,
        family: FamilyId,
        view: &FamilyView,
        custom: &Map<String, Value>,
        now: u64,
    ) -> Result<TokenPair, latchkey_jwt::Error> {
        let exp = now
            .saturating_add(self.inner.access_ttl)
            .min(view.expires_at);
        let sid = family.to_base64url();
        let claims = Claims {
            iss: Some(self.inner.issuer.clone()),
            sub: Some(view.subject.clone()),
            aud: Some(Audience::from(self.inner.audience.as_str())),
            exp: Some(exp),
            nbf: None,
            iat: Some(now),
            jti: Some(random_jti()),
            custom: AccessOut {
                sid: &sid,
                sep: view.epoch,
                custom,
            },
        };
        let access_token = self.inner.signer.sign(&claims)?;
        let refresh_token = self.inner.refresh_keys[0].token(&family, view.generation);
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: exp.saturating_sub(now),
            refresh_expires_in: view.expires_at.saturating_sub(now),
            family,
            generation: view.generation,
        })
    }

    /// Exchanges a refresh token for a new pair, rotating the family in one atomic step.
    ///
    /// The current refresh token moves the family to the next generation. The immediately
    /// previous one, within the grace window, gets the **same** successor refresh token (and a
    /// fresh access token): racing tabs and a client retrying after a lost response both
    /// succeed. Any other retired token is reuse: the family is revoked, a [`ReuseEvent`]
    /// emitted, and [`RefreshError::Reused`] returned.
    ///
    /// # Errors
    /// [`RefreshError`]: `Reused`, `Expired`, `Revoked`, `Unknown` (also for anything that is
    /// not a refresh token of this service) — after which the client must log in again — or
    /// `StoreUnavailable`, after which it may retry.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, RefreshError> {
        let Some((family, presented)) = open(&self.inner.refresh_keys, refresh_token) else {
            return Err(RefreshError::Unknown);
        };
        let now = self.now();
        let request = RotateRequest::new(presented, now, self.inner.idle, self.inner.grace);
        let outcome = self
            .inner
            .store
            .rotate(&family, &request)
            .await
            .map_err(RefreshError::StoreUnavailable)?;
        let view = match outcome {
            RotateOutcome::Rotated(view) => view,
            RotateOutcome::Replayed(view) => {
                tracing::debug!(%family, presented, current = view.generation,
                    "refresh token replayed within the grace window");
                view
            }
            RotateOutcome::Reused {
                subject,
                presented,
                current,
                elapsed,
            } => {
                let event = ReuseEvent {
                    family,
                    subject,
                    presented,
                    current,
                    elapsed: Duration::from_secs(elapsed),
                };
                tracing::warn!(%family, subject = %event.subject, presented, current, elapsed,
                    "refresh token reuse detected: token family revoked");
                if let Some(listener) = &self.inner.on_reuse {
                    listener(&event);
                }
                return Err(RefreshError::Reused);
            }
            RotateOutcome::Expired => return Err(RefreshError::Expired),
            RotateOutcome::Revoked => return Err(RefreshError::Revoked),
            RotateOutcome::Unknown => return Err(RefreshError::Unknown),
        };
        let custom: Map<String, Value> = serde_json::from_str(&view.claims)
            .map_err(|e| RefreshError::StoreUnavailable(StoreError::Corrupt(Box::new(e))))?;
        self.pair(family, &view, &custom, now)
            .map_err(|e| RefreshError::StoreUnavailable(StoreError::Corrupt(Box::new(e))))
    }

    /// Verifies an access token — signature, `typ: at+jwt`, issuer, audience, expiry — and
    /// then, in one store call, the revocation `checks` asked for.
    ///
    /// A refresh token, or a JWT of another `typ` signed with the same key, is refused.
    ///
    /// # Errors
    /// [`VerifyError::Invalid`] for a token that fails verification, [`VerifyError::Revoked`]
    /// for a revoked one, [`VerifyError::StoreUnavailable`] when a check could not be made.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        access_token: &str,
        checks: Checks,
    ) -> Result<AccessToken<T>, VerifyError> {
        let claims: Claims<AccessIn<T>> = self
            .inner
            .verifier
            .verify(access_token)
            .map_err(VerifyError::Invalid)?;
        let Some(family) = FamilyId::from_base64url(&claims.custom.sid) else {
            return Err(invalid_claim("sid"));
        };
        // `sid` and `sub` are bound by the signature (the service wrote both, the family ID
        // starting with the subject's tag), so the family's tag is the subject's: no hashing
        // on the verification path.
        let subject = family.subject_tag();
        let epoch = claims.custom.sep;
        if checks != Checks::NONE {
            let check = AccessCheck::new(
                self.now(),
                subject,
                checks.contains(Checks::SUBJECT_EPOCH).then_some(epoch),
                checks.contains(Checks::FAMILY).then_some(&family),
                if checks.contains(Checks::JTI) {
                    claims.jti.as_deref()
                } else {
                    None
                },
            );
            match self
                .inner
                .store
                .check_access(&check)
                .await
                .map_err(VerifyError::StoreUnavailable)?
            {
                AccessStatus::Active => {}
                AccessStatus::SubjectRevoked => {
                    return Err(VerifyError::Revoked(Revocation::Subject))
                }
                AccessStatus::FamilyRevoked => {
                    return Err(VerifyError::Revoked(Revocation::Family))
                }
                AccessStatus::TokenRevoked => return Err(VerifyError::Revoked(Revocation::Token)),
            }
        }
        Ok(AccessToken {
            claims: claims.map_custom(|access| access.custom),
            family,
            epoch,
        })
    }

    /// Revokes a token, with the semantics of RFC 7009: a refresh token revokes its whole family
    /// (and so, through [`Checks::FAMILY`], every access token of it); an access token goes on
    /// the `jti` deny-list until it expires. `hint` only says which kind to try first. A token
    /// that is unknown, invalid, expired or already revoked is not an error.
    ///
    /// # Errors
    /// Only a store failure (RFC 7009 §2.2.1: the client may retry).
    pub async fn revoke(&self, token: &str, hint: Option<TokenTypeHint>) -> Result<(), StoreError> {
        let now = self.now();
        let access_first = hint == Some(TokenTypeHint::AccessToken);
        for try_access in [access_first, !access_first] {
            if try_access {
                let Ok(claims) = self
                    .inner
                    .verifier
                    .verify::<AccessIn<Map<String, Value>>>(token)
                else {
                    continue;
                };
                let (Some(sub), Some(jti), Some(exp)) = (&claims.sub, &claims.jti, claims.exp)
                else {
                    continue;
                };
                return self
                    .inner
                    .store
                    .deny_jti(&SubjectTag::of(sub), jti, now, exp)
                    .await;
            }
            if let Some((family, _)) = open(&self.inner.refresh_keys, token) {
                return self
                    .inner
                    .store
                    .revoke_family(&family, now)
                    .await
                    .map(|_| ());
            }
        }
        Ok(())
    }

    /// Revokes one family (logout of one login, e.g. by the `sid` of a verified access token):
    /// its refresh tokens stop working, and its access tokens fail [`Checks::FAMILY`]. Returns
    /// whether it was live; a missing or dead family is not an error.
    ///
    /// # Errors
    /// A store failure.
    pub async fn revoke_family(&self, family: &FamilyId) -> Result<bool, StoreError> {
        self.inner.store.revoke_family(family, self.now()).await
    }

    /// Logs `subject` out everywhere: every family created before this call is revoked, and
    /// every access token issued before it fails [`Checks::SUBJECT_EPOCH`], as soon as it
    /// returns.
    ///
    /// "Before" is exact, not rounded to the second: access tokens carry the subject's epoch
    /// number (`sep`), not only their `iat`, so a token issued in the same second as this
    /// call, but before it, is refused, and one issued in the same second, after it, works.
    ///
    /// # Errors
    /// A store failure; then nothing may have been revoked.
    pub async fn revoke_subject(&self, subject: &str) -> Result<Epoch, StoreError> {
        let now = self.now();
        let keep_until = now
            .saturating_add(self.inner.absolute)
            .saturating_add(self.inner.access_ttl);
        self.inner
            .store
            .revoke_subject(&SubjectTag::of(subject), now, keep_until)
            .await
    }
}
