//! The emulator's rules one by one, driven over HTTP: through the real client where the
//! request is valid, and with hand-made requests (signed by tests/common's independent
//! signer) where it must not be.
#![cfg(feature = "mock")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gate_stp::{
    Client, Credentials, Error, Label, ManualClock, RetryPolicy,
    mock::{Emulator, EmulatorConfig, RunningEmulator, World, demo},
};
use serde_json::Value;

const NOW: u64 = 1_800_000_000;

async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(World::demo(), config).await.unwrap()
}

fn clock() -> ManualClock {
    ManualClock::at_unix_secs(NOW)
}

fn client(emulator: &RunningEmulator, key: &str, secret: &str, clock: ManualClock) -> Client {
    Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(key, secret).unwrap())
        .clock(clock)
        .retry_policy(RetryPolicy::none())
        .resync_on_expired(false)
        .build()
        .unwrap()
}

fn main_client(emulator: &RunningEmulator, clock: ManualClock) -> Client {
    client(emulator, demo::MAIN_KEY, demo::MAIN_SECRET, clock)
}

fn label(error: &Error) -> (u16, String) {
    (
        error.status().map(|s| s.as_u16()).unwrap_or(0),
        error
            .label()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default(),
    )
}

/// Sends a hand-made request; `sign` = None leaves SIGN out.
async fn raw(
    emulator: &RunningEmulator,
    method: &str,
    path_and_query: &str,
    body: &str,
    timestamp: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let url = format!("{}{path_and_query}", emulator.base_url());
    let parsed = reqwest::Url::parse(&url).unwrap();
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), url.clone())
        .body(body.to_owned());
    if let Some(key) = key {
        let sign = common::gate_sign(
            demo::MAIN_SECRET,
            method,
            parsed.path(),
            parsed.query().unwrap_or(""),
            body.as_bytes(),
            timestamp,
        );
        request = request
            .header("KEY", key)
            .header("Timestamp", timestamp)
            .header("SIGN", sign);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn authentication_failures_are_gate_shaped() {
    let emulator = start(EmulatorConfig::default().clock(clock())).await;
    let ts = NOW.to_string();
    let (status, body) = raw(&emulator, "GET", "/account/stp_groups", "", &ts, None).await;
    assert_eq!(
        (status, body["label"].as_str()),
        (400, Some("MISSING_REQUIRED_HEADER"))
    );

    let (status, body) = raw(
        &emulator,
        "GET",
        "/account/stp_groups",
        "",
        &ts,
        Some("nope"),
    )
    .await;
    assert_eq!((status, body["label"].as_str()), (401, Some("INVALID_KEY")));

    // Signed with the main secret but presented with the sub-account's key.
    let (status, body) = raw(
        &emulator,
        "GET",
        "/account/stp_groups",
        "",
        &ts,
        Some(demo::SUB_KEY),
    )
    .await;
    assert_eq!(
        (status, body["label"].as_str()),
        (401, Some("INVALID_SIGNATURE"))
    );

    // A fractional Timestamp, as the official Python SDK sends, is accepted.
    let fractional = format!("{NOW}.4796917");
    let (status, _) = raw(
        &emulator,
        "GET",
        "/account/stp_groups?name=a+b",
        "",
        &fractional,
        Some(demo::MAIN_KEY),
    )
    .await;
    assert_eq!(status, 200);

    // The 60 s window, both sides.
    for (offset, expected) in [(60i64, 200u16), (-60, 200), (61, 401), (-61, 401)] {
        let ts = (NOW as i64 + offset).to_string();
        let (status, body) = raw(
            &emulator,
            "GET",
            "/account/stp_groups",
            "",
            &ts,
            Some(demo::MAIN_KEY),
        )
        .await;
        assert_eq!(status, expected, "offset {offset}: {body}");
        if expected == 401 {
            assert_eq!(body["label"], "REQUEST_EXPIRED");
        }
    }
}

#[tokio::test]
async fn clock_offset_of_the_emulator_expires_requests() {
    let emulator = start(
        EmulatorConfig::default()
            .clock(clock())
            .clock_offset_ms(300_000),
    )
    .await;
    let client = main_client(&emulator, clock());
    let error = client.list_groups().await.unwrap_err();
    assert_eq!(error.label(), Some(&Label::RequestExpired));
    // After a sync the same client gets through.
    assert_eq!(client.sync_clock().await.unwrap().offset_ms, 300_000);
    client.list_groups().await.unwrap();
}

#[tokio::test]
async fn only_the_main_account_creates_and_only_the_creator_manages() {
    let emulator = start(EmulatorConfig::default().clock(clock())).await;
    let main = main_client(&emulator, clock());
    let sub = client(&emulator, demo::SUB_KEY, demo::SUB_SECRET, clock());
    let other = client(&emulator, demo::OTHER_KEY, demo::OTHER_SECRET, clock());

    let error = sub.create_group("sub").await.unwrap_err();
    assert_eq!(label(&error), (403, "FORBIDDEN".into()));

    let group = main.create_group("Desk One").await.unwrap();
    let id = group.id.unwrap();
    assert_eq!(group.creator_id, Some(demo::MAIN_USER));
    assert_eq!(group.create_time, Some(NOW as i64));

    for error in [
        other.list_users(id).await.unwrap_err(),
        other
            .add_users(id, &[demo::OTHER_SUB_USER])
            .await
            .unwrap_err(),
        other
            .remove_users(id, &[demo::OTHER_SUB_USER])
            .await
            .unwrap_err(),
        sub.list_users(id).await.unwrap_err(),
    ] {
        assert_eq!(label(&error), (403, "FORBIDDEN".into()));
    }
    assert!(other.list_groups().await.unwrap().is_empty());
    let error = main.list_users(id + 1000).await.unwrap_err();
    assert_eq!(label(&error), (404, "NOT_FOUND".into()));
}

#[tokio::test]
async fn membership_rules_are_all_or_nothing() {
    let emulator = start(EmulatorConfig::default().clock(clock())).await;
    let main = main_client(&emulator, clock());
    let id = main.create_group("desk").await.unwrap().id.unwrap();

    let members = main.add_users(id, &[demo::SUB_USER]).await.unwrap();
    assert_eq!(members.len(), 1);
    // Twice is harmless; the main account itself may join.
    let members = main
        .add_users(id, &[demo::SUB_USER, demo::MAIN_USER])
        .await
        .unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.user_id.unwrap())
            .collect::<Vec<_>>(),
        [demo::MAIN_USER, demo::SUB_USER]
    );

    // A foreign user or an unknown one refuses the whole request.
    let error = main
        .add_users(id, &[demo::SUB_USER_WITHOUT_KEY, demo::OTHER_SUB_USER])
        .await
        .unwrap_err();
    assert_eq!(label(&error), (403, "FORBIDDEN".into()));
    let error = main
        .add_users(id, &[demo::SUB_USER_WITHOUT_KEY, 99_999])
        .await
        .unwrap_err();
    assert_eq!(label(&error), (400, "INVALID_PARAM_VALUE".into()));
    let error = main
        .remove_users(id, &[demo::SUB_USER, 20_000])
        .await
        .unwrap_err();
    assert_eq!(label(&error), (403, "FORBIDDEN".into()));
    assert_eq!(
        emulator.members(id),
        Some(vec![demo::MAIN_USER, demo::SUB_USER])
    );

    // Several ids in one DELETE; a valid non-member is a no-op.
    let members = main
        .remove_users(
            id,
            &[demo::SUB_USER, demo::MAIN_USER, demo::SUB_USER_WITHOUT_KEY],
        )
        .await
        .unwrap();
    assert!(members.is_empty());
    assert_eq!(emulator.members(id), Some(vec![]));
}

