//! Plan and apply against the in-memory Gate of `fake.rs`: the guards, the faults, and
//! the convergence properties.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{apply::check, fake::FakeGate, fake::Fault, *};
use crate::Error;

const MAIN: i64 = 10_000;

/// A runtime whose clock is paused: the fake answers at once, so time passes only when
/// something sleeps (the waits of a lost create) or a test advances it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

fn sub(user_id: i64, login: Option<&str>) -> SubAccount {
    SubAccount {
        user_id,
        login_name: login.map(str::to_owned),
    }
}

fn live_group(id: i64, name: &str, members: &[i64]) -> LiveGroup {
    LiveGroup {
        id,
        name: name.to_owned(),
        creator_id: Some(MAIN),
        members: members.to_vec(),
    }
}

/// Main 10000 with sub-accounts 10001..=10005 (10001 and 10002 have login names), a group
/// "desk" {10001, 10003} and an unmanaged "legacy" {10005}.
fn live() -> LiveState {
    let mut live = LiveState {
        main_user_id: MAIN,
        sub_accounts: vec![
            sub(10001, Some("bot-1")),
            sub(10002, Some("bot-2")),
            sub(10003, None),
            sub(10004, None),
            sub(10005, None),
        ],
        groups: vec![
            live_group(100001, "desk", &[10001, 10003]),
            live_group(100002, "legacy", &[10005]),
        ],
    };
    live.normalize();
    live
}

fn group(name: &str, members: Vec<Member>) -> DesiredGroup {
    DesiredGroup::new(name, members)
}

fn desired(groups: Vec<DesiredGroup>) -> DesiredState {
    DesiredState {
        main_user_id: MAIN,
        groups,
    }
}

/// "desk" loses 10003 and gains bot-2; "arb" is new with 10004 and the main account.
fn edited() -> DesiredState {
    desired(vec![
        group(
            "desk",
            vec![Member::Login("bot-1".into()), Member::Login("bot-2".into())],
        ),
        group("arb", vec![Member::Id(10004), Member::Id(MAIN)]),
    ])
}

fn no_progress() -> impl FnMut(Progress<'_>) + Send {
    |_| {}
}

/// The whole flow for a desired state: proposal, check, send.
async fn apply_desired(
    gate: &FakeGate,
    file: &DesiredState,
    options: ApplyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(Plan, ApplyReport), ApplyError> {
    let proposal = Proposal::for_desired(gate, file).await?;
    let plan = proposal.plan().clone();
    let report = proposal.check(options)?.send(gate, progress).await?;
    Ok((plan, report))
}

/// The whole flow for a saved plan: proposal, check, send.
async fn apply_saved(
    gate: &FakeGate,
    plan: &Plan,
    options: ApplyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, ApplyError> {
    let proposal = Proposal::for_saved(gate, plan.clone()).await?;
    proposal.check(options)?.send(gate, progress).await
}

/// Applies [`edited`] to `gate` with the default options.
fn apply_edited(
    rt: &tokio::runtime::Runtime,
    gate: &FakeGate,
) -> Result<(Plan, ApplyReport), ApplyError> {
    rt.block_on(apply_desired(
        gate,
        &edited(),
        ApplyOptions::default(),
        &mut no_progress(),
    ))
}

fn problems(result: Result<Plan, PlanError>) -> Vec<Problem> {
    result.expect_err("the plan must be refused").problems
}

#[test]
fn a_plan_creates_then_removes_then_adds() {
    let plan = Plan::compute(&live(), &edited()).unwrap();
    assert_eq!(
        plan.steps,
        vec![
            Step::Create {
                group: "arb".into()
            },
            Step::Remove {
                group: "desk".into(),
                stp_id: 100001,
                user_ids: vec![10003],
                expected_members: vec![10001],
            },
            Step::Add {
                group: "desk".into(),
                stp_id: Some(100001),
                user_ids: vec![10002],
                expected_members: vec![10001, 10002],
            },
            Step::Add {
                group: "arb".into(),
                stp_id: None,
                user_ids: vec![MAIN, 10004],
                expected_members: vec![MAIN, 10004],
            },
        ]
    );
    assert!(!plan.is_empty());
    assert_eq!(
        plan.steps.iter().map(Step::is_create).collect::<Vec<_>>(),
        [true, false, false, false]
    );
    assert_eq!(plan.unmanaged.len(), 1);
    assert_eq!(plan.unmanaged[0].name, "legacy");
    assert_eq!(
        (plan.creates(), plan.additions(), plan.removals()),
        (1, 3, 1)
    );
    assert_eq!(
        plan.login_names.get(&10002).map(String::as_str),
        Some("bot-2")
    );
}

#[test]
fn the_rendered_plan_is_terraform_like_and_plain_without_colour() {
    let plan = Plan::compute(&live(), &edited()).unwrap();
    let text = render_plan(&plan, RenderOptions::default());
    let expected_lines = [
        "  ~ group \"desk\" (id 100001)",
        "      - 10003",
        "      + 10002 (bot-2)",
        "  + group \"arb\" (new)",
        "      + 10000",
        "      + 10004",
        "    group \"legacy\" (id 100002): 1 member",
        "Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).",
    ];
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains('\u{1b}'));
    let coloured = render_plan(&plan, RenderOptions { colour: true });
    assert!(coloured.contains("\u{1b}[32m+\u{1b}[0m"));
}

/// The Markdown comment of a plan, written out by hand: each section appears exactly when
/// the plan has what it describes (a diff block for changed or unchanged declared groups,
/// the unmanaged list, the resting-orders note only when members leave, "No changes" only
/// for an empty plan).
#[test]
fn the_markdown_plan_has_each_section_exactly_when_the_plan_needs_it() {
    let state = live();
    let fingerprint_span = |plan: &Plan| format!("`{}`", &plan.live_fingerprint[..12]);

    // Removals, a create and an unmanaged group: every section but "No changes".
    let plan = Plan::compute(&state, &edited()).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         ```diff\n\
         ~ group \"desk\" (id 100001)\n\
         -     10003\n\
         +     10002 (bot-2)\n\
         + group \"arb\" (new)\n\
         +     10000\n\
         +     10004\n\
         ```\n\
         \n\
         Not in the file (unmanaged, never changed):\n\
         \n\
         - group `legacy` (id 100002): 1 member\n\
         \n\
         > Membership changes apply to new orders; resting orders keep the group they were placed with.\n\
         \n\
         **Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);

    // An addition alone, every live group declared: no unmanaged list, no note.
    let add_only = desired(vec![
        group(
            "desk",
            vec![
                Member::Login("bot-1".into()),
                Member::Id(10003),
                Member::Login("bot-2".into()),
            ],
        ),
        group("legacy", vec![Member::Id(10005)]),
    ]);
    let plan = Plan::compute(&state, &add_only).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         ```diff\n\
         ~ group \"desk\" (id 100001)\n\
         +     10002 (bot-2)\n\
         \x20 group \"legacy\" (id 100002): unchanged, 1 member\n\
         ```\n\
         \n\
         **Plan: 0 groups to create, 1 member to add, 0 to remove (1 request).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);

    // Nothing declared: no diff block at all, both live groups unmanaged, "No changes".
    let plan = Plan::compute(&state, &desired(vec![])).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         Not in the file (unmanaged, never changed):\n\
         \n\
         - group `desk` (id 100001): 2 members\n\
         - group `legacy` (id 100002): 1 member\n\
         \n\
         No changes: the live STP groups match the file.\n\
         \n\
         **Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);
}

