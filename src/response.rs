//! What comes back besides the body: status, rate limits, ids.

use std::{
    ops::Deref,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::{
    StatusCode,
    header::{HeaderMap, HeaderName},
};

/// Response header with the requests left in the current rate-limit window.
pub const RATE_LIMIT_REMAIN_HEADER: &str = "x-gate-ratelimit-requests-remain";
/// Response header with the size of the rate-limit window, in requests.
pub const RATE_LIMIT_LIMIT_HEADER: &str = "x-gate-ratelimit-limit";
/// Response header with the end of the current rate-limit window, in Unix seconds.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-gate-ratelimit-reset-timestamp";
/// Request header with the caller's own request id, echoed by Gate.
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-client-request-id";
/// Response header with Gate's trace id for the request.
pub const TRACE_ID_HEADER: &str = "x-gate-trace-id";

// The names above as `HeaderName`s, so that lookups on every response skip parsing them.
const RATE_LIMIT_REMAIN: HeaderName = HeaderName::from_static(RATE_LIMIT_REMAIN_HEADER);
const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static(RATE_LIMIT_LIMIT_HEADER);
const RATE_LIMIT_RESET: HeaderName = HeaderName::from_static(RATE_LIMIT_RESET_HEADER);
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static(CLIENT_REQUEST_ID_HEADER);
const TRACE_ID: HeaderName = HeaderName::from_static(TRACE_ID_HEADER);

/// Gate's rate-limit state for one endpoint and account, from the `X-Gate-RateLimit-*`
/// response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in a window.
    pub limit: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// When the current window ends.
    pub reset_at: SystemTime,
}

impl RateLimit {
    /// Reads the three headers; `None` unless all are present and well formed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &HeaderName| -> Option<u64> {
            headers.get(name)?.to_str().ok()?.trim().parse().ok()
        };
        Some(Self {
            limit: u32::try_from(number(&RATE_LIMIT_LIMIT)?).ok()?,
            remaining: u32::try_from(number(&RATE_LIMIT_REMAIN)?).ok()?,
            reset_at: UNIX_EPOCH.checked_add(Duration::from_secs(number(&RATE_LIMIT_RESET)?))?,
        })
    }

    /// How long until the window resets, measured from `now`; zero if it already has.
    pub fn reset_in(&self, now: SystemTime) -> Duration {
        self.reset_at.duration_since(now).unwrap_or_default()
    }
}

/// Facts about one HTTP response, available on successes and on errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// HTTP status.
    pub status: StatusCode,
    /// Rate-limit state reported with the response, if the headers were there.
    pub rate_limit: Option<RateLimit>,
    /// Gate's trace id (`X-Gate-Trace-Id`), worth quoting to Gate's support.
    pub trace_id: Option<String>,
    /// The `X-Client-Request-Id` echoed by the server.
    pub client_request_id: Option<String>,
}

impl ResponseMeta {
    pub(crate) fn from_parts(status: StatusCode, headers: &HeaderMap) -> Self {
        let text = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            status,
            rate_limit: RateLimit::from_headers(headers),
            trace_id: text(&TRACE_ID),
            client_request_id: text(&CLIENT_REQUEST_ID),
        }
    }
}

/// A successful result: the decoded body plus the response's [`ResponseMeta`].
///
/// Dereferences to the body, so `response.len()` or `response.name` work directly;
/// [`Response::into_inner`] takes the body out.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    value: T,
    meta: ResponseMeta,
}

impl<T> Response<T> {
    pub(crate) fn new(value: T, meta: ResponseMeta) -> Self {
        Self { value, meta }
    }

    /// The decoded body.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Status, rate limit and ids of the response.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Rate-limit state reported with the response.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.meta.rate_limit
    }

    /// Splits into body and metadata.
    pub fn into_parts(self) -> (T, ResponseMeta) {
        (self.value, self.meta)
    }
}

impl<T> Deref for Response<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn rate_limit_needs_all_three_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(RATE_LIMIT_LIMIT_HEADER, HeaderValue::from_static("150"));
        headers.insert(RATE_LIMIT_REMAIN_HEADER, HeaderValue::from_static("149"));
        assert_eq!(RateLimit::from_headers(&headers), None);
        headers.insert(
            RATE_LIMIT_RESET_HEADER,
            HeaderValue::from_static("1700000010"),
        );
        let limit = RateLimit::from_headers(&headers).unwrap();
        assert_eq!((limit.limit, limit.remaining), (150, 149));
        assert_eq!(
            limit.reset_in(UNIX_EPOCH + Duration::from_secs(1_700_000_004)),
            Duration::from_secs(6)
        );
        headers.insert(RATE_LIMIT_REMAIN_HEADER, HeaderValue::from_static("-1"));
        assert_eq!(RateLimit::from_headers(&headers), None);
    }
}
