//! The claim checks of an OpenID Connect ID token (Core 1.0 §3.1.3.7), after its signature has
//! been verified: one error variant per failed check.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;

/// Who signed in: the provider's issuer and its subject for the user. Only this pair
/// identifies an account; an e-mail address never does by default.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The issuer, as the provider's discovery document spells it (not an alias).
    pub issuer: String,
    /// The provider's stable identifier of the user (`sub`).
    pub subject: String,
}

/// What an ID token says about the user beyond [`Identity`]. The e-mail comes only with its
/// `email_verified` flag; use it to fill a profile, never to link to an existing account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `email`, if present.
    pub email: Option<String>,
    /// `email_verified` (false when absent or not a boolean).
    pub email_verified: bool,
    /// `name`, if present.
    pub name: Option<String>,
}

/// A verified ID token's claims, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// The (`iss`, `sub`) pair.
    pub identity: Identity,
    /// Profile claims.
    pub profile: Profile,
}

/// Why an ID token's claims were refused. Messages name the check, never a claim's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// `iss` is missing or is neither the provider's issuer nor a configured alias.
    #[error("ID token issuer is not the provider's")]
    Issuer,
    /// `aud` is missing or does not contain the client ID.
    #[error("ID token is not for this client")]
    Audience,
    /// Several audiences and `azp` is missing, or `azp` is present and is not the client ID.
    #[error("ID token authorized party is not this client")]
    AuthorizedParty,
    /// `exp` is missing, not a number, or in the past (beyond the leeway).
    #[error("ID token expired")]
    Expired,
    /// `iat` is missing, not a number, or in the future (beyond the leeway).
    #[error("ID token issued in the future")]
    IssuedInFuture,
    /// `nonce` is missing or is not this transaction's.
    #[error("ID token nonce does not match")]
    Nonce,
    /// `at_hash` is present and does not match the access token (or cannot be checked for the
    /// token's algorithm).
    #[error("ID token at_hash does not match the access token")]
    AtHash,
    /// `sub` is missing, empty, longer than 255 characters (Core §2) or not a string.
    #[error("ID token has no valid subject")]
    Subject,
}

/// What the claims must match.
#[derive(Clone, Debug)]
pub struct Expectations<'a> {
    /// The provider's issuer (from its discovery document), which [`Identity::issuer`] reports.
    pub issuer: &'a str,
    /// Other spellings of the same issuer that `iss` may carry (Google sends both
    /// `https://accounts.google.com` and `accounts.google.com`).
    pub issuer_aliases: &'a [String],
    /// This client's `client_id`.
    pub client_id: &'a str,
    /// The transaction's nonce.
    pub nonce: &'a str,
    /// The access token the same response returned, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// The JWS algorithm the token was verified with (`RS256`, `ES256`, …), which fixes the
    /// hash of `at_hash`.
    pub alg: &'a str,
    /// Now, in seconds since the epoch.
    pub now: u64,
    /// Clock skew tolerated for `exp` and `iat`.
    pub leeway: Duration,
}

