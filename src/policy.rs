//! Transport policy: which failures are retried and how long to wait, and client-side
//! pacing from Gate's rate-limit headers.
//!
//! Retrying is decided per operation: reads are retried by default; adding and removing
//! users are idempotent in effect and retried only when the policy opts in; creating a
//! group is never retried, since a retry could create a second group. Every attempt is
//! built and signed afresh, so each carries a fresh Timestamp.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use reqwest::StatusCode;

use crate::{error::Error, response::RateLimit};

mod attempts;

pub(crate) use attempts::{Attempts, Decision, Moment, WaitReason};

/// Whether repeating an operation can duplicate its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// A read: repeating it changes nothing.
    Read,
    /// A write whose repetition leaves the same state (adding or removing members).
    IdempotentWrite,
    /// A write that may act twice (creating a group).
    Unsafe,
}

/// When and how often failed requests are retried.
///
/// Retried failures: connection errors and timeouts, HTTP 429, 502, 503 and 504. Waits grow
/// exponentially from [`initial_backoff`](Self::initial_backoff) up to
/// [`max_backoff`](Self::max_backoff), with full jitter; after a 429 the wait is at least
/// until the window resets, when the server said when. Retrying stops after
/// [`max_attempts`](Self::max_attempts) attempts or once the next wait would end past
/// [`max_elapsed`](Self::max_elapsed) from the first attempt.
///
/// ```
/// use std::time::Duration;
/// use gate_stp::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(30))
///     .retry_idempotent_writes(true);
/// assert_eq!(policy.attempts(), 5);
/// assert_eq!(RetryPolicy::none().attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
    retry_idempotent_writes: bool,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms doubling up to 2 s, 15 s in all; reads only.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(15),
            retry_idempotent_writes: false,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Total attempts, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Wait before the first retry.
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// Longest wait between two attempts (a 429's reset time may ask for longer, within
    /// `max_elapsed`).
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// Time after the first attempt past which no retry starts.
    pub fn max_elapsed(mut self, total: Duration) -> Self {
        self.max_elapsed = total;
        self
    }

    /// Also retry adding and removing users (idempotent in effect). Off by default.
    pub fn retry_idempotent_writes(mut self, yes: bool) -> Self {
        self.retry_idempotent_writes = yes;
        self
    }

    /// Total attempts allowed, the first included.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether an operation of this kind may be sent again after `error`.
    pub(crate) fn allows(&self, kind: Idempotency, error: &Error) -> bool {
        let kind_ok = match kind {
            Idempotency::Read => true,
            Idempotency::IdempotentWrite => self.retry_idempotent_writes,
            Idempotency::Unsafe => false,
        };
        kind_ok && is_transient(error)
    }

    /// How long to wait before attempt `next` (2 for the first retry), or `None` when the
    /// policy says stop.
    pub(crate) fn wait_before(
        &self,
        next: u32,
        elapsed: Duration,
        error: &Error,
        now: SystemTime,
        jitter: &mut impl Jitter,
    ) -> Option<Duration> {
        if next > self.max_attempts {
            return None;
        }
        let exponent = next.saturating_sub(2).min(31);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let mut wait = jitter.pick(ceiling);
        if let Error::RateLimited(limited) = error
            && let Some(limit) = limited.meta.rate_limit
        {
            wait = wait.max(limit.reset_in(now));
        }
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }
}

/// Failures worth another attempt: the request may not have reached Gate, or Gate said
/// to come back later.
fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport(_) | Error::Timeout(_) | Error::RateLimited(_) => true,
        Error::Api(_) | Error::UnexpectedResponse(_) => matches!(
            error.status(),
            Some(
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            )
        ),
        _ => false,
    }
}

/// Where backoff waits get their randomness: injectable, so that tests can pin a wait
/// to either end of its range.
pub(crate) trait Jitter {
    /// A wait in `[0, ceiling]`.
    fn pick(&mut self, ceiling: Duration) -> Duration;
}

/// "Full jitter": uniformly random in `[0, ceiling]` from the thread's generator, so that
/// many clients failing together do not retry together.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FullJitter;

