//! The server's decisions as small functions (which tools are offered, the digest store,
//! the confirmation, the error lines), and random tool calls through the call path.

use gate_stp::{
    Client, Credentials,
    desired::{DesiredState, LiveState, Plan},
    mock::{Emulator, EmulatorConfig, World, demo},
};
use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    test_runner::{Config, TestRunner},
};
use rmcp::{ServerHandler, model::JsonObject, service::ElicitationError};
use serde_json::{Value, json};

use super::{
    ServerSettings, StpServer,
    consent::{ConfirmApply, answer_of, confirmed},
    errors::ToolError,
    not_offered, safe_text,
    store::{DigestStore, StoredPlan, digest_of},
    tools::{self, offered},
};

const READ_TOOLS: [&str; 5] = ["account", "list_groups", "list_members", "export", "plan"];

#[test]
fn apply_is_offered_only_with_the_operators_consent() {
    for name in READ_TOOLS {
        assert!(offered(name, false) && offered(name, true), "{name}");
    }
    assert!(!offered("apply", false));
    assert!(offered("apply", true));
    for name in [
        "",
        "Apply",
        "apply ",
        "create_group",
        "remove_users",
        "add_users",
    ] {
        assert!(!offered(name, true), "{name:?}");
    }
}

#[test]
fn the_list_shows_exactly_the_offered_tools_each_with_four_hints_and_an_output_schema() {
    let names = |allow: bool| -> Vec<String> {
        tools::listed(allow)
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect()
    };
    assert_eq!(names(false), READ_TOOLS);
    assert_eq!(names(true).last().map(String::as_str), Some("apply"));
    for tool in tools::all() {
        let hints = tool.annotations.as_ref().unwrap();
        assert!(hints.read_only_hint.is_some() && hints.destructive_hint.is_some());
        assert!(hints.idempotent_hint.is_some() && hints.open_world_hint.is_some());
        assert!(tool.output_schema.is_some(), "{}", tool.name);
        // Only apply writes; it is neither read-only nor idempotent.
        let writes = tool.name == "apply";
        assert_eq!(hints.read_only_hint, Some(!writes), "{}", tool.name);
        assert_eq!(hints.destructive_hint, Some(writes), "{}", tool.name);
        assert_eq!(hints.idempotent_hint, Some(!writes), "{}", tool.name);
    }
}

#[test]
fn calling_apply_without_consent_says_how_to_give_it() {
    assert!(not_offered("apply").message.contains("--allow-apply"));
    let unknown = not_offered("drop\u{1b}[2J");
    assert!(!unknown.message.contains('\u{1b}'), "{}", unknown.message);
}

/// A plan for main account `main` computed from an empty account: distinct per `main`.
fn plan_for(main: i64) -> StoredPlan {
    let live = LiveState {
        main_user_id: main,
        sub_accounts: Vec::new(),
        groups: Vec::new(),
    };
    let desired = DesiredState {
        main_user_id: main,
        groups: Vec::new(),
    };
    let plan = Plan::compute(&live, &desired).unwrap();
    StoredPlan { plan }
}

