//! A call's deadline (`expires_in`/`expires_at`) also bounds the client's own waiting:
//! neither pacing nor a retry may hold a request until after it, since Gate would only
//! answer REQUEST_EXPIRED.

use std::time::{Duration, Instant};

use gate_stp::{Client, Credentials, Error, ManualClock, RetryPolicy};
use serde_json::json;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

/// The client's (fixed) clock, in Unix seconds.
const NOW: u64 = 1_700_000_000;

/// A server answering every request with `status` and a used-up rate-limit window that
/// resets `reset_in_secs` after [`NOW`].
async fn window_used_up(status: u16, reset_in_secs: u64) -> MockServer {
    let server = MockServer::start().await;
    let body = if status == 200 {
        json!([])
    } else {
        json!({"label": "TOO_MANY_REQUESTS", "message": "slow down"})
    };
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(body)
                .insert_header("x-gate-ratelimit-limit", "200")
                .insert_header("x-gate-ratelimit-requests-remain", "0")
                .insert_header(
                    "x-gate-ratelimit-reset-timestamp",
                    (NOW + reset_in_secs).to_string(),
                ),
        )
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> gate_stp::ClientBuilder {
    Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new("deadline-key", "deadline-secret").unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
}

#[tokio::test]
async fn pacing_refuses_at_once_a_request_whose_deadline_comes_before_the_reset() {
    let server = window_used_up(200, 5).await;
    let client = client(&server).pace_rate_limits(true).build().unwrap();
    client.list_groups().await.unwrap();

    let started = Instant::now();
    let error = client
        .list_groups()
        .expires_in(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "it was held");
    match error {
        Error::ExpiresBeforeRateLimitReset { reset_in } => {
            // The pacer counts the 5 s from the answer on a monotonic clock: what is
            // left of them when the second call asks.
            let left = Duration::from_secs(4)..=Duration::from_secs(5);
            assert!(left.contains(&reset_in), "{reset_in:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_that_would_wait_past_the_deadline_is_not_made() {
    // 429 with a reset 5 s away: the policy would wait at least 5 s before retrying.
    let server = window_used_up(429, 5).await;
    let client = client(&server)
        .retry_policy(RetryPolicy::default().max_elapsed(Duration::from_secs(30)))
        .build()
        .unwrap();

    let started = Instant::now();
    let error = client
        .list_groups()
        .expires_in(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    assert!(matches!(error, Error::RateLimited(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
