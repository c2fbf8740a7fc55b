//! What `gate-stp mcp` tells the agent to do next, by cause: the key and its permissions
//! are the operator's to fix, and the agent is told so; the server refuses to start
//! without a key; counts read right in the singular and for none.
#![cfg(feature = "cli")]

use serde_json::json;

use super::mcp::{
    MAIN, arm_tripwires, assert_no_write_sent, digest_of, emulator, library_client, start,
    start_env,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_key_gate_refuses_is_the_operators_to_fix_and_the_agent_is_told_so() {
    let emulator = emulator().await;
    let server = start_env(
        &emulator,
        &[],
        "warn",
        (),
        &[("GATE_API_SECRET", "not-the-secret-of-this-key")],
    )
    .await;
    for tool in ["account", "list_groups", "export"] {
        let refusal = server.refused(tool, json!({})).await;
        assert!(refusal.contains("INVALID_SIGNATURE"), "{tool}: {refusal}");
        assert!(
            refusal.contains("Gate does not accept the server's API key or secret; the agent cannot fix this: tell the user to ask the operator"),
            "{tool}: {refusal}"
        );
        assert!(
            !refusal.contains("check the arguments"),
            "{tool}: {refusal}"
        );
    }
    server.stop().await;
}

#[test]
fn without_a_key_the_server_refuses_to_start_as_with_an_empty_one() {
    let run = |env: &[(&str, &str)]| {
        let mut command = crate::common::cli::gate_stp();
        command
            .arg("mcp")
            .env("GATE_BASE_URL", "http://127.0.0.1:9/api/v4");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let empty = run(&[("GATE_API_KEY", ""), ("GATE_API_SECRET", "s")]);
    let missing = run(&[]);
    assert_eq!(empty.status.code(), Some(2), "{empty:?}");
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no API key and secret"), "{stderr}");
    assert!(
        stderr.contains("GATE_API_KEY and GATE_API_SECRET"),
        "{stderr}"
    );
    assert!(missing.stdout.is_empty(), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_read_right_for_none_and_for_one() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply", "--max-removals", "0"]).await;
    let (text, _) = server.ok("list_groups", json!({})).await;
    assert_eq!(text.lines().next(), Some("No STP groups."), "{text}");
    let (text, _) = server.ok("list_groups", json!({"name": "zz"})).await;
    assert_eq!(
        text.lines().next(),
        Some("No STP group matches \"zz\"."),
        "{text}"
    );
    let (text, _) = server.ok("account", json!({})).await;
    assert!(
        text.starts_with(&format!("Main account {MAIN}; 3 sub-accounts:")),
        "{text}"
    );

    // One group, created empty, then given one member: one request each.
    let document = |members: &str| {
        format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"one\"\nmembers = [{members}]\n")
    };
    for (members, applied) in [
        (
            String::new(),
            "Applied: 1 group created, 0 members added, 0 members removed (1 request sent, each answer checked).",
        ),
        (
            (MAIN + 1).to_string(),
            "Applied: 0 groups created, 1 member added, 0 members removed (1 request sent, each answer checked).",
        ),
    ] {
        let (text, planned) = server
            .ok("plan", json!({"document": document(&members)}))
            .await;
        assert!(text.contains("(1 request)."), "{text}");
        let (text, _) = server
            .ok("apply", json!({"digest": digest_of(&planned)}))
            .await;
        assert!(text.starts_with(applied), "{text}");
    }
    let (text, _) = server.ok("list_groups", json!({})).await;
    assert!(text.starts_with("1 STP group:\n"), "{text}");
    let id = library_client(&emulator).list_groups().await.unwrap()[0]
        .id
        .unwrap();
    let (text, _) = server.ok("list_members", json!({"stp_id": id})).await;
    assert!(
        text.starts_with(&format!("Group {id}: 1 member:\n")),
        "{text}"
    );

    // Removing that one member, over a limit of 0: "removes 1 member,".
    let emptied = format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"one\"\nmembers = []\n");
    let (text, planned) = server.ok("plan", json!({"document": emptied})).await;
    assert!(
        text.contains("This plan removes 1 member, more than this server's limit of 0"),
        "{text}"
    );
    let refusal = server
        .refused("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(
        refusal.starts_with("the plan removes 1 member, "),
        "{refusal}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_creates_than_the_operator_allows_are_refused_with_nothing_sent() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply", "--max-creates", "1"]).await;
    let two =
        format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"a\"\n\n[[group]]\nname = \"b\"\n");
    let (text, planned) = server.ok("plan", json!({"document": two})).await;
    assert!(
        text.contains("This plan creates 2 groups, more than this server's limit of 1 (the operator's --max-creates"),
        "{text}"
    );
    arm_tripwires(&emulator);
    let refusal = server
        .refused("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(
        refusal.starts_with("the plan creates 2 groups, more than the limit of 1"),
        "{refusal}"
    );
    assert!(
        refusal.contains("(this server's limit, set by its operator with --max-creates)"),
        "{refusal}"
    );
    assert!(
        refusal.contains("create fewer groups per document"),
        "{refusal}"
    );
    assert_no_write_sent(&emulator);
    assert!(emulator.groups().is_empty());
    server.stop().await;
    // At the limit, the plan may be applied.
    let server = start(&emulator, &["--allow-apply", "--max-creates", "2"]).await;
    let (text, _) = server.ok("plan", json!({"document": two})).await;
    assert!(text.contains("call apply with this digest"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_ends_with_the_next_step_this_server_allows() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    let desk = format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"desk\"\n");
    let (text, _) = server.ok("plan", json!({"document": desk})).await;
    assert!(
        text.contains("\nThis server does not apply plans: show the plan to the user, who can apply the document with `gate-stp apply`."),
        "{text}"
    );
    server.stop().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let (text, _) = server.ok("plan", json!({"document": desk})).await;
    assert!(
        text.contains(
            "\nShow this plan to the user; once they agree, call apply with this digest."
        ),
        "{text}"
    );
    let empty = format!("main_user_id = {MAIN}\n");
    let (text, _) = server.ok("plan", json!({"document": empty})).await;
    assert!(
        text.contains("\nNo changes: the live groups already match the document."),
        "{text}"
    );
    server.stop().await;
}
