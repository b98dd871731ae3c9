//! The whole sign-in against an in-process OpenID provider (latchkey-testkit's `MockOidc`),
//! over loopback HTTP: the flow that works, and one test per refused attack.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::sync::Arc;

use latchkey_oauth::{
    CallbackError, Completed, ExchangeError, IdTokenError, OidcClient, ProviderMetadata,
    SignInError, TransactionError,
};
use latchkey_session::{MemoryStore, SessionStore};
use latchkey_testkit::oidc::{
    IdTokenSigning, MockOidc, PublicKeyAsSecret, DEFAULT_REDIRECT_URI, DEFAULT_SUBJECT,
};
use serde_json::json;

struct Rp {
    mock: MockOidc,
    client: OidcClient,
    /// The browser's side of the flow: no redirects followed, so each hop is seen.
    browser: reqwest::Client,
}

async fn rp_with(mock: MockOidc) -> Rp {
    let http = mock.http_client();
    let metadata = ProviderMetadata::discover(http.as_ref(), mock.issuer())
        .await
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let client = OidcClient::builder(
        http,
        metadata,
        mock.client_id(),
        DEFAULT_REDIRECT_URI,
        store,
    )
    .client_secret(mock.client_secret())
    .build()
    .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Rp {
        mock,
        client,
        browser,
    }
}

async fn rp() -> Rp {
    rp_with(MockOidc::start().await).await
}

/// `name=value` of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

impl Rp {
    /// begin → the provider's authorize → the callback query; with the browser's cookie.
    async fn to_callback(&self, next: Option<&str>) -> (String, String) {
        let redirect = self.client.begin(next, None).await.unwrap();
        let query = self.authorize(&redirect.location).await;
        (query, pair(&redirect.set_cookie))
    }

    /// Follows the authorization URL at the provider; returns the callback's query string.
    async fn authorize(&self, location: &str) -> String {
        let response = self.browser.get(location).send().await.unwrap();
        assert_eq!(response.status(), 302, "the provider redirects back");
        let back = response.headers()["location"].to_str().unwrap().to_owned();
        let (base, query) = back.split_once('?').unwrap();
        assert_eq!(base, DEFAULT_REDIRECT_URI);
        query.to_owned()
    }

    async fn sign_in(&self) -> Result<Completed, SignInError> {
        let (query, cookie) = self.to_callback(Some("/after")).await;
        self.client.finish(&query, Some(&cookie)).await
    }
}

#[tokio::test]
async fn the_code_flow_signs_the_user_in() {
    let rp = rp().await;
    let completed = rp.sign_in().await.unwrap();
    assert_eq!(completed.signed_in.identity.issuer, rp.mock.issuer());
    assert_eq!(completed.signed_in.identity.subject, DEFAULT_SUBJECT);
    assert!(completed.signed_in.profile.email_verified);
    assert_eq!(completed.next, "/after");
    assert_eq!(rp.mock.token_requests(), 1);
    assert_eq!(rp.mock.jwks_requests(), 1);
    // A second sign-in uses the cached key set.
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 1);
}

#[tokio::test]
async fn the_authorization_request_carries_what_the_specs_ask() {
    let rp = rp().await;
    let redirect = rp.client.begin(None, None).await.unwrap();
    let (_, query) = redirect.location.split_once('?').unwrap();
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], rp.mock.client_id());
    assert_eq!(params["redirect_uri"], DEFAULT_REDIRECT_URI);
    assert!(params["scope"].split(' ').any(|s| s == "openid"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["state"].len(), 43);
    assert_eq!(params["nonce"].len(), 43);
    // Another sign-in, other values: nothing is shared between users.
    let other = rp.client.begin(None, None).await.unwrap();
    assert_ne!(other.location, redirect.location);
}

