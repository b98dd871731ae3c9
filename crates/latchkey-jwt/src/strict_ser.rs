//! A serde serializer that writes compact JSON exactly like `serde_json::to_vec` and, on the way,
//! refuses what a verifier would refuse: a member name twice in one object, or nesting deeper than
//! the cap. Checking while writing is what makes it worth having: serializing with serde_json and
//! then running the verifier's pre-scan over the output costs a second pass (see BENCHMARKS.md).
//!
//! It writes structure, member names and strings itself (a string that needs no escape — nearly
//! all of them — is checked in one pass and copied whole) and hands every scalar, every string
//! that does need escaping, and raw JSON text to serde_json, so the bytes are serde_json's own.
//! serde_json escapes a given string one way only, so comparing the written (escaped) bytes of two
//! names is comparing the names; the names are compared where they lie in the output, never
//! copied.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeStruct as _, Serializer};

use crate::scan::{fingerprint, has_duplicates, scan, ScanError};

/// Why the serializer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    DuplicateKey,
    TooDeep,
}

/// A serialization error: a [`Refusal`], or anything else (a `Serialize` impl that failed, a map
/// key that is not a string, custom claims that are not an object).
#[derive(Debug)]
pub(crate) struct SerError(pub(crate) Option<Refusal>);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(Refusal::DuplicateKey) => f.write_str("duplicate member name"),
            Some(Refusal::TooDeep) => f.write_str("nested too deep"),
            None => f.write_str("cannot serialize as a JSON object"),
        }
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        SerError(None)
    }
}

impl From<serde_json::Error> for SerError {
    fn from(_: serde_json::Error) -> Self {
        SerError(None)
    }
}

type Result<T> = std::result::Result<T, SerError>;

/// The struct names by which serde_json's `RawValue` and arbitrary-precision `Number` announce
/// themselves; their one field is JSON text to write as is.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Member names of the open objects: (fingerprint, (start, end) of the escaped name in the output).
pub(crate) type Names = Vec<(u64, (usize, usize))>;

pub(crate) struct StrictSerializer<'a> {
    out: &'a mut Vec<u8>,
    names: &'a mut Names,
    depth: usize,
    max_depth: usize,
    /// Whether raw JSON text (a `RawValue`) was copied into the output unchecked: then the caller
    /// must scan the whole output.
    raw: bool,
}

impl<'a> StrictSerializer<'a> {
    #[inline]
    fn open(&mut self, bracket: u8) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(SerError(Some(Refusal::TooDeep)));
        }
        self.out.push(bracket);
        Ok(())
    }

    /// serde_json's own serializer, writing into the same buffer.
    #[inline]
    fn json(&mut self) -> serde_json::Serializer<&mut Vec<u8>> {
        serde_json::Serializer::new(&mut *self.out)
    }

    #[inline(always)]
    fn write_str(&mut self, s: &str) -> Result<()> {
        let b = s.as_bytes();
        if needs_escape(b) {
            return Ok((&mut self.json()).serialize_str(s)?);
        }
        self.out.reserve(b.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(b);
        self.out.push(b'"');
        Ok(())
    }

    /// `{"variant":` — the wrapper object of an enum variant with data (one member, no duplicate
    /// possible).
    fn open_variant(&mut self, variant: &str) -> Result<()> {
        self.open(b'{')?;
        self.write_str(variant)?;
        self.out.push(b':');
        Ok(())
    }

    fn compound(&mut self, kind: Kind) -> Compound<'_, 'a> {
        let frame = self.names.len();
        Compound {
            ser: self,
            first: true,
            frame,
            kind,
        }
    }
}

/// Whether serde_json would escape anything in `b`: a control character, `"` or `\`.
///
/// Eight bytes at a time (SWAR); the last word overlaps the one before it, and strings shorter
/// than eight bytes are gathered into one word padded with a harmless byte, so there is no
/// byte-by-byte tail.
#[inline]
fn needs_escape(b: &[u8]) -> bool {
    let n = b.len();
    if n >= 8 {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            if word_needs_escape(word(c)) {
                return true;
            }
        }
        return !chunks.remainder().is_empty() && word_needs_escape(word(&b[n - 8..]));
    }
    let x = if n >= 4 {
        // Two overlapping halves cover all of 4..=7 bytes.
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
        u64::from(lo) | (u64::from(hi) << 32)
    } else if n > 0 {
        // First, middle and last byte cover all of 1..=3 bytes.
        u64::from_le_bytes([b[0], b[n / 2], b[n - 1], b'A', b'A', b'A', b'A', b'A'])
    } else {
        return false;
    };
    word_needs_escape(x)
}

