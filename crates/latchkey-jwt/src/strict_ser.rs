//! A serde_json formatter that writes compact JSON exactly like serde_json's own and, on the way,
//! refuses what a verifier would refuse: a member name twice in one object, or nesting deeper than
//! the cap. serde_json escapes a given string one way only, so comparing the written (escaped)
//! bytes of two names is comparing the names.

use std::io::{self, Write};

use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use crate::scan::{fingerprint, has_duplicates};
use crate::scratch::Scratch;

/// Why the formatter stopped (serde_json then reports an I/O error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    DuplicateKey,
    TooDeep,
}

pub(crate) struct StrictFormatter {
    max_depth: usize,
    depth: usize,
    /// The bytes of the member names of the open objects, back to back.
    arena: Vec<u8>,
    /// (fingerprint, start, end) of each name in `arena`, innermost object last.
    names: Vec<(u64, (usize, usize))>,
    /// Where each open object's names start in `names`.
    frames: Vec<usize>,
    in_key: bool,
    key_start: usize,
    pub(crate) refusal: Option<Refusal>,
}

impl StrictFormatter {
    /// A formatter that keeps its state in `scratch`'s buffers (give them back with
    /// [`StrictFormatter::finish`]).
    pub(crate) fn new(max_depth: usize, scratch: &mut Scratch) -> Self {
        StrictFormatter {
            max_depth,
            depth: 0,
            arena: std::mem::take(&mut scratch.arena),
            names: std::mem::take(&mut scratch.names),
            frames: std::mem::take(&mut scratch.frames),
            in_key: false,
            key_start: 0,
            refusal: None,
        }
    }

    /// Returns the buffers to `scratch`.
    pub(crate) fn finish(self, scratch: &mut Scratch) {
        scratch.arena = self.arena;
        scratch.names = self.names;
        scratch.frames = self.frames;
    }

    fn refuse(&mut self, r: Refusal) -> io::Error {
        self.refusal = Some(r);
        io::Error::other("refused")
    }

    fn open(&mut self) -> io::Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.refuse(Refusal::TooDeep));
        }
        Ok(())
    }
}

impl Formatter for &mut StrictFormatter {
    #[inline]
    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open()?;
        writer.write_all(b"[")
    }

    #[inline]
    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"]")
    }

    #[inline]
    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open()?;
        self.frames.push(self.names.len());
        writer.write_all(b"{")
    }

    #[inline]
    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        let first = self.frames.pop().unwrap_or(0);
        let arena = &self.arena;
        let mut names: Vec<(u64, &[u8])> = Vec::new();
        let dup = if self.names.len() - first <= 16 {
            let slice = &self.names[first..];
            slice.iter().enumerate().any(|(i, a)| {
                slice[i + 1..]
                    .iter()
                    .any(|b| a.0 == b.0 && arena[a.1 .0..a.1 .1] == arena[b.1 .0..b.1 .1])
            })
        } else {
            names.extend(
                self.names[first..]
                    .iter()
                    .map(|&(fp, (s, e))| (fp, &arena[s..e])),
            );
            has_duplicates(&mut names)
        };
        if dup {
            return Err(self.refuse(Refusal::DuplicateKey));
        }
        if let Some(&(_, (start, _))) = self.names.get(first) {
            self.arena.truncate(start);
        }
        self.names.truncate(first);
        writer.write_all(b"}")
    }

    #[inline]
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_key = true;
        self.key_start = self.arena.len();
        CompactFormatter.begin_object_key(writer, first)
    }

    #[inline]
    fn end_object_key<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.in_key = false;
        let fp = fingerprint(&self.arena[self.key_start..]);
        self.names.push((fp, (self.key_start, self.arena.len())));
        Ok(())
    }

    #[inline]
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.in_key {
            self.arena.extend_from_slice(fragment.as_bytes());
        }
        writer.write_all(fragment.as_bytes())
    }

    #[inline]
    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        if self.in_key {
            let tag = match &escape {
                CharEscape::Quote => b'"',
                CharEscape::ReverseSolidus => b'\\',
                CharEscape::Solidus => b'/',
                CharEscape::Backspace => b'b',
                CharEscape::FormFeed => b'f',
                CharEscape::LineFeed => b'n',
                CharEscape::CarriageReturn => b'r',
                CharEscape::Tab => b't',
                CharEscape::AsciiControl(c) => *c,
            };
            self.arena.extend_from_slice(&[b'\\', tag]);
        }
        CompactFormatter.write_char_escape(writer, escape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    fn write<T: Serialize>(v: &T, depth: usize) -> Result<String, Option<Refusal>> {
        let mut f = StrictFormatter::new(depth, &mut Scratch::default());
        let mut out = Vec::new();
        let r = v.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, &mut f,
        ));
        match r {
            Ok(()) => Ok(String::from_utf8(out).unwrap()),
            Err(_) => Err(f.refusal),
        }
    }

    struct Pairs(Vec<(&'static str, i32)>);
    impl Serialize for Pairs {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    #[test]
    fn writes_exactly_what_serde_json_writes() {
        let v = serde_json::json!({"a": [1, {"b": "x\"y\u{1}"}], "c\n": null, "d": {}});
        assert_eq!(write(&v, 16).unwrap(), serde_json::to_string(&v).unwrap());
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
        let many: Vec<(&'static str, i32)> = (0..40)
            .map(|i| (&*Box::leak(format!("k{i}").into_boxed_str()), i))
            .chain([("k7", 0)])
            .collect();
        assert_eq!(write(&Pairs(many), 16), Err(Some(Refusal::DuplicateKey)));
        // Same names in sibling objects are fine.
        let v = serde_json::json!({"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]});
        assert!(write(&v, 16).is_ok());
        let deep = serde_json::json!({"a": [[[1]]]});
        assert_eq!(write(&deep, 3), Err(Some(Refusal::TooDeep)));
        assert!(write(&deep, 4).is_ok());
    }
}
