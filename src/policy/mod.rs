//! Transport policy: which failures are retried and how long to wait, and client-side
//! pacing from Gate's rate-limit headers.
//!
//! Retrying is decided per operation: reads are retried by default; adding and removing
//! users are idempotent in effect and retried only when the policy opts in; creating a
//! group is never retried, since a retry could create a second group. Every attempt is
//! built and signed afresh, so each carries a fresh Timestamp.

use std::time::{Duration, SystemTime};

use rand::{Rng, RngExt, SeedableRng, rngs::StdRng};
use reqwest::StatusCode;

use crate::error::Error;

/// The retry loop's state machine and the pacer, read by the client directly (this module
/// only declares them), so policy and its children do not import each other.
pub(crate) mod attempts;
pub(crate) mod pacer;

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
    ///
    /// Measured on tokio's clock ([`tokio::time::Instant`]), like the waits between
    /// attempts, so in a test that pauses tokio's clock the paused clock runs it out, not
    /// the wall clock.
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

/// "Full jitter": uniformly random in `[0, ceiling]`, so that many clients failing
/// together do not retry together.
///
/// The generator is a field so that tests can seed it and check every draw. A call's own
/// is seeded from the thread's generator ([`FullJitter::from_thread_rng`]) at its first
/// wait, so the calls that never retry (almost all) pay nothing for it; the thread's
/// generator itself cannot be held across the awaits of a call (it is not `Send`).
#[derive(Debug, Clone)]
pub(crate) struct FullJitter<R = StdRng>(pub(crate) Option<R>);

impl FullJitter {
    /// A generator for one call, seeded from the thread's when it is first needed.
    pub(crate) fn from_thread_rng() -> Self {
        Self(None)
    }
}

impl<R: Rng + SeedableRng> Jitter for FullJitter<R> {
    fn pick(&mut self, ceiling: Duration) -> Duration {
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let rng = self.0.get_or_insert_with(|| R::from_rng(&mut rand::rng()));
        Duration::from_nanos(rng.random_range(0..=nanos))
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

    /// Full jitter from a seeded generator: the run is the same every time, and every
    /// draw is checked against both ends of its range.
    fn seeded() -> FullJitter<StdRng> {
        FullJitter(Some(StdRng::seed_from_u64(0x6a7e)))
    }

    #[test]
    fn a_calls_generator_is_seeded_at_its_first_wait_only() {
        let mut jitter = FullJitter::from_thread_rng();
        assert!(jitter.0.is_none(), "a call that never waits seeds nothing");
        let ceiling = Duration::from_millis(5);
        for _ in 0..64 {
            assert!(jitter.pick(ceiling) <= ceiling);
        }
        assert!(jitter.0.is_some());
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let mut jitter = seeded();
        let ceiling = Duration::from_millis(3);
        let half = ceiling / 2;
        let (mut low_half, mut high_half) = (0, 0);
        for _ in 0..1000 {
            let wait = jitter.pick(ceiling);
            assert!(wait <= ceiling, "{wait:?}");
            if wait < half {
                low_half += 1;
            } else {
                high_half += 1;
            }
        }
        // Uniform: each half gets about 500 of 1000 draws; a jitter stuck at one end (or
        // "no jitter", always the ceiling or always zero) puts them all in one half.
        assert!(
            (400..=600).contains(&low_half),
            "{low_half} low, {high_half} high"
        );
        assert_eq!(jitter.pick(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn full_jitter_takes_the_ceiling_whole() {
        // A ceiling past u64 nanoseconds (584 years) is capped, not wrapped to a short wait.
        let mut jitter = seeded();
        let huge = Duration::from_secs(u64::MAX);
        let cap = Duration::from_nanos(u64::MAX);
        let mut above_a_year = 0;
        for _ in 0..100 {
            let wait = jitter.pick(huge);
            assert!(wait <= cap, "{wait:?}");
            if wait > Duration::from_secs(365 * 24 * 3600) {
                above_a_year += 1;
            }
        }
        assert!(above_a_year > 90, "{above_a_year}");
    }

    #[test]
    fn seeded_backoff_draws_fill_a_doubling_range() {
        let policy = RetryPolicy::default()
            .max_attempts(8)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(1_000))
            .max_elapsed(Duration::from_secs(60));
        let error = unexpected(503);
        let mut jitter = seeded();
        for next in 2..=8u32 {
            let ceiling =
                (Duration::from_millis(100) * (1 << (next - 2))).min(Duration::from_secs(1));
            let draws: Vec<Duration> = (0..200)
                .map(|_| {
                    policy
                        .wait_before(next, Duration::ZERO, &error, UNIX_EPOCH, &mut jitter)
                        .unwrap()
                })
                .collect();
            let (low, high) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
            // Every draw is within [0, ceiling]; the draws reach both ends of it, so the
            // ceiling really is 100 ms doubling up to 1 s (not shrinking, not fixed).
            assert!(*high <= ceiling, "attempt {next}: {high:?} > {ceiling:?}");
            assert!(
                *high > ceiling * 9 / 10,
                "attempt {next}: {high:?} never near {ceiling:?}"
            );
            assert!(
                *low < ceiling / 10,
                "attempt {next}: {low:?} never near zero"
            );
        }
    }

    #[test]
    fn seeded_waits_after_a_429_are_at_least_the_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let reset_in = Duration::from_millis(150);
        let error = rate_limited_until(now + reset_in);
        let policy = RetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(200))
            .max_backoff(Duration::from_millis(200))
            .max_elapsed(Duration::from_secs(10));
        let mut jitter = seeded();
        let mut above_the_reset = 0;
        for _ in 0..200 {
            let wait = policy
                .wait_before(2, Duration::ZERO, &error, now, &mut jitter)
                .unwrap();
            assert!(
                wait >= reset_in && wait <= Duration::from_millis(200),
                "{wait:?} outside [150 ms, 200 ms]"
            );
            above_the_reset += usize::from(wait > reset_in);
        }
        // A draw above the reset is kept rather than cut to it (about a quarter of them).
        assert!(above_the_reset > 20, "{above_the_reset}");
    }

    use crate::{
        error::InvalidInput,
        response::{RateLimit, ResponseMeta},
    };
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
    fn attempts_reports_the_total_the_first_included() {
        assert_eq!(RetryPolicy::default().attempts(), 3);
        assert_eq!(RetryPolicy::none().attempts(), 1);
        assert_eq!(RetryPolicy::default().max_attempts(5).attempts(), 5);
        // Zero attempts would send nothing at all: it means one.
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
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

    fn rate_limited_until(reset_at: SystemTime) -> Error {
        let meta = ResponseMeta {
            status: StatusCode::TOO_MANY_REQUESTS,
            rate_limit: Some(RateLimit {
                limit: 150,
                remaining: 0,
                reset_at,
            }),
            trace_id: None,
            client_request_id: None,
        };
        Error::RateLimited(Box::new(crate::error::RateLimited {
            meta,
            label: None,
            message: None,
        }))
    }

    #[test]
    fn a_429_waits_for_the_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let error = rate_limited_until(now + Duration::from_secs(3));
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
}
