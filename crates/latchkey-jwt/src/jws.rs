//! Signing and verifying compact JWS tokens.

use std::borrow::Cow;
use std::marker::PhantomData;

use base64::Engine as _;
use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::Serialize;

use crate::any_key::{SigningKey, VerifyingKey};
use crate::claims::{Claims, ClaimsSeed, Diag};
use crate::error::{Error, ErrorKind, Malformed, Part};
use crate::header::{Header, HeaderSeed};
use crate::key::{KeySet, MacState};
use crate::scan::{scan, ScanError};
use crate::scratch::{with_scratch, Scratch};
use crate::strict_ser::{to_vec_strict, Refusal, SerError};
use crate::validation::{Validation, DEFAULT_MAX_DEPTH};
use crate::{b64, Claim, B64};

/// A verified token: its header and its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<T = ()> {
    /// The JOSE header.
    pub header: Header,
    /// The claims.
    pub claims: Claims<T>,
}

/// Signs claims with one key, writing the compact form `header.payload.signature`.
///
/// The key is an [`HmacKey`](crate::HmacKey) or, with the `rsa`, `ecdsa` and `eddsa` features,
/// a private key ([`SigningKey`]); its algorithm is the `alg` of every token.
/// The header (`alg`, `typ` — `JWT` unless changed with [`Signer::with_typ`] — and the key's `kid`)
/// is encoded once, when the signer is built (for HMAC, absorbed into a keyed state that every
/// signature clones); each token is built in one buffer.
///
/// ```
/// use latchkey_jwt::{Algorithm, Claims, HmacKey, Signer};
///
/// let key = HmacKey::from_secret(Algorithm::HS256, &[42u8; 32])?;
/// let token = Signer::new(key).sign(&Claims {
///     sub: Some("user-42".into()),
///     exp: Some(1_900_000_000),
///     ..Claims::new(())
/// })?;
/// assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    typ: Option<String>,
    /// `base64url(header) + "."`.
    prefix: String,
    /// For an HMAC key, the keyed state with `prefix` already absorbed.
    state: Option<MacState>,
}

impl Signer {
    /// A signer for `key` (an [`HmacKey`](crate::HmacKey), a private key or a [`SigningKey`]),
    /// writing `"typ": "JWT"` and the key's `kid` (if any) in the header.
    #[must_use]
    pub fn new(key: impl Into<SigningKey>) -> Self {
        Self::build(key.into(), Some("JWT".to_owned()))
    }

    /// A signer for the current key of `keys`.
    #[must_use]
    pub fn from_key_set(keys: &KeySet) -> Self {
        Self::new(keys.current().clone())
    }

    /// Writes `typ` as the header's `typ` (e.g. `at+jwt` for RFC 9068 access tokens).
    #[must_use]
    pub fn with_typ(self, typ: impl Into<String>) -> Self {
        Self::build(self.key, Some(typ.into()))
    }

    /// Leaves `typ` out of the header.
    #[must_use]
    pub fn without_typ(self) -> Self {
        Self::build(self.key, None)
    }

    /// The signing key.
    #[must_use]
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    fn build(key: SigningKey, typ: Option<String>) -> Self {
        let mut prefix = header_segment(key.algorithm().as_str(), typ.as_deref(), key.kid(), false);
        prefix.push('.');
        let state = match &key {
            SigningKey::Hmac(k) => {
                let mut state = k.mac();
                state.update(prefix.as_bytes());
                Some(state)
            }
            #[allow(unreachable_patterns)]
            _ => None,
        };
        Signer {
            key,
            typ,
            prefix,
            state,
        }
    }

    /// Signs `claims`, returning the compact token.
    ///
    /// The payload is checked like a verifier would check it, so this never mints a token that
    /// [`Verifier`] refuses for its structure.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] when the claims do not serialize to a JSON object, when a custom claim
    /// has the name of a registered claim (a duplicate member), when they nest deeper than 16, or
    /// (never seen in practice) when a private key fails to sign.
    pub fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<String, Error> {
        with_scratch(|scratch| self.sign_with(claims, scratch))
    }

