//! `getAccountDetail` and `listSubAccounts` against a local wiremock server that checks
//! signatures the way Gate does (tests/common, independent of the crate's signer): what
//! goes on the wire, and how Gate's answers decode.

use crate::common::{
    self,
    gate::{self, Gate},
};

use std::time::Duration;

use gate_stp::{Client, Credentials, Error, ManualClock, RetryPolicy, SubAccountTypeFilter};
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

const KEY: &str = "accounts-test-key";
const SECRET: &str = "accounts-test-secret";
const NOW: u64 = 1_700_000_000;

fn client(server: &MockServer, retry: RetryPolicy) -> Client {
    Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
        .retry_policy(retry)
        .build()
        .unwrap()
}

/// A server answering `GET path` like Gate, with `body`.
async fn gate_answering(path_: &str, body: serde_json::Value) -> MockServer {
    gate::gate_answering("GET", path_, Gate::new(KEY, SECRET, body)).await
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// An answer shaped like the example of Gate's documentation for GET /account/detail.
fn detail_body() -> serde_json::Value {
    json!({
        "user_id": 1_667_201_533,
        "ip_whitelist": ["127.0.0.1"],
        "currency_pairs": ["USDT_BTC"],
        "key": {"mode": 1},
        "tier": 2,
        "copy_trading_role": 0
    })
}

#[tokio::test]
async fn account_detail_is_signed_and_decodes_every_field() {
    let server = gate_answering("/api/v4/account/detail", detail_body()).await;
    let detail = client(&server, RetryPolicy::none())
        .account_detail()
        .await
        .unwrap();
    assert_eq!(detail.user_id, Some(1_667_201_533));
    assert_eq!(detail.ip_whitelist, ["127.0.0.1"]);
    assert_eq!(detail.currency_pairs, ["USDT_BTC"]);
    assert_eq!(detail.key.as_ref().and_then(|k| k.mode), Some(1));
    assert_eq!(detail.tier, Some(2));
    assert_eq!(detail.copy_trading_role, Some(0));

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    // Gate would have answered 401 otherwise; checked again here to say why on failure.
    common::verify_wiremock(&sent[0], KEY, SECRET).unwrap();
    assert_eq!(sent[0].headers.get("Timestamp").unwrap(), &NOW.to_string());
    assert_eq!(sent[0].url.query(), None);
    assert!(sent[0].body.is_empty());
}

#[tokio::test]
async fn account_detail_tolerates_fields_gate_adds_or_leaves_out() {
    let server = gate_answering(
        "/api/v4/account/detail",
        json!({"user_id": 10000, "some_future_field": {"x": 1}}),
    )
    .await;
    let detail = client(&server, RetryPolicy::none())
        .account_detail()
        .await
        .unwrap();
    assert_eq!(detail.user_id, Some(10000));
    assert!(detail.ip_whitelist.is_empty());
    assert_eq!(detail.key.as_ref().map(|k| k.mode), None);
}

fn sub_accounts_body() -> serde_json::Value {
    json!([
        {"remark": "market making", "login_name": "desk_a", "state": 1, "type": 1,
         "user_id": 10001, "create_time": 1_650_000_000},
        {"login_name": "margin_bot", "state": 2, "type": 3, "user_id": 10002,
         "create_time": 1_650_000_100, "email": "ops@example.com"}
    ])
}

#[tokio::test]
async fn list_sub_accounts_sends_the_type_filter_only_when_asked() {
    let server = gate_answering("/api/v4/sub_accounts", sub_accounts_body()).await;
    let client = client(&server, RetryPolicy::none());

    let subs = client.list_sub_accounts().await.unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].login_name, "desk_a");
    assert_eq!(subs[0].remark.as_deref(), Some("market making"));
    assert_eq!(
        (subs[0].user_id, subs[0].state, subs[0].type_),
        (Some(10001), Some(1), Some(1))
    );
    assert_eq!(subs[0].create_time, Some(1_650_000_000));
    assert_eq!((subs[1].type_, subs[1].state), (Some(3), Some(2)));
    assert_eq!(subs[1].remark, None);
    assert_eq!(subs[1].email.as_deref(), Some("ops@example.com"));

    client
        .list_sub_accounts()
        .kind(SubAccountTypeFilter::All)
        .await
        .unwrap();
    client
        .list_sub_accounts()
        .kind(SubAccountTypeFilter::Regular)
        .await
        .unwrap();

    let sent = requests(&server).await;
    let queries: Vec<_> = sent.iter().map(|r| r.url.query()).collect();
    assert_eq!(queries, [None, Some("type=0"), Some("type=1")]);
    for request in &sent {
        common::verify_wiremock(request, KEY, SECRET).unwrap();
    }
}

#[tokio::test]
async fn a_sub_account_without_login_name_is_an_unexpected_response() {
    // The SDK's model requires `login_name`: an answer without it is not Gate's.
    let server = gate_answering("/api/v4/sub_accounts", json!([{"user_id": 10001}])).await;
    let error = client(&server, RetryPolicy::none())
        .list_sub_accounts()
        .await
        .unwrap_err();
    let Error::UnexpectedResponse(response) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(response.status.as_u16(), 200);
    assert!(
        response.reason.contains("login_name"),
        "{}",
        response.reason
    );
}

#[tokio::test]
async fn both_reads_are_retried_by_default_and_each_attempt_is_signed() {
    for (path_, body) in [
        ("/api/v4/account/detail", detail_body()),
        ("/api/v4/sub_accounts", sub_accounts_body()),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(path_))
            .respond_with(
                ResponseTemplate::new(503)
                    .set_body_json(json!({"label": "SERVER_ERROR", "message": "try again"})),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(path_))
            .respond_with(Gate::new(KEY, SECRET, body))
            .mount(&server)
            .await;
        // The default policy, with a short backoff so the test does not wait.
        let client = client(
            &server,
            RetryPolicy::default().initial_backoff(Duration::from_millis(1)),
        );
        if path_.ends_with("detail") {
            assert!(client.account_detail().await.unwrap().user_id.is_some());
        } else {
            assert_eq!(client.list_sub_accounts().await.unwrap().len(), 2);
        }
        let sent = requests(&server).await;
        assert_eq!(sent.len(), 2, "{path_}: one failure, one retry");
        for request in &sent {
            common::verify_wiremock(request, KEY, SECRET).unwrap();
        }
    }
}