/// The terminal plan written out whole for the three plans of the Markdown test above: the
/// unmanaged list, the resting-orders note and "No changes" appear exactly when the plan
/// needs them, and colour wraps only the markers and the summary.
#[test]
fn the_rendered_plan_has_each_section_exactly_when_the_plan_needs_it() {
    let state = live();
    let header = |plan: &Plan| {
        format!(
            "STP groups of main account 10000 (live state {})\n\n",
            &plan.live_fingerprint[..12]
        )
    };

    let plan = Plan::compute(&state, &edited()).unwrap();
    let body = "  ~ group \"desk\" (id 100001)\n\
                \x20     - 10003\n\
                \x20     + 10002 (bot-2)\n\
                \x20 + group \"arb\" (new)\n\
                \x20     + 10000\n\
                \x20     + 10004\n\
                \n\
                Not in the file (unmanaged, never changed):\n\
                \x20   group \"legacy\" (id 100002): 1 member\n\
                \n\
                Note: membership changes apply to new orders; resting orders keep the group they were placed with.\n\
                \n\
                Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).\n";
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan) + body
    );
    // In colour: `+` green, `-` red, `~` yellow, the summary bold; nothing else changes.
    let coloured = body
        .replace("~ group", "\u{1b}[33m~\u{1b}[0m group")
        .replace("+ ", "\u{1b}[32m+\u{1b}[0m ")
        .replace("- 10003", "\u{1b}[31m-\u{1b}[0m 10003")
        .replace(
            "Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).",
            "\u{1b}[1mPlan: 1 group to create, 3 members to add, 1 to remove (4 requests).\u{1b}[0m",
        );
    assert_eq!(
        render_plan(&plan, RenderOptions { colour: true }),
        header(&plan) + &coloured
    );

    let add_only = desired(vec![
        group(
            "desk",
            vec![
                Member::Login("bot-1".into()),
                Member::Id(10003),
                Member::Login("bot-2".into()),
            ],
        ),
        group("legacy", vec![Member::Id(10005)]),
    ]);
    let plan = Plan::compute(&state, &add_only).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "  ~ group \"desk\" (id 100001)\n\
               \x20     + 10002 (bot-2)\n\
               \x20   group \"legacy\" (id 100002): unchanged, 1 member\n\
               \n\
               Plan: 0 groups to create, 1 member to add, 0 to remove (1 request).\n"
    );

    let plan = Plan::compute(&state, &desired(vec![])).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "Not in the file (unmanaged, never changed):\n\
               \x20   group \"desk\" (id 100001): 2 members\n\
               \x20   group \"legacy\" (id 100002): 1 member\n\
               \n\
               No changes: the live STP groups match the file.\n\
               \n\
               Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).\n"
    );

    // Nothing live, nothing declared: one blank line between the sections, as everywhere.
    let nothing = LiveState {
        main_user_id: 10_000,
        sub_accounts: Vec::new(),
        groups: Vec::new(),
    };
    let plan = Plan::compute(&nothing, &desired(vec![])).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "No changes: the live STP groups match the file.\n\
               \n\
               Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).\n"
    );
}

#[test]
fn names_from_gate_are_escaped_in_the_rendered_plan() {
    let mut state = live();
    state
        .groups
        .push(live_group(100009, "evil\u{1b}]0;owned\u{7}\u{202e}", &[]));
    state.sub_accounts[0].login_name = Some("bot\r\nPlan: 0 to add".into());
    state.normalize();
    // 10001 (whose login name tries to forge a summary line) moves from "desk" to "arb".
    let file = desired(vec![
        group("desk", vec![Member::Id(10003)]),
        group("arb", vec![Member::Id(10001)]),
    ]);
    let plan = Plan::compute(&state, &file).unwrap();
    let text = render_plan(&plan, RenderOptions::default());
    assert!(
        !text.contains(|c| c != '\n' && crate::text::needs_escape(c)),
        "{text}"
    );
    assert!(
        text.contains("group \"evil\\x1b]0;owned\\x07\\u{202e}\" (id 100009)"),
        "{text}"
    );
    assert!(
        text.contains("10001 (bot\\x0d\\x0aPlan: 0 to add)"),
        "{text}"
    );
    let json = plan.to_json_string();
    assert!(
        !json.contains(|c| c != '\n' && crate::text::needs_escape(c)),
        "{json}"
    );
    assert_eq!(Plan::from_json(&json, "p").unwrap(), plan);
}

#[test]
fn only_answers_that_may_have_executed_count_as_unknown() {
    use crate::{ApiError, Label, error::UnexpectedResponse, response::ResponseMeta};
    use reqwest::StatusCode;
    let meta = |status| ResponseMeta {
        status,
        rate_limit: None,
        trace_id: None,
        client_request_id: None,
    };
    let api = |status| {
        Error::Api(Box::new(ApiError {
            status,
            label: Label::Other("SERVER_ERROR".into()),
            message: None,
            detail: None,
            meta: meta(status),
        }))
    };
    let unexpected = |status| {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status,
            content_type: None,
            reason: String::new(),
            snippet: String::new(),
            meta: None,
        }))
    };
    assert!(outcome_unknown(&super::fake::lost_answer()));
    assert!(outcome_unknown(&api(StatusCode::INTERNAL_SERVER_ERROR)));
    assert!(outcome_unknown(&unexpected(StatusCode::BAD_GATEWAY)));
    // A 200 whose body could not be read: the create happened.
    assert!(outcome_unknown(&unexpected(StatusCode::OK)));
    assert!(!outcome_unknown(&api(StatusCode::FORBIDDEN)));
    assert!(!outcome_unknown(&unexpected(StatusCode::NOT_FOUND)));
    assert!(!outcome_unknown(&Error::InvalidInput(
        crate::InvalidInput::EmptyGroupName
    )));
}

#[test]
fn names_are_matched_exactly_and_duplicates_need_a_pin() {
    let mut state = live();
    state.groups.push(live_group(100003, "desk", &[]));
    state.groups.push(live_group(100004, "Desk", &[10004]));
    state.normalize();
    let file = desired(vec![group("desk", vec![Member::Id(10002)])]);
    assert_eq!(
        problems(Plan::compute(&state, &file)),
        vec![Problem::AmbiguousName {
            group: "desk".into(),
            ids: vec![100001, 100003]
        }]
    );
    let mut pinned = file.clone();
    pinned.groups[0].id = Some(100003);
    let plan = Plan::compute(&state, &pinned).unwrap();
    assert_eq!(plan.groups[0].id, Some(100003));
    let unmanaged: Vec<i64> = plan.unmanaged.iter().map(|g| g.id).collect();
    assert_eq!(unmanaged, vec![100001, 100002, 100004]);
    assert!(plan.steps.iter().all(|step| step.group() == "desk"));

    // 10001 sits in the other "desk", which this file does not manage: refused, since
    // the plan never touches it and the user would end up in two groups.
    pinned.groups[0].members.push(Member::Id(10001));
    assert_eq!(
        problems(Plan::compute(&state, &pinned)),
        vec![Problem::InUnmanagedGroup {
            group: "desk".into(),
            member: "10001".into(),
            other: "desk".into(),
            other_id: 100001
        }]
    );
}

#[test]
fn pins_must_name_a_live_group_with_the_declared_name() {
    let mut file = desired(vec![group("desk", vec![])]);
    file.groups[0].id = Some(100002);
    assert_eq!(
        problems(Plan::compute(&live(), &file)),
        vec![Problem::PinNamesAnotherGroup {
            group: "desk".into(),
            id: 100002,
            live_name: "legacy".into()
        }]
    );
    file.groups[0].id = Some(999);
    assert_eq!(
        problems(Plan::compute(&live(), &file)),
        vec![Problem::PinNotFound {
            group: "desk".into(),
            id: 999
        }]
    );
}

#[test]
fn members_must_be_the_main_account_or_its_sub_accounts() {
    let file = desired(vec![group(
        "desk",
        vec![
            Member::Id(20001),
            Member::Login("nobody".into()),
            Member::Id(MAIN),
        ],
    )]);
    assert_eq!(
        problems(Plan::compute(&live(), &file)),
        vec![
            Problem::NotOurs {
                group: "desk".into(),
                member: "20001".into(),
                main_user_id: MAIN
            },
            Problem::NotOurs {
                group: "desk".into(),
                member: "\"nobody\"".into(),
                main_user_id: MAIN
            },
        ]
    );
}

