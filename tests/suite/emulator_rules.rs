//! The Gate STP emulator's rules, one by one, over real HTTP on loopback.
//!
//! Most requests are made with a plain `reqwest::Client` and signed by a tiny signer
//! written here from Gate's documentation (not the crate's), so these tests check the
//! emulator against the spec rather than against the client. The last section meets the
//! same rules through `gate_stp::Client`, to check how they surface to its users.
#![cfg(feature = "mock")]

use crate::common;

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{
    emulator::{start, status_and_label as label},
    form_decode, gate_sign_query_bytes as gate_sign,
};
use gate_stp::{
    Client, Credentials, Error, Label, ManualClock, RetryPolicy,
    mock::{self, Emulator, EmulatorConfig, RunningEmulator, World, WorldError, demo},
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The emulator's (manual) time in these tests; a multiple of 10 s, so rate-limit windows
/// start exactly here.
const NOW: u64 = 1_800_000_000;

// ---------- a signer from the spec ----------

// The signer's check against Gate's published vectors: common::vectors.

// ---------- requests ----------

/// How the query is put into the signature.
#[derive(Clone, Copy)]
enum QuerySigning {
    /// Form-decoded, as Gate requires.
    Decoded,
    /// Percent-encoded as sent: a known cause of INVALID_SIGNATURE.
    Raw,
}

struct Req {
    method: &'static str,
    /// Relative to `/api/v4`, with the query.
    target: String,
    body: Vec<u8>,
    credentials: Option<(&'static str, &'static str)>,
    timestamp: String,
    omit: Option<&'static str>,
    sign_secret: Option<&'static str>,
    sign_body: Option<Vec<u8>>,
    query_signing: QuerySigning,
    headers: Vec<(&'static str, String)>,
}

impl Req {
    fn new(method: &'static str, target: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method,
            target: target.into(),
            body: body.into(),
            credentials: Some((demo::MAIN_KEY, demo::MAIN_SECRET)),
            timestamp: NOW.to_string(),
            omit: None,
            sign_secret: None,
            sign_body: None,
            query_signing: QuerySigning::Decoded,
            headers: Vec::new(),
        }
    }
    fn get(target: impl Into<String>) -> Self {
        Self::new("GET", target, Vec::new())
    }
    fn post(target: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", target, body)
    }
    fn delete(target: impl Into<String>) -> Self {
        Self::new("DELETE", target, Vec::new())
    }
    fn by(mut self, key: &'static str, secret: &'static str) -> Self {
        self.credentials = Some((key, secret));
        self
    }
    fn unsigned(mut self) -> Self {
        self.credentials = None;
        self
    }
    fn at(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = timestamp.into();
        self
    }
    fn without(mut self, header: &'static str) -> Self {
        self.omit = Some(header);
        self
    }
    fn signed_with(mut self, secret: &'static str) -> Self {
        self.sign_secret = Some(secret);
        self
    }
    fn signing_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.sign_body = Some(body.into());
        self
    }
    fn signing_query(mut self, how: QuerySigning) -> Self {
        self.query_signing = how;
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn label(&self) -> &str {
        self.body["label"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn number(&self, name: &str) -> Option<i64> {
        self.header(name).and_then(|v| v.parse().ok())
    }
    fn user_ids(&self) -> Vec<i64> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {self:?}"))
            .iter()
            .map(|m| m["user_id"].as_i64().unwrap())
            .collect()
    }
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{:?}", self.body);
        self
    }
    #[track_caller]
    fn refused(&self, status: u16, label: &str) {
        assert_eq!(
            (self.status, self.label()),
            (status, label),
            "body: {}",
            self.body
        );
        // Gate's error shape: exactly a label and a message.
        let keys: BTreeSet<&str> = self
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["label", "message"]));
        assert!(!self.message().is_empty());
    }
}

struct Harness {
    emulator: RunningEmulator,
    clock: ManualClock,
    http: reqwest::Client,
}

impl Harness {
    async fn start(config: EmulatorConfig) -> Self {
        Self::with_world(World::demo(), config).await
    }

    /// The emulator on a [`ManualClock`] at [`NOW`] (unless the config brings its own).
    async fn with_world(world: World, config: EmulatorConfig) -> Self {
        let clock = ManualClock::at_unix_secs(NOW);
        let config = config.clock(clock.clone());
        Self::with_config(world, config, clock).await
    }

