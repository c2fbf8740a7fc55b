//! The one error type of the crate, and how the generated client's errors map onto it.
//!
//! No variant holds the API secret, a `SIGN` value, or request headers: errors are safe to
//! log. Bodies appear only as a short snippet of what the server sent.
//! Server-controlled text (label, message, detail, redirect location, body snippet) is
//! displayed through [`crate::text::escape_control`]: a log line or a
//! terminal never receives its control characters raw.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use reqwest::StatusCode;

use crate::{
    response::{RateLimit, ResponseMeta},
    text::escape_control,
};

/// Longest part of an unexpected body kept in an error, in bytes.
pub const BODY_SNIPPET_LEN: usize = 256;

/// Everything that can go wrong in a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Gate (or the emulator) answered with a Gate error body `{label, message}`.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// HTTP 429: too many requests in the current window. Carries the reset time when the
    /// server said it.
    #[error(transparent)]
    RateLimited(Box<RateLimited>),
    /// The server answered with a redirect. It is not followed, so the key and signature
    /// only ever go to the configured host.
    #[error(
        "HTTP {status} redirect to {} not followed: requests only go to the configured base URL",
        location.as_deref().map_or("(no Location header)".into(), crate::text::escape_control)
    )]
    Redirect {
        /// The 3xx status.
        status: StatusCode,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// Pacing ([`ClientBuilder::pace_rate_limits`](crate::ClientBuilder::pace_rate_limits)) would have held the
    /// request until the rate-limit window resets, which is after the call's deadline
    /// (`expires_in`/`expires_at`); it was not sent.
    #[error(
        "not sent: the rate-limit window resets in {} ms, after the request's deadline",
        reset_in.as_millis()
    )]
    ExpiresBeforeRateLimitReset {
        /// How long pacing would have held the request.
        reset_in: Duration,
    },
    /// No complete response arrived within the configured timeout. The cause (which URL,
    /// connecting or reading) is the [`source`](std::error::Error::source).
    #[error("request timed out")]
    Timeout(#[source] reqwest::Error),
    /// The connection failed or broke (refused, reset, TLS, DNS...); what happened is the
    /// [`source`](std::error::Error::source) and its own sources.
    #[error("transport error")]
    Transport(#[source] reqwest::Error),
    /// A response that is neither the documented success body nor a Gate error body:
    /// HTML from a proxy, an empty or truncated body, wrong JSON types, an unexpected status.
    #[error(transparent)]
    UnexpectedResponse(Box<UnexpectedResponse>),
    /// The response body was larger than the configured limit; reading stopped there.
    #[error("response body larger than {limit} bytes (HTTP {status}); reading stopped")]
    BodyTooLarge {
        /// HTTP status of the response.
        status: StatusCode,
        /// The limit in bytes.
        limit: usize,
    },
    /// The request was refused before anything was sent.
    ///
    /// The reason is a leaf with nothing behind it, so it is printed here and is not also
    /// a `source` (a report walking the chain would print it twice).
    #[error("invalid input: {0}")]
    InvalidInput(InvalidInput),
    /// A private operation was called on a client built without credentials.
    #[error("{operation} needs credentials: build the client with an API key and secret")]
    MissingCredentials {
        /// Gate's operationId.
        operation: &'static str,
    },
    /// The client could not be built as configured (printed here, not a `source`, as for
    /// [`Error::InvalidInput`]).
    #[error("configuration: {0}")]
    Config(ConfigError),
}

impl From<InvalidInput> for Error {
    fn from(reason: InvalidInput) -> Self {
        Error::InvalidInput(reason)
    }
}

impl From<ConfigError> for Error {
    fn from(reason: ConfigError) -> Self {
        Error::Config(reason)
    }
}

impl Error {
    /// HTTP status of the response behind the error, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::RateLimited(e) => Some(e.meta.status),
            Error::Redirect { status, .. } | Error::BodyTooLarge { status, .. } => Some(*status),
            Error::UnexpectedResponse(e) => Some(e.status),
            // A transport failure or timeout got no usable response: reqwest only puts a
            // status in its error from `error_for_status`, which nothing here calls.
            _ => None,
        }
    }

    /// Gate's error label, if the server sent one.
    pub fn label(&self) -> Option<&Label> {
        match self {
            Error::Api(e) => Some(&e.label),
            Error::RateLimited(e) => e.label.as_ref(),
            _ => None,
        }
    }

    /// Response metadata (rate limit, trace id, client request id), if a response arrived.
    pub fn meta(&self) -> Option<&ResponseMeta> {
        match self {
            Error::Api(e) => Some(&e.meta),
            Error::RateLimited(e) => Some(&e.meta),
            Error::UnexpectedResponse(e) => e.meta.as_ref(),
            _ => None,
        }
    }

    /// Rate-limit state reported with the failed response, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.meta().and_then(|m| m.rate_limit)
    }
}

