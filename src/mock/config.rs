//! How an emulator behaves where Gate leaves room: clock, rate limit, limits.

use std::{sync::Arc, time::Duration};

use crate::clock::{Clock, SystemClock};

/// Gate's limit for "other private endpoints": requests per window.
pub const DEFAULT_RATE_LIMIT: u32 = 150;
/// Gate's rate-limit window.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(10);
/// Gate's tolerance between a request's `Timestamp` and its clock.
pub const DEFAULT_EXPIRY_WINDOW: Duration = Duration::from_secs(60);
/// Largest request body accepted by default (64 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// A fixed-window rate limit: `requests` per `window`, counted per endpoint (method and
/// route) and per authenticated account. `GET /sub_accounts` allows at most 80 (Gate's
/// limit for its sub-account endpoints), so the default 150 gives Gate's two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests allowed in one window (0 refuses every request).
    pub requests: u32,
    /// Length of a window; windows are aligned on multiples of it since the Unix epoch.
    pub window: Duration,
}

impl Default for RateLimitConfig {
    /// Gate's 150 requests per 10 s.
    fn default() -> Self {
        Self {
            requests: DEFAULT_RATE_LIMIT,
            window: DEFAULT_RATE_WINDOW,
        }
    }
}

/// Settings of an emulator, built from [`EmulatorConfig::default`] with the builder methods.
///
/// ```
/// use std::time::Duration;
/// use gate_stp::{ManualClock, mock::EmulatorConfig};
///
/// let config = EmulatorConfig::default()
///     .clock(ManualClock::at_unix_secs(1_800_000_000))
///     .clock_offset_ms(-300_000) // the emulator runs 5 minutes behind its clock
///     .rate_limit(3, Duration::from_secs(10));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub(super) clock: Arc<dyn Clock>,
    pub(super) clock_offset_ms: i64,
    pub(super) rate_limit: Option<RateLimitConfig>,
    pub(super) expiry_window: Duration,
    pub(super) max_body_bytes: usize,
    pub(super) one_group_per_user: bool,
    pub(super) honour_exptime: bool,
}

impl Default for EmulatorConfig {
    /// The system clock without offset, 150 requests per 10 s, a 60 s Timestamp window and
    /// 64 KiB bodies: Gate's documented behaviour. Where Gate documents nothing, our
    /// reading: a user belongs to at most one STP group, and `x-gate-exptime` is honoured
    /// on every private endpoint.
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            clock_offset_ms: 0,
            rate_limit: Some(RateLimitConfig::default()),
            expiry_window: DEFAULT_EXPIRY_WINDOW,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            one_group_per_user: true,
            honour_exptime: true,
        }
    }
}

impl EmulatorConfig {
    /// The clock the emulator reads, before its offset (e.g. a [`ManualClock`](crate::ManualClock)
    /// shared with the test).
    pub fn clock(self, clock: impl Clock) -> Self {
        self.shared_clock(Arc::new(clock))
    }

    /// Like [`clock`](Self::clock), for a clock already behind an `Arc`.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Moves the emulator's time `offset_ms` milliseconds away from its clock (positive:
    /// ahead), to reproduce a skewed exchange clock. It applies to everything time-based:
    /// the Timestamp window, `x-gate-exptime`, `create_time`, `/spot/time`, the
    /// `X-In-Time`/`X-Out-Time` headers and the rate-limit windows.
    pub fn clock_offset_ms(mut self, offset_ms: i64) -> Self {
        self.clock_offset_ms = offset_ms;
        self
    }

    /// `requests` per `window` per endpoint and account (a window shorter than 1 ms counts
    /// as 1 ms); beyond it, 429 TOO_MANY_REQUESTS.
    pub fn rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.rate_limit = Some(RateLimitConfig {
            requests,
            window: window.max(Duration::from_millis(1)),
        });
        self
    }

    /// No rate limit (load tests); the `X-Gate-RateLimit-*` headers are then omitted.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = None;
        self
    }

    /// Largest gap allowed between a request's `Timestamp` and the emulator's time
    /// (default 60 s, as Gate).
    pub fn expiry_window(mut self, window: Duration) -> Self {
        self.expiry_window = window;
        self
    }

    /// Largest request body accepted (default 64 KiB); a larger one is refused with 400
    /// INVALID_REQUEST_BODY before it is authenticated.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Whether adding a user who is already a member of another STP group is refused
    /// (default `true`), with 400 INVALID_PARAM_VALUE, the whole request changing nothing.
    ///
    /// Gate does not document it. Our reading: an order carries a single `stp_id`, so a
    /// user in two groups would make the group of its orders ambiguous; Gate very likely
    /// refuses it, and a tool that manages groups must not rely on it. Switch it off to
    /// emulate a Gate that allows it.
    pub fn one_group_per_user(mut self, yes: bool) -> Self {
        self.one_group_per_user = yes;
        self
    }

    /// Whether `x-gate-exptime` is honoured (default `true`): a request arriving after that
    /// deadline is refused with 400 REQUEST_EXPIRED before it runs.
    ///
    /// Gate documents the header for its order endpoints only; that it applies to the STP
    /// endpoints as well is an assumption. Switch it off to emulate a Gate that ignores the
    /// header there (it is then neither checked nor parsed).
    pub fn honour_exptime(mut self, yes: bool) -> Self {
        self.honour_exptime = yes;
        self
    }

    /// Whether a user may be in at most one STP group ([`one_group_per_user`](Self::one_group_per_user)).
    pub fn one_group_per_user_enabled(&self) -> bool {
        self.one_group_per_user
    }

    /// Whether `x-gate-exptime` is honoured ([`honour_exptime`](Self::honour_exptime)).
    pub fn honour_exptime_enabled(&self) -> bool {
        self.honour_exptime
    }

    /// The rate limit in force, `None` when switched off.
    pub fn rate_limit_config(&self) -> Option<RateLimitConfig> {
        self.rate_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switches_read_back_as_set() {
        let default = EmulatorConfig::default();
        assert!(default.one_group_per_user_enabled());
        assert!(default.honour_exptime_enabled());
        assert_eq!(
            default.rate_limit_config(),
            Some(RateLimitConfig {
                requests: DEFAULT_RATE_LIMIT,
                window: DEFAULT_RATE_WINDOW,
            })
        );
        let changed = EmulatorConfig::default()
            .one_group_per_user(false)
            .honour_exptime(false)
            .rate_limit(7, Duration::from_secs(3));
        assert!(!changed.one_group_per_user_enabled());
        assert!(!changed.honour_exptime_enabled());
        assert_eq!(
            changed.rate_limit_config(),
            Some(RateLimitConfig {
                requests: 7,
                window: Duration::from_secs(3),
            })
        );
        let unlimited = EmulatorConfig::default().without_rate_limit();
        assert_eq!(unlimited.rate_limit_config(), None);
    }
}