    async fn with_config(world: World, config: EmulatorConfig, clock: ManualClock) -> Self {
        let emulator = Emulator::start(world, config).await.unwrap();
        Self {
            emulator,
            clock,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: Req) -> Reply {
        let url =
            reqwest::Url::parse(&format!("{}{}", self.emulator.base_url(), req.target)).unwrap();
        let mut builder = self
            .http
            .request(req.method.parse().unwrap(), url.clone())
            .body(req.body.clone());
        if let Some((key, secret)) = req.credentials {
            let query = url.query().unwrap_or("");
            let query = match req.query_signing {
                QuerySigning::Decoded => form_decode(query),
                QuerySigning::Raw => query.as_bytes().to_vec(),
            };
            let sign = gate_sign(
                req.sign_secret.unwrap_or(secret),
                req.method,
                url.path(),
                &query,
                req.sign_body.as_deref().unwrap_or(&req.body),
                &req.timestamp,
            );
            for (name, value) in [
                ("KEY", key.to_owned()),
                ("Timestamp", req.timestamp.clone()),
                ("SIGN", sign),
            ] {
                if req.omit != Some(name) {
                    builder = builder.header(name, value);
                }
            }
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn create(&self, name: &str) -> i64 {
        let reply = self
            .send(Req::post(
                "/account/stp_groups",
                json!({ "name": name }).to_string(),
            ))
            .await
            .ok();
        reply.body["id"].as_i64().unwrap()
    }

    async fn add(&self, stp_id: i64, ids: &[i64]) -> Reply {
        self.send(Req::post(users(stp_id), json!(ids).to_string()))
            .await
    }

    async fn list_members(&self, stp_id: i64) -> Vec<i64> {
        self.send(Req::get(users(stp_id))).await.ok().user_ids()
    }
}

fn users(stp_id: i64) -> String {
    format!("/account/stp_groups/{stp_id}/users")
}

fn default_harness() -> impl Future<Output = Harness> {
    Harness::start(EmulatorConfig::default())
}

// ---------- public time ----------

#[tokio::test]
async fn server_time_is_public_and_follows_the_clock_and_its_offset() {
    let h = default_harness().await;
    let reply = h.send(Req::get("/spot/time").unsigned()).await.ok();
    assert_eq!(reply.body, json!({ "server_time": NOW * 1000 }));
    h.clock.advance(Duration::from_millis(1_234));
    let reply = h.send(Req::get("/spot/time").unsigned()).await.ok();
    assert_eq!(reply.body["server_time"], NOW * 1000 + 1_234);

    let behind = Harness::start(EmulatorConfig::default().clock_offset_ms(-300_000)).await;
    let reply = behind.send(Req::get("/spot/time").unsigned()).await.ok();
    assert_eq!(reply.body["server_time"], (NOW - 300) * 1000);
}

#[tokio::test]
async fn the_router_alone_serves_the_emulator() {
    // `mock::router` is for embedding the emulator in a caller's own axum server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = EmulatorConfig::default().clock(ManualClock::at_unix_secs(NOW));
    let router = mock::router(World::demo(), config);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let answer = reqwest::get(format!("http://{addr}/api/v4/spot/time"))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body, json!({ "server_time": NOW * 1000 }));
    server.abort();
}

#[tokio::test]
async fn base_url_names_the_listening_address_and_loopback_for_a_wildcard() {
    let on = |addr: &'static str| async move {
        let emulator = Emulator::bind(addr, World::demo(), EmulatorConfig::default())
            .await
            .unwrap();
        let port = emulator.local_addr().port();
        (emulator.base_url(), port)
    };
    // A wildcard address is no address to connect to: loopback stands in for it.
    let (url, port) = on("0.0.0.0:0").await;
    assert_eq!(url, format!("http://127.0.0.1:{port}/api/v4"));
    let (url, port) = on("[::]:0").await;
    assert_eq!(url, format!("http://[::1]:{port}/api/v4"));
    // Any other address is kept as it is (127.0.0.2 is loopback on Linux; the v4-mapped
    // one is an IPv6 listening address that is neither a wildcard nor `::1`).
    let (url, port) = on("127.0.0.2:0").await;
    assert_eq!(url, format!("http://127.0.0.2:{port}/api/v4"));
    let (url, port) = on("[::ffff:127.0.0.1]:0").await;
    assert_eq!(url, format!("http://[::ffff:127.0.0.1]:{port}/api/v4"));
}

#[tokio::test]
async fn a_clock_before_1970_gives_negative_times() {
    let clock = ManualClock::new(UNIX_EPOCH - Duration::from_millis(2_500));
    let config = EmulatorConfig::default().clock(clock.clone());
    let h = Harness::with_config(World::demo(), config, clock).await;
    let reply = h.send(Req::get("/spot/time").unsigned()).await.ok();
    assert_eq!(reply.body["server_time"], -2_500);
    assert_eq!(reply.number("x-in-time"), Some(-2_500_000));
    assert_eq!(reply.number("x-out-time"), Some(-2_500_000));
}

// ---------- authentication ----------

#[tokio::test]
async fn a_missing_auth_header_is_named() {
    let h = default_harness().await;
    for header in ["KEY", "Timestamp", "SIGN"] {
        let reply = h
            .send(Req::get("/account/stp_groups").without(header))
            .await;
        reply.refused(400, "MISSING_REQUIRED_HEADER");
        assert_eq!(
            reply.message(),
            format!("Missing required header: {header}")
        );
    }
    let reply = h.send(Req::get("/account/stp_groups").unsigned()).await;
    reply.refused(400, "MISSING_REQUIRED_HEADER");
    assert_eq!(reply.message(), "Missing required header: KEY");
}

#[tokio::test]
async fn an_unknown_key_is_invalid_key() {
    let h = default_harness().await;
    h.send(Req::get("/account/stp_groups").by("no-such-key", demo::MAIN_SECRET))
        .await
        .refused(401, "INVALID_KEY");
}

#[tokio::test]
async fn an_unparsable_timestamp_is_invalid_param_value() {
    let h = default_harness().await;
    for ts in [
        "yesterday",
        "1.8e9",
        "-1800000000",
        "1800000000.",
        "0x6B49D200",
    ] {
        let reply = h.send(Req::get("/account/stp_groups").at(ts)).await;
        reply.refused(400, "INVALID_PARAM_VALUE");
        assert!(
            reply.message().contains("Timestamp"),
            "{ts}: {}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn a_wrong_signature_is_a_mismatch() {
    let h = default_harness().await;
    let reply = h
        .send(Req::get("/account/stp_groups").signed_with("not-the-secret"))
        .await;
    reply.refused(401, "INVALID_SIGNATURE");
    assert_eq!(reply.message(), "Signature mismatch");

    // Another account's secret with this key.
    h.send(Req::get("/account/stp_groups").signed_with(demo::SUB_SECRET))
        .await
        .refused(401, "INVALID_SIGNATURE");
    // The body sent is not the body signed.
    h.send(Req::post("/account/stp_groups", r#"{"name":"a"}"#).signing_body(r#"{"name":"b"}"#))
        .await
        .refused(401, "INVALID_SIGNATURE");
    assert!(h.emulator.groups().is_empty());
}

#[tokio::test]
async fn the_query_is_signed_form_decoded_and_the_path_raw() {
    let h = default_harness().await;
    let id = h.create("a b,c").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    // `+` and `%2C` decoded before signing: accepted.
    let reply = h
        .send(Req::get("/account/stp_groups?name=a+b%2Cc"))
        .await
        .ok();
    assert_eq!(reply.body.as_array().unwrap().len(), 1);
    // Signing the encoded form (the ccxt bug) is a mismatch.
    h.send(Req::get("/account/stp_groups?name=a+b%2Cc").signing_query(QuerySigning::Raw))
        .await
        .refused(401, "INVALID_SIGNATURE");
    h.send(
        Req::delete(format!("{}?user_id=10001%2C10002", users(id)))
            .signing_query(QuerySigning::Raw),
    )
    .await
    .refused(401, "INVALID_SIGNATURE");
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
    // The path is signed as received, `/api/v4` included: a leading-zero id is another path.
    let reply = h
        .send(Req::get(format!("/account/stp_groups/0{id}/users")))
        .await
        .ok();
    assert_eq!(reply.user_ids(), [demo::SUB_USER]);
}

#[tokio::test]
async fn a_fractional_timestamp_is_accepted() {
    let h = default_harness().await;
    h.send(Req::get("/account/stp_groups").at(format!("{NOW}.4796917")))
        .await
        .ok();
    h.send(Req::post("/account/stp_groups", r#"{"name":"py"}"#).at(format!("{}.9", NOW - 60)))
        .await
        .ok();
}

#[tokio::test]
async fn the_sixty_second_window_edges() {
    let h = default_harness().await;
    let at = |ts: String| Req::get("/account/stp_groups").at(ts);
    for offset in [-60i64, -59, 0, 59, 60] {
        h.send(at((NOW as i64 + offset).to_string())).await.ok();
    }
    for ts in [
        (NOW - 61).to_string(),
        (NOW + 61).to_string(),
        format!("{}.001", NOW + 60),
        format!("{}.999", NOW - 61),
    ] {
        let reply = h.send(at(ts.clone())).await;
        reply.refused(401, "REQUEST_EXPIRED");
        assert_eq!(
            reply.message(),
            "gap between request Timestamp and server time exceeds 60",
            "{ts}"
        );
    }
    // The emulator's clock moves; the same Timestamp falls out of the window.
    h.clock.advance(Duration::from_secs(60));
    h.send(at(NOW.to_string())).await.ok();
    h.clock.advance(Duration::from_secs(1));
    h.send(at(NOW.to_string()))
        .await
        .refused(401, "REQUEST_EXPIRED");
}

#[tokio::test]
async fn a_narrower_expiry_window_is_kept_to() {
    let h = Harness::start(EmulatorConfig::default().expiry_window(Duration::from_secs(5))).await;
    let at = |ts: i64| Req::get("/account/stp_groups").at(ts.to_string());
    for offset in [-5i64, 0, 5] {
        h.send(at(NOW as i64 + offset)).await.ok();
    }
    for offset in [-6i64, 6] {
        h.send(at(NOW as i64 + offset))
            .await
            .refused(401, "REQUEST_EXPIRED");
    }
}

#[tokio::test]
async fn a_clock_offset_moves_the_window_and_the_times() {
    for offset_s in [300i64, -300] {
        let h = Harness::start(EmulatorConfig::default().clock_offset_ms(offset_s * 1000)).await;
        let server_now = NOW as i64 + offset_s;
        let at = |ts: i64| Req::get("/account/stp_groups").at(ts.to_string());
        h.send(at(NOW as i64)).await.refused(401, "REQUEST_EXPIRED");
        h.send(at(server_now)).await.ok();
        h.send(at(server_now - 60)).await.ok();
        h.send(at(server_now + 61))
            .await
            .refused(401, "REQUEST_EXPIRED");

        let reply = h
            .send(Req::post("/account/stp_groups", r#"{"name":"skew"}"#).at(server_now.to_string()))
            .await
            .ok();
        assert_eq!(reply.body["create_time"], server_now);
        let id = reply.body["id"].as_i64().unwrap();
        let reply = h
            .send(Req::post(users(id), "[10001]").at(server_now.to_string()))
            .await
            .ok();
        assert_eq!(reply.body[0]["create_time"], server_now);
        assert_eq!(reply.number("x-in-time"), Some(server_now * 1_000_000));
        assert_eq!(
            reply.number("x-gate-ratelimit-reset-timestamp"),
            Some(server_now - server_now % 10 + 10)
        );
        assert_eq!(
            h.emulator.emulator().now(),
            UNIX_EPOCH + Duration::from_secs(server_now as u64)
        );
    }
}

#[tokio::test]
async fn authentication_checks_come_in_gates_order() {
    let h = default_harness().await;
    // Missing SIGN wins over an unknown key.
    h.send(
        Req::get("/account/stp_groups")
            .by("nope", "x")
            .without("SIGN"),
    )
    .await
    .refused(400, "MISSING_REQUIRED_HEADER");
    // Unknown key wins over a bad timestamp.
    h.send(Req::get("/account/stp_groups").by("nope", "x").at("soon"))
        .await
        .refused(401, "INVALID_KEY");
    // Expired wins over a wrong signature.
    h.send(
        Req::get("/account/stp_groups")
            .at((NOW - 3600).to_string())
            .signed_with("bad"),
    )
    .await
    .refused(401, "REQUEST_EXPIRED");
    // Authentication comes before the rules: nothing is learnt about the group.
    h.send(Req::get(users(999_999)).signed_with("bad"))
        .await
        .refused(401, "INVALID_SIGNATURE");
}

// ---------- rules ----------

#[tokio::test]
async fn only_a_main_account_creates_a_group() {
    let h = default_harness().await;
    let reply = h
        .send(
            Req::post("/account/stp_groups", r#"{"name":"sub desk"}"#)
                .by(demo::SUB_KEY, demo::SUB_SECRET),
        )
        .await;
    reply.refused(403, "FORBIDDEN");
    assert!(h.emulator.groups().is_empty());

    let first = h
        .send(Req::post(
            "/account/stp_groups",
            r#"{"name":"Desk","id":1,"creator_id":20000,"create_time":5}"#,
        ))
        .await
        .ok();
    assert_eq!(
        first.body,
        json!({ "id": 100_001, "name": "Desk", "creator_id": demo::MAIN_USER, "create_time": NOW })
    );
    let second = h
        .send(
            Req::post("/account/stp_groups", r#"{"name":"Desk"}"#)
                .by(demo::OTHER_KEY, demo::OTHER_SECRET),
        )
        .await
        .ok();
    assert_eq!(second.body["id"], 100_002);
    assert_eq!(second.body["creator_id"], demo::OTHER_MAIN_USER);
    assert_eq!(h.emulator.groups().len(), 2);
    // A new group has no members.
    assert_eq!(h.list_members(100_001).await, Vec::<i64>::new());
    assert_eq!(h.emulator.members(100_001), Some(vec![]));
}

#[tokio::test]
async fn only_the_creator_lists_adds_or_removes() {
    let h = default_harness().await;
    let id = h.create("mine").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    let other = (demo::OTHER_KEY, demo::OTHER_SECRET);
    let sub = (demo::SUB_KEY, demo::SUB_SECRET);
    for (key, secret) in [other, sub] {
        h.send(Req::get(users(id)).by(key, secret))
            .await
            .refused(403, "FORBIDDEN");
        h.send(Req::post(users(id), "[10002]").by(key, secret))
            .await
            .refused(403, "FORBIDDEN");
        h.send(Req::delete(format!("{}?user_id=10001", users(id))).by(key, secret))
            .await
            .refused(403, "FORBIDDEN");
    }
    // Others do not see it in their lists either.
    let reply = h
        .send(Req::get("/account/stp_groups").by(other.0, other.1))
        .await
        .ok();
    assert_eq!(reply.body, json!([]));
    let reply = h
        .send(Req::get("/account/stp_groups").by(sub.0, sub.1))
        .await
        .ok();
    assert_eq!(reply.body, json!([]));
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
}

#[tokio::test]
async fn an_unknown_group_is_not_found() {
    let h = default_harness().await;
    let id = h.create("g").await;
    for req in [
        Req::get(users(id + 1)),
        Req::post(users(id + 1), "[10001]"),
        Req::delete(format!("{}?user_id=10001", users(id + 1))),
    ] {
        let reply = h.send(req).await;
        reply.refused(404, "NOT_FOUND");
        assert!(
            reply.message().contains(&(id + 1).to_string()),
            "{}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn add_returns_the_members_ordered_by_user_id() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.clock.advance(Duration::from_secs(7));
    let reply = h
        .add(
            id,
            &[demo::SUB_USER_WITHOUT_KEY, demo::MAIN_USER, demo::SUB_USER],
        )
        .await
        .ok();
    let expected: Vec<Value> = [demo::MAIN_USER, demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY]
        .iter()
        .map(|&user| json!({ "user_id": user, "stp_id": id, "create_time": NOW + 7 }))
        .collect();
    assert_eq!(reply.body, Value::Array(expected.clone()));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let listed = h.send(Req::get(users(id))).await.ok();
    assert_eq!(listed.body, Value::Array(expected));
}

#[tokio::test]
async fn another_main_accounts_user_is_forbidden_and_changes_nothing() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(id, &[demo::SUB_USER]).await.ok();

    let reply = h
        .add(id, &[demo::SUB_USER_WITHOUT_KEY, demo::OTHER_SUB_USER])
        .await;
    reply.refused(403, "FORBIDDEN");
    assert!(reply.message().contains("20001"), "{}", reply.message());
    let reply = h.add(id, &[demo::OTHER_MAIN_USER]).await;
    reply.refused(403, "FORBIDDEN");
    assert!(reply.message().contains("20000"), "{}", reply.message());
    assert_eq!(h.list_members(id).await, [demo::SUB_USER]);

    // Removing works the same way: all or nothing.
    h.send(Req::delete(format!("{}?user_id=10001,20001", users(id))))
        .await
        .refused(403, "FORBIDDEN");
    assert_eq!(h.list_members(id).await, [demo::SUB_USER]);
}

#[tokio::test]
async fn an_id_of_no_account_is_invalid_and_changes_nothing() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    let reply = h.add(id, &[demo::SUB_USER_WITHOUT_KEY, 99_999]).await;
    reply.refused(400, "INVALID_PARAM_VALUE");
    assert!(reply.message().contains("99999"), "{}", reply.message());
    h.send(Req::delete(format!("{}?user_id=10001%2C99999", users(id))))
        .await
        .refused(400, "INVALID_PARAM_VALUE");
    assert_eq!(h.list_members(id).await, [demo::SUB_USER]);
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
}

#[tokio::test]
async fn adding_a_member_twice_is_harmless() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    h.clock.advance(Duration::from_secs(30));
    let reply = h.add(id, &[demo::SUB_USER, demo::SUB_USER]).await.ok();
    assert_eq!(
        reply.body,
        json!([{ "user_id": demo::SUB_USER, "stp_id": id, "create_time": NOW }])
    );
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
}

#[tokio::test]
async fn delete_takes_one_or_several_comma_separated_ids() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(
        id,
        &[demo::MAIN_USER, demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY],
    )
    .await
    .ok();

    // `user_id=1,2` as clients send it: `%2C`.
    let reply = h
        .send(Req::delete(format!("{}?user_id=10000%2C10002", users(id))))
        .await
        .ok();
    assert_eq!(reply.user_ids(), [demo::SUB_USER]);
    // A literal comma works too; a valid non-member is a no-op.
    let reply = h
        .send(Req::delete(format!("{}?user_id=10002,10000", users(id))))
        .await
        .ok();
    assert_eq!(reply.user_ids(), [demo::SUB_USER]);
    let reply = h
        .send(Req::delete(format!("{}?user_id=10001", users(id))))
        .await
        .ok();
    assert_eq!(reply.body, json!([]));
    assert_eq!(h.emulator.members(id), Some(vec![]));
}

#[tokio::test]
async fn delete_without_user_id_is_missing_required_param() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    for target in [
        users(id),
        format!("{}?user_id=", users(id)),
        format!("{}?other=1", users(id)),
    ] {
        let reply = h.send(Req::delete(target.clone())).await;
        reply.refused(400, "MISSING_REQUIRED_PARAM");
        assert!(reply.message().contains("user_id"), "{target}");
    }
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
}

#[tokio::test]
async fn the_name_filter_is_a_case_insensitive_substring() {
    let h = default_harness().await;
    for name in ["Alpha Desk", "beta DESK", "gamma"] {
        h.create(name).await;
    }
    h.send(
        Req::post("/account/stp_groups", r#"{"name":"rival desk"}"#)
            .by(demo::OTHER_KEY, demo::OTHER_SECRET),
    )
    .await
    .ok();
    let names = |reply: Reply| -> Vec<String> {
        reply
            .ok()
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(h.send(Req::get("/account/stp_groups?name=desk")).await),
        ["Alpha Desk", "beta DESK"]
    );
    assert_eq!(
        names(h.send(Req::get("/account/stp_groups?name=ALPHA")).await),
        ["Alpha Desk"]
    );
    assert_eq!(
        names(h.send(Req::get("/account/stp_groups?name=HA+d")).await),
        ["Alpha Desk"]
    );
    assert_eq!(
        names(h.send(Req::get("/account/stp_groups?name=zzz")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(h.send(Req::get("/account/stp_groups")).await),
        ["Alpha Desk", "beta DESK", "gamma"]
    );
}

// ---------- bad input ----------

#[tokio::test]
async fn malformed_json_is_invalid_request_body() {
    let h = default_harness().await;
    let id = h.create("g").await;
    for (target, body) in [
        ("/account/stp_groups".to_owned(), "{not json"),
        ("/account/stp_groups".to_owned(), ""),
        (users(id), "[10001,"),
        (users(id), ""),
        (users(id), "[10001] trailing"),
    ] {
        h.send(Req::post(target, body))
            .await
            .refused(400, "INVALID_REQUEST_BODY");
    }
    assert_eq!(h.emulator.groups().len(), 1);
    assert_eq!(h.emulator.members(id), Some(vec![]));
}

#[tokio::test]
async fn wrong_json_types_are_invalid_param_value() {
    let h = default_harness().await;
    let id = h.create("g").await;
    for (target, body) in [
        ("/account/stp_groups".to_owned(), r#"{"name":5}"#),
        ("/account/stp_groups".to_owned(), r#"{"name":["a"]}"#),
        ("/account/stp_groups".to_owned(), r#"["a"]"#),
        ("/account/stp_groups".to_owned(), r#""a""#),
        (users(id), r#"["10001"]"#),
        (users(id), "[10001.5]"),
        (users(id), "[true]"),
        (users(id), "[null]"),
        (users(id), r#"{"user_id":10001}"#),
        (users(id), "10001"),
        (users(id), "[]"),
        (users(id), "[99999999999999999999]"),
    ] {
        h.send(Req::post(target, body))
            .await
            .refused(400, "INVALID_PARAM_VALUE");
    }
    // A create body without a name misses a required parameter.
    h.send(Req::post("/account/stp_groups", "{}"))
        .await
        .refused(400, "MISSING_REQUIRED_PARAM");
    assert_eq!(h.emulator.groups().len(), 1);
    assert_eq!(h.emulator.members(id), Some(vec![]));
}

#[tokio::test]
async fn non_positive_ids_are_invalid_param_value() {
    let h = default_harness().await;
    let id = h.create("g").await;
    h.add(id, &[demo::SUB_USER]).await.ok();
    for req in [
        Req::post(users(id), "[0]"),
        Req::post(users(id), "[10002,-5]"),
        Req::get(users(0)),
        Req::get(users(-1)),
        Req::get("/account/stp_groups/abc/users"),
        Req::post("/account/stp_groups/1e5/users", "[10001]"),
        Req::delete(format!("{}?user_id=0", users(id))),
        Req::delete(format!("{}?user_id=-3", users(id))),
        Req::delete(format!("{}?user_id=10001,x", users(id))),
        Req::delete(format!("{}?user_id=10001,,10002", users(id))),
    ] {
        let target = req.target.clone();
        let reply = h.send(req).await;
        assert_eq!(
            (reply.status, reply.label()),
            (400, "INVALID_PARAM_VALUE"),
            "{target}"
        );
    }
    assert_eq!(h.emulator.members(id), Some(vec![demo::SUB_USER]));
}

#[tokio::test]
async fn an_empty_or_blank_name_is_invalid_param_value() {
    let h = default_harness().await;
    for name in ["", " ", "\t\n "] {
        h.send(Req::post(
            "/account/stp_groups",
            json!({ "name": name }).to_string(),
        ))
        .await
        .refused(400, "INVALID_PARAM_VALUE");
    }
    assert!(h.emulator.groups().is_empty());
}

#[tokio::test]
async fn an_oversize_body_is_refused() {
    let h = Harness::start(EmulatorConfig::default().max_body_bytes(256)).await;
    // Exactly at the limit is fine.
    let name = "n".repeat(256 - r#"{"name":""}"#.len());
    let body = json!({ "name": name }).to_string();
    assert_eq!(body.len(), 256);
    h.send(Req::post("/account/stp_groups", body)).await.ok();
    // One byte more is refused, before authentication.
    let body = json!({ "name": format!("{name}n") }).to_string();
    let reply = h.send(Req::post("/account/stp_groups", body.clone())).await;
    reply.refused(400, "INVALID_REQUEST_BODY");
    assert!(reply.message().contains("256"), "{}", reply.message());
    h.send(Req::post("/account/stp_groups", body).signed_with("wrong"))
        .await
        .refused(400, "INVALID_REQUEST_BODY");
    assert_eq!(h.emulator.groups().len(), 1);
}

#[tokio::test]
async fn the_default_body_limit_is_64_kib() {
    let h = default_harness().await;
    // A create padded with JSON whitespace to exactly `len` bytes.
    let padded = |len: usize| {
        let head = r#"{"name":"padded""#;
        format!("{head}{}}}", " ".repeat(len - head.len() - 1))
    };
    assert_eq!(padded(64 * 1024).len(), 65_536);
    h.send(Req::post("/account/stp_groups", padded(64 * 1024)))
        .await
        .ok();
    h.send(Req::post("/account/stp_groups", padded(64 * 1024 + 1)))
        .await
        .refused(400, "INVALID_REQUEST_BODY");
    assert_eq!(h.emulator.groups().len(), 1);
}

#[tokio::test]
async fn an_unknown_route_is_named_in_the_message_up_to_200_characters() {
    let h = default_harness().await;
    let reply = h.send(Req::get("/account/nothing")).await;
    reply.refused(404, "NOT_FOUND");
    // The router sees the path under its /api/v4 mount.
    assert!(
        reply.message().starts_with("no such endpoint: /")
            && reply.message().ends_with("/account/nothing"),
        "{}",
        reply.message()
    );
    let reply = h.send(Req::delete("/spot/time").unsigned()).await;
    reply.refused(405, "METHOD_NOT_ALLOWED");
    assert!(
        reply
            .message()
            .starts_with("method DELETE is not allowed on /")
            && reply.message().ends_with("/spot/time"),
        "{}",
        reply.message()
    );
    // A long path is cut to its first 200 characters.
    let long = format!("/account/{}", "n".repeat(300));
    let reply = h.send(Req::get(long.as_str())).await;
    let named = reply.message().trim_start_matches("no such endpoint: ");
    assert_eq!(named.chars().count(), 200, "{}", reply.message());
    assert!(named.ends_with('n'), "{named}");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_gate_shaped() {
    let h = default_harness().await;
    for target in [
        "/account/nothing",
        "/spot/time/",
        "/account/stp_groups/1/users/2",
    ] {
        h.send(Req::get(target)).await.refused(404, "NOT_FOUND");
    }
    // Outside the /api/v4 prefix.
    let url = h.emulator.base_url().replace("/api/v4", "/spot/time");
    let response = h.http.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["label"], "NOT_FOUND");

    h.send(Req::new("PUT", "/account/stp_groups", "{}"))
        .await
        .refused(405, "METHOD_NOT_ALLOWED");
    h.send(Req::delete("/account/stp_groups"))
        .await
        .refused(405, "METHOD_NOT_ALLOWED");
    h.send(Req::new("PATCH", users(100_001), "[]"))
        .await
        .refused(405, "METHOD_NOT_ALLOWED");
    h.send(Req::post("/spot/time", "").unsigned())
        .await
        .refused(405, "METHOD_NOT_ALLOWED");
}

// ---------- headers ----------

#[tokio::test]
async fn rate_limit_counts_fixed_windows_per_endpoint_and_account() {
    let h = Harness::start(EmulatorConfig::default().rate_limit(3, Duration::from_secs(10))).await;
    let list = || Req::get("/account/stp_groups");
    for remaining in [2, 1, 0] {
        let reply = h.send(list()).await.ok();
        assert_eq!(reply.number("x-gate-ratelimit-limit"), Some(3));
        assert_eq!(
            reply.number("x-gate-ratelimit-requests-remain"),
            Some(remaining)
        );
        assert_eq!(
            reply.number("x-gate-ratelimit-reset-timestamp"),
            Some(NOW as i64 + 10)
        );
    }
    let reply = h.send(list()).await;
    reply.refused(429, "TOO_MANY_REQUESTS");
    assert_eq!(reply.number("x-gate-ratelimit-requests-remain"), Some(0));
    assert_eq!(reply.number("x-gate-ratelimit-limit"), Some(3));
    assert_eq!(
        reply.number("x-gate-ratelimit-reset-timestamp"),
        Some(NOW as i64 + 10)
    );

    // Another endpoint and another account have their own windows.
    let reply = h
        .send(Req::post("/account/stp_groups", r#"{"name":"g"}"#))
        .await
        .ok();
    assert_eq!(reply.number("x-gate-ratelimit-requests-remain"), Some(2));
    let reply = h
        .send(list().by(demo::OTHER_KEY, demo::OTHER_SECRET))
        .await
        .ok();
    assert_eq!(reply.number("x-gate-ratelimit-requests-remain"), Some(2));

    // A refused request does nothing.
    for _ in 0..2 {
        h.send(Req::post("/account/stp_groups", r#"{"name":"g"}"#))
            .await
            .ok();
    }
    h.send(Req::post("/account/stp_groups", r#"{"name":"late"}"#))
        .await
        .refused(429, "TOO_MANY_REQUESTS");
    assert_eq!(h.emulator.groups().len(), 3);

    // Still limited at the window's last millisecond; the next window lets requests through.
    h.clock.advance(Duration::from_millis(9_999));
    h.send(list().at(NOW.to_string()))
        .await
        .refused(429, "TOO_MANY_REQUESTS");
    h.clock.advance(Duration::from_millis(1));
    let reply = h.send(list().at((NOW + 10).to_string())).await.ok();
    assert_eq!(reply.number("x-gate-ratelimit-requests-remain"), Some(2));
    assert_eq!(
        reply.number("x-gate-ratelimit-reset-timestamp"),
        Some(NOW as i64 + 20)
    );
}

#[tokio::test]
async fn without_a_rate_limit_the_headers_are_omitted() {
    let h = Harness::start(EmulatorConfig::default().without_rate_limit()).await;
    for _ in 0..200 {
        let reply = h.send(Req::get("/account/stp_groups")).await.ok();
        assert_eq!(reply.header("x-gate-ratelimit-limit"), None);
        assert_eq!(reply.header("x-gate-ratelimit-requests-remain"), None);
        assert_eq!(reply.header("x-gate-ratelimit-reset-timestamp"), None);
    }
}

#[tokio::test]
async fn gate_headers_are_on_every_response() {
    let h = default_harness().await;
    let replies = [
        h.send(Req::get("/spot/time").unsigned()).await,
        h.send(Req::get("/account/stp_groups")).await,
        h.send(Req::get("/account/stp_groups").unsigned()).await,
        h.send(Req::get("/account/stp_groups").signed_with("bad"))
            .await,
        h.send(Req::get(users(5))).await,
        h.send(Req::get("/nowhere")).await,
        h.send(Req::new("PUT", "/account/stp_groups", "")).await,
    ];
    let expected_statuses = [200, 200, 400, 401, 404, 404, 405];
    let mut trace_ids = BTreeSet::new();
    for (reply, status) in replies.iter().zip(expected_statuses) {
        assert_eq!(reply.status, status, "{:?}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.number("x-gate-ratelimit-limit"),
            Some(150),
            "{status}"
        );
        assert!(reply.number("x-gate-ratelimit-requests-remain").unwrap() < 150);
        assert_eq!(
            reply.number("x-gate-ratelimit-reset-timestamp"),
            Some(NOW as i64 + 10)
        );
        assert_eq!(reply.number("x-in-time"), Some(NOW as i64 * 1_000_000));
        assert_eq!(reply.number("x-out-time"), Some(NOW as i64 * 1_000_000));
        let trace = reply.header("x-gate-trace-id").unwrap();
        assert_eq!(trace.len(), 32);
        assert!(
            trace
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        trace_ids.insert(trace.to_owned());
    }
    assert_eq!(trace_ids.len(), replies.len(), "trace ids must differ");
}

#[tokio::test]
async fn the_client_request_id_is_echoed() {
    let h = default_harness().await;
    let reply = h
        .send(Req::get("/account/stp_groups").header("X-Client-Request-Id", "req-42"))
        .await
        .ok();
    assert_eq!(reply.header("x-client-request-id"), Some("req-42"));
    let reply = h
        .send(
            Req::get("/account/stp_groups")
                .signed_with("bad")
                .header("X-Client-Request-Id", "req-43"),
        )
        .await;
    assert_eq!(reply.header("x-client-request-id"), Some("req-43"));
    let reply = h.send(Req::get("/account/stp_groups")).await.ok();
    assert_eq!(reply.header("x-client-request-id"), None);
}

#[tokio::test]
async fn x_gate_exptime_in_the_past_refuses_before_executing() {
    let h = default_harness().await;
    let now_ms = NOW * 1000;
    let create = |exptime: String| {
        Req::post("/account/stp_groups", r#"{"name":"g"}"#).header("x-gate-exptime", exptime)
    };
    let reply = h.send(create((now_ms - 1).to_string())).await;
    reply.refused(400, "REQUEST_EXPIRED");
    assert!(
        reply.message().contains("x-gate-exptime"),
        "{}",
        reply.message()
    );
    assert!(h.emulator.groups().is_empty());
    h.send(create("soon".into()))
        .await
        .refused(400, "INVALID_PARAM_VALUE");
    assert!(h.emulator.groups().is_empty());

    h.send(create(now_ms.to_string())).await.ok();
    h.send(create((now_ms + 5_000).to_string())).await.ok();
    assert_eq!(h.emulator.groups().len(), 2);
    // The public endpoint honours it too.
    h.send(
        Req::get("/spot/time")
            .unsigned()
            .header("x-gate-exptime", (now_ms - 1).to_string()),
    )
    .await
    .refused(400, "REQUEST_EXPIRED");
}

// ---------- world files ----------

#[test]
fn world_files_load_and_name_lines_on_errors() {
    let world = World::load("tests/fixtures/world_desk.toml").unwrap();
    assert_eq!(world.len(), 4);
    let bot = world.account(501).unwrap();
    assert_eq!(
        (bot.main_id(), bot.is_main(), bot.key()),
        (500, false, Some("desk-bot-key"))
    );
    assert_eq!(world.account_by_key("rival-key").unwrap().user_id(), 900);
    assert!(world.account(502).unwrap().key().is_none());
    let debug = format!("{world:?}");
    assert!(
        debug.contains("desk-main-key") && debug.contains("[REDACTED]"),
        "{debug}"
    );
    assert!(!debug.contains("desk-main-secret") && !debug.contains("rival-secret"));

    let error = World::load("tests/fixtures/world_sub_of_sub.toml").unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("world_sub_of_sub.toml") && text.contains("line 10"),
        "{text}"
    );
    assert!(
        matches!(
            error.root(),
            WorldError::MainIsSub {
                user_id: 3,
                main: 2,
                line: 10
            }
        ),
        "{error:?}"
    );

    let missing = World::load("tests/fixtures/no_such_world.toml").unwrap_err();
    assert!(matches!(missing, WorldError::Io { .. }), "{missing:?}");

    let parse = |text: &str| World::from_toml_str(text).unwrap_err();

    let error = parse("[[accounts]]\nuser_id = 1\n\n[[accounts]\nuser_id = 2\n");
    assert!(
        matches!(error, WorldError::Syntax { line: 4, .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("line 4, column "), "{error}");

    let error = parse("[[accounts]]\nuser_id = \"ten\"\n");
    assert!(
        matches!(
            error,
            WorldError::Syntax {
                line: 2,
                column: 11,
                ..
            }
        ),
        "{error:?}"
    );

    let error = parse("[[accounts]]\nuser_id = 1\nmian = 2\n");
    assert!(
        matches!(error, WorldError::Syntax { line: 3, .. }),
        "{error:?}"
    );

    let error = parse("[[accounts]]\nuser_id = 1\n\n[[accounts]]\nuser_id = 1\n");
    assert!(
        matches!(
            error,
            WorldError::DuplicateUser {
                user_id: 1,
                line: 5
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "line 5: user 1 appears more than once");

    let error = parse("[[accounts]]\nuser_id = 1\nmain = 7\n");
    assert!(
        matches!(
            error,
            WorldError::UnknownMain {
                user_id: 1,
                main: 7,
                line: 2
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("main account 7 does not exist"),
        "{error}"
    );

    let error = parse(
        "[[accounts]]\nuser_id = 1\nkey = \"k\"\nsecret = \"a\"\n[[accounts]]\nuser_id = 2\nkey = \"k\"\nsecret = \"b\"\n",
    );
    assert!(
        matches!(
            error,
            WorldError::DuplicateKey {
                user_id: 2,
                other: 1,
                line: 6
            }
        ),
        "{error:?}"
    );

    let error = parse("[[accounts]]\nuser_id = 1\nkey = \"k\"\n");
    assert!(
        matches!(
            error,
            WorldError::KeyWithoutSecret {
                user_id: 1,
                line: 2
            }
        ),
        "{error:?}"
    );
    let error = parse("[[accounts]]\nuser_id = 1\nsecret = \"s\"\n");
    assert!(
        matches!(error, WorldError::SecretWithoutKey { user_id: 1, .. }),
        "{error:?}"
    );

    for (text, field, value) in [
        ("[[accounts]]\nuser_id = 0\n", "user_id", 0),
        ("[[accounts]]\nuser_id = -4\n", "user_id", -4),
        (
            "[[accounts]]\nuser_id = 1\n[[accounts]]\nuser_id = 2\nmain = -1\n",
            "main",
            -1,
        ),
    ] {
        let error = parse(text);
        assert!(
            matches!(
                error,
                WorldError::NonPositiveId { field: f, value: v, .. } if f == field && v == value
            ),
            "{error:?}"
        );
    }

    // A refused file is refused whole: even its valid accounts exist nowhere.
    assert_eq!(World::from_toml_str("").unwrap().len(), 0);
    assert_eq!(
        World::from_toml_str(demo::WORLD_TOML).unwrap().len(),
        World::demo().len()
    );
}

#[tokio::test]
async fn a_loaded_world_is_served() {
    let world = World::load("tests/fixtures/world_desk.toml").unwrap();
    let h = Harness::with_world(world, EmulatorConfig::default()).await;
    let reply = h
        .send(
            Req::post("/account/stp_groups", r#"{"name":"desk"}"#)
                .by("desk-main-key", "desk-main-secret"),
        )
        .await
        .ok();
    let id = reply.body["id"].as_i64().unwrap();
    let reply = h
        .send(Req::post(users(id), "[501,502,500]").by("desk-main-key", "desk-main-secret"))
        .await
        .ok();
    assert_eq!(reply.user_ids(), [500, 501, 502]);
    h.send(Req::post(users(id), "[900]").by("desk-main-key", "desk-main-secret"))
        .await
        .refused(403, "FORBIDDEN");
    // The demo keys mean nothing here.
    h.send(Req::get("/account/stp_groups"))
        .await
        .refused(401, "INVALID_KEY");
}

// ---------- concurrency ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_and_removes_lose_nothing() {
    const TASKS: i64 = 32;
    const ROUNDS: usize = 12;
    let mut text =
        String::from("[[accounts]]\nuser_id = 1\nkey = \"boss\"\nsecret = \"boss-secret\"\n");
    for user in 2..2 + TASKS {
        text.push_str(&format!("[[accounts]]\nuser_id = {user}\nmain = 1\n"));
    }
    let world = World::from_toml_str(&text).unwrap();
    let h = std::sync::Arc::new(
        Harness::with_world(world, EmulatorConfig::default().without_rate_limit()).await,
    );
    let id = h
        .send(Req::post("/account/stp_groups", r#"{"name":"busy"}"#).by("boss", "boss-secret"))
        .await
        .ok()
        .body["id"]
        .as_i64()
        .unwrap();

    // Task `user` alone touches `user`: every response must show it present after its add
    // and absent after its remove, and the end state is what each task did last.
    let tasks: Vec<_> = (2..2 + TASKS)
        .map(|user| {
            let h = std::sync::Arc::clone(&h);
            tokio::spawn(async move {
                let rounds = ROUNDS + usize::try_from(user % 2).unwrap();
                let mut present = false;
                for round in 0..rounds {
                    let adding = round % 2 == 0;
                    let req = if adding {
                        Req::post(users(id), format!("[{user}]"))
                    } else {
                        Req::delete(format!("{}?user_id={user}", users(id)))
                    };
                    let reply = h.send(req.by("boss", "boss-secret")).await.ok();
                    let members = reply.user_ids();
                    assert!(
                        members.windows(2).all(|w| w[0] < w[1]),
                        "unsorted or duplicated: {members:?}"
                    );
                    assert_eq!(members.contains(&user), adding, "user {user} round {round}");
                    present = adding;
                }
                (user, present)
            })
        })
        .collect();
    let mut expected = Vec::new();
    for task in tasks {
        let (user, present) = task.await.unwrap();
        if present {
            expected.push(user);
        }
    }
    expected.sort_unstable();
    assert_eq!(expected.len(), usize::try_from(TASKS / 2).unwrap());
    assert_eq!(h.emulator.members(id), Some(expected.clone()));
    let listed = h
        .send(Req::get(users(id)).by("boss", "boss-secret"))
        .await
        .ok();
    assert_eq!(listed.user_ids(), expected);
    assert_eq!(h.emulator.groups().len(), 1);
}

// ---------- lifecycle ----------

/// A request the emulator is in the middle of: its head is read and its handler waits for
/// the body (the emulator has said `100 Continue`, which it says only once it reads it).
async fn request_in_flight(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v4/account/stp_groups HTTP/1.1\r\nHost: gate\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{interim:?}");
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{interim:?}");
    stream
}

/// Sends the body of a [`request_in_flight`] and reads what comes back until the
/// connection closes (nothing, if it was cut).
async fn finish_request(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.write_all(b"{}").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn shutdown_waits_for_the_request_in_flight_and_answers_it() {
    let emulator = start(EmulatorConfig::default()).await;
    let stream = request_in_flight(emulator.local_addr()).await;
    let mut stopping = Box::pin(emulator.shutdown());
    // Graceful: while the request waits for its body, shutdown does not end (it cannot,
    // short of its 5 s grace, so the bound only says how long we look).
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut stopping)
            .await
            .is_err(),
        "shutdown ended with a request in flight"
    );
    let answer = finish_request(stream).await;
    // Unsigned, so refused (no KEY); what matters is that it was answered.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("MISSING_REQUIRED_HEADER"), "{answer:?}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown ends once the request is answered");
}

#[tokio::test]
async fn a_dropped_emulator_still_answers_the_request_in_flight() {
    let emulator = start(EmulatorConfig::default()).await;
    let addr = emulator.local_addr();
    let stream = request_in_flight(addr).await;
    // Dropping does not wait: each connection is served by a task of its own, which
    // finishes its request; only the listener goes at once.
    drop(emulator);
    let answer = finish_request(stream).await;
    assert!(answer.contains("MISSING_REQUIRED_HEADER"), "{answer:?}");
}

#[tokio::test]
async fn memberships_are_what_the_api_lists() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    let id = client.create_group("desk").await.unwrap().id.unwrap();
    // Compared as the JSON they are sent as (the generated models have no `PartialEq`).
    let json = |users: Option<Vec<gate_stp::models::StpGroupUser>>| {
        users.map(|users| serde_json::to_value(users).unwrap())
    };
    assert_eq!(json(emulator.memberships(id)), Some(json!([])));
    client
        .add_users(id, &[demo::SUB_USER_WITHOUT_KEY, demo::SUB_USER])
        .await
        .unwrap();
    let listed = client.list_users(id).await.unwrap().into_inner();
    assert_eq!(listed.len(), 2);
    assert_eq!(json(emulator.memberships(id)), json(Some(listed)));
    assert!(emulator.memberships(id + 1).is_none());
}

#[tokio::test]
async fn shutdown_stops_serving_and_serve_runs_until_its_future_completes() {
    let emulator = start(EmulatorConfig::default()).await;
    let url = format!("{}/spot/time", emulator.base_url());
    assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(emulator.local_addr().ip().to_string(), "127.0.0.1");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 200);
    emulator.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());

    let dropped = start(EmulatorConfig::default()).await;
    let addr = dropped.local_addr();
    drop(dropped);
    // Dropping aborts the serving task (and drops its stop signal, which would end it
    // too); its listener closes when this one-thread runtime next gets a turn (the
    // connect's own await is usually it) and drops the task. Waited for as that event,
    // counted in turns of the runtime rather than in time, so a loaded machine cannot
    // make it late; a drop that stopped nothing fails here. The refused connection is
    // the check itself: a request sent after it would only add a moment in which another
    // test's server could take the freed port.
    let mut turns = 0;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        turns += 1;
        assert!(
            turns < 100,
            "still accepting connections after {turns} turns"
        );
        tokio::task::yield_now().await;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mock::serve(
        listener,
        World::demo(),
        EmulatorConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let reply: Value = reqwest::get(format!("http://{addr}/api/v4/spot/time"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let server_ms = reply["server_time"].as_i64().unwrap();
    let local_ms = i64::try_from(
        gate_stp::Clock::now(&gate_stp::SystemClock)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(
        (server_ms - local_ms).abs() < 5_000,
        "{server_ms} vs {local_ms}"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once its future completes")
        .unwrap()
        .unwrap();
}

// ---------- through the crate's client ----------
//
// The same rules met by `gate_stp::Client`: how they surface as typed errors, metadata
// and clock sync, and that one client shared by many tasks loses no update.

/// A manual clock at [`NOW`].
fn clock() -> ManualClock {
    ManualClock::at_unix_secs(NOW)
}

/// The crate's client, without retries or resync, so each rule shows as it is.
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
async fn concurrent_adds_and_removes_through_one_client_lose_nothing() {
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

// ---------- the request log ----------

#[tokio::test(flavor = "current_thread")]
async fn each_request_is_logged_with_its_endpoint() {
    // Captured for this test only: the emulator serves on this test's one thread.
    let (logs, _guard) = common::logs::capture(tracing::Level::DEBUG);
    let emulator = start(EmulatorConfig::default()).await;
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    client.list_groups().await.unwrap();
    let unknown = format!("{}/no/such/route", emulator.base_url());
    let answer = reqwest::get(&unknown).await.unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    emulator.shutdown().await;

    let text = logs.text();
    let endpoint_of = |path: &str| {
        text.lines()
            .filter(|line| line.contains("gate_stp::mock") && line.contains(" request "))
            .find(|line| line.contains(&format!("path={path} ")))
            .and_then(|line| line.split(" endpoint=").nth(1))
            .and_then(|rest| rest.split(" method=").next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no request line for {path}:\n{text}"))
    };
    // The operation's method and route (as the fragment names it), or what matched none.
    assert_eq!(
        endpoint_of("/api/v4/account/stp_groups"),
        "GET /account/stp_groups"
    );
    assert_eq!(endpoint_of("/api/v4/no/such/route"), "(no route)");
}
