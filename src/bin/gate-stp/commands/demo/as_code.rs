//! The flagship part of `gate-stp demo`: STP groups as code (export, edit, plan, apply,
//! an empty second plan, and a file refused before anything is sent), against the same
//! in-process emulator as the rest of the demo.

use std::time::Duration;

use gate_stp::{
    desired::{
        self, ApplyError, ApplyOptions, DesiredGroup, DesiredState, Member, Progress, Proposal,
        RenderOptions,
    },
    mock::demo,
};

use crate::{
    as_code,
    failure::Failure,
    output::{demo_step as step, out},
};

fn failed(error: impl std::fmt::Display) -> Failure {
    Failure::service(format!("demo: {error}"))
}

/// Runs steps `first`.. against the emulator at `base_url`.
pub(crate) async fn run(base_url: &str, timeout: Duration, first: u32) -> Result<(), Failure> {
    let client = as_code::demo_client(base_url, timeout)?;
    // Plans are printed without colour here: the demo's output is also its documentation.
    let render = |plan: &desired::Plan| desired::render_plan(plan, RenderOptions::default());

    step(
        first,
        "STP groups as code: `gate-stp export` writes the live groups as a file (ids pinned)",
    );
    let live = desired::read_live(&client, Some(demo::MAIN_USER))
        .await
        .map_err(failed)?;
    let exported = DesiredState::from_live(&live);
    out(exported.to_toml_string());

    step(
        first + 1,
        "edit the file: move demo_sub to a new group \"arb-desk\", put the main account and demo_sub_nokey in \"demo-desk\"",
    );
    let mut edited = exported.clone();
    let desk = edited
        .groups
        .iter_mut()
        .find(|group| group.name == "demo-desk")
        .ok_or_else(|| failed("the exported file has no \"demo-desk\""))?;
    desk.members = vec![
        Member::Id(demo::MAIN_USER),
        Member::Login(demo::SUB_WITHOUT_KEY_LOGIN_NAME.to_owned()),
    ];
    edited.groups.push(DesiredGroup {
        protect: true,
        ..DesiredGroup::new(
            "arb-desk",
            vec![Member::Login(demo::SUB_LOGIN_NAME.to_owned())],
        )
    });
    out(edited.to_toml_string());

    step(first + 2, "`gate-stp plan stp.toml`: what apply would send");
    let proposal = Proposal::for_desired(&client, &edited)
        .await
        .map_err(failed)?;
    out(render(proposal.plan()));

    step(
        first + 3,
        "`gate-stp apply stp.toml --yes`: each step once what it needs is done, each answer checked",
    );
    let mut progress = |event: Progress<'_>| {
        if let Progress::Done { index, total, step } = event {
            out(format!("[{}/{total}] {step}: ok\n", index + 1));
        }
    };
    proposal
        .check(ApplyOptions::default())
        .map_err(failed)?
        .send(&client, &mut progress)
        .await
        .map_err(failed)?;

    step(
        first + 4,
        "`gate-stp plan stp.toml` again: nothing left to do",
    );
    let again = Proposal::for_desired(&client, &edited)
        .await
        .map_err(failed)?
        .into_plan();
    out(render(&again));
    if !again.is_empty() {
        return Err(failed("the second plan is not empty"));
    }

    step(
        first + 5,
        &format!(
            "refused before anything is sent: a file adding user {} of another main account",
            demo::OTHER_SUB_USER
        ),
    );
    let mut foreign = edited.clone();
    foreign.groups[0]
        .members
        .push(Member::Id(demo::OTHER_SUB_USER));
    match Proposal::for_desired(&client, &foreign).await {
        // The plan refuses the file (no read failed): nothing could be sent.
        Err(error @ ApplyError::Plan(_)) => out(format!("refused as expected: {error}\n")),
        Err(error) => return Err(failed(error)),
        Ok(_) => return Err(failed("a member of another main account was accepted")),
    }
    Ok(())
}
