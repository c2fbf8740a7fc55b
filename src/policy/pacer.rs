//! Client-side pacing: no request is sent that Gate's window would refuse, counting the
//! requests already in flight.
//!
//! Gate reports, with every answer, how many requests of that endpoint are left in the
//! current window and when it resets. Remembering only the last `remaining` is not enough
//! when several requests are in flight: each of them may still be counted against the
//! window after the answer that said `remaining` was written. So a request may go only while
//! `in flight < remaining`; otherwise it waits for the window's reset. Once the reset has
//! passed (by our monotonic clock, see below) the next window is assumed fresh: `limit`
//! requests, minus those still in flight, which may be counted in it.
//!
//! Deadlines are kept on tokio's monotonic clock, computed from Gate's reset time when the
//! answer arrives: a hold of `reset_in` is over once that much time has passed, even when
//! the signing clock does not move (a stopped `ManualClock`), and tests with tokio's paused
//! time run windows of 10 s in no real time.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use crate::response::RateLimit;

/// How long a request waits before asking again when the window cannot be known yet: no
/// answer of this operation has come back (so neither the limit nor the reset is known),
/// or the reset has passed with more requests in flight than the next window allows.
/// The answers in flight will tell; a short wait costs little next to a refused request.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_millis(20);

/// Gate's windows last 10 s. A reset announced further ahead (a clock far off, or a wrong
/// header) is taken as this far away: no answer may hold an operation longer than a
/// window, and a reset centuries ahead must not overflow the monotonic clock.
pub(crate) const LONGEST_WINDOW: Duration = Duration::from_secs(10);

/// Client-side pacing, per operation: see the module documentation.
#[derive(Debug)]
pub(crate) struct Pacer {
    operations: Mutex<HashMap<&'static str, Operation>>,
    max_wait: Duration,
}

/// What is known about one operation's window, and how many of its requests are out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operation {
    window: Option<Window>,
    /// Requests sent and not answered yet.
    in_flight: u32,
    /// Whether any answer has come back: until then the limit is unknown, so one request
    /// probes alone.
    answered: bool,
}

/// The latest window Gate reported for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    limit: u32,
    /// The smallest `remaining` reported for this window (answers may arrive out of order).
    remaining: u32,
    /// Gate's reset time: identifies the window.
    reset_at: SystemTime,
    /// When the window ends by our monotonic clock.
    ends: Instant,
}

impl Operation {
    /// How long a request sent at `now` must wait; zero when it may go.
    pub(crate) fn hold(&self, now: Instant) -> Duration {
        let Some(window) = self.window else {
            // No rate limit known: after an answer without one, nothing to pace by; before
            // the first answer, one request at a time learns the limit.
            return if self.answered || self.in_flight == 0 {
                Duration::ZERO
            } else {
                ANSWER_WAIT
            };
        };
        let over = now >= window.ends;
        // A window that is over lets at least one request probe the next: a limit of 0
        // (a wrong header) must not hold every request forever, as nothing else would
        // ever bring a newer answer.
        let allowed = if over {
            window.limit.max(1)
        } else {
            window.remaining
        };
        if self.in_flight < allowed {
            Duration::ZERO
        } else if over {
            ANSWER_WAIT
        } else {
            window.ends - now
        }
    }

    /// An answer arrived (`gate_now` by Gate's clock as we know it, `now` by ours) with
    /// `limit`, if it carried one.
    pub(crate) fn answered(
        &mut self,
        limit: Option<RateLimit>,
        gate_now: SystemTime,
        now: Instant,
    ) {
        self.answered = true;
        let Some(limit) = limit else { return };
        let ends = || now + limit.reset_in(gate_now).min(LONGEST_WINDOW);
        match &mut self.window {
            Some(window) if window.reset_at == limit.reset_at => {
                window.limit = limit.limit;
                window.remaining = window.remaining.min(limit.remaining);
                if now >= window.ends {
                    // Gate still counts in a window we thought over (our wait was shorter
                    // than its clock's): its word wins.
                    window.ends = ends();
                }
            }
            // An answer from an earlier window, overtaken by a later one: stale.
            Some(window) if window.reset_at > limit.reset_at => {}
            _ => {
                self.window = Some(Window {
                    limit: limit.limit,
                    remaining: limit.remaining,
                    reset_at: limit.reset_at,
                    ends: ends(),
                });
            }
        }
    }
}

