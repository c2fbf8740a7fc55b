//! `gate-stp mcp --http`: the same server over Streamable HTTP, driven by rmcp's HTTP
//! client (plan and apply by digest) and by raw requests for what must be refused: no or
//! a wrong token, a foreign `Origin`, an oversized body, more calls than allowed at once,
//! a non-loopback address, no token configured.
#![cfg(feature = "cli")]

use std::{process::Stdio, time::Duration};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::mcp::{DESK, MAIN_KEY, MAIN_SECRET, digest_of, emulator};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-test";

/// A `gate-stp mcp --http 127.0.0.1:0 FLAGS` child and the URL it serves.
struct Http {
    child: tokio::process::Child,
    url: String,
    /// What the server wrote to stderr.
    stderr: tokio::task::JoinHandle<String>,
    /// The server's plans folder, removed with it.
    _plans: crate::common::Scratch,
}

async fn serve_http(base_url: &str, flags: &[&str]) -> Http {
    serve_http_logging(base_url, flags, "warn").await
}

async fn serve_http_logging(base_url: &str, flags: &[&str], log: &str) -> Http {
    let plans = crate::common::fresh_dir("mcp-http").file("plans");
    let mut command = tokio::process::Command::from(crate::common::cli::gate_stp());
    command
        .args(["mcp", "--http", "127.0.0.1:0"])
        .args(flags)
        .env("GATE_BASE_URL", base_url)
        .env("GATE_API_KEY", MAIN_KEY)
        .env("GATE_API_SECRET", MAIN_SECRET)
        .env("GATE_STP_MCP_TOKEN", TOKEN)
        .env("GATE_STP_PLANS_DIR", plans.as_os_str())
        .env("RUST_LOG", log)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut early = String::new();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            early.push_str(&line);
            early.push('\n');
            if let Some(at) = line.find("http://") {
                return line[at..].trim().to_owned();
            }
        }
        panic!("the server ended before serving");
    })
    .await
    .expect("the server serves within 30 s");
    // Keep reading stderr (a full pipe would block the server), the first lines included.
    let stderr = tokio::spawn(async move {
        let mut text = early;
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    Http {
        child,
        url,
        stderr,
        _plans: plans,
    }
}

/// The status line the server answers to a POST that declares a body of `declared` bytes
/// and sends `sent` of them (none, for a body refused by its declared size alone; a short
/// one: a short wait for the rest, then the connection closes).
async fn status_after(url: &str, declared: usize, sent: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut socket = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(sent).await.unwrap();
    let mut answer = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

fn client_with(url: &str, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    )
}

/// Plans [`DESK`] over `session` and applies the digest the plan answered; apply's result.
async fn plan_and_apply<H: ClientHandler>(
    session: &RunningService<RoleClient, H>,
) -> CallToolResult {
    let call = |tool: &str, arguments: serde_json::Value| {
        CallToolRequestParams::new(tool.to_owned())
            .with_arguments(arguments.as_object().unwrap().clone())
    };
    let planned = session
        .call_tool(call("plan", json!({"document": DESK})))
        .await
        .unwrap();
    let digest = digest_of(planned.structured_content.as_ref().unwrap());
    session
        .call_tool(call("apply", json!({"digest": digest})))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rmcp_s_http_client_plans_and_applies_with_the_token() {
    let emulator = emulator().await;
    let mut http = serve_http_logging(&emulator.base_url(), &["--allow-apply"], "trace").await;
    let session = ().serve(client_with(&http.url, TOKEN)).await.unwrap();
    let tools = session.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 6);
    let applied = plan_and_apply(&session).await;
    assert_ne!(applied.is_error, Some(true), "{applied:?}");
    assert_eq!(emulator.groups().len(), 1);
    let _ = session.cancel().await;
    let _ = http.child.kill().await;
    // Neither the token nor the secret reaches the log, even at TRACE (the control: the
    // log has the requests).
    let log = http.stderr.await.unwrap();
    assert!(log.contains("TRACE"), "no trace output");
    assert!(!log.contains(TOKEN), "the token is in the log");
    assert!(!log.contains(MAIN_SECRET), "the secret is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_a_wrong_token_a_foreign_origin_and_an_oversized_body_are_refused() {
    let emulator = emulator().await;
    let mut http = serve_http(&emulator.base_url(), &[]).await;
    // rmcp's client with a wrong token does not get a session.
    let wrong = ().serve(client_with(&http.url, "not-the-token-0123456789abcdefghij")).await;
    assert!(wrong.is_err(), "a session with a wrong token");

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}
    });
    let raw = reqwest::Client::new();
    let post = |body: String| {
        raw.post(&http.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    let no_token = post(initialize.to_string()).send().await.unwrap();
    assert_eq!(status(no_token), 401);
    let wrong = post(initialize.to_string())
        .bearer_auth("x".repeat(40))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    assert_eq!(status(wrong), 401);
    let foreign = post(initialize.to_string())
        .bearer_auth(TOKEN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(status(foreign), 403);
    let rebinding = post(initialize.to_string())
        .bearer_auth(TOKEN)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(status(rebinding), 403);
    // A body declared larger than 8 MiB is refused before it is sent: the headers alone
    // get the answer (over a raw connection, so that the client does not race to send).
    const LIMIT: usize = 8 * 1024 * 1024;
    let oversized = status_after(&http.url, LIMIT + 1, b"").await;
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    let small = status_after(&http.url, 10, b"{}        ").await;
    assert!(!small.starts_with("HTTP/1.1 413"), "{small}");
    // A body of exactly the limit is read (and answered as what it is: no request).
    let mut at_limit = b"{}".to_vec();
    at_limit.resize(LIMIT, b' ');
    let read = status_after(&http.url, LIMIT, &at_limit).await;
    assert!(read.starts_with("HTTP/1.1 "), "{read}");
    assert!(!read.starts_with("HTTP/1.1 413"), "{read}");
    // The control: the same request with the token and no Origin is served.
    let served = post(initialize.to_string())
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(status(served), 200);
    let _ = http.child.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_past_the_concurrent_limit_are_answered_429() {
    // A "Gate" that accepts connections and never answers: a call hangs until its timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/api/v4", silent.local_addr().unwrap());
    let (reached, mut gate_reached) = tokio::sync::mpsc::unbounded_channel();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
            let _ = reached.send(());
        }
    });
    let mut http = serve_http(&base_url, &["--http-max-concurrent", "1", "--timeout", "2"]).await;
    let first = ().serve(client_with(&http.url, TOKEN)).await.unwrap();
    let hanging = tokio::spawn(async move {
        let result = first.call_tool(CallToolRequestParams::new("account")).await;
        (first, result)
    });
    // The first call is in flight once the server's request reached the silent "Gate".
    tokio::time::timeout(Duration::from_secs(20), gate_reached.recv())
        .await
        .expect("the call reaches Gate");
    let raw = reqwest::Client::new()
        .post(&http.url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 429);
    let (_session, result) = hanging.await.unwrap();
    let result = result.unwrap();
    assert_eq!(
        result.is_error,
        Some(true),
        "Gate never answered: {result:?}"
    );
    let _ = http.child.kill().await;
}

