//! Answers that do not grow with the account: pages with totals and a cursor for the
//! lists and the export, and a plan whose text and JSON are cut past their bounds while
//! its digest still applies.
#![cfg(feature = "cli")]

use std::collections::BTreeSet;

use gate_stp::desired::{DesiredState, Format};
use serde_json::{Value, json};

use super::mcp::{
    MAIN, arm_tripwires, assert_no_write_sent, desk_of_three, emulator, library_client, start,
};

/// Every page of `tool` with `limit`, following `next_cursor`: (texts, structured pages).
async fn all_pages<H: rmcp::ClientHandler>(
    server: &super::mcp::Server<H>,
    tool: &str,
    mut arguments: Value,
) -> Vec<(String, Value)> {
    let mut pages = Vec::new();
    loop {
        let (text, page) = server.ok(tool, arguments.clone()).await;
        let next = page["next_cursor"].clone();
        pages.push((text, page));
        match next {
            Value::String(cursor) => arguments["cursor"] = json!(cursor),
            Value::Null => return pages,
            other => panic!("next_cursor {other}"),
        }
        assert!(pages.len() < 20, "no end of pages");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_groups_pages_through_every_group_once_with_the_total() {
    let emulator = emulator().await;
    let client = library_client(&emulator);
    let mut ids = BTreeSet::new();
    for i in 0..7 {
        ids.insert(
            client
                .create_group(format!("g{i}"))
                .await
                .unwrap()
                .id
                .unwrap(),
        );
    }
    let server = start(&emulator, &[]).await;
    let pages = all_pages(&server, "list_groups", json!({"limit": 3})).await;
    assert_eq!(pages.len(), 3);
    let mut seen = BTreeSet::new();
    for (_, page) in &pages {
        assert_eq!(page["total"], json!(7));
        for group in page["groups"].as_array().unwrap() {
            assert!(seen.insert(group["id"].as_i64().unwrap()), "twice: {group}");
        }
    }
    assert_eq!(seen, ids);
    let (first, _) = &pages[0];
    assert!(first.starts_with("1–3 of 7 STP groups:\n"), "{first}");
    assert!(
        first.contains("\nMore: 4 not shown; call list_groups with cursor \"3\" (and the same other arguments) for the next page."),
        "{first}"
    );
    let (last, page) = &pages[2];
    assert!(last.starts_with("number 7 of 7 STP groups:\n"), "{last}");
    assert!(!last.contains("\nMore:"), "{last}");
    assert_eq!(page["groups"].as_array().unwrap().len(), 1);
    // A cursor past the end (the list shrank, or the cursor was made up) says to start again.
    let refusal = server.refused("list_groups", json!({"cursor": "7"})).await;
    assert!(
        refusal.contains(
            "`cursor` 7 is past the end: there are 7 now; call list_groups without a cursor"
        ),
        "{refusal}"
    );
    // Without a limit, all seven fit in the default page.
    let (text, page) = server.ok("list_groups", json!({})).await;
    assert!(text.starts_with("7 STP groups:\n"), "{text}");
    assert_eq!(page["next_cursor"], Value::Null);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_members_pages_through_every_member_once() {
    let emulator = emulator().await;
    let desk = desk_of_three(&emulator).await;
    let server = start(&emulator, &[]).await;
    let pages = all_pages(&server, "list_members", json!({"stp_id": desk, "limit": 2})).await;
    let members: Vec<i64> = pages
        .iter()
        .flat_map(|(_, page)| page["members"].as_array().unwrap().clone())
        .map(|member| member["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(members, [MAIN + 1, MAIN + 2, MAIN + 3]);
    assert!(
        pages[0]
            .0
            .starts_with(&format!("Group {desk}: 1–2 of 3 members:\n")),
        "{}",
        pages[0].0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_page_of_the_export_is_a_document_that_plans_no_change() {
    let emulator = emulator().await;
    let client = library_client(&emulator);
    for i in 0..5 {
        let id = client
            .create_group(format!("g{i}"))
            .await
            .unwrap()
            .id
            .unwrap();
        if i == 0 {
            client.add_users(id, &[MAIN + 1]).await.unwrap();
        }
    }
    let server = start(&emulator, &[]).await;
    let pages = all_pages(&server, "export", json!({"limit": 2})).await;
    assert_eq!(pages.len(), 3);
    let mut names = Vec::new();
    for (text, page) in &pages {
        assert_eq!(page["total"], json!(5));
        let document = page["document"].as_str().unwrap();
        let state = DesiredState::parse(document, Format::Toml, "page").unwrap();
        assert_eq!(json!(state.groups.len()), page["groups"]);
        names.extend(state.groups.iter().map(|group| group.name.clone()));
        let (plan_text, planned) = server.ok("plan", json!({"document": document})).await;
        assert_eq!(planned["changes"], json!(false), "{plan_text}");
        assert!(text.contains(" of 5 STP groups of main account "), "{text}");
    }
    assert_eq!(names, ["g0", "g1", "g2", "g3", "g4"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_cursors_that_are_not_one_are_tool_errors() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    for (tool, arguments, word) in [
        (
            "list_groups",
            json!({"limit": 0}),
            "`limit`: expected 1 to 1000, got 0",
        ),
        (
            "export",
            json!({"limit": 1001}),
            "`limit`: expected 1 to 1000, got 1001",
        ),
        (
            "list_members",
            json!({"stp_id": 1, "cursor": "abc"}),
            "`cursor`: expected the `next_cursor`",
        ),
        ("list_groups", json!({"limit": -1}), "`limit`"),
    ] {
        let refusal = server.refused(tool, arguments).await;
        assert!(refusal.contains(word), "{tool}: {refusal}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_too_large_to_carry_is_cut_and_its_digest_still_applies() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    // 3,000 new groups of 200-character names: the plan's JSON is over 1 MiB.
    let mut document = format!("main_user_id = {MAIN}\n");
    for i in 0..3000 {
        document.push_str(&format!("\n[[group]]\nname = \"{i:0>200}\"\n"));
    }
    let result = server
        .call("plan", json!({"document": document}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true));
    let bytes: usize = result
        .content
        .iter()
        .map(|block| block.as_text().unwrap().text.len())
        .sum();
    assert!(bytes < 1024 * 1024, "the text is {bytes} bytes");
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["plan"], Value::Null);
    assert!(structured["plan_bytes"].as_u64().unwrap() > 512 * 1024);
    assert_eq!(
        structured["summary"],
        json!("Plan: 3000 groups to create, 0 members to add, 0 to remove (3000 requests).")
    );
    let text = result.content[0].as_text().unwrap().text.clone();
    assert!(
        text.contains(" more lines not shown; the summary above counts every change"),
        "{}",
        &text[text.len() - 500..]
    );
    // apply takes the digest alone; here the operator's create limit refuses it.
    arm_tripwires(&emulator);
    let refusal = server
        .refused("apply", json!({"digest": structured["digest"]}))
        .await;
    assert!(
        refusal.starts_with("the plan creates 3000 groups, more than the limit of 10"),
        "{refusal}"
    );
    assert_no_write_sent(&emulator);

    // Twenty such groups (a few KiB of text and of JSON, far below the bounds) are
    // carried whole: the text uncut, the plan in the structured content.
    let mut document = format!("main_user_id = {MAIN}\n");
    for i in 0..20 {
        document.push_str(&format!("\n[[group]]\nname = \"{i:0>200}\"\n"));
    }
    let (text, structured) = server.ok("plan", json!({"document": document})).await;
    assert!(text.len() > 4000, "{text}");
    assert!(!text.contains("not shown"), "{text}");
    assert!(structured["plan_bytes"].as_u64().unwrap() > 4000);
    assert_eq!(structured["plan"]["steps"].as_array().unwrap().len(), 20);
    server.stop().await;
}