    fn sign_with<T: Serialize>(
        &self,
        claims: &Claims<T>,
        scratch: &mut Scratch,
    ) -> Result<String, Error> {
        let r = to_vec_strict(
            claims,
            &mut scratch.bytes,
            &mut scratch.names,
            DEFAULT_MAX_DEPTH,
        );
        match r {
            Ok(()) => self.assemble(&scratch.bytes),
            Err(SerError(refusal)) => Err(ErrorKind::Encode(match refusal {
                Some(Refusal::DuplicateKey) => {
                    "a member appears twice (a custom claim named like a registered claim?)"
                }
                Some(Refusal::TooDeep) => "the claims nest deeper than 16 levels",
                None => "the custom claims must serialize to a JSON object with string keys",
            })
            .into()),
        }
    }

    /// `prefix + base64url(json) + "." + base64url(tag)`.
    fn assemble(&self, json: &[u8]) -> Result<String, Error> {
        // One buffer: prefix, payload and signature are written straight into it (base64's
        // `encode_string` goes through a chunked encoder and re-validates UTF-8 per chunk).
        let payload_len = b64::encoded_len(json.len());
        let Some(state) = &self.state else {
            let mut out = Vec::with_capacity(self.prefix.len() + payload_len + 1 + 1368);
            out.extend_from_slice(self.prefix.as_bytes());
            b64::append(&mut out, json);
            let sig = self.key.sign_asymmetric(&out)?;
            out.push(b'.');
            b64::append(&mut out, &sig);
            return String::from_utf8(out)
                .map_err(|_| ErrorKind::Encode("internal base64 error").into());
        };
        let tag_len = self.key.algorithm().output_len();
        let mut out =
            Vec::with_capacity(self.prefix.len() + payload_len + 1 + b64::encoded_len(tag_len));
        out.extend_from_slice(self.prefix.as_bytes());
        b64::append(&mut out, json);
        let mut tag = [0u8; 64];
        let n = state.tag_after(&out[self.prefix.len()..], &mut tag);
        out.push(b'.');
        b64::append(&mut out, &tag[..n]);
        // base64url output is ASCII; this check cannot fail.
        String::from_utf8(out).map_err(|_| ErrorKind::Encode("internal base64 error").into())
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

/// A header segment this verifier expects to see often (the ones [`Signer`] and `jsonwebtoken`
/// write for its keys), decoded and checked once at construction by the very same code as any
/// other header. A token whose header segment is byte-for-byte one of these skips decoding it.
#[derive(Clone, Debug)]
struct KnownHeader {
    segment: String,
    key: usize,
    header: Header,
}

/// At most this many keys get known headers; the others take the ordinary path.
const KNOWN_KEYS: usize = 8;

/// Verifies tokens: structure, signature, then the claims against a [`Validation`].
///
/// The algorithm comes from the key, never from the token. With a single key, a token `kid`
/// must match the key's `kid` when both are set; with a [`KeySet`], the token must name a key;
/// with several keys ([`Verifier::with_keys`], [`Verifier::with_jwk_set`]) a token names its key
/// by `kid`, and one without `kid` is accepted only when there is exactly one key.
///
/// ```
/// use latchkey_jwt::{Algorithm, Claims, HmacKey, Signer, Validation, Verifier};
///
/// let key = HmacKey::from_secret(Algorithm::HS256, &[42u8; 32])?;
/// let token = Signer::new(key.clone()).sign(&Claims {
///     exp: Some(1_900_000_000),
///     ..Claims::new(())
/// })?;
///
/// let verifier = Verifier::new(key, Validation::builder().now(1_800_000_000).build()?);
/// let claims: Claims = verifier.verify(&token)?;
/// assert_eq!(claims.exp, Some(1_900_000_000));
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<VerifyingKey>,
    /// How a token's `kid` picks the key.
    by_kid: KidRule,
    known: Vec<KnownHeader>,
    validation: Validation,
}

/// How a [`Verifier`] finds the key of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KidRule {
    /// One key; a token `kid` must match the key's when both are set.
    Single,
    /// A [`KeySet`]: the token must name a key.
    Required,
    /// Several keys: a token with `kid` names its key; one without is accepted only when there
    /// is exactly one key.
    NamedOrOnly,
}