#[test]
fn a_non_loopback_address_or_no_token_does_not_start() {
    let run = |args: &[&str], token: Option<&str>| {
        let plans = crate::common::fresh_dir("mcp-http").file("plans");
        let mut command = crate::common::cli::gate_stp();
        command
            .arg("mcp")
            .args(args)
            .env("GATE_BASE_URL", "http://127.0.0.1:9/api/v4")
            .env("GATE_API_KEY", MAIN_KEY)
            .env("GATE_API_SECRET", MAIN_SECRET)
            .env("GATE_STP_PLANS_DIR", plans.as_os_str());
        if let Some(token) = token {
            command.env("GATE_STP_MCP_TOKEN", token);
        }
        command.output().unwrap()
    };
    let remote = run(&["--http", "0.0.0.0:0"], Some(TOKEN));
    assert_eq!(remote.status.code(), Some(2), "{remote:?}");
    assert!(String::from_utf8_lossy(&remote.stderr).contains("only a loopback address"));
    let tokenless = run(&["--http", "127.0.0.1:0"], None);
    assert_eq!(tokenless.status.code(), Some(2), "{tokenless:?}");
    let stderr = String::from_utf8_lossy(&tokenless.stderr);
    assert!(stderr.contains("needs a bearer token"), "{stderr}");
    let short = run(&["--http", "127.0.0.1:0"], Some("short"));
    assert_eq!(short.status.code(), Some(2), "{short:?}");
    // The token is never a flag value: there is no flag for it.
    let flag = run(
        &["--http", "127.0.0.1:0", "--http-token", TOKEN],
        Some(TOKEN),
    );
    assert_eq!(flag.status.code(), Some(2), "{flag:?}");
    assert!(!String::from_utf8_lossy(&flag.stderr).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_the_operator_allows_is_served_and_no_other() {
    let emulator = emulator().await;
    let mut http = serve_http(
        &emulator.base_url(),
        &[
            "--http-allow-origin",
            "http://localhost:3000, http://127.0.0.1:5173",
        ],
    )
    .await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}
    });
    let raw = reqwest::Client::new();
    for (origin, expected) in [
        ("http://localhost:3000", 200),
        ("http://127.0.0.1:5173", 200),
        ("http://localhost:3001", 403),
        ("https://localhost:3000", 403),
    ] {
        let status = raw
            .post(&http.url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("origin", origin)
            .body(initialize.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, expected, "{origin}");
    }
    let _ = http.child.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_json_or_not_a_valid_call_is_answered_as_on_stdio() {
    let emulator = emulator().await;
    let mut http = serve_http(&emulator.base_url(), &[]).await;
    let raw = reqwest::Client::new();
    let post = |body: &str| {
        raw.post(&http.url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned())
            .send()
    };
    let answer = post("this is not json").await.unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["error"]["code"], json!(-32700), "{answer}");
    assert!(answer.as_object().unwrap().contains_key("id") && answer["id"].is_null());
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "list_members", "arguments": [1]}});
    let answer: serde_json::Value = post(&call.to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["id"], json!(5), "{answer}");
    assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
    let _ = http.child.kill().await;
}

/// Over HTTP too, a 2026-07-28 client (server/discover, no session) is asked to confirm
/// through the `input_required` round trip, and a yes applies.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_client_over_http_confirms_through_the_round_trip() {
    use rmcp::{
        model::{ElicitationAction, ProtocolVersion},
        service::{ClientLifecycleMode, ClientServiceExt},
    };
    let emulator = emulator().await;
    let mut http = serve_http(&emulator.base_url(), &["--allow-apply"]).await;
    let client = super::mcp::asking(ProtocolVersion::V_2026_07_28, ElicitationAction::Accept);
    let questions = client.questions.clone();
    let session = client
        .serve_with_lifecycle(
            client_with(&http.url, TOKEN),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let applied = plan_and_apply(&session).await;
    assert_ne!(applied.is_error, Some(true), "{applied:?}");
    assert_eq!(questions.lock().await.len(), 1);
    assert_eq!(emulator.groups().len(), 1);
    let _ = session.cancel().await;
    let _ = http.child.kill().await;
}
