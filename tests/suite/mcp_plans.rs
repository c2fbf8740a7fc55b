//! Plans any `gate-stp mcp` process of the operator honours: a digest planned by one
//! server process is applied by another with the same key and plans folder (as a one-shot
//! client does, starting a server per call), at most once across processes, within the
//! plan's lifetime, never by a server of another key, never from a file that is not the
//! plan of its digest; the folder is the owner's alone.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};

use crate::common::Scratch;

use gate_stp::mock::{Emulator, EmulatorConfig, RunningEmulator, World};
use serde_json::json;

use super::mcp::{
    DESK, MAIN, MAIN_KEY, MAIN_SECRET, arm_tripwires, assert_no_write_sent, digest_of, emulator,
    start_env,
};

/// A folder for plans that does not exist yet (the server creates it, owner-only),
/// removed when dropped.
fn plans_dir() -> Scratch {
    crate::common::fresh_dir("mcp-plans").file("plans")
}

/// A server of MAIN's key keeping its plans in `dir`.
async fn server_in(emulator: &RunningEmulator, dir: &Path, flags: &[&str]) -> super::mcp::Server {
    let dir = dir.to_str().unwrap();
    start_env(emulator, flags, "warn", (), &[("GATE_STP_PLANS_DIR", dir)]).await
}

