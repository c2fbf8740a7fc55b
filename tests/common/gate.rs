//! A wiremock server that answers like Gate: it checks each request's signature with the
//! independent verifier of `tests/common` and refuses a bad one as Gate does.

use std::{future::Future, time::Duration};

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

/// Answers `body` with 200 when the request verifies for `key`/`secret`, else 401
/// INVALID_SIGNATURE naming why.
pub struct Gate {
    key: &'static str,
    secret: &'static str,
    body: Value,
    trace_id: Option<&'static str>,
    rate_limit_headers: bool,
}

impl Gate {
    /// Answers `body` to requests signed with `key` and `secret`.
    pub fn new(key: &'static str, secret: &'static str, body: Value) -> Self {
        Self {
            key,
            secret,
            body,
            trace_id: None,
            rate_limit_headers: false,
        }
    }

    /// Also sends `X-Gate-Trace-Id: id` on successes.
    pub fn with_trace_id(mut self, id: &'static str) -> Self {
        self.trace_id = Some(id);
        self
    }

    /// Also sends Gate's rate-limit headers on successes: 149 of 150 left, reset at
    /// 1700000010.
    pub fn with_rate_limit_headers(mut self) -> Self {
        self.rate_limit_headers = true;
        self
    }
}

impl Respond for Gate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Err(why) = crate::common::verify_wiremock(request, self.key, self.secret) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"label": "INVALID_SIGNATURE", "message": why}));
        }
        let mut answer = ResponseTemplate::new(200).set_body_json(&self.body);
        if self.rate_limit_headers {
            answer = answer
                .insert_header("X-Gate-RateLimit-Requests-Remain", "149")
                .insert_header("X-Gate-RateLimit-Limit", "150")
                .insert_header("X-Gate-RateLimit-Reset-Timestamp", "1700000010");
        }
        if let Some(id) = self.trace_id {
            answer = answer.insert_header("X-Gate-Trace-Id", id);
        }
        answer
    }
}

/// A server answering `method_ path_` with `gate`.
pub async fn gate_answering(method_: &str, path_: &str, gate: Gate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(method_))
        .and(path(path_))
        .respond_with(gate)
        .mount(&server)
        .await;
    server
}

/// The client's base URL for a wiremock server.
pub fn base(server: &MockServer) -> String {
    format!("{}/api/v4", server.uri())
}

/// How long a test of a misbehaving peer may run before it fails.
pub const TEST_BOUND: Duration = Duration::from_secs(10);

/// Runs `test`, failing it if it has not finished within [`TEST_BOUND`]: a test of a peer
/// that misbehaves must end even when the client under test would wait forever.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test did not finish in bounded time")
}

/// A policy of two attempts one millisecond apart: a retried call whose test is about what
/// the retry sends, not about how long it waits.
pub fn two_quick_attempts() -> gate_stp::RetryPolicy {
    gate_stp::RetryPolicy::default()
        .max_attempts(2)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(1))
}
