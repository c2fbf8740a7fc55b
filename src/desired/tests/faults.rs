//! Apply against the in-memory Gate: it converges, and it stops with a report on a failed,
//! lost or divergent answer.

use super::*;

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

#[test]
fn a_fault_mid_apply_stops_with_a_report_and_a_rerun_converges() {
    let gate = FakeGate::new(&live());
    gate.inject(Fault::WriteLost { nth: 2 });
    let rt = runtime();
    let error = apply_edited(&rt, &gate).expect_err("stops");
    let report = stop_report(&error);
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
    let report = stop_report(&error);
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
    let (plan, error) = plan_then_stop(&rt, &gate, &file);
    assert_eq!(plan.steps.len(), 2);
    let report = stop_report(&error);
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
    let (plan, error) = plan_then_stop(&rt, &gate, &file);
    assert_eq!(plan.steps.len(), 2);
    let report = stop_report(&error);
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
    let report = stop_report(&error);
    let StopReason::UnexpectedGroup { name, .. } = &report.reason else {
        panic!("{error}")
    };
    assert_eq!(name, "arb-other");
    assert!(report.failed.is_create());
    assert!(report.created.is_empty(), "{error}");
}
