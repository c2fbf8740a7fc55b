//! `gate-stp mcp` as a child process, driven over stdio by rmcp's client against an
//! in-process emulator: the tools an agent sees, plan → apply by digest → plan again,
//! every refusal, escaping, and no secret in the logs.
//!
//! "Nothing sent" is observed on the emulator's side as in `stp_as_code.rs`: a fault is
//! queued on the next request of each state-changing operation; had any such request
//! reached the emulator, its fault would have fired and `pending_faults()` dropped.
#![cfg(feature = "cli")]

use std::{collections::BTreeSet, process::Stdio, sync::Arc};

use gate_stp::{
    Client, Credentials,
    desired::{DesiredState, Format, Plan},
    mock::{Emulator, EmulatorConfig, Fault, FaultKind, RunningEmulator, World},
};
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
        ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability,
        Implementation, ProtocolVersion, Tool,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService, ServiceError,
    },
    transport::TokioChildProcess,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::{io::AsyncReadExt, sync::Mutex, task::JoinHandle};

pub(crate) const MAIN: i64 = 10_000;
pub(crate) const MAIN_KEY: &str = "mcp-main-key-0123456789";
pub(crate) const MAIN_SECRET: &str = "mcp-main-secret-abcdefghij";

/// Main 10000 with sub-accounts 10001..=10003 (login names bot_1..bot_3).
pub(crate) fn world() -> World {
    let mut text = format!(
        "[[accounts]]\nuser_id = {MAIN}\nlogin_name = \"desk_main\"\nkey = \"{MAIN_KEY}\"\nsecret = \"{MAIN_SECRET}\"\n"
    );
    for i in 1..=3 {
        text.push_str(&format!(
            "\n[[accounts]]\nuser_id = {}\nmain = {MAIN}\nlogin_name = \"bot_{i}\"\n",
            MAIN + i
        ));
    }
    World::from_toml_str(&text).unwrap()
}

pub(crate) async fn emulator() -> RunningEmulator {
    Emulator::start(world(), EmulatorConfig::default())
        .await
        .unwrap()
}

/// The library's own client: "another caller", and the independent read-back.
pub(crate) fn library_client(emulator: &RunningEmulator) -> Client {
    Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(MAIN_KEY, MAIN_SECRET).unwrap())
        .build()
        .unwrap()
}

/// A group "desk" of MAIN's first three sub-accounts, made through the library; its id.
pub(crate) async fn desk_of_three(emulator: &RunningEmulator) -> i64 {
    let client = library_client(emulator);
    let desk = client.create_group("desk").await.unwrap().id.unwrap();
    client
        .add_users(desk, &[MAIN + 1, MAIN + 2, MAIN + 3])
        .await
        .unwrap();
    desk
}

pub(crate) const WRITES: [&str; 3] = ["createSTPGroup", "addSTPGroupUsers", "deleteSTPGroupUsers"];

pub(crate) fn arm_tripwires(emulator: &RunningEmulator) {
    for operation in WRITES {
        emulator
            .inject_fault(Fault::new(operation, 1, FaultKind::Status(599)))
            .unwrap();
    }
}

pub(crate) fn assert_no_write_sent(emulator: &RunningEmulator) {
    assert_eq!(
        emulator.pending_faults(),
        WRITES.len(),
        "a state-changing request reached the emulator"
    );
}

/// A client that can ask its user, and answers every question with `answer`.
#[derive(Clone)]
pub(crate) struct AskingClient {
    /// The revision it asks for: up to 2025-11-25 the server asks during the call
    /// (elicitation request), from 2026-07-28 in an `input_required` result.
    pub(crate) version: ProtocolVersion,
    pub(crate) answer: ElicitationAction,
    pub(crate) questions: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for AskingClient {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(ElicitationCapability::default());
        ClientConfig::new(capabilities, Implementation::new("mcp-test", "0"))
            .with_protocol_version(self.version.clone())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.questions.lock().await.push(message);
        }
        let mut result = ElicitResult::new(self.answer.clone());
        if self.answer == ElicitationAction::Accept {
            result = result.with_content(json!({"confirm": true}));
        }
        Ok(result)
    }
}

/// A client of `version` that can ask its user, and answers every question with `answer`.
pub(crate) fn asking(version: ProtocolVersion, answer: ElicitationAction) -> AskingClient {
    AskingClient {
        version,
        answer,
        questions: Arc::default(),
    }
}

/// A running `gate-stp mcp` and the client session driving it.
pub(crate) struct Server<H: ClientHandler = ()> {
    pub(crate) session: RunningService<RoleClient, H>,
    stderr: JoinHandle<String>,
    /// The plans folder this test made for the server, removed with the server.
    _plans: Option<crate::common::Scratch>,
}