/// An error body from Gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable label.
    pub label: Label,
    /// Human-readable message, when sent.
    pub message: Option<String>,
    /// Additional detail, sent by some endpoints instead of `message`.
    pub detail: Option<String>,
    /// Rate limit, trace id and request id of the response.
    pub meta: ResponseMeta,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label)?;
        if let Some(text) = self.message.as_deref().or(self.detail.as_deref()) {
            write!(f, ": {}", escape_control(text))?;
        }
        write!(f, " (HTTP {})", self.status.as_u16())
    }
}

impl std::error::Error for ApiError {}

/// HTTP 429 from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// Status and rate-limit headers of the response.
    pub meta: ResponseMeta,
    /// Gate's label (normally `TOO_MANY_REQUESTS`) when the body carried one.
    pub label: Option<Label>,
    /// Gate's message when the body carried one.
    pub message: Option<String>,
}

impl RateLimited {
    /// When the window resets, if the server said.
    pub fn reset_at(&self) -> Option<SystemTime> {
        self.meta.rate_limit.map(|r| r.reset_at)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TOO_MANY_REQUESTS")?;
        if let Some(message) = &self.message {
            write!(f, ": {}", escape_control(message))?;
        }
        match self.meta.rate_limit {
            Some(limit) => write!(
                f,
                " (HTTP 429; limit {}, window resets at Unix {})",
                limit.limit,
                limit
                    .reset_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default()
            ),
            None => f.write_str(" (HTTP 429; no reset time given)"),
        }
    }
}

impl std::error::Error for RateLimited {}

/// A response that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// The `Content-Type` the server claimed.
    pub content_type: Option<String>,
    /// Why it was not accepted (e.g. the JSON decoding error).
    pub reason: String,
    /// The first [`BODY_SNIPPET_LEN`] bytes of the body, lossily decoded.
    pub snippet: String,
    /// Metadata of the response.
    pub meta: Option<ResponseMeta>,
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unexpected response: HTTP {}: {}; body starts \"{}\"",
            self.status.as_u16(),
            escape_control(&self.reason),
            escape_control(&self.snippet)
        )
    }
}

impl std::error::Error for UnexpectedResponse {}

/// Input refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The group name is empty or only whitespace.
    #[error("the group name is empty")]
    EmptyGroupName,
    /// No user ids were given.
    #[error("no user ids given")]
    NoUserIds,
    /// An id is zero or negative.
    #[error("{what} must be positive, got {value}")]
    NonPositiveId {
        /// Which id (`stp_id` or `user_id`).
        what: &'static str,
        /// The value given.
        value: i64,
    },
    /// The same user id appears twice. Refused rather than silently deduplicated: a
    /// duplicate usually means the caller's own bookkeeping is off.
    #[error("user id {0} is given more than once")]
    DuplicateUserId(i64),
    /// A value cannot be sent in an HTTP header (e.g. a client request id with a newline).
    #[error("{0} cannot be sent as an HTTP header value")]
    InvalidHeaderValue(&'static str),
    /// The request could not be built.
    #[error("request could not be built: {0}")]
    Request(String),
}