impl Jitter for FullJitter {
    fn pick(&mut self, ceiling: Duration) -> Duration {
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// Client-side pacing: remembers the last rate-limit state of each operation and, when a
/// window is used up, waits for its reset instead of sending a request Gate would refuse.
#[derive(Debug)]
pub(crate) struct Pacer {
    last: Mutex<HashMap<&'static str, RateLimit>>,
    max_wait: Duration,
}

impl Pacer {
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self {
            last: Mutex::new(HashMap::new()),
            max_wait,
        }
    }

    pub(crate) fn record(&self, operation: &'static str, limit: RateLimit) {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(operation, limit);
    }

    /// How long to hold a request of `operation` sent at `now`.
    pub(crate) fn delay(&self, operation: &'static str, now: SystemTime) -> Duration {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get(operation) {
            Some(limit) if limit.remaining == 0 => limit.reset_in(now).min(self.max_wait),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Jitter pinned to the top of the range.
    #[derive(Debug)]
    pub(crate) struct Highest;

    impl Jitter for Highest {
        fn pick(&mut self, ceiling: Duration) -> Duration {
            ceiling
        }
    }

    /// Jitter pinned to the bottom of the range.
    #[derive(Debug)]
    pub(crate) struct Lowest;

    impl Jitter for Lowest {
        fn pick(&mut self, _: Duration) -> Duration {
            Duration::ZERO
        }
    }

    #[test]
    fn full_jitter_stays_in_range() {
        let ceiling = Duration::from_millis(3);
        for _ in 0..1000 {
            assert!(FullJitter.pick(ceiling) <= ceiling);
        }
        assert_eq!(FullJitter.pick(Duration::ZERO), Duration::ZERO);
    }
    use crate::{error::InvalidInput, response::ResponseMeta};
    use std::time::UNIX_EPOCH;

    fn unexpected(status: u16) -> Error {
        Error::UnexpectedResponse(Box::new(crate::error::UnexpectedResponse {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: None,
            reason: String::new(),
            snippet: String::new(),
            meta: None,
        }))
    }

    #[test]
    fn only_transient_failures_of_safe_operations_are_retried() {
        let policy = RetryPolicy::default();
        assert!(policy.allows(Idempotency::Read, &unexpected(502)));
        assert!(policy.allows(Idempotency::Read, &unexpected(504)));
        assert!(!policy.allows(Idempotency::Read, &unexpected(500)));
        assert!(!policy.allows(Idempotency::Read, &unexpected(400)));
        assert!(!policy.allows(Idempotency::Read, &InvalidInput::NoUserIds.into()));
        assert!(!policy.allows(Idempotency::IdempotentWrite, &unexpected(503)));
        assert!(!policy.allows(Idempotency::Unsafe, &unexpected(503)));
        let opted_in = policy.clone().retry_idempotent_writes(true);
        assert!(opted_in.allows(Idempotency::IdempotentWrite, &unexpected(503)));
        assert!(!opted_in.allows(Idempotency::Unsafe, &unexpected(504)));
    }

    #[test]
    fn waits_grow_within_bounds_and_stop() {
        let policy = RetryPolicy::default()
            .max_attempts(10)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(400))
            .max_elapsed(Duration::from_secs(60));
        let now = UNIX_EPOCH;
        let error = unexpected(503);
        for next in 2..=10 {
            let ceiling = Duration::from_millis(100 * (1 << (next - 2).min(2)));
            let high = policy.wait_before(next, Duration::ZERO, &error, now, &mut Highest);
            assert_eq!(high, Some(ceiling), "attempt {next}");
            let low = policy.wait_before(next, Duration::ZERO, &error, now, &mut Lowest);
            assert_eq!(low, Some(Duration::ZERO), "attempt {next}");
        }
        assert_eq!(
            policy.wait_before(11, Duration::ZERO, &error, now, &mut Lowest),
            None
        );
        // Ending exactly at max_elapsed is allowed; a nanosecond later is not.
        let at_limit = Duration::from_secs(60) - Duration::from_millis(100);
        assert!(
            policy
                .wait_before(2, at_limit, &error, now, &mut Highest)
                .is_some()
        );
        assert_eq!(
            policy.wait_before(
                2,
                at_limit + Duration::from_nanos(1),
                &error,
                now,
                &mut Highest
            ),
            None
        );
    }

    #[test]
    fn a_429_waits_for_the_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let meta = ResponseMeta {
            status: StatusCode::TOO_MANY_REQUESTS,
            rate_limit: Some(RateLimit {
                limit: 150,
                remaining: 0,
                reset_at: now + Duration::from_secs(3),
            }),
            trace_id: None,
            client_request_id: None,
        };
        let error = Error::RateLimited(Box::new(crate::error::RateLimited {
            meta,
            label: None,
            message: None,
        }));
        let policy = RetryPolicy::default().max_elapsed(Duration::from_secs(10));
        let wait = policy
            .wait_before(2, Duration::ZERO, &error, now, &mut Lowest)
            .unwrap();
        assert_eq!(wait, Duration::from_secs(3));
        let short = RetryPolicy::default().max_elapsed(Duration::from_secs(2));
        assert_eq!(
            short.wait_before(2, Duration::ZERO, &error, now, &mut Lowest),
            None
        );
    }

    #[test]
    fn pacer_holds_only_exhausted_windows() {
        let pacer = Pacer::new(Duration::from_secs(10));
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(pacer.delay("op", now), Duration::ZERO);
        let reset_at = now + Duration::from_secs(4);
        pacer.record(
            "op",
            RateLimit {
                limit: 3,
                remaining: 1,
                reset_at,
            },
        );
        assert_eq!(pacer.delay("op", now), Duration::ZERO);
        pacer.record(
            "op",
            RateLimit {
                limit: 3,
                remaining: 0,
                reset_at,
            },
        );
        assert_eq!(pacer.delay("op", now), Duration::from_secs(4));
        assert_eq!(pacer.delay("other", now), Duration::ZERO);
        assert_eq!(pacer.delay("op", reset_at), Duration::ZERO);
    }
}