#[test]
fn a_login_name_of_two_sub_accounts_is_ambiguous_not_unknown() {
    let mut state = live();
    state.sub_accounts.push(sub(10006, Some("bot-1")));
    let file = desired(vec![group("desk", vec![Member::Login("bot-1".into())])]);
    let found = problems(Plan::compute(&state, &file));
    assert_eq!(
        found,
        vec![Problem::AmbiguousLogin {
            group: "desk".into(),
            login: "bot-1".into(),
            user_ids: vec![10001, 10006],
        }]
    );
    assert_eq!(
        found[0].to_string(),
        "group \"desk\": login name \"bot-1\" matches several sub-accounts (10001, 10006); \
         use the user id"
    );
}

#[test]
fn a_group_is_changed_by_an_addition_or_a_removal_alone_and_unchanged_otherwise() {
    let action = |members: Vec<Member>| {
        let plan = Plan::compute(&live(), &desired(vec![group("desk", members)])).unwrap();
        (plan.groups[0].action, plan.is_empty())
    };
    // Live "desk" is {10001 (bot-1), 10003}.
    assert_eq!(
        action(vec![Member::Login("bot-1".into()), Member::Id(10003)]),
        (Action::Unchanged, true)
    );
    assert_eq!(
        action(vec![
            Member::Login("bot-1".into()),
            Member::Id(10003),
            Member::Id(10004),
        ]),
        (Action::Change, false)
    );
    assert_eq!(action(vec![Member::Id(10003)]), (Action::Change, false));
}

#[test]
fn a_user_in_two_groups_is_refused_even_under_two_spellings() {
    let file = desired(vec![
        group("desk", vec![Member::Id(10002)]),
        group("arb", vec![Member::Login("bot-2".into())]),
    ]);
    assert_eq!(
        problems(Plan::compute(&live(), &file)),
        vec![Problem::UserInTwoGroups {
            member: "\"bot-2\" (user 10002)".into(),
            group: "desk".into(),
            other: "arb".into()
        }]
    );
}

#[test]
fn a_protected_group_never_loses_a_member() {
    let mut file = edited();
    file.groups[0].protect = true;
    assert_eq!(
        problems(Plan::compute(&live(), &file)),
        vec![Problem::ProtectedRemoval {
            group: "desk".into(),
            members: vec![10003]
        }]
    );
    // Additions to a protected group are fine.
    file.groups[0].members.push(Member::Id(10003));
    assert!(Plan::compute(&live(), &file).is_ok());
}

