//! What a verifier checks beyond the signature, configured once and reused.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::Claim;
use crate::error::{Error, ErrorKind};

/// A source of the current time, in seconds since the Unix epoch. Inject one with
/// [`ValidationBuilder::clock`] to make tests deterministic.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock (the default).
///
/// On Linux and Android it reads the kernel's coarse real-time clock (`CLOCK_REALTIME_COARSE`,
/// updated every scheduler tick, 1 to 4 ms), which is much cheaper to read than the precise clock
/// on every verification. JWT times are whole seconds, so a tick of lag can only matter in the
/// last few milliseconds of a token's last second, and the configured leeway is far larger.
/// Elsewhere it is [`SystemTime::now`](std::time::SystemTime::now).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // A clock before 1970 is treated as 1970: every token with an `exp` then looks valid for
    // longer, never shorter, than intended — but such a machine has bigger problems.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        u64::try_from(t.tv_sec).unwrap_or(0)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock stopped at a fixed time (seconds since the epoch), for tests and for replaying a
/// verification as of a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// Default cap on the whole token, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default cap on JSON nesting in the header and payload (the top-level object counts as 1).
pub const DEFAULT_MAX_DEPTH: usize = 16;
/// Highest nesting cap [`ValidationBuilder::max_depth`] accepts.
pub const MAX_DEPTH_LIMIT: usize = 64;
/// Default leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// What a [`Verifier`](crate::Verifier) checks after the signature: built with
/// [`Validation::builder`], immutable afterwards, cheap to clone.
///
/// Defaults: `exp` required, leeway 60 s, `exp` and `nbf` checked whenever present, an `iat` in the
/// future accepted (RFC 7519 §4.1.6 makes `iat` informational; see
/// [`ValidationBuilder::reject_issued_in_future`]), a token with an `aud` rejected unless an
/// audience is configured, 8 KiB size cap, nesting depth 16, system clock.
///
/// ```
/// use std::time::Duration;
/// use latchkey_jwt::{Claim, Validation};
///
/// let validation = Validation::builder()
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .required_claims([Claim::Exp, Claim::Sub])
///     .leeway(Duration::from_secs(30))
///     .typ("at+jwt")
///     .build()?;
/// # let _ = validation;
/// # Ok::<(), latchkey_jwt::Error>(())
/// ```
#[derive(Clone)]
pub struct Validation {
    pub(crate) required: u8,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) subject: Option<String>,
    pub(crate) leeway: u64,
    pub(crate) max_age: Option<u64>,
    pub(crate) typ: Option<String>,
    pub(crate) allow_unvalidated_audience: bool,
    pub(crate) reject_issued_in_future: bool,
    pub(crate) max_token_len: usize,
    pub(crate) max_depth: usize,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Validation {
    /// A builder with the defaults described on [`Validation`].
    pub fn builder() -> ValidationBuilder {
        ValidationBuilder {
            required: BTreeSet::from([Claim::Exp]),
            issuers: Vec::new(),
            audiences: Vec::new(),
            subject: None,
            leeway: DEFAULT_LEEWAY,
            max_age: None,
            typ: None,
            allow_unvalidated_audience: false,
            reject_issued_in_future: false,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            max_depth: DEFAULT_MAX_DEPTH,
            clock: Arc::new(SystemClock),
        }
    }

    /// The token size cap in bytes.
    #[must_use]
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// The JSON nesting cap.
    #[must_use]
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The current time according to the configured clock.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

/// The defaults described on [`Validation`].
impl Default for Validation {
    fn default() -> Self {
        let b = Validation::builder();
        Validation {
            required: Claim::Exp.bit(),
            issuers: b.issuers,
            audiences: b.audiences,
            subject: b.subject,
            leeway: b.leeway.as_secs(),
            max_age: None,
            typ: None,
            allow_unvalidated_audience: false,
            reject_issued_in_future: false,
            max_token_len: b.max_token_len,
            max_depth: b.max_depth,
            clock: b.clock,
        }
    }
}

impl fmt::Debug for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let required: Vec<Claim> = Claim::ALL
            .into_iter()
            .filter(|c| self.required & c.bit() != 0)
            .collect();
        f.debug_struct("Validation")
            .field("required", &required)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("subject", &self.subject)
            .field("leeway", &self.leeway)
            .field("max_age", &self.max_age)
            .field("typ", &self.typ)
            .field(
                "allow_unvalidated_audience",
                &self.allow_unvalidated_audience,
            )
            .field("reject_issued_in_future", &self.reject_issued_in_future)
            .field("max_token_len", &self.max_token_len)
            .field("max_depth", &self.max_depth)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Builds a [`Validation`]; [`build`](ValidationBuilder::build) refuses impossible combinations.
#[derive(Debug)]
#[must_use]
pub struct ValidationBuilder {
    required: BTreeSet<Claim>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    subject: Option<String>,
    leeway: Duration,
    max_age: Option<Duration>,
    typ: Option<String>,
    allow_unvalidated_audience: bool,
    reject_issued_in_future: bool,
    max_token_len: usize,
    max_depth: usize,
    clock: Arc<dyn Clock>,
}

impl ValidationBuilder {
    /// The claims a token must carry, replacing the default (`exp` only). Pass an empty list to
    /// accept tokens without `exp` — tokens that never expire.
    ///
    /// Configuring an issuer, audience, subject or maximum age also requires the matching claim.
    pub fn required_claims(mut self, claims: impl IntoIterator<Item = Claim>) -> Self {
        self.required = claims.into_iter().collect();
        self
    }

    /// Accepts tokens whose `iss` is `issuer`. Call again to accept several issuers.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience`. Call again to accept several (a token
    /// matches when it names at least one).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts only tokens whose `sub` is `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf`, [`max_age`](Self::max_age) and, when
    /// [`reject_issued_in_future`](Self::reject_issued_in_future) is on, a future `iat`
    /// (default 60 s; whole seconds count).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Rejects tokens issued (`iat`) longer than `max_age` ago; requires `iat`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Requires the header `typ` to be `typ` (RFC 8725 §3.11), e.g. `at+jwt` for access tokens
    /// (RFC 9068), so a token minted for one purpose cannot be replayed as another. Compared
    /// ignoring ASCII case, with an optional `application/` prefix (RFC 7515 §4.1.9).
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Accepts tokens that carry an `aud` even though this validation names no audience. By default
    /// such tokens are rejected ([`ErrorKind::UnexpectedAudience`]): a token meant for another
    /// service should not be accepted just because nobody said which service this is.
    pub fn allow_unvalidated_audience(mut self) -> Self {
        self.allow_unvalidated_audience = true;
        self
    }

    /// Rejects tokens whose `iat` is later than now plus the leeway
    /// ([`ErrorKind::IssuedInFuture`]).
    ///
    /// Off by default: RFC 7519 §4.1.6 makes `iat` informational, and a future `iat` usually
    /// means only that the issuer's clock runs ahead of this one; the token's lifetime is still
    /// bounded by `exp` and `nbf`, which are checked whenever present.
    /// Turn it on when the issuer's clock is trusted and a token from the future should be
    /// treated as forged or misconfigured. It is independent of [`max_age`](Self::max_age), which
    /// bounds a token's age from the other side.
    ///
    /// ```
    /// use latchkey_jwt::Validation;
    ///
    /// let validation = Validation::builder().reject_issued_in_future().build()?;
    /// # let _ = validation;
    /// # Ok::<(), latchkey_jwt::Error>(())
    /// ```
    pub fn reject_issued_in_future(mut self) -> Self {
        self.reject_issued_in_future = true;
        self
    }

    /// Cap on the whole token in bytes, checked before anything is decoded (default 8 KiB).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Cap on JSON nesting in the header and payload, the top-level object counting as 1
    /// (default 16, at most 64).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// The clock used for `exp`, `nbf` and `iat` checks (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Fixes the clock at `now` seconds since the epoch (shorthand for `.clock(FixedClock(now))`).
    pub fn now(self, now: u64) -> Self {
        self.clock(FixedClock(now))
    }

    /// Checks the configuration and builds the [`Validation`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidValidation`] when an issuer, audience, subject or `typ` is empty, when an
    /// audience is configured together with
    /// [`allow_unvalidated_audience`](Self::allow_unvalidated_audience), when the maximum age is zero,
    /// or when the size or depth cap is out of range.
    pub fn build(self) -> Result<Validation, Error> {
        let invalid = |why| Err(Error::from(ErrorKind::InvalidValidation(why)));
        if self.issuers.iter().any(String::is_empty) {
            return invalid("an expected issuer is empty");
        }
        if self.audiences.iter().any(String::is_empty) {
            return invalid("an expected audience is empty");
        }
        if self.subject.as_deref() == Some("") {
            return invalid("the expected subject is empty");
        }
        if self.typ.as_deref() == Some("") {
            return invalid("the required typ is empty");
        }
        if self.allow_unvalidated_audience && !self.audiences.is_empty() {
            return invalid("allow_unvalidated_audience contradicts the configured audiences");
        }
        if self.max_age == Some(Duration::ZERO) {
            return invalid("max_age must be positive");
        }
        if self.max_token_len < 16 {
            return invalid("max_token_len is too small for any token");
        }
        if self.max_depth == 0 || self.max_depth > MAX_DEPTH_LIMIT {
            return invalid("max_depth must be between 1 and 64");
        }
        let mut required: u8 = self.required.iter().fold(0, |b, c| b | c.bit());
        if !self.issuers.is_empty() {
            required |= Claim::Iss.bit();
        }
        if !self.audiences.is_empty() {
            required |= Claim::Aud.bit();
        }
        if self.subject.is_some() {
            required |= Claim::Sub.bit();
        }
        if self.max_age.is_some() {
            required |= Claim::Iat.bit();
        }
        Ok(Validation {
            required,
            issuers: self.issuers,
            audiences: self.audiences,
            subject: self.subject,
            leeway: self.leeway.as_secs(),
            max_age: self.max_age.map(|d| d.as_secs().max(1)),
            typ: self.typ,
            allow_unvalidated_audience: self.allow_unvalidated_audience,
            reject_issued_in_future: self.reject_issued_in_future,
            max_token_len: self.max_token_len,
            max_depth: self.max_depth,
            clock: self.clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_the_precise_clock_to_the_second() {
        let secs = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        for _ in 0..1_000 {
            let before = secs();
            let now = SystemClock.now();
            let after = secs();
            // Never ahead; behind by at most the one second a tick of lag can cross.
            assert!(now <= after, "{now} is ahead of {after}");
            assert!(now + 1 >= before, "{now} lags {before}");
        }
    }
}