#[tokio::test]
async fn name_filter_is_a_case_insensitive_substring() {
    let emulator = start(EmulatorConfig::default().clock(clock())).await;
    let main = main_client(&emulator, clock());
    for name in ["Alpha Desk", "beta desk", "gamma"] {
        main.create_group(name).await.unwrap();
    }
    let names = |groups: Vec<gate_stp::models::StpGroup>| {
        groups.into_iter().map(|g| g.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(main.list_groups().name("DESK").await.unwrap().into_inner()),
        ["Alpha Desk", "beta desk"]
    );
    assert_eq!(
        names(main.list_groups().name("amm").await.unwrap().into_inner()),
        ["gamma"]
    );
    assert_eq!(main.list_groups().await.unwrap().len(), 3);
}

#[tokio::test]
async fn bad_bodies_and_params_are_refused() {
    let emulator = start(
        EmulatorConfig::default()
            .clock(clock())
            .max_body_bytes(1024),
    )
    .await;
    let main = main_client(&emulator, clock());
    let id = main.create_group("desk").await.unwrap().id.unwrap();
    let ts = NOW.to_string();
    let key = Some(demo::MAIN_KEY);
    let users = format!("/account/stp_groups/{id}/users");
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        (
            "POST",
            "/account/stp_groups".into(),
            "{not json".into(),
            400,
            "INVALID_REQUEST_BODY",
        ),
        (
            "POST",
            "/account/stp_groups".into(),
            r#"{"name":""}"#.into(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "POST",
            "/account/stp_groups".into(),
            r#"{"name":5}"#.into(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "POST",
            users.clone(),
            r#"["10001"]"#.into(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "POST",
            users.clone(),
            "[0]".into(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "POST",
            users.clone(),
            format!("[{}]", "1,".repeat(600) + "1"),
            400,
            "INVALID_REQUEST_BODY",
        ),
        (
            "DELETE",
            users.clone(),
            String::new(),
            400,
            "MISSING_REQUIRED_PARAM",
        ),
        (
            "DELETE",
            format!("{users}?user_id=-1"),
            String::new(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "GET",
            "/account/stp_groups/abc/users".into(),
            String::new(),
            400,
            "INVALID_PARAM_VALUE",
        ),
        (
            "GET",
            "/account/nothing".into(),
            String::new(),
            404,
            "NOT_FOUND",
        ),
        (
            "PUT",
            "/account/stp_groups".into(),
            String::new(),
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (method, path, body, status, expected) in cases {
        let (got, answer) = raw(&emulator, method, &path, &body, &ts, key).await;
        assert_eq!(
            (got, answer["label"].as_str()),
            (status, Some(expected)),
            "{method} {path} {body:.40}"
        );
    }
    assert_eq!(emulator.groups().len(), 1);
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let clock = clock();
    let emulator = start(
        EmulatorConfig::default()
            .clock(clock.clone())
            .rate_limit(3, Duration::from_secs(10)),
    )
    .await;
    let main = main_client(&emulator, clock.clone());
    for remaining in [2, 1, 0] {
        let response = main.list_groups().await.unwrap();
        let limit = response.rate_limit().unwrap();
        assert_eq!((limit.limit, limit.remaining), (3, remaining));
        assert_eq!(limit.reset_at, UNIX_EPOCH + Duration::from_secs(NOW + 10));
    }
    let error = main.list_groups().await.unwrap_err();
    let Error::RateLimited(limited) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        limited.reset_at(),
        Some(UNIX_EPOCH + Duration::from_secs(NOW + 10))
    );
    // Per endpoint: another operation still has its own window.
    main.create_group("x").await.unwrap();
    clock.advance(Duration::from_secs(10));
    main.list_groups().await.unwrap();
}

#[tokio::test]
async fn gate_headers_are_sent_and_exptime_is_honoured() {
    let emulator = start(EmulatorConfig::default().clock(clock())).await;
    let main = main_client(&emulator, clock());
    let response = main.list_groups().client_request_id("abc-1").await.unwrap();
    assert_eq!(response.meta().client_request_id.as_deref(), Some("abc-1"));
    assert!(response.meta().trace_id.is_some());

    let late = main
        .list_groups()
        .expires_at(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW - 1))
        .await
        .unwrap_err();
    assert_eq!(label(&late), (400, "REQUEST_EXPIRED".into()));
    main.list_groups()
        .expires_in(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_adds_and_removes_lose_nothing() {
    let emulator = start(EmulatorConfig::default().without_rate_limit()).await;
    let main = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    let id = main.create_group("busy").await.unwrap().id.unwrap();
    let users = [demo::MAIN_USER, demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY];
    // Each of many tasks toggles one user and ends with an add; every response must
    // show a consistent membership, and the end state must hold every user exactly once.
    let tasks: Vec<_> = (0..24)
        .map(|task| {
            let client = main.clone();
            let user = users[task % users.len()];
            tokio::spawn(async move {
                for round in 0..10 {
                    let members = if round % 2 == 0 {
                        client.add_users(id, &[user]).await.unwrap()
                    } else {
                        client.remove_users(id, &[user]).await.unwrap()
                    };
                    let mut ids: Vec<i64> = members.iter().filter_map(|m| m.user_id).collect();
                    let before = ids.len();
                    ids.dedup();
                    assert_eq!(before, ids.len(), "duplicate member in a response");
                }
                client.add_users(id, &[user]).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected = users.to_vec();
    assert_eq!(emulator.members(id), Some(expected));
    assert_eq!(emulator.groups().len(), 1);
}

#[test]
fn world_files_are_checked_whole() {
    let good = "[[accounts]]\nuser_id = 1\nkey = \"k\"\nsecret = \"s\"\n\n[[accounts]]\nuser_id = 2\nmain = 1\n";
    let world = World::from_toml_str(good).unwrap();
    assert!(world.account(2).is_some());

    let malformed = "[[accounts]]\nuser_id = 1\nuser_id = = 2\n";
    let error = World::from_toml_str(malformed).unwrap_err().to_string();
    assert!(error.contains("line 3"), "{error}");

    for (text, needle) in [
        (
            "[[accounts]]\nuser_id = 1\n[[accounts]]\nuser_id = 1\n",
            "1",
        ),
        ("[[accounts]]\nuser_id = 1\nmain = 7\n", "7"),
        ("[[accounts]]\nuser_id = 1\nkey = \"k\"\n", "1"),
        ("[[accounts]]\nuser_id = -1\n", "-1"),
    ] {
        let error = World::from_toml_str(text).unwrap_err().to_string();
        assert!(error.contains(needle), "{text:?} -> {error}");
    }
}
