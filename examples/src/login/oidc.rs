//! "Sign in with …": the login service's OpenID Connect routes, framework-free like
//! [`routes`](super::routes). latchkey-oauth does the protocol; this file maps the provider's
//! identity to a local account and logs the session in, exactly as a password login does.

use std::sync::Arc;

use http::StatusCode;
use latchkey::session::Session;
use latchkey_oauth::{
    CallbackError, ExchangeError, KeySetError, OidcClient, SignInError, TransactionError,
};
use serde_json::json;

use super::routes::{Outcome, Refusal, Reply, Services};
use super::ApiError;

/// A configured provider: the relying party and the name on the button. `_provider` keeps an
/// in-process mock provider alive as long as the service (the demo set-up).
#[derive(Clone)]
pub struct OidcSignIn {
    /// The relying party for the provider.
    pub client: OidcClient,
    /// The provider's name, for "Sign in with {name}".
    pub name: String,
    /// Whatever must live as long as the service (an in-process provider).
    pub keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for OidcSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignIn")
            .field("client", &self.client)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const NOT_CONFIGURED: ApiError = ApiError::new(
    StatusCode::NOT_FOUND,
    "no_provider",
    "no sign-in provider is configured",
);

/// `GET /oidc`: `{"name"}` of the provider, for the page's button; 404 when none is set up.
///
/// # Errors
/// 404 without a provider.
pub fn provider(services: &Services) -> Outcome {
    let oidc = services.oidc.as_ref().ok_or(NOT_CONFIGURED)?;
    Ok(Reply::Json(StatusCode::OK, json!({ "name": oidc.name })))
}

/// `GET /oidc/start?next=/path`: stores a login transaction and sends the browser to the
/// provider (`303`), with the cookie that binds the sign-in to this browser. Creates no
/// session.
///
/// # Errors
/// 404 without a provider; 503 when the session store cannot keep the transaction.
pub async fn start(services: &Services, query: Option<&str>, cookie: Option<&str>) -> Outcome {
    let oidc = services.oidc.as_ref().ok_or(NOT_CONFIGURED)?;
    let next = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "next")
            .map(|(_, value)| value.into_owned())
    });
    let redirect = oidc
        .client
        .begin(next.as_deref(), cookie)
        .await
        .map_err(refusal)?;
    Ok(Reply::Redirect {
        location: redirect.location,
        set_cookie: Some(redirect.set_cookie),
    })
}

/// `GET /oidc/callback?…`: completes the sign-in ([`OidcClient::finish`]: every check), finds
/// or creates the local account of the (`iss`, `sub`) identity, logs the session in (its ID is
/// cycled, the per-account cap applies, it is listed under "my devices") and answers a small
/// page that moves on to `next`.
///
/// The page navigates with a `<meta http-equiv="refresh">` rather than a `303`: the callback is
/// the end of a cross-site redirect chain, and a browser does not send a `SameSite=Strict`
/// session cookie on a redirect that chain started, while a navigation from this page is
/// same-site.
///
/// # Errors
/// 400 for a refused sign-in (which check failed, in `error`), 503 when the provider or a
/// store cannot be reached, session failures.
pub async fn callback(
    services: &Services,
    session: &Session,
    query: Option<&str>,
    cookie: Option<&str>,
    user_agent: Option<&str>,
) -> Outcome {
    let oidc = services.oidc.as_ref().ok_or(NOT_CONFIGURED)?;
    let completed = oidc
        .client
        .finish(query.unwrap_or(""), cookie)
        .await
        .map_err(refusal)?;
    let identity = &completed.signed_in.identity;
    let id = services
        .users
        .sign_in_external(&identity.issuer, &identity.subject)
        .await?;
    if let Some(agent) = user_agent {
        session.set_user_agent(agent);
    }
    session.login(id).await?;
    Ok(Reply::Html(StatusCode::OK, landing_page(&completed.next)))
}

/// The page that moves on to `next` (already a same-origin relative path of visible ASCII).
fn landing_page(next: &str) -> String {
    let next = html_attribute(next);
    format!(
        "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={next}\">\
         <title>Signed in</title><p>Signed in. <a href=\"{next}\">Continue</a></p>"
    )
}

fn html_attribute(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// A refused sign-in's answer: the failed check's name in `error`, never a token or a code.
fn refusal(error: SignInError) -> Refusal {
    tracing::info!(error = %error, "sign-in with the provider refused");
    let api = |code: &'static str, message: &'static str| {
        Refusal::Api(ApiError::new(StatusCode::BAD_REQUEST, code, message))
    };
    let unavailable = |message: &'static str| Refusal::Retry {
        error: ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        after_secs: 5,
    };
    match error {
        SignInError::Callback(CallbackError::Provider { .. }) => api(
            "provider_refused",
            "the provider did not sign you in (cancelled or refused)",
        ),
        SignInError::Callback(CallbackError::IssuerMismatch) => api(
            "issuer_mismatch",
            "the answer came from another provider than the one the sign-in started with",
        ),
        SignInError::Callback(_) => api("bad_callback", "the provider's answer is incomplete"),
        SignInError::Transaction(TransactionError::Store(_)) => {
            unavailable("sign-in is unavailable; try again shortly")
        }
        SignInError::Transaction(TransactionError::Expired) => {
            api("sign_in_expired", "the sign-in took too long; start again")
        }
        SignInError::Transaction(TransactionError::NotThisBrowser) => api(
            "not_this_browser",
            "this sign-in was not started in this browser; start again",
        ),
        SignInError::Transaction(_) => api(
            "unknown_sign_in",
            "this sign-in is unknown or already completed; start again",
        ),
        SignInError::Exchange(ExchangeError::Http(_))
        | SignInError::KeySet(KeySetError::Http(_)) => {
            unavailable("the provider cannot be reached; try again shortly")
        }
        SignInError::Exchange(_) => api("code_refused", "the provider refused the sign-in code"),
        SignInError::KeySet(_) => unavailable("the provider's keys are unavailable"),
        SignInError::IdToken(_) => api("invalid_id_token", "the provider's ID token was refused"),
        _ => api("sign_in_failed", "the sign-in failed"),
    }
}