#[test]
fn a_file_for_another_main_account_is_refused_by_the_read() {
    let mut file = edited();
    file.main_user_id = 20000;
    let gate = FakeGate::new(&live());
    let error = runtime()
        .block_on(Proposal::for_desired(&gate, &file))
        .expect_err("another account");
    assert!(
        matches!(
            error,
            ApplyError::Read(ReadError::KeyOfAnotherAccount {
                key_user_id: MAIN,
                main_user_id: 20000
            })
        ),
        "{error}"
    );
    assert_eq!(gate.log(), vec!["account".to_owned()]);
    // A plan computed by hand from another account's state cannot be sent either: with
    // the key it was computed with, the read refuses the key; with a key of the file's
    // account, the plan is stale (the fingerprint covers the account).
    let plan = Plan::compute(&live(), &file).unwrap();
    assert_eq!(plan.main_user_id, 20000);
    let error = runtime()
        .block_on(apply_saved(
            &gate,
            &plan,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("another account");
    assert!(matches!(error, ApplyError::Read(_)), "{error}");
    let theirs = FakeGate::new(&LiveState {
        main_user_id: 20000,
        ..live()
    });
    let error = runtime()
        .block_on(apply_saved(
            &theirs,
            &plan,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stale");
    assert!(matches!(error, ApplyError::StalePlan { .. }), "{error}");
    assert_eq!(theirs.writes_seen(), 0);
}

#[test]
fn large_changes_are_split_into_batches() {
    let mut state = live();
    state.sub_accounts = (1..=250).map(|i| sub(MAIN + i, None)).collect();
    state.groups = vec![live_group(100001, "desk", &[])];
    let file = desired(vec![group(
        "desk",
        (1..=250).map(|i| Member::Id(MAIN + i)).collect(),
    )]);
    let plan = Plan::compute(&state, &file).unwrap();
    let sizes: Vec<usize> = plan
        .steps
        .iter()
        .map(|step| match step {
            Step::Add { user_ids, .. } => user_ids.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let gate = FakeGate::new(&state);
    let rt = runtime();
    rt.block_on(apply_desired(
        &gate,
        &file,
        ApplyOptions::default(),
        &mut no_progress(),
    ))
    .unwrap();
    assert_eq!(gate.groups_named("desk")[0].1.len(), 250);
}

#[test]
fn a_saved_plan_round_trips_through_json() {
    let plan = Plan::compute(&live(), &edited()).unwrap();
    let text = plan.to_json_string();
    assert!(Plan::looks_like_saved_plan(&text));
    assert!(!Plan::looks_like_saved_plan(r#"{"main_user_id": 1}"#));
    assert_eq!(Plan::from_json(&text, "p.json").unwrap(), plan);
    let other = text.replace(PLAN_FORMAT, "gate-stp-plan/0");
    assert!(matches!(
        Plan::from_json(&other, "p.json"),
        Err(PlanFileError::Format { .. })
    ));
}

// --- apply against the in-memory Gate ------------------------------------------------

#[test]
fn apply_converges_and_a_second_apply_only_reads() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let mut seen = Vec::new();
    let (plan, report) = rt
        .block_on(apply_desired(
            &gate,
            &edited(),
            ApplyOptions::default(),
            &mut |p: Progress<'_>| match p {
                Progress::Sending { index, total, .. } => seen.push(("send", index, total)),
                Progress::Done { index, total, .. } => seen.push(("done", index, total)),
                _ => {}
            },
        ))
        .unwrap();
    assert_eq!(report.steps_done, plan.steps.len());
    // Each step sent once and done once; an add only after what it needs is done (its new
    // group's create, the removal before it on its group).
    let at = |event: &str, index: usize| {
        let found: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].0 == event && seen[i].1 == index)
            .collect();
        assert_eq!(found.len(), 1, "{event} {index}: {seen:?}");
        assert_eq!(seen[found[0]].2, 4);
        found[0]
    };
    for index in 0..4 {
        assert!(at("send", index) < at("done", index), "{seen:?}");
    }
    assert!(at("done", 0) < at("send", 3), "{seen:?}");
    assert!(at("done", 1) < at("send", 2), "{seen:?}");
    // The create and the removal are independent: both were sent before either was done.
    assert!(at("send", 1) < at("done", 0), "{seen:?}");
    assert_eq!(
        gate.groups_named("desk"),
        vec![(100001, vec![10001, 10002])]
    );
    let arb = gate.groups_named("arb");
    assert_eq!(arb.len(), 1);
    assert_eq!(arb[0].1, vec![MAIN, 10004]);
    assert_eq!(report.created.get("arb"), Some(&arb[0].0));

    let writes = gate.writes_seen();
    let (_, again) = rt.block_on(plan_of(&gate, &edited()));
    assert!(again.is_empty(), "{again:?}");
    let (plan, report) = apply_edited(&rt, &gate).unwrap();
    assert!(plan.is_empty());
    assert_eq!(report, ApplyReport::default());
    assert_eq!(gate.writes_seen(), writes, "the second apply sent a change");
}

async fn plan_of(gate: &FakeGate, file: &DesiredState) -> (LiveState, Plan) {
    let proposal = Proposal::for_desired(gate, file).await.unwrap();
    // What the proposal holds is what a read gives now (nothing changed in between).
    assert_eq!(proposal.live(), &read_live(gate, Some(MAIN)).await.unwrap());
    (proposal.live().clone(), proposal.into_plan())
}

#[test]
fn refusals_come_before_anything_is_sent() {
    let rt = runtime();
    let refused = |gate: &FakeGate, file: &DesiredState, options: ApplyOptions| {
        let error = rt
            .block_on(apply_desired(gate, file, options, &mut no_progress()))
            .expect_err("must be refused");
        assert!(error.nothing_changed(), "{error}");
        assert_eq!(gate.writes_seen(), 0, "{error}: a change was sent");
        error
    };

    // Too many removals: the limit counts members, not requests.
    let gate = FakeGate::new(&live());
    let error = refused(
        &gate,
        &edited(),
        ApplyOptions::default().with_max_removals(0),
    );
    assert!(matches!(
        error,
        ApplyError::TooManyRemovals {
            removals: 1,
            max: 0
        }
    ));

    // A protected removal.
    let mut protected = edited();
    protected.groups[0].protect = true;
    let error = refused(&gate, &protected, ApplyOptions::default());
    assert!(matches!(error, ApplyError::Plan(_)), "{error}");

    // A member of another main account.
    let mut foreign = edited();
    foreign.groups[1].members.push(Member::Id(20001));
    refused(&gate, &foreign, ApplyOptions::default());

    // A key of another account: refused after the one account read.
    let other_key = FakeGate::new(&live());
    other_key.set_key_user(20000);
    let error = refused(&other_key, &edited(), ApplyOptions::default());
    assert!(matches!(
        error,
        ApplyError::Read(ReadError::KeyOfAnotherAccount {
            key_user_id: 20000,
            main_user_id: MAIN
        })
    ));
    assert_eq!(other_key.log(), vec!["account".to_owned()]);
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let (_, plan) = rt.block_on(plan_of(&gate, &edited()));
    let saved = Plan::from_json(&plan.to_json_string(), "plan.json").unwrap();
    gate.add_behind_the_back(100001, 10004);
    let error = rt
        .block_on(apply_saved(
            &gate,
            &saved,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stale");
    assert!(matches!(error, ApplyError::StalePlan { .. }), "{error}");
    assert!(error.to_string().starts_with("stale plan:"));
    assert_eq!(gate.writes_seen(), 0);
}

#[test]
fn a_saved_plan_whose_steps_were_edited_is_refused() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let (_, plan) = rt.block_on(plan_of(&gate, &edited()));
    // The file still shows the same group changes, but sends one more removal.
    let mut edited_plan: serde_json::Value = serde_json::from_str(&plan.to_json_string()).unwrap();
    let steps = edited_plan["steps"].as_array_mut().unwrap();
    let extra = steps
        .iter()
        .find(|step| step["op"] == "remove")
        .cloned()
        .expect("the plan removes someone");
    steps.push(extra);
    let saved = Plan::from_json(&edited_plan.to_string(), "plan.json").unwrap();
    let error = rt
        .block_on(apply_saved(
            &gate,
            &saved,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("inconsistent");
    assert!(matches!(error, ApplyError::InconsistentPlan), "{error}");
    assert_eq!(gate.writes_seen(), 0);
    // The unedited plan passes the same check.
    let saved = Plan::from_json(&plan.to_json_string(), "plan.json").unwrap();
    rt.block_on(apply_saved(
        &gate,
        &saved,
        ApplyOptions::default(),
        &mut no_progress(),
    ))
    .unwrap();
}

#[test]
fn a_lost_create_answer_is_adopted_not_repeated() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::CreateExecutedThenLost);
    let rt = runtime();
    let mut adopted = None;
    let (_, report) = rt
        .block_on(apply_desired(
            &gate,
            &edited(),
            ApplyOptions::default(),
            &mut |p: Progress<'_>| {
                if let Progress::Adopted { stp_id, .. } = p {
                    adopted = Some(stp_id);
                }
            },
        ))
        .unwrap();
    let arb = gate.groups_named("arb");
    assert_eq!(arb.len(), 1, "a second group was created");
    assert_eq!(arb[0].1, vec![MAIN, 10004]);
    assert_eq!(adopted, Some(arb[0].0));
    assert_eq!(report.adopted, vec!["arb".to_owned()]);
    let creates = gate
        .log()
        .iter()
        .filter(|l| l.starts_with("create:"))
        .count();
    assert_eq!(creates, 1);
}

/// The requests `gate` received after the first `from`.
fn sent_since(gate: &FakeGate, from: usize) -> Vec<String> {
    gate.log()[from..].to_vec()
}

fn is_read(request: &str) -> bool {
    ["account", "sub_accounts", "groups", "members:"]
        .iter()
        .any(|read| request == *read || (read.ends_with(':') && request.starts_with(read)))
}

/// Lets virtual time pass, as a person answering a prompt would.
fn wait(rt: &tokio::runtime::Runtime, duration: std::time::Duration) {
    rt.block_on(tokio::time::advance(duration));
}

#[test]
fn a_group_created_between_proposal_and_send_is_refused_as_stale_with_nothing_sent() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let proposal = rt
        .block_on(Proposal::for_desired(&gate, &edited()))
        .unwrap();
    assert_eq!(proposal.plan().creates(), 1, "the plan creates \"arb\"");
    let checked = proposal.check(ApplyOptions::default()).unwrap();
    let read = gate.log().len();
    // Another operator creates the group while a person reads the plan.
    gate.create_behind_the_back("arb");
    wait(
        &rt,
        DEFAULT_MAX_READ_AGE + std::time::Duration::from_millis(1),
    );
    let error = rt
        .block_on(checked.send(&gate, &mut no_progress()))
        .expect_err("stale");
    assert!(matches!(error, ApplyError::StalePlan { .. }), "{error}");
    assert!(error.nothing_changed());
    let since = sent_since(&gate, read);
    assert!(!since.is_empty(), "the live state was not read again");
    assert!(since.iter().all(|r| is_read(r)), "sent {since:?}");
    assert_eq!(gate.writes_seen(), 0);
    assert_eq!(gate.groups_named("arb").len(), 1, "a duplicate was created");
}

#[test]
fn proposals_can_be_kept_and_shared() {
    // A server (the MCP one to come) stores a proposal between a request and its
    // confirmation, possibly on another task. Not `Clone`: one check sends once (the
    // `compile_fail` doctests of `desired::apply` prove it).
    fn storable<T: Send + Sync + 'static>() {}
    storable::<Proposal>();
    storable::<Checked>();
}

#[test]
fn a_fresh_read_is_not_repeated_before_sending() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let proposal = rt
        .block_on(Proposal::for_desired(&gate, &edited()))
        .unwrap();
    let checked = proposal.check(ApplyOptions::default()).unwrap();
    let read = gate.log().len();
    // A read exactly as old as the bound is still fresh.
    wait(&rt, DEFAULT_MAX_READ_AGE);
    let report = rt
        .block_on(checked.send(&gate, &mut no_progress()))
        .unwrap();
    assert_eq!(report.steps_done, 4);
    let since = sent_since(&gate, read);
    // Not read again: only the one listing of the groups that always precedes a create.
    assert_eq!(since.len(), 5, "{since:?}");
    assert_eq!(since[0], "groups", "{since:?}");
    assert!(
        since[1..].iter().all(|r| !is_read(r)),
        "read again: {since:?}"
    );
}

#[test]
fn an_aged_read_is_repeated_before_sending() {
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let options = ApplyOptions::default().with_max_read_age(std::time::Duration::from_secs(30));
    let proposal = rt
        .block_on(Proposal::for_desired(&gate, &edited()))
        .unwrap();
    let first_read = gate.log();
    let checked = proposal.check(options).unwrap();
    let read = gate.log().len();
    wait(
        &rt,
        options.max_read_age + std::time::Duration::from_millis(1),
    );
    let report = rt
        .block_on(checked.send(&gate, &mut no_progress()))
        .unwrap();
    assert_eq!(report.steps_done, 4);
    let since = sent_since(&gate, read);
    assert_eq!(since[..first_read.len()], first_read[..], "{since:?}");
    // Then the listing before the first create, then the four steps.
    assert_eq!(since[first_read.len()], "groups", "{since:?}");
    assert_eq!(since.len(), first_read.len() + 5, "{since:?}");
}

#[test]
fn a_create_that_lands_late_is_adopted_after_listing_again() {
    // The group appears only in the last listing of the bounded wait.
    let gate = FakeGate::new(&live());
    gate.inject(Fault::CreateLandsLate {
        listings: LOST_CREATE_LISTINGS as usize - 1,
    });
    let rt = runtime();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let (_, report) = apply_edited(&rt, &gate).unwrap();
    let waited = rt.block_on(async { started.elapsed() });
    assert_eq!(report.adopted, vec!["arb".to_owned()]);
    let arb = gate.groups_named("arb");
    assert_eq!(arb.len(), 1, "a second group was created");
    assert_eq!(arb[0].1, vec![MAIN, 10004]);
    let log = gate.log();
    let creates = log.iter().filter(|l| l.starts_with("create:")).count();
    assert_eq!(creates, 1);
    let after_create = log.iter().position(|l| l.starts_with("create:")).unwrap();
    let listings = log[after_create..]
        .iter()
        .filter(|l| *l == "groups")
        .count();
    assert_eq!(listings, LOST_CREATE_LISTINGS as usize);
    // The listings were spread over the documented wait (virtual time: nothing else sleeps).
    assert_eq!(
        waited,
        LOST_CREATE_INTERVAL * (LOST_CREATE_LISTINGS - 1),
        "{waited:?}"
    );
}

#[test]
fn a_create_landing_after_the_wait_stops_without_a_second_create() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::CreateLandsLate {
        listings: LOST_CREATE_LISTINGS as usize,
    });
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(
        matches!(report.reason, StopReason::CreateUnresolved { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("listing again 4 times over 3 s"),
        "{error}"
    );
    // It lands later; the next run adopts it by name instead of creating another.
    apply_edited(&rt, &gate).unwrap();
    assert_eq!(gate.groups_named("arb").len(), 1);
    let creates = gate
        .log()
        .iter()
        .filter(|l| l.starts_with("create:"))
        .count();
    assert_eq!(creates, 1);
}

/// Proposes and checks [`edited`], injects `faults`, then sends.
fn send_edited_with(
    rt: &tokio::runtime::Runtime,
    gate: &FakeGate,
    faults: &[Fault],
) -> Result<ApplyReport, ApplyError> {
    let proposal = rt.block_on(Proposal::for_desired(gate, &edited()))?;
    let checked = proposal.check(ApplyOptions::default())?;
    for fault in faults {
        gate.inject(*fault);
    }
    rt.block_on(checked.send(gate, &mut no_progress()))
}

#[test]
fn a_failed_listing_after_a_lost_create_is_not_the_last_word() {
    // The first listing after the create fails, the second shows the group that landed:
    // adopted. (Listing 1 is the one before the create, which every apply with creates
    // makes.)
    let gate = FakeGate::new(&live());
    let rt = runtime();
    let faults = [
        Fault::CreateLandsLate { listings: 1 },
        Fault::ListingFails { nth: 2 },
    ];
    let report = send_edited_with(&rt, &gate, &faults).unwrap();
    assert_eq!(report.adopted, vec!["arb".to_owned()]);
    assert_eq!(gate.groups_named("arb").len(), 1);

    // Every listing fails: the apply stops and says the listing failed, not "not created".
    let gate = FakeGate::new(&live());
    let mut faults = vec![Fault::CreateLost];
    faults.extend((2..=1 + LOST_CREATE_LISTINGS as usize).map(|nth| Fault::ListingFails { nth }));
    let error = send_edited_with(&rt, &gate, &faults).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    let StopReason::CreateUnresolved { finding, .. } = &report.reason else {
        panic!("{error}")
    };
    assert!(
        finding.contains("listing the groups to check failed too"),
        "{finding}"
    );
    assert!(finding.contains("injected: listing failed"), "{finding}");

    // The last listing alone failing after empty ones still reports the failure: the
    // group may have landed in between.
    let gate = FakeGate::new(&live());
    let faults = [
        Fault::CreateLost,
        Fault::ListingFails {
            nth: 1 + LOST_CREATE_LISTINGS as usize,
        },
    ];
    let error = send_edited_with(&rt, &gate, &faults).expect_err("stops");
    assert!(error.to_string().contains("failed too"), "{error}");
}

#[test]
fn a_create_that_did_not_happen_stops_and_a_rerun_creates_once() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::CreateLost);
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(matches!(report.reason, StopReason::CreateUnresolved { .. }));
    assert_eq!(report.at, 0);
    // desk's changes do not depend on arb: they went on while the create was settled.
    let plan = Plan::compute(&live(), &edited()).unwrap();
    assert_eq!(report.done, plan.steps[1..3].to_vec());
    assert_eq!(report.remaining, plan.steps[3..].to_vec());
    assert!(gate.groups_named("arb").is_empty());
    let text = error.to_string();
    assert!(text.contains("apply stopped at step 1 of 4"), "{text}");
    assert!(text.contains("not sent: add"), "{text}");

    apply_edited(&rt, &gate).unwrap();
    assert_eq!(gate.groups_named("arb").len(), 1);
}