#[inline(always)]
fn word(c: &[u8]) -> u64 {
    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// Whether one of the eight bytes of `x` is below 0x20, `"` or `\`. Each test is the classic
/// "has a zero byte" / "has a byte less than n" bit trick, which is exact about whether some byte
/// matches (it can only misreport which one).
#[inline(always)]
fn word_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let q = x ^ (ONES * u64::from(b'"'));
    let bs = x ^ (ONES * u64::from(b'\\'));
    let below_space = x.wrapping_sub(ONES * 0x20) & !x;
    let is_quote = q.wrapping_sub(ONES) & !q;
    let is_backslash = bs.wrapping_sub(ONES) & !bs;
    (below_space | is_quote | is_backslash) & HIGH != 0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Object,
    /// `{"variant":[...]}`.
    VariantArray,
    /// `{"variant":{...}}`.
    VariantObject,
    /// A `RawValue` or arbitrary-precision `Number` (the struct's name): serde_json writes it.
    Raw(&'static str),
}

pub(crate) struct Compound<'s, 'a> {
    ser: &'s mut StrictSerializer<'a>,
    first: bool,
    /// Where this object's names start in `names`.
    frame: usize,
    kind: Kind,
}

impl Compound<'_, '_> {
    #[inline]
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        if !std::mem::replace(&mut self.first, false) {
            self.ser.out.push(b',');
        }
        value.serialize(&mut *self.ser)
    }

    #[inline]
    fn key<K: ?Sized + Serialize>(&mut self, key: &K) -> Result<()> {
        if !std::mem::replace(&mut self.first, false) {
            self.ser.out.push(b',');
        }
        // The name is written between quotes; remember where, without the quotes.
        let start = self.ser.out.len() + 1;
        key.serialize(KeySerializer(&mut *self.ser))?;
        let out = &mut self.ser.out;
        let end = out.len() - 1;
        self.ser
            .names
            .push((fingerprint(&out[start..end]), (start, end)));
        out.push(b':');
        Ok(())
    }

    #[inline]
    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }

    #[inline]
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        if let Kind::Raw(name) = self.kind {
            // serde_json copies the text as is; the caller scans the whole output.
            self.ser.raw = true;
            return Ok(RawField(name, key, value).serialize(&mut self.ser.json())?);
        }
        self.key(key)?;
        self.value(value)
    }

    #[inline]
    fn end_array(self) -> Result<()> {
        self.ser.depth -= 1;
        self.ser.out.push(b']');
        if self.kind == Kind::VariantArray {
            self.ser.depth -= 1;
            self.ser.out.push(b'}');
        }
        Ok(())
    }

    #[inline]
    fn end_object(self) -> Result<()> {
        if let Kind::Raw(_) = self.kind {
            return Ok(());
        }
        let ser = self.ser;
        let out = &ser.out[..];
        let names = &ser.names[self.frame..];
        let dup = if names.len() <= 16 {
            names.iter().enumerate().any(|(i, a)| {
                names[i + 1..]
                    .iter()
                    .any(|b| a.0 == b.0 && out[a.1 .0..a.1 .1] == out[b.1 .0..b.1 .1])
            })
        } else {
            let mut sorted: Vec<(u64, &[u8])> =
                names.iter().map(|&(fp, (s, e))| (fp, &out[s..e])).collect();
            has_duplicates(&mut sorted)
        };
        if dup {
            return Err(SerError(Some(Refusal::DuplicateKey)));
        }
        ser.names.truncate(self.frame);
        ser.depth -= 1;
        ser.out.push(b'}');
        if self.kind == Kind::VariantObject {
            ser.depth -= 1;
            ser.out.push(b'}');
        }
        Ok(())
    }
}

/// A `RawValue` or arbitrary-precision `Number` presented again, as it presented itself (a struct
/// `name` with one field), to serde_json's serializer, which writes its text as is.
struct RawField<'v, T: ?Sized>(&'static str, &'static str, &'v T);

