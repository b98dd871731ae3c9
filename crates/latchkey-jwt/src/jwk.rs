//! JSON Web Keys (RFC 7517): a strict parser for the public keys of a JWK Set, as an OpenID
//! provider publishes them at its `jwks_uri`.
//!
//! - The algorithm of each key comes from its `alg` member or, when it has none, from the
//!   caller's allow-list; never from a token header. A key whose algorithm is not in the
//!   allow-list is skipped.
//! - Entries this build cannot use are **skipped and counted** ([`JwkSet::skipped`]), so that a
//!   provider publishing a new key type does not break login: an unknown `kty` (`oct`, `AKP`, or
//!   `RSA` without the `rsa` feature), an unknown `crv` (`P-384`, `X25519`), an unknown `alg`
//!   (`RS512`), `use` other than `sig`, `key_ops` without `verify`.
//! - An entry of a supported type that is broken **fails the whole set**: a missing or mistyped
//!   member, non-canonical base64url, an RSA `n` or `e` with a leading zero octet (RFC 7518 §2
//!   Base64urlUInt), a point off the curve, an RSA modulus outside 2048–8192
//!   bits, an `alg` that does not fit the key type. So does any private key member (`d`, `p`,
//!   `q`, `dp`, `dq`, `qi`, `oth`, `k`) in any entry, and two usable keys with the same `kid`.
//! - The document is at most [`MAX_JWK_SET_LEN`] bytes with at most [`MAX_JWK_SET_KEYS`]
//!   entries, UTF-8 JSON without duplicate member names, nested at most 8 deep.
//!
//! ```
//! # #[cfg(feature = "ecdsa")] {
//! use latchkey_jwt::jwk::JwkSet;
//! use latchkey_jwt::Algorithm;
//!
//! let json = r#"{"keys": [
//!   {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
//!    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
//!    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
//!   {"kty": "EC", "crv": "P-384", "kid": "ec-2", "x": "…", "y": "…"}
//! ]}"#;
//! let set = JwkSet::from_json(json, &[Algorithm::ES256, Algorithm::RS256])?;
//! assert_eq!(set.len(), 1);
//! assert_eq!(set.skipped(), 1); // P-384 is not supported: skipped, not an error
//! assert_eq!(set.get("ec-1").map(|k| k.algorithm()), Some(Algorithm::ES256));
//! # }
//! # Ok::<(), latchkey_jwt::Error>(())
//! ```

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};
use crate::scan::scan;
use crate::{Algorithm, VerifyingKey, B64};

/// The largest JWK Set document accepted, in bytes.
pub const MAX_JWK_SET_LEN: usize = 256 * 1024;
/// The most entries a JWK Set may have (usable or skipped).
pub const MAX_JWK_SET_KEYS: usize = 100;
const MAX_DEPTH: usize = 8;

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK Set was refused (see [`ErrorKind::InvalidJwkSet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwkRefusal {
    /// The document is larger than [`MAX_JWK_SET_LEN`].
    TooLarge,
    /// The document is not UTF-8 JSON, has a duplicate member name or nests too deeply.
    Malformed,
    /// The document is not an object with a `keys` array.
    MissingKeys,
    /// `keys` has more than [`MAX_JWK_SET_KEYS`] entries.
    TooManyKeys,
    /// An entry is not a JSON object.
    NotAnObject,
    /// An entry has a private key member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth` or `k`).
    PrivateKey,
    /// A required member is absent.
    MissingMember(&'static str),
    /// A member has the wrong JSON type, is not canonical base64url, or (`key_ops`) repeats a
    /// value.
    InvalidMember(&'static str),
    /// `alg` names an algorithm of another key type (an RSA key with `ES256` or `HS256`).
    AlgorithmMismatch,
    /// An RSA key has no `alg` and the allow-list has both `RS256` and `PS256`.
    AmbiguousAlgorithm,
    /// The members do not make a valid public key (a point off the curve, an even modulus).
    InvalidKey,
    /// An RSA modulus is outside 2048–8192 bits.
    RsaModulusSize,
    /// Two usable keys have the same `kid`.
    DuplicateKid,
}

impl fmt::Display for JwkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwkRefusal::TooLarge => write!(f, "larger than {MAX_JWK_SET_LEN} bytes"),
            JwkRefusal::Malformed => {
                f.write_str("not UTF-8 JSON, a duplicate member name, or nested too deeply")
            }
            JwkRefusal::MissingKeys => f.write_str("not an object with a `keys` array"),
            JwkRefusal::TooManyKeys => write!(f, "more than {MAX_JWK_SET_KEYS} keys"),
            JwkRefusal::NotAnObject => f.write_str("not a JSON object"),
            JwkRefusal::PrivateKey => f.write_str("has a private key member"),
            JwkRefusal::MissingMember(m) => write!(f, "no `{m}` member"),
            JwkRefusal::InvalidMember(m) => write!(f, "invalid `{m}` member"),
            JwkRefusal::AlgorithmMismatch => f.write_str("`alg` does not fit the key type"),
            JwkRefusal::AmbiguousAlgorithm => {
                f.write_str("an RSA key without `alg`, and the allow-list has both RS256 and PS256")
            }
            JwkRefusal::InvalidKey => f.write_str("not a valid public key"),
            JwkRefusal::RsaModulusSize => f.write_str("RSA modulus outside 2048-8192 bits"),
            JwkRefusal::DuplicateKid => f.write_str("a `kid` used by another key"),
        }
    }
}

