//! STP groups as code end to end against the emulator, through the library
//! (`gate_stp::desired` over the real client); the binary's half is `stp_as_code`.
//!
//! Needs only `mock` and `desired-toml` (not `cli`), so the mutation run, built without
//! the CLI, uses these "nothing was sent" tests.
//!
//! "Nothing was sent" is observed on the emulator's side: before a run that must be
//! refused, a fault is queued on the first request of each state-changing operation; if
//! any such request reached the emulator, its fault fires and `pending_faults()` drops.
#![cfg(all(feature = "mock", feature = "desired-toml"))]

// Re-exported: `stp_as_code` (the binary's half) imports this module whole.
pub(super) use std::time::Duration;

use crate::common::clock::TokioClock;

pub(super) use gate_stp::{
    Client, Credentials, RetryPolicy,
    desired::{
        self, ApplyError, ApplyOptions, DesiredGroup, DesiredState, Format, Member, Plan, Progress,
        Proposal, ReadError, Step, StopReason,
    },
    mock::{Emulator, EmulatorConfig, Fault, FaultKind, RunningEmulator, World},
};

pub(super) const MAIN: i64 = 10_000;
pub(super) const OTHER_SUB: i64 = 20_001;
pub(super) const MAIN_KEY: &str = "desk-main-key";
pub(super) const MAIN_SECRET: &str = "desk-main-secret";
pub(super) const OTHER_KEY: &str = "other-main-key";
pub(super) const OTHER_SECRET: &str = "other-main-secret";

/// Main 10000 with sub-accounts 10001..=10006 (login names bot_1..bot_6), and another
/// main 20000 with sub-account 20001.
pub(super) fn world() -> World {
    let mut text = format!(
        "[[accounts]]\nuser_id = {MAIN}\nlogin_name = \"desk_main\"\nkey = \"{MAIN_KEY}\"\nsecret = \"{MAIN_SECRET}\"\n"
    );
    for i in 1..=6 {
        text.push_str(&format!(
            "\n[[accounts]]\nuser_id = {}\nmain = {MAIN}\nlogin_name = \"bot_{i}\"\n",
            MAIN + i
        ));
    }
    text.push_str(&format!(
        "\n[[accounts]]\nuser_id = 20000\nkey = \"{OTHER_KEY}\"\nsecret = \"{OTHER_SECRET}\"\n\n[[accounts]]\nuser_id = {OTHER_SUB}\nmain = 20000\n"
    ));
    World::from_toml_str(&text).unwrap()
}

pub(super) async fn emulator() -> RunningEmulator {
    Emulator::start(world(), EmulatorConfig::default())
        .await
        .unwrap()
}

/// The client as `gate-stp plan/apply` builds it: pacing, idempotent writes retried.
pub(super) fn client_with(emulator: &RunningEmulator, key: &str, secret: &str) -> Client {
    Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(key, secret).unwrap())
        .pace_rate_limits(true)
        .retry_policy(
            RetryPolicy::default()
                .retry_idempotent_writes(true)
                .initial_backoff(Duration::from_millis(10)),
        )
        .build()
        .unwrap()
}

pub(super) fn client(emulator: &RunningEmulator) -> Client {
    client_with(emulator, MAIN_KEY, MAIN_SECRET)
}

pub(super) const WRITES: [&str; 3] = ["createSTPGroup", "addSTPGroupUsers", "deleteSTPGroupUsers"];

/// Queues a 599 on the next request of every state-changing operation.
pub(super) fn arm_tripwires(emulator: &RunningEmulator) {
    for operation in WRITES {
        emulator
            .inject_fault(Fault::new(operation, 1, FaultKind::Status(599)))
            .unwrap();
    }
}

pub(super) fn assert_no_write_sent(emulator: &RunningEmulator) {
    assert_eq!(
        emulator.pending_faults(),
        WRITES.len(),
        "a state-changing request reached the emulator"
    );
}