/// The longest signature accepted, in base64url characters: an RSA-8192 signature (1024 bytes).
const MAX_SIGNATURE_B64: usize = 1366;

impl Verifier {
    /// A verifier with one key (an [`HmacKey`](crate::HmacKey), a public key or a
    /// [`VerifyingKey`]).
    #[must_use]
    pub fn new(key: impl Into<VerifyingKey>, validation: Validation) -> Self {
        Self::build(vec![key.into()], KidRule::Single, validation)
    }

    /// A verifier that picks the key named by each token's `kid`.
    #[must_use]
    pub fn with_key_set(keys: KeySet, validation: Validation) -> Self {
        let keys = keys
            .into_keys()
            .into_iter()
            .map(VerifyingKey::Hmac)
            .collect();
        Self::build(keys, KidRule::Required, validation)
    }

    /// A verifier with several keys, of any types: a token picks its key by `kid`, and a token
    /// without `kid` is accepted only when there is exactly one key. Each key verifies only its
    /// own algorithm.
    ///
    /// # Errors
    /// [`ErrorKind::NoKeys`] when `keys` is empty, [`ErrorKind::DuplicateKid`] when two keys have
    /// the same `kid`.
    pub fn with_keys<K: Into<VerifyingKey>>(
        keys: impl IntoIterator<Item = K>,
        validation: Validation,
    ) -> Result<Self, Error> {
        let keys: Vec<VerifyingKey> = keys.into_iter().map(Into::into).collect();
        if keys.is_empty() {
            return Err(ErrorKind::NoKeys.into());
        }
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = k.kid() {
                if keys[..i].iter().any(|o| o.kid() == Some(kid)) {
                    return Err(ErrorKind::DuplicateKid.into());
                }
            }
        }
        Ok(Self::build(keys, KidRule::NamedOrOnly, validation))
    }

    /// A verifier with the keys of a [`JwkSet`](crate::jwk::JwkSet), as with
    /// [`Verifier::with_keys`].
    ///
    /// # Errors
    /// [`ErrorKind::NoKeys`] when the set holds no usable key (every entry was skipped).
    pub fn with_jwk_set(set: crate::jwk::JwkSet, validation: Validation) -> Result<Self, Error> {
        Self::with_keys(set.into_keys(), validation)
    }

    fn build(keys: Vec<VerifyingKey>, by_kid: KidRule, validation: Validation) -> Self {
        let mut v = Verifier {
            keys,
            by_kid,
            known: Vec::new(),
            validation,
        };
        let mut known = Vec::new();
        for key in v.keys.iter().take(KNOWN_KEYS) {
            let alg = key.algorithm().as_str();
            let mut typs = vec![Some("JWT"), None];
            if let Some(t) = v.validation.typ.as_deref() {
                typs.push(Some(t));
            }
            let mut segments: Vec<String> = typs
                .into_iter()
                .map(|typ| header_segment(alg, typ, key.kid(), false))
                .collect();
            segments.push(header_segment(alg, Some("JWT"), key.kid(), true));
            for segment in segments {
                let Ok(header) = decode_header(&segment, v.validation.max_depth) else {
                    continue;
                };
                let Ok(i) = v.select(&header) else { continue };
                if !known.iter().any(|k: &KnownHeader| k.segment == segment) {
                    known.push(KnownHeader {
                        segment,
                        key: i,
                        header,
                    });
                }
            }
        }
        v.known = known;
        v
    }

    /// The validation this verifier applies.
    #[must_use]
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Verifies `token` and returns its claims.
    ///
    /// # Errors
    /// Every [`ErrorKind`] about structure, algorithm, signature, keys and claims; see
    /// [`Verifier::verify_token`] for the order of the checks.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>, Error> {
        self.verify_inner(token).map(|(_, claims)| claims)
    }

    /// Verifies `token` and returns its header and claims.
    ///
    /// In order: the size cap (before any decoding); three segments; the header (canonical
    /// base64url, strict JSON object, RFC 7515 types); `alg: none`; `crit`; key selection by `kid`;
    /// the algorithm against the key's; the signature, in constant time; only then the payload
    /// (canonical base64url, strict JSON object, registered claim types, custom claims); and last
    /// the validation (`typ`, required claims, `exp`, `nbf`, `iat` when a future one is rejected or a
    /// maximum age is set, issuer, subject, audience).
    ///
    /// # Errors
    /// The [`ErrorKind`] of the first check that fails.
    pub fn verify_token<T: DeserializeOwned>(&self, token: &str) -> Result<Token<T>, Error> {
        self.verify_inner(token).map(|(header, claims)| Token {
            header: header.into_owned(),
            claims,
        })
    }

    /// The index of the key that verifies a token with this header, or why there is none.
    fn select(&self, header: &Header) -> Result<usize, Error> {
        if header.alg().eq_ignore_ascii_case("none") {
            return Err(ErrorKind::NoneAlgorithm.into());
        }
        if header.crit().is_some() {
            return Err(ErrorKind::UnsupportedCrit.into());
        }
        let by_kid = |kid: &str| {
            self.keys
                .iter()
                .position(|k| k.kid() == Some(kid))
                .ok_or(ErrorKind::UnknownKid)
        };
        let i = match (self.by_kid, header.kid()) {
            (KidRule::Single, theirs) => match (self.keys[0].kid(), theirs) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    return Err(ErrorKind::UnknownKid.into())
                }
                _ => 0,
            },
            (KidRule::Required | KidRule::NamedOrOnly, Some(kid)) => by_kid(kid)?,
            (KidRule::NamedOrOnly, None) if self.keys.len() == 1 => 0,
            (KidRule::Required | KidRule::NamedOrOnly, None) => {
                return Err(ErrorKind::MissingKid.into())
            }
        };
        let alg = self.keys[i].algorithm();
        if header.algorithm() != Some(alg) {
            return Err(ErrorKind::AlgorithmMismatch {
                expected: alg,
                found: header.algorithm(),
            }
            .into());
        }
        Ok(i)
    }

    // Without an asymmetric feature, every key is an HMAC key.
    #[allow(irrefutable_let_patterns)]
    fn verify_inner<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<(Cow<'_, Header>, Claims<T>), Error> {
        let v = &self.validation;
        let parts = split(token, v.max_token_len)?;
        let (key, header) = match self.known.iter().find(|k| k.segment == parts.header) {
            Some(k) => (&self.keys[k.key], Cow::Borrowed(&k.header)),
            None => {
                let header = decode_header(parts.header, v.max_depth)?;
                let i = self.select(&header)?;
                (&self.keys[i], Cow::Owned(header))
            }
        };
        let alg = key.algorithm();

        // The signature, before anything of the payload is decoded.
        let sig_b64 = parts.signature.as_bytes();
        if let VerifyingKey::Hmac(key) = key {
            let mut sig = [0u8; 72];
            if sig_b64.len() > 88 {
                return Err(ErrorKind::InvalidSignature.into());
            }
            let n = B64
                .decode_slice(sig_b64, &mut sig)
                .map_err(|_| malformed(Part::Signature, Malformed::Base64))?;
            if n != alg.output_len() {
                return Err(ErrorKind::InvalidSignature.into());
            }
            if !key.state().verify_after(parts.signing_input, &sig[..n]) {
                return Err(ErrorKind::InvalidSignature.into());
            }
        } else {
            if sig_b64.len() > MAX_SIGNATURE_B64 {
                return Err(ErrorKind::InvalidSignature.into());
            }
            let sig = B64
                .decode(sig_b64)
                .map_err(|_| malformed(Part::Signature, Malformed::Base64))?;
            if !key.verify_asymmetric(parts.signing_input, &sig) {
                return Err(ErrorKind::InvalidSignature.into());
            }
        }

        let claims = decode_claims::<T>(parts.payload, v.max_depth)?;
        validate(v, &header, &claims)?;
        Ok((header, claims))
    }
}

