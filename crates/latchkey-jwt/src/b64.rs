//! Unpadded base64url encoding for the signer's hot path.
//!
//! Twelve input bits at a time become two output characters through one lookup in a 4096-entry
//! table (8 KiB, built at compile time), and each group of six input bytes is written as one
//! eight-byte store. Decoding stays with the `base64` crate ([`crate::B64`]), whose strict
//! canonical checks the verifier relies on; the tests check this encoder against it.

/// The base64url alphabet (RFC 4648 §5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `PAIRS[v]` is the two characters of the 12-bit value `v`, first character in the low byte.
static PAIRS: [u16; 4096] = {
    let mut t = [0u16; 4096];
    let mut v = 0;
    while v < 4096 {
        t[v] = ALPHABET[v >> 6] as u16 | (ALPHABET[v & 63] as u16) << 8;
        v += 1;
    }
    t
};

/// Length of the unpadded base64 encoding of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

/// Appends the unpadded base64url encoding of `input` to `out`.
pub(crate) fn append(out: &mut Vec<u8>, input: &[u8]) {
    let start = out.len();
    out.resize(start + encoded_len(input.len()), 0);
    encode(input, &mut out[start..]);
}

/// Writes the encoding of `input` into `out`, which has exactly its length.
fn encode(input: &[u8], out: &mut [u8]) {
    #[inline(always)]
    fn group(x: u64, d: &mut [u8]) {
        let pair = |shift: u32| u64::from(PAIRS[(x >> shift) as usize & 0xfff]);
        let v = pair(52) | pair(40) << 16 | pair(28) << 32 | pair(16) << 48;
        d.copy_from_slice(&v.to_le_bytes());
    }
    let (mut i, mut o) = (0, 0);
    // Six bytes per step, read as one eight-byte load while eight bytes remain.
    while let (Some(s), Some(d)) = (input.get(i..i + 8), out.get_mut(o..o + 8)) {
        group(
            u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
            d,
        );
        i += 6;
        o += 8;
    }
    // 0 to 7 bytes left, 0 to 10 characters. Gathered with shifts, not through a stack buffer:
    // a narrow store followed by a wide load of the same bytes stalls store forwarding.
    let rest = &input[i.min(input.len())..];
    let o = o.min(out.len());
    let out = &mut out[o..];
    let x = rest
        .iter()
        .enumerate()
        .fold(0u64, |x, (i, &b)| x | u64::from(b) << (56 - 8 * i));
    let (out, bits) = if rest.len() >= 6 {
        let (group_out, out) = out.split_at_mut(8);
        group(x, group_out);
        (out, x << 48)
    } else {
        (out, x)
    };
    for (i, c) in out.iter_mut().enumerate() {
        *c = ALPHABET[(bits >> (58 - 6 * i)) as usize & 63];
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn agrees_with_the_base64_crate() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..data.len() {
            for start in [0, 1, 7] {
                let input = &data[start..(start + len).min(data.len())];
                let mut out = b"prefix.".to_vec();
                super::append(&mut out, input);
                let expected = format!("prefix.{}", crate::B64.encode(input));
                assert_eq!(out, expected.as_bytes(), "{input:?}");
            }
        }
    }
}
