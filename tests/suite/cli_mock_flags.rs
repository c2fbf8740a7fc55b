//! `gate-stp mock`'s switches for the two rules Gate does not document on STP calls:
//! `--ignore-exptime` and `--allow-multiple-groups`, observed through the real client
//! against the running binary; `--clock-offset`, `--no-rate-limit` and `--accounts` read
//! over raw HTTP; a failed bind.
#![cfg(feature = "cli")]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    time::Duration,
};

use gate_stp::{Client, Credentials, Error, Label, mock::demo};

use crate::common::raw;

/// A `gate-stp mock` process on a free loopback port, killed on drop.
struct MockProcess {
    child: Child,
    base_url: String,
}

impl MockProcess {
    fn start(flags: &[&str]) -> Self {
        let mut child = crate::common::cli::gate_stp()
            .args(["mock", "--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gate-stp mock starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut line = String::new();
        BufReader::new(stderr)
            .read_line(&mut line)
            .expect("the emulator says where it listens");
        let base_url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|url| url.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, base_url }
    }

    fn client(&self) -> Client {
        Client::builder()
            .base_url(&self.base_url)
            .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
            .build()
            .unwrap()
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds the demo sub-account to a first group, then to a second one.
async fn join_two_groups(client: &Client) -> Result<(), Error> {
    let first = client.create_group("desk-a").await?.id.unwrap();
    let second = client.create_group("desk-b").await?.id.unwrap();
    client.add_users(first, &[demo::SUB_USER]).await?;
    client.add_users(second, &[demo::SUB_USER]).await?;
    Ok(())
}

/// A list whose x-gate-exptime deadline passed a minute ago.
async fn list_after_deadline(client: &Client) -> Result<(), Error> {
    let past = gate_stp::Clock::now(&gate_stp::SystemClock) - Duration::from_secs(60);
    client.list_groups().expires_at(past).await.map(drop)
}

#[tokio::test]
async fn by_default_the_mock_refuses_a_second_group_and_a_past_deadline() {
    let mock = MockProcess::start(&[]);
    let client = mock.client();
    let error = join_two_groups(&client).await.unwrap_err();
    assert_eq!(error.label(), Some(&Label::InvalidParamValue), "{error}");
    let error = list_after_deadline(&client).await.unwrap_err();
    assert_eq!(error.label(), Some(&Label::RequestExpired), "{error}");
}

#[tokio::test]
async fn the_flags_lift_the_one_group_rule_and_ignore_exptime() {
    let mock = MockProcess::start(&["--allow-multiple-groups", "--ignore-exptime"]);
    let client = mock.client();
    join_two_groups(&client).await.unwrap();
    list_after_deadline(&client).await.unwrap();
}

/// `GET /api/v4/spot/time` over a plain socket (no client of ours): Gate's `server_time`.
fn raw_server_time(base_url: &str) -> i64 {
    use std::io::{Read, Write};
    let address = base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /api/v4/spot/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{response}");
    let value: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    value["server_time"].as_i64().unwrap()
}

fn now_ms() -> i64 {
    gate_stp::Clock::now(&gate_stp::SystemClock)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_clock_offset_moves_the_emulators_clock_either_way() {
    for (flag, offset_ms) in [("1h", 3_600_000), ("-2m", -120_000), ("500ms", 500)] {
        let mock = MockProcess::start(&["--clock-offset", flag]);
        let before = now_ms();
        let server_time = raw_server_time(&mock.base_url);
        let after = now_ms();
        assert!(
            server_time >= before + offset_ms - 5 && server_time <= after + offset_ms + 5,
            "{flag}: {server_time} not within [{before}, {after}] + {offset_ms}"
        );
    }
}

#[test]
fn an_address_in_use_is_a_service_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = crate::common::cli::gate_stp()
        .args(["mock", "--listen", &address])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap()
}

impl MockProcess {
    fn addr(&self) -> std::net::SocketAddr {
        self.base_url
            .trim_start_matches("http://")
            .trim_end_matches("/api/v4")
            .parse()
            .unwrap()
    }
}

/// Signed reads of the sub-account list (Gate's limit: 80 per 10 s) by the demo main
/// account over raw HTTP, `count` at most, stopping at the first 429.
fn read_sub_accounts_until_refused(mock: &MockProcess, count: usize) -> Vec<raw::Answer> {
    let mut answers = Vec::new();
    for _ in 0..count {
        let head = raw::signed_get(
            "/api/v4/sub_accounts",
            demo::MAIN_KEY,
            demo::MAIN_SECRET,
            now_secs(),
        );
        let answer = raw::exchange(mock.addr(), &head);
        let refused = answer.status == 429;
        answers.push(answer);
        if refused {
            break;
        }
    }
    answers
}

/// Three windows' worth plus one: sent within 10 s (they take well under a second), at
/// most two windows hold them, so one window gets more than 80 whatever the boundaries.
const PAST_THE_LIMIT: usize = 3 * 80 + 1;

#[test]
fn by_default_the_mock_refuses_past_gates_limit_and_no_rate_limit_lifts_it() {
    let limited = MockProcess::start(&[]);
    let answers = read_sub_accounts_until_refused(&limited, PAST_THE_LIMIT);
    let last = answers.last().unwrap();
    assert_eq!(last.status, 429, "no 429 in {} reads", answers.len());
    assert_eq!(last.body["label"], "TOO_MANY_REQUESTS", "{last:?}");
    assert_eq!(answers[0].status, 200, "{:?}", answers[0]);
    assert_eq!(answers[0].header("x-gate-ratelimit-limit"), Some("80"));

    let unlimited = MockProcess::start(&["--no-rate-limit"]);
    let answers = read_sub_accounts_until_refused(&unlimited, PAST_THE_LIMIT);
    assert_eq!(answers.len(), PAST_THE_LIMIT);
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        // Nothing counted, so no quota is announced either.
        assert_eq!(answer.header("x-gate-ratelimit-limit"), None, "{answer:?}");
    }
}

#[test]
fn a_good_accounts_file_replaces_the_demo_world() {
    let dir = crate::common::fresh_dir("mock-accounts");
    let world = dir.join("world.toml");
    std::fs::write(
        &world,
        "[[accounts]]\nuser_id = 30000\nlogin_name = \"file_main\"\nkey = \"file-key\"\nsecret = \"file-secret\"\n\n\
         [[accounts]]\nuser_id = 30001\nmain = 30000\nlogin_name = \"file_bot\"\n",
    )
    .unwrap();
    let mock = MockProcess::start(&["--accounts", world.to_str().unwrap()]);

    let head = raw::signed_get(
        "/api/v4/sub_accounts",
        "file-key",
        "file-secret",
        now_secs(),
    );
    let answer = raw::exchange(mock.addr(), &head);
    assert_eq!(answer.status, 200, "{answer:?}");
    let subs: Vec<(i64, &str)> = answer
        .body
        .as_array()
        .unwrap_or_else(|| panic!("{answer:?}"))
        .iter()
        .map(|sub| {
            (
                sub["user_id"].as_i64().unwrap(),
                sub["login_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(subs, [(30001, "file_bot")]);

    // The demo world was not loaded beside it: its key is unknown.
    let head = raw::signed_get(
        "/api/v4/sub_accounts",
        demo::MAIN_KEY,
        demo::MAIN_SECRET,
        now_secs(),
    );
    let answer = raw::exchange(mock.addr(), &head);
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.body["label"], "INVALID_KEY", "{answer:?}");
}