#[test]
fn a_fault_mid_apply_stops_with_a_report_and_a_rerun_converges() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::WriteLost { nth: 2 });
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    // The second add or remove is an add (the only removal comes first: each add waits
    // for a create or the removal). The other add was in flight alongside it, and
    // finished: both adds became ready together.
    let plan = Plan::compute(&live(), &edited()).unwrap();
    assert!(matches!(report.failed, Step::Add { .. }), "{error}");
    assert!(report.done.starts_with(&plan.steps[..2]), "{error}");
    assert_eq!(report.done.len(), 3, "{error}");
    assert!(report.remaining.is_empty() && report.also_failed.is_empty());
    assert!(matches!(
        report.reason,
        StopReason::Request(Error::Timeout(_))
    ));

    apply_edited(&rt, &gate).unwrap();
    assert_eq!(
        gate.groups_named("desk"),
        vec![(100001, vec![10001, 10002])]
    );
    assert_eq!(gate.groups_named("arb").len(), 1);
    assert_eq!(gate.groups_named("arb")[0].1, vec![MAIN, 10004]);
}

#[test]
fn a_divergent_answer_stops_the_apply() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::AddAlsoAdds {
        nth: 1,
        user_id: 10003,
    });
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    let StopReason::Diverged { expected, got } = &report.reason else {
        panic!("{error}")
    };
    let Step::Add {
        expected_members, ..
    } = &report.failed
    else {
        panic!("{error}")
    };
    assert_eq!(expected, expected_members);
    let mut with_intruder = expected.clone();
    with_intruder.push(10003);
    with_intruder.sort_unstable();
    assert_eq!(got, &with_intruder);
    assert_eq!(report.done.len() + report.remaining.len(), 3);
}

