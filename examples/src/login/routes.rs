//! What each route of the login service does, without a web framework: the axum router
//! (`login::router`) and the actix-web app (`login::actix`) both call these and only translate
//! requests in and [`Reply`]/[`Refusal`] out, so the two servers behave alike by construction.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use latchkey::session::{
    RequestOutcome, Session, SessionError, SessionKey, SessionResponse, SessionStore, Timestamp,
};
use latchkey::throttle::{Attempt, Throttle, ThrottleError, ThrottleKey};
use serde::Deserialize;
use serde_json::{json, Value};

use super::users::{validate_id, validate_password, InputError, Users, UsersError};
use super::ApiError;

/// What the routes work with, built once at start-up: the accounts, the login throttle and
/// the session store (for `/health`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Services {
    /// The accounts (a database) and the bounded argon2 work.
    pub users: Users,
    /// Failed-login budgets per account and per client address.
    pub throttle: Throttle,
    /// The session store the session layer uses, probed by `/health`.
    pub sessions: Arc<dyn SessionStore>,
    /// "Sign in with …", when a provider is configured.
    pub oidc: Option<super::oidc::OidcSignIn>,
}

/// The client address a login is counted against: the last entry of the configured
/// forwarding header when it holds an IP address (the one the nearest proxy added: the only
/// entry a client cannot forge, provided that proxy is the only way in), else the peer
/// address of the connection. `None` when neither is known; the login is then throttled per
/// account only.
///
/// ```
/// use std::net::IpAddr;
/// use latchkey_examples::login::client_ip;
///
/// let peer: IpAddr = "10.0.0.2".parse().unwrap();
/// assert_eq!(client_ip(Some(peer), None), Some(peer));
/// assert_eq!(
///     client_ip(Some(peer), Some("198.51.100.7, 203.0.113.9")),
///     Some("203.0.113.9".parse().unwrap())
/// );
/// assert_eq!(client_ip(Some(peer), Some("junk")), Some(peer));
/// ```
#[must_use]
pub fn client_ip(peer: Option<IpAddr>, forwarded: Option<&str>) -> Option<IpAddr> {
    forwarded
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .or(peer)
}

/// `{id, password}` as sent to `/signup` and `/login`. Unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    id: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A route's successful answer.
#[derive(Debug)]
pub enum Reply {
    /// `status` with a JSON body.
    Json(StatusCode, Value),
    /// `204 No Content`.
    NoContent,
    /// `status` with a JSON body, from a route that finished its session itself: the adapter
    /// adds the session's `Set-Cookie` (or session header); its session layer then has
    /// nothing left to write.
    JsonWithSession(StatusCode, Value, SessionResponse),
    /// `303 See Other` to `location`, with a `Set-Cookie` when given.
    Redirect {
        /// Where to.
        location: String,
        /// A cookie to set on the way.
        set_cookie: Option<String>,
    },
    /// `status` with an HTML page.
    Html(StatusCode, String),
}

/// A route's refusal.
#[derive(Debug)]
pub enum Refusal {
    /// An answer the service chose (bad input, not logged in, …).
    Api(ApiError),
    /// An answer to retry later: the adapter adds `Retry-After: after_secs` and a
    /// `retry_after` field to the JSON body (429 throttled, 503 busy or unavailable).
    Retry {
        /// Status, code and message.
        error: ApiError,
        /// Seconds until a retry may succeed.
        after_secs: u64,
    },
    /// A session failure for the adapter to map (store unavailable → 503, else an opaque 500).
    Session(SessionError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Api(error)
    }
}

/// "Not logged in" is 401 and a full device list a 409; store trouble and anything else go to
/// the adapter.
impl From<SessionError> for Refusal {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NotLoggedIn => Refusal::Api(ApiError::UNAUTHENTICATED),
            SessionError::TooManySessions => Refusal::Api(ApiError::new(
                StatusCode::CONFLICT,
                "too_many_sessions",
                "this account is logged in on too many devices",
            )),
            other => Refusal::Session(other),
        }
    }
}

impl From<InputError> for Refusal {
    fn from(error: InputError) -> Self {
        Refusal::Api(ApiError::new(
            StatusCode::BAD_REQUEST,
            error.code(),
            error.message(),
        ))
    }
}

/// 429: the login throttle refused the attempt before any password work.
pub const TOO_MANY_ATTEMPTS: ApiError = ApiError::new(
    StatusCode::TOO_MANY_REQUESTS,
    "too_many_attempts",
    "too many failed attempts: wait before trying again",
);

/// 503: the account database or the throttle store cannot be reached.
pub const UNAVAILABLE: ApiError = ApiError::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "unavailable",
    "the service is temporarily unavailable: try again shortly",
);

/// 503: every password-hashing slot stayed busy.
pub const BUSY: ApiError = ApiError::new(
    StatusCode::SERVICE_UNAVAILABLE,
    "busy",
    "the service is busy: try again shortly",
);

