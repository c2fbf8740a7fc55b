//! What one call of the client carries through the generated code: the client's shared
//! state (credentials, clock, offset, body limit) and what each attempt records.
//!
//! `CallContext` is the generated client's inner type (build.rs names it), so the
//! generated code depends on this module; it lives apart from [`transport`](crate::transport),
//! which implements the generated client's hooks and so depends on the generated code,
//! to keep the two from importing each other.

use std::{
    fmt,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use reqwest::{
    StatusCode,
    header::{CONTENT_TYPE, HeaderValue, LOCATION},
};

use crate::{
    clock::{Clock, unix_millis},
    credentials::Credentials,
    error::Error,
    response::ResponseMeta,
};

/// State shared by every call of one [`crate::Client`].
pub(crate) struct Shared {
    pub(crate) credentials: Option<Credentials>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Gate's clock minus ours, in milliseconds, as measured by the last sync.
    pub(crate) offset_ms: AtomicI64,
    pub(crate) max_body_bytes: usize,
}

impl Shared {
    /// The Timestamp to sign with now: our clock corrected by the measured offset.
    pub(crate) fn timestamp_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Our clock corrected by the measured offset, in Unix milliseconds: the one sum both
    /// the signed Timestamp and the client's deadlines are read from.
    pub(crate) fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now()).saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("credentials", &self.credentials)
            .field("clock", &self.clock)
            .field("offset_ms", &self.offset_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// The generated client's `Inner`: the shared state plus what one attempt records.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) call: Arc<CallState>,
}

/// What the hook learned during one attempt, read back when mapping errors.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    head: OnceLock<ResponseHead>,
    /// The response declared a body longer than the limit; it was not read.
    declared_too_large: AtomicBool,
    /// Why signing refused the request, kept typed: the generated client can only carry a
    /// string back, and its text would be wrapped in a second "invalid input" prefix.
    refusal: Mutex<Option<Error>>,
}

/// What error mapping and the retry loop need from a response's head, read once per
/// attempt. Header values are cheap reference-counted clones; the full header map is
/// not kept.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) meta: ResponseMeta,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) location: Option<HeaderValue>,
}

impl ResponseHead {
    pub(crate) fn read(response: &reqwest::Response) -> Self {
        let headers = response.headers();
        Self {
            meta: ResponseMeta::from_parts(response.status(), headers),
            content_type: headers.get(CONTENT_TYPE).cloned(),
            location: headers.get(LOCATION).cloned(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.meta.status
    }
}

impl CallState {
    pub(crate) fn head(&self) -> Option<&ResponseHead> {
        self.head.get()
    }

    /// Whether the response declared a body longer than the limit.
    pub(crate) fn declared_too_large(&self) -> bool {
        self.declared_too_large.load(Ordering::Relaxed)
    }

    /// Keeps the head of this attempt's response (the first one only: an attempt has one).
    pub(crate) fn record_head(&self, head: ResponseHead) {
        let _ = self.head.set(head);
    }

    /// Marks the response as declaring a body longer than the limit.
    pub(crate) fn mark_declared_too_large(&self) {
        self.declared_too_large.store(true, Ordering::Relaxed);
    }

    /// Keeps why signing refused this attempt's request.
    pub(crate) fn record_refusal(&self, error: Error) {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Why signing refused this attempt's request, if it did.
    pub(crate) fn take_refusal(&self) -> Option<Error> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::clock::ManualClock;

    fn shared(clock: ManualClock, offset_ms: i64) -> Shared {
        Shared {
            credentials: Some(Credentials::new("dbgk-1234567890", "dbg-secret-value").unwrap()),
            clock: Arc::new(clock),
            offset_ms: AtomicI64::new(offset_ms),
            max_body_bytes: 12_345,
        }
    }

    #[test]
    fn the_timestamp_is_the_corrected_clock_in_whole_seconds_rounded_down() {
        let at = |ms: u64| ManualClock::new(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(
            shared(at(1_700_000_000_999), 0).timestamp_secs(),
            1_700_000_000
        );
        // Gate's clock 2.5 s ahead of ours.
        assert_eq!(
            shared(at(1_700_000_000_600), 2_500).timestamp_secs(),
            1_700_000_003
        );
        // And 0.7 s behind.
        assert_eq!(
            shared(at(1_700_000_000_600), -700).timestamp_secs(),
            1_699_999_999
        );
    }

    #[test]
    fn a_clock_before_1970_signs_a_negative_timestamp_rounded_down() {
        let before = ManualClock::new(UNIX_EPOCH - Duration::from_millis(1_500));
        // -1.5 s is in the second that starts at -2 s, as floor division says.
        assert_eq!(shared(before.clone(), 0).timestamp_secs(), -2);
        assert_eq!(shared(before, 2_000).timestamp_secs(), 0);
    }

    #[test]
    fn shared_state_debug_shows_what_a_reader_needs_and_hides_the_secret() {
        let text = format!("{:?}", shared(ManualClock::at_unix_secs(1_000), -321));
        for needed in [
            "credentials",
            "dbgk",
            "clock",
            "ManualClock",
            "-321",
            "12345",
        ] {
            assert!(text.contains(needed), "{needed} missing from {text}");
        }
        assert!(!text.contains("dbg-secret-value"), "{text}");
        assert!(!text.contains("dbgk-1234567890"), "{text}");
    }
}
