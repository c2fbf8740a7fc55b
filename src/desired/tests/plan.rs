//! Computing a plan: exact names and pins, members of the main account, one group per
//! user, protected groups, batches, and a saved plan's JSON.

use super::*;

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
