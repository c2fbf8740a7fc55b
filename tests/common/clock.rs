//! A Gate clock driven by tokio's (paused) time, shared by a test's client and emulator.
//!
//! Under `#[tokio::test(start_paused = true)]` tokio's clock only moves when every task
//! waits on a timer, so a test of pacing or retries sees the same windows, waits and
//! attempt counts however loaded the machine is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gate_stp::Clock;

/// Gate's clock for both sides: a start time plus tokio's (paused) elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: SystemTime,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// 3.6 s into a 10 s window, as an operator's run might start.
    pub fn new() -> Self {
        Self {
            origin: UNIX_EPOCH + Duration::from_millis(1_800_000_003_600),
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.origin + self.started.elapsed()
    }
}
