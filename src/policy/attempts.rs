//! The decisions of one call's attempt loop, apart from doing them.
//!
//! [`Attempts`] is told what happened (the call starts, an attempt failed, a wait is over,
//! a clock resync finished) together with the moment it happened ([`Moment`]: the time
//! by Gate's clock as far as it is known, the time since the first attempt, the pacing
//! hold and the call's deadline), and answers with what to do next ([`Decision`]). It
//! reads no clock, sends nothing and sleeps never, so every branch is tested here without
//! HTTP; `Client::execute` only carries the decisions out.

use std::time::{Duration, SystemTime};

use super::{Idempotency, Jitter, RetryPolicy};
use crate::{clock::unix_millis, error::Error, error::Label};

/// What the driver does next.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Build, sign and send the next attempt.
    Send,
    /// Sleep this long, then report [`Attempts::waited`].
    Wait(Duration, WaitReason),
    /// Measure Gate's clock, rebuild the per-call headers from the corrected clock, report
    /// [`Attempts::resynced`], which then says to send.
    ResyncThenSend,
    /// Stop: the call fails with this error.
    GiveUp(Error),
}

/// Why a [`Decision::Wait`] waits (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitReason {
    /// The operation's rate-limit window is used up; waiting for its reset.
    Pacing,
    /// Backing off before a retry.
    Backoff,
}

/// The facts a decision depends on, read by the driver when the event happens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    /// Now, by Gate's clock as far as it is known (our clock plus the measured offset).
    pub(crate) now: SystemTime,
    /// Time since the call's first attempt started.
    pub(crate) elapsed: Duration,
    /// How long pacing would hold a request sent now (zero without pacing).
    pub(crate) pacing_hold: Duration,
    /// The call's deadline (`x-gate-exptime`), Unix milliseconds, if it has one.
    pub(crate) deadline_ms: Option<i64>,
}

impl Moment {
    /// Whether a request sent `after` from now would arrive past the deadline.
    fn expired_after(&self, after: Duration) -> bool {
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.deadline_ms
            .is_some_and(|deadline| unix_millis(self.now).saturating_add(after_ms) >= deadline)
    }
}

/// The attempt loop of one call.
#[derive(Debug)]
pub(crate) struct Attempts<'p, J> {
    retry: &'p RetryPolicy,
    kind: Idempotency,
    /// Resync after REQUEST_EXPIRED: configured on, and the operation is signed (an
    /// unsigned request cannot be expired, and resyncing after the clock sync itself
    /// would recurse for as long as the server says so).
    resync_allowed: bool,
    resynced: bool,
    /// Attempts sent so far.
    sent: u32,
    /// The failure being resynced for, returned if the resync fails.
    pending: Option<Error>,
    jitter: J,
}

impl<'p, J: Jitter> Attempts<'p, J> {
    pub(crate) fn new(
        retry: &'p RetryPolicy,
        kind: Idempotency,
        resync_allowed: bool,
        jitter: J,
    ) -> Self {
        Self {
            retry,
            kind,
            resync_allowed,
            resynced: false,
            sent: 0,
            pending: None,
            jitter,
        }
    }

    /// The number of the attempt in flight (1 for the first), or of the last one sent.
    pub(crate) fn attempt(&self) -> u32 {
        self.sent
    }

    /// The call starts.
    pub(crate) fn start(&mut self, at: Moment) -> Decision {
        self.before_attempt(at)
    }

    /// A [`Decision::Wait`] is over.
    ///
    /// Pacing is asked again after its own wait too: other requests may have taken the
    /// window meanwhile. The pacer measures its holds on a monotonic clock, so a signing
    /// clock that does not move cannot hold a request forever.
    pub(crate) fn waited(&mut self, at: Moment) -> Decision {
        self.before_attempt(at)
    }

    /// The attempt in flight failed with `error` (a success ends the loop by itself).
    pub(crate) fn failed(&mut self, error: Error, at: Moment) -> Decision {
        if at.expired_after(Duration::ZERO) {
            // Past the deadline: nothing sent now could be accepted.
            return self.give_up(error);
        }
        if self.resync_allowed && !self.resynced && error.label() == Some(&Label::RequestExpired) {
            self.resynced = true;
            self.pending = Some(error);
            return Decision::ResyncThenSend;
        }
        if !self.retry.allows(self.kind, &error) {
            return self.give_up(error);
        }
        let next = self.sent.saturating_add(1);
        let Some(wait) = self
            .retry
            .wait_before(next, at.elapsed, &error, at.now, &mut self.jitter)
        else {
            return self.give_up(error);
        };
        if at.expired_after(wait) {
            // The retry would only come back expired: the real failure says more.
            return self.give_up(error);
        }
        Decision::Wait(wait, WaitReason::Backoff)
    }

