//! Time as the session layer sees it: [`Timestamp`] and an injectable [`Clock`].

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds match what backends use for absolute expiry (Redis `PEXPIREAT`).
/// Serialized as the bare number of milliseconds.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// From a [`SystemTime`]; times before the epoch become the epoch.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        time.duration_since(UNIX_EPOCH).map_or(Self(0), |d| {
            Self::from_epoch_parts(d.as_secs(), d.subsec_millis())
        })
    }

    /// From whole seconds and the milliseconds within the second, saturating. Cheaper than
    /// going through `Duration::as_millis`, whose `u128` arithmetic showed up on every request.
    fn from_epoch_parts(secs: u64, millis: u32) -> Self {
        Self(secs.saturating_mul(1000).saturating_add(u64::from(millis)))
    }

    /// As a [`SystemTime`].
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// `self + duration`, saturating at the far future.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// `self - duration`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A source of the current time. The manager and [`MemoryStore`](crate::MemoryStore) take one
/// so that expiry can be tested without sleeping.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock; the default everywhere.
///
/// On Linux and Android it reads the kernel's coarse real-time clock (`CLOCK_REALTIME_COARSE`),
/// which is updated once per scheduler tick (every 1 to 4 ms) and costs a few nanoseconds to
/// read instead of the 30 to 40 of a precise read. The manager and the store each read the
/// clock for every session they load, so this is a measurable part of a request; in exchange a
/// deadline may be noticed up to one tick late, which is nothing next to session lifetimes of
/// minutes and to the clock skew between servers. Elsewhere it is [`SystemTime::now`].
///
/// ```
/// use latchkey_session::{Clock, SystemClock, Timestamp};
///
/// let precise = Timestamp::from_system_time(std::time::SystemTime::now());
/// let now = SystemClock.now();
/// // at most a tick (and a little scheduling) apart
/// assert!(now.as_unix_millis().abs_diff(precise.as_unix_millis()) < 1_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now(&self) -> Timestamp {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        match (u64::try_from(t.tv_sec), u32::try_from(t.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => Timestamp::from_epoch_parts(secs, nanos / 1_000_000),
            // Before the epoch (a badly set clock): the epoch, as `from_system_time` does.
            _ => Timestamp(0),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }
}

/// A clock that only moves when told to, for tests. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now(), Timestamp::from_unix_millis(3_000));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(start.as_unix_millis())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_within_a_tick_of_the_precise_clock_and_never_ahead() {
        for _ in 0..1_000 {
            let before = Timestamp::from_system_time(SystemTime::now());
            let now = SystemClock.now();
            let after = Timestamp::from_system_time(SystemTime::now());
            assert!(now <= after, "{now:?} is ahead of {after:?}");
            // A tick is at most 4 ms (HZ=250); allow for being descheduled in between.
            assert!(
                before.as_unix_millis() <= now.as_unix_millis() + 50,
                "{now:?} lags {before:?} by more than 50 ms"
            );
        }
    }

    #[test]
    fn conversions_saturate() {
        assert_eq!(
            Timestamp::from_epoch_parts(u64::MAX, 999),
            Timestamp::from_unix_millis(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_epoch_parts(1, 234),
            Timestamp::from_unix_millis(1_234)
        );
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            Timestamp::from_system_time(before_epoch),
            Timestamp::from_unix_millis(0)
        );
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            Timestamp::from_unix_millis(1_700_000_000_123)
        );
    }
}
