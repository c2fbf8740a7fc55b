//! The secret, the SIGN values sent and the full API key never show up: not in tracing
//! output (TRACE level, span fields included, `log` records bridged), not in `Display` or
//! `Debug` of errors, clients, builders, responses or credentials, on success and on every
//! error path. The captured output must also contain the request span's fields, so that a
//! silent subscriber cannot make these tests pass.
//!
//! Each test captures its own logs: a TRACE subscriber is installed as the default of the
//! test's thread on its first use, so no test's logging buffers or slows another's (the
//! tests run on tokio's current-thread runtime, on libtest's thread for the test, and
//! each test has a thread of its own). Requests are still tagged with a client request id
//! and inspected by the span lines carrying it.

use crate::common;

use std::{cell::RefCell, time::Duration};

use common::{
    gate::{Gate, base, bounded},
    logs::LogBuffer,
    raw,
};
use gate_stp::{Client, ClientBuilder, Credentials, Error, ManualClock, RetryPolicy};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tracing_subscriber::fmt::format::FmtSpan;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, method, path},
};

const KEY: &str = "hygk-7f3a9c2e51d04b8e";
const SECRET: &str = "hyg-secret-0d9e8f7a6b5c4d3e2f1a-never-print";
const NOW: u64 = 1_700_000_000;

thread_local! {
    /// This thread's (this test's) capture and the guard keeping it the thread's default.
    static CAPTURE: RefCell<Option<(LogBuffer, tracing::subscriber::DefaultGuard)>> =
        const { RefCell::new(None) };
}

/// Everything logged so far by the calling test.
fn logs() -> String {
    // `log` records (reqwest, hyper-util) reach tracing only through the `log` bridge,
    // which is process-wide: installed once, with a global subscriber that keeps nothing,
    // so the bridge forwards each record to the default of the thread that logged it.
    // (It also keeps tracing's per-call-site cache from hiding events from a capture.)
    common::logs::install_global_registry();
    CAPTURE.with_borrow_mut(|capture| {
        let (buffer, _) = capture.get_or_insert_with(|| {
            let buffer = LogBuffer::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(buffer.clone())
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::FULL)
                .with_ansi(false)
                .finish();
            (buffer, tracing::subscriber::set_default(subscriber))
        });
        buffer.text()
    })
}

/// The log lines of the requests tagged with `request_id`.
fn lines_of(request_id: &str) -> Vec<String> {
    let marker = format!("client_request_id=\"{request_id}\"");
    logs()
        .lines()
        .filter(|l| l.contains(&marker))
        .map(str::to_owned)
        .collect()
}

fn builder(base: impl Into<String>) -> ClientBuilder {
    let _ = logs();
    Client::builder()
        .base_url(base)
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_secs(2))
}

/// The SIGN headers a wiremock server received.
async fn signs_received(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("SIGN")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect()
}

/// Fails if `text` shows the secret, any part of a SIGN sent, or more than
/// `Credentials::KEY_PREFIX_LEN` characters of the key.
fn assert_clean(what: &str, text: &str, signs: &[String]) {
    assert!(!text.contains(SECRET), "{what}: the secret leaked:\n{text}");
    assert!(
        !text.contains(&SECRET[..12]),
        "{what}: part of the secret leaked:\n{text}"
    );
    let key_part = &KEY[..Credentials::KEY_PREFIX_LEN + 1];
    assert!(
        !text.contains(key_part),
        "{what}: more of the key than its prefix leaked:\n{text}"
    );
    for sign in signs {
        assert_eq!(sign.len(), 128, "not a SIGN: {sign}");
        assert!(
            !text.contains(&sign[..16]),
            "{what}: a SIGN leaked:\n{text}"
        );
    }
}

/// Checks every rendering of an error: Display, alternate Display, Debug, pretty Debug and
/// the whole source chain.
fn assert_error_clean(error: &Error, signs: &[String]) {
    let mut texts = vec![
        error.to_string(),
        format!("{error:#}"),
        format!("{error:?}"),
        format!("{error:#?}"),
    ];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        texts.push(cause.to_string());
        texts.push(format!("{cause:?}"));
        source = cause.source();
    }
    for text in texts {
        assert_clean("error", &text, signs);
    }
}

/// Checks the logs and the renderings of the client; `request_id`'s span lines must show
/// the operation, the key prefix and `fields`.
fn assert_logged_cleanly(request_id: &str, fields: &[&str], client: &Client, signs: &[String]) {
    let lines = lines_of(request_id);
    assert!(
        !lines.is_empty(),
        "nothing logged for {request_id}:\n{}",
        logs()
    );
    let joined = lines.join("\n");
    for field in [
        "gate_stp.request",
        "operation=",
        r#"key="hygk""#,
        "latency_ms=",
    ]
    .iter()
    .chain(fields)
    {
        assert!(
            joined.contains(field),
            "{request_id}: {field} not logged:\n{joined}"
        );
    }
    assert_clean("logs", &logs(), signs);
    assert_clean("client Debug", &format!("{client:?}"), signs);
    assert_clean("client Debug", &format!("{client:#?}"), signs);
    assert_clean(
        "credentials",
        &format!("{:?}", client.credentials().unwrap()),
        signs,
    );
}