/// `base64url(header JSON)` as [`Signer`] writes it, or (`typ_first`) as `jsonwebtoken` does.
fn header_segment(alg: &str, typ: Option<&str>, kid: Option<&str>, typ_first: bool) -> String {
    #[derive(Serialize)]
    struct H<'a> {
        alg: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        typ: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kid: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct TypFirst<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        typ: Option<&'a str>,
        alg: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        kid: Option<&'a str>,
    }
    // Serializing a struct of strings into a Vec cannot fail.
    let json = if typ_first {
        serde_json::to_vec(&TypFirst { typ, alg, kid })
    } else {
        serde_json::to_vec(&H { alg, typ, kid })
    }
    .unwrap_or_default();
    B64.encode(json)
}

pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    signature: &'a str,
    signing_input: &'a [u8],
}

fn malformed(part: Part, reason: Malformed) -> Error {
    ErrorKind::Malformed { part, reason }.into()
}

pub(crate) fn split(token: &str, max_len: usize) -> Result<Parts<'_>, Error> {
    if token.len() > max_len {
        return Err(ErrorKind::TooLarge {
            len: token.len(),
            max: max_len,
        }
        .into());
    }
    let segments = || malformed(Part::Header, Malformed::SegmentCount);
    let (header, rest) = token.split_once('.').ok_or_else(segments)?;
    let (payload, signature) = rest.split_once('.').ok_or_else(segments)?;
    if signature.contains('.') {
        return Err(segments());
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input: &token.as_bytes()[..header.len() + 1 + payload.len()],
    })
}

