//! A single linear pre-scan over decoded JSON that enforces what serde_json does not:
//! no byte order mark, strict UTF-8, no unpaired surrogate escapes (serde_json skips the check in
//! values it ignores), a nesting-depth cap, a top-level object, and no duplicate member names in
//! any object (compared after escapes are decoded, so `"a"` and `"\u0061"` collide).
//!
//! It only has to agree with serde_json on documents serde_json accepts; anything it lets
//! through that is not JSON is rejected by serde_json afterwards.

use std::borrow::Cow;

use crate::error::Malformed;

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    Malformed(Malformed),
    DuplicateKey,
    TooDeep,
}

impl From<Malformed> for ScanError {
    fn from(m: Malformed) -> Self {
        ScanError::Malformed(m)
    }
}

type Result<T> = std::result::Result<T, ScanError>;

/// Objects with at most this many members are checked pairwise; larger ones are sorted, so a
/// big object costs O(n log n), not O(n²).
const PAIRWISE_MAX: usize = 16;

/// Checks `input` (see the module docs). `max_depth` counts nested objects and arrays, the
/// top-level object being depth 1.
pub(crate) fn scan(input: &[u8], max_depth: usize) -> Result<()> {
    if input.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(Malformed::ByteOrderMark.into());
    }
    let utf8 = || std::str::from_utf8(input).is_ok();
    let mut s = Scanner {
        b: input,
        pos: 0,
        keys: Vec::with_capacity(16),
        max_depth,
        non_ascii: false,
    };
    s.ws();
    if s.peek() != Some(b'{') {
        if !utf8() {
            return Err(Malformed::Utf8.into());
        }
        // serde_json decides between "not JSON" and "JSON but not an object".
        return Err(
            if serde_json::from_slice::<serde::de::IgnoredAny>(input).is_ok() {
                Malformed::NotAnObject.into()
            } else {
                Malformed::Json.into()
            },
        );
    }
    let r = s.value(0).and_then(|()| {
        s.ws();
        if s.pos == s.b.len() {
            Ok(())
        } else {
            Err(SYNTAX)
        }
    });
    // UTF-8 is validated only when a non-ASCII byte was seen (or the scan failed, so that invalid
    // UTF-8 is reported as such rather than as whatever it broke).
    if (s.non_ascii || r.is_err()) && !utf8() {
        return Err(Malformed::Utf8.into());
    }
    r
}

/// A cheap summary of a member name: its length and first seven bytes. Equal names have equal
/// fingerprints; most different names (all short ones) have different fingerprints, so the byte
/// comparison rarely runs.
#[inline]
pub(crate) fn fingerprint(key: &[u8]) -> u64 {
    let mut fp = (key.len() as u64) << 56;
    for (i, &b) in key.iter().take(7).enumerate() {
        fp |= u64::from(b) << (i * 8);
    }
    fp
}