fn unavailable() -> Refusal {
    Refusal::Retry {
        error: UNAVAILABLE,
        after_secs: 5,
    }
}

impl From<UsersError> for Refusal {
    fn from(error: UsersError) -> Self {
        match error {
            UsersError::Taken => {
                ApiError::new(StatusCode::CONFLICT, "id_taken", "this id is already taken").into()
            }
            UsersError::Busy => Refusal::Retry {
                error: BUSY,
                after_secs: 1,
            },
            UsersError::Unavailable(error) => {
                // The source is the driver's message: never a password or a hash (those are
                // bound parameters, which sqlx does not put into its errors).
                let detail = std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::warn!(%detail, "account database unavailable");
                unavailable()
            }
            UsersError::Hash(error) => {
                tracing::error!(%error, "password hashing failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "something went wrong",
                )
                .into()
            }
        }
    }
}

impl From<ThrottleError> for Refusal {
    /// The throttle store failed: refuse (fail closed), never guess unthrottled.
    fn from(error: ThrottleError) -> Self {
        tracing::warn!(%error, "login throttle store unavailable");
        unavailable()
    }
}

/// What a route returns.
pub type Outcome = Result<Reply, Refusal>;

/// `{current_password, new_password}` as sent to `/password`. Unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange([redacted])")
    }
}

/// The throttle's place for one password check by `account` from `client`, or the 429.
async fn throttle_place(
    throttle: &Throttle,
    client: Option<IpAddr>,
    account: &str,
) -> Result<latchkey::throttle::Place, Refusal> {
    // The client first: a throttled client then spends no account budget.
    let mut keys = Vec::with_capacity(2);
    keys.extend(client.map(ThrottleKey::client_ip));
    keys.push(ThrottleKey::account(account));
    match throttle.attempt(&keys).await? {
        Attempt::Allowed(place) => Ok(place),
        refused @ Attempt::Throttled { .. } => Err(Refusal::Retry {
            error: TOO_MANY_ATTEMPTS,
            after_secs: refused.retry_after_secs().unwrap_or(1),
        }),
    }
}

/// Reports a successful password check to the throttle. A store failure here only means the
/// budget runs out on its own; the login itself stands.
async fn report_success(place: latchkey::throttle::Place) {
    if let Err(error) = place.succeeded().await {
        tracing::warn!(%error, "could not reset a login budget");
    }
}

fn invalid_credentials() -> Refusal {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "wrong id or password",
    )
    .into()
}

fn validate(credentials: &Credentials) -> Result<(), Refusal> {
    validate_id(&credentials.id)?;
    validate_password(&credentials.password)?;
    Ok(())
}

/// `POST /signup`.
///
/// # Errors
/// Bad input (400), a taken ID (409, decided by the database's unique key), the database or
/// the hashing slots unavailable (503), a failed hash (500).
pub async fn signup(services: &Services, credentials: Credentials) -> Outcome {
    validate(&credentials)?;
    let id = credentials.id;
    services
        .users
        .signup(id.clone(), credentials.password)
        .await?;
    Ok(Reply::Json(StatusCode::CREATED, json!({ "id": id })))
}

/// `POST /login`; `client` is the caller's address ([`client_ip`]), `user_agent` the request's
/// `User-Agent`, kept for the device list.
///
/// The throttle is asked first: once the account's or the client's budget is spent the answer
/// is 429 with `Retry-After`, before any argon2 work, and it is the same for a known and an
/// unknown ID. A right password resets the account's budget.
///
/// # Errors
/// Bad input (400), wrong credentials (401), throttled (429), the database, the throttle store
/// or the hashing slots unavailable (503), session failures.
pub async fn login(
    services: &Services,
    session: &Session,
    client: Option<IpAddr>,
    user_agent: Option<&str>,
    credentials: Credentials,
) -> Outcome {
    validate(&credentials)?;
    let place = throttle_place(&services.throttle, client, &credentials.id).await?;
    // Unknown user and wrong password: the same argon2 work, the same answer. A failure needs
    // nothing more: the attempt was counted when it started.
    let Some(verified) = services
        .users
        .verify(&credentials.id, credentials.password)
        .await?
    else {
        return Err(invalid_credentials());
    };
    report_success(place).await;
    if let Some(agent) = user_agent {
        session.set_user_agent(agent);
    }
    // `login` sets the user, applies the per-user cap and cycles the session ID.
    session.login(credentials.id.clone()).await?;
    let csrf_token = session.csrf_token().await?;
    // The session is written now, not after the handler, and the password is checked again
    // once it exists. A password change replaces the hash first and then signs every session
    // of the account out, so either this check sees the new hash, or the session was stored
    // before the change began and the change signs it out: a login with the old password
    // never outlives a change.
    let written = session.finish(RequestOutcome::Success).await?;
    if !services
        .users
        .still_current(&credentials.id, &verified)
        .await?
    {
        if let Some(key) = written.issued_key() {
            services
                .sessions
                .delete(&key)
                .await
                .map_err(|err| Refusal::Session(SessionError::Store(err)))?;
        }
        return Err(invalid_credentials());
    }
    Ok(Reply::JsonWithSession(
        StatusCode::OK,
        json!({ "id": credentials.id, "csrf_token": csrf_token }),
        written,
    ))
}

