//! Plan and apply on generated cases: applying reaches the file, the removal guards hold,
//! any text parses to an answer, the fingerprint sees every membership change.

use super::cases::{Case, case};
use super::*;

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