fn scan_error(part: Part, e: ScanError, max_depth: usize) -> Error {
    match e {
        ScanError::Malformed(reason) => malformed(part, reason),
        ScanError::DuplicateKey => ErrorKind::DuplicateKey { part }.into(),
        ScanError::TooDeep => ErrorKind::NestingTooDeep {
            part,
            max: max_depth,
        }
        .into(),
    }
}

fn decode_segment(seg: &str, part: Part, max_depth: usize) -> Result<Vec<u8>, Error> {
    let bytes = B64
        .decode(seg)
        .map_err(|_| malformed(part, Malformed::Base64))?;
    scan(&bytes, max_depth).map_err(|e| scan_error(part, e, max_depth))?;
    Ok(bytes)
}

pub(crate) fn decode_header(seg: &str, max_depth: usize) -> Result<Header, Error> {
    let bytes = decode_segment(seg, Part::Header, max_depth)?;
    let mut diag = None;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let r = HeaderSeed { diag: &mut diag }
        .deserialize(&mut de)
        .and_then(|h| de.end().map(|()| h));
    r.map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            malformed(Part::Header, Malformed::Json)
        } else {
            diag.unwrap_or(ErrorKind::Malformed {
                part: Part::Header,
                reason: Malformed::Json,
            })
            .into()
        }
    })
}

pub(crate) fn decode_claims<T: DeserializeOwned>(
    seg: &str,
    max_depth: usize,
) -> Result<Claims<T>, Error> {
    with_scratch(|scratch| {
        let bytes = &mut scratch.bytes;
        B64.decode_vec(seg, bytes)
            .map_err(|_| malformed(Part::Payload, Malformed::Base64))?;
        scan(bytes, max_depth).map_err(|e| scan_error(Part::Payload, e, max_depth))?;
        // The scan has checked UTF-8 (or seen only ASCII), so this cannot fail. Validating the
        // whole payload once here lets serde_json borrow each string without checking it again.
        let text =
            std::str::from_utf8(bytes).map_err(|_| malformed(Part::Payload, Malformed::Utf8))?;
        parse_claims(text)
    })
}

