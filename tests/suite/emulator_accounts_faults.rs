//! The emulator's account reads, its one-group-per-user rule, its `x-gate-exptime` switch
//! and its injected faults, each observed through the real client; and requests that
//! axum's extractors reject, still answered the way Gate answers.

#![cfg(feature = "mock")]
use crate::common;
use common::emulator::{assert_lost_answer, label, raw_signed, start as demo_emulator};

use std::time::Duration;

use gate_stp::{
    Client, Credentials, Error, ManualClock, RetryPolicy, SubAccountTypeFilter,
    mock::{
        Emulator, EmulatorConfig, Fault, FaultKind, InvalidFault, RunningEmulator, World, demo,
    },
};

fn client(emulator: &RunningEmulator, key: &str, secret: &str, retry: RetryPolicy) -> Client {
    Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(key, secret).unwrap())
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn main_client(emulator: &RunningEmulator) -> Client {
    client(
        emulator,
        demo::MAIN_KEY,
        demo::MAIN_SECRET,
        RetryPolicy::none(),
    )
}

// ---- GET /account/detail and GET /sub_accounts ----

#[tokio::test]
async fn account_detail_names_the_keys_own_account() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    for (key, secret, user) in [
        (demo::MAIN_KEY, demo::MAIN_SECRET, demo::MAIN_USER),
        (demo::SUB_KEY, demo::SUB_SECRET, demo::SUB_USER),
        (demo::OTHER_KEY, demo::OTHER_SECRET, demo::OTHER_MAIN_USER),
    ] {
        let detail = client(&emulator, key, secret, RetryPolicy::none())
            .account_detail()
            .await
            .unwrap();
        assert_eq!(detail.user_id, Some(user));
        assert_eq!(detail.key.as_ref().and_then(|key| key.mode), Some(1));
    }
    let error = client(
        &emulator,
        demo::MAIN_KEY,
        "wrong-secret",
        RetryPolicy::none(),
    )
    .account_detail()
    .await
    .unwrap_err();
    assert_eq!(label(&error), Some("INVALID_SIGNATURE"));
    emulator.shutdown().await;
}

const DESK_WORLD: &str = r#"
[[accounts]]
user_id = 500
login_name = "desk"
key = "desk-key"
secret = "desk-secret"

[[accounts]]
user_id = 503
main = 500
login_name = "margin_bot"
cross_margin = true

[[accounts]]
user_id = 501
main = 500
login_name = "mm_bot"
remark = "market making"
key = "bot-key"
secret = "bot-secret"

[[accounts]]
user_id = 502
main = 500

[[accounts]]
user_id = 900
key = "rival-key"
secret = "rival-secret"

[[accounts]]
user_id = 901
main = 900
login_name = "mm_bot"
"#;

#[tokio::test]
async fn sub_accounts_are_the_callers_own_filtered_by_type() {
    let start = 1_800_000_000;
    let world = World::from_toml_str(DESK_WORLD).unwrap();
    let config = EmulatorConfig::default().clock(ManualClock::at_unix_secs(start));
    let emulator = Emulator::start(world, config).await.unwrap();
    let desk = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new("desk-key", "desk-secret").unwrap())
        .clock(ManualClock::at_unix_secs(start))
        .build()
        .unwrap();

    // Without `type`, and with type=1: regular sub-accounts only, by user id.
    for listed in [
        desk.list_sub_accounts().await.unwrap(),
        desk.list_sub_accounts()
            .kind(SubAccountTypeFilter::Regular)
            .await
            .unwrap(),
    ] {
        let rows: Vec<_> = listed
            .iter()
            .map(|s| {
                (
                    s.user_id,
                    s.login_name.as_str(),
                    s.remark.as_deref(),
                    s.type_,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (Some(501), "mm_bot", Some("market making"), Some(1)),
                (Some(502), "sub_502", None, Some(1)),
            ]
        );
        assert!(listed.iter().all(|s| s.state == Some(1)));
        assert!(listed.iter().all(|s| s.create_time == Some(start as i64)));
    }
    // type=0: every kind, the cross-margin one as type 3. Never another main's accounts.
    let all = desk
        .list_sub_accounts()
        .kind(SubAccountTypeFilter::All)
        .await
        .unwrap();
    let kinds: Vec<_> = all.iter().map(|s| (s.user_id, s.type_)).collect();
    assert_eq!(
        kinds,
        [
            (Some(501), Some(1)),
            (Some(502), Some(1)),
            (Some(503), Some(3))
        ]
    );

    // A sub-account's key is refused, as Gate does.
    let bot = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new("bot-key", "bot-secret").unwrap())
        .clock(ManualClock::at_unix_secs(start))
        .build()
        .unwrap();
    let error = bot.list_sub_accounts().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(403));
    assert_eq!(label(&error), Some("FORBIDDEN"));
    emulator.shutdown().await;
}

// ---- One group per user ----

