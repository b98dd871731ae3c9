//! Random values sent to the provider or the browser: `state`, `nonce`, the PKCE verifier and
//! the browser-binding cookie.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

/// Length of a [`Secret`]'s text: 32 random bytes in unpadded base64url.
pub(crate) const SECRET_TEXT_LEN: usize = 43;

/// 32 bytes from the operating system's generator, as 43 characters of unpadded base64url.
///
/// Its `Debug` output is redacted; [`expose`](Self::expose) is the only way to its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Draws a fresh value.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes: there is no safe fallback
    /// for a value an attacker must not guess (`rand`'s thread generator panics alike).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if let Err(err) = rand::rngs::OsRng.try_fill_bytes(&mut bytes) {
            panic!("the operating system's random number generator failed: {err}");
        }
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the form [`generate`](Self::generate) produces: 43 characters of
    /// canonical unpadded base64url. Anything else is `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != SECRET_TEXT_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        // Canonical only: one text per value (the decoder refuses non-zero trailing bits).
        (bytes.len() == 32).then(|| Self(text.to_owned()))
    }

    /// The text form: the secret itself, for the one place that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the text, under a domain label (so the same value hashed for two purposes
    /// gives two unrelated digests).
    pub(crate) fn digest(&self, label: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(label.as_bytes());
        hash.update([0]);
        hash.update(self.0.as_bytes());
        hash.finalize().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_parse_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_TEXT_LEN);
        assert_eq!(Secret::parse(a.expose()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "Secret([redacted])");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn only_the_canonical_form_parses() {
        let good = Secret::generate();
        let text = good.expose();
        for bad in [
            "",
            &text[..42],
            &format!("{text}A"),
            &format!("{}=", &text[..42]),
            "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // non-zero trailing bits
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u{e9}",
        ] {
            assert_eq!(Secret::parse(bad), None, "{bad:?}");
        }
        assert!(Secret::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_some());
    }

    #[test]
    fn digests_are_domain_separated() {
        let s = Secret::generate();
        assert_ne!(s.digest("state"), s.digest("binding"));
        assert_eq!(s.digest("state"), s.digest("state"));
    }
}