impl<T: ?Sized + Serialize> Serialize for RawField<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct(self.0, 1)?;
        st.serialize_field(self.1, self.2)?;
        st.end()
    }
}

/// Serializer methods that hand a scalar to serde_json, writing into the same buffer.
macro_rules! to_serde_json {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        #[inline]
        fn $method(self, v: $ty) -> Result<()> {
            Ok((&mut self.json()).$method(v)?)
        }
    )*};
}

impl<'s, 'a> Serializer for &'s mut StrictSerializer<'a> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    to_serde_json! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128), serialize_f32(f32),
        serialize_f64(f64),
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.write_str(v.encode_utf8(&mut [0u8; 4]))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.write_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        // An array of numbers: one level of nesting.
        if self.depth >= self.max_depth {
            return Err(SerError(Some(Refusal::TooDeep)));
        }
        Ok((&mut self.json()).serialize_bytes(v)?)
    }
    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.write_str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        self.out.push(b'}');
        Ok(())
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'s, 'a>> {
        self.open(b'[')?;
        Ok(self.compound(Kind::Array))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.open_variant(variant)?;
        self.open(b'[')?;
        Ok(self.compound(Kind::VariantArray))
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'s, 'a>> {
        self.open(b'{')?;
        Ok(self.compound(Kind::Object))
    }
    #[inline]
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        if name == RAW_VALUE_TOKEN || name == NUMBER_TOKEN {
            return Ok(self.compound(Kind::Raw(name)));
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.open_variant(variant)?;
        self.open(b'{')?;
        Ok(self.compound(Kind::VariantObject))
    }
}

/// The four ways serde writes an array, all through [`Compound::element`].
macro_rules! array_impls {
    ($($tr:ident::$method:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = SerError;
            #[inline]
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
                self.element(value)
            }
            #[inline]
            fn end(self) -> Result<()> {
                self.end_array()
            }
        }
    )*};
}

array_impls!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The two ways serde writes a struct, both through [`Compound::field`].
macro_rules! struct_impls {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = SerError;
            #[inline]
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                self.field(key, value)
            }
            #[inline]
            fn end(self) -> Result<()> {
                self.end_object()
            }
        }
    )*};
}

struct_impls!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.key(key)
    }
    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.value(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.end_object()
    }
}

/// Writes a member name: what serde_json's own map-key serializer writes (strings, and scalars
/// between quotes), refusing the rest like it does.
struct KeySerializer<'s, 'a>(&'s mut StrictSerializer<'a>);

impl KeySerializer<'_, '_> {
    /// `"` + what serde_json writes for the scalar + `"`.
    fn quoted(
        self,
        write: impl FnOnce(&mut serde_json::Serializer<&mut Vec<u8>>) -> serde_json::Result<()>,
    ) -> Result<()> {
        self.0.out.push(b'"');
        write(&mut self.0.json())?;
        self.0.out.push(b'"');
        Ok(())
    }
}

/// Key serializer methods: `quoted` scalars between quotes (floats only when finite, as
/// serde_json), `refuse` everything that is not a scalar.
macro_rules! key_methods {
    (quoted: $($q:ident($qt:ty)),*; floats: $($f:ident($ft:ty)),*; refuse: $($r:ident($($rt:ty),*) -> $ret:ty),* $(,)?) => {
        $(fn $q(self, v: $qt) -> Result<()> {
            self.quoted(|s| s.$q(v))
        })*
        $(fn $f(self, v: $ft) -> Result<()> {
            if !v.is_finite() {
                return Err(SerError(None));
            }
            self.quoted(|s| s.$f(v))
        })*
        $(fn $r(self, $(_: $rt),*) -> Result<$ret> {
            Err(SerError(None))
        })*
    };
}

