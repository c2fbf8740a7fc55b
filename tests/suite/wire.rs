//! Each operation against a local wiremock server that checks signatures the way Gate
//! does (tests/common, written from the spec, independent of the crate's signer), and
//! what arrives on the wire byte for byte.

use crate::common::gate::{self, Gate};

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, UNIX_EPOCH},
};

use gate_stp::{Client, Credentials, Error, InvalidInput, ManualClock, RetryPolicy};
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

const KEY: &str = "wire-test-key";
const SECRET: &str = "wire-test-secret-do-not-print";
const NOW: u64 = 1_700_000_000;

fn client(server: &MockServer) -> Client {
    Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn only_request(server: &MockServer) -> Request {
    let mut received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "expected exactly one request");
    received.remove(0)
}

fn assert_signed_headers(request: &Request) {
    let headers = &request.headers;
    assert_eq!(headers.get("KEY").unwrap(), KEY);
    assert_eq!(headers.get("Timestamp").unwrap(), &NOW.to_string());
    assert_eq!(headers.get("SIGN").unwrap().len(), 128);
    assert!(
        headers.get("api-version").is_none(),
        "progenitor's api-version header leaked"
    );
    assert_eq!(headers.get("accept").unwrap(), "application/json");
}

/// A server answering `method path` like Gate, with `body` and Gate's headers.
async fn gate_answering(method_: &str, path_: &str, body: serde_json::Value) -> MockServer {
    gate::gate_answering(
        method_,
        path_,
        Gate::new(KEY, SECRET, body)
            .with_rate_limit_headers()
            .with_trace_id("trace-1"),
    )
    .await
}

#[tokio::test]
async fn list_groups_with_a_name_that_needs_encoding() {
    let group = json!([{"id": 123435, "name": "a b+c&d=é", "creator_id": 10000, "create_time": 1548000000}]);
    let server = gate_answering("GET", "/api/v4/account/stp_groups", group).await;

    let groups = client(&server)
        .list_groups()
        .name("a b+c&d=é,%")
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "a b+c&d=é");
    assert_eq!(groups[0].id, Some(123435));
    let limit = groups.rate_limit().unwrap();
    assert_eq!((limit.limit, limit.remaining), (150, 149));
    assert_eq!(groups.meta().trace_id.as_deref(), Some("trace-1"));

    let request = only_request(&server).await;
    assert_signed_headers(&request);
    assert_eq!(request.url.query(), Some("name=a+b%2Bc%26d%3D%C3%A9%2C%25"));
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn list_groups_without_a_name_sends_no_query() {
    let server = gate_answering("GET", "/api/v4/account/stp_groups", json!([])).await;
    assert!(client(&server).list_groups().await.unwrap().is_empty());
    assert_eq!(only_request(&server).await.url.query(), None);
}

#[tokio::test]
async fn create_group_sends_only_the_name() {
    let server = gate_answering(
        "POST",
        "/api/v4/account/stp_groups",
        json!({"id": 7, "name": "mm desk", "creator_id": 10000, "create_time": 1700000000}),
    )
    .await;

    let group = client(&server).create_group("mm desk").await.unwrap();
    assert_eq!((group.id, group.creator_id), (Some(7), Some(10000)));

    let request = only_request(&server).await;
    assert_signed_headers(&request);
    assert_eq!(request.body, br#"{"name":"mm desk"}"#);
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn list_users_puts_the_id_in_the_path() {
    let server = gate_answering(
        "GET",
        "/api/v4/account/stp_groups/9223372036854775807/users",
        json!([{"user_id": 10001, "stp_id": 9223372036854775807i64, "create_time": 1}]),
    )
    .await;
    let users = client(&server).list_users(i64::MAX).await.unwrap();
    assert_eq!(users[0].stp_id, Some(i64::MAX));
    assert_signed_headers(&only_request(&server).await);
}

#[tokio::test]
async fn add_users_sends_a_json_array() {
    let server = gate_answering(
        "POST",
        "/api/v4/account/stp_groups/7/users",
        json!([
            {"user_id": 10001, "stp_id": 7, "create_time": 1},
            {"user_id": 10002, "stp_id": 7, "create_time": 1}
        ]),
    )
    .await;
    let users = client(&server).add_users(7, &[10001, 10002]).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.user_id).collect::<Vec<_>>(),
        [Some(10001), Some(10002)]
    );
    let request = only_request(&server).await;
    assert_signed_headers(&request);
    assert_eq!(request.body, b"[10001,10002]");
}

