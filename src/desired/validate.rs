//! What can be wrong with a desired state: on its own (checked when it is parsed), or
//! against the live state (checked by `Plan::compute`).

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use super::{
    limits::{MAX_GROUPS, MAX_NAME_CHARS},
    model::{DesiredState, Member},
};
use crate::text::{Ids, Quoted, escape_control};

/// One reason a file or a plan is refused. Every problem names the group and, where it
/// is about one, the member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The document declares more groups than [`MAX_GROUPS`](super::MAX_GROUPS); reported
    /// alone, nothing else is checked.
    TooManyGroups {
        /// Groups declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A group name longer than [`MAX_NAME_CHARS`](super::MAX_NAME_CHARS).
    NameTooLong {
        /// Position of the group in the file, from 0.
        index: usize,
        /// The name (quoted cut in messages).
        group: String,
        /// Its length, in characters.
        chars: usize,
    },
    /// A member's login name longer than [`MAX_NAME_CHARS`](super::MAX_NAME_CHARS).
    LoginTooLong {
        /// The group.
        group: String,
        /// Its length, in characters.
        chars: usize,
    },
    /// `main_user_id` is zero or negative.
    NonPositiveMain(i64),
    /// A group's name is empty or only whitespace (the `index` is 0-based, in file order).
    EmptyName {
        /// Position of the group in the file, from 0.
        index: usize,
    },
    /// Two `[[group]]` entries carry the same name.
    DuplicateGroup {
        /// The name.
        group: String,
    },
    /// An `id` pin is zero or negative.
    NonPositivePin {
        /// The group.
        group: String,
        /// The pin.
        id: i64,
    },
    /// Two groups pin the same id.
    DuplicatePin {
        /// The pinned id.
        id: i64,
        /// The first group pinning it.
        group: String,
        /// The second.
        other: String,
    },
    /// A member id is zero or negative.
    NonPositiveMember {
        /// The group.
        group: String,
        /// The id.
        member: i64,
    },
    /// A member is listed twice in one group (possibly once by id, once by login name).
    DuplicateMember {
        /// The group.
        group: String,
        /// The member, as written.
        member: String,
    },
    /// A user is declared in two groups. Gate's orders carry one `stp_id`, so we treat
    /// "at most one group per user" as a rule (Gate does not document it).
    UserInTwoGroups {
        /// The member, as written.
        member: String,
        /// The first group.
        group: String,
        /// The second group.
        other: String,
    },
    /// A member is neither the main account nor one of its sub-accounts (for instance a
    /// user of another main account, or an unknown login name).
    NotOurs {
        /// The group.
        group: String,
        /// The member, as written.
        member: String,
        /// The file's main account.
        main_user_id: i64,
    },
    /// A login name matches several sub-accounts.
    AmbiguousLogin {
        /// The group.
        group: String,
        /// The login name.
        login: String,
        /// The sub-accounts carrying it.
        user_ids: Vec<i64>,
    },
    /// Several live groups carry the declared name exactly and the file pins none.
    AmbiguousName {
        /// The group.
        group: String,
        /// The ids of the live groups with that name.
        ids: Vec<i64>,
    },
    /// The pinned id is not among the live groups of the account.
    PinNotFound {
        /// The group.
        group: String,
        /// The pin.
        id: i64,
    },
    /// The pinned id is a live group with another name (Gate cannot rename groups).
    PinNamesAnotherGroup {
        /// The group, as declared.
        group: String,
        /// The pin.
        id: i64,
        /// The live group's name.
        live_name: String,
    },
    /// The plan would remove members of a group declared with `protect = true`.
    ProtectedRemoval {
        /// The group.
        group: String,
        /// The members that would go.
        members: Vec<i64>,
    },
    /// A declared member is in a live group the file does not manage, which the plan
    /// never touches: it could not join the declared group.
    InUnmanagedGroup {
        /// The declared group.
        group: String,
        /// The member, as written.
        member: String,
        /// The unmanaged group's name.
        other: String,
        /// Its id.
        other_id: i64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooManyGroups { count, max } => write!(
                f,
                "the document declares {count} groups, more than the limit of {max}; nothing was planned"
            ),
            Problem::NameTooLong {
                index,
                group,
                chars,
            } => write!(
                f,
                "group #{} has a name of {chars} characters, more than the limit of {MAX_NAME_CHARS}: {}",
                index + 1,
                Quoted(group)
            ),
            Problem::LoginTooLong { group, chars } => write!(
                f,
                "group {}: a member's login name has {chars} characters, more than the limit of {MAX_NAME_CHARS}",
                Quoted(group)
            ),
            Problem::NonPositiveMain(id) => write!(f, "main_user_id must be positive, got {id}"),
            Problem::EmptyName { index } => {
                write!(f, "group #{} has an empty name", index + 1)
            }
            Problem::DuplicateGroup { group } => write!(
                f,
                "group {} is declared more than once (names are the key of a file)",
                Quoted(group)
            ),
            Problem::NonPositivePin { group, id } => {
                write!(f, "group {}: id must be positive, got {id}", Quoted(group))
            }
            Problem::DuplicatePin { id, group, other } => write!(
                f,
                "groups {} and {} both pin id {id}",
                Quoted(group),
                Quoted(other)
            ),
            Problem::NonPositiveMember { group, member } => write!(
                f,
                "group {}: member {member} is not a valid user id (must be positive)",
                Quoted(group)
            ),
            Problem::DuplicateMember { group, member } => write!(
                f,
                "group {}: member {} is listed twice",
                Quoted(group),
                escape_control(member)
            ),
            Problem::UserInTwoGroups {
                member,
                group,
                other,
            } => write!(
                f,
                "member {} is declared in group {} and in group {}: a user can be in at most one STP group",
                escape_control(member),
                Quoted(group),
                Quoted(other)
            ),
            Problem::NotOurs {
                group,
                member,
                main_user_id,
            } => write!(
                f,
                "group {}: member {} is neither the main account {main_user_id} nor one of its sub-accounts",
                Quoted(group),
                escape_control(member)
            ),
            Problem::AmbiguousLogin {
                group,
                login,
                user_ids,
            } => write!(
                f,
                "group {}: login name {} matches several sub-accounts ({}); use the user id",
                Quoted(group),
                Quoted(login),
                Ids(user_ids)
            ),
            Problem::AmbiguousName { group, ids } => write!(
                f,
                "group {}: {} live groups carry this exact name (ids {}); pin one with `id = ...`",
                Quoted(group),
                ids.len(),
                Ids(ids)
            ),
            Problem::PinNotFound { group, id } => write!(
                f,
                "group {}: pinned id {id} is not a live group of this account",
                Quoted(group)
            ),
            Problem::PinNamesAnotherGroup {
                group,
                id,
                live_name,
            } => write!(
                f,
                "group {}: pinned id {id} is the live group {} (Gate cannot rename groups)",
                Quoted(group),
                Quoted(live_name)
            ),
            Problem::ProtectedRemoval { group, members } => write!(
                f,
                "group {} is protected, but the plan would remove {} (set `protect = false` to allow it)",
                Quoted(group),
                Ids(members)
            ),
            Problem::InUnmanagedGroup {
                group,
                member,
                other,
                other_id,
            } => write!(
                f,
                "group {}: member {} is in group {} (id {other_id}), which the file does not manage and the plan never changes; add that group to the file",
                Quoted(group),
                escape_control(member),
                Quoted(other)
            ),
        }
    }
}