#[test]
fn a_digest_names_the_plans_json_document_and_changes_with_the_live_state() {
    let stored = plan_for(1);
    let digest = digest_of(&stored.plan);
    assert_eq!(digest.len(), 64);
    assert!(
        digest
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let mut moved = stored.plan.clone();
    moved.live_fingerprint.push('x');
    assert_ne!(digest_of(&moved), digest);
}

#[test]
fn a_stored_plan_is_taken_once() {
    let mut store = DigestStore::new(4);
    let digest = store.insert(plan_for(1));
    assert_eq!(digest, digest_of(&plan_for(1).plan));
    assert!(store.get(&digest).is_some());
    assert!(store.get(&digest).is_some(), "get leaves it");
    assert_eq!(store.take(&digest).unwrap().plan, plan_for(1).plan);
    assert!(
        store.take(&digest).is_none(),
        "a digest is applied at most once"
    );
    assert!(store.get(&digest).is_none());
    assert!(store.take("").is_none() && store.take(&"0".repeat(64)).is_none());
}

#[test]
fn the_store_forgets_the_oldest_plan_beyond_its_capacity() {
    let mut store = DigestStore::new(3);
    let digests: Vec<String> = (1..=4).map(|main| store.insert(plan_for(main))).collect();
    assert_eq!(store.len(), 3);
    assert!(store.get(&digests[0]).is_none());
    assert!(
        digests[1..]
            .iter()
            .all(|digest| store.get(digest).is_some())
    );
    // Planning the same thing again keeps one entry and makes it the newest.
    assert_eq!(store.insert(plan_for(2)), digests[1]);
    assert_eq!(store.len(), 3);
    store.insert(plan_for(5));
    assert!(store.get(&digests[1]).is_some() && store.get(&digests[2]).is_none());
}

#[test]
fn only_an_explicit_yes_confirms_an_apply() {
    assert!(confirmed(Ok(Some(ConfirmApply { confirm: true }))).is_ok());
    let refusals = [
        confirmed(Ok(Some(ConfirmApply { confirm: false }))),
        confirmed(Ok(None)),
        confirmed(Err(ElicitationError::UserDeclined)),
        confirmed(Err(ElicitationError::UserCancelled)),
        confirmed(Err(ElicitationError::NoContent)),
        confirmed(Err(ElicitationError::CapabilityNotSupported)),
    ];
    for refusal in refusals {
        let error = refusal.unwrap_err();
        assert!(error.message().contains("nothing was sent"), "{error:?}");
    }
}

#[test]
fn a_tool_error_is_one_escaped_line_marked_as_an_error() {
    let result =
        ToolError::new("stopped\n  done: x\n  FAILED: \u{1b}[31mdesk; call plan").into_result();
    assert_eq!(result.is_error, Some(true));
    let text = &result.content[0].as_text().unwrap().text;
    assert_eq!(
        text,
        "stopped;   done: x;   FAILED: \\x1b[31mdesk; call plan"
    );
}

#[test]
fn model_text_keeps_its_lines_and_escapes_everything_else() {
    assert_eq!(
        safe_text("a\u{1b}]0;t\u{7}\nb\r\u{202e}"),
        "a\\x1b]0;t\\x07\nb\\x0d\\u{202e}"
    );
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(json!(
            "main_user_id = 10000\n[[group]]\nname = \"d\"\nmembers = [10001]\n"
        )),
        Just(json!("toml")),
        Just(json!("json")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arguments() -> impl Strategy<Value = Option<JsonObject>> {
    let key = prop_oneof![
        Just("name".to_owned()),
        Just("stp_id".to_owned()),
        Just("document".to_owned()),
        Just("format".to_owned()),
        Just("digest".to_owned()),
        ".{0,8}",
    ];
    proptest::option::of(
        btree_map(key, json_value(), 0..4).prop_map(|map| map.into_iter().collect()),
    )
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "account",
            "list_groups",
            "list_members",
            "export",
            "plan",
            "apply",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

/// The demo's world on an emulator without rate limits, and a client of its main key.
fn demo_gate(runtime: &tokio::runtime::Runtime) -> (gate_stp::mock::RunningEmulator, Client) {
    let emulator = runtime
        .block_on(Emulator::start(
            World::demo(),
            EmulatorConfig::default().without_rate_limit(),
        ))
        .unwrap();
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    (emulator, client)
}

/// Whatever a client sends: no panic, a tool not offered is a protocol error, and nothing
/// reaches Gate that changes state (no plan of the session was ever applied by digest).
#[test]
fn random_tool_calls_never_panic_and_never_change_the_groups() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (emulator, client) = demo_gate(&runtime);
    let server = |allow_apply| {
        StpServer::new(
            client.clone(),
            ServerSettings {
                allow_apply,
                max_removals: 10,
                max_creates: 10,
                plan_ttl_minutes: 30,
            },
        )
    };
    let (closed, open) = (server(false), server(true));
    let groups_before = emulator.groups().len();
    // The control: some calls got past the argument checks and ran a tool.
    let answered = std::cell::Cell::new(0_u32);
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(tool_name(), arguments(), any::<bool>()),
            |(name, arguments, allow_apply)| {
                let server = if allow_apply { &open } else { &closed };
                let result =
                    runtime.block_on(server.dispatch(&name, arguments, super::Asker::Nobody));
                if !offered(&name, allow_apply) {
                    prop_assert!(result.is_err(), "{name:?} answered");
                }
                prop_assert_eq!(emulator.groups().len(), groups_before);
                answered.set(answered.get() + u32::from(result.is_ok()));
                Ok(())
            },
        )
        .unwrap();
    assert!(
        answered.get() >= 8,
        "only {} calls ran a tool",
        answered.get()
    );
    runtime.block_on(emulator.shutdown());
}

/// `get_tool` (what rmcp looks a tool up by) offers exactly what `tools/list` lists: no
/// `apply` without the operator's consent, each tool under its own name.
#[test]
fn a_tool_is_looked_up_by_its_name_and_apply_only_with_consent() {
    let client = Client::builder()
        .base_url("http://127.0.0.1:9/api/v4")
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    for allow_apply in [false, true] {
        let server = StpServer::new(
            client.clone(),
            ServerSettings {
                allow_apply,
                max_removals: 10,
                max_creates: 10,
                plan_ttl_minutes: 30,
            },
        );
        for name in READ_TOOLS {
            assert_eq!(
                server.get_tool(name).map(|tool| tool.name.into_owned()),
                Some(name.to_owned())
            );
        }
        assert_eq!(server.get_tool("apply").is_some(), allow_apply);
        assert!(server.get_tool("drop_everything").is_none());
    }
}

#[test]
fn each_refused_apply_says_what_to_do_next() {
    use gate_stp::desired::{ApplyError, PlanError};
    let next = |error: ApplyError| ToolError::apply(error).message().to_owned();
    let refused = next(ApplyError::Plan(PlanError {
        problems: Vec::new(),
    }));
    assert!(
        refused.ends_with("; fix the document and call plan again"),
        "{refused}"
    );
    for stale in [
        ApplyError::StalePlan {
            planned: "a".repeat(64),
            live: "b".repeat(64),
        },
        ApplyError::InconsistentPlan,
    ] {
        let text = next(stale);
        assert!(
            text.ends_with(
                "; call plan again, show the new plan to the user, and apply its digest"
            ),
            "{text}"
        );
    }
    let too_many = next(ApplyError::TooManyRemovals {
        removals: 12,
        max: 10,
    });
    assert!(
        too_many.starts_with(
            "the plan removes 12 members, more than the limit of 10; nothing was changed (this server's limit, set by its operator with --max-removals); split the change"
        ),
        "{too_many}"
    );
    let one = next(ApplyError::TooManyRemovals {
        removals: 1,
        max: 0,
    });
    assert!(one.starts_with("the plan removes 1 member, "), "{one}");
    let creates = next(ApplyError::TooManyCreates { creates: 3, max: 2 });
    assert!(
        creates.contains("(this server's limit, set by its operator with --max-creates)")
            && creates
                .ends_with("ask the operator to restart the server with a higher --max-creates"),
        "{creates}"
    );
}

#[test]
fn each_failed_request_says_what_to_do_next() {
    use gate_stp::{Error, InvalidInput};
    let next = |error: Error| ToolError::client(error).message().to_owned();
    let text = next(Error::InvalidInput(InvalidInput::EmptyGroupName));
    assert!(
        text.ends_with("; fix the arguments and call again"),
        "{text}"
    );
    let text = next(Error::MissingCredentials {
        operation: "listSTPGroups",
    });
    assert!(
        text.ends_with(
            "; the server's settings are wrong (key, secret, base URL or profile); the agent cannot fix this: tell the user to ask the operator who runs gate-stp mcp"
        ),
        "{text}"
    );
    let text = next(Error::ExpiresBeforeRateLimitReset {
        reset_in: std::time::Duration::from_secs(3),
    });
    assert!(
        text.ends_with("; Gate's rate limit: wait a few seconds and call again"),
        "{text}"
    );
}

/// A folder for a disk store that does not exist yet, in a directory removed when the
/// returned guard drops.
fn store_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("gate-stp-mcp-store-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("plans");
    (dir, root)
}

#[test]
fn a_plan_on_disk_is_found_by_its_digest_and_taken_once_of_many_concurrent_takes() {
    use super::store::{DiskStore, scope};
    let (_dir, root) = store_root();
    let ttl = std::time::Duration::from_secs(60);
    let store = DiskStore::open(&root, &scope("http://x/api/v4", "k"), ttl).unwrap();
    let plan = plan_for(1).plan;
    let digest = store.insert(&plan).unwrap();
    assert_eq!(digest, digest_of(&plan));
    assert_eq!(store.get(&digest).unwrap().as_ref(), Some(&plan));
    assert_eq!(
        store.get(&digest).unwrap().as_ref(),
        Some(&plan),
        "get leaves it"
    );
    // Another store of the same folder (another process) sees it; eight take it at once.
    let stores: Vec<DiskStore> = (0..8)
        .map(|_| DiskStore::open(&root, &scope("http://x/api/v4", "k"), ttl).unwrap())
        .collect();
    let taken: Vec<bool> = std::thread::scope(|threads| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| threads.spawn(|| store.take(&digest).unwrap().is_some()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
    assert!(store.get(&digest).unwrap().is_none());
    // Another key's store is another folder.
    let other = DiskStore::open(&root, &scope("http://x/api/v4", "other"), ttl).unwrap();
    let digest = store.insert(&plan).unwrap();
    assert!(other.get(&digest).unwrap().is_none());
    assert!(store.take(&digest).unwrap().is_some());
}

/// The user's answer in a 2026-07-28 round trip is read as an elicitation answer: only an
/// accepted `{"confirm": true}` under the key `confirm` lets apply send.
#[test]
fn a_round_trip_answer_confirms_only_an_explicit_yes() {
    use rmcp::model::InputResponses;
    let answer = |value: Value| -> Result<(), ToolError> {
        let responses: InputResponses = serde_json::from_value(value).unwrap();
        confirmed(answer_of(Some(responses)))
    };
    assert!(answer(json!({"confirm": {"action": "accept", "content": {"confirm": true}}})).is_ok());
    for refusal in [
        json!({"confirm": {"action": "accept", "content": {"confirm": false}}}),
        json!({"confirm": {"action": "accept"}}),
        json!({"confirm": {"action": "accept", "content": {"confirm": "yes"}}}),
        json!({"confirm": {"action": "decline"}}),
        json!({"confirm": {"action": "cancel"}}),
        json!({"confirm": "yes"}),
        json!({"other": {"action": "accept", "content": {"confirm": true}}}),
        json!({}),
    ] {
        let error = answer(refusal.clone()).unwrap_err();
        assert!(
            error.message().contains("nothing was sent"),
            "{refusal}: {error:?}"
        );
    }
    assert!(confirmed(answer_of(None)).is_err());
}

/// Each of Gate's labels gets the next step that fits its cause: the operator's for the
/// key, the secret, the IP, the clock, the account and its permissions; the agent's own
/// for a group that does not exist or values Gate refuses.
#[test]
fn each_label_of_gate_says_whose_it_is_to_fix() {
    use gate_stp::{ApiError, Error, Label, ResponseMeta};
    let next = |label: Label| {
        let meta = ResponseMeta {
            status: reqwest::StatusCode::UNAUTHORIZED,
            rate_limit: None,
            trace_id: None,
            client_request_id: None,
        };
        let error = Error::Api(Box::new(ApiError {
            status: meta.status,
            label,
            message: None,
            detail: None,
            meta,
        }));
        ToolError::client(error).message().to_owned()
    };
    const OPERATOR: &str =
        "; the agent cannot fix this: tell the user to ask the operator who runs gate-stp mcp";
    for (label, cause) in [
        (
            Label::InvalidCredentials,
            "Gate does not accept the server's API key or secret",
        ),
        (
            Label::InvalidKey,
            "Gate does not accept the server's API key or secret",
        ),
        (
            Label::InvalidSignature,
            "Gate does not accept the server's API key or secret",
        ),
        (
            Label::MissingRequiredHeader,
            "Gate does not accept the server's API key or secret",
        ),
        (
            Label::IpForbidden,
            "this machine's IP address is not on the key's allow list",
        ),
        (Label::ReadOnly, "the server's API key is read-only"),
        (
            Label::RequestExpired,
            "this machine's clock is more than 60 seconds off Gate's",
        ),
        (Label::AccountLocked, "the account is locked"),
        (Label::Forbidden, "the key's account may not do this"),
    ] {
        let text = next(label.clone());
        assert!(text.contains(cause), "{label:?}: {text}");
        assert!(text.ends_with(OPERATOR), "{label:?}: {text}");
    }
    let text = next(Label::NotFound);
    assert!(
        text.ends_with("; no such group: take the id from list_groups and call again"),
        "{text}"
    );
    for label in [
        Label::InvalidParamValue,
        Label::Other("SOMETHING_NEW".to_owned()),
    ] {
        let text = next(label.clone());
        assert!(
            text.contains("; Gate refused the request: check the arguments"),
            "{label:?}: {text}"
        );
        assert!(
            !text.contains("the agent cannot fix this"),
            "{label:?}: {text}"
        );
    }
}

/// The store forgets: plans beyond its capacity, leftovers of interrupted writes and
/// claims once old; never a file that is not a plan (the request-state key).
#[test]
fn the_disk_store_prunes_what_it_no_longer_needs() {
    use super::store::{DiskStore, MAX_PLAN_FILES, scope};
    let (_dir, root) = store_root();
    let store =
        DiskStore::open(&root, &scope("u", "k"), std::time::Duration::from_secs(60)).unwrap();
    let count = |suffix: &str| {
        std::fs::read_dir(store.dir())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(suffix)
            })
            .count()
    };
    for main in 1..=i64::try_from(MAX_PLAN_FILES).unwrap() + 3 {
        store.insert(&plan_for(main).plan).unwrap();
    }
    assert_eq!(count(".json"), MAX_PLAN_FILES);
    // Two hours old: an interrupted write's leftover and a key are not plans; only the
    // leftover goes, and an old plan goes as expired.
    let old = |name: &str| {
        let path = store.dir().join(name);
        let file = std::fs::File::create(&path).unwrap();
        let two_hours_ago =
            gate_stp::Clock::now(&gate_stp::SystemClock) - std::time::Duration::from_secs(7200);
        file.set_modified(two_hours_ago).unwrap();
        path
    };
    let leftover = old(".abc.1.2.tmp");
    let key = old("request-state.key");
    let expired = old(&format!("{}.json", "e".repeat(64)));
    store.prune();
    assert!(!leftover.exists() && !expired.exists());
    assert!(key.exists());
}

/// A plan file `seconds` old named as a plan of `digest` in `dir`, written as another
/// process would have left it (the content does not matter to pruning).
fn plan_file_aged(dir: &std::path::Path, digest: &str, seconds: u64) -> std::path::PathBuf {
    let path = dir.join(format!("{digest}.json"));
    let file = std::fs::File::create(&path).unwrap();
    let then =
        gate_stp::Clock::now(&gate_stp::SystemClock) - std::time::Duration::from_secs(seconds);
    file.set_modified(then).unwrap();
    path
}

/// An expired plan goes even when the folder is far below its cap; a folder more than one
/// plan over the cap (several processes wrote) keeps the cap's number, the newest.
#[test]
fn pruning_removes_expired_plans_and_every_plan_over_the_cap() {
    use super::store::{DiskStore, MAX_PLAN_FILES, scope};
    let (_dir, root) = store_root();
    let ttl = std::time::Duration::from_secs(30 * 60);
    let store = DiskStore::open(&root, &scope("u", "k"), ttl).unwrap();
    let expired = plan_file_aged(store.dir(), &"e".repeat(64), 31 * 60);
    let fresh = plan_file_aged(store.dir(), &"f".repeat(64), 29 * 60);
    store.prune();
    assert!(!expired.exists());
    assert!(fresh.exists());
    std::fs::remove_file(&fresh).unwrap();

    // Five seconds apart, the last the oldest (21.5 minutes, within the lifetime): the two
    // oldest go.
    let over = MAX_PLAN_FILES + 2;
    let files: Vec<_> = (0..over)
        .map(|i| {
            plan_file_aged(
                store.dir(),
                &format!("{i:064x}"),
                5 * u64::try_from(i).unwrap(),
            )
        })
        .collect();
    store.prune();
    let left = files.iter().filter(|path| path.exists()).count();
    assert_eq!(left, MAX_PLAN_FILES);
    assert!(!files[over - 1].exists() && !files[over - 2].exists());
}

/// A plans folder that cannot be read is the operator's problem to hear about, not an
/// "unknown digest": here another file stands where the folder was.
#[test]
fn a_broken_plans_folder_is_an_error_not_an_unknown_digest() {
    use super::store::{DiskStore, scope};
    let (_dir, root) = store_root();
    let ttl = std::time::Duration::from_secs(60);
    let store = DiskStore::open(&root, &scope("u", "k"), ttl).unwrap();
    let digest = store.insert(&plan_for(1).plan).unwrap();
    std::fs::remove_dir_all(store.dir()).unwrap();
    std::fs::write(store.dir(), "not a folder").unwrap();
    assert!(store.get(&digest).is_err());
    assert!(store.take(&digest).is_err());
}

/// The demo's server keeps its plans in memory: a digest it made applies once, and only
/// in it.
#[test]
fn a_server_in_memory_applies_its_own_digest_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (emulator, client) = demo_gate(&runtime);
    let settings = ServerSettings {
        allow_apply: true,
        max_removals: 10,
        max_creates: 10,
        plan_ttl_minutes: 30,
    };
    let server = StpServer::new(client.clone(), settings);
    let call = |server: &StpServer, name: &str, arguments: Value| {
        let arguments = arguments.as_object().cloned();
        match runtime.block_on(server.dispatch(name, arguments, super::Asker::Nobody)) {
            Ok(rmcp::model::CallToolResponse::Complete(result)) => result,
            other => panic!("{name}: {other:?}"),
        }
    };
    let document = format!(
        "main_user_id = {}\n[[group]]\nname = \"desk\"\n",
        demo::MAIN_USER
    );
    let planned = call(&server, "plan", json!({"document": document}));
    let digest = planned.structured_content.unwrap()["digest"].clone();
    assert_eq!(digest.as_str().unwrap().len(), 64, "{digest}");
    let other = StpServer::new(client, settings);
    let elsewhere = call(&other, "apply", json!({"digest": digest}));
    assert_eq!(elsewhere.is_error, Some(true), "{elsewhere:?}");
    let applied = call(&server, "apply", json!({"digest": digest}));
    assert_ne!(applied.is_error, Some(true), "{applied:?}");
    assert_eq!(emulator.groups().len(), 1);
    let again = call(&server, "apply", json!({"digest": digest}));
    assert_eq!(again.is_error, Some(true), "{again:?}");
    runtime.block_on(emulator.shutdown());
}

/// A group id is 1 or more: 1 is checked no further (Gate says whether it exists), 0 and
/// below are the model's mistake, said before anything is sent.
#[test]
fn a_group_id_is_one_or_more() {
    use super::tools::{Check, ListMembersArgs};
    let args = |stp_id| ListMembersArgs {
        stp_id,
        limit: None,
        cursor: None,
    };
    assert!(args(1).check().is_ok());
    for stp_id in [0, -1, i64::MIN] {
        let error = args(stp_id).check().unwrap_err();
        assert!(
            error.starts_with("`stp_id`: expected a group id of 1 or more"),
            "{error}"
        );
    }
}
