//! `gate-stp mcp` driven with raw JSON-RPC lines on its stdin, as a client no one here
//! wrote would send them: malformed lines get a JSON-RPC error with the right code and id,
//! bad tool arguments get a tool result the model reads (`isError: true`), naming the
//! argument.
//!
//! No call here reaches Gate: the server points at a port nothing listens on, and every
//! call that is answered is refused before a request would be sent.
#![cfg(feature = "cli")]

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
};

/// A `gate-stp mcp` child and its two pipes.
pub(crate) struct Raw {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Messages read while waiting for another id.
    early: Vec<Value>,
    /// The server's plans folder, removed with it.
    _plans: crate::common::Scratch,
}

impl Raw {
    /// Starts `gate-stp mcp FLAGS` with `env` added; nothing is sent yet.
    pub(crate) fn start_with(flags: &[&str], env: &[(&str, &str)]) -> Self {
        let plans = crate::common::fresh_dir("mcp-raw").file("plans");
        let mut command = tokio::process::Command::from(crate::common::cli::gate_stp());
        command
            .arg("mcp")
            .args(flags)
            .env("GATE_BASE_URL", "http://127.0.0.1:9/api/v4")
            .env("GATE_API_KEY", "raw-key-0123456789")
            .env("GATE_API_SECRET", "raw-secret-abcdefghij")
            .env("GATE_STP_PLANS_DIR", plans.as_os_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
            early: Vec::new(),
            _plans: plans,
        }
    }

    /// Starts the server and initializes a 2025-11-25 session.
    pub(crate) async fn initialized(flags: &[&str]) -> Self {
        let mut raw = Self::start_with(flags, &[]);
        raw.send(&json!({
            "jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}
            }
        }))
        .await;
        let answer = raw.answer_to(&json!("init")).await;
        assert!(answer.get("result").is_some(), "{answer}");
        raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        raw
    }

    pub(crate) async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    pub(crate) async fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string()).await;
    }

    /// The next message on stdout, within 20 s.
    pub(crate) async fn next(&mut self) -> Value {
        if !self.early.is_empty() {
            return self.early.remove(0);
        }
        let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
            .await
            .expect("no answer within 20 s")
            .unwrap()
            .expect("stdout closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {line}"))
    }

    /// The answer to the request with `id` (other messages are kept for `next`).
    pub(crate) async fn answer_to(&mut self, id: &Value) -> Value {
        if let Some(at) = self.early.iter().position(|m| m.get("id") == Some(id)) {
            return self.early.remove(at);
        }
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to {id} within 20 s"))
                .unwrap()
                .expect("stdout closed");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("id") == Some(id) {
                return message;
            }
            self.early.push(message);
        }
    }

    /// Sends a request with `id` and returns its answer.
    pub(crate) async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.answer_to(&json!(id)).await
    }

    /// A tool call's result (which must be a result, not a JSON-RPC error).
    pub(crate) async fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        let answer = self
            .request(
                id,
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
            )
            .await;
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{tool}: not a result: {answer}"))
    }

    pub(crate) async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// `answer` is a JSON-RPC error with `code`, an `id` member equal to `id` (`null`
