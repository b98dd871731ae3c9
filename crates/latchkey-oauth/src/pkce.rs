//! PKCE (RFC 7636) with the `S256` method only: `plain` sends the verifier itself through the
//! browser and protects nothing against an attacker who can read the authorization request.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// A PKCE code verifier: 32 random bytes (43 characters, RFC 7636 §4.1's recommendation), one
/// per login transaction, kept server-side and sent only in the code exchange.
///
/// ```
/// use latchkey_oauth::PkceVerifier;
///
/// let verifier = PkceVerifier::generate();
/// let challenge = verifier.challenge(); // goes into the authorization request
/// assert_eq!(challenge.len(), 43);
/// assert_eq!(PkceVerifier::METHOD, "S256");
/// assert_ne!(challenge, verifier.expose());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(Secret);

impl PkceVerifier {
    /// The `code_challenge_method` this crate sends.
    pub const METHOD: &'static str = "S256";

    /// A fresh verifier.
    #[must_use]
    pub fn generate() -> Self {
        Self(Secret::generate())
    }

    /// A verifier from its text (as stored with the transaction). RFC 7636 allows 43 to 128
    /// characters; this crate only ever makes (and so only accepts) its own 43-character form.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Secret::parse(text).map(Self)
    }

    /// `BASE64URL(SHA256(verifier))`, the `code_challenge` (RFC 7636 §4.2).
    #[must_use]
    pub fn challenge(&self) -> String {
        challenge_of(self.0.expose())
    }

    /// The verifier's text, for the token request's `code_verifier`.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// The S256 challenge of any verifier text (a provider or a mock checks it this way).
///
/// ```
/// // RFC 7636, Appendix B.
/// assert_eq!(
///     latchkey_oauth::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
/// );
/// ```
#[must_use]
pub fn pkce_challenge(verifier: &str) -> String {
    challenge_of(verifier)
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            verifier.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn every_transaction_gets_its_own_verifier_and_debug_hides_it() {
        let a = PkceVerifier::generate();
        let b = PkceVerifier::generate();
        assert_ne!(a, b);
        assert_ne!(a.challenge(), b.challenge());
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.expose()), "{shown}");
    }

    #[test]
    fn foreign_verifier_forms_are_refused() {
        assert!(PkceVerifier::parse("too-short").is_none());
        assert!(PkceVerifier::parse(&"a".repeat(128)).is_none());
    }
}
