//! The plan: a pure comparison of a live state with a desired state, and the ordered
//! requests that turn one into the other.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    model::{DesiredGroup, DesiredState, LiveGroup, LiveState, Member},
    names::{NameWarning, name_warnings},
    validate::{self, Problem, Problems},
};

/// Most user ids sent in one add or remove request; larger changes are split.
///
/// Gate documents no limit. Removal ids travel in the query string (`user_id=1,2,...`):
/// 100 ids of up to 19 digits stay under 2 KB, far below the 8 KB URL limit common to
/// proxies and load balancers, and a batch that is refused wastes little.
pub const MAX_IDS_PER_REQUEST: usize = 100;

/// The `format` of a saved plan; a file with another value is refused.
///
/// The version of the plan document (`docs/plan.schema.json`): it changes when a reader of
/// the previous version would misread a new plan (a field removed, renamed or given another
/// meaning); an added optional field keeps it.
pub const PLAN_FORMAT: &str = "gate-stp-plan/1";

/// Why no plan could be computed: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Problems(self.problems.clone()))]
pub struct PlanError {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

/// What a plan does to one declared group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The group does not exist yet: it is created, then its members added.
    Create,
    /// Members are added or removed.
    Change,
    /// Already as declared.
    Unchanged,
}

/// One declared group in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupChange {
    /// The group's name.
    pub name: String,
    /// Its live id; `None` when the plan creates it.
    pub id: Option<i64>,
    /// What happens to it.
    pub action: Action,
    /// Users joining, ascending.
    pub add: Vec<i64>,
    /// Users leaving, ascending.
    pub remove: Vec<i64>,
    /// The members once the plan is applied, ascending.
    pub members_after: Vec<i64>,
}

/// A live group the file does not declare: listed, never touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnmanagedGroup {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its members, ascending.
    pub members: Vec<i64>,
}

/// One request of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// `createSTPGroup` with this name.
    Create {
        /// The name.
        group: String,
    },
    /// `deleteSTPGroupUsers` of these users.
    Remove {
        /// The group's name.
        group: String,
        /// The group's id.
        stp_id: i64,
        /// At most [`MAX_IDS_PER_REQUEST`] users, ascending.
        user_ids: Vec<i64>,
        /// The members Gate must answer with, ascending.
        expected_members: Vec<i64>,
    },
    /// `addSTPGroupUsers` of these users.
    Add {
        /// The group's name.
        group: String,
        /// The group's id; `None` for a group created earlier in the plan.
        stp_id: Option<i64>,
        /// At most [`MAX_IDS_PER_REQUEST`] users, ascending.
        user_ids: Vec<i64>,
        /// The members Gate must answer with, ascending.
        expected_members: Vec<i64>,
    },
}

impl Step {
    /// The name of the group the step is about.
    pub fn group(&self) -> &str {
        match self {
            Step::Create { group } | Step::Remove { group, .. } | Step::Add { group, .. } => group,
        }
    }

    /// Whether the step creates a group.
    pub fn is_create(&self) -> bool {
        matches!(self, Step::Create { .. })
    }
}

/// The requests that bring a live state to a desired state, with what was compared.
///
/// Order: creates first, then every removal, then every addition; within each kind,
/// groups come in file order. Apply does not send them in this order one by one: it
/// sends each step once what it depends on succeeded (a new group's members after its
/// create, a moving user's add after its removal, one group's steps in this order; see
/// `desired/schedule.rs`), so a refused create leaves every member where it was and a
/// user moving between groups is never in two at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// The document's version, [`PLAN_FORMAT`]: a reader refuses any other.
    #[schemars(regex(pattern = r"^gate-stp-plan/1$"))]
    pub format: String,
    /// The main account the plan is for.
    pub main_user_id: i64,
    /// [`LiveState::fingerprint`] of the state the plan was computed from: 128 lowercase
    /// hex digits (SHA-512).
    #[schemars(regex(pattern = r"^[0-9a-f]{128}$"))]
    pub live_fingerprint: String,
    /// Every declared group, in file order.
    pub groups: Vec<GroupChange>,
    /// Live groups the file does not declare, by id.
    pub unmanaged: Vec<UnmanagedGroup>,
    /// The requests, in the order they are sent.
    pub steps: Vec<Step>,
    /// Login names of the users the plan mentions, for display.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub login_names: BTreeMap<i64, String>,
    /// Group names (declared or live) a reviewer could misread: look-alikes and mixed
    /// scripts. Warnings, not refusals; computed from the names, never taken from a saved
    /// file (a reader computes them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<NameWarning>,
}

