//! Habits other CLIs taught (issue 21): client options before or after the command, each
//! command's own options under "Options", commands in the order an operator meets them,
//! and logs without colour codes when they go to a file.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::common::cli::{gate_stp, gate_stp_with_config};

/// A Gate stand-in that lists no groups and records what it receives.
async fn gate() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    server
}

fn api(server: &MockServer) -> String {
    format!("{}/api/v4", server.uri())
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// What identifies a request on the wire: method, path, query and the KEY header.
async fn received(server: &MockServer) -> Vec<(String, String, Option<String>, String)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            (
                request.method.to_string(),
                request.url.path().to_owned(),
                request.url.query().map(str::to_owned),
                request
                    .headers
                    .get("KEY")
                    .map(|key| key.to_str().unwrap().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn config_with_profile(base_url: &str) -> crate::common::Scratch {
    let path = crate::common::fresh_dir("habits").file("config.toml");
    std::fs::write(
        &path,
        format!(
            "[profiles.desk-a]\nbase_url = \"{base_url}\"\nkey = \"desk-a-key\"\n\
             secret_env = \"DESK_A_SECRET\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn client_options_before_or_after_the_command_send_the_same_request() {
    let server = gate().await;
    let config = config_with_profile(&api(&server));
    let with_profile = |args: &[&str]| {
        let mut command = gate_stp_with_config(&config);
        command.env("DESK_A_SECRET", "desk-a-secret").args(args);
        command
    };
    for args in [
        &["--profile", "desk-a", "groups", "list", "--name", "arb"][..],
        &["groups", "list", "--name", "arb", "--profile", "desk-a"],
        &["groups", "--profile", "desk-a", "list", "--name", "arb"],
    ] {
        let output = run(with_profile(args)).await;
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3, "{requests:?}");
    let expected = (
        "GET".to_owned(),
        "/api/v4/account/stp_groups".to_owned(),
        Some("name=arb".to_owned()),
        "desk-a-key".to_owned(),
    );
    for request in &requests {
        assert_eq!(request, &expected);
    }
    // plan too (the example): the same reads either way.
    let file = config.with_file_name("stp.toml");
    std::fs::write(&file, "main_user_id = 10000\n").unwrap();
    let file = file.to_str().unwrap();
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let before = run(with_profile(&["--profile", "desk-a", "plan", file])).await;
    let first = received(&server).await;
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let after = run(with_profile(&["plan", file, "--profile", "desk-a"])).await;
    assert_eq!(
        before.status.code(),
        after.status.code(),
        "{before:?} {after:?}"
    );
    assert_eq!(before.stdout, after.stdout);
    assert!(
        !first.is_empty() && first.iter().all(|r| r.3 == "desk-a-key"),
        "{first:?}"
    );
    assert_eq!(first, received(&server).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_option_before_the_command_beats_its_variable_and_a_clash_is_refused() {
    let server = gate().await;
    // Held for the whole test: nothing else can take the port and answer.
    let dead_port = crate::common::raw::DeadPort::hold();
    let dead = dead_port.base_url();
    let client = |args: &[&str]| {
        let mut command = gate_stp();
        command
            .env("GATE_BASE_URL", &dead)
            .env("GATE_API_KEY", "env-key")
            .env("GATE_API_SECRET", "env-secret")
            .args(args);
        command
    };
    // The flag before the command beats GATE_BASE_URL, as a flag after it would.
    let output = run(client(&["--base-url", &api(&server), "groups", "list"])).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(received(&server).await.len(), 1);

    // The same option on both sides with different values: refused, nothing sent.
    let output = run(client(&[
        "--key",
        "a",
        "groups",
        "list",
        "--key",
        "b",
        "--base-url",
        &api(&server),
    ]))
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--key is given before and after"),
        "{stderr}"
    );
    assert_eq!(
        received(&server).await.len(),
        1,
        "a refused line sent a request"
    );

    // With the same value it is one setting.
    let output = run(client(&[
        "--timeout",
        "5",
        "groups",
        "list",
        "--timeout",
        "5",
        "--base-url",
        &api(&server),
    ]))
    .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(received(&server).await.len(), 2);

    // --json before the command is --json.
    let output = run(client(&[
        "--json",
        "groups",
        "list",
        "--base-url",
        &api(&server),
    ]))
    .await;
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "[]\n",
        "{output:?}"
    );

    // A command without client options refuses them before it as after it. (Commands
    // that end on their own: were `mock` not refused, it would serve until killed.)
    let sign = ["sign", "--secret", "s", "--method", "GET", "--path", "/"];
    for args in [&["--key", "k"][..], &["--json"]] {
        let args = [args, &sign[..]].concat();
        let output = run(client(&args)).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
    let output = run(client(&["--json", "profiles"])).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

fn help(args: &[&str]) -> String {
    let output = gate_stp().args(args).arg("--help").output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The option names listed under `heading:` in a help text.
fn section(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != format!("{heading}:"))
        .skip(1)
        .take_while(|line| line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with("--")))
        .map(|word| word.trim_end_matches(',').to_owned())
        .collect()
}

#[test]
fn each_commands_own_options_are_under_options() {
    for (args, own) in [
        (
            &["plan"][..],
            &["--out", "--exit-code", "--max-creates"][..],
        ),
        (&["apply"], &["--yes", "--max-removals", "--max-creates"]),
        (&["export"], &["--format"]),
        (&["mcp"], &["--allow-apply", "--max-removals"]),
        (&["groups", "list"], &["--name"]),
        // Before any command: `--json` is an output option, not a client one.
        (&[], &["--json"]),
    ] {
        let help = help(args);
        let options = section(&help, "Options");
        let client = section(&help, "Client options");
        for option in own {
            assert!(options.iter().any(|o| o == option), "{args:?}: {help}");
            assert!(!client.iter().any(|o| o == option), "{args:?}: {help}");
        }
        for option in ["--profile", "--base-url", "--key", "--secret", "--timeout"] {
            assert!(client.iter().any(|o| o == option), "{args:?}: {help}");
            assert!(!options.iter().any(|o| o == option), "{args:?}: {help}");
        }
    }
}

/// A command that takes no client options refuses each of them before it, as clap refuses
/// them after it, rather than ignoring a `--key` the operator thought was used.
#[test]
fn client_options_before_a_command_without_them_are_refused_one_by_one() {
    for option in [
        &["--profile", "desk"][..],
        &["--base-url", "http://127.0.0.1:9/api/v4"],
        &["--key", "k"],
        &["--secret", "s"],
        &["--json"],
        &["--timeout", "5"],
    ] {
        for command in [&["completions", "bash"][..], &["man"]] {
            let output = gate_stp().args(option).args(command).output().unwrap();
            assert_eq!(output.status.code(), Some(2), "{option:?} {command:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("`{}` takes no client options", command[0])),
                "{option:?} {command:?}: {stderr}"
            );
            assert!(output.stdout.is_empty(), "{option:?} {command:?}");
        }
    }
}

/// Every option a command takes goes before it as after it (issue 29): `demo`'s `--json`
/// and `--timeout`, `sign`'s `--profile` and `--secret` as well as the client options.
#[test]
fn a_commands_own_options_may_come_before_it_too() {
    let stdout = |args: &[&str]| {
        let output = gate_stp().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    // sign: the same SIGN whichever side the secret is on.
    let request = ["--method", "GET", "--path", "/api/v4/x", "--timestamp", "1"];
    let after = stdout(&[&["sign", "--secret", "s"][..], &request].concat());
    let before = stdout(&[&["--secret", "s", "sign"][..], &request].concat());
    assert_eq!(before, after);
    // demo: --json before it prints JSON as --json after it does.
    for args in [
        &["--json", "--timeout", "5", "demo"][..],
        &["demo", "--json"],
    ] {
        let text = stdout(args);
        assert!(
            text.lines()
                .any(|line| line.starts_with("[{\"create_time\"")),
            "{args:?}: {text}"
        );
    }
}

/// What a command does not take is refused before it as clap refuses it after it, with
/// what it takes named; `mcp` refuses `--json` with its own reason on both sides and does
/// not list it.
#[test]
fn an_option_a_command_does_not_take_is_refused_on_both_sides_and_not_listed() {
    let refused = |args: &[&str]| {
        let output = gate_stp().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    let before = refused(&["--key", "k", "demo"]);
    assert!(
        before.contains("`demo` takes no --key: before the command it takes --json, --timeout"),
        "{before}"
    );
    let after = refused(&["demo", "--key", "k"]);
    assert!(after.contains("'--key'"), "{after}");
    for args in [&["mcp", "--json"][..], &["--json", "mcp"]] {
        let stderr = refused(args);
        assert!(
            stderr.contains("--json does not apply"),
            "{args:?}: {stderr}"
        );
    }
    let help = help(&["mcp"]);
    assert!(!help.contains("--json"), "{help}");
}

#[test]
fn commands_are_listed_in_the_order_an_operator_meets_them() {
    let help = help(&[]);
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert_eq!(
        listed,
        [
            "groups",
            "users",
            "time",
            "plan",
            "apply",
            "export",
            "mcp",
            "mock",
            "demo",
            "sign",
            "profiles",
            "completions",
            "man"
        ],
        "{help}"
    );
}

/// A retried list: two answers of 503, then the empty list.
async fn flaky_gate() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_in_a_file_have_no_colour_codes_and_one_attempt_field_per_span() {
    let server = flaky_gate().await;
    let dir = crate::common::fresh_dir("logs");
    let log = dir.join("debug.log");
    let mut command = gate_stp();
    command
        .env("RUST_LOG", "gate_stp=debug")
        .args(["groups", "list", "--base-url", &api(&server)])
        .args(["--key", "k", "--secret", "s"])
        .stderr(std::fs::File::create(&log).unwrap());
    let output = run(command).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("attempt failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{text}");
    for line in failures {
        // `gate_stp.request{operation=... attempt=...}: gate_stp::client: attempt failed`
        let span = line
            .split_once("gate_stp.request{")
            .and_then(|(_, rest)| rest.split_once("}:"))
            .map(|(fields, _)| fields)
            .unwrap_or_else(|| panic!("no request span on {line:?}"));
        assert!(span.matches("attempt=").count() <= 1, "{line}");
    }
}
