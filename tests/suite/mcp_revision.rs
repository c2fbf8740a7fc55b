//! The two protocol revisions: a 2026-07-28 client (server/discover, no initialize, each
//! request self-contained) gets apply's confirmation as an `input_required` round trip
//! whose state the server sealed; a 2025-11-25 client gets an elicitation request. Both
//! with rmcp's own client; a forged or mismatched request state sends nothing.
#![cfg(feature = "cli")]

use rmcp::{
    model::{CallToolRequestParams, ElicitationAction, ProtocolVersion},
    service::ClientLifecycleMode,
};
use serde_json::json;

use super::mcp::{
    AskingClient, DESK, arm_tripwires, asking, assert_no_write_sent, digest_of, emulator,
    start_lifecycle,
};

/// `gate-stp mcp FLAGS` with `client`, started the way its revision starts a session.
async fn start_as(
    emulator: &gate_stp::mock::RunningEmulator,
    flags: &[&str],
    client: AskingClient,
) -> super::mcp::Server<AskingClient> {
    let lifecycle = if client.version == ProtocolVersion::V_2026_07_28 {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    start_lifecycle(emulator, flags, "warn", client, &[], lifecycle).await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_revision_is_asked_its_own_way_and_a_yes_applies() {
    for version in [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25] {
        let emulator = emulator().await;
        let client = asking(version.clone(), ElicitationAction::Accept);
        let questions = client.questions.clone();
        let server = start_as(&emulator, &["--allow-apply"], client).await;
        let info = server.session.peer_info().expect("server info");
        assert_eq!(info.protocol_version, version, "negotiated");
        let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
        let (text, _) = server
            .ok("apply", json!({"digest": digest_of(&planned)}))
            .await;
        assert!(
            text.starts_with("Applied: 1 group created"),
            "{version}: {text}"
        );
        let asked = questions.lock().await.clone();
        assert_eq!(asked.len(), 1, "{version}: {asked:?}");
        assert!(asked[0].contains("- create group \"desk\""), "{asked:?}");
        assert_eq!(emulator.groups().len(), 1);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_sends_nothing_in_either_revision() {
    for version in [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25] {
        for answer in [ElicitationAction::Decline, ElicitationAction::Cancel] {
            let emulator = emulator().await;
            let client = asking(version.clone(), answer.clone());
            let server = start_as(&emulator, &["--allow-apply"], client).await;
            let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
            arm_tripwires(&emulator);
            let refusal = server
                .refused("apply", json!({"digest": digest_of(&planned)}))
                .await;
            assert!(
                refusal.contains("did not confirm"),
                "{version} {answer:?}: {refusal}"
            );
            assert_no_write_sent(&emulator);
            // The digest stays good: asked again, a yes would apply it.
            server.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_or_borrowed_request_state_sends_nothing() {
    let emulator = emulator().await;
    let client = asking(ProtocolVersion::V_2026_07_28, ElicitationAction::Accept);
    let server = start_as(&emulator, &["--allow-apply"], client).await;
    let (_, first) = server.ok("plan", json!({"document": DESK})).await;
    let other = "main_user_id = 10000\n\n[[group]]\nname = \"other\"\n";
    let (_, second) = server.ok("plan", json!({"document": other})).await;
    let (first, second) = (digest_of(&first), digest_of(&second));
    // The first round: the server asks and hands over its sealed state.
    let round = server
        .session
        .call_tool_once(
            CallToolRequestParams::new("apply")
                .with_arguments(json!({"digest": first}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let rmcp::model::CallToolResponse::InputRequired(required) = round else {
        panic!("not input_required: {round:?}");
    };
    let state = required.request_state.clone().expect("a request state");
    assert!(
        required
            .input_requests
            .as_ref()
            .is_some_and(|r| r.contains_key("confirm"))
    );
    let yes = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    let yes: rmcp::model::InputResponses = serde_json::from_value(yes).unwrap();
    arm_tripwires(&emulator);
    let mut tampered = state.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    for (digest, state) in [
        // The state of the first digest, borrowed for the second.
        (second.clone(), state.clone()),
        // A state changed by one character.
        (first.clone(), String::from_utf8(tampered).unwrap()),
        // A state made up.
        (first.clone(), "v1.forged".to_owned()),
    ] {
        let answer = server
            .session
            .call_tool_once(
                CallToolRequestParams::new("apply")
                    .with_arguments(json!({"digest": digest}).as_object().unwrap().clone())
                    .with_input_responses(yes.clone())
                    .with_request_state(state),
            )
            .await
            .unwrap();
        let rmcp::model::CallToolResponse::Complete(result) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(result.is_error, Some(true), "{result:?}");
        let text = &result.content[0].as_text().unwrap().text;
        assert!(text.contains("request state"), "{text}");
    }
    assert_no_write_sent(&emulator);
    server.stop().await;
}

/// A 2026-07-28 client that cannot ask its user is not asked (as an older one): the
/// operator's `--allow-apply` is the consent.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_client_without_elicitation_applies_without_a_question() {
    let emulator = emulator().await;
    let server = start_lifecycle(
        &emulator,
        &["--allow-apply"],
        "warn",
        (),
        &[],
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    let round = server
        .session
        .call_tool_once(
            CallToolRequestParams::new("apply").with_arguments(
                json!({"digest": digest_of(&planned)})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert!(
        matches!(&round, rmcp::model::CallToolResponse::Complete(result) if result.is_error != Some(true)),
        "{round:?}"
    );
    assert_eq!(emulator.groups().len(), 1);
    server.stop().await;
}
