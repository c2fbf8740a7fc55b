//! A create whose answer was lost is settled by listing again, and never sent twice.

use super::*;

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
    let report = stop_report(&error);
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
    let report = stop_report(&error);
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
    let report = stop_report(&error);
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
