//! What the `gate-stp` binary prints: hostile server text escaped on every path, readable
//! times, empty tables, cause chains of transport errors, quiet ends on a closed pipe.
#![cfg(feature = "cli")]

use std::process::{Command, Output, Stdio};

use gate_stp::mock::{Emulator, EmulatorConfig, World, demo};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::common::cli::gate_stp;

/// `gate-stp` pointed at `base_url` with throwaway credentials.
fn client_of(base_url: &str) -> Command {
    let mut command = gate_stp();
    command
        .env("GATE_BASE_URL", base_url)
        .env("GATE_API_KEY", "k")
        .env("GATE_API_SECRET", "s");
    command
}

/// Runs a client command (its arguments given) with a short timeout.
async fn run(mut command: Command) -> Output {
    command.args(["--timeout", "5"]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Nothing a terminal interprets: no control character other than the line ends, no
/// bidi override, no line separator.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}: {bytes:?}"));
    for c in text.chars() {
        let control = c.is_control() && c != '\n';
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        let separator = matches!(c, '\u{2028}' | '\u{2029}');
        assert!(
            !(control || bidi || separator),
            "{what} carries {c:?} raw: {text:?}"
        );
    }
}

/// A group name that would clear the screen, set the window title, ring the bell, go back
/// to the start of the line, end a C string, reverse the text and run very long.
fn hostile_name() -> String {
    format!(
        "desk\u{1b}[2J\u{1b}]0;owned\u{7}\rX\0\u{9b}31m\u{202e}lanigiro\u{2066}{}",
        "y".repeat(500)
    )
}

async fn serve(route: &str, template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn api(server: &MockServer) -> String {
    format!("{}/api/v4", server.uri())
}

#[tokio::test]
async fn hostile_group_names_are_escaped_in_tables_and_exact_in_json() {
    let name = hostile_name();
    let body = json!([{"id": 7, "name": name, "creator_id": 10000, "create_time": 1_548_000_000}]);
    let server = serve(
        "/api/v4/account/stp_groups",
        ResponseTemplate::new(200).set_body_json(&body),
    )
    .await;

    let mut table = client_of(&api(&server));
    table.args(["groups", "list"]);
    let output = run(table).await;
    assert!(output.status.success(), "{output:?}");
    assert_terminal_safe("the table", &output.stdout);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(r"desk\x1b[2J\x1b]0;owned\x07\x0dX\x00\u{9b}31m\u{202e}lanigiro\u{2066}"),
        "{text}"
    );
    // Cut to 64 characters, the cut said.
    assert!(text.contains("more characters)"), "{text}");
    assert!(!text.contains(&"y".repeat(100)), "{text}");
    // Times in UTC ISO 8601 (`date -u -d @1548000000`).
    assert!(text.contains("2019-01-20T16:00:00Z"), "{text}");
    assert!(text.starts_with("ID  "), "{text}");

    let mut as_json = client_of(&api(&server));
    as_json.args(["groups", "list", "--json"]);
    let output = run(as_json).await;
    assert!(output.status.success(), "{output:?}");
    // Valid JSON with the exact name, and still nothing raw for the terminal: serde_json
    // would write C1 controls and bidi overrides as they are.
    assert_terminal_safe("the JSON", &output.stdout);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value[0]["name"], name.as_str());
    assert_eq!(value[0]["create_time"], 1_548_000_000);
}