pub(crate) async fn start_with<H: ClientHandler>(
    emulator: &RunningEmulator,
    flags: &[&str],
    log: &str,
    handler: H,
) -> Server<H> {
    start_env(emulator, flags, log, handler, &[]).await
}

/// As [`start_with`], with `env` set after the defaults (a wrong secret, a state folder).
pub(crate) async fn start_env<H: ClientHandler>(
    emulator: &RunningEmulator,
    flags: &[&str],
    log: &str,
    handler: H,
    env: &[(&str, &str)],
) -> Server<H> {
    start_lifecycle(
        emulator,
        flags,
        log,
        handler,
        env,
        ClientLifecycleMode::Initialize,
    )
    .await
}

/// As [`start_env`], the client starting the session as `lifecycle` says (`initialize`, or
/// the 2026-07-28 `server/discover`).
pub(crate) async fn start_lifecycle<H: ClientHandler>(
    emulator: &RunningEmulator,
    flags: &[&str],
    log: &str,
    handler: H,
    env: &[(&str, &str)],
    lifecycle: ClientLifecycleMode,
) -> Server<H> {
    let mut command = tokio::process::Command::from(crate::common::cli::gate_stp());
    command
        .arg("mcp")
        .args(flags)
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", MAIN_KEY)
        .env("GATE_API_SECRET", MAIN_SECRET)
        .env("RUST_LOG", log);
    // Plans kept in a folder of the test's own, unless the test gives one.
    let plans = (!env.iter().any(|(name, _)| *name == "GATE_STP_PLANS_DIR"))
        .then(|| crate::common::fresh_dir("mcp-plans").file("plans"));
    if let Some(plans) = &plans {
        command.env("GATE_STP_PLANS_DIR", plans.as_os_str());
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr all along: a full pipe would block the server's logging.
    let mut stderr = stderr.unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let session = handler
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap();
    Server {
        session,
        stderr,
        _plans: plans,
    }
}

pub(crate) async fn start(emulator: &RunningEmulator, flags: &[&str]) -> Server {
    start_with(emulator, flags, "warn", ()).await
}

impl<H: ClientHandler> Server<H> {
    pub(crate) async fn call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ServiceError> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        self.session.call_tool(params).await
    }

    /// A call the tool must answer without error.
    pub(crate) async fn ok(&self, tool: &str, arguments: Value) -> (String, Value) {
        let result = self.call(tool, arguments).await.unwrap();
        let text = text_of(&result);
        assert_ne!(result.is_error, Some(true), "{tool} failed: {text}");
        (text, result.structured_content.expect("structuredContent"))
    }

    /// A call the tool must answer with `isError: true`; its text.
    pub(crate) async fn refused(&self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments).await.unwrap();
        assert_eq!(result.is_error, Some(true), "{tool} succeeded");
        text_of(&result)
    }

    /// Ends the session and the server; returns what the server wrote to stderr.
    pub(crate) async fn stop(self) -> String {
        self.session.cancel().await.unwrap();
        self.stderr.await.unwrap()
    }
}

pub(crate) fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn by_name(tools: &[Tool], name: &str) -> Tool {
    tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
        .clone()
}

const READ_TOOLS: [&str; 5] = ["account", "export", "list_groups", "list_members", "plan"];

/// Every tool states all four hints and an output schema; `expected` is
/// (read-only, destructive, idempotent, open-world) as the table says.
fn assert_hints(tool: &Tool, expected: (bool, bool, bool, bool)) {
    let hints = tool.annotations.as_ref().expect("annotations");
    let got = (
        hints.read_only_hint.expect("readOnlyHint explicit"),
        hints.destructive_hint.expect("destructiveHint explicit"),
        hints.idempotent_hint.expect("idempotentHint explicit"),
        hints.open_world_hint.expect("openWorldHint explicit"),
    );
    assert_eq!(got, expected, "hints of {}", tool.name);
    let schema = tool.output_schema.as_ref().expect("outputSchema");
    assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_allow_apply_only_reads_and_plan_are_offered() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names, BTreeSet::from(READ_TOOLS));
    for name in READ_TOOLS {
        assert_hints(&by_name(&tools, name), (true, false, true, true));
    }
    let plan = by_name(&tools, "plan");
    let properties = plan.input_schema.get("properties").unwrap();
    assert!(properties.get("document").is_some() && properties.get("format").is_some());
    // What the server says of itself when the session starts: its name, that it offers
    // tools, and how an agent is to use them.
    let info = server
        .session
        .peer_info()
        .expect("the server introduced itself");
    assert_eq!(
        info.server_info.as_ref().map(|it| it.name.as_str()),
        Some("gate-stp")
    );
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.as_deref().unwrap_or_default();
    assert!(
        instructions.contains("There is no other way to change a group"),
        "{instructions}"
    );

    arm_tripwires(&emulator);
    let refusal = server
        .call("apply", json!({"digest": "0".repeat(64)}))
        .await
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("--allow-apply"), "{refusal}");
    assert_no_write_sent(&emulator);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_allow_apply_apply_is_listed_as_destructive() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), READ_TOOLS.len() + 1);
    let apply = by_name(&tools, "apply");
    assert_hints(&apply, (false, true, false, true));
    let required = apply.input_schema.get("required").unwrap();
    assert_eq!(required, &json!(["digest"]));
    server.stop().await;
}

