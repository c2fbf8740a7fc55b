//! What the builder's options put on the wire, judged by what a wiremock server received.
//!
//! Each option is given first in its builder chain: an option that lost the builder's
//! other settings would then send its request to the live API, or none at all, and fail
//! the test rather than pass unnoticed.

use std::time::Duration;

use gate_stp::{Client, Credentials, ManualClock, RetryPolicy};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::common::gate::{self, Gate};

const KEY: &str = "builder-test-key";
const SECRET: &str = "builder-test-secret";
/// The client's (fixed) clock, in Unix seconds.
const NOW: u64 = 1_700_000_000;

/// A server answering `GET /spot/time` (public) and `GET /account/stp_groups` (signed).
async fn gate() -> MockServer {
    let server = gate::gate_answering(
        "GET",
        "/api/v4/account/stp_groups",
        Gate::new(KEY, SECRET, json!([])),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/spot/time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"server_time": NOW * 1000})))
        .mount(&server)
        .await;
    server
}

/// The value of `header` on each request the server received, in order.
async fn sent(server: &MockServer, header: &str) -> Vec<Option<String>> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            let value = request.headers.get(header)?;
            Some(value.to_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_user_agent_is_the_crates_unless_one_is_given() {
    let server = gate().await;
    Client::builder()
        .base_url(gate::base(&server))
        .build()
        .unwrap()
        .server_time()
        .await
        .unwrap();
    Client::builder()
        .user_agent("desk-7/2.1")
        .base_url(gate::base(&server))
        .build()
        .unwrap()
        .server_time()
        .await
        .unwrap();
    let default = format!("gate-stp/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        sent(&server, "user-agent").await,
        [Some(default), Some("desk-7/2.1".to_owned())]
    );
}

#[tokio::test]
async fn the_default_expiry_dates_private_requests_and_a_call_can_override_it() {
    let server = gate().await;
    let client = Client::builder()
        .default_expiry(Duration::from_secs(3))
        .base_url(gate::base(&server))
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    client.list_groups().await.unwrap();
    client
        .list_groups()
        .expires_in(Duration::from_millis(1500))
        .await
        .unwrap();
    client.server_time().await.unwrap();
    assert_eq!(
        sent(&server, "x-gate-exptime").await,
        [
            // 3 s after our clock (no offset measured yet), in milliseconds.
            Some("1700000003000".to_owned()),
            Some("1700000001500".to_owned()),
            // Public: Gate reads no deadline there.
            None,
        ]
    );
}
