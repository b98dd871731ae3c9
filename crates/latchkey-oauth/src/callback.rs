//! The authorization response's query (RFC 6749 §4.1.2), read strictly.

use std::fmt;

/// The longest callback query read; a real one is a few hundred bytes.
pub const MAX_CALLBACK_QUERY: usize = 8 * 1024;

/// A successful authorization response: `code`, `state` and, when the provider sends it,
/// RFC 9207's `iss`.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code (a secret until exchanged).
    pub code: String,
    /// The `state`, for [`Transactions::consume`](crate::Transactions::consume).
    pub state: String,
    /// RFC 9207 `iss`, if present: check it with [`Callback::check_issuer`].
    pub iss: Option<String>,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code", &"[redacted]")
            .field("state", &"[redacted]")
            .field("iss", &self.iss)
            .finish()
    }
}

/// Why a callback query was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The provider answered with an error (RFC 6749 §4.1.2.1): `access_denied` when the user
    /// declined, for example. `error` is the provider's code when it is a well-formed one
    /// (else `invalid_error`); `description` its text when printable ASCII of at most 256
    /// characters.
    #[error("the provider refused the sign-in: {error}")]
    Provider {
        /// The error code.
        error: String,
        /// `error_description`, if usable.
        description: Option<String>,
        /// The `state` sent back with the error, so the caller can end its transaction.
        state: Option<String>,
    },
    /// No `code`, or an empty one.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// No `state`, or an empty one.
    #[error("the callback has no state")]
    MissingState,
    /// A parameter appears more than once (RFC 6749 §3.1: parameters must not repeat).
    #[error("the callback repeats a parameter")]
    Repeated,
    /// The query is longer than [`MAX_CALLBACK_QUERY`].
    #[error("the callback query is too long")]
    TooLong,
    /// RFC 9207: `iss` is not the issuer the transaction was started with (a mix-up attack),
    /// or it is missing while the provider declares that it always sends it.
    #[error("the callback's issuer is not the provider the sign-in was started with")]
    IssuerMismatch,
}

impl Callback {
    /// Reads the query string of the redirect back from the provider (without the `?`).
    ///
    /// A provider `error` is reported first, whatever else the query holds.
    ///
    /// ```
    /// use latchkey_oauth::{Callback, CallbackError};
    ///
    /// let cb = Callback::from_query("code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&iss=https%3A%2F%2Fid.example")?;
    /// assert_eq!(cb.state, "xyz");
    /// cb.check_issuer("https://id.example", false)?;
    ///
    /// let declined = Callback::from_query("error=access_denied&state=xyz").unwrap_err();
    /// assert!(matches!(declined, CallbackError::Provider { ref error, .. } if error == "access_denied"));
    /// # Ok::<(), CallbackError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CallbackError`]: the provider's error, a missing `code` or `state`, a repeated
    /// parameter, or a query over [`MAX_CALLBACK_QUERY`].
    pub fn from_query(query: &str) -> Result<Self, CallbackError> {
        if query.len() > MAX_CALLBACK_QUERY {
            return Err(CallbackError::TooLong);
        }
        let mut fields: [Option<String>; 6] = Default::default();
        const NAMES: [&str; 6] = [
            "code",
            "state",
            "iss",
            "error",
            "error_description",
            "error_uri",
        ];
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if let Some(i) = NAMES.iter().position(|n| *n == name) {
                if fields[i].is_some() {
                    return Err(CallbackError::Repeated);
                }
                fields[i] = Some(value.into_owned());
            }
        }
        let [code, state, iss, error, description, _uri] = fields;
        if let Some(error) = error {
            return Err(CallbackError::Provider {
                error: if is_error_code(&error) {
                    error
                } else {
                    "invalid_error".to_owned()
                },
                description: description
                    .filter(|d| d.len() <= 256 && d.bytes().all(|b| (0x20..=0x7e).contains(&b))),
                state,
            });
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(CallbackError::MissingCode)?;
        let state = state
            .filter(|s| !s.is_empty())
            .ok_or(CallbackError::MissingState)?;
        Ok(Self { code, state, iss })
    }

    /// RFC 9207: `iss`, when present, must be exactly `issuer`; when the provider's metadata
    /// says it always sends `iss` (`authorization_response_iss_parameter_supported`), pass
    /// `required = true` and a missing one is refused too.
    ///
    /// # Errors
    ///
    /// [`CallbackError::IssuerMismatch`].
    pub fn check_issuer(&self, issuer: &str, required: bool) -> Result<(), CallbackError> {
        match &self.iss {
            Some(iss) if iss == issuer => Ok(()),
            None if !required => Ok(()),
            _ => Err(CallbackError::IssuerMismatch),
        }
    }
}

/// RFC 6749's `error` syntax: 1*( %x20-21 / %x23-5B / %x5D-7E ), here at most 64 characters.
fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_error_comes_first_and_is_sanitised() {
        let err = Callback::from_query(
            "code=abc&state=s&error=access_denied&error_description=User+said+no",
        )
        .unwrap_err();
        assert_eq!(
            err,
            CallbackError::Provider {
                error: "access_denied".into(),
                description: Some("User said no".into()),
                state: Some("s".into()),
            }
        );
        let err =
            Callback::from_query("error=%22%3Cscript%3E&error_description=%00bad").unwrap_err();
        assert_eq!(
            err,
            CallbackError::Provider {
                error: "invalid_error".into(),
                description: None,
                state: None,
            }
        );
    }

    #[test]
    fn every_refusal() {
        for (query, expected) in [
            ("state=s", CallbackError::MissingCode),
            ("code=&state=s", CallbackError::MissingCode),
            ("code=c", CallbackError::MissingState),
            ("code=c&state=", CallbackError::MissingState),
            ("code=c&state=s&state=t", CallbackError::Repeated),
            ("code=c&code=d&state=s", CallbackError::Repeated),
            ("code=c&state=s&iss=a&iss=b", CallbackError::Repeated),
        ] {
            assert_eq!(Callback::from_query(query), Err(expected), "{query}");
        }
        let long = format!("code=c&state=s&pad={}", "a".repeat(MAX_CALLBACK_QUERY));
        assert_eq!(Callback::from_query(&long), Err(CallbackError::TooLong));
    }

    #[test]
    fn unknown_parameters_are_ignored_and_values_decoded() {
        let cb =
            Callback::from_query("session_state=x&code=a%2Bb&state=s%20t&scope=openid").unwrap();
        assert_eq!(cb.code, "a+b");
        assert_eq!(cb.state, "s t");
        assert_eq!(cb.iss, None);
        assert!(!format!("{cb:?}").contains("a+b"));
    }

    #[test]
    fn rfc_9207_issuer() {
        let with = Callback::from_query("code=c&state=s&iss=https%3A%2F%2Fid.example").unwrap();
        let without = Callback::from_query("code=c&state=s").unwrap();
        assert_eq!(with.check_issuer("https://id.example", true), Ok(()));
        assert_eq!(
            with.check_issuer("https://other.example", false),
            Err(CallbackError::IssuerMismatch)
        );
        assert_eq!(without.check_issuer("https://id.example", false), Ok(()));
        assert_eq!(
            without.check_issuer("https://id.example", true),
            Err(CallbackError::IssuerMismatch)
        );
    }
}
