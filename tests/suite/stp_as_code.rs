//! STP groups as code end to end against the emulator through the `gate-stp` binary; the
//! library's half, and the helpers both use, are in `stp_as_code_library`.
//!
//! "Nothing was sent" is observed on the emulator's side: before a run that must be
//! refused, a fault is queued on the first request of each state-changing operation; if
//! any such request reached the emulator, its fault fires and `pending_faults()` drops.
#![cfg(feature = "cli")]

use assert_cmd::Command;

use super::stp_as_code_library::*;

// ---- the binary ----------------------------------------------------------------------

fn gate_stp(emulator: &RunningEmulator) -> Command {
    let mut command = Command::from_std(crate::common::cli::gate_stp());
    command
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", MAIN_KEY)
        .env("GATE_API_SECRET", MAIN_SECRET);
    command
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary off the async runtime (the emulator serves on it).
async fn run(emulator: &RunningEmulator, args: &[&str]) -> Run {
    let mut command = gate_stp(emulator);
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_cli_exports_plans_applies_and_reports_by_exit_code() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let dir = crate::common::fresh_dir("as-code");
    let path = |name: &str| dir.join(name).display().to_string();

    let export = run(&emulator, &["export"]).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let exported = DesiredState::parse(&export.stdout, Format::Toml, "export").unwrap();
    assert_eq!(exported.groups.len(), 2);
    std::fs::write(path("live.toml"), &export.stdout).unwrap();
    let unchanged = run(&emulator, &["plan", &path("live.toml"), "--exit-code"]).await;
    assert_eq!(
        unchanged.code, 0,
        "{}{}",
        unchanged.stdout, unchanged.stderr
    );
    assert!(
        unchanged.stdout.contains("No changes"),
        "{}",
        unchanged.stdout
    );

    // The edited file, as JSON this time.
    std::fs::write(path("stp.json"), edited().to_json_string()).unwrap();
    let plan = run(
        &emulator,
        &[
            "plan",
            &path("stp.json"),
            "--exit-code",
            "--out",
            &path("plan.json"),
        ],
    )
    .await;
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.is_empty(), "{}", plan.stderr);
    for line in [
        &format!("  ~ group \"desk\" (id {desk})"),
        "      - 10002 (bot_2)",
        "      + 10003 (bot_3)",
        "  + group \"arb\" (new)",
        &format!("    group \"legacy\" (id {legacy}): 1 member"),
        "Plan: 1 group to create, 4 members to add, 1 to remove (4 requests).",
    ] {
        assert!(
            plan.stdout.lines().any(|l| l == line),
            "{line:?} in\n{}",
            plan.stdout
        );
    }
    assert!(!plan.stdout.contains('\u{1b}'), "colour off a terminal");

    // --json is the plan itself.
    let json = run(&emulator, &["plan", &path("stp.json"), "--json"]).await;
    let parsed = Plan::from_json(&json.stdout, "stdout").unwrap();
    assert_eq!(parsed.steps.len(), 4);

    // Not on a terminal, apply needs --yes; nothing is sent without it.
    arm_tripwires(&emulator);
    let refused = run(&emulator, &["apply", &path("plan.json")]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_no_write_sent(&emulator);
    disarm(&emulator).await;

    let applied = run(&emulator, &["apply", &path("plan.json"), "--yes"]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert_converged(&emulator, desk, legacy);

    let after = run(&emulator, &["plan", &path("stp.json"), "--exit-code"]).await;
    assert_eq!(after.code, 0, "{}{}", after.stdout, after.stderr);

    // A second apply only reads.
    arm_tripwires(&emulator);
    let again = run(&emulator, &["apply", &path("stp.json"), "--yes"]).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_no_write_sent(&emulator);
    disarm(&emulator).await;

    // The saved plan is stale now.
    let stale = run(&emulator, &["apply", &path("plan.json"), "--yes"]).await;
    assert_eq!(stale.code, 2);
    assert!(stale.stderr.contains("stale plan"), "{}", stale.stderr);

    // A parse error names file, line and column, with the usage exit code.
    std::fs::write(
        path("broken.toml"),
        "main_user_id = 10000\n[[group]]\nname = 5\n",
    )
    .unwrap();
    let broken = run(&emulator, &["plan", &path("broken.toml")]).await;
    assert_eq!(broken.code, 2);
    assert!(
        broken
            .stderr
            .contains(&format!("{}:3:", path("broken.toml"))),
        "{}",
        broken.stderr
    );
    emulator.shutdown().await;
}

/// Fires the armed 599 tripwires with requests that would change nothing anyway.
async fn disarm(emulator: &RunningEmulator) {
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(MAIN_KEY, MAIN_SECRET).unwrap())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let _ = client.create_group("tripwire").await;
    let _ = client.add_users(1, &[MAIN]).await;
    let _ = client.remove_users(1, &[MAIN]).await;
    assert_eq!(emulator.pending_faults(), 0);
}

/// The README's example file, planned against the live state it describes, prints the
/// README's example output byte for byte.
#[tokio::test]
async fn the_readme_example_is_what_plan_prints() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## STP groups as code").unwrap()..];
    let block = |after: &str, fence: &str| -> String {
        let start = section.find(after).unwrap();
        let body = &section[start..];
        let open = body.find(fence).unwrap() + fence.len() + 1;
        let close = open + body[open..].find("```").unwrap();
        body[open..close].to_owned()
    };
    let file = block("### The file", "```toml");
    let expected = block("### The output", "```text");

    let mut world = String::from(
        "[[accounts]]\nuser_id = 10000\nlogin_name = \"acme_main\"\nkey = \"acme-key\"\nsecret = \"acme-secret\"\n",
    );
    for (id, login) in [
        (10001, "mm_bot_1"),
        (10002, "mm_bot_2"),
        (10003, "arb_bot_1"),
        (10004, "hedge_desk"),
    ] {
        world.push_str(&format!(
            "\n[[accounts]]\nuser_id = {id}\nmain = 10000\nlogin_name = \"{login}\"\n"
        ));
    }
    let emulator = Emulator::start(
        World::from_toml_str(&world).unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let client = client_with(&emulator, "acme-key", "acme-secret");
    let desk = client
        .create_group("market-makers")
        .await
        .unwrap()
        .id
        .unwrap();
    client.add_users(desk, &[10001, 10003]).await.unwrap();
    let legacy = client
        .create_group("legacy-desk")
        .await
        .unwrap()
        .id
        .unwrap();
    client.add_users(legacy, &[10004]).await.unwrap();

    let dir = crate::common::fresh_dir("readme");
    let path = dir.join("stp.toml");
    std::fs::write(&path, file).unwrap();
    let mut command = gate_stp(&emulator);
    command
        .env("GATE_API_KEY", "acme-key")
        .env("GATE_API_SECRET", "acme-secret")
        .args(["plan", &path.display().to_string()]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_cli_prints_a_stopped_apply_line_by_line_and_keeps_what_was_not_sent() {
    let emulator = emulator().await;
    seed(&emulator).await;
    let file = crate::common::fresh_dir("stopped").file("stp.toml");
    std::fs::write(&file, edited().to_toml_string()).unwrap();
    // The removal fails; both adds depend on it (see the library's test), so some are not
    // sent.
    emulator
        .inject_fault(Fault::new("deleteSTPGroupUsers", 1, FaultKind::Status(500)))
        .unwrap();
    let stopped = run(&emulator, &["apply", file.to_str().unwrap(), "--yes"]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    // The report spans lines (done, failed, not sent); each arrives as a line of its own,
    // not joined by escaped newlines.
    assert!(stopped.stderr.lines().count() > 2, "{}", stopped.stderr);
    assert!(!stopped.stderr.contains("\\x0a"), "{}", stopped.stderr);
    assert!(stopped.stderr.starts_with("error: "), "{}", stopped.stderr);
    assert!(stopped.stderr.contains("not sent"), "{}", stopped.stderr);
    emulator.shutdown().await;
}
