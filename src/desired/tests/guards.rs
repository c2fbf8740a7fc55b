//! What apply refuses before anything is sent (another account, a stale or edited plan,
//! the removal limit), and when it reads again before sending.

use super::*;

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
