//! Registered claims (RFC 7519 §4.1) and the caller's own claims.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Part};

/// A registered claim name (RFC 7519 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Claim {
    /// `iss`: who issued the token.
    Iss,
    /// `sub`: whom the token is about.
    Sub,
    /// `aud`: who the token is for.
    Aud,
    /// `exp`: when the token expires.
    Exp,
    /// `nbf`: when the token becomes valid.
    Nbf,
    /// `iat`: when the token was issued.
    Iat,
    /// `jti`: the token's unique ID.
    Jti,
}

impl Claim {
    /// Every registered claim, in RFC order.
    pub const ALL: [Claim; 7] = [
        Claim::Iss,
        Claim::Sub,
        Claim::Aud,
        Claim::Exp,
        Claim::Nbf,
        Claim::Iat,
        Claim::Jti,
    ];

    /// The claim's JSON member name, e.g. `"exp"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Claim::Iss => "iss",
            Claim::Sub => "sub",
            Claim::Aud => "aud",
            Claim::Exp => "exp",
            Claim::Nbf => "nbf",
            Claim::Iat => "iat",
            Claim::Jti => "jti",
        }
    }

    /// The registered claim named `name` (all registered names are three ASCII letters, so this
    /// is one length check and one integer comparison per candidate).
    #[inline]
    pub(crate) fn from_name(name: &str) -> Option<Claim> {
        let &[a, b, c] = name.as_bytes() else {
            return None;
        };
        Some(match [a, b, c] {
            [b'i', b's', b's'] => Claim::Iss,
            [b's', b'u', b'b'] => Claim::Sub,
            [b'a', b'u', b'd'] => Claim::Aud,
            [b'e', b'x', b'p'] => Claim::Exp,
            [b'n', b'b', b'f'] => Claim::Nbf,
            [b'i', b'a', b't'] => Claim::Iat,
            [b'j', b't', b'i'] => Claim::Jti,
            _ => return None,
        })
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `aud` claim: one audience (a JSON string) or several (an array of strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "api"`.
    One(String),
    /// `"aud": ["api", "billing"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is one of the token's audiences.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        self.iter().any(|a| a == audience)
    }

    /// The audiences, one by one.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Audience::One(a) => (Some(a.as_str()), &[][..]),
            Audience::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Audience::One(a.to_owned())
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Self {
        Audience::One(a)
    }
}

impl From<Vec<String>> for Audience {
    fn from(a: Vec<String>) -> Self {
        Audience::Many(a)
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Audience, E> {
                Ok(Audience::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Audience::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A token's claims: the registered claims of RFC 7519 §4.1 plus the caller's own claims `T`.
///
/// Times are whole seconds since the Unix epoch. When decoding, `exp`, `nbf` and `iat` may be
/// any JSON number that is a NumericDate (RFC 7519 §2): a plain integer, or the same value
/// written as `1700003600.0`, `1.7000036e9` or `17000036e2`. A fraction is rounded towards the
/// stricter side: `exp` and `iat` down, `nbf` up (`"exp": 1700003600.5` expires at
/// 1700003600, half a second early, never late; `iat` rounded down makes a token look older to
/// [`max_age`](crate::ValidationBuilder::max_age), never younger). Digits finer than a double
/// holds (a quarter of a microsecond at today's dates) are lost in the JSON parse, before rounding.
/// Rejected as [`ErrorKind::InvalidClaimType`]: a non-number, a negative number, and a number
/// not written as a plain integer that is after 9999-12-31T23:59:59Z (253402300799; a plain
/// integer may be any `u64`). JSON has no NaN or infinity; a decoder that produces one gets the
/// same error. `iss`, `sub` and `jti` must be strings, `aud` a string or an array of strings.
///
/// `T` is serialized into, and deserialized from, the same JSON object in a single pass (no second
/// parse, no intermediate buffer): use a struct with `#[derive(Serialize, Deserialize)]`, a map such
/// as `serde_json::Map`, or `()` for none. The registered names (`iss`, `sub`, `aud`, `exp`,
/// `nbf`, `iat`, `jti`) belong to `Claims`: `T` never sees them when decoding, and a `T` that
/// serializes one of them is refused when signing (it would create a duplicate member).
///
/// ```
/// use latchkey_jwt::{Audience, Claims};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Roles {
///     roles: Vec<String>,
/// }
///
/// let claims = Claims {
///     sub: Some("user-42".into()),
///     aud: Some(Audience::from("api")),
///     exp: Some(1_900_000_000),
///     ..Claims::new(Roles { roles: vec!["admin".into()] })
/// };
/// assert_eq!(
///     serde_json::to_string(&claims).unwrap(),
///     r#"{"sub":"user-42","aud":"api","exp":1900000000,"roles":["admin"]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims<T = ()> {
    /// `iss`: the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `sub`: the subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `aud`: the audience(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// `exp`: expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// `nbf`: not before, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `iat`: issued at, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `jti`: a unique token ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The caller's own claims.
    #[serde(flatten)]
    pub custom: T,
}

impl<T> Claims<T> {
    /// Claims with no registered claim set and `custom` as the caller's claims.
    pub fn new(custom: T) -> Self {
        Claims {
            iss: None,
            sub: None,
            aud: None,
            exp: None,
            nbf: None,
            iat: None,
            jti: None,
            custom,
        }
    }

    /// The same registered claims with the caller's part replaced by `f(custom)`.
    ///
    /// ```
    /// use latchkey_jwt::Claims;
    ///
    /// let claims = Claims { sub: Some("alice".into()), ..Claims::new(41) };
    /// let claims = claims.map_custom(|n| n + 1);
    /// assert_eq!((claims.sub.as_deref(), claims.custom), (Some("alice"), 42));
    /// ```
    pub fn map_custom<U>(self, f: impl FnOnce(T) -> U) -> Claims<U> {
        Claims {
            iss: self.iss,
            sub: self.sub,
            aud: self.aud,
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            jti: self.jti,
            custom: f(self.custom),
        }
    }

    pub(crate) fn present(&self) -> u8 {
        let mut bits = 0;
        for (set, c) in [
            (self.iss.is_some(), Claim::Iss),
            (self.sub.is_some(), Claim::Sub),
            (self.aud.is_some(), Claim::Aud),
            (self.exp.is_some(), Claim::Exp),
            (self.nbf.is_some(), Claim::Nbf),
            (self.iat.is_some(), Claim::Iat),
            (self.jti.is_some(), Claim::Jti),
        ] {
            if set {
                bits |= c.bit();
            }
        }
        bits
    }
}

impl<T: Default> Default for Claims<T> {
    fn default() -> Self {
        Claims::new(T::default())
    }
}

/// Where a failed decode records the precise cause, so the verifier can report a typed error
/// instead of serde's message (which quotes token text).
#[derive(Debug, Default)]
pub(crate) struct Diag<'de> {
    pub(crate) kind: Option<ErrorKind>,
    /// The custom member being decoded last, for [`ErrorKind::InvalidCustomClaims`].
    pub(crate) custom_key: Option<Cow<'de, str>>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Claims<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut diag = Diag::default();
        ClaimsSeed {
            diag: &mut diag,
            _t: PhantomData,
        }
        .deserialize(d)
    }
}

pub(crate) struct ClaimsSeed<'a, 'de, T> {
    pub(crate) diag: &'a mut Diag<'de>,
    pub(crate) _t: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ClaimsSeed<'_, 'de, T> {
    type Value = Claims<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Claims<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ClaimsSeed<'_, 'de, T> {
    type Value = Claims<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims<T>, A::Error> {
        let mut claims = Claims::<()>::new(());
        let mut filter = Filter {
            map: &mut map,
            reg: &mut claims,
            diag: self.diag,
            done: false,
        };
        let custom = T::deserialize(&mut filter)?;
        filter.drain()?;
        Ok(claims.map_custom(|()| custom))
    }
}

/// What `exp`, `nbf` and `iat` must be, in [`ErrorKind::InvalidClaimType`].
pub(crate) const NUMERIC_DATE: &str =
    "a NumericDate (a non-negative number of seconds since the epoch)";

/// Largest NumericDate accepted when it is not written as a plain integer: 9999-12-31T23:59:59Z,
/// the last second RFC 3339 can write. Up to it a double resolves well under a millisecond, so
/// even a parse one unit off in the last place (serde_json's, for long spellings) reads the
/// second that was written; near 2^53 it reads another one.
pub(crate) const MAX_NON_INTEGER_DATE: f64 = 253_402_300_799.0;

/// Which way a fractional NumericDate is rounded to whole seconds.
#[derive(Clone, Copy)]
enum Round {
    /// Towards negative infinity (`exp`, `iat`).
    Down,
    /// Towards positive infinity (`nbf`).
    Up,
}

/// Reads a NumericDate (RFC 7519 §2) as whole seconds since the epoch.
///
/// A plain integer is taken as it is (any `u64`; serde_json hands it over without a float).
/// Any other spelling of a number — `1700003600.0`, `1.7000036e9`, `17000036e2` — arrives as a
/// double and is accepted when it is finite, not negative and at most [`MAX_NON_INTEGER_DATE`];
/// a fraction is rounded the way `round` says.
#[derive(Clone, Copy)]
struct NumericDate {
    round: Round,
}

impl<'de> DeserializeSeed<'de> for NumericDate {
    type Value = u64;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_u64(self)
    }
}

impl Visitor<'_> for NumericDate {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NUMERIC_DATE)
    }

    #[inline]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom("negative NumericDate"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // NaN is in no range, so it fails this test too.
        if !(0.0..=MAX_NON_INTEGER_DATE).contains(&v) {
            return Err(E::custom("NumericDate out of range"));
        }
        let whole = match self.round {
            Round::Down => v.floor(),
            Round::Up => v.ceil(),
        };
        // Whole and within 0..=MAX_NON_INTEGER_DATE: the conversion is exact.
        Ok(whole as u64)
    }
}

