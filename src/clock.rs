//! Where "now" comes from.
//!
//! Gate refuses a signed request whose `Timestamp` is more than 60 s away from its own
//! clock, so the time used for signing must be replaceable: by a fixed clock in tests, and
//! corrected by the offset measured against `GET /spot/time` in production (see
//! [`Client::sync_clock`](crate::Client::sync_clock)). The emulator uses the same trait so
//! that tests can move its clock too.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place that reads the operating system's wall clock (clippy.toml forbids
    // it everywhere else).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; cheap to clone, clones share the same time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use gate_stp::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix_secs(1_541_993_715);
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_541_993_776));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `time`.
    pub fn new(time: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(time)),
        }
    }

    /// A clock stopped at `secs` seconds after the Unix epoch.
    pub fn at_unix_secs(secs: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Moves the clock forward (saturating at the largest time the platform can hold).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(later) = now.checked_add(by) {
            *now = later;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Milliseconds since the Unix epoch, negative before it.
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_millis_counts_both_ways_from_the_epoch() {
        let ms = Duration::from_millis(1_500);
        assert_eq!(unix_millis(UNIX_EPOCH), 0);
        assert_eq!(unix_millis(UNIX_EPOCH + ms), 1_500);
        // A clock set before 1970 (a misconfigured host) signs a negative time rather
        // than a positive one Gate would read as 1970 plus that much.
        assert_eq!(unix_millis(UNIX_EPOCH - ms), -1_500);
    }

    #[test]
    fn a_manual_clock_starts_where_told_and_its_clones_move_together() {
        let clock = ManualClock::at_unix_secs(1_700_000_000);
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(clock.now(), start);
        let shared = clock.clone();
        shared.advance(Duration::from_millis(250));
        assert_eq!(
            clock.now(),
            start + Duration::from_millis(250),
            "clones share the time"
        );
    }
}
