//! The `gate-stp` binary end to end against an in-process emulator.
#![cfg(feature = "cli")]

use assert_cmd::Command;
use gate_stp::mock::{Emulator, EmulatorConfig, RunningEmulator, World, demo};
use serde_json::Value;

use crate::common::vectors::GATE_GET;

fn gate_stp(emulator: &RunningEmulator, key: &str, secret: &str) -> Command {
    let mut command = isolated();
    command
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", key)
        .env("GATE_API_SECRET", secret)
        .env_remove("RUST_LOG");
    command
}

/// Runs the command off the async runtime and parses its stdout as JSON.
async fn json(mut command: Command) -> Value {
    let output = tokio::task::spawn_blocking(move || command.arg("--json").output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_against_the_emulator() {
    let emulator = Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .unwrap();
    let main = || gate_stp(&emulator, demo::MAIN_KEY, demo::MAIN_SECRET);

    let mut create = main();
    create.args(["groups", "create", "cli desk"]);
    let group = json(create).await;
    assert_eq!(group[0]["name"], "cli desk");
    let id = group[0]["id"].as_i64().unwrap();

    let mut list = main();
    list.args(["groups", "list", "--name", "CLI"]);
    assert_eq!(json(list).await.as_array().unwrap().len(), 1);

    let mut add = main();
    add.args(["users", "add", &id.to_string(), "10001", "10002"]);
    assert_eq!(json(add).await.as_array().unwrap().len(), 2);

    let mut remove = main();
    remove.args(["users", "remove", &id.to_string(), "10002"]);
    assert_eq!(json(remove).await[0]["user_id"], 10001);

    let mut users = main();
    users.args(["users", "list", &id.to_string()]);
    assert_eq!(json(users).await.as_array().unwrap().len(), 1);
    assert_eq!(emulator.members(id), Some(vec![10001]));

    let mut time = main();
    time.arg("time");
    assert!(json(time).await["offset_ms"].is_i64());

    // A table for people.
    let mut table = main();
    table.args(["users", "list", &id.to_string()]);
    let output = tokio::task::spawn_blocking(move || table.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("USER"), "{text}");
    assert!(text.contains("10001"));

    // Gate's refusal: exit 3, `error: LABEL: message`, the secret nowhere.
    let mut refused = gate_stp(&emulator, demo::SUB_KEY, demo::SUB_SECRET);
    refused
        .args(["groups", "create", "nope"])
        .env("RUST_LOG", "trace");
    let output = tokio::task::spawn_blocking(move || refused.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: FORBIDDEN: "), "{stderr}");
    // The control: TRACE logs were written, so "no secret in them" means something.
    assert!(
        stderr.contains("gate_stp.request{"),
        "no request logged: {stderr}"
    );
    assert!(stderr.contains("attempt failed"), "{stderr}");
    assert!(
        !stderr.contains(demo::SUB_SECRET)
            && !String::from_utf8_lossy(&output.stdout).contains(demo::SUB_SECRET)
    );
}

#[test]
fn usage_and_transport_failures_have_their_own_exit_codes() {
    let mut bad_input = isolated();
    bad_input.args(["users", "add", "7", "0"]).args([
        "--base-url",
        "http://127.0.0.1:9/api/v4",
        "--key",
        "k",
        "--secret",
        "s",
    ]);
    bad_input
        .assert()
        .code(2)
        .stderr(predicates_str("error: invalid input"));

    // Options may also come between the command and its subcommand.
    let mut refused = isolated();
    refused
        .args(["groups", "--base-url", "http://127.0.0.1:9/api/v4", "list"])
        .args(["--key", "k", "--secret", "s", "--timeout", "2"]);
    refused
        .assert()
        .code(4)
        .stderr(predicates_str("error: transport error"))
        // The cause, from the error's source chain, names what was called.
        .stderr(predicates_str("127.0.0.1:9/api/v4/account/stp_groups"));

    let mut usage = isolated();
    usage.args(["users", "add"]);
    usage.assert().code(2);
}

/// The binary with no GATE_* settings from the caller's environment and no config file.
fn isolated() -> Command {
    Command::from_std(crate::common::cli::gate_stp())
}

fn predicates_str(needle: &'static str) -> impl predicates::Predicate<str> {
    predicates::str::contains(needle)
}

#[test]
fn sign_reproduces_gates_published_vector() {
    let v = GATE_GET;
    let mut sign = isolated();
    sign.args(["sign", "--secret", v.secret, "--method", v.method])
        .args(["--path", v.path, "--query", v.query])
        .args(["--timestamp", v.timestamp]);
    let output = sign.output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().last(), Some(v.sign));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let signed_lines = format!("{}\n{}\n{}\n{}", v.method, v.path, v.query, v.body_sha512);
    assert!(stderr.contains(&signed_lines), "{stderr}");
}

#[test]
fn demo_runs_the_workflow_and_exits_zero() {
    let mut demo = isolated();
    let output = demo.arg("demo").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.matches("refused as expected: FORBIDDEN").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("\n\ndemo finished"), "{stdout}");
    // The STP-as-code part and the agent session run too, not only the first steps.
    for step in 1..=20 {
        assert!(
            stdout.contains(&format!("\n\n== step {step}: ")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("[4/4] add 10001 to group \"arb-desk\" (created by this plan): ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("No changes: the live groups already match the document."),
        "{stdout}"
    );
    assert!(stdout.contains("isError: stale plan"), "{stdout}");
    // The edited file shows the protected group; the agent's plan call shows its
    // arguments shortened (the document is printed in full just before).
    assert!(
        stdout.contains("name = \"arb-desk\"\nmembers = [\"demo_sub\"]\nprotect = true\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent> plan {\"document\": \"...\"}\n"),
        "{stdout}"
    );
    // The agent's edit moves one member, and only it.
    assert!(
        stdout.contains(
            "  ~ group \"demo-desk\" (id 100001)\n      - 10002 (demo_sub_nokey)\n  + group \"agent-desk\" (new)\n"
        ),
        "{stdout}"
    );
    // Progress and tables reach the terminal as lines, not as escaped text.
    assert!(!stdout.contains(r"\x"), "{stdout}");
    assert!(stdout.contains("JOINED (UTC)"), "{stdout}");
}