    /// The resync asked for by [`Decision::ResyncThenSend`] is over; `at.deadline_ms` is
    /// the deadline recomputed on the corrected clock.
    pub(crate) fn resynced(&mut self, outcome: Result<(), Error>, at: Moment) -> Decision {
        let pending = self.pending.take();
        match outcome {
            Ok(()) => self.before_attempt(at),
            // The caller asked for their operation, not for /spot/time: its own
            // (definitive) answer is what they get.
            Err(sync_error) => self.give_up(pending.unwrap_or(sync_error)),
        }
    }

    fn before_attempt(&mut self, at: Moment) -> Decision {
        let hold = at.pacing_hold;
        if hold.is_zero() {
            return self.send();
        }
        if at.expired_after(hold) {
            // Sent after the hold, the request would only come back expired.
            return self.give_up(Error::ExpiresBeforeRateLimitReset { reset_in: hold });
        }
        Decision::Wait(hold, WaitReason::Pacing)
    }

    fn send(&mut self) -> Decision {
        self.sent = self.sent.saturating_add(1);
        Decision::Send
    }

    fn give_up(&mut self, error: Error) -> Decision {
        Decision::GiveUp(error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use reqwest::StatusCode;

    use super::*;
    use crate::{
        error::{ApiError, InvalidInput, RateLimited, UnexpectedResponse},
        policy::tests::{Highest, Lowest},
        response::{RateLimit, ResponseMeta},
    };

    const NOW_MS: i64 = 1_700_000_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS as u64)
    }

    fn at() -> Moment {
        Moment {
            now: now(),
            elapsed: Duration::ZERO,
            pacing_hold: Duration::ZERO,
            deadline_ms: None,
        }
    }