/// The usable public keys of a JWK Set, each with the one algorithm it verifies.
///
/// Give it to [`Verifier::with_jwk_set`](crate::Verifier::with_jwk_set).
#[derive(Clone, Debug)]
pub struct JwkSet {
    keys: Vec<VerifyingKey>,
    skipped: usize,
}

fn refuse(index: Option<usize>, reason: JwkRefusal) -> Error {
    ErrorKind::InvalidJwkSet { index, reason }.into()
}

impl JwkSet {
    /// Parses a JWK Set document, keeping the public keys whose algorithm is in `allowed`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidJwkSet`] with the [`JwkRefusal`] and, when one entry is at fault, its
    /// index; see the [module docs](self) for what is refused and what is skipped.
    pub fn from_json(json: impl AsRef<[u8]>, allowed: &[Algorithm]) -> Result<Self, Error> {
        let json = json.as_ref();
        if json.len() > MAX_JWK_SET_LEN {
            return Err(refuse(None, JwkRefusal::TooLarge));
        }
        scan(json, MAX_DEPTH).map_err(|_| refuse(None, JwkRefusal::Malformed))?;
        let doc: Value =
            serde_json::from_slice(json).map_err(|_| refuse(None, JwkRefusal::Malformed))?;
        let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
            return Err(refuse(None, JwkRefusal::MissingKeys));
        };
        if entries.len() > MAX_JWK_SET_KEYS {
            return Err(refuse(None, JwkRefusal::TooManyKeys));
        }
        let mut keys: Vec<VerifyingKey> = Vec::new();
        let mut skipped = 0;
        for (i, entry) in entries.iter().enumerate() {
            match parse_entry(entry, allowed).map_err(|r| refuse(Some(i), r))? {
                Some(key) => {
                    if let Some(kid) = key.kid() {
                        if keys.iter().any(|k| k.kid() == Some(kid)) {
                            return Err(refuse(Some(i), JwkRefusal::DuplicateKid));
                        }
                    }
                    keys.push(key);
                }
                None => skipped += 1,
            }
        }
        Ok(JwkSet { keys, skipped })
    }

    /// The usable keys, in document order.
    #[must_use]
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The key named `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid() == Some(kid))
    }

    /// How many usable keys there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no entry was usable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many entries were skipped: of a type, curve or algorithm this build does not
    /// support, not for signatures, or not in the allow-list. Worth logging when it changes.
    #[must_use]
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The usable keys.
    #[must_use]
    pub fn into_keys(self) -> Vec<VerifyingKey> {
        self.keys
    }

    /// A set of public keys to publish (an issuer's `jwks_uri`, a test provider), written with
    /// [`JwkSet::to_json`].
    ///
    /// ```
    /// # #[cfg(feature = "ecdsa")] {
    /// use latchkey_jwt::jwk::JwkSet;
    /// use latchkey_jwt::{Algorithm, EcdsaSigningKey};
    ///
    /// let key = EcdsaSigningKey::from_pkcs8_pem(include_str!("../tests/keys/p256.pem"))?.with_kid("ec-1");
    /// let json = JwkSet::from_keys([key.verifying_key()])?.to_json();
    /// assert!(json.contains(r#""kty":"EC""#) && json.contains(r#""alg":"ES256""#));
    /// assert!(!json.contains(r#""d":"#)); // public members only
    /// let back = JwkSet::from_json(&json, &[Algorithm::ES256])?;
    /// assert_eq!(back.get("ec-1").map(|k| k.algorithm()), Some(Algorithm::ES256));
    /// # }
    /// # Ok::<(), latchkey_jwt::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::KeyAlgorithmMismatch`] for an HMAC key (a secret is never written into a
    /// JWK Set), [`ErrorKind::DuplicateKid`] when two keys have the same `kid`.
    pub fn from_keys<K: Into<VerifyingKey>>(
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Self, Error> {
        let mut out: Vec<VerifyingKey> = Vec::new();
        for key in keys {
            let key = key.into();
            if key.algorithm().is_hmac() {
                return Err(ErrorKind::KeyAlgorithmMismatch {
                    algorithm: key.algorithm(),
                }
                .into());
            }
            if let Some(kid) = key.kid() {
                if out.iter().any(|k| k.kid() == Some(kid)) {
                    return Err(ErrorKind::DuplicateKid.into());
                }
            }
            out.push(key);
        }
        Ok(JwkSet {
            keys: out,
            skipped: 0,
        })
    }

    /// The set as a JWK Set document: `{"keys":[...]}`, each key with `kty`, `use: "sig"`, `alg`,
    /// its `kid` when it has one, and its public members only.
    #[must_use]
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().filter_map(public_jwk).collect();
        let mut doc = Map::new();
        doc.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(doc).to_string()
    }
}

