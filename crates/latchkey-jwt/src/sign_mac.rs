//! HMAC (RFC 2104) for the signer, written directly on sha2's compression functions.
//!
//! The `hmac` crate (which the verifier keeps using, for its constant-time comparison) buffers
//! its input: every signature copied the whole signing input through the digest's block buffer
//! and moved the hash state by value through `update` and `finalize`, and its padding code stalls
//! on store forwarding. Here the full blocks of the signing input are compressed straight from the
//! token buffer, only the last partial block is copied (into a padding block), and the states are
//! plain arrays. The header's full blocks are absorbed once, when the signer is built.
//!
//! Keyed states are as secret as the key; `Debug` is not implemented.

use sha2::block_api::{compress256, compress512};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::key::Algorithm;

/// A SHA-2 chaining state: `[u32; 8]` (SHA-256) or `[u64; 8]` (SHA-384, SHA-512).
pub(crate) trait State: Copy {
    /// Block size in bytes.
    const BLOCK: usize;
    /// Size of the message-length field of the padding, in bytes.
    const LEN_FIELD: usize;
    /// Compresses `data`, whose length is a multiple of [`State::BLOCK`].
    fn compress(&mut self, data: &[u8]);
    /// Writes the state big-endian into `out` (32 or 64 bytes).
    fn write_be(&self, out: &mut [u8; 64]);
}

impl State for [u32; 8] {
    const BLOCK: usize = 64;
    const LEN_FIELD: usize = 8;
    #[inline]
    fn compress(&mut self, data: &[u8]) {
        let (blocks, rest) = data.as_chunks::<64>();
        debug_assert!(rest.is_empty());
        compress256(self, blocks);
    }
    #[inline]
    fn write_be(&self, out: &mut [u8; 64]) {
        for (o, w) in out.chunks_exact_mut(4).zip(self) {
            o.copy_from_slice(&w.to_be_bytes());
        }
    }
}

impl State for [u64; 8] {
    const BLOCK: usize = 128;
    const LEN_FIELD: usize = 16;
    #[inline]
    fn compress(&mut self, data: &[u8]) {
        let (blocks, rest) = data.as_chunks::<128>();
        debug_assert!(rest.is_empty());
        compress512(self, blocks);
    }
    #[inline]
    fn write_be(&self, out: &mut [u8; 64]) {
        for (o, w) in out.chunks_exact_mut(8).zip(self) {
            o.copy_from_slice(&w.to_be_bytes());
        }
    }
}

/// Initial hash values (FIPS 180-4 §5.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const SHA384_IV: [u64; 8] = [
    0xcbbb_9d5d_c105_9ed8,
    0x629a_292a_367c_d507,
    0x9159_015a_3070_dd17,
    0x152f_ecd8_f70e_5939,
    0x6733_2667_ffc0_0b31,
    0x8eb4_4a87_6858_1511,
    0xdb0c_2e0d_64f9_8fa7,
    0x47b5_481d_befa_4fa4,
];
const SHA512_IV: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// HMAC keyed states for one hash, with a known prefix of the message already absorbed.
#[derive(Clone)]
pub(crate) struct Keyed<S> {
    /// After `key ^ ipad` and the first `absorbed` bytes of the message.
    inner: S,
    /// After `key ^ opad`.
    outer: S,
    /// Message bytes already in `inner` (a multiple of the block size).
    absorbed: usize,
    /// Tag length: 32, 48 or 64 bytes.
    out_len: usize,
}

impl<S: State> Keyed<S> {
    fn new(iv: S, key: &[u8], out_len: usize) -> Self {
        let mut block = [0u8; 128];
        let block = &mut block[..S::BLOCK];
        block[..key.len()].copy_from_slice(key);
        for b in block.iter_mut() {
            *b ^= 0x36;
        }
        let mut inner = iv;
        inner.compress(block);
        for b in block.iter_mut() {
            *b ^= 0x36 ^ 0x5c;
        }
        let mut outer = iv;
        outer.compress(block);
        Keyed {
            inner,
            outer,
            absorbed: 0,
            out_len,
        }
    }

    /// Absorbs the full blocks of `prefix`, which every message will start with.
    fn absorb_prefix(&mut self, prefix: &[u8]) {
        let full = prefix.len() / S::BLOCK * S::BLOCK;
        self.inner.compress(&prefix[..full]);
        self.absorbed = full;
    }

