//! The provider's configuration: an OpenID Connect discovery document, or explicit endpoints.

use serde::Deserialize;

use crate::http::{HttpClient, HttpError};

/// Where and how to talk to a provider.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier, exactly as ID tokens carry it.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's public keys (a JWK Set).
    pub jwks_uri: String,
    /// `code_challenge_methods_supported`, when the provider lists it.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the provider always sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Why a provider's configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The discovery request failed.
    #[error("discovery request failed")]
    Http(#[source] HttpError),
    /// The discovery endpoint answered something other than 200 — a redirect included, which
    /// is never followed.
    #[error("discovery answered HTTP {0}")]
    Status(u16),
    /// The document is not valid JSON of the expected shape.
    #[error("discovery document is malformed")]
    Malformed(#[source] serde_json::Error),
    /// The document's `issuer` is not the issuer it was fetched for (OpenID Connect
    /// Discovery §4.3: they must be identical).
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    /// An endpoint is not `https` (plain `http` is allowed only on loopback addresses).
    #[error("provider endpoint {0} is not https")]
    InsecureEndpoint(&'static str),
    /// The provider lists its PKCE methods and `S256` is not one of them.
    #[error("the provider does not support PKCE S256")]
    NoPkceS256,
}

impl ProviderMetadata {
    /// Explicit endpoints, for a provider without discovery (checked like a discovered one).
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::InsecureEndpoint`].
    pub fn explicit(
        issuer: impl Into<String>,
        authorization_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
        jwks_uri: impl Into<String>,
    ) -> Result<Self, DiscoveryError> {
        let metadata = Self {
            issuer: issuer.into(),
            authorization_endpoint: authorization_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            jwks_uri: jwks_uri.into(),
            code_challenge_methods_supported: None,
            authorization_response_iss_parameter_supported: false,
        };
        metadata.check_endpoints()?;
        Ok(metadata)
    }

    /// Fetches `{issuer}/.well-known/openid-configuration` and checks it.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError`]: the request, a non-200 answer (redirects included), a malformed
    /// document, another issuer, a non-https endpoint, no PKCE S256.
    pub async fn discover(http: &dyn HttpClient, issuer: &str) -> Result<Self, DiscoveryError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = http.get(&url).await.map_err(DiscoveryError::Http)?;
        if response.status != 200 {
            return Err(DiscoveryError::Status(response.status));
        }
        Self::from_document(&response.body, issuer)
    }

    /// Checks a discovery document fetched for `issuer`.
    ///
    /// ```
    /// use latchkey_oauth::{DiscoveryError, ProviderMetadata};
    ///
    /// let doc = br#"{"issuer":"https://id.example","authorization_endpoint":"https://id.example/auth",
    ///   "token_endpoint":"https://id.example/token","jwks_uri":"https://id.example/keys"}"#;
    /// let metadata = ProviderMetadata::from_document(doc, "https://id.example")?;
    /// assert_eq!(metadata.jwks_uri, "https://id.example/keys");
    /// assert!(matches!(
    ///     ProviderMetadata::from_document(doc, "https://other.example"),
    ///     Err(DiscoveryError::IssuerMismatch)
    /// ));
    /// # Ok::<(), DiscoveryError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover), without the request.
    pub fn from_document(document: &[u8], issuer: &str) -> Result<Self, DiscoveryError> {
        let metadata: Self = serde_json::from_slice(document).map_err(DiscoveryError::Malformed)?;
        if metadata.issuer != issuer {
            return Err(DiscoveryError::IssuerMismatch);
        }
        metadata.check_endpoints()?;
        if let Some(methods) = &metadata.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(DiscoveryError::NoPkceS256);
            }
        }
        Ok(metadata)
    }

    fn check_endpoints(&self) -> Result<(), DiscoveryError> {
        for (name, url) in [
            ("issuer", &self.issuer),
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !is_secure_url(url) {
                return Err(DiscoveryError::InsecureEndpoint(name));
            }
        }
        Ok(())
    }
}

/// `https://…`, or `http://` to a loopback host (`127.0.0.1`, `[::1]`, `localhost`) for local
/// development and tests.
fn is_secure_url(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty() && !rest.starts_with('/');
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(issuer: &str, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth","token_endpoint":"{issuer}/token","jwks_uri":"{issuer}/keys"{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_document_for_its_issuer_is_accepted() {
        let m = ProviderMetadata::from_document(
            &doc("https://id.example", r#","authorization_response_iss_parameter_supported":true,"code_challenge_methods_supported":["plain","S256"]"#),
            "https://id.example",
        )
        .unwrap();
        assert!(m.authorization_response_iss_parameter_supported);
        // Loopback http is for development and tests.
        assert!(ProviderMetadata::from_document(
            &doc("http://127.0.0.1:8080", ""),
            "http://127.0.0.1:8080"
        )
        .is_ok());
    }

    #[test]
    fn every_refusal() {
        let issuer = "https://id.example";
        assert!(matches!(
            ProviderMetadata::from_document(b"not json", issuer),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            ProviderMetadata::from_document(br#"{"issuer":"https://id.example"}"#, issuer),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            ProviderMetadata::from_document(&doc("https://id.example/", ""), issuer),
            Err(DiscoveryError::IssuerMismatch)
        ));
        assert!(matches!(
            ProviderMetadata::from_document(
                &doc(issuer, r#","code_challenge_methods_supported":["plain"]"#),
                issuer
            ),
            Err(DiscoveryError::NoPkceS256)
        ));
        for insecure in [
            "http://id.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
            "ftp://id.example",
            "https://",
        ] {
            assert!(
                matches!(
                    ProviderMetadata::from_document(&doc(insecure, ""), insecure),
                    Err(DiscoveryError::InsecureEndpoint(_))
                ),
                "{insecure}"
            );
        }
        assert!(matches!(
            ProviderMetadata::explicit(
                issuer,
                "https://id.example/a",
                "http://id.example/t",
                "https://id.example/k"
            ),
            Err(DiscoveryError::InsecureEndpoint("token_endpoint"))
        ));
    }
}