/// Why a saved plan could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    /// Not JSON, or not the shape of a plan.
    #[error("{file}:{line}:{column}: not a saved plan: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The text is larger than [`MAX_PLAN_BYTES`](super::MAX_PLAN_BYTES); not parsed.
    #[error("{file}: the saved plan is {oversized}; nothing was read further")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size and the limit.
        oversized: super::Oversized,
    },
    /// A plan of another format version (older or newer than this crate's).
    #[error(
        "{file}: a saved plan of format {}, but this gate-stp reads format {PLAN_FORMAT:?} only; \
         plan again with this version and save that plan to apply it",
        crate::text::Quoted(found)
    )]
    Format {
        /// The file.
        file: String,
        /// The format found.
        found: String,
    },
}

impl Plan {
    /// Compares `live` (the state of `desired.main_user_id`'s account, as `Proposal`
    /// reads it) with `desired` and lists the requests that converge them. Pure: no
    /// I/O. Refuses (with every problem found) a file that cannot be applied safely: see
    /// [`Problem`].
    pub fn compute(live: &LiveState, desired: &DesiredState) -> Result<Plan, PlanError> {
        // That `live` is the file's account is the read's refusal
        // (`ReadError::KeyOfAnotherAccount`), made in one place. A plan computed here from
        // another account's state still cannot be sent: it is for the file's account (the
        // read for it refuses any other key) and its fingerprint covers the account it was
        // computed from (so the file's account's state never matches it: stale).
        let mut problems = validate::check(desired);
        if !problems.is_empty() {
            return Err(PlanError { problems });
        }
        let resolved = resolve(live, desired, &mut problems);
        let matched = match_groups(live, desired, &mut problems);
        let managed: BTreeSet<i64> = matched.iter().flatten().map(|group| group.id).collect();
        let unmanaged: Vec<UnmanagedGroup> = live
            .groups
            .iter()
            .filter(|group| !managed.contains(&group.id))
            .map(|group| UnmanagedGroup {
                id: group.id,
                name: group.name.clone(),
                members: sorted(group.members.iter().copied()),
            })
            .collect();
        check_unmanaged_members(desired, &resolved, &unmanaged, &mut problems);

        let mut changes = Vec::with_capacity(desired.groups.len());
        for ((declared, live_group), members) in desired.groups.iter().zip(&matched).zip(&resolved)
        {
            let wanted: BTreeSet<i64> = members.iter().map(|(_, id)| *id).collect();
            let change = diff(declared, *live_group, &wanted);
            if declared.protect && !change.remove.is_empty() {
                problems.push(Problem::ProtectedRemoval {
                    group: declared.name.clone(),
                    members: change.remove.clone(),
                });
            }
            changes.push(change);
        }
        if !problems.is_empty() {
            return Err(PlanError { problems });
        }

        let steps = steps(&changes, live);
        let mentioned: BTreeSet<i64> = changes
            .iter()
            .flat_map(|change| change.add.iter().chain(&change.remove))
            .chain(unmanaged.iter().flat_map(|group| &group.members))
            .copied()
            .collect();
        let login_names = mentioned
            .into_iter()
            .filter_map(|id| live.login_name(id).map(|name| (id, name.to_owned())))
            .collect();
        let mut plan = Plan {
            format: PLAN_FORMAT.to_owned(),
            main_user_id: desired.main_user_id,
            live_fingerprint: live.fingerprint(),
            groups: changes,
            unmanaged,
            steps,
            login_names,
            warnings: Vec::new(),
        };
        plan.warnings = plan.name_warnings();
        Ok(plan)
    }

    /// Whether the plan sends nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Groups the plan creates.
    pub fn creates(&self) -> usize {
        self.groups
            .iter()
            .filter(|group| group.action == Action::Create)
            .count()
    }

    /// Users the plan adds, over all groups.
    pub fn additions(&self) -> usize {
        self.groups.iter().map(|group| group.add.len()).sum()
    }