/// Live: "desk" {bot_1, bot_2}, "legacy" {bot_6} (left unmanaged by the files below).
pub(super) async fn seed(emulator: &RunningEmulator) -> (i64, i64) {
    let client = client(emulator);
    let desk = client.create_group("desk").await.unwrap().id.unwrap();
    client.add_users(desk, &[MAIN + 1, MAIN + 2]).await.unwrap();
    let legacy = client.create_group("legacy").await.unwrap().id.unwrap();
    client.add_users(legacy, &[MAIN + 6]).await.unwrap();
    (desk, legacy)
}

pub(super) fn group(name: &str, members: Vec<Member>) -> DesiredGroup {
    DesiredGroup::new(name, members)
}

/// "desk" loses bot_2 and gains bot_3 and the main account; new "arb" takes bot_2 (a
/// move) and bot_4; "legacy" is not mentioned.
pub(super) fn edited() -> DesiredState {
    DesiredState {
        main_user_id: MAIN,
        groups: vec![
            group(
                "desk",
                vec![
                    Member::Login("bot_1".into()),
                    Member::Login("bot_3".into()),
                    Member::Id(MAIN),
                ],
            ),
            group(
                "arb",
                vec![Member::Login("bot_2".into()), Member::Id(MAIN + 4)],
            ),
        ],
    }
}

/// Every group with its members.
pub(super) fn snapshot(emulator: &RunningEmulator) -> Vec<(i64, String, Option<Vec<i64>>)> {
    emulator
        .groups()
        .into_iter()
        .map(|group| {
            let id = group.id.unwrap_or_default();
            (id, group.name, emulator.members(id))
        })
        .collect()
}

pub(super) fn groups_named(emulator: &RunningEmulator, name: &str) -> Vec<i64> {
    emulator
        .groups()
        .iter()
        .filter(|group| group.name == name)
        .filter_map(|group| group.id)
        .collect()
}

/// The emulator holds exactly what `edited()` declares, "legacy" untouched, no duplicate.
pub(super) fn assert_converged(emulator: &RunningEmulator, desk: i64, legacy: i64) {
    assert_eq!(groups_named(emulator, "desk"), vec![desk]);
    assert_eq!(emulator.members(desk), Some(vec![MAIN, MAIN + 1, MAIN + 3]));
    let arb = groups_named(emulator, "arb");
    assert_eq!(arb.len(), 1, "arb must exist exactly once: {arb:?}");
    assert_eq!(emulator.members(arb[0]), Some(vec![MAIN + 2, MAIN + 4]));
    assert_eq!(emulator.members(legacy), Some(vec![MAIN + 6]));
    assert_eq!(emulator.groups().len(), 3);
}

