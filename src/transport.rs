//! The request hook between the generated client and the network.
//!
//! The build generates the client with `HooksMode::Expected`, so this file's
//! `impl ClientHooks for generated::Client` is required for the crate to compile: there is
//! no build in which requests skip it. For every request it
//! - drops progenitor's `api-version` header (Gate does not know it);
//! - signs it (KEY, Timestamp, SIGN) unless the fragment marks the operation public with
//!   `security: []`, refusing to send a private request without credentials;
//! - records the response's status and headers for error reporting, and caps how much of
//!   the body may be read.
//!
//! Retries, clock sync and pacing live one level up, in [`crate::policy`], because each
//! attempt must be built and signed afresh.

use std::{
    fmt,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use bytes::Bytes;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::{
    ResponseBuilderExt, StatusCode,
    header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION},
};

mod map_error;

pub(crate) use map_error::from_generated;

use crate::{
    clock::{Clock, unix_millis},
    credentials::Credentials,
    error::{Error, InvalidInput},
    generated::{self, operations::OPERATIONS},
    response::ResponseMeta,
    signing::SigningInput,
};

/// `KEY` request header.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("key");
/// `Timestamp` request header.
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("timestamp");
/// `SIGN` request header.
pub const SIGN_HEADER: HeaderName = HeaderName::from_static("sign");
const API_VERSION_HEADER: HeaderName = HeaderName::from_static("api-version");

/// Signs a built request in place for Gate: sets `KEY`, `Timestamp` and `SIGN` from the
/// request's method, path, query and body bytes exactly as they will be sent.
///
/// This is the hook the client applies to every private request; it is public for callers
/// who build requests by other means. `SIGN` and `KEY` are marked sensitive, so `Debug` of
/// the request does not show them.
///
/// Fails only for a streaming body, whose bytes are not known before sending (and, loudly,
/// if a header value it computed could not be sent: a bug, never a silent empty header).
pub fn sign_request(
    request: &mut reqwest::Request,
    credentials: &Credentials,
    timestamp_secs: i64,
) -> Result<(), Error> {
    let body = match request.body() {
        None => &[][..],
        Some(body) => body.as_bytes().ok_or(InvalidInput::Request(
            "a streaming body cannot be signed".to_owned(),
        ))?,
    };
    // The header's own text is what is signed: the two cannot disagree.
    let timestamp = HeaderValue::from(timestamp_secs);
    let timestamp_text = timestamp
        .to_str()
        .map_err(|_| InvalidInput::InvalidHeaderValue("Timestamp"))?;
    let signature = credentials.signing_key().sign(&SigningInput {
        method: request.method().as_str(),
        path: request.url().path(),
        query: request.url().query().unwrap_or_default(),
        body,
        timestamp: timestamp_text,
    });
    let mut sign = HeaderValue::from_bytes(&signature.hex_bytes())
        .map_err(|_| InvalidInput::InvalidHeaderValue("SIGN"))?;
    sign.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert(KEY_HEADER, credentials.key_header().clone());
    headers.insert(TIMESTAMP_HEADER, timestamp);
    headers.insert(SIGN_HEADER, sign);
    Ok(())
}

/// Whether requests of the operation the generated client calls `rust_name` are signed.
/// Unknown operations are signed: only the fragment can make one public.
pub(crate) fn requires_signature(rust_name: &str) -> bool {
    OPERATIONS
        .iter()
        .find(|op| op.rust_name == rust_name)
        .is_none_or(|op| op.signed)
}

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
    pub(super) refusal: Mutex<Option<Error>>,
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
    fn read(response: &reqwest::Response) -> Self {
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

    /// Why signing refused this attempt's request, if it did.
    pub(crate) fn take_refusal(&self) -> Option<Error> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl ClientHooks<CallContext> for generated::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove(API_VERSION_HEADER);
        if !requires_signature(info.operation_id) {
            return Ok(());
        }
        let context = self.inner();
        // The client refuses a private operation without credentials before building it
        // (Error::MissingCredentials); reaching this means the operation table and the
        // generated call disagree, so refuse loudly rather than send it unsigned.
        let Some(credentials) = &context.shared.credentials else {
            return Err(progenitor_client::Error::Custom(format!(
                "{} is private but the client has no credentials",
                info.operation_id
            )));
        };
        sign_request(request, credentials, context.shared.timestamp_secs()).map_err(|error| {
            let text = error.to_string();
            *context
                .call
                .refusal
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(error);
            progenitor_client::Error::InvalidRequest(text)
        })
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.client().execute(request).await?;
        let context = self.inner();
        let _ = context.call.head.set(ResponseHead::read(&response));
        Ok(cap_body(
            response,
            context.shared.max_body_bytes,
            &context.call,
        ))
    }
}

/// Makes sure no more than `limit` bytes of the body are ever read, keeping the rest of
/// the response (URL, version, headers, extensions) as it is.
///
/// A body whose declared length fits is left alone (hyper never reads past a declared
/// length). A larger declared length is refused without reading (the body is swapped for
/// an empty one and the attempt marked). A body of unknown length is read through
/// `http_body_util::Limited`, whose error the mapping recognises.
fn cap_body(response: reqwest::Response, limit: usize, call: &CallState) -> reqwest::Response {
    let declared = response.content_length();
    if declared.is_some_and(|length| length <= limit as u64) {
        return response;
    }
    // reqwest keeps the URL beside the http response, not in its extensions: carry it
    // over through the one public way of setting it.
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    if let Some(extensions) = http::Response::builder().url(url).extensions_mut() {
        parts.extensions.extend(std::mem::take(extensions));
    }
    let body = if declared.is_some() {
        call.declared_too_large.store(true, Ordering::Relaxed);
        reqwest::Body::from(Bytes::new())
    } else {
        reqwest::Body::wrap(http_body_util::Limited::new(body, limit))
    };
    reqwest::Response::from(http::Response::from_parts(parts, body))
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