    /// Users the plan's steps remove, over all groups (counted from the steps: what is sent).
    pub fn removals(&self) -> usize {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Remove { user_ids, .. } => user_ids.len(),
                _ => 0,
            })
            .sum()
    }

    /// The plan as JSON, to save (`--out`) or for programs (`--json`).
    pub fn to_json_string(&self) -> String {
        let mut text =
            crate::text::terminal_safe_json(serde_json::to_string_pretty(self).unwrap_or_default());
        text.push('\n');
        text
    }

    /// Reads a saved plan (at most [`MAX_PLAN_BYTES`](super::MAX_PLAN_BYTES)); `file` names
    /// it in errors.
    ///
    /// The `format` is checked before the shape: a plan of another version may have other
    /// fields, and must be refused as such rather than as a broken file.
    pub fn from_json(text: &str, file: &str) -> Result<Plan, PlanFileError> {
        super::limits::check_text(text, super::MAX_PLAN_BYTES).map_err(|oversized| {
            PlanFileError::TooLarge {
                file: file.to_owned(),
                oversized,
            }
        })?;
        let syntax = |error: serde_json::Error| PlanFileError::Syntax {
            file: file.to_owned(),
            line: error.line().max(1),
            column: error.column().max(1),
            message: error.to_string(),
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(syntax)?;
        match value.get("format") {
            Some(serde_json::Value::String(found)) if found != PLAN_FORMAT => {
                return Err(PlanFileError::Format {
                    file: file.to_owned(),
                    found: found.clone(),
                });
            }
            _ => {}
        }
        // Parsed again from the text rather than from `value`: serde_json reports line and
        // column only when reading text.
        let mut plan: Plan = serde_json::from_str(text).map_err(syntax)?;
        // A file's own warnings are not trusted: an edit could have removed them.
        plan.warnings = plan.name_warnings();
        Ok(plan)
    }

    /// The warnings about the plan's group names: every declared group and every live
    /// group the file does not manage (the managed live groups carry the declared names).
    fn name_warnings(&self) -> Vec<NameWarning> {
        let declared = self.groups.iter().map(|group| group.name.as_str());
        let unmanaged = self.unmanaged.iter().map(|group| group.name.as_str());
        name_warnings(declared.chain(unmanaged))
    }

    /// The JSON Schema of the plan document (`plan --json`, `plan --out`), generated from
    /// these types; `docs/plan.schema.json` is this text, checked in.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Plan);
        // A schema of plain structs always serializes.
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Whether `text` looks like a saved plan rather than a desired-state file (a JSON
    /// object with a `format` key).
    pub fn looks_like_saved_plan(text: &str) -> bool {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .is_ok_and(|object| object.contains_key("format"))
    }
}

fn sorted(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    ids.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Each group's members as user ids (with the member as written, for messages).
fn resolve(
    live: &LiveState,
    desired: &DesiredState,
    problems: &mut Vec<Problem>,
) -> Vec<Vec<(String, i64)>> {
    let ours: BTreeSet<i64> = std::iter::once(live.main_user_id)
        .chain(live.sub_accounts.iter().map(|account| account.user_id))
        .collect();
    let mut logins: HashMap<&str, Vec<i64>> = HashMap::new();
    for account in &live.sub_accounts {
        if let Some(login) = &account.login_name {
            logins
                .entry(login.as_str())
                .or_default()
                .push(account.user_id);
        }
    }
    let mut owner: HashMap<i64, &str> = HashMap::new();
    let mut resolved = Vec::with_capacity(desired.groups.len());
    for group in &desired.groups {
        let name = group.name.as_str();
        let mut ids: Vec<(String, i64)> = Vec::with_capacity(group.members.len());
        for member in &group.members {
            let written = member.to_string();
            let id = match member {
                Member::Id(id) if ours.contains(id) => *id,
                Member::Login(login) => match logins.get(login.as_str()).map(Vec::as_slice) {
                    Some([id]) => *id,
                    // No list is empty (an entry is made by its first push); the pattern
                    // says so rather than a guard that could never be false.
                    None | Some([]) => {
                        problems.push(not_ours(name, written, live));
                        continue;
                    }
                    Some(several) => {
                        problems.push(Problem::AmbiguousLogin {
                            group: name.to_owned(),
                            login: login.clone(),
                            user_ids: several.to_vec(),
                        });
                        continue;
                    }
                },
                Member::Id(_) => {
                    problems.push(not_ours(name, written, live));
                    continue;
                }
            };
            if ids.iter().any(|(_, seen)| *seen == id) {
                problems.push(Problem::DuplicateMember {
                    group: name.to_owned(),
                    member: format!("{written} (user {id})"),
                });
                continue;
            }
            // `other` is another group: a repeat within this group was skipped above, and
            // two groups of one name never get here (`validate::check` refuses them first).
            if let Some(other) = owner.insert(id, name) {
                problems.push(Problem::UserInTwoGroups {
                    member: format!("{written} (user {id})"),
                    group: other.to_owned(),
                    other: name.to_owned(),
                });
            }
            ids.push((written, id));
        }
        resolved.push(ids);
    }
    resolved
}

fn not_ours(group: &str, member: String, live: &LiveState) -> Problem {
    Problem::NotOurs {
        group: group.to_owned(),
        member,
        main_user_id: live.main_user_id,
    }
}

/// The live group each declared group stands for (`None`: to be created).
fn match_groups<'l>(
    live: &'l LiveState,
    desired: &DesiredState,
    problems: &mut Vec<Problem>,
) -> Vec<Option<&'l LiveGroup>> {
    desired
        .groups
        .iter()
        .map(|group| match group.id {
            Some(id) => match live.group(id) {
                Some(found) if found.name == group.name => Some(found),
                Some(found) => {
                    problems.push(Problem::PinNamesAnotherGroup {
                        group: group.name.clone(),
                        id,
                        live_name: found.name.clone(),
                    });
                    None
                }
                None => {
                    problems.push(Problem::PinNotFound {
                        group: group.name.clone(),
                        id,
                    });
                    None
                }
            },
            None => {
                // Exact, case-sensitive comparison: Gate's own name filter is fuzzy.
                let same_name: Vec<&LiveGroup> = live
                    .groups
                    .iter()
                    .filter(|candidate| candidate.name == group.name)
                    .collect();
                match same_name.as_slice() {
                    [] => None,
                    [one] => Some(*one),
                    several => {
                        problems.push(Problem::AmbiguousName {
                            group: group.name.clone(),
                            ids: sorted(several.iter().map(|g| g.id)),
                        });
                        None
                    }
                }
            }
        })
        .collect()
}