/// The library's one apply flow: proposal, check, send.
pub(super) async fn apply_desired(
    client: &Client,
    file: &DesiredState,
    options: ApplyOptions,
) -> Result<(Plan, desired::ApplyReport), ApplyError> {
    let proposal = Proposal::for_desired(client, file).await?;
    let plan = proposal.plan().clone();
    let report = proposal
        .check(options)?
        .send(client, &mut |_: Progress<'_>| {})
        .await?;
    Ok((plan, report))
}

pub(super) async fn apply_file(client: &Client, file: &DesiredState) -> Result<Plan, ApplyError> {
    apply_desired(client, file, ApplyOptions::default())
        .await
        .map(|(plan, _)| plan)
}

/// The plan for `file` against the live state now.
pub(super) async fn plan_for(client: &Client, file: &DesiredState) -> Plan {
    Proposal::for_desired(client, file)
        .await
        .unwrap()
        .into_plan()
}

#[tokio::test]
async fn export_plan_apply_then_the_plan_is_empty_and_a_second_apply_only_reads() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);

    // Export: ids pinned, login names, planning it changes nothing.
    let live = desired::read_live(&client, None).await.unwrap();
    let exported = DesiredState::from_live(&live);
    let text = exported.to_toml_string();
    assert!(text.contains(&format!("id = {desk}")), "{text}");
    assert!(text.contains(r#"members = ["bot_1", "bot_2"]"#), "{text}");
    let reread = DesiredState::parse(&text, Format::Toml, "export.toml").unwrap();
    assert!(plan_for(&client, &reread).await.is_empty());

    let plan = apply_file(&client, &edited()).await.unwrap();
    assert_eq!(plan.steps.len(), 4, "{:?}", plan.steps);
    assert_converged(&emulator, desk, legacy);

    let again = plan_for(&client, &edited()).await;
    assert!(again.is_empty(), "{:?}", again.steps);
    arm_tripwires(&emulator);
    let plan = apply_file(&client, &edited()).await.unwrap();
    assert!(plan.is_empty());
    assert_no_write_sent(&emulator);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_failure_mid_apply_stops_with_a_report_and_a_rerun_converges() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    // Steps: create arb, remove bot_2 from desk, add to desk, add to arb. bot_2 moves to
    // the new arb, so its removal waits for arb's create; both adds wait for the removal
    // (one on its group, the other moves bot_2). The removal gets a definite 500 (not
    // retried): the apply stops there and neither add is sent.
    emulator
        .inject_fault(Fault::new("deleteSTPGroupUsers", 1, FaultKind::Status(500)))
        .unwrap();
    let error = apply_file(&client, &edited()).await.unwrap_err();
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(
        matches!(report.done.as_slice(), [step] if step.is_create()),
        "{error}"
    );
    assert!(matches!(report.failed, Step::Remove { .. }), "{error}");
    assert_eq!(report.remaining.len(), 2, "{error}");
    assert!(matches!(report.reason, StopReason::Request(_)), "{error}");
    // The create was sent: a caller must not be told the account is untouched.
    assert!(!error.nothing_changed(), "{error}");
    let text = error.to_string();
    assert!(text.contains("apply stopped at step 2 of 4"), "{text}");

    let plan = apply_file(&client, &edited()).await.unwrap();
    assert!(
        plan.creates() == 0,
        "the re-run created again: {:?}",
        plan.steps
    );
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

#[tokio::test]
async fn lost_answers_to_idempotent_writes_are_retried_without_duplicates() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    // The remove happens but its answer is lost; the first add is dropped unexecuted;
    // a 503 on the second add. The client retries each, and every answer still matches.
    for fault in [
        Fault::new("deleteSTPGroupUsers", 1, FaultKind::ExecuteThenDrop),
        Fault::new("addSTPGroupUsers", 1, FaultKind::Drop),
        Fault::new("addSTPGroupUsers", 3, FaultKind::Status(503)),
    ] {
        emulator.inject_fault(fault).unwrap();
    }
    apply_file(&client, &edited()).await.unwrap();
    assert_eq!(emulator.pending_faults(), 0);
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_lost_create_answer_is_adopted_and_never_creates_a_second_group() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::ExecuteThenDrop))
        .unwrap();
    let (plan, report) = apply_desired(&client, &edited(), ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.creates(), 1);
    assert_eq!(report.adopted, vec!["arb".to_owned()]);
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_create_that_lands_after_its_lost_answer_is_adopted_not_created_twice() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    // The connection drops at once and the group appears 1.5 s later: the first listing
    // after the lost answer does not show it, a later one of the bounded wait does.
    emulator
        .inject_fault(Fault::new(
            "createSTPGroup",
            1,
            FaultKind::DropThenExecuteAfter(Duration::from_millis(1500)),
        ))
        .unwrap();
    let (plan, report) = apply_desired(&client, &edited(), ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.creates(), 1);
    assert_eq!(emulator.pending_faults(), 0);
    assert_eq!(report.adopted, vec!["arb".to_owned()]);
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

