//! `plan`, `apply` and `export` options through the binary, judged by what they mean:
//! `--max-removals` refuses with nothing sent, `apply --json` and `export --format json`
//! are the documents they promise (compared with the emulator's own state).
#![cfg(feature = "cli")]

use std::process::Output;

use gate_stp::{
    Client, Credentials,
    mock::{Emulator, EmulatorConfig, Fault, FaultKind, RunningEmulator, World, demo},
};
use serde_json::{Value, json};

async fn emulator() -> RunningEmulator {
    Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .unwrap()
}

/// Live: group "desk" with the demo's sub-account; its id.
async fn seed(emulator: &RunningEmulator) -> i64 {
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    let desk = client.create_group("desk").await.unwrap().id.unwrap();
    client.add_users(desk, &[demo::SUB_USER]).await.unwrap();
    desk
}

async fn run(emulator: &RunningEmulator, args: &[&str]) -> Output {
    let mut command = crate::common::cli::gate_stp();
    command
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET)
        .args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A fresh file in a fresh directory for this test.
fn file(name: &str, text: &str) -> crate::common::Scratch {
    let path = crate::common::fresh_dir("cli-as-code").file(name);
    std::fs::write(&path, text).unwrap();
    path
}

const WRITES: [&str; 3] = ["createSTPGroup", "addSTPGroupUsers", "deleteSTPGroupUsers"];

