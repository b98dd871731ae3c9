//! What each route of the login service does, without a web framework: the axum router
//! (`login::router`) and the actix-web app (`login::actix`) both call these and only translate
//! requests in and [`Reply`]/[`Refusal`] out, so the two servers behave alike by construction.

use http::StatusCode;
use latchkey::session::{Session, SessionError, SessionKey, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use super::users::{validate_id, validate_password, InputError, SignupError, Users};
use super::ApiError;

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
}

/// A route's refusal.
#[derive(Debug)]
pub enum Refusal {
    /// An answer the service chose (bad input, not logged in, …).
    Api(ApiError),
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

/// What a route returns.
pub type Outcome = Result<Reply, Refusal>;

fn validate(credentials: &Credentials) -> Result<(), Refusal> {
    validate_id(&credentials.id)?;
    validate_password(&credentials.password)?;
    Ok(())
}

/// `POST /signup`.
///
/// # Errors
/// Bad input (400), a taken ID (409), a failed hash (500).
pub async fn signup(users: &Users, credentials: Credentials) -> Outcome {
    validate(&credentials)?;
    let id = credentials.id;
    match users.signup(id.clone(), credentials.password).await {
        Ok(()) => Ok(Reply::Json(StatusCode::CREATED, json!({ "id": id }))),
        Err(SignupError::Taken) => {
            Err(ApiError::new(StatusCode::CONFLICT, "id_taken", "this id is already taken").into())
        }
        Err(SignupError::Hash(error)) => {
            tracing::error!(%error, "password hashing failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "something went wrong",
            )
            .into())
        }
    }
}

/// `POST /login`; `user_agent` is the request's `User-Agent`, kept for the device list.
///
/// # Errors
/// Bad input (400), wrong credentials (401), session failures.
pub async fn login(
    users: &Users,
    session: &Session,
    user_agent: Option<&str>,
    credentials: Credentials,
) -> Outcome {
    validate(&credentials)?;
    // Unknown user and wrong password: the same argon2 work, the same answer.
    if !users.verify(&credentials.id, credentials.password).await {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong id or password",
        )
        .into());
    }
    if let Some(agent) = user_agent {
        session.set_user_agent(agent);
    }
    // `login` sets the user, applies the per-user cap and cycles the session ID.
    session.login(credentials.id.clone()).await?;
    let csrf_token = session.csrf_token().await?;
    Ok(Reply::Json(
        StatusCode::OK,
        json!({ "id": credentials.id, "csrf_token": csrf_token }),
    ))
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