/// The client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL does not parse.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A plain-http base URL that is not loopback.
    #[error(
        "refusing to send credentials over plain http to {0:?}; use https, a loopback address, or allow_insecure_http(true)"
    )]
    InsecureBaseUrl(String),
    /// The API key is empty.
    #[error("the API key is empty")]
    EmptyKey,
    /// The API secret is empty.
    #[error("the API secret is empty")]
    EmptySecret,
    /// The API key has characters an HTTP header cannot carry.
    #[error("the API key must be visible ASCII")]
    InvalidKey,
    /// An environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The HTTP client could not be created.
    #[error("HTTP client: {0}")]
    HttpClient(String),
}

macro_rules! labels {
    ($($variant:ident => $text:literal: $doc:literal,)*) => {
        /// Gate's error labels, as documented for API v4; anything else is kept in
        /// [`Label::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Label {
            $(#[doc = $doc] $variant,)*
            /// A label this crate does not know, kept verbatim.
            Other(String),
        }

        impl Label {
            /// The label as Gate spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Label::$variant => $text,)*
                    Label::Other(text) => text,
                }
            }

            /// Parses Gate's spelling; unknown labels become [`Label::Other`].
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Label::$variant,)*
                    other => Label::Other(other.to_owned()),
                }
            }
        }
    };
}