#[tokio::test(flavor = "multi_thread")]
async fn max_removals_zero_refuses_a_removal_with_nothing_sent() {
    let emulator = emulator().await;
    let desk = seed(&emulator).await;
    let path = file(
        "remove.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"desk\"\nid = {desk}\nmembers = []\n",
            demo::MAIN_USER
        ),
    );
    for operation in WRITES {
        emulator
            .inject_fault(Fault::new(operation, 1, FaultKind::Status(599)))
            .unwrap();
    }
    let path = path.to_str().unwrap();
    let output = run(&emulator, &["apply", path, "--yes", "--max-removals", "0"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max-removals"), "{stderr}");
    assert_eq!(emulator.pending_faults(), WRITES.len(), "a write was sent");
    assert_eq!(emulator.members(desk), Some(vec![demo::SUB_USER]));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_json_is_the_report_of_what_was_done() {
    let emulator = emulator().await;
    let path = file(
        "create.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"arb\"\nmembers = [{}]\n",
            demo::MAIN_USER,
            demo::SUB_USER
        ),
    );
    let output = run(
        &emulator,
        &["apply", path.to_str().unwrap(), "--yes", "--json"],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let arb = emulator.groups()[0].id.unwrap();
    assert_eq!(emulator.members(arb), Some(vec![demo::SUB_USER]));
    // One create and one add, the group by the id the emulator gave it.
    assert_eq!(
        report,
        json!({"steps_done": 2, "created": {"arb": arb}, "adopted": []})
    );

    // Nothing left to do: an empty report, still JSON.
    let output = run(
        &emulator,
        &["apply", path.to_str().unwrap(), "--yes", "--json"],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report,
        json!({"steps_done": 0, "created": {}, "adopted": []})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_json_is_the_live_state_as_a_file() {
    let emulator = emulator().await;
    let desk = seed(&emulator).await;
    let output = run(&emulator, &["export", "--format", "json"]).await;
    assert!(output.status.success(), "{output:?}");
    let exported: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Members by login name where the account has one (the demo world's names).
    let login = |user: i64| match user {
        demo::SUB_USER => demo::SUB_LOGIN_NAME,
        demo::SUB_USER_WITHOUT_KEY => demo::SUB_WITHOUT_KEY_LOGIN_NAME,
        other => panic!("unexpected member {other}"),
    };
    let members: Vec<Value> = emulator
        .members(desk)
        .unwrap()
        .into_iter()
        .map(|user| Value::from(login(user)))
        .collect();
    assert_eq!(exported["main_user_id"], demo::MAIN_USER);
    let groups = exported["group"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {exported}"));
    assert_eq!(groups.len(), 1, "{exported}");
    assert_eq!(groups[0]["name"], "desk");
    assert_eq!(groups[0]["id"], desk);
    assert_eq!(groups[0]["members"], Value::Array(members), "{exported}");

    // `--json` is `--format json`; the default is TOML; `--json` against another format
    // is refused before anything is read.
    let json = run(&emulator, &["export", "--json"]).await;
    assert!(json.status.success(), "{json:?}");
    assert_eq!(json.stdout, output.stdout);
    let toml = run(&emulator, &["export"]).await;
    assert!(toml.status.success(), "{toml:?}");
    assert!(
        String::from_utf8_lossy(&toml.stdout).contains("main_user_id = 10000"),
        "{toml:?}"
    );
    emulator
        .inject_fault(Fault::new("listSTPGroups", 1, FaultKind::Status(599)))
        .unwrap();
    let clash = run(&emulator, &["export", "--format", "toml", "--json"]).await;
    assert_eq!(clash.status.code(), Some(2), "{clash:?}");
    assert!(
        String::from_utf8_lossy(&clash.stderr).contains("--json asks for --format json"),
        "{clash:?}"
    );
    assert!(clash.stdout.is_empty());
    assert_eq!(
        emulator.pending_faults(),
        1,
        "the refused export read the groups"
    );
}

/// The exit code says where a plan or an apply failed: 4 for no usable answer (transport),
/// 3 for Gate's refusal, whether reading the live state or sending a step.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_read_or_step_exits_with_the_code_of_its_cause() {
    let desired = format!(
        "main_user_id = {}\n[[group]]\nname = \"night desk\"\nmembers = [{}]\n",
        demo::MAIN_USER,
        demo::SUB_USER
    );
    let path = file("night.toml", &desired);
    let path = path.to_str().unwrap();

    // Reading the live state: nobody listens.
    let dead = crate::common::raw::DeadPort::for_the_run().base_url();
    for args in [&["plan", path][..], &["apply", path, "--yes"]] {
        let mut nobody = crate::common::cli::gate_stp();
        nobody
            .env("GATE_BASE_URL", &dead)
            .env("GATE_API_KEY", demo::MAIN_KEY)
            .env("GATE_API_SECRET", demo::MAIN_SECRET)
            .args(args);
        let output = tokio::task::spawn_blocking(move || nobody.output().unwrap())
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(4), "{args:?}: {output:?}");
    }

    // Reading the live state: Gate refuses the listing.
    let emulator = emulator().await;
    emulator
        .inject_fault(Fault::new("listSTPGroups", 1, FaultKind::Status(403)))
        .unwrap();
    let output = run(&emulator, &["plan", path]).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");

    // A step: the create's connection is cut before it runs, so nothing is known of it
    // (the apply stops, the group is not there): no usable answer.
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Drop))
        .unwrap();
    let output = run(&emulator, &["apply", path, "--yes"]).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(emulator.groups().is_empty(), "{:?}", emulator.groups());
    // A step Gate refuses.
    emulator
        .inject_fault(Fault::new("addSTPGroupUsers", 1, FaultKind::Status(403)))
        .unwrap();
    let output = run(&emulator, &["apply", path, "--yes"]).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_and_format_json_together_agree() {
    let emulator = emulator().await;
    let path = file(
        "agree.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"desk\"\nmembers = []\n",
            demo::MAIN_USER
        ),
    );
    let path = path.to_str().unwrap();
    let output = run(&emulator, &["plan", path, "--format", "json", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(plan.is_object(), "{plan}");
    // ... while another format beside --json is refused.
    let output = run(&emulator, &["plan", path, "--format", "text", "--json"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

/// The plan's note that apply would refuse it by default: above 10 removals, not at 10.
#[tokio::test(flavor = "multi_thread")]
async fn the_plan_notes_when_apply_needs_a_higher_removal_limit() {
    const MAIN: i64 = 30_000;
    let mut world = format!("[[accounts]]\nuser_id = {MAIN}\nkey = \"k\"\nsecret = \"s\"\n");
    for i in 1..=11 {
        world.push_str(&format!(
            "\n[[accounts]]\nuser_id = {}\nmain = {MAIN}\n",
            MAIN + i
        ));
    }
    let world = World::from_toml_str(&world).unwrap();
    let emulator = Emulator::start(world, EmulatorConfig::default())
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new("k", "s").unwrap())
        .build()
        .unwrap();
    let desk = client.create_group("desk").await.unwrap().id.unwrap();
    let members: Vec<i64> = (1..=11).map(|i| MAIN + i).collect();
    client.add_users(desk, &members).await.unwrap();
    let plan_keeping = |kept: &[i64]| {
        let kept: Vec<String> = kept.iter().map(i64::to_string).collect();
        file(
            "removals.toml",
            &format!(
                "main_user_id = {MAIN}\n[[group]]\nname = \"desk\"\nid = {desk}\nmembers = [{}]\n",
                kept.join(", ")
            ),
        )
    };
    let plan = |path: crate::common::Scratch| {
        let mut command = crate::common::cli::gate_stp();
        command
            .env("GATE_BASE_URL", emulator.base_url())
            .env("GATE_API_KEY", "k")
            .env("GATE_API_SECRET", "s")
            .arg("plan")
            .arg(path.as_os_str());
        command.output().unwrap()
    };
    // 10 removals: apply's default limit allows them, no note.
    let ten = tokio::task::block_in_place(|| plan(plan_keeping(&members[..1])));
    assert!(ten.status.success(), "{ten:?}");
    let text = String::from_utf8_lossy(&ten.stdout);
    assert!(text.contains("10 to remove"), "{text}");
    assert!(!text.contains("apply refuses more"), "{text}");
    // 11: the note names the flag that allows them.
    let eleven = tokio::task::block_in_place(|| plan(plan_keeping(&[])));
    assert!(eleven.status.success(), "{eleven:?}");
    let text = String::from_utf8_lossy(&eleven.stdout);
    assert!(
        text.contains(
            "Note: this plan removes 11 members; apply refuses more than 10 unless given --max-removals 11."
        ),
        "{text}"
    );
}

/// A file declaring `count` new empty groups for the demo's main account.
fn new_groups(count: usize) -> crate::common::Scratch {
    let mut text = format!("main_user_id = {}\n", demo::MAIN_USER);
    for i in 0..count {
        text.push_str(&format!("\n[[group]]\nname = \"new-{i}\"\nmembers = []\n"));
    }
    file("creates.toml", &text)
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_above_max_creates_are_refused_with_nothing_sent_and_the_plan_says_so() {
    let emulator = emulator().await;
    for operation in WRITES {
        emulator
            .inject_fault(Fault::new(operation, 1, FaultKind::Status(599)))
            .unwrap();
    }
    // Eleven creates: over the default of ten, refused before anything is sent, and the
    // command line (not the library) names its flag.
    let eleven = new_groups(11);
    let eleven = eleven.to_str().unwrap();
    let output = run(&emulator, &["apply", eleven, "--yes"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the plan creates 11 groups, more than the limit of 10; nothing was changed (a group can never be deleted) (raise it with --max-creates 11 if this is intended)"),
        "{stderr}"
    );
    // Two with --max-creates 1, the same.
    let two = new_groups(2);
    let two = two.to_str().unwrap();
    let output = run(&emulator, &["apply", two, "--yes", "--max-creates", "1"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(emulator.pending_faults(), WRITES.len(), "a write was sent");
    assert!(emulator.groups().is_empty());

    // The plan shows the limit it would be refused by, in text and Markdown; none at ten.
    let text =
        String::from_utf8_lossy(&run(&emulator, &["plan", eleven]).await.stdout).into_owned();
    assert!(
        text.contains("Note: this plan creates 11 groups, which can never be deleted; apply refuses more than 10 unless given --max-creates 11."),
        "{text}"
    );
    let ten = new_groups(10);
    let ten = ten.to_str().unwrap();
    let text = String::from_utf8_lossy(&run(&emulator, &["plan", ten]).await.stdout).into_owned();
    assert!(!text.contains("--max-creates"), "{text}");
    let output = run(
        &emulator,
        &["plan", two, "--max-creates", "1", "--format", "markdown"],
    )
    .await;
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(
        markdown.contains("> **Note:** this plan creates 2 groups, which can never be deleted; apply refuses more than 1 unless given --max-creates 2."),
        "{markdown}"
    );

    // At the limit, applied (on an emulator without tripwires).
    let emulator = self::emulator().await;
    let output = run(&emulator, &["apply", two, "--yes", "--max-creates", "2"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(emulator.groups().len(), 2);
}

/// `gate-stp ARGS` against an address where nothing listens: a command that reached for
/// Gate would fail with a connection error, so a refusal by the bounds shows that nothing
/// was read from Gate nor sent.
fn run_offline(args: &[&str]) -> Output {
    let mut command = crate::common::cli::gate_stp();
    command
        .env("GATE_BASE_URL", "http://127.0.0.1:9")
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET)
        .args(args);
    command.output().unwrap()
}

#[test]
fn oversized_documents_long_names_and_too_many_groups_are_refused_in_one_line() {
    use gate_stp::desired::{MAX_DOCUMENT_BYTES, MAX_GROUPS, MAX_NAME_CHARS, MAX_PLAN_BYTES};
    let refused = |args: &[&str], expected: &str| {
        let output = run_offline(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("connect"), "{args:?}: {stderr}");
    };
    // A 5 MiB name: the file is above the document limit, refused unread.
    let name = "n".repeat(5 * 1024 * 1024);
    let huge = file(
        "huge.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"{name}\"\nmembers = []\n",
            demo::MAIN_USER
        ),
    );
    let huge = huge.to_str().unwrap();
    let size = std::fs::metadata(huge).unwrap().len();
    let line = format!(
        "the document is {size} bytes, more than the limit of 4 MiB; nothing was read further"
    );
    for command in ["plan", "apply"] {
        refused(
            &[command, huge, "--yes"][..if command == "apply" { 3 } else { 2 }],
            &line,
        );
    }
    assert!(size > MAX_DOCUMENT_BYTES as u64);

    // A name one character above the limit: refused, the name cut after the reason.
    let long = file(
        "long.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"{}\"\nmembers = []\n",
            demo::MAIN_USER,
            "n".repeat(MAX_NAME_CHARS + 1)
        ),
    );
    let long = long.to_str().unwrap();
    refused(
        &["plan", long],
        &format!(
            "group #1 has a name of 257 characters, more than the limit of {MAX_NAME_CHARS}: \"nnn"
        ),
    );
    refused(&["apply", long, "--yes"], "…(1 more character)\"");

    // One group above the limit.
    let mut text = format!("main_user_id = {}\n", demo::MAIN_USER);
    for i in 0..=MAX_GROUPS {
        text.push_str(&format!("[[group]]\nname = \"g{i}\"\n"));
    }
    let many = file("many.toml", &text);
    let many = many.to_str().unwrap();
    refused(
        &["plan", many],
        "the document declares 10001 groups, more than the limit of 10000; nothing was planned",
    );

    // A saved plan (or anything apply reads) above the plan limit, refused unread.
    let plan = file("plan.json", "");
    std::fs::File::options()
        .write(true)
        .open(&plan)
        .unwrap()
        .set_len(MAX_PLAN_BYTES as u64 + 1)
        .unwrap();
    refused(
        &["apply", plan.to_str().unwrap(), "--yes"],
        "more than the limit of 32 MiB; nothing was read further",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_and_invisible_names_are_flagged_and_escaped_in_every_plan_format() {
    // Live: "desk". Declared: "dеsk" with a Cyrillic е (a new group that looks like the
    // live one) and a name hiding "hi" in Unicode tag characters.
    let emulator = emulator().await;
    seed(&emulator).await;
    let path = file(
        "alike.toml",
        &format!(
            "main_user_id = {}\n[[group]]\nname = \"d\u{435}sk\"\nmembers = []\n[[group]]\nname = \"arb\\U000E0068\\U000E0069\"\nmembers = []\n",
            demo::MAIN_USER
        ),
    );
    let path = path.to_str().unwrap();
    let text = String::from_utf8_lossy(&run(&emulator, &["plan", path]).await.stdout).into_owned();
    assert!(
        text.contains(
            "Warning: group names that look alike: \"desk\", \"d\u{435}sk\" (non-ASCII: U+0435)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Warning: group name \"d\u{435}sk\" (non-ASCII: U+0435) mixes scripts"),
        "{text}"
    );
    assert!(
        text.contains("+ group \"arb\\u{e0068}\\u{e0069}\" (new)"),
        "{text}"
    );
    assert!(
        !text.contains('\u{e0068}'),
        "a tag character reached the terminal: {text}"
    );

    let output = run(&emulator, &["plan", path, "--format", "markdown"]).await;
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(markdown.contains("**Warnings:**"), "{markdown}");
    assert!(markdown.contains("mixes scripts"), "{markdown}");
    assert!(!markdown.contains('\u{e0068}'), "{markdown}");

    // JSON keeps the exact values (the tag characters as JSON escapes).
    let output = run(&emulator, &["plan", path, "--json"]).await;
    let raw = String::from_utf8_lossy(&output.stdout);
    assert!(!raw.contains('\u{e0068}'), "{raw}");
    let plan: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        plan["warnings"],
        json!([
            {"kind": "confusable", "names": ["desk", "d\u{435}sk"]},
            {"kind": "mixed_scripts", "name": "d\u{435}sk"},
        ])
    );
    assert_eq!(plan["groups"][1]["name"], "arb\u{e0068}\u{e0069}");
}

#[test]
fn a_saved_plan_of_another_format_is_refused_with_the_command_that_saves_a_new_one() {
    let old = file(
        "old.json",
        r#"{"format": "gate-stp-plan/0", "account": 10000, "changes": []}"#,
    );
    let output = run_offline(&["apply", old.to_str().unwrap(), "--yes"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("plan again with this version and save that plan to apply it (`gate-stp plan FILE --out PLAN.json`)"),
        "{stderr}"
    );
}