pub(crate) const DESK: &str =
    "main_user_id = 10000\n\n[[group]]\nname = \"desk\"\nmembers = [\"bot_1\", \"bot_2\"]\n";

/// The digest, checked against an independent computation: SHA-256 of the plan's JSON
/// document, rebuilt from the structured plan.
pub(crate) fn digest_of(structured: &Value) -> String {
    let digest = structured["digest"].as_str().unwrap().to_owned();
    let plan: Plan = serde_json::from_value(structured["plan"].clone()).unwrap();
    let expected = hex::encode(Sha256::digest(plan.to_json_string().as_bytes()));
    assert_eq!(digest, expected);
    digest
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_by_digest_then_plan_shows_no_changes() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let (text, planned) = server.ok("plan", json!({"document": DESK})).await;
    assert_eq!(planned["changes"], json!(true));
    assert!(text.contains("desk"), "{text}");
    let digest = digest_of(&planned);
    assert!(text.contains(&digest), "{text}");
    let steps = planned["plan"]["steps"].as_array().unwrap().len();

    let (_, applied) = server.ok("apply", json!({"digest": digest})).await;
    assert_eq!(applied["steps_done"], json!(steps));
    let created = applied["created"]["desk"].as_i64().unwrap();

    // Read back through the library's own client, not through the server.
    let client = library_client(&emulator);
    let groups = client.list_groups().await.unwrap().into_inner();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].name.as_str(), groups[0].id),
        ("desk", Some(created))
    );
    let members: BTreeSet<i64> = client
        .list_users(created)
        .await
        .unwrap()
        .iter()
        .filter_map(|user| user.user_id)
        .collect();
    assert_eq!(members, BTreeSet::from([MAIN + 1, MAIN + 2]));

    // list_members shows the same members, with their login names.
    let (text, listed) = server.ok("list_members", json!({"stp_id": created})).await;
    assert_eq!(listed["stp_id"], json!(created));
    let listed: BTreeSet<(i64, String)> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| {
            (
                member["user_id"].as_i64().unwrap(),
                member["login_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([
            (MAIN + 1, "bot_1".to_owned()),
            (MAIN + 2, "bot_2".to_owned())
        ])
    );
    assert!(text.contains("bot_1") && text.contains("bot_2"), "{text}");

    let (text, again) = server.ok("plan", json!({"document": DESK})).await;
    assert_eq!(again["changes"], json!(false), "{text}");
    assert!(again["plan"]["steps"].as_array().unwrap().is_empty());

    let refusal = server.refused("apply", json!({"digest": digest})).await;
    assert!(refusal.contains("already applied"), "{refusal}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_made_stale_by_another_caller_is_refused_with_nothing_sent() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    let digest = digest_of(&planned);

    library_client(&emulator)
        .create_group("someone-else")
        .await
        .unwrap();
    arm_tripwires(&emulator);
    let refusal = server.refused("apply", json!({"digest": digest})).await;
    assert!(refusal.contains("stale plan"), "{refusal}");
    assert!(
        refusal.contains("call plan again, show the new plan to the user, and apply its digest"),
        "{refusal}"
    );
    assert!(!refusal.contains('\n'), "one line: {refusal}");
    assert_no_write_sent(&emulator);
    let names: Vec<String> = emulator
        .groups()
        .into_iter()
        .map(|group| group.name)
        .collect();
    assert_eq!(names, ["someone-else"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_digest_is_refused() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    arm_tripwires(&emulator);
    let refusal = server
        .refused("apply", json!({"digest": "ab".repeat(32)}))
        .await;
    assert!(refusal.contains("unknown"), "{refusal}");
    assert!(refusal.contains("call plan again"), "{refusal}");
    assert_no_write_sent(&emulator);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_confirmation_sends_nothing_and_an_accepted_one_applies() {
    let emulator = emulator().await;
    let questions = Arc::new(Mutex::new(Vec::new()));
    let declining = AskingClient {
        version: ProtocolVersion::V_2025_11_25,
        answer: ElicitationAction::Decline,
        questions: questions.clone(),
    };
    let server = start_with(&emulator, &["--allow-apply"], "warn", declining).await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    let digest = digest_of(&planned);
    arm_tripwires(&emulator);
    let refusal = server.refused("apply", json!({"digest": digest})).await;
    assert!(refusal.contains("did not confirm"), "{refusal}");
    assert_no_write_sent(&emulator);
    let asked = questions.lock().await.clone();
    assert_eq!(asked.len(), 1);
    // The change itself, with login names, then the counts.
    let lines: Vec<&str> = asked[0].lines().collect();
    assert_eq!(
        lines,
        [
            "gate-stp: apply these changes to the live STP groups of main account 10000?",
            "- create group \"desk\" (a group can never be deleted)",
            "- add to \"desk\": 10001 \"bot_1\", 10002 \"bot_2\"",
            planned["summary"].as_str().unwrap(),
        ],
        "{asked:?}"
    );
    server.stop().await;

    let emulator = self::emulator().await;
    let accepting = AskingClient {
        version: ProtocolVersion::V_2025_11_25,
        answer: ElicitationAction::Accept,
        questions,
    };
    let server = start_with(&emulator, &["--allow-apply"], "warn", accepting).await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    let (_, applied) = server
        .ok("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(applied["created"]["desk"].is_i64());
    assert_eq!(emulator.groups().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_toml_document_is_reported_with_its_line() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    let broken = "main_user_id = 10000\n\n[[group]]\nname = \n";
    let refusal = server.refused("plan", json!({"document": broken})).await;
    assert!(refusal.starts_with("document:4:"), "{refusal}");
    assert!(refusal.contains("fix the document"), "{refusal}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_that_do_not_match_the_schema_are_tool_errors_and_an_unknown_tool_a_protocol_error()
 {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    for (tool, arguments, argument) in [
        ("list_members", json!({"stp_id": "one"}), "`stp_id`"),
        ("list_members", json!({}), "`stp_id`"),
        (
            "plan",
            json!({"document": "x", "format": "yaml"}),
            "`format`",
        ),
        ("account", json!({"unexpected": 1}), "`unexpected`"),
    ] {
        let text = server.refused(tool, arguments).await;
        assert!(text.contains(argument), "{tool}: {text}");
    }
    let error = server.call("no_such_tool", json!({})).await.unwrap_err();
    assert!(
        matches!(&error, ServiceError::McpError(data) if data.code.0 == -32602),
        "{error:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_group_name_is_escaped_in_text_and_exact_in_structured_content() {
    let emulator = emulator().await;
    let hostile = "desk\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{202e}kcab\u{2066}";
    library_client(&emulator)
        .create_group(hostile)
        .await
        .unwrap();
    let server = start(&emulator, &[]).await;
    for (tool, arguments) in [("list_groups", json!({})), ("export", json!({}))] {
        let (text, structured) = server.ok(tool, arguments).await;
        for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}', '\u{2066}'] {
            assert!(!text.contains(raw), "{tool}: raw {raw:?} in {text:?}");
        }
        if tool == "list_groups" {
            assert!(
                text.contains("\\x1b") && text.contains("\\u{202e}"),
                "{text}"
            );
            assert_eq!(structured["groups"][0]["name"], json!(hostile));
        } else {
            // TOML's own escapes: the document stays valid and means the exact name.
            let document = structured["document"].as_str().unwrap();
            let parsed = DesiredState::parse(document, Format::Toml, "export").unwrap();
            assert_eq!(parsed.groups[0].name, hostile);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_stderr_at_trace_level() {
    let emulator = emulator().await;
    let server = start_with(&emulator, &["--allow-apply"], "trace", ()).await;
    server.ok("account", json!({})).await;
    let (_, planned) = server.ok("plan", json!({"document": DESK})).await;
    server
        .ok("apply", json!({"digest": digest_of(&planned)}))
        .await;
    let stderr = server.stop().await;
    // The control: trace output was produced, including the client's requests.
    assert!(stderr.contains("TRACE"), "no trace output: {stderr}");
    assert!(stderr.contains("tool call"), "{stderr}");
    assert!(!stderr.contains(MAIN_SECRET), "the secret is in the log");
    assert!(!stderr.contains(MAIN_KEY), "the full key is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_removals_than_the_operator_allows_are_refused_with_nothing_sent() {
    let emulator = emulator().await;
    let desk = desk_of_three(&emulator).await;
    let server = start(&emulator, &["--allow-apply", "--max-removals", "2"]).await;
    let emptied = format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"desk\"\nmembers = []\n");
    let (text, planned) = server.ok("plan", json!({"document": emptied})).await;
    assert!(text.contains("limit of 2"), "{text}");
    arm_tripwires(&emulator);
    let refusal = server
        .refused("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(refusal.contains("removes 3 members"), "{refusal}");
    assert!(refusal.contains("--max-removals"), "{refusal}");
    assert!(refusal.contains("split the change"), "{refusal}");
    assert_no_write_sent(&emulator);
    assert_eq!(emulator.members(desk).unwrap().len(), 3);
    server.stop().await;
    // At the limit, the plan may be applied.
    let server = start(&emulator, &["--allow-apply", "--max-removals", "3"]).await;
    let (text, _) = server.ok("plan", json!({"document": emptied})).await;
    assert!(text.contains("call apply with this digest"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lists_name_each_group_and_member_by_id() {
    let emulator = emulator().await;
    let client = library_client(&emulator);
    let desk = client.create_group("desk").await.unwrap().id.unwrap();
    client.add_users(desk, &[MAIN + 1]).await.unwrap();
    let server = start(&emulator, &[]).await;
    let (text, _) = server.ok("list_groups", json!({})).await;
    assert!(
        text.contains(&format!(
            "\n- id {desk} name \"desk\" creator {MAIN} created "
        )),
        "{text}"
    );
    let (text, _) = server.ok("list_members", json!({"stp_id": desk})).await;
    assert!(text.contains(&format!("\n- {} ", MAIN + 1)), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_from_gate_is_a_tool_error_that_says_what_to_do() {
    let emulator = emulator().await;
    // The flag wins over the variable: a port nothing listens on.
    let server = start(
        &emulator,
        &["--base-url", "http://127.0.0.1:9/api/v4", "--timeout", "1"],
    )
    .await;
    let refusal = server.refused("account", json!({})).await;
    assert!(refusal.contains("call again later"), "{refusal}");
    assert!(!refusal.contains('\n'), "{refusal}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_concurrent_applies_planned_from_one_state_only_one_is_sent() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let document = |name: &str| {
        format!("main_user_id = {MAIN}\n\n[[group]]\nname = \"{name}\"\nmembers = []\n")
    };
    let (_, first) = server
        .ok("plan", json!({"document": document("first")}))
        .await;
    let (_, second) = server
        .ok("plan", json!({"document": document("second")}))
        .await;
    let (first, second) = tokio::join!(
        server.call("apply", json!({"digest": digest_of(&first)})),
        server.call("apply", json!({"digest": digest_of(&second)})),
    );
    let errors: Vec<bool> = [first.unwrap(), second.unwrap()]
        .iter()
        .map(|result| result.is_error == Some(true))
        .collect();
    assert_eq!(
        errors.iter().filter(|error| **error).count(),
        1,
        "{errors:?}"
    );
    assert_eq!(emulator.groups().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gates_refusals_and_a_stopped_apply_say_what_to_do_next() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    // A group that does not exist: Gate's NOT_FOUND.
    let refusal = server
        .refused("list_members", json!({"stp_id": 999_999}))
        .await;
    assert!(refusal.contains("NOT_FOUND"), "{refusal}");
    assert!(
        refusal.contains("no such group: take the id from list_groups"),
        "{refusal}"
    );
    // An apply Gate stops half-way: the group is created, adding its member is refused.
    let document = format!(
        "main_user_id = {MAIN}\n\n[[group]]\nname = \"half\"\nmembers = [{}]\n",
        MAIN + 1
    );
    let (_, planned) = server.ok("plan", json!({"document": document})).await;
    emulator
        .inject_fault(Fault::new("addSTPGroupUsers", 1, FaultKind::Status(403)))
        .unwrap();
    let refusal = server
        .refused("apply", json!({"digest": digest_of(&planned)}))
        .await;
    assert!(
        refusal.contains("call plan to see what is left, show it to the user"),
        "{refusal}"
    );
    assert_eq!(emulator.groups().len(), 1);
    server.stop().await;
}

#[test]
fn json_is_refused() {
    // The protocol is JSON on stdout already: `--json` would mean nothing, so it is
    // refused rather than ignored, before or after the command.
    for args in [&["mcp", "--json"][..], &["--json", "mcp"]] {
        let output = crate::common::cli::gate_stp().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--json does not apply"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