#[tokio::test]
async fn missing_or_wrong_state_is_refused() {
    let rp = rp().await;
    let (query, cookie) = rp.to_callback(None).await;
    let without: String = query
        .split('&')
        .filter(|p| !p.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(matches!(
        rp.client.finish(&without, Some(&cookie)).await,
        Err(SignInError::Callback(CallbackError::MissingState))
    ));
    let wrong: String = query
        .split('&')
        .map(|p| {
            if p.starts_with("state=") {
                "state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    assert!(matches!(
        rp.client.finish(&wrong, Some(&cookie)).await,
        Err(SignInError::Transaction(TransactionError::UnknownState))
    ));
    assert_eq!(rp.mock.token_requests(), 0, "no code was exchanged");
}

#[tokio::test]
async fn a_valid_state_without_this_browsers_cookie_is_login_csrf() {
    let rp = rp().await;
    // The attacker starts a sign-in with their own account and sends the victim the callback.
    let (query, _attackers_cookie) = rp.to_callback(None).await;
    let victims_cookie = pair(&rp.client.begin(None, None).await.unwrap().set_cookie);
    for cookie in [None, Some(victims_cookie.as_str())] {
        assert!(matches!(
            rp.client.finish(&query, cookie).await,
            Err(SignInError::Transaction(TransactionError::NotThisBrowser))
        ));
    }
    assert_eq!(rp.mock.token_requests(), 0);
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let rp = rp().await;
    let (query, cookie) = rp.to_callback(None).await;
    rp.client.finish(&query, Some(&cookie)).await.unwrap();
    assert!(matches!(
        rp.client.finish(&query, Some(&cookie)).await,
        Err(SignInError::Transaction(TransactionError::UnknownState))
    ));
    assert_eq!(rp.mock.token_requests(), 1);
}

#[tokio::test]
async fn a_code_injected_into_another_transaction_fails_pkce() {
    let rp = rp().await;
    // Two sign-ins in one browser; the code of the first arrives with the state of the
    // second (a stolen code replayed in the attacker's own flow looks like this).
    let first = rp.client.begin(None, None).await.unwrap();
    let cookie = pair(&first.set_cookie);
    let second = rp.client.begin(None, Some(&cookie)).await.unwrap();
    let first_query = rp.authorize(&first.location).await;
    let second_query = rp.authorize(&second.location).await;
    let code = |q: &str| {
        q.split('&')
            .find(|p| p.starts_with("code="))
            .unwrap()
            .to_owned()
    };
    let injected = second_query.replace(&code(&second_query), &code(&first_query));
    match rp.client.finish(&injected, Some(&cookie)).await {
        Err(SignInError::Exchange(ExchangeError::Refused { error, .. })) => {
            assert_eq!(error, "invalid_grant");
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn rfc_9207_iss_from_another_provider_is_refused() {
    let rp = rp().await;
    let (query, cookie) = rp.to_callback(None).await;
    let mixed: String = query
        .split('&')
        .map(|p| {
            if p.starts_with("iss=") {
                "iss=https%3A%2F%2Fevil.example".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    assert!(matches!(
        rp.client.finish(&mixed, Some(&cookie)).await,
        Err(SignInError::Callback(CallbackError::IssuerMismatch))
    ));
    assert_eq!(rp.mock.token_requests(), 0);
}

#[tokio::test]
async fn the_providers_error_is_typed() {
    let rp = rp().await;
    let redirect = rp.client.begin(None, None).await.unwrap();
    let cookie = pair(&redirect.set_cookie);
    let query = "error=access_denied&error_description=The+user+declined&state=x";
    match rp.client.finish(query, Some(&cookie)).await {
        Err(SignInError::Callback(CallbackError::Provider { error, .. })) => {
            assert_eq!(error, "access_denied");
        }
        other => panic!("{other:?}"),
    }
}

/// Signs in with the mock's ID tokens edited by `edit`; returns the ID-token error.
async fn id_token_refused(
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>) + Send + Sync + 'static,
) -> IdTokenError {
    let rp = rp().await;
    rp.mock.tamper_id_token(move |_header, claims| edit(claims));
    match rp.sign_in().await {
        Err(SignInError::IdToken(error)) => error,
        other => panic!("expected an ID-token refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn each_wrong_claim_is_refused_with_its_check() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        id_token_refused(|c| {
            c.insert("aud".into(), json!("someone-else"));
        })
        .await,
        IdTokenError::Audience
    );
    assert_eq!(
        id_token_refused(|c| {
            c.insert("iss".into(), json!("https://evil.example"));
        })
        .await,
        IdTokenError::Issuer
    );
    assert_eq!(
        id_token_refused(|c| {
            let aud = c["aud"].clone();
            c.insert("aud".into(), json!([aud, "other-client"]));
            c.insert("azp".into(), json!("other-client"));
        })
        .await,
        IdTokenError::AuthorizedParty
    );
    assert_eq!(
        id_token_refused(|c| {
            c.insert("nonce".into(), json!("not-the-transactions-nonce"));
        })
        .await,
        IdTokenError::Nonce
    );
    assert_eq!(
        id_token_refused(|c| {
            c.insert("at_hash".into(), json!("AAAAAAAAAAAAAAAAAAAAAA"));
        })
        .await,
        IdTokenError::AtHash
    );
    assert_eq!(
        id_token_refused(move |c| {
            c.insert("exp".into(), json!(now - 3600));
            c.insert("iat".into(), json!(now - 7200));
        })
        .await,
        IdTokenError::Expired
    );
    assert_eq!(
        id_token_refused(move |c| {
            c.insert("iat".into(), json!(now + 3600));
        })
        .await,
        IdTokenError::IssuedInFuture
    );
}

async fn signed_refused(mode: IdTokenSigning) -> (IdTokenError, u64) {
    let rp = rp().await;
    rp.mock.sign_id_tokens(mode);
    match rp.sign_in().await {
        Err(SignInError::IdToken(error)) => (error, rp.mock.jwks_requests()),
        other => panic!("{mode:?}: expected an ID-token refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn alg_none_and_the_public_key_as_hmac_secret_are_refused() {
    assert_eq!(
        signed_refused(IdTokenSigning::AlgNone).await.0,
        IdTokenError::Algorithm
    );
    for form in [
        PublicKeyAsSecret::JwkModulus,
        PublicKeyAsSecret::JwkJson,
        PublicKeyAsSecret::SpkiDer,
        PublicKeyAsSecret::SpkiPem,
        PublicKeyAsSecret::Pkcs1Pem,
    ] {
        assert_eq!(
            signed_refused(IdTokenSigning::Hs256WithPublicKey(form))
                .await
                .0,
            IdTokenError::Algorithm,
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_key_is_refused_after_one_refetch() {
    let (error, fetches) = signed_refused(IdTokenSigning::UnpublishedKey).await;
    assert_eq!(error, IdTokenError::UnknownKey);
    assert_eq!(
        fetches, 2,
        "the first fetch and one refresh for the unknown kid"
    );
}

#[tokio::test]
async fn key_rotation_costs_exactly_one_extra_fetch() {
    let rp = rp().await;
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 1);
    rp.mock.rotate_key().await;
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 2);
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 2);
}

#[tokio::test]
async fn a_hundred_unknown_kids_cost_at_most_one_fetch() {
    let rp = rp().await;
    rp.sign_in().await.unwrap();
    rp.mock.sign_id_tokens(IdTokenSigning::RandomKid);
    let mut callbacks = Vec::new();
    for _ in 0..100 {
        callbacks.push(rp.to_callback(None).await);
    }
    // Half at once (the waiters share one fetch), half one after another (the rate limit).
    let sequential = callbacks.split_off(50);
    let before = rp.mock.jwks_requests();
    let client = rp.client.clone();
    let tasks: Vec<_> = callbacks
        .into_iter()
        .map(|(query, cookie)| {
            let client = client.clone();
            tokio::spawn(async move { client.finish(&query, Some(&cookie)).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(SignInError::IdToken(IdTokenError::UnknownKey))
        ));
    }
    for (query, cookie) in sequential {
        assert!(matches!(
            rp.client.finish(&query, Some(&cookie)).await,
            Err(SignInError::IdToken(IdTokenError::UnknownKey))
        ));
    }
    assert!(
        rp.mock.jwks_requests() - before <= 1,
        "{} fetches",
        rp.mock.jwks_requests() - before
    );
}

#[tokio::test]
async fn next_only_ever_stays_on_this_origin() {
    let rp = rp().await;
    for (next, expected) in [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/devices?tab=1", "/devices?tab=1"),
    ] {
        let (query, cookie) = rp.to_callback(Some(next)).await;
        let completed = rp.client.finish(&query, Some(&cookie)).await.unwrap();
        assert_eq!(completed.next, expected, "{next}");
    }
}

#[tokio::test]
async fn the_same_email_with_another_subject_is_another_identity() {
    let rp = rp().await;
    rp.mock.sign_in_as("subject-a", "shared@example.com", true);
    let a = rp.sign_in().await.unwrap();
    rp.mock.sign_in_as("subject-b", "shared@example.com", true);
    let b = rp.sign_in().await.unwrap();
    assert_eq!(a.signed_in.profile.email, b.signed_in.profile.email);
    assert_ne!(a.signed_in.identity, b.signed_in.identity);
}

#[tokio::test]
async fn discovery_that_redirects_is_an_error_and_the_target_never_contacted() {
    let mock = MockOidc::start().await;
    let sink = MockOidc::start_sink().await;
    mock.redirect_discovery_to(Some(&sink.url()));
    let http = mock.http_client();
    assert!(matches!(
        ProviderMetadata::discover(http.as_ref(), mock.issuer()).await,
        Err(latchkey_oauth::DiscoveryError::Status(code)) if (300..400).contains(&code)
    ));
    assert_eq!(sink.requests(), 0);
}

#[tokio::test]
async fn a_provider_whose_keys_are_down_keeps_working_on_the_last_good_set() {
    let mock = MockOidc::start().await;
    let http = mock.http_client();
    let metadata = ProviderMetadata::discover(http.as_ref(), mock.issuer())
        .await
        .unwrap();
    let clock = latchkey_session::ManualClock::new(latchkey_session::Timestamp::from_system_time(
        std::time::SystemTime::now(),
    ));
    let client = OidcClient::builder(
        http,
        metadata,
        mock.client_id(),
        DEFAULT_REDIRECT_URI,
        Arc::new(MemoryStore::new()),
    )
    .client_secret(mock.client_secret())
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let rp = Rp {
        mock,
        client,
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 1);
    // The set goes stale (the mock's max-age is 5 min) while the provider's key endpoint fails:
    // the refetch fails, the last good set verifies the sign-in.
    rp.mock.fail_jwks(true);
    clock.advance(latchkey_oauth::MIN_KEY_SET_AGE + std::time::Duration::from_secs(1));
    rp.sign_in().await.unwrap();
    assert_eq!(rp.mock.jwks_requests(), 2, "it was asked, and failed");
}
