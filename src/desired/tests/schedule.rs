//! The schedule: the order steps depend on, the steps in flight at once, nothing new
//! after a failure, and its property on generated cases.

use super::cases::case;
use super::*;
use crate::desired::schedule::{Schedule, Status, dependencies};

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
    let (plan, error) = plan_then_stop(&rt, &gate, &file);
    let report = stop_report(&error);
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