    fn status(code: u16) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status: StatusCode::from_u16(code).unwrap(),
            content_type: None,
            reason: String::new(),
            snippet: String::new(),
            meta: None,
        }))
    }

    fn api(label: Label) -> Error {
        Error::Api(Box::new(ApiError {
            status: StatusCode::BAD_REQUEST,
            label,
            message: None,
            detail: None,
            meta: ResponseMeta::from_parts(StatusCode::BAD_REQUEST, &Default::default()),
        }))
    }

    fn expired() -> Error {
        api(Label::RequestExpired)
    }

    fn rate_limited(reset_in: Duration) -> Error {
        Error::RateLimited(Box::new(RateLimited {
            meta: ResponseMeta {
                status: StatusCode::TOO_MANY_REQUESTS,
                rate_limit: Some(RateLimit {
                    limit: 10,
                    remaining: 0,
                    reset_at: now() + reset_in,
                }),
                trace_id: None,
                client_request_id: None,
            },
            label: None,
            message: None,
        }))
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(400))
            .max_elapsed(Duration::from_secs(10))
    }

    fn read(policy: &RetryPolicy) -> Attempts<'_, Highest> {
        Attempts::new(policy, Idempotency::Read, true, Highest)
    }

    fn is_send(decision: &Decision) -> bool {
        matches!(decision, Decision::Send)
    }

    /// The error given up with, or a panic naming the decision.
    fn given_up(decision: Decision) -> Error {
        match decision {
            Decision::GiveUp(error) => error,
            other => panic!("expected GiveUp, got {other:?}"),
        }
    }

    fn is_label(error: &Error, label: Label) -> bool {
        error.label() == Some(&label)
    }

    #[test]
    fn the_first_attempt_is_sent_at_once_without_pacing() {
        let policy = policy();
        let mut attempts = read(&policy);
        assert_eq!(attempts.attempt(), 0);
        assert!(is_send(&attempts.start(at())));
        assert_eq!(attempts.attempt(), 1);
    }

    #[test]
    fn pacing_is_asked_again_after_its_wait() {
        let policy = policy();
        let mut attempts = read(&policy);
        let held = Moment {
            pacing_hold: Duration::from_secs(3),
            ..at()
        };
        assert!(matches!(
            attempts.start(held),
            Decision::Wait(wait, WaitReason::Pacing) if wait == Duration::from_secs(3)
        ));
        assert_eq!(attempts.attempt(), 0, "nothing sent while held");
        // Still held after the wait (others took the window meanwhile): it waits again.
        assert!(matches!(
            attempts.waited(held),
            Decision::Wait(wait, WaitReason::Pacing) if wait == Duration::from_secs(3)
        ));
        assert_eq!(attempts.attempt(), 0, "nothing sent while held");
        assert!(is_send(&attempts.waited(at())));
        assert_eq!(attempts.attempt(), 1);
    }

    #[test]
    fn pacing_past_the_deadline_refuses_without_sending() {
        let policy = policy();
        let mut attempts = read(&policy);
        let hold = Duration::from_secs(3);
        let held = Moment {
            pacing_hold: hold,
            deadline_ms: Some(NOW_MS + 3_000),
            ..at()
        };
        let error = given_up(attempts.start(held));
        assert!(
            matches!(error, Error::ExpiresBeforeRateLimitReset { reset_in } if reset_in == hold),
            "{error:?}"
        );
        assert_eq!(attempts.attempt(), 0);
        // One millisecond more and the held request still arrives in time.
        let mut attempts = read(&policy);
        let in_time = Moment {
            deadline_ms: Some(NOW_MS + 3_001),
            ..held
        };
        assert!(matches!(
            attempts.start(in_time),
            Decision::Wait(_, WaitReason::Pacing)
        ));
    }

    #[test]
    fn a_transient_failure_backs_off_then_paces_then_sends() {
        let policy = policy();
        let mut attempts = read(&policy);
        attempts.start(at());
        assert!(matches!(
            attempts.failed(status(503), at()),
            Decision::Wait(wait, WaitReason::Backoff) if wait == Duration::from_millis(100)
        ));
        // After a backoff, pacing is consulted again.
        let held = Moment {
            pacing_hold: Duration::from_secs(1),
            ..at()
        };
        assert!(matches!(
            attempts.waited(held),
            Decision::Wait(_, WaitReason::Pacing)
        ));
        assert!(is_send(&attempts.waited(at())));
        assert_eq!(attempts.attempt(), 2);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_within_jitter_bounds() {
        let policy = policy().max_attempts(5);
        let mut highest = read(&policy);
        let mut lowest = Attempts::new(&policy, Idempotency::Read, true, Lowest);
        highest.start(at());
        lowest.start(at());
        for ceiling_ms in [100, 200, 400, 400] {
            let ceiling = Duration::from_millis(ceiling_ms);
            assert!(matches!(
                highest.failed(status(502), at()),
                Decision::Wait(wait, _) if wait == ceiling
            ));
            assert!(matches!(
                lowest.failed(status(502), at()),
                Decision::Wait(wait, _) if wait == Duration::ZERO
            ));
            assert!(is_send(&highest.waited(at())));
            assert!(is_send(&lowest.waited(at())));
        }
        assert_eq!(highest.attempt(), 5);
        let error = given_up(highest.failed(status(502), at()));
        assert_eq!(error.status(), Some(StatusCode::BAD_GATEWAY));
    }

    #[test]
    fn retries_stop_after_max_attempts() {
        let policy = policy().max_attempts(2);
        let mut attempts = read(&policy);
        attempts.start(at());
        assert!(matches!(
            attempts.failed(status(504), at()),
            Decision::Wait(..)
        ));
        assert!(is_send(&attempts.waited(at())));
        let error = given_up(attempts.failed(status(504), at()));
        assert_eq!(error.status(), Some(StatusCode::GATEWAY_TIMEOUT));
    }

    #[test]
    fn retries_stop_when_the_wait_would_end_past_max_elapsed() {
        let policy = policy().max_elapsed(Duration::from_millis(1_000));
        // 900 ms elapsed + a 100 ms wait ends exactly at the limit: allowed.
        let mut attempts = read(&policy);
        attempts.start(at());
        let late = Moment {
            elapsed: Duration::from_millis(900),
            ..at()
        };
        assert!(matches!(
            attempts.failed(status(503), late),
            Decision::Wait(..)
        ));
        // One millisecond later it would end past it.
        let mut attempts = read(&policy);
        attempts.start(at());
        let later = Moment {
            elapsed: Duration::from_millis(901),
            ..at()
        };
        given_up(attempts.failed(status(503), later));
    }

    #[test]
    fn a_429_waits_at_least_until_the_reset() {
        let policy = policy();
        let mut attempts = Attempts::new(&policy, Idempotency::Read, true, Lowest);
        attempts.start(at());
        assert!(matches!(
            attempts.failed(rate_limited(Duration::from_secs(3)), at()),
            Decision::Wait(wait, WaitReason::Backoff) if wait == Duration::from_secs(3)
        ));
        // A reset later than max_elapsed allows: the 429 itself is the answer.
        let short = policy.clone().max_elapsed(Duration::from_secs(2));
        let mut attempts = Attempts::new(&short, Idempotency::Read, true, Lowest);
        attempts.start(at());
        let error = given_up(attempts.failed(rate_limited(Duration::from_secs(3)), at()));
        assert!(matches!(error, Error::RateLimited(_)), "{error:?}");
    }

    #[test]
    fn a_retry_that_would_arrive_past_the_deadline_is_not_made() {
        let policy = policy();
        // The wait (100 ms, highest jitter) would end exactly at the deadline.
        let mut attempts = read(&policy);
        attempts.start(at());
        let tight = Moment {
            deadline_ms: Some(NOW_MS + 100),
            ..at()
        };
        let error = given_up(attempts.failed(status(503), tight));
        assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let mut attempts = read(&policy);
        attempts.start(at());
        let roomy = Moment {
            deadline_ms: Some(NOW_MS + 101),
            ..at()
        };
        assert!(matches!(
            attempts.failed(status(503), roomy),
            Decision::Wait(..)
        ));
    }

    #[test]
    fn nothing_is_retried_or_resynced_past_the_deadline() {
        let policy = policy();
        let past = Moment {
            deadline_ms: Some(NOW_MS),
            ..at()
        };
        let mut attempts = read(&policy);
        attempts.start(at());
        let error = given_up(attempts.failed(expired(), past));
        assert!(is_label(&error, Label::RequestExpired));
        let mut attempts = read(&policy);
        attempts.start(at());
        given_up(attempts.failed(status(503), past));
    }

    #[test]
    fn only_transient_failures_of_safe_operations_are_retried() {
        let policy = policy();
        for permanent in [
            status(500),
            status(400),
            api(Label::InvalidSignature),
            InvalidInput::NoUserIds.into(),
        ] {
            let mut attempts = read(&policy);
            attempts.start(at());
            given_up(attempts.failed(permanent, at()));
        }
        let mut create = Attempts::new(&policy, Idempotency::Unsafe, true, Highest);
        create.start(at());
        given_up(create.failed(status(503), at()));
        let mut add = Attempts::new(&policy, Idempotency::IdempotentWrite, true, Highest);
        add.start(at());
        given_up(add.failed(status(503), at()));
        let opted_in = policy.clone().retry_idempotent_writes(true);
        let mut add = Attempts::new(&opted_in, Idempotency::IdempotentWrite, true, Highest);
        add.start(at());
        assert!(matches!(add.failed(status(503), at()), Decision::Wait(..)));
        let mut create = Attempts::new(&opted_in, Idempotency::Unsafe, true, Highest);
        create.start(at());
        given_up(create.failed(status(503), at()));
    }

    #[test]
    fn request_expired_resyncs_once_then_sends() {
        let policy = RetryPolicy::none();
        // Even a create: Gate refuses an expired request before executing it.
        let mut attempts = Attempts::new(&policy, Idempotency::Unsafe, true, Highest);
        attempts.start(at());
        assert!(matches!(
            attempts.failed(expired(), at()),
            Decision::ResyncThenSend
        ));
        assert!(is_send(&attempts.resynced(Ok(()), at())));
        assert_eq!(attempts.attempt(), 2);
        // A second REQUEST_EXPIRED is the answer.
        let error = given_up(attempts.failed(expired(), at()));
        assert!(is_label(&error, Label::RequestExpired));
    }

    #[test]
    fn after_a_resync_pacing_and_the_new_deadline_apply() {
        let policy = policy();
        let mut attempts = read(&policy);
        attempts.start(at());
        attempts.failed(expired(), at());
        let held = Moment {
            pacing_hold: Duration::from_secs(2),
            deadline_ms: Some(NOW_MS + 1_000),
            ..at()
        };
        let error = given_up(attempts.resynced(Ok(()), held));
        assert!(matches!(error, Error::ExpiresBeforeRateLimitReset { .. }));
    }

    #[test]
    fn a_failed_resync_gives_up_with_the_original_error() {
        let policy = policy();
        let mut attempts = read(&policy);
        attempts.start(at());
        attempts.failed(expired(), at());
        let error = given_up(attempts.resynced(Err(status(503)), at()));
        assert!(is_label(&error, Label::RequestExpired), "{error:?}");
        assert_eq!(attempts.attempt(), 1);
    }

    #[test]
    fn no_resync_when_switched_off_or_unsigned() {
        let policy = RetryPolicy::none();
        let mut attempts = Attempts::new(&policy, Idempotency::Read, false, Highest);
        attempts.start(at());
        let error = given_up(attempts.failed(expired(), at()));
        assert!(is_label(&error, Label::RequestExpired));
    }
}
