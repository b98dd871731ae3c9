//! The JOSE header (RFC 7515 §4).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ErrorKind;
use crate::Algorithm;

/// A decoded JOSE header.
///
/// `alg`, `typ`, `kid`, `cty` and `crit` are checked against their RFC 7515 types while decoding;
/// any other parameter is kept as JSON and readable through [`Header::extra`].
/// Returned by [`Verifier::verify_token`](crate::Verifier::verify_token) and, for a token that has
/// not been verified, by [`dangerous::decode_header_unverified`](crate::dangerous::decode_header_unverified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    cty: Option<String>,
    crit: Option<Vec<String>>,
    extra: Map<String, Value>,
}

impl Header {
    /// The `alg` parameter exactly as written. After verification it is always the verifying key's
    /// algorithm.
    #[must_use]
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The `alg` parameter, when it names an [`Algorithm`] this crate knows (whatever the crate
    /// features: keys for RS256/PS256, ES256 and EdDSA need `rsa`, `ecdsa` and `eddsa`).
    #[must_use]
    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_alg(&self.alg)
    }

    /// The `typ` parameter (media type of the whole token, e.g. `JWT` or `at+jwt`).
    #[must_use]
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `kid` parameter (key ID).
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `cty` parameter (content type of the payload).
    #[must_use]
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }

    /// The `crit` parameter. A verified token never has one: this crate implements no extension,
    /// so any `crit` entry is rejected.
    #[must_use]
    pub fn crit(&self) -> Option<&[String]> {
        self.crit.as_deref()
    }

    /// Parameters other than `alg`, `typ`, `kid`, `cty` and `crit`.
    #[must_use]
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// Decodes a header, recording the precise cause of a failure in `diag`.
pub(crate) struct HeaderSeed<'a> {
    pub(crate) diag: &'a mut Option<ErrorKind>,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = Header;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        d.deserialize_map(self)
    }
}

const NAMES: [&str; 5] = ["alg", "typ", "kid", "cty", "crit"];

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut alg = None;
        let mut fields: [Option<String>; 3] = [None, None, None]; // typ, kid, cty
        let mut crit: Option<Vec<String>> = None;
        let mut extra = Map::new();
        while let Some(crate::claims::Key(key)) = map.next_key()? {
            let Some(i) = NAMES.iter().position(|n| *n == key) else {
                let value: Value = map.next_value()?;
                extra.insert(key.into_owned(), value);
                continue;
            };
            let field = NAMES[i];
            let fail = |diag: &mut Option<ErrorKind>, expected| {
                *diag = Some(ErrorKind::InvalidHeader { field, expected });
                de::Error::custom("invalid header parameter")
            };
            if i < 4 {
                let Ok(v) = map.next_value::<String>() else {
                    return Err(fail(self.diag, "a string"));
                };
                if i == 0 {
                    alg = Some(v);
                } else {
                    fields[i - 1] = Some(v);
                }
            } else {
                const CRIT: &str = "a non-empty array of strings";
                match map.next_value::<Vec<String>>() {
                    Ok(v) if !v.is_empty() => crit = Some(v),
                    _ => return Err(fail(self.diag, CRIT)),
                }
            }
        }
        let Some(alg) = alg else {
            *self.diag = Some(ErrorKind::MissingHeader { field: "alg" });
            return Err(de::Error::custom("missing alg"));
        };
        let [typ, kid, cty] = fields;
        Ok(Header {
            alg,
            typ,
            kid,
            cty,
            crit,
            extra,
        })
    }
}