/// The public JWK of `key`; `None` for an HMAC key.
// Without an asymmetric feature every key is an HMAC key and the tail is unreachable.
#[allow(unreachable_code, unused_variables)]
fn public_jwk(key: &VerifyingKey) -> Option<Value> {
    let (kty, members): (&str, Vec<(&str, String)>) = match key {
        VerifyingKey::Hmac(_) => return None,
        #[cfg(feature = "rsa")]
        VerifyingKey::Rsa(k) => (
            "RSA",
            vec![
                ("n", B64.encode(k.modulus())),
                ("e", B64.encode(k.exponent())),
            ],
        ),
        #[cfg(feature = "ecdsa")]
        VerifyingKey::Ecdsa(k) => {
            let (x, y) = k.coordinates();
            (
                "EC",
                vec![
                    ("crv", "P-256".to_owned()),
                    ("x", B64.encode(x)),
                    ("y", B64.encode(y)),
                ],
            )
        }
        #[cfg(feature = "eddsa")]
        VerifyingKey::Ed25519(k) => (
            "OKP",
            vec![
                ("crv", "Ed25519".to_owned()),
                ("x", B64.encode(k.to_bytes())),
            ],
        ),
    };
    let mut jwk = Map::new();
    jwk.insert("kty".to_owned(), Value::from(kty));
    jwk.insert("use".to_owned(), Value::from("sig"));
    jwk.insert("alg".to_owned(), Value::from(key.algorithm().as_str()));
    if let Some(kid) = key.kid() {
        jwk.insert("kid".to_owned(), Value::from(kid));
    }
    for (name, value) in members {
        jwk.insert(name.to_owned(), Value::from(value));
    }
    Some(Value::Object(jwk))
}

/// The key types this build supports, for `kty` (and `crv`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[cfg(feature = "rsa")]
    Rsa,
    #[cfg(feature = "ecdsa")]
    P256,
    #[cfg(feature = "eddsa")]
    Ed25519,
}

impl Kind {
    fn algorithms(self) -> &'static [Algorithm] {
        match self {
            #[cfg(feature = "rsa")]
            Kind::Rsa => &[Algorithm::RS256, Algorithm::PS256],
            #[cfg(feature = "ecdsa")]
            Kind::P256 => &[Algorithm::ES256],
            #[cfg(feature = "eddsa")]
            Kind::Ed25519 => &[Algorithm::EdDSA],
        }
    }
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkRefusal> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwkRefusal::InvalidMember(name)),
    }
}

#[allow(dead_code)] // unused when no asymmetric feature is on
fn bytes(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkRefusal> {
    let s = string(obj, name)?.ok_or(JwkRefusal::MissingMember(name))?;
    B64.decode(s).map_err(|_| JwkRefusal::InvalidMember(name))
}

/// The key of one entry; `Ok(None)` when it is skipped.
fn parse_entry(entry: &Value, allowed: &[Algorithm]) -> Result<Option<VerifyingKey>, JwkRefusal> {
    let obj = entry.as_object().ok_or(JwkRefusal::NotAnObject)?;
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(JwkRefusal::PrivateKey);
    }
    let kty = string(obj, "kty")?.ok_or(JwkRefusal::MissingMember("kty"))?;
    let crv = string(obj, "crv")?;
    let kid = string(obj, "kid")?;
    let use_ = string(obj, "use")?;
    let alg = string(obj, "alg")?;
    let ops = match obj.get("key_ops") {
        None => None,
        Some(Value::Array(ops)) => {
            let mut seen: Vec<&str> = Vec::with_capacity(ops.len());
            for op in ops {
                let op = op.as_str().ok_or(JwkRefusal::InvalidMember("key_ops"))?;
                if seen.contains(&op) {
                    return Err(JwkRefusal::InvalidMember("key_ops"));
                }
                seen.push(op);
            }
            Some(seen)
        }
        Some(_) => return Err(JwkRefusal::InvalidMember("key_ops")),
    };

    let Some(kind) = kind(kty, crv)? else {
        return Ok(None);
    };
    if use_.is_some_and(|u| u != "sig") || ops.is_some_and(|ops| !ops.contains(&"verify")) {
        return Ok(None);
    }
    let algorithm = match alg {
        Some(alg) => {
            let Some(a) = Algorithm::from_alg(alg) else {
                return Ok(None); // an algorithm this crate does not know: skipped
            };
            if !kind.algorithms().contains(&a) {
                return Err(JwkRefusal::AlgorithmMismatch);
            }
            if !allowed.contains(&a) {
                return Ok(None);
            }
            a
        }
        None => {
            let mut fits = kind.algorithms().iter().filter(|a| allowed.contains(a));
            match (fits.next(), fits.next()) {
                (None, _) => return Ok(None),
                (Some(a), None) => *a,
                (Some(_), Some(_)) => return Err(JwkRefusal::AmbiguousAlgorithm),
            }
        }
    };
    let key = build(kind, algorithm, obj)?;
    Ok(Some(match kid {
        Some(kid) => with_kid(key, kid),
        None => key,
    }))
}

