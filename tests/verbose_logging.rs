//! reqwest's `connection_verbose` logs every byte written to the socket, headers included.
//! A caller's own `reqwest::ClientBuilder` with it switched on must not make the client
//! log `KEY` and `SIGN`.
//!
//! One test in its own binary: it installs a global subscriber that also receives `log`
//! records (reqwest logs through the `log` crate), which no other test may share.

mod common;

use common::logs::LogBuffer;
use gate_stp::{Client, Credentials};
use tracing_subscriber::util::SubscriberInitExt;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

const SECRET: &str = "verbose-logging-secret";

#[tokio::test]
async fn a_verbose_http_client_builder_does_not_log_key_or_sign() {
    let logs = LogBuffer::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish()
        .init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;

    // Control: the capture does see what a verbose reqwest client writes, so the
    // assertions below can fail.
    let marker = "control-marker-5f0c";
    reqwest::Client::builder()
        .connection_verbose(true)
        .build()
        .unwrap()
        .get(format!("{}/control", server.uri()))
        .header("x-control", marker)
        .send()
        .await
        .unwrap();
    assert!(
        logs.text().contains(marker),
        "the test no longer captures reqwest's verbose connection log"
    );

    let client = Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new("verbose-logging-key", SECRET).unwrap())
        .http_client_builder(reqwest::Client::builder().connection_verbose(true))
        .build()
        .unwrap();
    client.list_groups().await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let signed = requests
        .iter()
        .find(|r| r.url.path() == "/api/v4/account/stp_groups")
        .expect("the signed request reached the server");
    let sign = signed.headers.get("sign").unwrap().to_str().unwrap();
    let text = logs.text();
    assert!(!text.contains(sign), "SIGN in the log:\n{text}");
    assert!(!text.contains(SECRET), "secret in the log:\n{text}");
    assert!(
        !text.contains("verbose-logging-key"),
        "full KEY in the log:\n{text}"
    );
}