/// Presents the claims object to `T` with the registered members taken out (and decoded into
/// `reg`) as they stream past.
struct Filter<'a, 'de, A> {
    map: &'a mut A,
    reg: &'a mut Claims<()>,
    diag: &'a mut Diag<'de>,
    done: bool,
}

/// A member name, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, A: MapAccess<'de>> Filter<'_, 'de, A> {
    /// Reads the value of registered claim `claim` into `reg`.
    fn registered(&mut self, claim: Claim) -> Result<(), A::Error> {
        let r = &*self.reg;
        let present = match claim {
            Claim::Iss => r.iss.is_some(),
            Claim::Sub => r.sub.is_some(),
            Claim::Aud => r.aud.is_some(),
            Claim::Exp => r.exp.is_some(),
            Claim::Nbf => r.nbf.is_some(),
            Claim::Iat => r.iat.is_some(),
            Claim::Jti => r.jti.is_some(),
        };
        if present {
            self.diag.kind = Some(ErrorKind::DuplicateKey {
                part: Part::Payload,
            });
            return Err(de::Error::custom("duplicate registered claim"));
        }
        let expected = match claim {
            Claim::Iss | Claim::Sub | Claim::Jti => "a string",
            Claim::Aud => "a string or an array of strings",
            Claim::Exp | Claim::Nbf | Claim::Iat => NUMERIC_DATE,
        };
        let date = |round| NumericDate { round };
        let r = match claim {
            Claim::Iss => self.map.next_value().map(|v| self.reg.iss = Some(v)),
            Claim::Sub => self.map.next_value().map(|v| self.reg.sub = Some(v)),
            Claim::Jti => self.map.next_value().map(|v| self.reg.jti = Some(v)),
            Claim::Aud => self.map.next_value().map(|v| self.reg.aud = Some(v)),
            // Rounded towards the stricter side: `exp` earlier, `nbf` later, `iat` earlier (so
            // a token is never younger than it says for `max_age`).
            Claim::Exp => (self.map)
                .next_value_seed(date(Round::Down))
                .map(|v| self.reg.exp = Some(v)),
            Claim::Nbf => (self.map)
                .next_value_seed(date(Round::Up))
                .map(|v| self.reg.nbf = Some(v)),
            Claim::Iat => (self.map)
                .next_value_seed(date(Round::Down))
                .map(|v| self.reg.iat = Some(v)),
        };
        if r.is_err() && self.diag.kind.is_none() {
            self.diag.kind = Some(ErrorKind::InvalidClaimType { claim, expected });
        }
        r
    }

    /// Consumes whatever `T` left unread, still decoding registered claims.
    fn drain(&mut self) -> Result<(), A::Error> {
        while de::MapAccess::next_key_seed(self, PhantomData::<IgnoredAny>)?.is_some() {
            self.map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filter<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
                self.done = true;
                return Ok(None);
            };
            if let Some(claim) = Claim::from_name(&key) {
                self.registered(claim)?;
                continue;
            }
            self.diag.custom_key = Some(key.clone());
            return match key {
                Cow::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::new(k)),
                Cow::Owned(k) => seed.deserialize(StringDeserializer::new(k)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for &mut Filter<'_, 'de, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.drain()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf seq tuple tuple_struct map struct enum identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{
        Error as ValueError, F64Deserializer, I64Deserializer, U64Deserializer,
    };

    fn from_f64(v: f64, round: Round) -> Result<u64, ValueError> {
        NumericDate { round }.deserialize(F64Deserializer::<ValueError>::new(v))
    }

    #[test]
    fn non_finite_and_negative_doubles_are_not_numeric_dates() {
        // JSON cannot spell these, but other decoders (and `serde_json::Value` built by hand
        // through other formats) can hand them over.
        for v in [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.5,
            -1.0,
            f64::MIN,
        ] {
            for round in [Round::Down, Round::Up] {
                assert!(from_f64(v, round).is_err(), "{v}");
            }
        }
        assert!(NumericDate { round: Round::Down }
            .deserialize(I64Deserializer::<ValueError>::new(-1))
            .is_err());
    }

    #[test]
    fn doubles_round_the_requested_way_and_integers_pass_through() {
        assert_eq!(
            from_f64(1_700_003_600.5, Round::Down).ok(),
            Some(1_700_003_600)
        );
        assert_eq!(
            from_f64(1_700_003_600.5, Round::Up).ok(),
            Some(1_700_003_601)
        );
        assert_eq!(
            from_f64(1_700_003_600.0, Round::Up).ok(),
            Some(1_700_003_600)
        );
        assert_eq!(from_f64(-0.0, Round::Up).ok(), Some(0));
        assert_eq!(from_f64(0.25, Round::Up).ok(), Some(1));
        assert_eq!(
            from_f64(MAX_NON_INTEGER_DATE, Round::Up).ok(),
            Some(253_402_300_799)
        );
        assert!(from_f64(MAX_NON_INTEGER_DATE + 1.0, Round::Down).is_err());
        let date = NumericDate { round: Round::Up };
        assert_eq!(
            date.deserialize(U64Deserializer::<ValueError>::new(u64::MAX))
                .ok(),
            Some(u64::MAX)
        );
        assert_eq!(
            date.deserialize(I64Deserializer::<ValueError>::new(7)).ok(),
            Some(7)
        );
    }

    #[test]
    fn claims_decode_numeric_dates_from_a_json_value_too() {
        let v = serde_json::json!({"exp": 1.7000036e9, "nbf": 1_700_000_000.5, "iat": 17e8});
        let c: Claims = serde_json::from_value(v).unwrap();
        assert_eq!(
            (c.exp, c.nbf, c.iat),
            (
                Some(1_700_003_600),
                Some(1_700_000_001),
                Some(1_700_000_000)
            )
        );
    }
}