/// The supported key type of `kty` and `crv`, or `None` to skip the entry.
fn kind(kty: &str, crv: Option<&str>) -> Result<Option<Kind>, JwkRefusal> {
    let _ = crv;
    Ok(match kty {
        #[cfg(feature = "rsa")]
        "RSA" => Some(Kind::Rsa),
        #[cfg(feature = "ecdsa")]
        "EC" => match crv.ok_or(JwkRefusal::MissingMember("crv"))? {
            "P-256" => Some(Kind::P256),
            _ => None,
        },
        #[cfg(feature = "eddsa")]
        "OKP" => match crv.ok_or(JwkRefusal::MissingMember("crv"))? {
            "Ed25519" => Some(Kind::Ed25519),
            _ => None,
        },
        _ => None,
    })
}

#[allow(unused_variables)]
fn build(
    kind: Kind,
    algorithm: Algorithm,
    obj: &Map<String, Value>,
) -> Result<VerifyingKey, JwkRefusal> {
    #[allow(unused_imports)]
    use crate::ErrorKind as K;
    #[allow(dead_code)]
    fn key_error(e: &Error) -> JwkRefusal {
        match e.kind() {
            K::RsaModulusSize { .. } => JwkRefusal::RsaModulusSize,
            _ => JwkRefusal::InvalidKey,
        }
    }
    match kind {
        #[cfg(feature = "rsa")]
        Kind::Rsa => {
            // Base64urlUInt (RFC 7518 §2): the minimum number of octets, so no leading zero.
            let n = bytes(obj, "n")?;
            if n.first() == Some(&0) {
                return Err(JwkRefusal::InvalidMember("n"));
            }
            let e = bytes(obj, "e")?;
            if e.first() == Some(&0) {
                return Err(JwkRefusal::InvalidMember("e"));
            }
            crate::RsaVerifyingKey::from_components(algorithm, &n, &e)
                .map(VerifyingKey::Rsa)
                .map_err(|e| key_error(&e))
        }
        #[cfg(feature = "ecdsa")]
        Kind::P256 => {
            let x = bytes(obj, "x")?;
            let y = bytes(obj, "y")?;
            if x.len() != 32 {
                return Err(JwkRefusal::InvalidMember("x"));
            }
            if y.len() != 32 {
                return Err(JwkRefusal::InvalidMember("y"));
            }
            crate::EcdsaVerifyingKey::from_coordinates(&x, &y)
                .map(VerifyingKey::Ecdsa)
                .map_err(|e| key_error(&e))
        }
        #[cfg(feature = "eddsa")]
        Kind::Ed25519 => {
            let x = bytes(obj, "x")?;
            if x.len() != 32 {
                return Err(JwkRefusal::InvalidMember("x"));
            }
            crate::Ed25519VerifyingKey::from_bytes(&x)
                .map(VerifyingKey::Ed25519)
                .map_err(|e| key_error(&e))
        }
    }
}

#[allow(unused_variables, unreachable_code)]
fn with_kid(key: VerifyingKey, kid: &str) -> VerifyingKey {
    match key {
        VerifyingKey::Hmac(k) => VerifyingKey::Hmac(k.with_kid(kid)),
        #[cfg(feature = "rsa")]
        VerifyingKey::Rsa(k) => VerifyingKey::Rsa(k.with_kid(kid)),
        #[cfg(feature = "ecdsa")]
        VerifyingKey::Ecdsa(k) => VerifyingKey::Ecdsa(k.with_kid(kid)),
        #[cfg(feature = "eddsa")]
        VerifyingKey::Ed25519(k) => VerifyingKey::Ed25519(k.with_kid(kid)),
    }
}
