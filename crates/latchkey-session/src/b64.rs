//! Unpadded base64url (RFC 4648 §5) for the two 32-byte values on every request's path: the
//! session ID, decoded from each cookie, and the cookie tag, encoded on each verification.
//!
//! Both lengths are fixed (32 bytes, 43 characters), so each direction is a straight-line
//! table lookup with no length arithmetic or tail handling: measured, it takes well under half
//! the time of the general-purpose engine of the `base64` crate on this path. Decoding is exactly
//! as strict as that engine: only the 64 URL-safe characters, no padding, and the two spare bits
//! of the last character must be zero, so every value has one text form. The `base64` crate
//! remains the reference: the tests compare both directions against it, for every character at
//! every position.

/// The base64url alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Text length of 32 bytes: 256 bits in 6-bit characters, rounded up.
pub(crate) const TEXT_LEN: usize = 43;

/// Marks a byte outside the alphabet in [`DECODE`]; valid entries are below 64, so a set top
/// bit in the OR of all looked-up values means at least one character was invalid.
const INVALID: u8 = 0xff;

/// `DECODE[c]` is the 6-bit value of character `c`, or [`INVALID`].
static DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut v = 0;
    while v < 64 {
        t[ALPHABET[v] as usize] = v as u8;
        v += 1;
    }
    t
};

fn char_of(n: u32, shift: u32) -> u8 {
    ALPHABET[(n >> shift) as usize & 63]
}

/// The 43-character text of 32 bytes.
pub(crate) fn encode32(bytes: &[u8; 32]) -> [u8; TEXT_LEN] {
    let mut out = [0u8; TEXT_LEN];
    // Ten groups of three bytes become forty characters...
    for (group, chars) in bytes.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        chars.copy_from_slice(&[char_of(n, 18), char_of(n, 12), char_of(n, 6), char_of(n, 0)]);
    }
    // ...and the last two bytes three more, the third carrying two zero bits.
    let n = u32::from(bytes[30]) << 16 | u32::from(bytes[31]) << 8;
    out[40] = char_of(n, 18);
    out[41] = char_of(n, 12);
    out[42] = char_of(n, 6);
    out
}

/// The 32 bytes of a 43-character text, or `None` unless it is the canonical encoding of some
/// 32 bytes.
pub(crate) fn decode32(text: &[u8; TEXT_LEN]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    // The OR of every looked-up value: its top bit is set if any character was invalid.
    let mut seen = 0u8;
    let mut value = |c: u8| {
        let v = DECODE[usize::from(c)];
        seen |= v;
        u32::from(v)
    };
    for (chars, group) in text.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let n =
            value(chars[0]) << 18 | value(chars[1]) << 12 | value(chars[2]) << 6 | value(chars[3]);
        group.copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    let last = value(text[42]);
    let n = value(text[40]) << 18 | value(text[41]) << 12 | last << 6;
    out[30] = (n >> 16) as u8;
    out[31] = (n >> 8) as u8;
    // The last character's two low bits lie past the 256th bit: canonical text has them zero.
    if seen & 0x80 != 0 || last & 0b11 != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    /// What the `base64` crate's strict engine makes of `text`.
    fn reference_decode(text: &[u8]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
            Ok(32) => Some(out),
            _ => None,
        }
    }

    fn sample(seed: u8) -> [u8; 32] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
    }

    #[test]
    fn encodes_like_the_base64_crate() {
        for bytes in [[0u8; 32], [0xff; 32], sample(0), sample(91)] {
            assert_eq!(
                &encode32(&bytes)[..],
                URL_SAFE_NO_PAD.encode(bytes).as_bytes()
            );
            assert_eq!(decode32(&encode32(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn every_character_at_every_position_decodes_like_the_base64_crate() {
        for seed in [0, 0x55, 0xff] {
            let good = encode32(&sample(seed));
            for pos in 0..TEXT_LEN {
                for c in 0..=u8::MAX {
                    let mut text = good;
                    text[pos] = c;
                    assert_eq!(
                        decode32(&text),
                        reference_decode(&text),
                        "byte {c:#04x} at position {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn non_canonical_last_characters_are_rejected() {
        let good = encode32(&[0u8; 32]);
        assert_eq!(good[42], b'A');
        for (c, canonical) in [
            (b'A', true),
            (b'B', false),
            (b'C', false),
            (b'D', false),
            (b'E', true),
        ] {
            let mut text = good;
            text[42] = c;
            assert_eq!(decode32(&text).is_some(), canonical, "{}", char::from(c));
        }
    }

    proptest! {
        #[test]
        fn round_trips_and_matches_the_reference(bytes in any::<[u8; 32]>()) {
            let text = encode32(&bytes);
            let reference = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert_eq!(&text[..], reference.as_bytes());
            prop_assert_eq!(decode32(&text), Some(bytes));
        }

        #[test]
        fn arbitrary_text_decodes_like_the_reference(
            text in proptest::collection::vec(
                prop_oneof![
                    4 => proptest::sample::select(ALPHABET.to_vec()),
                    1 => any::<u8>(),
                ],
                TEXT_LEN,
            )
        ) {
            let text: [u8; TEXT_LEN] = text.try_into().unwrap();
            prop_assert_eq!(decode32(&text), reference_decode(&text));
        }
    }
}