impl Pacer {
    /// A pacer that never holds a request longer than `max_wait` at a time.
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self {
            operations: Mutex::new(HashMap::new()),
            max_wait,
        }
    }

    /// Asks to send a request of `operation` now: a permit (the request counts as in
    /// flight until the permit is answered or dropped), or how long to wait before asking
    /// again. Checking and counting happen under one lock, so concurrent callers cannot
    /// both take the last request of a window.
    pub(crate) fn admit(&self, operation: &'static str) -> Result<Permit<'_>, Duration> {
        let now = Instant::now();
        let mut operations = self.lock();
        let state = operations.entry(operation).or_default();
        let hold = state.hold(now);
        if !hold.is_zero() {
            return Err(hold.min(self.max_wait));
        }
        state.in_flight = state.in_flight.saturating_add(1);
        Ok(Permit {
            pacer: self,
            operation,
            open: true,
        })
    }

    /// A copy of what is known about `operation` (tests).
    #[cfg(test)]
    pub(crate) fn state(&self, operation: &'static str) -> Operation {
        self.lock().get(operation).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Operation>> {
        self.operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self, operation: &'static str, answer: Option<(Option<RateLimit>, SystemTime)>) {
        let mut operations = self.lock();
        let state = operations.entry(operation).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some((limit, gate_now)) = answer {
            state.answered(limit, gate_now, Instant::now());
        }
    }
}

/// One request counted as in flight. Dropped without an answer (the request failed
/// before any response, or the call was cancelled), it stops counting.
#[derive(Debug)]
pub(crate) struct Permit<'p> {
    pacer: &'p Pacer,
    operation: &'static str,
    open: bool,
}