/// Proposes and checks `edited()` with `options`, lets another caller create "arb" (the
/// plan's new group), then sends: the apply must be refused as stale, nothing sent, one
/// "arb" only.
async fn send_after_a_competing_create(options: ApplyOptions) {
    let emulator = emulator().await;
    seed(&emulator).await;
    let client = client(&emulator);
    let proposal = Proposal::for_desired(&client, &edited()).await.unwrap();
    assert_eq!(proposal.plan().creates(), 1, "the plan creates \"arb\"");
    let checked = proposal.check(options).unwrap();
    client.create_group("arb").await.unwrap();
    arm_tripwires(&emulator);
    let before = snapshot(&emulator);
    let error = checked
        .send(&client, &mut |_: Progress<'_>| {})
        .await
        .unwrap_err();
    let ApplyError::StalePlan { planned, live } = &error else {
        panic!("{error}")
    };
    assert_ne!(planned, live);
    assert!(error.nothing_changed());
    assert_no_write_sent(&emulator);
    assert_eq!(snapshot(&emulator), before);
    assert_eq!(groups_named(&emulator, "arb").len(), 1, "a second \"arb\"");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_group_created_between_proposal_and_send_is_refused_as_stale_with_nothing_sent() {
    // Any read is "aged" with a zero bound: send reads again, as after a person's answer.
    send_after_a_competing_create(ApplyOptions::default().with_max_read_age(Duration::ZERO)).await;
}

#[tokio::test]
async fn a_quick_yes_still_lists_the_groups_again_before_the_first_create() {
    // The person answers at once: the read is fresh (it never ages under this bound), yet
    // a group of the declared name created meanwhile is found by the one listing that
    // precedes every create.
    let options = ApplyOptions::default().with_max_read_age(Duration::MAX);
    send_after_a_competing_create(options).await;
    // Without the competing create, the same quick answer goes through, one group.
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    apply_desired(&client(&emulator), &edited(), options)
        .await
        .unwrap();
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

#[tokio::test]
async fn creates_above_the_limit_are_refused_before_anything_is_sent() {
    let emulator = emulator().await;
    seed(&emulator).await;
    let client = client(&emulator);
    let mut file = edited();
    file.groups.push(group("hedge", vec![Member::Id(MAIN + 5)]));
    // Two creates ("arb", "hedge"): one over a limit of 1.
    arm_tripwires(&emulator);
    let error = apply_desired(&client, &file, ApplyOptions::default().with_max_creates(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ApplyError::TooManyCreates { creates: 2, max: 1 }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "the plan creates 2 groups, more than the limit of 1; nothing was changed (a group can never be deleted)"
    );
    assert!(
        !error.to_string().contains("--"),
        "the library names no flag"
    );
    assert_no_write_sent(&emulator);
    assert_eq!(groups_named(&emulator, "arb"), Vec::<i64>::new());

    // At the limit, it goes through.
    let emulator = self::emulator().await;
    seed(&emulator).await;
    let client = self::client(&emulator);
    apply_desired(&client, &file, ApplyOptions::default().with_max_creates(2))
        .await
        .unwrap();
    assert_eq!(groups_named(&emulator, "hedge").len(), 1);
    assert_eq!(
        desired::DEFAULT_MAX_CREATES,
        ApplyOptions::default().max_creates
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_create_that_never_happened_stops_and_a_rerun_creates_it_once() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Drop))
        .unwrap();
    let error = apply_file(&client, &edited()).await.unwrap_err();
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    assert!(
        matches!(report.reason, StopReason::CreateUnresolved { .. }),
        "{error}"
    );
    assert!(report.done.is_empty());
    assert!(groups_named(&emulator, "arb").is_empty());
    // Nothing after the create was sent: desk is as seeded.
    assert_eq!(emulator.members(desk), Some(vec![MAIN + 1, MAIN + 2]));

    apply_file(&client, &edited()).await.unwrap();
    assert_converged(&emulator, desk, legacy);
    emulator.shutdown().await;
}

/// Runs `apply` on `file` and checks it was refused with no state-changing request.
async fn assert_refused(
    emulator: &RunningEmulator,
    client: &Client,
    file: &DesiredState,
    options: ApplyOptions,
) -> ApplyError {
    arm_tripwires(emulator);
    let before = snapshot(emulator);
    let error = apply_desired(client, file, options)
        .await
        .expect_err("must be refused");
    assert!(error.nothing_changed(), "{error}");
    assert_no_write_sent(emulator);
    assert_eq!(snapshot(emulator), before);
    error
}

#[tokio::test]
async fn unsafe_files_are_refused_before_anything_is_sent() {
    let emulator = emulator().await;
    seed(&emulator).await;
    let client = client(&emulator);

    // Too many removals (edited() removes one member).
    let error = assert_refused(
        &emulator,
        &client,
        &edited(),
        ApplyOptions::default().with_max_removals(0),
    )
    .await;
    assert!(
        matches!(
            error,
            ApplyError::TooManyRemovals {
                removals: 1,
                max: 0
            }
        ),
        "{error}"
    );
    let rearmed = WRITES.len();

    // A protected removal.
    let mut protected = edited();
    protected.groups[0].protect = true;
    let error = assert_refused_again(&emulator, &client, &protected, rearmed).await;
    assert!(error.to_string().contains("is protected"), "{error}");

    // A user in two groups (once by login name, once by id).
    let mut twice = edited();
    twice.groups[1].members.push(Member::Id(MAIN + 1));
    let error = assert_refused_again(&emulator, &client, &twice, rearmed).await;
    assert!(
        error
            .to_string()
            .contains("a user can be in at most one STP group"),
        "{error}"
    );

    // A member of another main account.
    let mut foreign = edited();
    foreign.groups[1].members.push(Member::Id(OTHER_SUB));
    let error = assert_refused_again(&emulator, &client, &foreign, rearmed).await;
    assert!(
        error
            .to_string()
            .contains("member 20001 is neither the main account 10000 nor one of its sub-accounts"),
        "{error}"
    );

    // A key of another account.
    let other = client_with(&emulator, OTHER_KEY, OTHER_SECRET);
    let error = assert_refused_again(&emulator, &other, &edited(), rearmed).await;
    assert!(
        matches!(
            error,
            ApplyError::Read(ReadError::KeyOfAnotherAccount {
                key_user_id: 20000,
                main_user_id: MAIN
            })
        ),
        "{error}"
    );
    emulator.shutdown().await;
}

/// Like [`assert_refused`] with the tripwires already armed by an earlier case.
async fn assert_refused_again(
    emulator: &RunningEmulator,
    client: &Client,
    file: &DesiredState,
    armed: usize,
) -> ApplyError {
    assert_eq!(emulator.pending_faults(), armed);
    let before = snapshot(emulator);
    let error = apply_desired(client, file, ApplyOptions::default())
        .await
        .expect_err("must be refused");
    assert!(error.nothing_changed(), "{error}");
    assert_no_write_sent(emulator);
    assert_eq!(snapshot(emulator), before);
    error
}

#[tokio::test]
async fn a_stale_saved_plan_is_refused_before_anything_is_sent() {
    let emulator = emulator().await;
    let (desk, _) = seed(&emulator).await;
    let client = client(&emulator);
    let plan = plan_for(&client, &edited()).await;
    let saved = Plan::from_json(&plan.to_json_string(), "plan.json").unwrap();
    // Someone else changes a managed group meanwhile.
    client.add_users(desk, &[MAIN + 5]).await.unwrap();
    arm_tripwires(&emulator);
    let error = async {
        Proposal::for_saved(&client, saved)
            .await?
            .check(ApplyOptions::default())?
            .send(&client, &mut |_: Progress<'_>| {})
            .await
    }
    .await
    .unwrap_err();
    let ApplyError::StalePlan { planned, live } = &error else {
        panic!("not refused as stale: {error}");
    };
    assert_eq!(planned, &plan.live_fingerprint);
    assert_ne!(live, planned);
    // The message names both states by the first 12 characters of their fingerprints,
    // enough to tell them apart without a 64-character line.
    let live_now = desired::read_live(&client, Some(MAIN)).await.unwrap();
    assert_eq!(live, &live_now.fingerprint());
    assert!(planned.len() > 12 && live.len() > 12);
    let named = format!("(plan {}, live now {})", &planned[..12], &live[..12]);
    assert!(error.to_string().contains(&named), "{error}");
    assert_no_write_sent(&emulator);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reading_many_groups_survives_a_tight_rate_limit() {
    // Three requests per second and endpoint: the members of eight groups are read four
    // at a time, so some reads meet 429s or are held by pacing; none may be lost. Both
    // sides read tokio's paused clock, so the windows do not depend on how loaded the
    // machine is (the test failed under load on the real clock).
    let clock = TokioClock::new();
    let emulator = Emulator::start(
        world(),
        EmulatorConfig::default()
            .rate_limit(3, Duration::from_secs(1))
            .clock(clock),
    )
    .await
    .unwrap();
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(MAIN_KEY, MAIN_SECRET).unwrap())
        .clock(clock)
        .pace_rate_limits(true)
        .retry_policy(
            RetryPolicy::default()
                .retry_idempotent_writes(true)
                .initial_backoff(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let mut file = DesiredState {
        main_user_id: MAIN,
        groups: vec![],
    };
    for i in 1..=6 {
        file.groups
            .push(group(&format!("desk-{i}"), vec![Member::Id(MAIN + i)]));
    }
    file.groups.push(group("empty-1", vec![]));
    file.groups.push(group("empty-2", vec![]));
    apply_file(&client, &file).await.unwrap();
    let live = desired::read_live(&client, Some(MAIN)).await.unwrap();
    assert_eq!(live.groups.len(), 8);
    for i in 1..=6 {
        let group = live
            .groups
            .iter()
            .find(|g| g.name == format!("desk-{i}"))
            .unwrap();
        assert_eq!(group.members, vec![MAIN + i]);
    }
    assert!(plan_for(&client, &file).await.is_empty());
    emulator.shutdown().await;
}

/// Live: "desk" {bot_1, bot_2}, "legacy" {bot_6}. The file moves bot_2 from desk to a new
/// "arb" and bot_6 from legacy to a new "mm" (with bot_4): two independent chains, each a
/// create, a removal waiting for it and an add waiting for both.
fn two_moves() -> DesiredState {
    DesiredState {
        main_user_id: MAIN,
        groups: vec![
            group("desk", vec![Member::Login("bot_1".into())]),
            group("legacy", vec![]),
            group("arb", vec![Member::Login("bot_2".into())]),
            group(
                "mm",
                vec![Member::Login("bot_6".into()), Member::Login("bot_4".into())],
            ),
        ],
    }
}

#[tokio::test]
async fn a_refused_create_keeps_its_movers_home_and_the_other_chain_is_done_or_not_sent() {
    let emulator = emulator().await;
    let (desk, legacy) = seed(&emulator).await;
    let client = client(&emulator);
    // Both creates start together: whichever arrives first is refused (a definite 400,
    // nothing created, never retried).
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::Status(400)))
        .unwrap();
    let options = ApplyOptions::default();
    let error = apply_desired(&client, &two_moves(), options)
        .await
        .unwrap_err();
    let ApplyError::Stopped(report) = &error else {
        panic!("{error}")
    };
    let Step::Create { group: refused } = &report.failed else {
        panic!("{error}")
    };
    let (home, home_id, mover) = match refused.as_str() {
        "arb" => ("desk", desk, MAIN + 2),
        "mm" => ("legacy", legacy, MAIN + 6),
        other => panic!("{other}: {error}"),
    };
    // The refused group's mover never left its old group, and nothing went into it.
    assert!(groups_named(&emulator, refused).is_empty());
    assert!(
        emulator.members(home_id).unwrap().contains(&mover),
        "{home}: {error}"
    );
    for step in &report.done {
        assert_ne!(step.group(), refused.as_str(), "{error}");
        assert_ne!(step.group(), home, "{error}");
    }
    // The other chain did not depend on it: each of its steps is done or not sent (nothing
    // new starts after the failure), never failed; one request per step at most.
    assert!(report.also_failed.is_empty(), "{error}");
    assert_eq!(report.done.len() + 1 + report.remaining.len(), 6, "{error}");
    let other = if refused == "arb" { "mm" } else { "arb" };
    let other_done = report.done.iter().filter(|s| s.group() == other).count();
    if other_done > 0 {
        assert_eq!(groups_named(&emulator, other).len(), 1);
    }
    // Run again: converges, each group once.
    apply_desired(&client, &two_moves(), options).await.unwrap();
    for name in ["arb", "mm"] {
        assert_eq!(groups_named(&emulator, name).len(), 1, "{name}");
    }
    assert_eq!(emulator.members(desk), Some(vec![MAIN + 1]));
    assert_eq!(emulator.members(legacy), Some(vec![]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn users_rotating_between_groups_are_never_in_two_and_steps_run_side_by_side() {
    let emulator = emulator().await;
    let client = client(&emulator);
    // Three groups of two; then every user moves to the next group. The emulator refuses
    // an add of a user still in another group, so a move sent before its removal fails.
    let start = |shift: i64| DesiredState {
        main_user_id: MAIN,
        groups: (0..3)
            .map(|g| {
                let members = (0..2)
                    .map(|m| Member::Id(MAIN + 1 + (2 * g + m + shift).rem_euclid(6)))
                    .collect();
                group(&format!("g{g}"), members)
            })
            .collect(),
    };
    apply_file(&client, &start(0)).await.unwrap();
    let mut outstanding = 0usize;
    let mut most = 0usize;
    let mut progress = |event: Progress<'_>| match event {
        Progress::Sending { .. } => {
            outstanding += 1;
            most = most.max(outstanding);
        }
        Progress::Done { .. } => outstanding -= 1,
        _ => {}
    };
    let options = ApplyOptions::default().with_max_removals(6);
    let checked = Proposal::for_desired(&client, &start(2))
        .await
        .unwrap()
        .check(options)
        .unwrap();
    let plan = checked.plan().clone();
    assert_eq!(plan.removals(), 6);
    let report = checked.send(&client, &mut progress).await.unwrap();
    assert_eq!(report.steps_done, plan.steps.len());
    assert!(most > 1, "one step at a time");
    let again = plan_for(&client, &start(2)).await;
    assert!(again.is_empty(), "{:?}", again.steps);
    emulator.shutdown().await;
}

// --- files and the saved plan's schema (no `cli` needed) ------------------------------

/// `load` reads a file in the format its extension names: `.json` (any case) is JSON,
/// anything else, no extension included, is TOML. Each file below parses only in the
/// format it is written in, so a wrong guess is a refusal.
#[test]
fn a_file_is_read_as_json_exactly_when_its_extension_says_json() {
    let dir = crate::common::fresh_dir("load-format");
    let json = r#"{"main_user_id": 10000, "group": [{"name": "desk", "members": [10001]}]}"#;
    let toml = "main_user_id = 10000\n\n[[group]]\nname = \"desk\"\nmembers = [10001]\n";
    let expected = DesiredState {
        main_user_id: MAIN,
        groups: vec![group("desk", vec![Member::Id(MAIN + 1)])],
    };
    for (name, text, format) in [
        ("stp.json", json, Format::Json),
        ("STP.JSON", json, Format::Json),
        ("stp.Json", json, Format::Json),
        ("stp.toml", toml, Format::Toml),
        ("stp", toml, Format::Toml),
        ("stp.json.txt", toml, Format::Toml),
        ("json", toml, Format::Toml),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = DesiredState::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded, expected, "{name}");
        assert_eq!(Format::from_path(&path), format, "{name}");
    }
}

/// The schema `Plan::json_schema` publishes (`gate-stp plan --schema`) accepts a saved
/// plan and refuses a document whose steps are not a list: checked with an independent
/// JSON Schema validator, not with our own types.
#[test]
fn the_published_plan_schema_accepts_a_saved_plan_and_refuses_a_broken_one() {
    let live = desired::LiveState {
        main_user_id: MAIN,
        sub_accounts: vec![
            desired::SubAccount {
                user_id: MAIN + 1,
                login_name: None,
            },
            desired::SubAccount {
                user_id: MAIN + 2,
                login_name: Some("bot_2".into()),
            },
        ],
        groups: vec![desired::LiveGroup {
            id: 7,
            name: "desk".into(),
            creator_id: Some(MAIN),
            members: vec![MAIN + 1],
        }],
    };
    let file = DesiredState {
        main_user_id: MAIN,
        groups: vec![
            group("desk", vec![Member::Login("bot_2".into())]),
            group("arb", vec![Member::Id(MAIN + 1)]),
        ],
    };
    let plan = Plan::compute(&live, &file).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&plan.to_json_string()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&Plan::json_schema())
        .unwrap_or_else(|e| panic!("the published schema is not JSON: {e}"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&saved), "{saved:#}");
    let mut broken = saved.clone();
    broken["steps"] = serde_json::json!("create everything");
    assert!(!validator.is_valid(&broken));
}