#[tokio::test]
async fn remove_users_joins_ids_in_one_query_parameter() {
    let server = gate_answering("DELETE", "/api/v4/account/stp_groups/7/users", json!([])).await;
    client(&server)
        .remove_users(7, &[10001, 10002, 10003])
        .await
        .unwrap();
    let request = only_request(&server).await;
    assert_signed_headers(&request);
    // Sent encoded, signed decoded (`user_id=10001,10002,10003`): the verifier accepted it.
    assert_eq!(request.url.query(), Some("user_id=10001%2C10002%2C10003"));
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn server_time_is_sent_unsigned_and_sync_keeps_the_offset() {
    let server = MockServer::start().await;
    // Gate is 5 s ahead of our (fixed) clock.
    Mock::given(method("GET"))
        .and(path("/api/v4/spot/time"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"server_time": (NOW + 5) * 1000})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(
            Gate::new(KEY, SECRET, json!([]))
                .with_rate_limit_headers()
                .with_trace_id("trace-1"),
        )
        .mount(&server)
        .await;

    let client = client(&server);
    let sync = client.sync_clock().await.unwrap();
    assert_eq!(sync.offset_ms, 5000);
    assert_eq!(client.clock_offset_ms(), 5000);
    client.list_groups().await.unwrap();

    let received = server.received_requests().await.unwrap();
    let time = &received[0];
    for header in ["KEY", "SIGN", "Timestamp", "api-version"] {
        assert!(
            time.headers.get(header).is_none(),
            "{header} sent to /spot/time"
        );
    }
    assert_eq!(
        received[1].headers.get("Timestamp").unwrap(),
        &(NOW + 5).to_string()
    );
}

#[tokio::test]
async fn client_request_id_and_expiry_headers_are_sent() {
    let server = gate_answering("GET", "/api/v4/account/stp_groups", json!([])).await;
    client(&server)
        .list_groups()
        .client_request_id("req-42")
        .expires_in(std::time::Duration::from_secs(3))
        .await
        .unwrap();
    let request = only_request(&server).await;
    assert_eq!(
        request.headers.get("X-Client-Request-Id").unwrap(),
        "req-42"
    );
    assert_eq!(
        request.headers.get("x-gate-exptime").unwrap(),
        &(NOW * 1000 + 3000).to_string()
    );
}

#[tokio::test]
async fn invalid_input_and_missing_credentials_send_nothing() {
    let server = MockServer::start().await;
    let client = client(&server);
    let cases = [
        client.create_group("  ").await.unwrap_err(),
        client.add_users(7, &[]).await.unwrap_err(),
        client.add_users(7, &[1, -2]).await.unwrap_err(),
        client.remove_users(7, &[3, 3]).await.unwrap_err(),
        client.list_users(0).await.unwrap_err(),
        client
            .list_groups()
            .client_request_id("bad\nid")
            .await
            .unwrap_err(),
    ];
    let expected = [
        InvalidInput::EmptyGroupName,
        InvalidInput::NoUserIds,
        InvalidInput::NonPositiveId {
            what: "user_id",
            value: -2,
        },
        InvalidInput::DuplicateUserId(3),
        InvalidInput::NonPositiveId {
            what: "stp_id",
            value: 0,
        },
        InvalidInput::InvalidHeaderValue("client request id"),
    ];
    for (error, expected) in cases.iter().zip(expected) {
        assert!(
            matches!(error, Error::InvalidInput(e) if *e == expected),
            "{error:?}"
        );
    }

    let anonymous = Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .build()
        .unwrap();
    let error = anonymous.list_groups().await.unwrap_err();
    assert!(matches!(
        error,
        Error::MissingCredentials {
            operation: "listSTPGroups"
        }
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn sync_takes_our_clock_halfway_through_the_request() {
    // Our clock moves 4 s while Gate answers: it read NOW before the request and NOW + 4 s
    // after, so Gate's NOW + 10 s was read at NOW + 2 s by our clock, 8 s ahead of it.
    let clock = ManualClock::at_unix_secs(NOW);
    let during = clock.clone();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/spot/time"))
        .respond_with(move |_: &Request| {
            during.advance(Duration::from_secs(4));
            ResponseTemplate::new(200).set_body_json(json!({"server_time": (NOW + 10) * 1000}))
        })
        .mount(&server)
        .await;
    let client = Client::builder()
        .base_url(gate::base(&server))
        .clock(clock)
        .build()
        .unwrap();

    let sync = client.sync_clock().await.unwrap();
    assert_eq!(sync.server_time, UNIX_EPOCH + Duration::from_secs(NOW + 10));
    assert_eq!(sync.local_time, UNIX_EPOCH + Duration::from_secs(NOW + 2));
    assert_eq!(sync.offset_ms, 8000);
    assert_eq!(client.clock_offset_ms(), 8000);
}

/// How many of the requests `server` received went to `path_`.
async fn requests_to(server: &MockServer, path_: &str) -> usize {
    let received = server.received_requests().await.unwrap();
    received.iter().filter(|r| r.url.path() == path_).count()
}

#[tokio::test]
async fn the_default_expiry_bounds_the_retries_of_private_calls_only() {
    // Each answer moves our clock 2 s forward, past the 1 s default window, and the first
    // answer of each path is a 503 that the policy would retry.
    let clock = ManualClock::at_unix_secs(NOW);
    let server = MockServer::start().await;
    for (path_, then) in [
        ("/api/v4/spot/time", json!({"server_time": NOW * 1000})),
        ("/api/v4/account/stp_groups", json!([])),
    ] {
        let moved = clock.clone();
        let answered = AtomicUsize::new(0);
        Mock::given(method("GET"))
            .and(path(path_))
            .respond_with(move |_: &Request| {
                moved.advance(Duration::from_secs(2));
                match answered.fetch_add(1, Ordering::SeqCst) {
                    0 => ResponseTemplate::new(503),
                    _ => ResponseTemplate::new(200).set_body_json(&then),
                }
            })
            .mount(&server)
            .await;
    }
    let client = Client::builder()
        .base_url(gate::base(&server))
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(clock)
        .default_expiry(Duration::from_secs(1))
        .retry_policy(gate::two_quick_attempts())
        .build()
        .unwrap();

    // Public: Gate reads no deadline there, so none binds the retry.
    client.server_time().await.unwrap();
    assert_eq!(requests_to(&server, "/api/v4/spot/time").await, 2);
    // Signed: past its deadline, a retry could only come back expired, so the 503 stands.
    let error = client.list_groups().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "{error:?}");
    assert_eq!(requests_to(&server, "/api/v4/account/stp_groups").await, 1);
}