/// Checks a signature-verified ID token's claims, in the order of OpenID Connect Core
/// §3.1.3.7: issuer, audience, authorized party, expiry, issue time, nonce, `at_hash`, then
/// the subject.
///
/// ```
/// use std::time::Duration;
/// use latchkey_oauth::{check_id_token_claims, Expectations, IdTokenError};
///
/// let claims = serde_json::json!({
///     "iss": "https://issuer.example", "aud": "my-client", "sub": "248289761001",
///     "exp": 1_700_000_600, "iat": 1_700_000_000, "nonce": "n-0S6_WzA2Mj",
/// });
/// let expect = Expectations {
///     issuer: "https://issuer.example",
///     issuer_aliases: &[],
///     client_id: "my-client",
///     nonce: "n-0S6_WzA2Mj",
///     access_token: None,
///     alg: "RS256",
///     now: 1_700_000_010,
///     leeway: Duration::from_secs(60),
/// };
/// let signed_in = check_id_token_claims(claims.as_object().unwrap(), &expect)?;
/// assert_eq!(signed_in.identity.subject, "248289761001");
///
/// let other_client = Expectations { client_id: "someone-else", ..expect };
/// assert_eq!(
///     check_id_token_claims(claims.as_object().unwrap(), &other_client),
///     Err(IdTokenError::Audience)
/// );
/// # Ok::<(), IdTokenError>(())
/// ```
///
/// # Errors
///
/// The first failed check's [`IdTokenError`].
pub fn check_id_token_claims(
    claims: &Map<String, Value>,
    expect: &Expectations<'_>,
) -> Result<SignedIn, IdTokenError> {
    let iss = claims.get("iss").and_then(Value::as_str);
    let issuer_ok = iss.is_some_and(|iss| {
        iss == expect.issuer || expect.issuer_aliases.iter().any(|alias| alias == iss)
    });
    if !issuer_ok {
        return Err(IdTokenError::Issuer);
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => {
            let strings: Option<Vec<&str>> = many.iter().map(Value::as_str).collect();
            strings.ok_or(IdTokenError::Audience)?
        }
        _ => return Err(IdTokenError::Audience),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(IdTokenError::Audience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expect.client_id => {}
        Some(_) => return Err(IdTokenError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(IdTokenError::AuthorizedParty),
        None => {}
    }

    let leeway = expect.leeway.as_secs();
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(IdTokenError::Expired)?;
    if exp.saturating_add(leeway) <= expect.now {
        return Err(IdTokenError::Expired);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(IdTokenError::IssuedInFuture)?;
    if iat > expect.now.saturating_add(leeway) {
        return Err(IdTokenError::IssuedInFuture);
    }

    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|nonce| bool::from(nonce.as_bytes().ct_eq(expect.nonce.as_bytes())));
    if !nonce_ok {
        return Err(IdTokenError::Nonce);
    }

    match (claims.get("at_hash"), expect.access_token) {
        (None, _) => {}
        (Some(Value::String(at_hash)), Some(access_token)) => {
            let expected = at_hash_of(access_token, expect.alg).ok_or(IdTokenError::AtHash)?;
            if !bool::from(expected.as_bytes().ct_eq(at_hash.as_bytes())) {
                return Err(IdTokenError::AtHash);
            }
        }
        // An at_hash without an access token to check it against, or not a string.
        (Some(_), _) => return Err(IdTokenError::AtHash),
    }

    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 255 => sub.clone(),
        _ => return Err(IdTokenError::Subject),
    };
    let profile = Profile {
        email: claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned),
        email_verified: claims.get("email_verified") == Some(&Value::Bool(true)),
        name: claims
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    Ok(SignedIn {
        identity: Identity {
            issuer: expect.issuer.to_owned(),
            subject,
        },
        profile,
    })
}

/// `at_hash` for `access_token` under JWS algorithm `alg` (Core §3.1.3.6): the base64url of the
/// left half of the hash the algorithm uses. `None` for an algorithm without a defined hash.
///
/// ```
/// // OpenID Connect Core 1.0, appendix A.3.
/// assert_eq!(
///     latchkey_oauth::at_hash_of("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256").as_deref(),
///     Some("77QmUPtjPfzWtF2AnpK9RQ")
/// );
/// ```
#[must_use]
pub fn at_hash_of(access_token: &str, alg: &str) -> Option<String> {
    let digest: Vec<u8> = match alg {
        "RS256" | "PS256" | "ES256" | "HS256" => Sha256::digest(access_token).to_vec(),
        "RS384" | "PS384" | "ES384" | "HS384" => Sha384::digest(access_token).to_vec(),
        // EdDSA with Ed25519 hashes with SHA-512 (OpenID Connect Core errata set 2).
        "RS512" | "PS512" | "ES512" | "HS512" | "EdDSA" => Sha512::digest(access_token).to_vec(),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const ACCESS: &str = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";

    fn good() -> Map<String, Value> {
        json!({
            "iss": "https://issuer.example",
            "aud": "client-1",
            "sub": "user-42",
            "exp": NOW + 600,
            "iat": NOW,
            "nonce": "the-nonce",
            "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
            "email": "a@example.com",
            "email_verified": true,
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn aliases() -> Vec<String> {
        vec!["issuer.example".to_owned()]
    }

    fn check(claims: &Map<String, Value>) -> Result<SignedIn, IdTokenError> {
        let aliases = aliases();
        check_id_token_claims(
            claims,
            &Expectations {
                issuer: "https://issuer.example",
                issuer_aliases: &aliases,
                client_id: "client-1",
                nonce: "the-nonce",
                access_token: Some(ACCESS),
                alg: "RS256",
                now: NOW,
                leeway: Duration::from_secs(60),
            },
        )
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut claims = good();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.remove(k);
            } else {
                claims.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    #[test]
    fn a_good_token_names_the_issuer_and_subject() {
        let signed_in = check(&good()).unwrap();
        assert_eq!(
            signed_in.identity,
            Identity {
                issuer: "https://issuer.example".into(),
                subject: "user-42".into()
            }
        );
        assert_eq!(signed_in.profile.email.as_deref(), Some("a@example.com"));
        assert!(signed_in.profile.email_verified);
        // An alias is accepted, and the identity still carries the canonical issuer.
        let aliased = check(&with(json!({"iss": "issuer.example"}))).unwrap();
        assert_eq!(aliased.identity.issuer, "https://issuer.example");
        // Several audiences with azp = this client.
        assert!(check(&with(
            json!({"aud": ["other", "client-1"], "azp": "client-1"})
        ))
        .is_ok());
        // Within the leeway on both sides.
        assert!(check(&with(json!({"exp": NOW - 59, "iat": NOW + 60}))).is_ok());
    }

    #[test]
    fn each_failed_check_has_its_variant() {
        let cases = [
            (json!({"iss": null}), IdTokenError::Issuer),
            (json!({"iss": "https://evil.example"}), IdTokenError::Issuer),
            (json!({"iss": 7}), IdTokenError::Issuer),
            (json!({"aud": null}), IdTokenError::Audience),
            (json!({"aud": "other"}), IdTokenError::Audience),
            (json!({"aud": ["other", 3]}), IdTokenError::Audience),
            (
                json!({"aud": ["other", "client-1"]}),
                IdTokenError::AuthorizedParty,
            ),
            (
                json!({"aud": ["other", "client-1"], "azp": "other"}),
                IdTokenError::AuthorizedParty,
            ),
            (json!({"azp": "other"}), IdTokenError::AuthorizedParty),
            (json!({"exp": null}), IdTokenError::Expired),
            (json!({"exp": NOW - 60}), IdTokenError::Expired),
            (json!({"exp": "soon"}), IdTokenError::Expired),
            (json!({"iat": null}), IdTokenError::IssuedInFuture),
            (json!({"iat": NOW + 61}), IdTokenError::IssuedInFuture),
            (json!({"nonce": null}), IdTokenError::Nonce),
            (json!({"nonce": "another"}), IdTokenError::Nonce),
            (
                json!({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}),
                IdTokenError::AtHash,
            ),
            (json!({"at_hash": 5}), IdTokenError::AtHash),
            (json!({"sub": null}), IdTokenError::Subject),
            (json!({"sub": ""}), IdTokenError::Subject),
            (json!({"sub": "x".repeat(256)}), IdTokenError::Subject),
            (json!({"sub": 42}), IdTokenError::Subject),
        ];
        for (change, expected) in cases {
            assert_eq!(check(&with(change.clone())), Err(expected), "{change}");
        }
    }

    #[test]
    fn at_hash_needs_an_access_token_and_a_known_algorithm() {
        let aliases = aliases();
        let base = Expectations {
            issuer: "https://issuer.example",
            issuer_aliases: &aliases,
            client_id: "client-1",
            nonce: "the-nonce",
            access_token: None,
            alg: "RS256",
            now: NOW,
            leeway: Duration::from_secs(60),
        };
        assert_eq!(
            check_id_token_claims(&good(), &base),
            Err(IdTokenError::AtHash)
        );
        let unknown_alg = Expectations {
            access_token: Some(ACCESS),
            alg: "none",
            ..base.clone()
        };
        assert_eq!(
            check_id_token_claims(&good(), &unknown_alg),
            Err(IdTokenError::AtHash)
        );
        // Without at_hash in the token there is nothing to check.
        assert!(check_id_token_claims(&with(json!({"at_hash": null})), &base).is_ok());
    }

    #[test]
    fn email_is_only_verified_when_the_provider_says_true() {
        for (flag, verified) in [
            (json!(true), true),
            (json!("true"), false),
            (json!(null), false),
        ] {
            let claims = with(json!({ "email_verified": flag }));
            assert_eq!(check(&claims).unwrap().profile.email_verified, verified);
        }
    }

    #[test]
    fn errors_never_show_claim_values() {
        let err = check(&with(json!({"iss": "https://secret-issuer.example"}))).unwrap_err();
        assert!(!err.to_string().contains("secret-issuer"));
    }
}
