//! [`ThrottleKey`]: what a budget is kept for, hashed before it reaches a store.

use std::fmt;

use sha2::{Digest, Sha256};

/// Whose budget a key counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An account name (the ID typed into the login form, known or not).
    Account,
    /// A client address (or whatever identifies the client: an IP, a /64, a device ID).
    Client,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Client => "client",
        }
    }
}

/// The budget an attempt is counted against. Holds only a SHA-256 of the kind and the value,
/// so neither a store nor `Debug` output ever shows the account name or the address.
///
/// ```
/// use latchkey_throttle::{KeyKind, ThrottleKey};
///
/// let key = ThrottleKey::account("alice");
/// assert_eq!(key.kind(), KeyKind::Account);
/// assert_eq!(key.hex().len(), 64);
/// assert!(!format!("{key:?}").contains("alice"));
/// assert_ne!(ThrottleKey::account("x"), ThrottleKey::client("x"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    kind: KeyKind,
    hex: String,
}

impl ThrottleKey {
    /// The budget of the account named `name`. Names are compared exactly: normalise them
    /// (case, whitespace) the way the login does before building the key.
    #[must_use]
    pub fn account(name: &str) -> Self {
        Self::new(KeyKind::Account, name)
    }

    /// The budget of the client `address`.
    #[must_use]
    pub fn client(address: &str) -> Self {
        Self::new(KeyKind::Client, address)
    }

    /// The budget of the client at `ip`, grouped the way addresses are handed out: an IPv4
    /// address on its own (an IPv4-mapped IPv6 address counts as that IPv4 address), an IPv6
    /// address by its /64 prefix, since one host or one customer usually holds a whole /64 and
    /// could otherwise spread its guesses over 2⁶⁴ addresses.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use latchkey_throttle::ThrottleKey;
    ///
    /// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    /// assert_eq!(
    ///     ThrottleKey::client_ip(ip("2001:db8:1:2::1")),
    ///     ThrottleKey::client_ip(ip("2001:db8:1:2:ffff::9")),
    /// );
    /// assert_ne!(
    ///     ThrottleKey::client_ip(ip("2001:db8:1:2::1")),
    ///     ThrottleKey::client_ip(ip("2001:db8:1:3::1")),
    /// );
    /// assert_eq!(
    ///     ThrottleKey::client_ip(ip("::ffff:192.0.2.7")),
    ///     ThrottleKey::client_ip(ip("192.0.2.7")),
    /// );
    /// ```
    #[must_use]
    pub fn client_ip(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(v4) => Self::client(&v4.to_string()),
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::client(&v4.to_string()),
                None => {
                    let s = v6.segments();
                    Self::client(&format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }

    /// A key of `kind` for `value`.
    #[must_use]
    pub fn new(kind: KeyKind, value: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"latchkey-throttle\0");
        hash.update(kind.tag().as_bytes());
        hash.update(b"\0");
        hash.update(value.as_bytes());
        let digest = hash.finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        Self { kind, hex }
    }

    /// Whose budget this is.
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The hash a store keys the budget by (64 lowercase hex digits).
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleKey")
            .field("kind", &self.kind)
            .field("hash", &&self.hex[..8])
            .finish_non_exhaustive()
    }
}