/// Whether two entries of one object share a name. Sorts large objects in place.
pub(crate) fn has_duplicates<K: Ord>(keys: &mut [(u64, K)]) -> bool {
    if keys.len() <= PAIRWISE_MAX {
        keys.iter()
            .enumerate()
            .any(|(i, a)| keys[i + 1..].iter().any(|b| a.0 == b.0 && a.1 == b.1))
    } else {
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    /// Member names of the objects currently open, innermost last, with their fingerprints.
    keys: Vec<(u64, Cow<'a, [u8]>)>,
    max_depth: usize,
    /// Whether a byte >= 0x80 was seen (then the input is checked as UTF-8).
    non_ascii: bool,
}

/// Bytes that end a number or literal.
static ENDS_SCALAR: [bool; 256] = {
    let mut t = [false; 256];
    let ends = b",]} \t\n\r\"{[:";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

const SYNTAX: ScanError = ScanError::Malformed(Malformed::Json);

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Result<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(SYNTAX)
        }
    }

    /// One value at the current position; `depth` is the number of enclosing containers.
    fn value(&mut self, depth: usize) -> Result<()> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                if depth + 1 > self.max_depth {
                    return Err(ScanError::TooDeep);
                }
                self.pos += 1;
                self.object(depth + 1)
            }
            Some(b'[') => {
                if depth + 1 > self.max_depth {
                    return Err(ScanError::TooDeep);
                }
                self.pos += 1;
                self.array(depth + 1)
            }
            Some(b'"') => {
                self.pos += 1;
                self.string().map(|_| ())
            }
            Some(_) => {
                // A number or a literal: serde_json validates it; we only find its end.
                let start = self.pos;
                while let Some(&c) = self.b.get(self.pos) {
                    if ENDS_SCALAR[usize::from(c)] {
                        break;
                    }
                    self.non_ascii |= c >= 0x80;
                    self.pos += 1;
                }
                if self.pos == start {
                    Err(SYNTAX)
                } else {
                    Ok(())
                }
            }
            None => Err(SYNTAX),
        }
    }

    fn object(&mut self, depth: usize) -> Result<()> {
        let first_key = self.keys.len();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.eat(b'"')?;
            let key = self.string()?;
            self.keys.push((fingerprint(&key), key));
            self.eat(b':')?;
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(SYNTAX),
            }
        }
        if has_duplicates(&mut self.keys[first_key..]) {
            return Err(ScanError::DuplicateKey);
        }
        self.keys.truncate(first_key);
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<()> {
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(SYNTAX),
            }
        }
    }

    /// Advances to the next `"` or `\\` (or the end), eight bytes at a time. Raw control
    /// characters are left for serde_json, which rejects them.
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        #[inline]
        fn has(w: u64, c: u8) -> u64 {
            let x = w ^ (ONES * u64::from(c));
            x.wrapping_sub(ONES) & !x & HIGHS
        }
        while let Some(chunk) = self.b.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let m = has(w, b'"') | has(w, b'\\');
            // Conservative: bytes after a match are looked at again later anyway.
            self.non_ascii |= w & HIGHS != 0;
            if m != 0 {
                // The lowest flagged byte is always a true match.
                self.pos += (m.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        while let Some(c) = self.peek() {
            if c == b'"' || c == b'\\' {
                return;
            }
            self.non_ascii |= c >= 0x80;
            self.pos += 1;
        }
    }

    /// A string whose opening quote has been consumed. Returns its decoded bytes (borrowed when it
    /// has no escapes). Rejects bad escapes and unpaired surrogates.
    fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        let start = self.pos;
        self.skip_plain();
        match self.peek() {
            Some(b'"') => {
                let s = &self.b[start..self.pos];
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(_) => {}
            None => return Err(SYNTAX),
        }
        let mut out = self.b[start..self.pos].to_vec();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or(SYNTAX)?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(SYNTAX),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(_) => {
                    let from = self.pos;
                    self.skip_plain();
                    out.extend_from_slice(&self.b[from..self.pos]);
                }
                None => return Err(SYNTAX),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let digits = self.b.get(self.pos..self.pos + 4).ok_or(SYNTAX)?;
        let mut v: u16 = 0;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(SYNTAX),
            };
            v = (v << 4) | u16::from(n);
        }
        self.pos += 4;
        Ok(v)
    }

    /// The code point of a `\uXXXX` escape (the `\u` consumed), pairing surrogates.
    fn unicode_escape(&mut self) -> Result<char> {
        let lone = ScanError::Malformed(Malformed::LoneSurrogate);
        let hi = self.hex4()?;
        match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(lone);
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(lone);
                }
                let cp = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                char::from_u32(cp).ok_or(lone)
            }
            0xDC00..=0xDFFF => Err(lone),
            _ => char::from_u32(u32::from(hi)).ok_or(SYNTAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<()> {
        scan(s.as_bytes(), 8)
    }

    #[test]
    fn accepts_ordinary_objects() {
        assert_eq!(
            check(r#"{"a":1,"b":[1,2,{"c":null}],"d":"\u00e9\ud83d\ude00"}"#),
            Ok(())
        );
        assert_eq!(check(" { } "), Ok(()));
        // Same name in different objects is fine.
        assert_eq!(check(r#"{"a":{"a":1},"b":{"a":2}}"#), Ok(()));
    }

    #[test]
    fn duplicates_are_found_after_unescaping() {
        assert_eq!(check(r#"{"a":1,"a":2}"#), Err(ScanError::DuplicateKey));
        assert_eq!(check(r#"{"a":1,"\u0061":2}"#), Err(ScanError::DuplicateKey));
        assert_eq!(
            check(r#"{"x":{"b":1,"b":2}}"#),
            Err(ScanError::DuplicateKey)
        );
        assert_eq!(
            check(r#"{"x":[{"b":1,"b":2}]}"#),
            Err(ScanError::DuplicateKey)
        );
    }

    #[test]
    fn long_strings_with_escapes_at_every_offset() {
        // Exercise the eight-byte skipping at every alignment.
        for pad in 0..20 {
            let p = "x".repeat(pad);
            let doc = format!(r#"{{"{p}a":"{p}\"{p}","{p}\u0062":1,"c{p}":"{p}"}}"#);
            assert_eq!(check(&doc), Ok(()), "{doc}");
            let dup = format!(r#"{{"{p}a":1,"{p}\u0061":2}}"#);
            assert_eq!(check(&dup), Err(ScanError::DuplicateKey), "{dup}");
            let unterminated = format!(r#"{{"{p}"#);
            assert_eq!(check(&unterminated), Err(SYNTAX));
        }
    }

    #[test]
    fn large_objects_use_the_sorted_path() {
        let mut s = String::from("{");
        for i in 0..100 {
            s.push_str(&format!("\"k{i}\":{i},"));
        }
        s.push_str("\"k99\":0}");
        assert_eq!(check(&s), Err(ScanError::DuplicateKey));
        let ok = s.replace("\"k99\":0}", "\"k100\":0}");
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn rejects_bom_surrogates_depth_and_non_objects() {
        assert_eq!(
            scan(b"\xEF\xBB\xBF{}", 8),
            Err(ScanError::Malformed(Malformed::ByteOrderMark))
        );
        assert_eq!(
            scan(b"{\"a\":\"\xff\"}", 8),
            Err(ScanError::Malformed(Malformed::Utf8))
        );
        assert_eq!(
            check(r#"{"a":"\ud800"}"#),
            Err(ScanError::Malformed(Malformed::LoneSurrogate))
        );
        assert_eq!(
            check(r#"{"a":"\udc00\ud800"}"#),
            Err(ScanError::Malformed(Malformed::LoneSurrogate))
        );
        assert_eq!(check(r#"{"a":[[[[[[[[1]]]]]]]]}"#), Err(ScanError::TooDeep));
        assert_eq!(check(r#"{"a":[[[[[[1]]]]]]}"#), Ok(()));
        assert_eq!(
            check("[1]"),
            Err(ScanError::Malformed(Malformed::NotAnObject))
        );
        assert_eq!(check("{"), Err(ScanError::Malformed(Malformed::Json)));
        assert_eq!(check("{} x"), Err(ScanError::Malformed(Malformed::Json)));
        // Raw control characters are serde_json's to reject (it always does).
        assert_eq!(check("{\"a\":\"b\t\"}"), Ok(()));
        assert!(serde_json::from_str::<serde::de::IgnoredAny>("{\"a\":\"b\t\"}").is_err());
        assert_eq!(check(r#"{"a":"\q"}"#), Err(SYNTAX));
        assert_eq!(check(r#"{"a":"\u12"}"#), Err(SYNTAX));
    }
}