#[tokio::test]
async fn hostile_gate_errors_are_escaped_on_one_line() {
    let message = format!(
        "bad\u{1b}[31m red\u{7}\r\nsecond line\0{}",
        "m".repeat(5000)
    );
    let server = serve(
        "/api/v4/account/stp_groups",
        ResponseTemplate::new(400)
            .set_body_json(json!({"label": "ODD\u{1b}[5mLABEL", "message": message})),
    )
    .await;
    let mut command = client_of(&api(&server));
    command.args(["groups", "list"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert_terminal_safe("the error line", &output.stderr);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(r"error: ODD\x1b[5mLABEL: bad\x1b[31m red\x07\x0d\x0asecond line\x00"),
        "{stderr}"
    );
    // A 5000-character message is cut, and says so.
    assert!(stderr.chars().count() < 2200, "{}", stderr.len());
    assert!(stderr.contains("more characters)"), "{stderr}");
}

#[tokio::test]
async fn hostile_detail_is_escaped() {
    let server = serve(
        "/api/v4/account/stp_groups",
        ResponseTemplate::new(403)
            .set_body_json(json!({"label": "FORBIDDEN", "detail": "no\u{1b}]52;c;cHduZWQ=\u{7}"})),
    )
    .await;
    let mut command = client_of(&api(&server));
    command.args(["groups", "list"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert_terminal_safe("the error line", &output.stderr);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(r"FORBIDDEN: no\x1b]52;c;cHduZWQ=\x07"),
        "{stderr}"
    );
}

#[tokio::test]
async fn invalid_utf8_and_escapes_in_an_unexpected_body_are_escaped() {
    // A JSON string with bytes that are not UTF-8 and a raw escape: not a valid body.
    let mut body = br#"{"label":"X","message":"a"#.to_vec();
    body.extend_from_slice(b"\xff\xfe\x1b[2J\"}");
    let server = serve(
        "/api/v4/account/stp_groups",
        ResponseTemplate::new(400).set_body_raw(body, "application/json"),
    )
    .await;
    let mut command = client_of(&api(&server));
    command.args(["groups", "list"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert_terminal_safe("the error line", &output.stderr);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unexpected response: HTTP 400"), "{stderr}");
    assert!(stderr.contains(r"\x1b[2J"), "{stderr}");
}

#[tokio::test]
async fn a_redirect_location_is_escaped() {
    // A header value can carry a tab (and nothing rawer); it must not reach the line as is.
    let server = serve(
        "/api/v4/account/stp_groups",
        ResponseTemplate::new(302).insert_header("location", "https://evil.example/\tx"),
    )
    .await;
    let mut command = client_of(&api(&server));
    command.args(["groups", "list"]);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert_terminal_safe("the error line", &output.stderr);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(r"redirect to https://evil.example/\x09x not followed"),
        "{stderr}"
    );
}

#[tokio::test]
async fn empty_tables_say_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups/7/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let mut groups = client_of(&api(&server));
    groups.args(["groups", "list"]);
    let output = run(groups).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "(no groups)\n");
    let mut users = client_of(&api(&server));
    users.args(["users", "list", "7"]);
    let output = run(users).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "(no members)\n");
    let mut as_json = client_of(&api(&server));
    as_json.args(["users", "list", "7", "--json"]);
    let output = run(as_json).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "[]\n");
}

#[tokio::test]
async fn member_and_clock_times_are_iso8601() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups/7/users"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!([{"user_id": 10001, "stp_id": 7, "create_time": 951_782_400}]),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/spot/time"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"server_time": 1_548_000_000_123i64})),
        )
        .mount(&server)
        .await;
    let mut users = client_of(&api(&server));
    users.args(["users", "list", "7"]);
    let text = String::from_utf8(run(users).await.stdout).unwrap();
    assert!(text.contains("2000-02-29T00:00:00Z"), "{text}");
    let mut time = client_of(&api(&server));
    time.arg("time");
    let output = run(time).await;
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("server time:  2019-01-20T16:00:00.123Z"),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn files_with_control_characters_are_escaped_in_errors() {
    let dir = crate::common::fresh_dir("cli-output");
    let world = dir.join("world\u{1b}[2J.toml");
    std::fs::write(&world, "[[accounts]]\nkey = \"\u{1b}]0;owned\u{7}\n").unwrap();
    let output = gate_stp()
        .args(["mock", "--listen", "127.0.0.1:0", "--accounts"])
        .arg(&world)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_terminal_safe("the error", &output.stderr);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(r"world\x1b[2J.toml"),
        "{output:?}"
    );
}