/// Answers like Gate: verifies the signature, then `body` with a trace id.
fn gate(body: serde_json::Value) -> Gate {
    Gate::new(KEY, SECRET, body).with_trace_id("trace-hyg")
}

#[tokio::test]
async fn success_paths() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v4/account/stp_groups"))
            .respond_with(gate(json!([{"id": 1, "name": "g"}])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v4/account/stp_groups"))
            .respond_with(gate(json!({"id": 2, "name": "desk"})))
            .mount(&server)
            .await;
        let client = builder(base(&server)).build().unwrap();
        let groups = client
            .list_groups()
            .client_request_id("hyg-ok")
            .await
            .unwrap();
        let created = client
            .create_group("desk")
            .client_request_id("hyg-create")
            .await
            .unwrap();
        let signs = signs_received(&server).await;
        assert_eq!(signs.len(), 2);
        assert_logged_cleanly(
            "hyg-ok",
            &["listSTPGroups", "attempt=1", "status=200", "trace-hyg"],
            &client,
            &signs,
        );
        assert_logged_cleanly(
            "hyg-create",
            &["createSTPGroup", "status=200"],
            &client,
            &signs,
        );
        assert_clean("response", &format!("{groups:?}{created:?}"), &signs);
        let builder = builder(base(&server));
        assert_clean("builder", &format!("{builder:?}"), &signs);
    })
    .await;
}

#[tokio::test]
async fn api_error_and_rate_limit() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(path("/api/v4/account/stp_groups/1/users"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"label": "INVALID_KEY", "message": "Invalid key"})),
            )
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(
                ResponseTemplate::new(429)
                    .set_body_json(json!({"label": "TOO_MANY_REQUESTS", "message": "slow down"}))
                    .insert_header("X-Gate-RateLimit-Requests-Remain", "0")
                    .insert_header("X-Gate-RateLimit-Limit", "150")
                    .insert_header(
                        "X-Gate-RateLimit-Reset-Timestamp",
                        (NOW + 5).to_string().as_str(),
                    ),
            )
            .mount(&server)
            .await;
        let client = builder(base(&server)).build().unwrap();
        let api = client
            .list_users(1)
            .client_request_id("hyg-401")
            .await
            .unwrap_err();
        let limited = client
            .list_groups()
            .client_request_id("hyg-429")
            .await
            .unwrap_err();
        assert!(matches!(api, Error::Api(_)), "{api:?}");
        assert!(matches!(limited, Error::RateLimited(_)), "{limited:?}");
        let signs = signs_received(&server).await;
        assert_eq!(signs.len(), 2);
        assert_logged_cleanly(
            "hyg-401",
            &["listSTPGroupsUsers", "status=401"],
            &client,
            &signs,
        );
        assert_logged_cleanly("hyg-429", &["status=429"], &client, &signs);
        assert_error_clean(&api, &signs);
        assert_error_clean(&limited, &signs);
    })
    .await;
}

#[tokio::test]
async fn retried_unexpected_bodies() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "text/html"),
            )
            .mount(&server)
            .await;
        let client = builder(base(&server))
            .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
            .build()
            .unwrap();
        let error = client
            .list_groups()
            .client_request_id("hyg-502")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::UnexpectedResponse(_)), "{error:?}");
        let signs = signs_received(&server).await;
        assert_eq!(signs.len(), 3);
        assert_logged_cleanly(
            "hyg-502",
            &["attempt=3", "status=502", "retrying"],
            &client,
            &signs,
        );
        assert_error_clean(&error, &signs);
    })
    .await;
}

#[tokio::test]
async fn timeout_and_transport_failures() {
    bounded(async {
        let silent = raw::serve(|stream, _| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        })
        .await;
        let client = builder(silent.base_url())
            .timeout(Duration::from_millis(400))
            .build()
            .unwrap();
        let timeout = client
            .list_groups()
            .client_request_id("hyg-timeout")
            .await
            .unwrap_err();
        assert!(matches!(timeout, Error::Timeout(_)), "{timeout:?}");
        let signs: Vec<String> = silent
            .requests()
            .iter()
            .map(|r| r.header("SIGN").unwrap().to_owned())
            .collect();
        assert_eq!(signs.len(), 1);
        assert_logged_cleanly("hyg-timeout", &["attempt=1"], &client, &signs);
        assert_error_clean(&timeout, &signs);

        // Reset mid-body, and nobody listening at all.
        let reset = raw::serve(|mut stream, _| async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n[{")
                .await;
            stream.set_zero_linger().unwrap();
        })
        .await;
        let client = builder(reset.base_url()).build().unwrap();
        let broken = client
            .list_groups()
            .client_request_id("hyg-reset")
            .await
            .unwrap_err();
        assert!(matches!(broken, Error::Transport(_)), "{broken:?}");
        let signs: Vec<String> = reset
            .requests()
            .iter()
            .map(|r| r.header("SIGN").unwrap().to_owned())
            .collect();
        assert_logged_cleanly("hyg-reset", &["status=200"], &client, &signs);
        assert_error_clean(&broken, &signs);

        let refused = raw::DeadPort::hold();
        let client = builder(refused.base_url()).build().unwrap();
        let error = client
            .list_groups()
            .client_request_id("hyg-refused")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert_logged_cleanly("hyg-refused", &["attempt=1"], &client, &[]);
        assert_error_clean(&error, &[]);
    })
    .await;
}

