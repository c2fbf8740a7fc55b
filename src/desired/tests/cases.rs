//! Generated cases for the properties: a live state and a file valid against it.

use super::*;

/// A live state and a file generated together so that the file is valid against it:
/// users in at most one group on each side, duplicates of a live name pinned, users of
/// unmanaged groups not declared.
#[derive(Debug, Clone)]
pub(super) struct Case {
    pub(super) live: LiveState,
    pub(super) desired: DesiredState,
}

const NAMES: [&str; 3] = ["desk", "arb", "mm"];
const NEW_NAMES: [&str; 2] = ["new-a", "new-b"];

pub(super) fn case() -> impl Strategy<Value = Case> {
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
