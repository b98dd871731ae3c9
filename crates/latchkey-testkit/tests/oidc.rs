//! MockOidc against the specifications, over HTTP only (reqwest with redirects off, and the
//! testkit's `HttpClient`), checked with latchkey-oauth's and latchkey-jwt's public APIs.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap is a failed test

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_jwt::dangerous::decode_header_unverified;
use latchkey_jwt::jwk::JwkSet;
use latchkey_jwt::{Algorithm, ErrorKind, HmacKey, Validation, Verifier};
use latchkey_oauth::{
    at_hash_of, check_id_token_claims, Callback, CallbackError, DiscoveryError, Expectations,
    HttpClient, HttpError, IdTokenError, PkceVerifier, ProviderMetadata, MAX_RESPONSE_BYTES,
};
use latchkey_testkit::oidc::{
    IdTokenSigning, MockOidc, PublicKeyAsSecret, RequestSink, TokenFault, UNPUBLISHED_KID,
};
use serde_json::{Map, Value};

/// latchkey-oauth's reqwest client, as a service would use it.
fn http() -> latchkey_oauth::ReqwestClient {
    latchkey_oauth::ReqwestClient::new().unwrap()
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn mock() -> MockOidc {
    MockOidc::builder().redirect_uri(REDIRECT).start().await
}

/// One sign-in attempt's secrets.
struct Attempt {
    verifier: PkceVerifier,
    state: String,
    nonce: String,
}

impl Attempt {
    fn new() -> Self {
        Attempt {
            verifier: PkceVerifier::generate(),
            state: format!("state-{}", rand::random::<u64>()),
            nonce: format!("nonce-{}", rand::random::<u64>()),
        }
    }

    /// The authorization request's parameters, with `changes` applied (`None` removes one).
    fn params(&self, mock: &MockOidc, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let challenge = self.verifier.challenge();
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", mock.client_id()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", self.state.as_str()),
            ("nonce", self.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (name, value) in changes {
            params.retain(|(k, _)| k != name);
            if let Some(value) = value {
                params.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        params
    }

    async fn authorize(
        &self,
        mock: &MockOidc,
        changes: &[(&str, Option<&str>)],
    ) -> reqwest::Response {
        browser()
            .get(mock.authorization_endpoint())
            .query(&self.params(mock, changes))
            .send()
            .await
            .unwrap()
    }

    /// Authorizes and returns the callback query.
    async fn code(&self, mock: &MockOidc) -> Callback {
        let response = self.authorize(mock, &[]).await;
        assert_eq!(response.status(), 302);
        let location = location(&response);
        let query = location
            .strip_prefix(&format!("{REDIRECT}?"))
            .unwrap_or_else(|| panic!("{location} is not on the redirect URI"));
        let callback = Callback::from_query(query).unwrap();
        assert_eq!(callback.state, self.state);
        callback
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `POST /token`, client_secret_basic.
async fn exchange(mock: &MockOidc, code: &str, verifier: &str, redirect_uri: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let response = http()
        .post_form(
            &mock.token_endpoint(),
            &form,
            Some((mock.client_id(), mock.client_secret())),
        )
        .await
        .unwrap();
    if response.status == 200 {
        assert_eq!(response.cache_control.as_deref(), Some("no-store"));
    }
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap(),
    )
}

async fn id_token(mock: &MockOidc) -> (String, String, Attempt) {
    let attempt = Attempt::new();
    let callback = attempt.code(mock).await;
    let (status, body) = exchange(mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    (
        body["id_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
        attempt,
    )
}

async fn jwks_document(mock: &MockOidc) -> String {
    let response = http().get(&mock.jwks_uri()).await.unwrap();
    assert_eq!(response.status, 200);
    String::from_utf8(response.body).unwrap()
}

fn verifier(mock: &MockOidc, jwks: &str) -> Verifier {
    let validation = Validation::builder()
        .issuer(mock.issuer())
        .audience(mock.client_id())
        .build()
        .unwrap();
    Verifier::with_jwk_set(
        JwkSet::from_json(jwks, &[Algorithm::RS256]).unwrap(),
        validation,
    )
    .unwrap()
}

/// Verifies with the mock's current JWK Set; the header's `kid` and every claim.
async fn verify(mock: &MockOidc, token: &str) -> Result<(String, Map<String, Value>), ErrorKind> {
    let verified = verifier(mock, &jwks_document(mock).await)
        .verify_token::<Map<String, Value>>(token)
        .map_err(|e| e.kind().clone())?;
    let Value::Object(claims) = serde_json::to_value(&verified.claims).unwrap() else {
        panic!("claims are an object")
    };
    Ok((verified.header.kid().unwrap().to_owned(), claims))
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn discovery_parses_for_its_issuer() {
    let mock = mock().await;
    assert!(mock.issuer().starts_with("http://127.0.0.1:"));
    assert!(!mock.issuer().ends_with('/'));
    let response = http().get(&mock.discovery_url()).await.unwrap();
    assert_eq!(response.status, 200);
    let metadata = ProviderMetadata::from_document(&response.body, mock.issuer()).unwrap();
    assert_eq!(metadata.issuer, mock.issuer());
    assert_eq!(
        metadata.authorization_endpoint,
        mock.authorization_endpoint()
    );
    assert_eq!(metadata.token_endpoint, mock.token_endpoint());
    assert_eq!(metadata.jwks_uri, mock.jwks_uri());
    assert!(metadata.authorization_response_iss_parameter_supported);
    let doc: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let discovered = ProviderMetadata::discover(&*mock.http_client(), mock.issuer())
        .await
        .unwrap();
    assert_eq!(discovered, metadata);
}

#[tokio::test]
async fn the_full_code_flow_gives_an_id_token_that_verifies() {
    let mock = mock().await;
    mock.sign_in_as("user-7", "seven@example.org", false);
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    callback.check_issuer(mock.issuer(), true).unwrap();

    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let access_token = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    let (kid, claims) = verify(&mock, id_token).await.unwrap();
    assert_eq!(kid, "k1");
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + 600
    );
    assert!(claims["auth_time"].as_u64().is_some());
    assert_eq!(
        claims["at_hash"].as_str(),
        at_hash_of(access_token, "RS256").as_deref()
    );
    let expect = Expectations {
        issuer: mock.issuer(),
        issuer_aliases: &[],
        client_id: mock.client_id(),
        nonce: &attempt.nonce,
        access_token: Some(access_token),
        alg: "RS256",
        now: now(),
        leeway: Duration::from_secs(60),
    };
    let signed_in = check_id_token_claims(&claims, &expect).unwrap();
    assert_eq!(signed_in.identity.issuer, mock.issuer());
    assert_eq!(signed_in.identity.subject, "user-7");
    assert_eq!(
        signed_in.profile.email.as_deref(),
        Some("seven@example.org")
    );
    assert!(!signed_in.profile.email_verified);
    let other_nonce = Expectations {
        nonce: "another",
        ..expect
    };
    assert_eq!(
        check_id_token_claims(&claims, &other_nonce),
        Err(IdTokenError::Nonce)
    );
}

#[tokio::test]
async fn client_secret_post_is_accepted_and_two_methods_are_not() {
    let mock = mock().await;
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", callback.code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", attempt.verifier.expose()),
        ("client_id", mock.client_id()),
        ("client_secret", mock.client_secret()),
    ];
    let http = http();
    let both = http
        .post_form(
            &mock.token_endpoint(),
            &form,
            Some((mock.client_id(), mock.client_secret())),
        )
        .await
        .unwrap();
    assert_eq!(both.status, 400);
    let body: Value = serde_json::from_slice(&both.body).unwrap();
    assert_eq!(error_of(&body), "invalid_request");

    // A refusal before the code was looked at does not consume it.
    let post = http
        .post_form(&mock.token_endpoint(), &form, None)
        .await
        .unwrap();
    assert_eq!(post.status, 200);

    form.retain(|(k, _)| *k != "client_secret");
    let none = http
        .post_form(&mock.token_endpoint(), &form, None)
        .await
        .unwrap();
    assert_eq!(none.status, 401);
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_rfc_6749_and_7636_refuse() {
    let mock = mock().await;
    let http = http();

    // A wrong verifier (well-formed, another one's).
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let other = PkceVerifier::generate();
    let (status, body) = exchange(&mock, &callback.code, other.expose(), REDIRECT).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    // The code is single-use: even the right verifier is too late now.
    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // A reused code.
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let (status, _) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200);
    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // Another redirect_uri than the authorization request's.
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let (status, body) = exchange(
        &mock,
        &callback.code,
        attempt.verifier.expose(),
        "http://127.0.0.1:9/elsewhere",
    )
    .await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // An unknown code.
    let (status, body) = exchange(&mock, "no-such-code", attempt.verifier.expose(), REDIRECT).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // A bad client secret, and an unknown client: 401 with WWW-Authenticate (RFC 6749 §5.2).
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", callback.code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", attempt.verifier.expose()),
    ];
    for basic in [
        (mock.client_id(), "wrong-secret"),
        ("someone-else", mock.client_secret()),
    ] {
        let response = http
            .post_form(&mock.token_endpoint(), &form, Some(basic))
            .await
            .unwrap();
        assert_eq!(response.status, 401, "{basic:?}");
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(error_of(&body), "invalid_client");
    }
    let raw = browser()
        .post(mock.token_endpoint())
        .basic_auth(mock.client_id(), Some("wrong-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert!(raw.headers().contains_key("www-authenticate"));
    // Client authentication failed before the code was looked at: it still works.
    let (status, _) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200);

    // Another grant type.
    let response = http
        .post_form(
            &mock.token_endpoint(),
            &[
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
            Some((mock.client_id(), mock.client_secret())),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        (response.status, error_of(&body)),
        (400, "unsupported_grant_type")
    );
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside() {
    // RFC 6749 §2.3.1: a secret with ':' '+' ' ' and non-ASCII survives the encoding.
    let mock = MockOidc::builder()
        .client("client:id+1", "s3cr3t: with spaces+é")
        .redirect_uri(REDIRECT)
        .start()
        .await;
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = verify(&mock, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["aud"], "client:id+1");
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_bad_requests() {
    let mock = mock().await;
    let attempt = Attempt::new();

    // Unknown client or unregistered redirect URI: a 400 page, never a redirect.
    for changes in [
        [("client_id", Some("someone-else"))],
        [("redirect_uri", Some("http://127.0.0.1:9/callback/x"))],
        [("redirect_uri", None)],
    ] {
        let response = attempt.authorize(&mock, &changes).await;
        assert_eq!(response.status(), 400, "{changes:?}");
        assert!(response.headers().get("location").is_none());
    }

    // Anything else: back to the client with the error, the state and the issuer.
    for (changes, error) in [
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (vec![("response_type", None)], "invalid_request"),
        (vec![("scope", Some("email"))], "invalid_scope"),
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (vec![("nonce", None)], "invalid_request"),
    ] {
        let response = attempt.authorize(&mock, &changes).await;
        assert_eq!(response.status(), 302, "{changes:?}");
        let location = location(&response);
        let query = location.strip_prefix(&format!("{REDIRECT}?")).unwrap();
        match Callback::from_query(query) {
            Err(CallbackError::Provider {
                error: e, state, ..
            }) => {
                assert_eq!(e, error, "{changes:?}");
                assert_eq!(state.as_deref(), Some(attempt.state.as_str()));
            }
            other => panic!("{changes:?}: {other:?}"),
        }
        assert!(query.contains(&format!(
            "iss={}",
            form_urlencoded::byte_serialize(mock.issuer().as_bytes()).collect::<String>()
        )));
    }
    assert_eq!(mock.token_requests(), 0);
}

#[tokio::test]
async fn a_redirect_uri_with_a_query_keeps_it() {
    let registered = "http://127.0.0.1:9/cb?tenant=a%20b";
    let mock = MockOidc::builder()
        .redirect_uri(registered)
        .authorization_response_iss(false)
        .start()
        .await;
    let attempt = Attempt::new();
    let response = attempt
        .authorize(
            &mock,
            &[("redirect_uri", Some(registered)), ("state", Some("s t&x"))],
        )
        .await;
    assert_eq!(response.status(), 302);
    let location = location(&response);
    let query = location.strip_prefix("http://127.0.0.1:9/cb?").unwrap();
    assert!(query.starts_with("tenant=a%20b&code="), "{query}");
    let callback = Callback::from_query(query).unwrap();
    assert_eq!(callback.state, "s t&x");
    assert_eq!(callback.iss, None);

    let doc = http().get(&mock.discovery_url()).await.unwrap();
    let metadata = ProviderMetadata::from_document(&doc.body, mock.issuer()).unwrap();
    assert!(!metadata.authorization_response_iss_parameter_supported);
}

#[tokio::test]
async fn a_mixed_up_iss_is_sent_on_success_and_error() {
    let mock = mock().await;
    mock.send_iss_in_responses(Some("https://attacker.example"));
    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    assert_eq!(callback.iss.as_deref(), Some("https://attacker.example"));
    assert_eq!(
        callback.check_issuer(mock.issuer(), true),
        Err(CallbackError::IssuerMismatch)
    );
    let refused = attempt.authorize(&mock, &[("nonce", None)]).await;
    assert!(location(&refused).contains("iss=https%3A%2F%2Fattacker.example"));
    mock.send_iss_in_responses(None);
    let callback = attempt.code(&mock).await;
    callback.check_issuer(mock.issuer(), true).unwrap();
}

#[tokio::test]
async fn rotation_changes_the_kid_and_the_key_set() {
    let mock = mock().await;
    let (before, _, _) = id_token(&mock).await;
    let old_jwks = jwks_document(&mock).await;
    assert_eq!(mock.published_kids(), ["k1"]);

    assert_eq!(mock.rotate_key().await, "k2");
    assert_eq!(mock.current_kid(), "k2");
    let new_jwks = jwks_document(&mock).await;
    assert!(new_jwks.contains(r#""kid":"k2""#) && !new_jwks.contains(r#""kid":"k1""#));
    let (after, _, _) = id_token(&mock).await;
    assert_eq!(decode_header_unverified(&after).unwrap().kid(), Some("k2"));
    assert_eq!(verify(&mock, &after).await.unwrap().0, "k2");
    // The old key is gone: the old token no longer verifies, the new one not with the old set.
    assert_eq!(
        verify(&mock, &before).await.unwrap_err(),
        ErrorKind::UnknownKid
    );
    assert_eq!(
        verifier(&mock, &old_jwks)
            .verify::<()>(&after)
            .unwrap_err()
            .kind(),
        &ErrorKind::UnknownKid
    );

    assert_eq!(mock.rotate_key_keeping_old().await, "k3");
    assert_eq!(mock.published_kids(), ["k3", "k2"]);
    assert_eq!(verify(&mock, &after).await.unwrap().0, "k2");
    let (latest, _, _) = id_token(&mock).await;
    assert_eq!(verify(&mock, &latest).await.unwrap().0, "k3");
}

#[tokio::test]
async fn alg_none_tokens_say_none_and_have_no_signature() {
    let mock = mock().await;
    mock.sign_id_tokens(IdTokenSigning::AlgNone);
    let (token, _, _) = id_token(&mock).await;
    assert!(token.ends_with('.'), "an empty signature");
    assert_eq!(decode_header_unverified(&token).unwrap().alg(), "none");
    assert_eq!(
        verify(&mock, &token).await.unwrap_err(),
        ErrorKind::NoneAlgorithm
    );
}

/// The JWK's `n` and `e`, decoded.
fn jwk_components(jwks: &str) -> (Vec<u8>, Vec<u8>, String) {
    let doc: Value = serde_json::from_str(jwks).unwrap();
    let key = &doc["keys"][0];
    let decode = |m: &str| URL_SAFE_NO_PAD.decode(key[m].as_str().unwrap()).unwrap();
    (decode("n"), decode("e"), key.to_string())
}

#[tokio::test]
async fn hs256_tokens_are_keyed_with_the_public_key_in_each_form() {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};

    let mock = mock().await;
    let jwks = jwks_document(&mock).await;
    let (n, e, jwk_json) = jwk_components(&jwks);
    let public = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap();
    for (form, secret) in [
        (PublicKeyAsSecret::JwkModulus, n.clone()),
        (PublicKeyAsSecret::JwkJson, jwk_json.into_bytes()),
        (
            PublicKeyAsSecret::SpkiDer,
            public.to_public_key_der().unwrap().as_bytes().to_vec(),
        ),
        (
            PublicKeyAsSecret::SpkiPem,
            public
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
                .into_bytes(),
        ),
        (
            PublicKeyAsSecret::Pkcs1Pem,
            public.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes(),
        ),
    ] {
        mock.sign_id_tokens(IdTokenSigning::Hs256WithPublicKey(form));
        let (token, _, _) = id_token(&mock).await;
        let header = decode_header_unverified(&token).unwrap();
        assert_eq!(
            (header.alg(), header.kid()),
            ("HS256", Some("k1")),
            "{form:?}"
        );
        // What it says: an HMAC keyed with exactly those bytes.
        let hmac = HmacKey::from_secret(Algorithm::HS256, &secret).unwrap();
        let validation = Validation::builder()
            .audience(mock.client_id())
            .build()
            .unwrap();
        Verifier::new(hmac, validation)
            .verify::<()>(&token)
            .unwrap_or_else(|e| panic!("{form:?}: {e}"));
        // And the relying party's verifier refuses it by algorithm.
        assert!(
            matches!(
                verify(&mock, &token).await.unwrap_err(),
                ErrorKind::AlgorithmMismatch { .. }
            ),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn unpublished_and_random_kids_are_not_in_the_key_set() {
    let mock = mock().await;
    mock.sign_id_tokens(IdTokenSigning::UnpublishedKey);
    let (token, _, _) = id_token(&mock).await;
    assert_eq!(
        decode_header_unverified(&token).unwrap().kid(),
        Some(UNPUBLISHED_KID)
    );
    assert_eq!(
        verify(&mock, &token).await.unwrap_err(),
        ErrorKind::UnknownKid
    );
    // Signed by another key, even when the header names the published one.
    mock.tamper_id_token(|header, _| {
        header.insert("kid".into(), "k1".into());
    });
    let (token, _, _) = id_token(&mock).await;
    assert_eq!(
        verify(&mock, &token).await.unwrap_err(),
        ErrorKind::InvalidSignature
    );
    mock.reset_faults();

    mock.sign_id_tokens(IdTokenSigning::RandomKid);
    let (first, _, _) = id_token(&mock).await;
    let (second, _, _) = id_token(&mock).await;
    let kid = |t: &str| {
        decode_header_unverified(t)
            .unwrap()
            .kid()
            .unwrap()
            .to_owned()
    };
    assert_ne!(kid(&first), kid(&second));
    assert!(!mock.published_kids().contains(&kid(&first)));
    assert_eq!(
        verify(&mock, &first).await.unwrap_err(),
        ErrorKind::UnknownKid
    );
    // The signature is the current key's: a verifier with that key and no kid accepts it.
    let (n, e, _) = jwk_components(&jwks_document(&mock).await);
    let key = latchkey_jwt::RsaVerifyingKey::from_components(Algorithm::RS256, &n, &e).unwrap();
    let validation = Validation::builder()
        .audience(mock.client_id())
        .build()
        .unwrap();
    Verifier::new(key, validation).verify::<()>(&first).unwrap();
}

#[tokio::test]
async fn tampering_edits_header_and_claims_before_signing() {
    let mock = mock().await;
    mock.tamper_id_token(|_, claims| {
        claims.insert("aud".into(), "someone-else".into());
        claims.remove("nonce");
    });
    let (token, access_token, attempt) = id_token(&mock).await;
    // Correctly signed: the signature checks, the claims do not.
    let verified = Verifier::with_jwk_set(
        JwkSet::from_json(jwks_document(&mock).await, &[Algorithm::RS256]).unwrap(),
        Validation::builder()
            .audience("someone-else")
            .build()
            .unwrap(),
    )
    .unwrap()
    .verify_token::<Map<String, Value>>(&token)
    .unwrap();
    let Value::Object(claims) = serde_json::to_value(&verified.claims).unwrap() else {
        panic!()
    };
    assert!(!claims.contains_key("nonce"));
    let expect = Expectations {
        issuer: mock.issuer(),
        issuer_aliases: &[],
        client_id: mock.client_id(),
        nonce: &attempt.nonce,
        access_token: Some(&access_token),
        alg: "RS256",
        now: now(),
        leeway: Duration::from_secs(60),
    };
    assert_eq!(
        check_id_token_claims(&claims, &expect),
        Err(IdTokenError::Audience)
    );

    mock.tamper_id_token(|header, _| {
        header.insert("crit".into(), serde_json::json!(["exp"]));
    });
    let (token, _, _) = id_token(&mock).await;
    assert_eq!(
        verify(&mock, &token).await.unwrap_err(),
        ErrorKind::UnsupportedCrit
    );

    mock.stop_tampering();
    let (token, _, _) = id_token(&mock).await;
    verify(&mock, &token).await.unwrap();
}

#[tokio::test]
async fn counters_count_each_endpoint() {
    let mock = mock().await;
    let http = mock.http_client();
    let metadata = ProviderMetadata::discover(&*http, mock.issuer())
        .await
        .unwrap();
    let (token, _, _) = id_token(&mock).await;
    let jwks = http.get(&metadata.jwks_uri).await.unwrap();
    assert_eq!(jwks.cache_control.as_deref(), Some("public, max-age=300"));
    verifier(&mock, std::str::from_utf8(&jwks.body).unwrap())
        .verify::<()>(&token)
        .unwrap();
    assert_eq!(
        (
            mock.discovery_requests(),
            mock.authorize_requests(),
            mock.token_requests(),
            mock.jwks_requests()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_redirecting_discovery_is_refused_and_its_target_never_contacted() {
    let mock = mock().await;
    let sink = RequestSink::start().await;
    mock.redirect_discovery_to(Some(&sink.url()));
    let response = browser().get(mock.discovery_url()).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), sink.url());
    assert!(matches!(
        ProviderMetadata::discover(&*mock.http_client(), mock.issuer()).await,
        Err(DiscoveryError::Status(302))
    ));
    assert_eq!(mock.discovery_requests(), 2);
    assert_eq!(sink.requests(), 0, "nobody followed the redirect");
    // The sink does count what reaches it.
    browser().get(sink.url()).send().await.unwrap();
    assert_eq!(sink.requests(), 1);

    mock.redirect_discovery_to(None);
    ProviderMetadata::discover(&*mock.http_client(), mock.issuer())
        .await
        .unwrap();
}

#[tokio::test]
async fn key_set_and_token_endpoint_faults() {
    let mock = MockOidc::builder()
        .redirect_uri(REDIRECT)
        .jwks_max_age(Duration::from_secs(42))
        .start()
        .await;
    let http = http();
    mock.fail_jwks(true);
    assert_eq!(http.get(&mock.jwks_uri()).await.unwrap().status, 500);
    mock.jwks_unavailable(true);
    assert_eq!(http.get(&mock.jwks_uri()).await.unwrap().status, 503);
    mock.reset_faults();
    let ok = http.get(&mock.jwks_uri()).await.unwrap();
    assert_eq!(
        (ok.status, ok.cache_control.as_deref()),
        (200, Some("public, max-age=42"))
    );

    let attempt = Attempt::new();
    let callback = attempt.code(&mock).await;
    mock.fail_token_endpoint(Some(TokenFault::Error("temporarily_unavailable".into())));
    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!((status, error_of(&body)), (400, "temporarily_unavailable"));
    mock.fail_token_endpoint(Some(TokenFault::Status(502)));
    let response = http
        .post_form(
            &mock.token_endpoint(),
            &[("grant_type", "authorization_code")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 502);
    // The faults did not consume the code.
    mock.fail_token_endpoint(None);
    let (status, _) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200);
    assert_eq!(mock.token_requests(), 3);
}

#[tokio::test]
async fn a_stopped_mock_refuses_connections() {
    let mut mock = mock().await;
    let url = mock.discovery_url();
    assert_eq!(http().get(&url).await.unwrap().status, 200);
    mock.stop().await;
    assert!(matches!(
        http().get(&url).await,
        Err(HttpError::Transport(_))
    ));
}

#[tokio::test]
async fn the_test_client_caps_bodies_and_does_not_follow_redirects() {
    use axum::body::Body;
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/big", get(|| async { vec![b'x'; MAX_RESPONSE_BYTES + 1] }))
        .route(
            "/stream",
            get(|| async {
                let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 64 * 1024]));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/exact", get(|| async { vec![b'z'; MAX_RESPONSE_BYTES] }))
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::to("/exact") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = http();
    for path in ["big", "stream"] {
        assert!(
            matches!(
                http.get(&format!("http://{addr}/{path}")).await,
                Err(HttpError::TooLarge)
            ),
            "{path}"
        );
    }
    let exact = http.get(&format!("http://{addr}/exact")).await.unwrap();
    assert_eq!(exact.body.len(), MAX_RESPONSE_BYTES);
    let moved = http.get(&format!("http://{addr}/moved")).await.unwrap();
    assert_eq!((moved.status, moved.body.len()), (303, 0));
}

#[tokio::test]
async fn the_consent_page_links_back_with_the_same_answer_as_the_redirect() {
    let mock = MockOidc::builder()
        .redirect_uri(REDIRECT)
        .consent_page(true)
        .start()
        .await;
    let attempt = Attempt::new();
    let response = attempt.authorize(&mock, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    let href = page
        .split("id=\"continue\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no continue link in {page}"))
        .replace("&amp;", "&");
    let query = href.strip_prefix(&format!("{REDIRECT}?")).unwrap();
    let callback = Callback::from_query(query).unwrap();
    assert_eq!(callback.state, attempt.state);
    assert_eq!(callback.iss.as_deref(), Some(mock.issuer()));
    // The code works like a redirected one.
    let (status, body) = exchange(&mock, &callback.code, attempt.verifier.expose(), REDIRECT).await;
    assert_eq!(status, 200, "{body}");
}