fn check_unmanaged_members(
    desired: &DesiredState,
    resolved: &[Vec<(String, i64)>],
    unmanaged: &[UnmanagedGroup],
    problems: &mut Vec<Problem>,
) {
    for (group, members) in desired.groups.iter().zip(resolved) {
        for (written, id) in members {
            if let Some(other) = unmanaged.iter().find(|u| u.members.contains(id)) {
                problems.push(Problem::InUnmanagedGroup {
                    group: group.name.clone(),
                    member: written.clone(),
                    other: other.name.clone(),
                    other_id: other.id,
                });
            }
        }
    }
}

fn diff(declared: &DesiredGroup, live: Option<&LiveGroup>, wanted: &BTreeSet<i64>) -> GroupChange {
    let current: BTreeSet<i64> = live
        .map(|group| group.members.iter().copied().collect())
        .unwrap_or_default();
    let add = sorted(wanted.difference(&current).copied());
    let remove = sorted(current.difference(wanted).copied());
    let action = match live {
        None => Action::Create,
        Some(_) if add.is_empty() && remove.is_empty() => Action::Unchanged,
        Some(_) => Action::Change,
    };
    GroupChange {
        name: declared.name.clone(),
        id: live.map(|group| group.id),
        action,
        add,
        remove,
        members_after: wanted.iter().copied().collect(),
    }
}

/// The requests that carry out `changes` on `live`, in the order they are sent.
pub(super) fn steps(changes: &[GroupChange], live: &LiveState) -> Vec<Step> {
    let mut members: Vec<BTreeSet<i64>> = changes
        .iter()
        .map(|change| {
            change
                .id
                .and_then(|id| live.group(id))
                .map(|group| group.members.iter().copied().collect())
                .unwrap_or_default()
        })
        .collect();
    let mut steps = Vec::new();
    for change in changes.iter().filter(|c| c.action == Action::Create) {
        steps.push(Step::Create {
            group: change.name.clone(),
        });
    }
    for (change, current) in changes.iter().zip(&mut members) {
        let Some(stp_id) = change.id else { continue };
        for batch in change.remove.chunks(MAX_IDS_PER_REQUEST) {
            for id in batch {
                current.remove(id);
            }
            steps.push(Step::Remove {
                group: change.name.clone(),
                stp_id,
                user_ids: batch.to_vec(),
                expected_members: current.iter().copied().collect(),
            });
        }
    }
    for (change, current) in changes.iter().zip(&mut members) {
        for batch in change.add.chunks(MAX_IDS_PER_REQUEST) {
            current.extend(batch);
            steps.push(Step::Add {
                group: change.name.clone(),
                stp_id: change.id,
                user_ids: batch.to_vec(),
                expected_members: current.iter().copied().collect(),
            });
        }
    }
    steps
}