    /// The tag of `msg` (which starts with the absorbed prefix), written into `out`.
    #[inline]
    fn tag(&self, msg: &[u8], out: &mut [u8; 64]) -> usize {
        let data = &msg[self.absorbed.min(msg.len())..];
        let full = data.len() / S::BLOCK * S::BLOCK;
        let mut st = self.inner;
        st.compress(&data[..full]);

        // Padding: 0x80, zeros, the message length in bits (key block included), big-endian.
        let tail = &data[full..];
        let mut pad = [0u8; 256];
        pad[..tail.len()].copy_from_slice(tail);
        pad[tail.len()] = 0x80;
        let n = if tail.len() < S::BLOCK - S::LEN_FIELD {
            S::BLOCK
        } else {
            2 * S::BLOCK
        };
        let bits = ((S::BLOCK + msg.len()) as u128 * 8).to_be_bytes();
        pad[n - S::LEN_FIELD..n].copy_from_slice(&bits[16 - S::LEN_FIELD..]);
        st.compress(&pad[..n]);

        // Outer hash over the inner hash (truncated to the output length for SHA-384).
        let mut h = [0u8; 64];
        st.write_be(&mut h);
        let mut pad = [0u8; 128];
        pad[..self.out_len].copy_from_slice(&h[..self.out_len]);
        pad[self.out_len] = 0x80;
        let bits = ((S::BLOCK + self.out_len) as u128 * 8).to_be_bytes();
        pad[S::BLOCK - S::LEN_FIELD..S::BLOCK].copy_from_slice(&bits[16 - S::LEN_FIELD..]);
        let mut st = self.outer;
        st.compress(&pad[..S::BLOCK]);
        st.write_be(out);
        self.out_len
    }
}

/// The signer's HMAC state for one key.
#[derive(Clone)]
pub(crate) enum SignMac {
    S256(Keyed<[u32; 8]>),
    S384(Keyed<[u64; 8]>),
    S512(Keyed<[u64; 8]>),
}

impl SignMac {
    /// Keyed states for `secret` (any length; RFC 2104 hashes keys longer than a block).
    pub(crate) fn new(alg: Algorithm, secret: &[u8]) -> Self {
        match alg {
            Algorithm::HS256 => SignMac::S256(keyed::<Sha256, _>(SHA256_IV, secret, 32)),
            Algorithm::HS384 => SignMac::S384(keyed::<Sha384, _>(SHA384_IV, secret, 48)),
            Algorithm::HS512 => SignMac::S512(keyed::<Sha512, _>(SHA512_IV, secret, 64)),
        }
    }

    /// Absorbs the full blocks of `prefix`, which every signed message will start with.
    pub(crate) fn absorb_prefix(&mut self, prefix: &[u8]) {
        match self {
            SignMac::S256(k) => k.absorb_prefix(prefix),
            SignMac::S384(k) | SignMac::S512(k) => k.absorb_prefix(prefix),
        }
    }

    /// The tag of `msg` (which starts with the absorbed prefix) in `out`; returns its length.
    #[inline]
    pub(crate) fn tag(&self, msg: &[u8], out: &mut [u8; 64]) -> usize {
        match self {
            SignMac::S256(k) => k.tag(msg, out),
            SignMac::S384(k) | SignMac::S512(k) => k.tag(msg, out),
        }
    }
}

fn keyed<D: Digest, S: State>(iv: S, secret: &[u8], out_len: usize) -> Keyed<S> {
    if secret.len() > S::BLOCK {
        Keyed::new(iv, &D::digest(secret), out_len)
    } else {
        Keyed::new(iv, secret, out_len)
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};

    use super::*;

    fn reference(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match alg {
            Algorithm::HS256 => Hmac::<Sha256>::new_from_slice(key)
                .unwrap()
                .chain_update(msg)
                .finalize()
                .into_bytes()
                .to_vec(),
            Algorithm::HS384 => Hmac::<Sha384>::new_from_slice(key)
                .unwrap()
                .chain_update(msg)
                .finalize()
                .into_bytes()
                .to_vec(),
            Algorithm::HS512 => Hmac::<Sha512>::new_from_slice(key)
                .unwrap()
                .chain_update(msg)
                .finalize()
                .into_bytes()
                .to_vec(),
        }
    }

    #[test]
    fn agrees_with_the_hmac_crate() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            // Keys around both block sizes (longer ones are hashed first).
            for key_len in [0, 1, 32, 63, 64, 65, 127, 128, 129, 200] {
                let key = &data[300..300 + key_len];
                for prefix_len in [0, 37, 64, 130, 256] {
                    let mut mac = SignMac::new(alg, key);
                    mac.absorb_prefix(&data[..prefix_len]);
                    for len in prefix_len..prefix_len + 260 {
                        let mut out = [0u8; 64];
                        let n = mac.tag(&data[..len], &mut out);
                        assert_eq!(
                            out[..n],
                            reference(alg, key, &data[..len])[..],
                            "{alg} key {key_len} prefix {prefix_len} len {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rfc_4231_test_case_2() {
        let key = b"Jefe";
        let msg = b"what do ya want for nothing?";
        let mut out = [0u8; 64];
        let n = SignMac::new(Algorithm::HS256, key).tag(msg, &mut out);
        let hex: String = out[..n].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