impl Serializer for KeySerializer<'_, '_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Impossible<(), SerError>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Impossible<(), SerError>;
    type SerializeStruct = Impossible<(), SerError>;
    type SerializeStructVariant = Impossible<(), SerError>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.0.write_str(v)
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.0.write_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.0.write_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn collect_str<T: ?Sized + fmt::Display>(self, value: &T) -> Result<()> {
        self.0.write_str(&value.to_string())
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(SerError(None))
    }

    key_methods! {
        quoted: serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
            serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
            serialize_u32(u32), serialize_u64(u64), serialize_u128(u128);
        floats: serialize_f32(f32), serialize_f64(f64);
        refuse: serialize_bytes(&[u8]) -> (),
            serialize_none() -> (),
            serialize_unit() -> (),
            serialize_unit_struct(&'static str) -> (),
            serialize_seq(Option<usize>) -> Self::SerializeSeq,
            serialize_tuple(usize) -> Self::SerializeTuple,
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
            serialize_tuple_variant(&'static str, u32, &'static str, usize)
                -> Self::SerializeTupleVariant,
            serialize_map(Option<usize>) -> Self::SerializeMap,
            serialize_struct(&'static str, usize) -> Self::SerializeStruct,
            serialize_struct_variant(&'static str, u32, &'static str, usize)
                -> Self::SerializeStructVariant,
    }
}

/// Serializes `value` into `out` (appending) with the strict checks, keeping member names in
/// `names` (cleared by the caller). With raw JSON text in the value, the whole output is scanned
/// afterwards like a verifier would.
pub(crate) fn to_vec_strict<T: ?Sized + Serialize>(
    value: &T,
    out: &mut Vec<u8>,
    names: &mut Names,
    max_depth: usize,
) -> Result<()> {
    let start = out.len();
    let mut ser = StrictSerializer {
        out,
        names,
        depth: 0,
        max_depth,
        raw: false,
    };
    value.serialize(&mut ser)?;
    if ser.raw {
        return match scan(&out[start..], max_depth) {
            Ok(()) => Ok(()),
            Err(ScanError::DuplicateKey) => Err(SerError(Some(Refusal::DuplicateKey))),
            Err(ScanError::TooDeep) => Err(SerError(Some(Refusal::TooDeep))),
            Err(ScanError::Malformed(_)) => Err(SerError(None)),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    fn write<T: Serialize>(v: &T, depth: usize) -> std::result::Result<String, Option<Refusal>> {
        let mut out = Vec::new();
        match to_vec_strict(v, &mut out, &mut Vec::new(), depth) {
            Ok(()) => Ok(String::from_utf8(out).unwrap()),
            Err(e) => Err(e.0),
        }
    }

    struct Pairs<K>(Vec<(K, i32)>);
    impl<K: Serialize> Serialize for Pairs<K> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, String),
        Struct { a: f64, b: Option<char> },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Tup(i8, u128, i128);

    #[derive(Serialize)]
    struct All {
        s: &'static str,
        esc: &'static str,
        e: Vec<E>,
        bytes: serde_bytes_like::Bytes,
        unit: (),
        unit_struct: Unit,
        tup: Tup,
        floats: (f32, f64, f64),
        empty: Vec<u8>,
        empty_map: std::collections::BTreeMap<String, u8>,
        int_keys: std::collections::BTreeMap<i64, bool>,
        bool_keys: std::collections::BTreeMap<bool, u8>,
        char_keys: std::collections::BTreeMap<char, u8>,
        raw: Box<serde_json::value::RawValue>,
    }

    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) &'static [u8]);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
    }

    #[test]
    fn writes_exactly_what_serde_json_writes() {
        let v = serde_json::json!({"a": [1, {"b": "x\"y\u{1}"}], "c\n": null, "d": {}, "é": "ü\u{7f}/"});
        assert_eq!(write(&v, 16).unwrap(), serde_json::to_string(&v).unwrap());
        let all = All {
            s: "plain text, long enough to cross a vector width: 0123456789abcdef",
            esc: "tab\there \\ \"quoted\" \u{1f} end",
            e: vec![
                E::Unit,
                E::New(7),
                E::Tuple(1, "x".into()),
                E::Struct {
                    a: -0.5,
                    b: Some('"'),
                },
            ],
            bytes: serde_bytes_like::Bytes(&[0, 1, 255]),
            unit: (),
            unit_struct: Unit,
            tup: Tup(-8, u128::MAX, i128::MIN),
            floats: (1.5, f64::NAN, 1e300),
            empty: vec![],
            empty_map: Default::default(),
            int_keys: [(-3, true), (40, false)].into_iter().collect(),
            bool_keys: [(false, 1), (true, 2)].into_iter().collect(),
            char_keys: [('\n', 1), ('k', 2)].into_iter().collect(),
            raw: serde_json::value::RawValue::from_string(r#"{"x": [1, 2]}"#.into()).unwrap(),
        };
        assert_eq!(
            write(&all, 16).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }

    #[test]
    fn escape_check_agrees_with_serde_json() {
        let escapes = |s: &str| serde_json::to_string(s).unwrap().len() != s.len() + 2;
        let mut samples = Vec::new();
        for len in 0..=20 {
            for pos in 0..len.max(1) {
                for c in (0u8..=0x7f).chain([0xc3, 0xa9, 0xe2, 0x82, 0xac]) {
                    let mut v = vec![b'a'; len];
                    if len > 0 {
                        v[pos] = c;
                    }
                    samples.push(v);
                }
            }
        }
        samples.push("é€ü".as_bytes().to_vec());
        samples.push("\u{7f}\u{80}\u{ff}".as_bytes().to_vec());
        for v in samples {
            let Ok(s) = std::str::from_utf8(&v) else {
                continue;
            };
            assert_eq!(needs_escape(s.as_bytes()), escapes(s), "{s:?}");
        }
    }

    #[test]
    fn refuses_duplicates_and_depth() {
        assert_eq!(
            write(&Pairs(vec![("a", 1), ("a", 2)]), 16),
            Err(Some(Refusal::DuplicateKey))
        );
        assert_eq!(
            write(&Pairs(vec![("a\n", 1), ("a\n", 2)]), 16),
            Err(Some(Refusal::DuplicateKey))
        );
        assert!(write(&Pairs(vec![("a\n", 1), ("a\t", 2), ("ab", 3)]), 16).is_ok());
        // Keys that are not strings are compared as written.
        assert!(write(&Pairs(vec![(1, 1), (2, 2)]), 16).is_ok());
        assert_eq!(
            write(&Pairs(vec![(12, 1), (12, 2)]), 16),
            Err(Some(Refusal::DuplicateKey))
        );
        assert_eq!(write(&Pairs(vec![((), 1)]), 16), Err(None));
        let many: Vec<(&'static str, i32)> = (0..40)
            .map(|i| (&*Box::leak(format!("k{i}").into_boxed_str()), i))
            .chain([("k7", 0)])
            .collect();
        assert_eq!(write(&Pairs(many), 16), Err(Some(Refusal::DuplicateKey)));
        let many: Vec<(&'static str, i32)> = (0..40)
            .map(|i| (&*Box::leak(format!("k{i}").into_boxed_str()), i))
            .collect();
        assert!(write(&Pairs(many), 16).is_ok());
        // Same names in sibling objects are fine.
        let v = serde_json::json!({"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]});
        assert!(write(&v, 16).is_ok());
        let deep = serde_json::json!({"a": [[[1]]]});
        assert_eq!(write(&deep, 3), Err(Some(Refusal::TooDeep)));
        assert!(write(&deep, 4).is_ok());
        // Enum variants with data nest one level, byte strings are arrays.
        #[derive(Serialize)]
        struct W {
            e: E,
            b: serde_bytes_like::Bytes,
        }
        let w = W {
            e: E::Tuple(1, String::new()),
            b: serde_bytes_like::Bytes(b"x"),
        };
        assert_eq!(write(&w, 2), Err(Some(Refusal::TooDeep)));
        assert!(write(&w, 3).is_ok());
        let w = W {
            e: E::Unit,
            b: serde_bytes_like::Bytes(b"x"),
        };
        assert_eq!(write(&w, 1), Err(Some(Refusal::TooDeep)));
        assert!(write(&w, 2).is_ok());
    }

    #[test]
    fn raw_json_is_checked_too() {
        #[derive(Serialize)]
        struct R {
            raw: Box<serde_json::value::RawValue>,
        }
        let r = |s: &str| R {
            raw: serde_json::value::RawValue::from_string(s.into()).unwrap(),
        };
        assert_eq!(
            write(&r(r#"{"a":1,"a":2}"#), 16),
            Err(Some(Refusal::DuplicateKey))
        );
        assert_eq!(write(&r("[[1]]"), 2), Err(Some(Refusal::TooDeep)));
        assert_eq!(write(&r("[[1]]"), 3).unwrap(), r#"{"raw":[[1]]}"#);
    }
}