fn parse_claims<T: DeserializeOwned>(text: &str) -> Result<Claims<T>, Error> {
    let mut diag = Diag::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let r = ClaimsSeed::<T> {
        diag: &mut diag,
        _t: PhantomData,
    }
    .deserialize(&mut de)
    .and_then(|c| de.end().map(|()| c));
    r.map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            return malformed(Part::Payload, Malformed::Json);
        }
        if let Some(kind) = diag.kind {
            return kind.into();
        }
        let claim = diag
            .custom_key
            .filter(|k| {
                !k.is_empty()
                    && k.len() <= 64
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .map(std::borrow::Cow::into_owned);
        ErrorKind::InvalidCustomClaims { claim }.into()
    })
}

/// `typ` values compare ignoring ASCII case, with an optional `application/` prefix
/// (RFC 7515 §4.1.9).
fn typ_matches(expected: &str, actual: &str) -> bool {
    fn strip(s: &str) -> &str {
        const P: &str = "application/";
        match s.get(..P.len()) {
            Some(p) if p.eq_ignore_ascii_case(P) => &s[P.len()..],
            _ => s,
        }
    }
    strip(expected).eq_ignore_ascii_case(strip(actual))
}

fn validate<T>(v: &Validation, header: &Header, claims: &Claims<T>) -> Result<(), Error> {
    if let Some(expected) = &v.typ {
        if !header.typ().is_some_and(|t| typ_matches(expected, t)) {
            return Err(ErrorKind::WrongType {
                expected: expected.clone(),
            }
            .into());
        }
    }
    let missing = v.required & !claims.present();
    if missing != 0 {
        let claim = Claim::ALL
            .into_iter()
            .find(|c| missing & c.bit() != 0)
            .unwrap_or(Claim::Exp);
        return Err(ErrorKind::MissingClaim(claim).into());
    }
    let now = v.clock.now();
    let leeway = v.leeway;
    if let Some(exp) = claims.exp {
        // RFC 7519 §4.1.4: the token must not be accepted on or after `exp`.
        if now >= exp.saturating_add(leeway) {
            return Err(ErrorKind::Expired.into());
        }
    }
    if let Some(nbf) = claims.nbf {
        if now.saturating_add(leeway) < nbf {
            return Err(ErrorKind::NotYetValid.into());
        }
    }
    if let Some(iat) = claims.iat {
        if v.reject_issued_in_future && iat > now.saturating_add(leeway) {
            return Err(ErrorKind::IssuedInFuture.into());
        }
        if let Some(max_age) = v.max_age {
            if now > iat.saturating_add(max_age).saturating_add(leeway) {
                return Err(ErrorKind::TooOld.into());
            }
        }
    }
    if !v.issuers.is_empty() {
        // Presence was checked with the required claims.
        if !claims
            .iss
            .as_ref()
            .is_some_and(|iss| v.issuers.contains(iss))
        {
            return Err(ErrorKind::WrongIssuer.into());
        }
    }
    if let Some(subject) = &v.subject {
        if claims.sub.as_ref() != Some(subject) {
            return Err(ErrorKind::WrongSubject.into());
        }
    }
    match &claims.aud {
        Some(aud) if !v.audiences.is_empty() && !v.audiences.iter().any(|a| aud.contains(a)) => {
            return Err(ErrorKind::WrongAudience.into());
        }
        Some(_) if !v.audiences.is_empty() => {}
        Some(_) if !v.allow_unvalidated_audience => {
            return Err(ErrorKind::UnexpectedAudience.into());
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::typ_matches;

    #[test]
    fn typ_comparison_follows_rfc_7515() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("at+jwt", "AT+JWT"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+JWT"));
        assert!(!typ_matches("at+jwt", "JWT"));
        assert!(!typ_matches("at+jwt", "application/jwt"));
    }
}