#[tokio::test]
async fn redirect_and_oversized_body() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(
                ResponseTemplate::new(307).insert_header("Location", "http://127.0.0.1:9/steal"),
            )
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups/1/users"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(vec![b' '; 10_000], "application/json"),
            )
            .mount(&server)
            .await;
        let client = builder(base(&server))
            .max_response_bytes(1000)
            .build()
            .unwrap();
        let redirect = client
            .list_groups()
            .client_request_id("hyg-redirect")
            .await
            .unwrap_err();
        let big = client
            .list_users(1)
            .client_request_id("hyg-big")
            .await
            .unwrap_err();
        assert!(matches!(redirect, Error::Redirect { .. }), "{redirect:?}");
        assert!(matches!(big, Error::BodyTooLarge { .. }), "{big:?}");
        let signs = signs_received(&server).await;
        assert_eq!(signs.len(), 2);
        assert_logged_cleanly("hyg-redirect", &["status=307"], &client, &signs);
        assert_logged_cleanly("hyg-big", &["status=200"], &client, &signs);
        assert_error_clean(&redirect, &signs);
        assert_error_clean(&big, &signs);
    })
    .await;
}

#[tokio::test]
async fn request_expired_and_resync() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(path("/api/v4/spot/time"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"server_time": (NOW + 300) * 1000})),
            )
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(
                    json!({"label": "REQUEST_EXPIRED", "message": "gap exceeds 60"}),
                ),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(gate(json!([])))
            .with_priority(2)
            .mount(&server)
            .await;
        let client = builder(base(&server)).build().unwrap();
        client
            .list_groups()
            .client_request_id("hyg-expired")
            .await
            .unwrap();
        let signs = signs_received(&server).await;
        assert_eq!(signs.len(), 2);
        assert_logged_cleanly(
            "hyg-expired",
            &[
                "REQUEST_EXPIRED",
                "attempt=2",
                "status=200",
                "getSystemTime",
            ],
            &client,
            &signs,
        );
    })
    .await;
}

#[tokio::test]
async fn missing_credentials_and_bad_input() {
    bounded(async {
        let server = MockServer::start().await;
        let anonymous = Client::builder().base_url(base(&server)).build().unwrap();
        let missing = anonymous.list_groups().await.unwrap_err();
        assert!(
            matches!(missing, Error::MissingCredentials { .. }),
            "{missing:?}"
        );
        assert_error_clean(&missing, &[]);
        assert_clean("anonymous client", &format!("{anonymous:?}"), &[]);

        let client = builder(base(&server)).build().unwrap();
        let invalid = client.add_users(1, &[1, 1]).await.unwrap_err();
        assert_error_clean(&invalid, &[]);
        let bad_key = Credentials::new(format!("{KEY}\n"), SECRET).unwrap_err();
        assert_error_clean(&bad_key, &[]);
        assert!(server.received_requests().await.unwrap().is_empty());
        assert_clean("logs", &logs(), &[]);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// reqwest's `connection_verbose` logs every byte written to the socket, headers included.
// A caller's own `reqwest::ClientBuilder` with it switched on must not make the client log
// `KEY` and `SIGN`.

const VERBOSE_KEY: &str = "verbose-logging-key";
const VERBOSE_SECRET: &str = "verbose-logging-secret";

#[tokio::test]
async fn a_verbose_http_client_builder_does_not_log_key_or_sign() {
    // This test's TRACE capture, `log` records bridged: reqwest logs its verbose
    // connection output through `log`.
    logs();
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
        logs().contains(marker),
        "the test no longer captures reqwest's verbose connection log"
    );

    let client = Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new(VERBOSE_KEY, VERBOSE_SECRET).unwrap())
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
    let text = logs();
    assert!(!text.contains(sign), "SIGN in the log:\n{text}");
    assert!(!text.contains(VERBOSE_SECRET), "secret in the log:\n{text}");
    assert!(!text.contains(VERBOSE_KEY), "full KEY in the log:\n{text}");
}