labels! {
    InvalidCredentials => "INVALID_CREDENTIALS": "Invalid credentials.",
    InvalidKey => "INVALID_KEY": "Unknown API key.",
    IpForbidden => "IP_FORBIDDEN": "The caller's IP is not on the key's allow list.",
    ReadOnly => "READ_ONLY": "The key is read-only.",
    InvalidSignature => "INVALID_SIGNATURE": "SIGN does not match the request.",
    MissingRequiredHeader => "MISSING_REQUIRED_HEADER": "KEY, Timestamp or SIGN is missing.",
    RequestExpired => "REQUEST_EXPIRED": "The Timestamp is more than 60 s from Gate's clock.",
    AccountLocked => "ACCOUNT_LOCKED": "The account is locked.",
    Forbidden => "FORBIDDEN": "The account may not do this.",
    InvalidParamValue => "INVALID_PARAM_VALUE": "A parameter has an invalid value.",
    InvalidProtocol => "INVALID_PROTOCOL": "Invalid protocol.",
    InvalidArgument => "INVALID_ARGUMENT": "Invalid argument.",
    InvalidRequestBody => "INVALID_REQUEST_BODY": "The body is not valid.",
    MissingRequiredParam => "MISSING_REQUIRED_PARAM": "A required parameter is missing.",
    BadRequest => "BAD_REQUEST": "Bad request.",
    InvalidContentType => "INVALID_CONTENT_TYPE": "Unsupported content type.",
    NotAcceptable => "NOT_ACCEPTABLE": "Not acceptable.",
    MethodNotAllowed => "METHOD_NOT_ALLOWED": "Method not allowed.",
    NotFound => "NOT_FOUND": "No such resource.",
    TooManyRequests => "TOO_MANY_REQUESTS": "Rate limit exceeded.",
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An unknown label is the server's text.
        f.write_str(&escape_control(self.as_str()))
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Self {
        Label::parse(text)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Walks `error`'s source chain and fails if one level's text repeats a deeper
    /// level's (an error printing its own source). Returns the texts, outermost first.
    pub(crate) fn assert_no_text_twice(error: &dyn std::error::Error) -> Vec<String> {
        let mut texts = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            texts.push(cause.to_string());
            source = cause.source();
        }
        for (outer, text) in texts.iter().enumerate() {
            for deeper in &texts[outer + 1..] {
                assert!(
                    deeper.is_empty() || !text.contains(deeper.as_str()),
                    "{deeper:?} is printed twice in the chain {texts:?}"
                );
            }
        }
        texts
    }

    #[test]
    fn invalid_input_and_config_print_their_reason_once() {
        let invalid = Error::from(InvalidInput::NoUserIds);
        assert_eq!(
            assert_no_text_twice(&invalid),
            ["invalid input: no user ids given"]
        );
        let config = Error::from(ConfigError::EmptyKey);
        assert_eq!(
            assert_no_text_twice(&config),
            ["configuration: the API key is empty"]
        );
    }

    #[test]
    fn redirect_display_shows_the_location_as_text() {
        let with = Error::Redirect {
            status: StatusCode::MOVED_PERMANENTLY,
            location: Some("https://elsewhere.example/api".to_owned()),
        };
        assert_eq!(
            with.to_string(),
            "HTTP 301 Moved Permanently redirect to https://elsewhere.example/api not followed: \
             requests only go to the configured base URL"
        );
        let without = Error::Redirect {
            status: StatusCode::FOUND,
            location: None,
        };
        assert!(
            without
                .to_string()
                .starts_with("HTTP 302 Found redirect to (no Location header) not followed"),
            "{without}"
        );
    }

    #[test]
    fn labels_round_trip_and_unknown_is_kept() {
        for text in [
            "INVALID_SIGNATURE",
            "REQUEST_EXPIRED",
            "TOO_MANY_REQUESTS",
            "FORBIDDEN",
        ] {
            assert_eq!(Label::parse(text).as_str(), text);
            assert!(!matches!(Label::parse(text), Label::Other(_)));
        }
        assert_eq!(Label::parse("NEW_LABEL"), Label::Other("NEW_LABEL".into()));
        assert_eq!(Label::parse("NEW_LABEL").to_string(), "NEW_LABEL");
    }

    fn meta(status: StatusCode) -> ResponseMeta {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-gate-trace-id", "trace-42".parse().unwrap());
        ResponseMeta::from_parts(status, &headers)
    }

    #[test]
    fn the_status_of_every_answer_is_reported() {
        let redirect = Error::Redirect {
            status: StatusCode::MOVED_PERMANENTLY,
            location: None,
        };
        assert_eq!(redirect.status(), Some(StatusCode::MOVED_PERMANENTLY));
        let too_large = Error::BodyTooLarge {
            status: StatusCode::BAD_GATEWAY,
            limit: 10,
        };
        assert_eq!(too_large.status(), Some(StatusCode::BAD_GATEWAY));
        assert_eq!(Error::from(InvalidInput::NoUserIds).status(), None);
    }

    #[test]
    fn a_429_with_a_label_reports_it() {
        let limited = Error::RateLimited(Box::new(RateLimited {
            meta: meta(StatusCode::TOO_MANY_REQUESTS),
            label: Some(Label::TooManyRequests),
            message: None,
        }));
        assert_eq!(limited.label(), Some(&Label::TooManyRequests));
        assert_eq!(
            limited.meta().unwrap().trace_id.as_deref(),
            Some("trace-42")
        );
    }

    #[test]
    fn an_unexpected_answer_keeps_its_trace_id() {
        let unexpected = Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status: StatusCode::BAD_GATEWAY,
            content_type: Some("text/html".into()),
            reason: "not JSON".into(),
            snippet: "<html>".into(),
            meta: Some(meta(StatusCode::BAD_GATEWAY)),
        }));
        // What a user quotes to Gate's support.
        assert_eq!(
            unexpected.meta().unwrap().trace_id.as_deref(),
            Some("trace-42")
        );
        assert_eq!(unexpected.label(), None);
    }

    #[test]
    fn api_error_display_prefers_message_then_detail() {
        let meta = ResponseMeta::from_parts(StatusCode::UNAUTHORIZED, &Default::default());
        let mut error = ApiError {
            status: StatusCode::UNAUTHORIZED,
            label: Label::InvalidSignature,
            message: Some("Signature mismatch".into()),
            detail: None,
            meta,
        };
        assert_eq!(
            error.to_string(),
            "INVALID_SIGNATURE: Signature mismatch (HTTP 401)"
        );
        error.message = None;
        error.detail = Some("details".into());
        assert_eq!(error.to_string(), "INVALID_SIGNATURE: details (HTTP 401)");
    }
}