/// The most problems a message lists; the rest are counted ("and N more").
pub(crate) const MAX_PROBLEMS_SHOWN: usize = 50;

/// Several problems at once, one per line (at most 50, then how many
/// more: a generated document can have thousands, and the first ones say what is wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for problem in many.iter().take(MAX_PROBLEMS_SHOWN) {
                    write!(f, "\n  - {problem}")?;
                }
                if many.len() > MAX_PROBLEMS_SHOWN {
                    write!(f, "\n  - and {} more", many.len() - MAX_PROBLEMS_SHOWN)?;
                }
                Ok(())
            }
        }
    }
}

/// The checks that need no live state: every problem found, in file order.
pub(crate) fn check(desired: &DesiredState) -> Vec<Problem> {
    if desired.groups.len() > MAX_GROUPS {
        return vec![Problem::TooManyGroups {
            count: desired.groups.len(),
            max: MAX_GROUPS,
        }];
    }
    let mut problems = Vec::new();
    if desired.main_user_id <= 0 {
        problems.push(Problem::NonPositiveMain(desired.main_user_id));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut pins: HashMap<i64, &str> = HashMap::new();
    // Who is declared where, by member as written (ids and login names are only known to
    // be the same user once resolved: `Plan::compute` checks that again).
    let mut declared: BTreeMap<&Member, &str> = BTreeMap::new();
    for (index, group) in desired.groups.iter().enumerate() {
        let name = group.name.as_str();
        if name.trim().is_empty() {
            problems.push(Problem::EmptyName { index });
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            problems.push(Problem::NameTooLong {
                index,
                group: name.to_owned(),
                chars,
            });
        }
        for member in &group.members {
            if let Member::Login(login) = member {
                let chars = login.chars().count();
                if chars > MAX_NAME_CHARS {
                    problems.push(Problem::LoginTooLong {
                        group: name.to_owned(),
                        chars,
                    });
                }
            }
        }
        if names.insert(name, index).is_some() {
            problems.push(Problem::DuplicateGroup {
                group: name.to_owned(),
            });
        }
        if let Some(id) = group.id {
            if id <= 0 {
                problems.push(Problem::NonPositivePin {
                    group: name.to_owned(),
                    id,
                });
            } else if let Some(other) = pins.insert(id, name) {
                problems.push(Problem::DuplicatePin {
                    id,
                    group: other.to_owned(),
                    other: name.to_owned(),
                });
            }
        }
        let mut in_group = std::collections::HashSet::new();
        for member in &group.members {
            if let Member::Id(id) = member
                && *id <= 0
            {
                problems.push(Problem::NonPositiveMember {
                    group: name.to_owned(),
                    member: *id,
                });
                continue;
            }
            if !in_group.insert(member) {
                problems.push(Problem::DuplicateMember {
                    group: name.to_owned(),
                    member: member.to_string(),
                });
                continue;
            }
            if let Some(other) = declared.insert(member, name)
                && other != name
            {
                problems.push(Problem::UserInTwoGroups {
                    member: member.to_string(),
                    group: other.to_owned(),
                    other: name.to_owned(),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::DesiredGroup;

    fn group(name: &str, id: Option<i64>, members: Vec<Member>) -> DesiredGroup {
        DesiredGroup {
            id,
            ..DesiredGroup::new(name, members)
        }
    }

    #[test]
    fn every_static_problem_is_found_and_named() {
        let desired = DesiredState {
            main_user_id: 10000,
            groups: vec![
                group("a", Some(7), vec![Member::Id(10001), Member::Id(10001)]),
                group("a", None, vec![]),
                group("b", Some(7), vec![Member::Id(10001), Member::Id(-3)]),
                group(" ", Some(0), vec![Member::Login("bot".into())]),
            ],
        };
        let problems = check(&desired);
        assert_eq!(
            problems,
            vec![
                Problem::DuplicateMember {
                    group: "a".into(),
                    member: "10001".into()
                },
                Problem::DuplicateGroup { group: "a".into() },
                Problem::DuplicatePin {
                    id: 7,
                    group: "a".into(),
                    other: "b".into()
                },
                Problem::UserInTwoGroups {
                    member: "10001".into(),
                    group: "a".into(),
                    other: "b".into()
                },
                Problem::NonPositiveMember {
                    group: "b".into(),
                    member: -3
                },
                Problem::EmptyName { index: 3 },
                Problem::NonPositivePin {
                    group: " ".into(),
                    id: 0
                },
            ]
        );
        let text = Problems(problems).to_string();
        assert!(text.starts_with("7 problems:"), "{text}");
        assert!(text.contains("member 10001 is declared in group \"a\" and in group \"b\""));
    }

    #[test]
    fn names_from_files_are_escaped_in_messages() {
        let text = Problem::DuplicateGroup {
            group: "evil\u{1b}[2J".into(),
        }
        .to_string();
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
