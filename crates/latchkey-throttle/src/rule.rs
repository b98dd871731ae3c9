//! [`Rule`]: the back-off arithmetic every store applies, in one place.

use std::time::Duration;

use crate::Timestamp;

/// One kind of budget: how many attempts are free, and how the back-off grows. Stores apply
/// [`Rule::next`] atomically per key; the Redis store runs the same arithmetic in Lua, and
/// the conformance tests hold both to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// Attempts counted before the back-off starts (at least 1).
    pub free_attempts: u32,
    /// The first back-off, once the free attempts are used; it doubles with each attempt after.
    pub base_delay: Duration,
    /// The back-off never exceeds this.
    pub max_delay: Duration,
    /// A budget with no attempt for this long starts afresh.
    pub forget_after: Duration,
}

/// What a store decided for one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The attempt may go ahead and was counted: it is the `attempts`-th in the budget's
    /// window. If the free attempts are used up, the budget is now in back-off until `until`.
    Counted {
        /// The count including this attempt.
        attempts: u32,
        /// The end of the back-off this attempt started (`None` while attempts are free).
        until: Option<Timestamp>,
    },
    /// The budget is in back-off until `until`: refused, and not counted.
    Blocked {
        /// When the next attempt may go ahead.
        until: Timestamp,
    },
}

/// The state a store keeps per budget, for backends that apply [`Rule::next`] themselves
/// (a store with its own atomic step, such as a database row lock, can keep exactly this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetState {
    /// Attempts counted in the current window.
    pub attempts: u32,
    /// When the last counted attempt was made.
    pub last: Timestamp,
    /// The end of the current back-off (in the past when there is none).
    pub until: Timestamp,
}

impl Rule {
    /// The back-off after the `attempts`-th attempt (zero while attempts are free).
    #[must_use]
    pub fn delay_after(&self, attempts: u32) -> Duration {
        if attempts < self.free_attempts {
            return Duration::ZERO;
        }
        let doublings = (attempts - self.free_attempts).min(40);
        let ms = u64::try_from(self.base_delay.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(1 << doublings);
        Duration::from_millis(ms).min(self.max_delay)
    }

    /// Applies one attempt at `now` to `state` (`None`: no budget yet). Returns the new state
    /// (unchanged when blocked) and the decision. A store must run this (or the same
    /// arithmetic) atomically per key.
    #[must_use]
    pub fn next(
        &self,
        state: Option<BudgetState>,
        now: Timestamp,
    ) -> (Option<BudgetState>, Decision) {
        let mut state = match state {
            Some(s) if now < s.until => return (Some(s), Decision::Blocked { until: s.until }),
            Some(s) if now.saturating_duration_since(s.last) < self.forget_after => s,
            _ => BudgetState::default(),
        };
        state.attempts = state.attempts.saturating_add(1);
        state.last = now;
        let delay = self.delay_after(state.attempts);
        state.until = now.saturating_add(delay);
        let until = (!delay.is_zero()).then_some(state.until);
        (
            Some(state),
            Decision::Counted {
                attempts: state.attempts,
                until,
            },
        )
    }

    /// Gives back the place of one counted attempt that turned out to be a success (a client
    /// budget counts failures only): one attempt fewer, and the back-off recomputed from the
    /// last attempt as if that count had been reached there. `None` (no budget, or a budget
    /// already forgotten) stays `None`; a count of zero stays zero. A store must run this
    /// atomically per key, as [`next`](Self::next).
    #[must_use]
    pub fn refund(&self, state: Option<BudgetState>) -> Option<BudgetState> {
        let mut state = state?;
        state.attempts = state.attempts.saturating_sub(1);
        state.until = state.last.saturating_add(self.delay_after(state.attempts));
        Some(state)
    }

    /// When a store may drop `state`: once its back-off is over and it is forgotten.
    #[must_use]
    pub fn expires_at(&self, state: &BudgetState) -> Timestamp {
        state
            .until
            .max(state.last.saturating_add(self.forget_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            free_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn free_attempts_then_doubling_up_to_the_ceiling() {
        let r = rule();
        let delays: Vec<u64> = (1..=8).map(|n| r.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(
            r.delay_after(u32::MAX),
            Duration::from_secs(10),
            "no overflow"
        );
    }

    #[test]
    fn blocked_attempts_are_not_counted_and_quiet_budgets_are_forgotten() {
        let r = rule();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let mut state = None;
        for n in 1..=3 {
            let (s, d) = r.next(state, t0);
            state = s;
            assert!(matches!(d, Decision::Counted { attempts, .. } if attempts == n));
        }
        let (s, d) = r.next(state, t0.saturating_add(Duration::from_millis(999)));
        assert_eq!(
            d,
            Decision::Blocked {
                until: t0.saturating_add(Duration::from_secs(1))
            }
        );
        assert_eq!(s, state, "a blocked attempt changes nothing");
        let (s, d) = r.next(state, t0.saturating_add(Duration::from_secs(1)));
        assert!(matches!(
            d,
            Decision::Counted {
                attempts: 4,
                until: Some(_)
            }
        ));
        let later = t0.saturating_add(Duration::from_secs(1 + 60));
        let (_, d) = r.next(s, later);
        assert_eq!(
            d,
            Decision::Counted {
                attempts: 1,
                until: None
            },
            "forgotten after a quiet window"
        );
    }

    #[test]
    fn a_refund_gives_back_one_place_and_shortens_the_back_off() {
        let r = rule();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(r.refund(None), None, "nothing to refund");
        let mut state = None;
        for _ in 0..3 {
            state = r.next(state, t0).0;
        }
        // 3 attempts with 3 free: a 1 s back-off; the 4th after it: a 2 s one.
        let t1 = t0.saturating_add(Duration::from_secs(1));
        state = r.next(state, t1).0;
        assert_eq!(
            state.map(|s| (s.attempts, s.until)),
            Some((4, t1.saturating_add(Duration::from_secs(2))))
        );
        let refunded = r.refund(state).expect("a budget");
        assert_eq!(
            (refunded.attempts, refunded.until),
            (3, t1.saturating_add(Duration::from_secs(1))),
            "the back-off of 3 attempts, from the last one"
        );
        let refunded = r.refund(Some(refunded)).expect("a budget");
        assert_eq!(
            (refunded.attempts, refunded.until),
            (2, t1),
            "free again: no back-off"
        );
        let mut zero = refunded;
        zero.attempts = 0;
        assert_eq!(
            r.refund(Some(zero)).map(|s| s.attempts),
            Some(0),
            "never below zero"
        );
    }
}