/// included: the member must be there), and a message containing each of `words`.
#[track_caller]
fn assert_error(answer: &Value, id: &Value, code: i64, words: &[&str]) {
    let object = answer.as_object().expect("an object");
    assert_eq!(object.get("jsonrpc"), Some(&json!("2.0")), "{answer}");
    assert_eq!(object.get("id"), Some(id), "the id member: {answer}");
    assert_eq!(answer["error"]["code"], json!(code), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
}

/// The text of a tool result that must be an error.
#[track_caller]
fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], json!(true), "{result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_that_is_not_json_gets_a_parse_error_with_a_null_id_and_the_session_goes_on() {
    let mut raw = Raw::initialized(&[]).await;
    for line in [
        "this is not json",
        "{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ",
        "\u{1b}[2J",
    ] {
        raw.send_line(line).await;
        let answer = raw.next().await;
        assert_error(&answer, &Value::Null, -32700, &["Parse error", "not JSON"]);
        assert!(
            !answer.to_string().contains('\u{1b}'),
            "raw escape: {answer}"
        );
    }
    // An empty line is no message and gets no answer; the session still answers.
    raw.send_line("").await;
    let pong = raw.request(7, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}), "{pong}");
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_that_is_not_one_request_object_is_an_invalid_request() {
    let mut raw = Raw::initialized(&[]).await;
    for (line, id, words) in [
        ("[1, 2]", Value::Null, &["batch"][..]),
        ("42", Value::Null, &["JSON object"][..]),
        (
            r#"{"jsonrpc": "2.0", "id": [1], "method": "ping"}"#,
            Value::Null,
            &["\"id\" must be a string or an integer"][..],
        ),
        (
            r#"{"id": 3, "method": "ping"}"#,
            json!(3),
            &["\"jsonrpc\" must be \"2.0\""][..],
        ),
        (
            r#"{"jsonrpc": "2.0", "id": 4, "method": 12}"#,
            json!(4),
            &["\"method\" must be a string"][..],
        ),
        (
            r#"{"jsonrpc": "2.0", "id": 6}"#,
            json!(6),
            &["Invalid Request"][..],
        ),
    ] {
        raw.send_line(line).await;
        let answer = raw.next().await;
        assert_error(&answer, &id, -32600, words);
    }
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_is_not_a_valid_tools_call_is_invalid_params_with_its_id() {
    let mut raw = Raw::initialized(&[]).await;
    let answer = raw
        .request(
            2,
            "tools/call",
            json!({"name": "list_members", "arguments": [1]}),
        )
        .await;
    assert_error(
        &answer,
        &json!(2),
        -32602,
        &["\"arguments\"", "JSON object", "not an array"],
    );
    let answer = raw.request(3, "tools/call", json!({"arguments": {}})).await;
    assert_error(&answer, &json!(3), -32602, &["\"name\"", "tools/list"]);
    let answer = raw.request(4, "tools/list", json!(5)).await;
    assert_error(
        &answer,
        &json!(4),
        -32602,
        &["\"tools/list\"", "JSON object"],
    );
    // A call whose other params do not fit: the detail says which.
    let answer = raw
        .request(
            6,
            "tools/call",
            json!({"name": "account", "arguments": {}, "requestState": 5}),
        )
        .await;
    assert_error(
        &answer,
        &json!(6),
        -32602,
        &[
            "the params of \"tools/call\" do not match",
            "invalid type: integer `5`",
        ],
    );
    // A protocol method whose params do not fit it: rmcp would call it unknown.
    let answer = raw.request(5, "initialize", json!({})).await;
    assert_error(
        &answer,
        &json!(5),
        -32602,
        &[
            "the params of \"initialize\" do not match",
            "missing field `protocolVersion`",
        ],
    );
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tools_and_methods_are_protocol_errors_that_say_so() {
    let mut raw = Raw::initialized(&[]).await;
    let answer = raw
        .request(
            2,
            "tools/call",
            json!({"name": "drop_everything", "arguments": {}}),
        )
        .await;
    assert_error(&answer, &json!(2), -32602, &["unknown tool", "tools/list"]);
    let answer = raw.request(3, "groups/delete", json!({})).await;
    assert_error(
        &answer,
        &json!(3),
        -32601,
        &["Method not found", "\"groups/delete\"", "tools/call"],
    );
    // An unknown method stays unknown whatever its params: not "params must be an object".
    let answer = raw.request(4, "groups/delete", json!([1])).await;
    assert_error(&answer, &json!(4), -32601, &["Method not found"]);
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_and_large_integer_ids_are_ids() {
    // JSON-RPC allows any integer id: a negative one is answered with itself, not refused
    // as "not a string or an integer". (One above i64::MAX passes our screen but rmcp's
    // ids are i64: it gets -32600 with its id.)
    let mut raw = Raw::initialized(&[]).await;
    for id in [json!(-7), json!(i64::MIN)] {
        raw.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}))
            .await;
        let answer = raw.answer_to(&id).await;
        assert!(answer.get("error").is_none(), "{answer}");
        assert!(answer["result"]["tools"].is_array(), "{answer}");
    }
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_before_initialize_says_to_initialize_first() {
    let mut raw = Raw::start_with(&[], &[]);
    let answer = raw
        .request(1, "tools/call", json!({"name": "account", "arguments": {}}))
        .await;
    assert_error(
        &answer,
        &json!(1),
        -32600,
        &["before the session started", "initialize first", "_meta"],
    );
    // A malformed notification gets no answer: the next message is the ping's.
    raw.send_line(r#"{"jsonrpc": "2.0", "method": "notifications/x", "params": 5}"#)
        .await;
    let pong = raw.request(2, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    assert!(raw.early.is_empty(), "{:?}", raw.early);
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_tool_errors_naming_the_argument_and_what_it_takes() {
    let mut raw = Raw::initialized(&["--allow-apply"]).await;
    let cases = [
        (
            "list_members",
            json!({"stp_id": "one"}),
            &[
                "invalid arguments for list_members",
                "`stp_id`",
                "expected i64",
            ][..],
        ),
        ("list_members", json!({}), &["missing field `stp_id`"][..]),
        (
            "list_members",
            json!({"stp_id": 0}),
            &["`stp_id`", "1 or more", "got 0"][..],
        ),
        (
            "list_members",
            json!({"stp_id": 7, "group": 1}),
            &["unknown field `group`"][..],
        ),
        (
            "account",
            json!({"unexpected": 1}),
            &["unknown field `unexpected`"][..],
        ),
        (
            "plan",
            json!({"document": "x", "format": "yaml"}),
            &["`format`", "unknown variant `yaml`", "toml"][..],
        ),
        ("plan", json!({"document": 12}), &["`document`"][..]),
        (
            "apply",
            json!({"digest": "xyz"}),
            &["`digest`", "64 lowercase hex digits", "3 characters"][..],
        ),
        (
            "apply",
            json!({"digest": "AB".repeat(32)}),
            &["`digest`", "64 lowercase hex digits"][..],
        ),
    ];
    for (id, (tool, arguments, words)) in (10..).zip(cases) {
        let text = error_text(&raw.call(id, tool, arguments).await);
        for word in words {
            assert!(text.contains(word), "{tool}: {word:?} not in {text:?}");
        }
        assert!(text.contains(&format!("call {tool} again")), "{text}");
    }
    // A missing `arguments` is an empty object: the tool's own check answers.
    let answer = raw
        .request(30, "tools/call", json!({"name": "list_members"}))
        .await;
    let text = error_text(&answer["result"]);
    assert!(text.contains("missing field `stp_id`"), "{text}");
    raw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_longer_than_the_limit_is_refused_and_skipped() {
    let raw = Raw::initialized(&[]).await;
    // Past the 16 MiB limit, written while the answer is read (a pipe holds less).
    let long = format!("{{\"pad\": \"{}\"}}", "x".repeat(16 * 1024 * 1024 + 10));
    let mut stdin = raw.stdin;
    let writer = tokio::spawn(async move {
        stdin.write_all(long.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
        stdin
    });
    let Raw {
        child,
        stdout,
        early,
        _plans,
        ..
    } = raw;
    let mut rest = Raw {
        child,
        stdin: writer.await.unwrap(),
        stdout,
        early,
        _plans,
    };
    let answer = rest.next().await;
    assert_error(&answer, &Value::Null, -32600, &["longer than"]);
    let pong = rest.request(9, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    rest.stop().await;
}