#[tokio::test]
async fn a_user_in_one_group_cannot_join_another_by_default() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    let a = main.create_group("a").await.unwrap().id.unwrap();
    let b = main.create_group("b").await.unwrap().id.unwrap();
    main.add_users(a, &[demo::SUB_USER]).await.unwrap();
    // Adding again to the same group is still harmless.
    main.add_users(a, &[demo::SUB_USER]).await.unwrap();

    // The whole batch is refused, the valid user included.
    let error = main
        .add_users(b, &[demo::SUB_USER_WITHOUT_KEY, demo::SUB_USER])
        .await
        .unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(label(&error), Some("INVALID_PARAM_VALUE"));
    let Error::Api(api) = &error else {
        panic!("{error:?}")
    };
    let message = api.message.as_deref().unwrap_or_default();
    assert!(
        message.contains(&demo::SUB_USER.to_string()) && message.contains(&a.to_string()),
        "{message}"
    );
    assert_eq!(emulator.members(b), Some(vec![]));
    assert_eq!(emulator.members(a), Some(vec![demo::SUB_USER]));

    // Moving a user: out of one group, then into the other.
    main.remove_users(a, &[demo::SUB_USER]).await.unwrap();
    main.add_users(b, &[demo::SUB_USER]).await.unwrap();
    assert_eq!(emulator.members(b), Some(vec![demo::SUB_USER]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_one_group_rule_can_be_switched_off() {
    let emulator = demo_emulator(EmulatorConfig::default().one_group_per_user(false)).await;
    let main = main_client(&emulator);
    let a = main.create_group("a").await.unwrap().id.unwrap();
    let b = main.create_group("b").await.unwrap().id.unwrap();
    main.add_users(a, &[demo::SUB_USER]).await.unwrap();
    main.add_users(b, &[demo::SUB_USER]).await.unwrap();
    assert_eq!(emulator.members(a), Some(vec![demo::SUB_USER]));
    assert_eq!(emulator.members(b), Some(vec![demo::SUB_USER]));
    emulator.shutdown().await;
}

// ---- x-gate-exptime ----

#[tokio::test]
async fn exptime_is_honoured_unless_switched_off() {
    let past = gate_stp::Clock::now(&gate_stp::SystemClock) - Duration::from_secs(30);

    let strict = demo_emulator(EmulatorConfig::default()).await;
    let error = main_client(&strict)
        .create_group("late")
        .expires_at(past)
        .await
        .unwrap_err();
    assert_eq!(label(&error), Some("REQUEST_EXPIRED"));
    assert!(strict.groups().is_empty());
    strict.shutdown().await;

    let lenient = demo_emulator(EmulatorConfig::default().honour_exptime(false)).await;
    let group = main_client(&lenient)
        .create_group("late")
        .expires_at(past)
        .await
        .unwrap();
    assert_eq!(group.name, "late");
    assert_eq!(lenient.groups().len(), 1);
    lenient.shutdown().await;
}

// ---- Injected faults ----

#[tokio::test]
async fn a_status_fault_answers_like_gate_and_executes_nothing() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Status(503)))
        .unwrap();
    let error = main.create_group("g").await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(label(&error), Some("SERVER_ERROR"));
    assert!(emulator.groups().is_empty());
    assert_eq!(emulator.pending_faults(), 0);
    // It fired once: the next create goes through.
    main.create_group("g").await.unwrap();
    assert_eq!(emulator.groups().len(), 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn faults_count_requests_of_their_operation_from_injection() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    // Requests before the injection do not count.
    main.list_groups().await.unwrap();
    emulator
        .inject_fault(Fault::new("listSTPGroups", 2, FaultKind::Status(502)))
        .unwrap();
    main.account_detail().await.unwrap(); // another operation: not counted
    main.list_groups().await.unwrap(); // 1st
    let error = main.list_groups().await.unwrap_err(); // 2nd
    assert_eq!(error.status().map(|s| s.as_u16()), Some(502));
    main.list_groups().await.unwrap(); // fired once
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_read_is_retried_past_a_fault() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = client(
        &emulator,
        demo::MAIN_KEY,
        demo::MAIN_SECRET,
        RetryPolicy::default().initial_backoff(Duration::from_millis(1)),
    );
    for kind in [FaultKind::Status(503), FaultKind::Drop] {
        emulator
            .inject_fault(Fault::new("listSubAccounts", 1, kind))
            .unwrap();
        let subs = main.list_sub_accounts().await.unwrap();
        assert_eq!(subs.len(), 2, "{kind:?}");
        assert_eq!(emulator.pending_faults(), 0, "{kind:?}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_dropped_create_is_a_transport_error_and_creates_nothing() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Drop))
        .unwrap();
    let error = main.create_group("desk").await.unwrap_err();
    assert_lost_answer(&error);
    assert!(emulator.groups().is_empty());
    assert_eq!(emulator.pending_faults(), 0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_executed_then_dropped_create_happened_although_the_client_saw_no_answer() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::ExecuteThenDrop))
        .unwrap();
    let error = main.create_group("desk").await.unwrap_err();
    assert_lost_answer(&error);
    let groups = emulator.groups();
    assert_eq!(groups.len(), 1, "the create happened exactly once");
    assert_eq!(groups[0].name, "desk");
    // The client can find it by listing.
    let listed = main.list_groups().name("desk").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, groups[0].id);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_executed_then_dropped_membership_change_happened() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    let main = main_client(&emulator);
    let id = main.create_group("g").await.unwrap().id.unwrap();
    emulator
        .inject_fault(Fault::new(
            "addSTPGroupUsers",
            1,
            FaultKind::ExecuteThenDrop,
        ))
        .unwrap();
    emulator
        .inject_fault(Fault::new("deleteSTPGroupUsers", 1, FaultKind::Drop))
        .unwrap();
    assert_lost_answer(&main.add_users(id, &[demo::SUB_USER]).await.unwrap_err());
    assert_eq!(emulator.members(id), Some(vec![demo::SUB_USER]));
    assert_lost_answer(&main.remove_users(id, &[demo::SUB_USER]).await.unwrap_err());
    assert_eq!(emulator.members(id), Some(vec![demo::SUB_USER]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn invalid_faults_are_refused() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    assert_eq!(
        emulator.inject_fault(Fault::new("createGroup", 1, FaultKind::Drop)),
        Err(InvalidFault::UnknownOperation("createGroup".into()))
    );
    assert_eq!(
        emulator.inject_fault(Fault::new("createSTPGroup", 0, FaultKind::Drop)),
        Err(InvalidFault::ZeroNth)
    );
    assert_eq!(
        emulator.inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Status(302))),
        Err(InvalidFault::NotAnErrorStatus(302))
    );
    assert_eq!(emulator.pending_faults(), 0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_dropped_answer_sends_not_one_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let emulator = demo_emulator(EmulatorConfig::default()).await;
    for kind in [FaultKind::Drop, FaultKind::ExecuteThenDrop] {
        // The public endpoint needs no signature, so a hand-written request reaches it.
        emulator
            .inject_fault(Fault::new("getSystemTime", 1, kind))
            .unwrap();
        let mut stream = tokio::net::TcpStream::connect(emulator.local_addr())
            .await
            .unwrap();
        stream
            .write_all(
                b"GET /api/v4/spot/time HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut received = Vec::new();
        // Closed (EOF) or reset: either way, nothing arrived before the end. Bounded: if
        // the fault did not fire, the emulator answers and closes, and the test fails
        // instead of waiting on an open connection.
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut received),
        )
        .await;
        assert!(
            read.is_ok(),
            "{kind:?}: the connection was neither closed nor answered"
        );
        assert!(
            received.is_empty(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&received)
        );
    }
    emulator.shutdown().await;
}

