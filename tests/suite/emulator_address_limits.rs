//! The emulator's rate limit on requests that name no account it can trust: unsigned
//! requests and requests whose authentication failed are counted per client address
//! (as Gate does), and a signed request by an account keeps its own count. Observed over
//! raw HTTP, so no client of ours decides what is sent or how answers are read.
//!
//! The emulator's clock is fixed (a `ManualClock`): every request falls into the same
//! window whatever the machine's speed, so the count alone decides each answer.
#![cfg(feature = "mock")]

use std::{net::SocketAddr, time::Duration};

use gate_stp::{
    ManualClock,
    mock::{Emulator, EmulatorConfig, RunningEmulator, World, demo},
};

use crate::common::raw::{self, Answer};

const NOW: u64 = 1_800_000_000;
const LIMIT: u32 = 3;
const GROUPS: &str = "/api/v4/account/stp_groups";

async fn emulator() -> RunningEmulator {
    let config = EmulatorConfig::default()
        .rate_limit(LIMIT, Duration::from_secs(10))
        .clock(ManualClock::at_unix_secs(NOW));
    Emulator::start(World::demo(), config).await.unwrap()
}

/// `heads` sent one after the other, each on its own connection, off the runtime the
/// emulator serves on.
async fn send_all(addr: SocketAddr, heads: Vec<String>) -> Vec<Answer> {
    tokio::task::spawn_blocking(move || {
        heads.iter().map(|head| raw::exchange(addr, head)).collect()
    })
    .await
    .unwrap()
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|answer| answer.status).collect()
}

fn labels(answers: &[Answer]) -> Vec<&str> {
    answers
        .iter()
        .map(|answer| answer.body["label"].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_are_limited_per_address() {
    let emulator = emulator().await;
    let heads = vec![raw::anonymous_get(GROUPS); LIMIT as usize + 2];
    let answers = send_all(emulator.local_addr(), heads).await;
    // Refused for want of a key up to the limit, then refused for the rate before any
    // other check, with Gate's headers saying so.
    assert_eq!(
        statuses(&answers),
        [400, 400, 400, 429, 429],
        "{answers:#?}"
    );
    assert_eq!(
        labels(&answers)[..4],
        [
            "MISSING_REQUIRED_HEADER",
            "MISSING_REQUIRED_HEADER",
            "MISSING_REQUIRED_HEADER",
            "TOO_MANY_REQUESTS"
        ],
        "{answers:#?}"
    );
    assert_eq!(
        answers[3].header("x-gate-ratelimit-requests-remain"),
        Some("0")
    );
    assert_eq!(
        answers[0].header("x-gate-ratelimit-limit"),
        Some(LIMIT.to_string().as_str()),
        "{answers:#?}"
    );

    // Another address has a count of its own.
    let other = raw::connect_from([127, 0, 0, 2], emulator.local_addr()).await;
    let answer =
        tokio::task::spawn_blocking(move || raw::exchange_on(other, &raw::anonymous_get(GROUPS)))
            .await
            .unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.header("x-gate-ratelimit-requests-remain"),
        Some("2"),
        "{answer:?}"
    );

    // The account's own count is untouched: a signed request from the same address passes.
    let signed = raw::signed_get(GROUPS, demo::MAIN_KEY, demo::MAIN_SECRET, NOW);
    let answers = send_all(emulator.local_addr(), vec![signed]).await;
    assert_eq!(statuses(&answers), [200], "{answers:#?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_limited_per_address_not_per_claimed_key() {
    let emulator = emulator().await;
    // The demo main account's key with a wrong secret: the key is claimed, not proven, so
    // these must not use up (or be let through by) that account's count.
    let forged = raw::signed_get(GROUPS, demo::MAIN_KEY, "not-the-secret", NOW);
    let answers = send_all(emulator.local_addr(), vec![forged; LIMIT as usize + 1]).await;
    assert_eq!(statuses(&answers), [401, 401, 401, 429], "{answers:#?}");
    assert_eq!(
        labels(&answers),
        [
            "INVALID_SIGNATURE",
            "INVALID_SIGNATURE",
            "INVALID_SIGNATURE",
            "TOO_MANY_REQUESTS"
        ]
    );
    // Unsigned requests from the same address share that count: it is the address's.
    let answers = send_all(emulator.local_addr(), vec![raw::anonymous_get(GROUPS)]).await;
    assert_eq!(statuses(&answers), [429], "{answers:#?}");

    // The account itself still has its whole window.
    let signed = raw::signed_get(GROUPS, demo::MAIN_KEY, demo::MAIN_SECRET, NOW);
    let answers = send_all(emulator.local_addr(), vec![signed; LIMIT as usize + 1]).await;
    assert_eq!(statuses(&answers), [200, 200, 200, 429], "{answers:#?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_callers_does_not_reset_anyones_count() {
    // The emulator bounds its table of counts by forgetting entries of past windows once
    // it tracks more than 4096 callers; the current window's counts must survive that.
    let config = EmulatorConfig::default()
        .rate_limit(1, Duration::from_secs(10))
        .clock(ManualClock::at_unix_secs(NOW));
    let emulator = Emulator::start(World::demo(), config).await.unwrap();
    let addr = emulator.local_addr();
    let time = "GET /api/v4/spot/time HTTP/1.1\r\nHost: gate\r\n";
    let first = [127, 0, 0, 1];
    assert_eq!(raw::exchange_from(first, addr, time).await, 200);
    assert_eq!(raw::exchange_from(first, addr, time).await, 429);
    // 4096 other addresses of 127.0.0.0/8, one request each: 4097 callers tracked. Up to
    // 32 at a time: one by one, this test took longer than any other of the suite.
    let mut callers = tokio::task::JoinSet::new();
    for n in 0..4096u32 {
        let [_, _, high, low] = (n + 256).to_be_bytes();
        callers
            .spawn(async move { (n, raw::exchange_from([127, 1, high, low], addr, time).await) });
        if callers.len() == 32 {
            let (n, status) = callers.join_next().await.unwrap().unwrap();
            assert_eq!(status, 200, "caller {n}");
        }
    }
    while let Some(answer) = callers.join_next().await {
        let (n, status) = answer.unwrap();
        assert_eq!(status, 200, "caller {n}");
    }
    // The first caller's request is still the second of its window.
    assert_eq!(raw::exchange_from(first, addr, time).await, 429);
    emulator.shutdown().await;
}