#[test]
fn transport_errors_say_why_in_one_line() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = client_of(&format!("http://127.0.0.1:{port}/api/v4"))
        .args(["groups", "list", "--timeout", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("error sending request"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

#[test]
fn a_proxy_that_hangs_up_is_named_as_the_cause() {
    // A proxy that accepts and closes at once: no network, no name resolution needed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let output = client_of("https://api.gateio.ws/api/v4")
        .env("HTTPS_PROXY", &proxy)
        .args(["groups", "list", "--timeout", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("error sending request"), "{stderr}");
    assert!(stderr.contains("tunnel"), "{stderr}");
}

/// Needs a resolver that fails `.invalid` names at once (RFC 6761 says they never
/// resolve); some sandboxes forward them and hang until the timeout instead.
#[test]
#[ignore = "depends on the machine's resolver"]
fn an_unknown_host_is_named_as_a_dns_failure() {
    let output = client_of("https://nonexistent.invalid/api/v4")
        .args(["groups", "list", "--timeout", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("dns error"), "{stderr}");
}

/// Runs `command` with stdout a pipe whose reading end is already closed.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn assert_quiet_end(what: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    #[cfg(unix)]
    let by_sigpipe = std::os::unix::process::ExitStatusExt::signal(&output.status) == Some(13);
    #[cfg(not(unix))]
    let by_sigpipe = false;
    assert!(
        output.status.code() == Some(0) || output.status.code() == Some(141) || by_sigpipe,
        "{what}: {:?} {stderr}",
        output.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_every_command_quietly() {
    let emulator = Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .unwrap();
    let base_url = emulator.base_url();
    let main = move |args: &[&str]| {
        let mut command = gate_stp();
        command
            .env("GATE_BASE_URL", &base_url)
            .env("GATE_API_KEY", demo::MAIN_KEY)
            .env("GATE_API_SECRET", demo::MAIN_SECRET)
            .args(args);
        command
    };
    let create = main(&["groups", "create", "pipe desk"]);
    let output = tokio::task::spawn_blocking(move || with_closed_stdout(create))
        .await
        .unwrap();
    assert_quiet_end("groups create", &output);
    // The early end lost nothing: the group exists.
    let mut list = main(&["groups", "list", "--name", "pipe desk", "--json"]);
    let listed = tokio::task::spawn_blocking(move || list.output().unwrap())
        .await
        .unwrap();
    let groups: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = groups[0]["id"].as_i64().unwrap().to_string();

    let commands: Vec<(&str, Command)> = vec![
        ("groups list", main(&["groups", "list"])),
        ("groups list --json", main(&["groups", "list", "--json"])),
        ("users add", main(&["users", "add", &id, "10001", "10002"])),
        ("users list", main(&["users", "list", &id])),
        ("users remove", main(&["users", "remove", &id, "10002"])),
        ("time", main(&["time"])),
        ("sign", {
            let mut sign = gate_stp();
            sign.args(["sign", "--secret", "s", "--method", "GET", "--path", "/"]);
            sign
        }),
        ("demo", main(&["demo"])),
        ("profiles", main(&["profiles"])),
        ("completions", main(&["completions", "bash"])),
        ("man", main(&["man"])),
        ("--help", main(&["--help"])),
        ("groups list --help", main(&["groups", "list", "--help"])),
        ("--version", main(&["--version"])),
        ("export", main(&["export"])),
    ];
    for (what, command) in commands {
        let output = tokio::task::spawn_blocking(move || with_closed_stdout(command))
            .await
            .unwrap();
        assert_quiet_end(what, &output);
    }
    // Add and remove went through although nobody read their answer.
    assert_eq!(
        emulator.members(id.parse().unwrap()),
        Some(vec![demo::SUB_USER])
    );
    // plan and apply on a file that moves the sub-account back out of the group.
    let file = crate::common::fresh_dir("pipe").file("stp.toml");
    std::fs::write(
        &file,
        format!(
            "main_user_id = {}\n[[group]]\nname = \"pipe desk\"\nid = {id}\nmembers = []\n",
            demo::MAIN_USER
        ),
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    for (what, command) in [
        ("plan", main(&["plan", file_arg])),
        ("apply", main(&["apply", file_arg, "--yes"])),
    ] {
        let output = tokio::task::spawn_blocking(move || with_closed_stdout(command))
            .await
            .unwrap();
        assert_quiet_end(what, &output);
    }
    // The apply ran to the end although its report had no reader.
    assert_eq!(emulator.members(id.parse().unwrap()), Some(vec![]));
}

/// Output that cannot be written for another reason than a closed pipe (here a full
/// device) is an error with its own exit code, not 1 (`plan --exit-code`'s "changes").
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_to_stdout_exits_6() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = gate_stp()
        .args(["completions", "bash"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
}

/// An apply whose report cannot be written (a full device, not a closed pipe) still
/// finishes its changes, and then exits 6: the work is whole, the report was lost.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn an_apply_whose_stdout_fails_finishes_and_exits_6() {
    let emulator = Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .unwrap();
    let file = crate::common::fresh_dir("full").file("stp.toml");
    std::fs::write(
        &file,
        format!(
            "main_user_id = {}\n[[group]]\nname = \"full desk\"\nmembers = [{}]\n",
            demo::MAIN_USER,
            demo::SUB_USER
        ),
    )
    .unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut apply = gate_stp();
    apply
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET)
        .args(["apply", file.to_str().unwrap(), "--yes"])
        .stdout(full)
        .stderr(Stdio::piped());
    let output = run(apply).await;
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    // Both steps were sent although the first line of the report already failed.
    let groups = emulator.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        emulator.members(groups[0].id.unwrap()),
        Some(vec![demo::SUB_USER])
    );
}

/// `gate-stp time` against an emulator whose clock is `offset_ms` off this machine's: the
/// JSON offset and the sentence for people.
async fn time_with_offset(offset_ms: i64) -> (Value, String) {
    let emulator = Emulator::start(
        World::demo(),
        EmulatorConfig::default().clock_offset_ms(offset_ms),
    )
    .await
    .unwrap();
    let main = |json: bool| {
        let mut command = gate_stp();
        command
            .env("GATE_BASE_URL", emulator.base_url())
            .env("GATE_API_KEY", demo::MAIN_KEY)
            .env("GATE_API_SECRET", demo::MAIN_SECRET)
            .arg("time");
        if json {
            command.arg("--json");
        }
        command
    };
    let json = run(main(true)).await;
    assert!(json.status.success(), "{json:?}");
    let text = run(main(false)).await;
    assert!(text.status.success(), "{text:?}");
    (
        serde_json::from_slice(&json.stdout).unwrap(),
        String::from_utf8(text.stdout).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn time_reports_the_emulators_known_offset_with_its_sign_and_direction() {
    // Gate's clock 5 minutes ahead: this machine is behind, the offset positive.
    let (json, text) = time_with_offset(300_000).await;
    let offset = json["offset_ms"].as_i64().unwrap();
    // Within the round trip and the millisecond rounding of a local request.
    assert!((offset - 300_000).abs() < 2_000, "{json}");
    assert!(text.contains(" ms behind Gate)"), "{text}");
    assert!(
        text.contains("offset:       +29") || text.contains("offset:       +30"),
        "{text}"
    );

    // Two minutes behind: this machine is ahead, the offset negative.
    let (json, text) = time_with_offset(-120_000).await;
    let offset = json["offset_ms"].as_i64().unwrap();
    assert!((offset + 120_000).abs() < 2_000, "{json}");
    assert!(text.contains(" ms ahead of Gate)"), "{text}");
    assert!(text.contains("offset:       -1"), "{text}");
}