#[test]
fn a_divergent_answer_stops_what_depends_on_it() {
    // One group: every step depends on the one before it.
    let gate = FakeGate::new(&live());
    let file = desired(vec![group(
        "desk",
        vec![Member::Id(10002), Member::Id(10004)],
    )]);
    gate.inject(Fault::WriteLost { nth: 1 });
    let rt = runtime();
    let (_, plan) = rt.block_on(plan_of(&gate, &file));
    assert_eq!(plan.steps.len(), 2);
    let error = rt
        .block_on(apply_desired(
            &gate,
            &file,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert_eq!(report.failed, plan.steps[0]);
    assert!(report.done.is_empty());
    assert_eq!(report.remaining, plan.steps[1..].to_vec());
    assert_eq!(
        gate.writes_seen(),
        1,
        "the add was sent after its removal failed"
    );
}

#[test]
fn export_plans_empty() {
    let state = live();
    let exported = DesiredState::from_live(&state);
    assert_eq!(exported.groups[0].id, Some(100001));
    assert_eq!(
        exported.groups[0].members,
        vec![Member::Login("bot-1".into()), Member::Id(10003)]
    );
    let reparsed =
        DesiredState::parse(&exported.to_json_string(), Format::Json, "export.json").unwrap();
    assert!(Plan::compute(&state, &reparsed).unwrap().is_empty());
}

/// Export writes a login name only where it names that one sub-account, and never for the
/// main account: a login shared by two sub-accounts would be refused as ambiguous when the
/// file is planned, and the main account is declared by its id.
#[test]
fn export_names_a_member_by_login_only_when_the_login_is_its_alone() {
    let mut state = LiveState {
        main_user_id: MAIN,
        sub_accounts: vec![
            // Gate does not list the main account among its sub-accounts; if it ever did
            // with a login name, the file must still say 10000.
            sub(MAIN, Some("main-login")),
            sub(10001, Some("bot")),
            sub(10002, Some("twin")),
            sub(10003, Some("twin")),
            sub(10004, None),
        ],
        groups: vec![
            live_group(100005, "g", &[MAIN, 10001, 10002, 10003, 10004]),
            live_group(100003, "f", &[]),
        ],
    };
    state.normalize();
    let exported = DesiredState::from_live(&state);
    let expected = desired(vec![
        DesiredGroup {
            id: Some(100003),
            ..group("f", vec![])
        },
        DesiredGroup {
            id: Some(100005),
            ..group(
                "g",
                vec![
                    Member::Id(MAIN),
                    Member::Login("bot".into()),
                    Member::Id(10002),
                    Member::Id(10003),
                    Member::Id(10004),
                ],
            )
        },
    ]);
    assert_eq!(exported, expected);
    assert!(Plan::compute(&state, &exported).unwrap().is_empty());
}

// --- properties -------------------------------------------------------------------------

/// A live state and a file generated together so that the file is valid against it:
/// users in at most one group on each side, duplicates of a live name pinned, users of
/// unmanaged groups not declared.
#[derive(Debug, Clone)]
struct Case {
    live: LiveState,
    desired: DesiredState,
}

const NAMES: [&str; 3] = ["desk", "arb", "mm"];
const NEW_NAMES: [&str; 2] = ["new-a", "new-b"];

fn case() -> impl Strategy<Value = Case> {
    (1usize..12, 0usize..5)
        .prop_flat_map(|(subs, live_groups)| {
            let users = subs + 1;
            (
                Just(subs),
                proptest::collection::vec(0..NAMES.len(), live_groups),
                proptest::collection::vec(proptest::option::of(0..live_groups.max(1)), users),
                proptest::collection::vec(any::<bool>(), live_groups),
                proptest::collection::vec(proptest::option::of(0usize..8), users),
                proptest::collection::vec(any::<bool>(), users),
                any::<bool>(),
            )
        })
        .prop_map(
            |(subs, names, live_of, managed, desired_of, by_login, pin_all)| {
                build_case(
                    subs,
                    &names,
                    &live_of,
                    &managed,
                    &desired_of,
                    &by_login,
                    pin_all,
                )
            },
        )
}

fn build_case(
    subs: usize,
    names: &[usize],
    live_of: &[Option<usize>],
    managed: &[bool],
    desired_of: &[Option<usize>],
    by_login: &[bool],
    pin_all: bool,
) -> Case {
    let users: Vec<i64> = (0..=subs as i64).map(|i| MAIN + i).collect();
    let sub_accounts = users[1..]
        .iter()
        .map(|&id| sub(id, (id % 2 == 1).then(|| format!("login-{id}")).as_deref()))
        .collect();
    let groups: Vec<LiveGroup> = names
        .iter()
        .enumerate()
        .map(|(slot, &name)| {
            let members: Vec<i64> = users
                .iter()
                .zip(live_of)
                .filter(|(_, of)| **of == Some(slot))
                .map(|(id, _)| *id)
                .collect();
            live_group(100_001 + slot as i64, NAMES[name], &members)
        })
        .collect();
    // Managed live groups, at most one per name (a file names each group once).
    let mut taken = BTreeSet::new();
    let mut slots: Vec<(String, Option<i64>)> = Vec::new();
    let mut unmanaged_members = BTreeSet::new();
    for (slot, group) in groups.iter().enumerate() {
        let duplicated = groups.iter().filter(|g| g.name == group.name).count() > 1;
        if managed[slot] && taken.insert(group.name.clone()) {
            let pin = (pin_all || duplicated).then_some(group.id);
            slots.push((group.name.clone(), pin));
        } else {
            unmanaged_members.extend(group.members.iter().copied());
        }
    }
    slots.extend(NEW_NAMES.iter().map(|name| (name.to_string(), None)));
    let mut declared: Vec<DesiredGroup> = slots
        .iter()
        .map(|(name, pin)| DesiredGroup {
            name: name.clone(),
            id: *pin,
            members: vec![],
            protect: false,
        })
        .collect();
    for ((&id, of), &login) in users.iter().zip(desired_of).zip(by_login) {
        let Some(of) = of else { continue };
        if unmanaged_members.contains(&id) {
            continue;
        }
        let member = if login && id != MAIN && id % 2 == 1 {
            Member::Login(format!("login-{id}"))
        } else {
            Member::Id(id)
        };
        let index = of % declared.len();
        declared[index].members.push(member);
    }
    let mut live = LiveState {
        main_user_id: MAIN,
        sub_accounts,
        groups,
    };
    live.normalize();
    Case {
        live,
        desired: desired(declared),
    }
}

/// What the live state should look like once `desired` is applied: managed groups with
/// their declared members, unmanaged groups untouched, new groups with theirs.
fn expected(case: &Case) -> BTreeMap<String, Vec<BTreeSet<i64>>> {
    let resolve = |member: &Member| match member {
        Member::Id(id) => *id,
        Member::Login(login) => login["login-".len()..].parse().unwrap(),
    };
    let mut by_name: BTreeMap<String, Vec<BTreeSet<i64>>> = BTreeMap::new();
    for group in &case.desired.groups {
        by_name
            .entry(group.name.clone())
            .or_default()
            .push(group.members.iter().map(resolve).collect());
    }
    let managed_ids: BTreeSet<i64> = case
        .desired
        .groups
        .iter()
        .filter_map(|g| {
            g.id.or_else(|| {
                case.live
                    .groups
                    .iter()
                    .find(|l| l.name == g.name)
                    .map(|l| l.id)
            })
        })
        .collect();
    for group in &case.live.groups {
        if !managed_ids.contains(&group.id) {
            by_name
                .entry(group.name.clone())
                .or_default()
                .push(group.members.iter().copied().collect());
        }
    }
    for sets in by_name.values_mut() {
        sets.sort();
    }
    by_name
}

fn observed(after: &LiveState) -> BTreeMap<String, Vec<BTreeSet<i64>>> {
    let mut by_name: BTreeMap<String, Vec<BTreeSet<i64>>> = BTreeMap::new();
    for group in &after.groups {
        by_name
            .entry(group.name.clone())
            .or_default()
            .push(group.members.iter().copied().collect());
    }
    for sets in by_name.values_mut() {
        sets.sort();
    }
    by_name
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn applying_a_plan_reaches_the_file_and_planning_again_is_empty(case in case()) {
        let plan = Plan::compute(&case.live, &case.desired)
            .map_err(|e| TestCaseError::fail(format!("valid case refused: {e}")))?;
        // Removals are all sent before any addition.
        let first_add = plan.steps.iter().position(|s| matches!(s, Step::Add { .. }));
        let last_remove = plan.steps.iter().rposition(|s| matches!(s, Step::Remove { .. }));
        if let (Some(add), Some(remove)) = (first_add, last_remove) {
            prop_assert!(remove < add);
        }
        let gate = FakeGate::new(&case.live);
        let rt = runtime();
        let options = ApplyOptions::default().with_max_removals(usize::MAX);
        let sent = rt.block_on(apply_desired(&gate, &case.desired, options, &mut no_progress()))
            .map_err(|e| TestCaseError::fail(format!("apply failed: {e}")))?;
        prop_assert_eq!(&sent.0, &plan);
        let after = rt.block_on(read_live(&gate, Some(MAIN)))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(observed(&after), expected(&case));
        let again = Plan::compute(&after, &case.desired)
            .map_err(|e| TestCaseError::fail(format!("replan refused: {e}")))?;
        prop_assert!(again.is_empty(), "second plan not empty: {:?}", again.steps);
        prop_assert_eq!(after.groups.len(), case.live.groups.len() + plan.creates());
    }

    #[test]
    fn the_removal_guards_hold(case in case(), max in 0usize..4) {
        let plan = Plan::compute(&case.live, &case.desired)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let verdict = check(&plan, &case.live, ApplyOptions::default().with_max_removals(max));
        prop_assert_eq!(verdict.is_ok(), plan.removals() <= max);

        let mut protected = case.desired.clone();
        for group in &mut protected.groups {
            group.protect = true;
        }
        match Plan::compute(&case.live, &protected) {
            Ok(plan) => prop_assert_eq!(plan.removals(), 0),
            Err(error) => {
                prop_assert!(plan.removals() > 0);
                let only_protection = error
                    .problems
                    .iter()
                    .all(|p| matches!(p, Problem::ProtectedRemoval { .. }));
                prop_assert!(only_protection);
            }
        }
    }

    #[test]
    fn parsing_any_text_returns_an_answer_without_panicking(text in "\\PC{0,200}") {
        let _ = DesiredState::parse(&text, Format::Json, "fuzz.json");
        #[cfg(feature = "desired-toml")]
        let _ = DesiredState::parse(&text, Format::Toml, "fuzz.toml");
        let _ = Plan::from_json(&text, "fuzz.json");
    }

    #[test]
    fn the_fingerprint_changes_with_any_membership_change(
        case in case(),
        user in 0i64..12,
        slot in 0usize..5,
    ) {
        let mut changed = case.live.clone();
        if let Some(group) = changed.groups.get_mut(slot) {
            let id = MAIN + user;
            if let Some(at) = group.members.iter().position(|m| *m == id) {
                group.members.remove(at);
            } else {
                group.members.push(id);
            }
            prop_assert_ne!(case.live.fingerprint(), changed.fingerprint());
        }
    }
}

// --- the schedule ----------------------------------------------------------------------

use super::schedule::{Schedule, Status, dependencies};

fn remove(group: &str, stp_id: i64, user_ids: &[i64], expected: &[i64]) -> Step {
    Step::Remove {
        group: group.into(),
        stp_id,
        user_ids: user_ids.to_vec(),
        expected_members: expected.to_vec(),
    }
}

fn add(group: &str, stp_id: Option<i64>, user_ids: &[i64], expected: &[i64]) -> Step {
    Step::Add {
        group: group.into(),
        stp_id,
        user_ids: user_ids.to_vec(),
        expected_members: expected.to_vec(),
    }
}

fn create(group: &str) -> Step {
    Step::Create {
        group: group.into(),
    }
}

#[test]
fn steps_depend_on_their_group_order_their_create_and_the_removals_they_move_from() {
    // The edited plan: create arb, remove from desk, add to desk, add to arb.
    let plan = Plan::compute(&live(), &edited()).unwrap();
    assert_eq!(
        dependencies(&plan.steps),
        vec![vec![], vec![], vec![1], vec![0]]
    );
    // 7 moves from desk to the new arb, 8 from legacy to desk, 9 joins the existing mm;
    // two adds to one group stay in order.
    let steps = vec![
        create("arb"),
        remove("desk", 1, &[7], &[1]),
        remove("legacy", 2, &[8], &[]),
        add("desk", Some(1), &[8], &[1, 8]),
        add("arb", None, &[7], &[7]),
        add("mm", Some(3), &[9], &[9]),
        add("mm", Some(3), &[10], &[9, 10]),
    ];
    assert_eq!(
        dependencies(&steps),
        vec![
            vec![],
            vec![0],
            vec![],
            vec![1, 2],
            vec![0, 1],
            vec![],
            vec![5]
        ]
    );
}

#[test]
fn the_schedule_hands_out_ready_steps_lowest_first_and_nothing_new_after_a_failure() {
    let plan = Plan::compute(&live(), &edited()).unwrap();
    let mut schedule = Schedule::new(&plan.steps, APPLY_CONCURRENCY);
    assert_eq!(schedule.start_next(), Some(0));
    assert_eq!(schedule.start_next(), Some(1));
    assert_eq!(
        schedule.start_next(),
        None,
        "the adds wait for what they need"
    );
    assert!(!schedule.is_over());
    schedule.confirmed(1);
    assert_eq!(schedule.start_next(), Some(2));
    schedule.failed(0);
    assert_eq!(
        schedule.start_next(),
        None,
        "arb's add needs the failed create"
    );
    assert!(!schedule.is_over(), "desk's add is still in flight");
    // An answer for a step not in flight changes nothing.
    schedule.confirmed(0);
    schedule.confirmed(3);
    schedule.confirmed(2);
    assert!(schedule.is_over());
    assert_eq!(
        schedule.status(),
        [Status::Failed, Status::Done, Status::Done, Status::NotSent]
    );
}

#[test]
fn after_a_failure_even_independent_steps_do_not_start() {
    let steps = vec![create("a"), create("b"), create("c")];
    let mut schedule = Schedule::new(&steps, 1);
    assert_eq!(schedule.start_next(), Some(0));
    assert_eq!(schedule.start_next(), None, "one create in flight at most");
    schedule.failed(0);
    assert_eq!(schedule.start_next(), None);
    assert!(schedule.is_over());
    assert_eq!(
        schedule.status(),
        [Status::Failed, Status::NotSent, Status::NotSent]
    );
}

#[test]
fn each_endpoint_has_its_own_room() {
    let steps = vec![
        create("a"),
        create("b"),
        create("c"),
        add("x", Some(1), &[5], &[5]),
        remove("y", 2, &[6], &[]),
    ];
    let mut schedule = Schedule::new(&steps, 2);
    let mut started = Vec::new();
    while let Some(index) = schedule.start_next() {
        started.push(index);
    }
    // Two creates fill their endpoint; the add and the removal still start.
    assert_eq!(started, vec![0, 1, 3, 4]);
    schedule.confirmed(0);
    assert_eq!(schedule.start_next(), Some(2));
    // A limit of 0 is read as 1: a schedule always makes progress.
    let mut narrow = Schedule::new(&steps, 0);
    assert_eq!(narrow.start_next(), Some(0));
    assert_eq!(narrow.start_next(), Some(3));
}

#[test]
fn gate_sees_independent_steps_in_flight_at_once_and_each_once() {
    let empty = LiveState {
        groups: vec![],
        ..live()
    };
    let gate = FakeGate::new(&empty);
    let names = ["a", "b", "c", "d", "e", "f"];
    // Six new groups, one member each: six creates, six adds, all independent pairs.
    let file = desired(
        names
            .iter()
            .zip([10001, 10002, 10004, MAIN, 10003, 10005])
            .map(|(name, id)| group(name, vec![Member::Id(id)]))
            .collect(),
    );
    let rt = runtime();
    let (plan, report) = rt
        .block_on(apply_desired(
            &gate,
            &file,
            ApplyOptions::default().with_max_removals(5),
            &mut no_progress(),
        ))
        .unwrap();
    assert_eq!(report.steps_done, plan.steps.len());
    assert_eq!(gate.writes_seen(), plan.steps.len(), "one request per step");
    let most = gate.most_writes_in_flight();
    assert!(most > 1, "never more than one write in flight");
    assert!(most <= 3 * APPLY_CONCURRENCY, "{most} in flight");
    for name in names {
        assert_eq!(gate.groups_named(name).len(), 1);
    }
}

#[test]
fn a_failed_create_leaves_the_users_moving_into_its_group_where_they_were() {
    // 10003 moves from desk to the new arb; desk also gains bot-2 (independent of arb).
    let gate = FakeGate::new(&live());
    let file = desired(vec![
        group(
            "desk",
            vec![Member::Login("bot-1".into()), Member::Login("bot-2".into())],
        ),
        group("arb", vec![Member::Id(10003)]),
    ]);
    gate.inject(Fault::CreateLost);
    let rt = runtime();
    let (_, plan) = rt.block_on(plan_of(&gate, &file));
    let error = rt
        .block_on(apply_desired(
            &gate,
            &file,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(report.failed.is_create());
    assert!(report.done.is_empty(), "{error}");
    assert_eq!(report.remaining, plan.steps[1..].to_vec());
    // 10003 is still in desk, under self-trade prevention.
    assert_eq!(
        gate.groups_named("desk"),
        vec![(100001, vec![10001, 10003])]
    );
    assert!(gate.groups_named("arb").is_empty());
}

/// A model of Gate's groups for the schedule's property: by name, the members, and the
/// one-group-per-user rule. Independent of the schedule: a step sent before what it needs
/// is answered differently from the plan's expectation, or refused.
struct Groups {
    members: BTreeMap<String, BTreeSet<i64>>,
}

impl Groups {
    fn of(plan: &Plan, live: &LiveState) -> Groups {
        let mut members: BTreeMap<String, BTreeSet<i64>> = plan
            .groups
            .iter()
            .filter_map(|change| {
                let id = change.id?;
                let group = live.group(id)?;
                Some((change.name.clone(), group.members.iter().copied().collect()))
            })
            .collect();
        for group in &plan.unmanaged {
            members.insert(
                format!("unmanaged {}", group.id),
                group.members.iter().copied().collect(),
            );
        }
        Groups { members }
    }

    /// Gate's answer to `step`, `None` for a refusal.
    fn apply(&mut self, step: &Step) -> Option<Vec<i64>> {
        match step {
            Step::Create { group } => {
                if self.members.contains_key(group) {
                    return None;
                }
                self.members.insert(group.clone(), BTreeSet::new());
                Some(vec![])
            }
            Step::Remove {
                group, user_ids, ..
            } => {
                let members = self.members.get_mut(group)?;
                for id in user_ids {
                    members.remove(id);
                }
                Some(members.iter().copied().collect())
            }
            Step::Add {
                group, user_ids, ..
            } => {
                let elsewhere = self.members.iter().any(|(name, members)| {
                    name != group && user_ids.iter().any(|id| members.contains(id))
                });
                if elsewhere {
                    return None;
                }
                let members = self.members.get_mut(group)?;
                members.extend(user_ids);
                Some(members.iter().copied().collect())
            }
        }
    }
}

fn expected_answer(step: &Step) -> Vec<i64> {
    match step {
        Step::Create { .. } => vec![],
        Step::Remove {
            expected_members, ..
        }
        | Step::Add {
            expected_members, ..
        } => expected_members.clone(),
    }
}

/// One simulated apply driving a [`Schedule`], checking as it goes.
struct Run<'p> {
    steps: &'p [Step],
    needs: Vec<Vec<usize>>,
    schedule: Schedule,
    gate: Groups,
    /// The step whose answer is a failure.
    failing: Option<usize>,
    started: BTreeSet<usize>,
    in_flight: Vec<usize>,
    confirmed: BTreeSet<usize>,
    failed_at: Option<usize>,
}

impl Run<'_> {
    /// Starts the next step if the schedule hands one out.
    fn start(&mut self) -> Result<bool, TestCaseError> {
        let Some(index) = self.schedule.start_next() else {
            return Ok(false);
        };
        prop_assert!(
            self.failed_at.is_none(),
            "step {index} started after a failure"
        );
        prop_assert!(self.started.insert(index), "step {index} sent twice");
        prop_assert!(
            self.needs[index].iter().all(|n| self.confirmed.contains(n)),
            "step {index} started before {:?} were confirmed",
            self.needs[index]
        );
        self.in_flight.push(index);
        Ok(true)
    }

    /// Answers the `pick`th step in flight, if any.
    fn answer(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if pick >= self.in_flight.len() {
            return Ok(());
        }
        let index = self.in_flight.remove(pick);
        if Some(index) == self.failing {
            self.failed_at = Some(index);
            self.schedule.failed(index);
            return Ok(());
        }
        let answer = self.gate.apply(&self.steps[index]);
        prop_assert_eq!(
            answer,
            Some(expected_answer(&self.steps[index])),
            "step {}",
            index
        );
        self.confirmed.insert(index);
        self.schedule.confirmed(index);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any plan, any interleaving of starts and answers, any failure point: each step is
    /// handed out at most once, only once everything it depends on is confirmed, nothing
    /// new after a failure, and every answer (replayed on a model of Gate in the order the
    /// answers came) is the one the plan expects.
    #[test]
    fn the_schedule_sends_nothing_before_what_it_needs(
        case in case(),
        script in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..60),
        failing in proptest::option::of(any::<prop::sample::Index>()),
        per_endpoint in 1usize..4,
    ) {
        let plan = Plan::compute(&case.live, &case.desired)
            .map_err(|e| TestCaseError::fail(format!("valid case refused: {e}")))?;
        let steps = &plan.steps;
        let failing = failing.filter(|_| !steps.is_empty()).map(|at| at.index(steps.len()));
        let mut run = Run {
            steps,
            needs: dependencies(steps),
            schedule: Schedule::new(steps, per_endpoint),
            gate: Groups::of(&plan, &case.live),
            failing,
            started: BTreeSet::new(),
            in_flight: Vec::new(),
            confirmed: BTreeSet::new(),
            failed_at: None,
        };
        for (start, pick) in script {
            if start {
                run.start()?;
            } else {
                run.answer(pick.index(run.in_flight.len().max(1)))?;
            }
        }
        // Script over: start all that may, answer the oldest, until nothing is left.
        loop {
            while run.start()? {}
            if run.in_flight.is_empty() {
                break;
            }
            run.answer(0)?;
        }
        let Run { schedule, started, confirmed, failed_at, .. } = run;
        prop_assert!(schedule.is_over());
        for (index, status) in schedule.status().iter().enumerate() {
            let want = if confirmed.contains(&index) {
                Status::Done
            } else if Some(index) == failed_at {
                Status::Failed
            } else {
                prop_assert!(!started.contains(&index));
                Status::NotSent
            };
            prop_assert_eq!(*status, want, "step {}", index);
        }
        if failed_at.is_none() {
            prop_assert_eq!(confirmed.len(), steps.len(), "all sent when nothing failed");
        }
    }
}

#[test]
fn steps_in_flight_that_fail_too_are_reported_with_the_first() {
    // Two independent removals, both in flight at once, both lost.
    let gate = FakeGate::new(&live());
    gate.inject(Fault::WriteLost { nth: 1 });
    gate.inject(Fault::WriteLost { nth: 2 });
    let file = desired(vec![
        group("desk", vec![Member::Id(10001)]),
        group("legacy", vec![]),
    ]);
    let rt = runtime();
    let (_, plan) = rt.block_on(plan_of(&gate, &file));
    assert_eq!(plan.steps.len(), 2);
    let error = rt
        .block_on(apply_desired(
            &gate,
            &file,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(
        report.done.is_empty() && report.remaining.is_empty(),
        "{error}"
    );
    assert_eq!(report.also_failed.len(), 1, "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("apply stopped at step {} of 2", report.at + 1)),
        "{text}"
    );
    assert_eq!(text.matches("FAILED:").count(), 2, "{text}");
}

#[test]
fn a_create_answered_with_another_name_stops_the_apply() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::CreateAnswersAnotherName);
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    let StopReason::UnexpectedGroup { name, .. } = &report.reason else {
        panic!("{error}")
    };
    assert_eq!(name, "arb-other");
    assert!(report.failed.is_create());
    assert!(report.created.is_empty(), "{error}");
}