/// `POST /password`: changes the logged-in user's password and logs out every other device.
/// The current password is checked under the same throttle as a login (this is a password
/// check too), the new one against the password rule. The session's own ID is cycled.
///
/// # Errors
/// Not logged in (401), a new password against the rule (400), a wrong current password (403),
/// throttled (429), the database, the throttle store or the hashing slots unavailable (503),
/// session failures.
pub async fn change_password(
    services: &Services,
    session: &Session,
    client: Option<IpAddr>,
    change: PasswordChange,
) -> Outcome {
    let Some(id) = session.user_id().await? else {
        return Err(ApiError::UNAUTHENTICATED.into());
    };
    validate_password(&change.new_password)?;
    let place = throttle_place(&services.throttle, client, &id).await?;
    if !services
        .users
        .change_password(&id, change.current_password, change.new_password)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        )
        .into());
    }
    report_success(place).await;
    // The hash is already replaced, so a login with the old password that is still in flight
    // is refused by its own check, made once its session is stored (see `login`); every
    // session that exists now goes here.
    let revoked = session.revoke_other_devices().await?;
    session.cycle_id().await?;
    Ok(Reply::Json(StatusCode::OK, json!({ "revoked": revoked })))
}

/// How long `/health` waits for each backend.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: probes the session store and the account database (one cheap round trip
/// each, never creating a session) and answers 200 when both answer, else 503, with
/// `{"status", "sessions", "accounts", "database"}`.
pub async fn health(services: &Services) -> (StatusCode, Value) {
    let sessions = tokio::time::timeout(HEALTH_TIMEOUT, services.sessions.ping());
    let accounts = tokio::time::timeout(HEALTH_TIMEOUT, services.users.store().ping());
    let (sessions, accounts) = tokio::join!(sessions, accounts);
    let sessions_ok = matches!(sessions, Ok(Ok(())));
    let accounts_ok = matches!(accounts, Ok(Ok(())));
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if sessions_ok && accounts_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({
            "status": word(sessions_ok && accounts_ok),
            "sessions": word(sessions_ok),
            "accounts": word(accounts_ok),
            "database": services.users.store().backend(),
        }),
    )
}

/// `GET /me`.
///
/// # Errors
/// Not logged in (401), session failures.
pub async fn me(session: &Session) -> Outcome {
    let Some(id) = session.user_id().await? else {
        return Err(ApiError::UNAUTHENTICATED.into());
    };
    let csrf_token = session.csrf_token().await?;
    Ok(Reply::Json(
        StatusCode::OK,
        json!({ "id": id, "csrf_token": csrf_token }),
    ))
}

/// `POST /logout`: always 204, logged in or not.
#[must_use]
pub fn logout(session: &Session) -> Reply {
    session.destroy();
    Reply::NoContent
}

fn unix_seconds(timestamp: Timestamp) -> u64 {
    timestamp.as_unix_millis() / 1000
}

/// `GET /sessions`: the user's devices.
///
/// # Errors
/// Not logged in (401), session failures.
pub async fn sessions(session: &Session) -> Outcome {
    let devices = session.list_devices().await?;
    let list: Vec<_> = devices
        .iter()
        .map(|device| {
            json!({
                "id": device.info.key.to_hex(),
                "created_at": unix_seconds(device.info.created_at),
                "last_seen": unix_seconds(device.info.last_seen),
                "user_agent": device.info.metadata.user_agent,
                "current": device.current,
            })
        })
        .collect();
    Ok(Reply::Json(StatusCode::OK, json!({ "sessions": list })))
}

/// `DELETE /sessions/{id}`: remote logout of one of the user's devices.
///
/// # Errors
/// Not logged in (401), not one of the user's sessions (404), session failures.
pub async fn revoke_session(session: &Session, id: &str) -> Outcome {
    let not_found = ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_session",
        "no such session among yours",
    );
    // Check the login first, so that a malformed ID tells an anonymous caller nothing.
    if session.user_id().await?.is_none() {
        return Err(ApiError::UNAUTHENTICATED.into());
    }
    let key = SessionKey::from_hex(id).ok_or(not_found)?;
    if session.revoke_device(&key).await? {
        Ok(Reply::NoContent)
    } else {
        Err(not_found.into())
    }
}

/// `POST /logout-all`: log out every other device.
///
/// # Errors
/// Not logged in (401), session failures.
pub async fn logout_all(session: &Session) -> Outcome {
    let revoked = session.revoke_other_devices().await?;
    Ok(Reply::Json(StatusCode::OK, json!({ "revoked": revoked })))
}