/// The one plan file under `dir` (in one key's folder).
fn plan_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|scope| std::fs::read_dir(scope.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Plans [`DESK`] in a `gate-stp mcp` of its own that keeps its plans in `dir`, as a
/// one-shot client does; the digest.
async fn plan_in_own_process(emulator: &RunningEmulator, dir: &Path) -> String {
    let planner = server_in(emulator, dir, &[]).await;
    let (_, planned) = planner.ok("plan", json!({"document": DESK})).await;
    planner.stop().await;
    digest_of(&planned)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_made_by_one_process_is_applied_by_another_once() {
    let emulator = emulator().await;
    let dir = plans_dir();
    // One process per call, as a one-shot client runs them.
    let digest = plan_in_own_process(&emulator, &dir).await;
    assert_eq!(
        plan_file(&dir).file_name().unwrap().to_str().unwrap(),
        format!("{digest}.json")
    );

    let applier = server_in(&emulator, &dir, &["--allow-apply"]).await;
    let (text, applied) = applier.ok("apply", json!({"digest": digest})).await;
    assert!(applied["created"]["desk"].is_i64(), "{text}");
    applier.stop().await;
    assert_eq!(emulator.groups().len(), 1);

    // Applied once: a third process does not find it.
    let again = server_in(&emulator, &dir, &["--allow-apply"]).await;
    arm_tripwires(&emulator);
    let refusal = again.refused("apply", json!({"digest": digest})).await;
    assert!(
        refusal.starts_with("unknown, expired or already applied digest (a plan can be applied once, within 30 minutes of planning it)"),
        "{refusal}"
    );
    assert_no_write_sent(&emulator);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_processes_applying_one_digest_at_once_exactly_one_sends() {
    let emulator = emulator().await;
    let dir = plans_dir();
    let digest = plan_in_own_process(&emulator, &dir).await;
    let first = server_in(&emulator, &dir, &["--allow-apply"]).await;
    let second = server_in(&emulator, &dir, &["--allow-apply"]).await;
    let arguments = json!({"digest": digest});
    let (a, b) = tokio::join!(
        first.call("apply", arguments.clone()),
        second.call("apply", arguments.clone())
    );
    let results = [a.unwrap(), b.unwrap()];
    let applied = results
        .iter()
        .filter(|result| result.is_error != Some(true))
        .count();
    assert_eq!(applied, 1, "{results:?}");
    assert_eq!(emulator.groups().len(), 1);
    first.stop().await;
    second.stop().await;
}

/// Main accounts 10000 and 20000, each with a key.
async fn two_accounts() -> RunningEmulator {
    let text = format!(
        "[[accounts]]\nuser_id = {MAIN}\nlogin_name = \"a\"\nkey = \"{MAIN_KEY}\"\nsecret = \"{MAIN_SECRET}\"\n\n\
         [[accounts]]\nuser_id = 20000\nlogin_name = \"b\"\nkey = \"other-key-0123456789\"\nsecret = \"other-secret-abcdefghij\"\n"
    );
    Emulator::start(
        World::from_toml_str(&text).unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_of_another_key_does_not_see_the_plan() {
    let emulator = two_accounts().await;
    let dir = plans_dir();
    let planner = server_in(&emulator, &dir, &[]).await;
    let document = format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"desk\"\n");
    let (_, planned) = planner.ok("plan", json!({"document": document})).await;
    planner.stop().await;
    let other = start_env(
        &emulator,
        &["--allow-apply"],
        "warn",
        (),
        &[
            ("GATE_STP_PLANS_DIR", dir.to_str().unwrap()),
            ("GATE_API_KEY", "other-key-0123456789"),
            ("GATE_API_SECRET", "other-secret-abcdefghij"),
        ],
    )
    .await;
    arm_tripwires(&emulator);
    let refusal = other
        .refused("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(refusal.starts_with("unknown, expired"), "{refusal}");
    assert_no_write_sent(&emulator);
    other.stop().await;
    // The plan is still there for its own key.
    assert!(plan_file(&dir).exists());
}

/// Rewrites the first line (the header) of `file` with `edit`.
fn edit_file(file: &Path, edit: impl FnOnce(&str, &str) -> String) {
    let text = std::fs::read_to_string(file).unwrap();
    let (header, plan) = text.split_once('\n').unwrap();
    std::fs::write(file, edit(header, plan)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_altered_plan_file_is_no_plan() {
    for alter in [
        // Made two hours ago (the default lifetime is 30 minutes).
        |header: &str, plan: &str| {
            let mut header: serde_json::Value = serde_json::from_str(header).unwrap();
            let created = header["created"].as_u64().unwrap();
            header["created"] = json!(created - 7200);
            format!("{header}\n{plan}")
        },
        // Its plan edited: it no longer hashes to its digest.
        |header: &str, plan: &str| format!("{header}\n{}", plan.replace("desk", "dusk")),
    ] {
        let emulator = emulator().await;
        let dir = plans_dir();
        let server = server_in(&emulator, &dir, &["--allow-apply"]).await;
        let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
        let file = plan_file(&dir);
        edit_file(&file, alter);
        arm_tripwires(&emulator);
        let refusal = server
            .refused("apply", json!({"digest": digest_of(&planned)}))
            .await;
        assert!(refusal.starts_with("unknown, expired"), "{refusal}");
        assert_no_write_sent(&emulator);
        assert!(!file.exists(), "a file that is no plan is removed");
        server.stop().await;
    }
    // The control: unaltered, the same steps apply.
    let emulator = emulator().await;
    let dir = plans_dir();
    let server = server_in(&emulator, &dir, &["--allow-apply"]).await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    server
        .ok("apply", json!({"digest": digest_of(&planned)}))
        .await;
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_plans_folder_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let emulator = emulator().await;
    let dir = plans_dir();
    let server = server_in(&emulator, &dir, &[]).await;
    server.ok("plan", json!({"document": DESK})).await;
    server.stop().await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let file = plan_file(&dir);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&file), 0o600);
    // The key that seals apply's request states (revision 2026-07-28) too.
    assert_eq!(mode(&file.with_file_name("request-state.key")), 0o600);

    // A folder others may read is refused: the server does not start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = crate::common::cli::gate_stp()
        .arg("mcp")
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", MAIN_KEY)
        .env("GATE_API_SECRET", MAIN_SECRET)
        .env("GATE_STP_PLANS_DIR", dir.as_os_str())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("open to other users (mode 755)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_ttl_sets_how_long_a_plan_can_be_applied() {
    let two_hours_ago = |header: &str, plan: &str| {
        let mut header: serde_json::Value = serde_json::from_str(header).unwrap();
        let created = header["created"].as_u64().unwrap();
        header["created"] = json!(created - 7200);
        format!("{header}\n{plan}")
    };
    // Made two hours ago: too old for 90 minutes, good for three hours.
    for (minutes, applies) in [("90", false), ("180", true)] {
        let emulator = emulator().await;
        let dir = plans_dir();
        let flags = ["--allow-apply", "--plan-ttl", minutes];
        let server = server_in(&emulator, &dir, &flags).await;
        let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
        edit_file(&plan_file(&dir), two_hours_ago);
        let result = server
            .call("apply", json!({"digest": digest_of(&planned)}))
            .await
            .unwrap();
        assert_eq!(
            result.is_error != Some(true),
            applies,
            "{minutes}: {result:?}"
        );
        if !applies {
            let text = &result.content[0].as_text().unwrap().text;
            assert!(text.contains("within 90 minutes of planning it"), "{text}");
        }
        server.stop().await;
    }
}
