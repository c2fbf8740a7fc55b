//! Plan and apply against the in-memory Gate of `fake.rs`: the guards, the faults, and
//! the convergence properties, one module per topic; the fixtures they share are here.
//!
//! - [`plan`]: computing a plan (names, pins, members, protection, batches, saved plans);
//! - [`render`]: the plan as text for a terminal and as a Markdown comment;
//! - [`export`]: the file export writes from a live state;
//! - [`guards`]: what apply refuses before anything is sent, and when it reads again;
//! - [`faults`]: apply converging, and stopping on a failed or divergent answer;
//! - [`lost_create`]: a create whose answer was lost is settled by listing, never repeated;
//! - [`schedule`]: the order and concurrency of the steps, with its property;
//! - [`properties`]: plan and apply on generated [`cases`], as properties.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{apply::check, fake::FakeGate, fake::Fault, *};
use crate::Error;

mod cases;
mod export;
mod faults;
mod guards;
mod lost_create;
mod plan;
mod properties;
mod render;
mod schedule;

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

/// Plans `file` against `gate`, then applies it (default options, no progress), which
/// must stop: the plan and the error.
fn plan_then_stop(
    rt: &tokio::runtime::Runtime,
    gate: &FakeGate,
    file: &DesiredState,
) -> (Plan, ApplyError) {
    let (_, plan) = rt.block_on(plan_of(gate, file));
    let error = rt
        .block_on(apply_desired(
            gate,
            file,
            ApplyOptions::default(),
            &mut no_progress(),
        ))
        .expect_err("stops");
    (plan, error)
}

/// The report of an apply that stopped part-way; any other error fails the test.
fn stop_report(error: &ApplyError) -> &StopReport {
    match error {
        ApplyError::Stopped(report) => report,
        other => panic!("{other}"),
    }
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

async fn plan_of(gate: &FakeGate, file: &DesiredState) -> (LiveState, Plan) {
    let proposal = Proposal::for_desired(gate, file).await.unwrap();
    // What the proposal holds is what a read gives now (nothing changed in between).
    assert_eq!(proposal.live(), &read_live(gate, Some(MAIN)).await.unwrap());
    (proposal.live().clone(), proposal.into_plan())
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