impl Permit<'_> {
    /// The answer arrived at `gate_now` (by Gate's clock as known), with `limit` if it
    /// carried the rate-limit headers.
    pub(crate) fn answered(mut self, limit: Option<RateLimit>, gate_now: SystemTime) {
        self.open = false;
        self.pacer.close(self.operation, Some((limit, gate_now)));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.open {
            self.pacer.close(self.operation, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const GATE_NOW: u64 = 1_700_000_000;

    fn gate_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(GATE_NOW)
    }

    fn limit(limit: u32, remaining: u32, reset_in_secs: u64) -> RateLimit {
        RateLimit {
            limit,
            remaining,
            reset_at: gate_now() + Duration::from_secs(reset_in_secs),
        }
    }

    /// How many requests the pacer lets go at once, permits kept open.
    fn burst<'p>(pacer: &'p Pacer, operation: &'static str) -> (Vec<Permit<'p>>, Duration) {
        let mut permits = Vec::new();
        loop {
            match pacer.admit(operation) {
                Ok(permit) => permits.push(permit),
                Err(hold) => return (permits, hold),
            }
            assert!(permits.len() < 10_000, "the pacer never holds");
        }
    }

    #[test]
    fn in_flight_requests_count_against_the_remaining_window() {
        let now = Instant::now();
        let mut state = Operation::default();
        state.answered(Some(limit(10, 3, 4)), gate_now(), now);
        // Three left: three may be in flight, not four.
        for in_flight in 0..3 {
            state.in_flight = in_flight;
            assert_eq!(state.hold(now), Duration::ZERO, "{in_flight} in flight");
        }
        state.in_flight = 3;
        assert_eq!(state.hold(now), Duration::from_secs(4));
        // Later in the window, the wait is what is left of it.
        assert_eq!(
            state.hold(now + Duration::from_millis(1500)),
            Duration::from_millis(2500)
        );
        // At its end the next window is assumed full (10), minus what is still out.
        let ends = now + Duration::from_secs(4);
        state.in_flight = 9;
        assert_eq!(state.hold(ends), Duration::ZERO);
        state.in_flight = 10;
        assert_eq!(state.hold(ends), ANSWER_WAIT);
    }

    #[test]
    fn answers_out_of_order_keep_the_smallest_remaining_and_the_latest_window() {
        let now = Instant::now();
        let mut state = Operation::default();
        state.answered(Some(limit(10, 2, 4)), gate_now(), now);
        // An earlier answer of the same window, overtaken on the way.
        state.answered(Some(limit(10, 5, 4)), gate_now(), now);
        state.in_flight = 2;
        assert_eq!(
            state.hold(now),
            Duration::from_secs(4),
            "5 would let a third go"
        );
        // The next window's first answer replaces it...
        let later = gate_now() + Duration::from_secs(4);
        let next = now + Duration::from_secs(4);
        state.answered(Some(limit(10, 9, 14)), later, next);
        assert_eq!(state.hold(next), Duration::ZERO);
        // ...and a straggler of the old window (remaining 0) changes nothing.
        state.answered(Some(limit(10, 0, 4)), later, next);
        assert_eq!(state.hold(next), Duration::ZERO);
        state.in_flight = 9;
        assert_eq!(state.hold(next), Duration::from_secs(10));
    }

    #[test]
    fn before_any_answer_one_request_probes_alone() {
        let now = Instant::now();
        let mut state = Operation::default();
        assert_eq!(state.hold(now), Duration::ZERO);
        state.in_flight = 1;
        assert_eq!(state.hold(now), ANSWER_WAIT);
        // A server without rate-limit headers: nothing to pace by.
        state.answered(None, gate_now(), now);
        state.in_flight = 50;
        assert_eq!(state.hold(now), Duration::ZERO);
    }

    #[test]
    fn gate_counting_past_our_end_of_the_window_moves_it() {
        // A stopped signing clock: Gate's reset stays 1 s ahead of it.
        let now = Instant::now();
        let mut state = Operation::default();
        state.answered(Some(limit(3, 0, 1)), gate_now(), now);
        let after = now + Duration::from_secs(1);
        assert_eq!(state.hold(after), Duration::ZERO, "our wait is over");
        state.answered(Some(limit(3, 0, 1)), gate_now(), after);
        assert_eq!(state.hold(after), Duration::from_secs(1));
    }

    #[test]
    fn permits_count_until_answered_or_dropped() {
        let pacer = Pacer::new(Duration::from_secs(10));
        let first = pacer.admit("op").unwrap();
        assert_eq!(pacer.admit("op").unwrap_err(), ANSWER_WAIT);
        assert!(
            pacer.admit("other").is_ok(),
            "each operation is counted apart"
        );
        first.answered(Some(limit(5, 3, 4)), gate_now());
        let (permits, hold) = burst(&pacer, "op");
        assert_eq!(permits.len(), 3);
        assert!(hold > Duration::from_millis(3900) && hold <= Duration::from_secs(4));
        let mut permits = permits.into_iter();
        let answered = permits.next().unwrap();
        answered.answered(Some(limit(5, 3, 4)), gate_now());
        assert_eq!(pacer.state("op").in_flight, 2, "an answer counts once");
        drop(permits);
        assert_eq!(
            pacer.state("op").in_flight,
            0,
            "dropped permits stop counting"
        );
        let (permits, _) = burst(&pacer, "op");
        assert_eq!(permits.len(), 3);
    }

    #[test]
    fn a_reset_far_ahead_holds_one_window_at_most_and_a_zero_limit_lets_a_probe_go() {
        let now = Instant::now();
        let mut state = Operation::default();
        // A reset some billions of years ahead: no overflow, held for one window.
        let far = RateLimit {
            limit: 5,
            remaining: 0,
            reset_at: gate_now() + Duration::from_secs(i64::MAX as u64 / 4),
        };
        state.answered(Some(far), gate_now(), now);
        assert_eq!(state.hold(now), LONGEST_WINDOW);
        assert_eq!(state.hold(now + LONGEST_WINDOW), Duration::ZERO);
        // A limit of 0: once the window is over, one request may go and learn the next.
        let mut state = Operation::default();
        state.answered(Some(limit(0, 0, 1)), gate_now(), now);
        let after = now + Duration::from_secs(1);
        assert_eq!(state.hold(after), Duration::ZERO);
        state.in_flight = 1;
        assert_eq!(state.hold(after), ANSWER_WAIT);
    }

    #[test]
    fn holds_are_capped() {
        let pacer = Pacer::new(Duration::from_secs(2));
        pacer
            .admit("op")
            .unwrap()
            .answered(Some(limit(5, 0, 9)), gate_now());
        assert_eq!(pacer.admit("op").unwrap_err(), Duration::from_secs(2));
    }
}