// ---- Extractor rejections stay Gate-shaped ----

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn a_path_id_axum_cannot_decode_is_invalid_param_value_after_authentication() {
    let emulator = demo_emulator(EmulatorConfig::default()).await;
    // %FF is not UTF-8 once decoded: axum's Path rejects it.
    let target = "/api/v4/account/stp_groups/%FF/users";
    let (status, body) =
        raw_signed(&emulator, "GET", target, "", b"", b"", demo::MAIN_SECRET).await;
    assert_eq!(
        (status, body["label"].as_str()),
        (400, Some("INVALID_PARAM_VALUE")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("stp_id"),
        "{body}"
    );
    // Authentication still comes first.
    let (status, body) = raw_signed(&emulator, "GET", target, "", b"", b"", "wrong").await;
    assert_eq!(
        (status, body["label"].as_str()),
        (401, Some("INVALID_SIGNATURE")),
        "{body}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_chunked_body_is_bounded_by_the_body_limit() {
    let emulator = demo_emulator(EmulatorConfig::default().max_body_bytes(64)).await;
    let chunked_header = "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n";

    // Under the limit, in several chunks: read whole and signed over the whole.
    let small = br#"{"name":"chunked"}"#;
    let (status, body) = raw_signed(
        &emulator,
        "POST",
        "/api/v4/account/stp_groups",
        chunked_header,
        &chunked(small, 5),
        small,
        demo::MAIN_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("chunked")),
        "{body}"
    );

    // Over it, with no Content-Length to refuse it early: the limit stops the read.
    let large = format!(r#"{{"name":"{}"}}"#, "n".repeat(100));
    let (status, body) = raw_signed(
        &emulator,
        "POST",
        "/api/v4/account/stp_groups",
        chunked_header,
        &chunked(large.as_bytes(), 16),
        large.as_bytes(),
        demo::MAIN_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["label"].as_str()),
        (400, Some("INVALID_REQUEST_BODY")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("64"), "{body}");
    assert_eq!(emulator.groups().len(), 1);
    emulator.shutdown().await;
}
