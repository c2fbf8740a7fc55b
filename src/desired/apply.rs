//! Applying a plan: refusals before anything is sent, then one request at a time, each
//! answer checked, and a stop with a report at the first surprise.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use super::{
    live::{StpAdmin, read_live},
    model::{DesiredState, LiveState},
    plan::{Plan, PlanError, Step, steps},
    validate::{Ids, Quoted},
};
use crate::Error;

/// Default of [`ApplyOptions::max_removals`]: a run removes at most this many members.
///
/// Removing a member silently turns self-trade prevention off for that user's new orders,
/// so a file that lost a few lines by mistake must not strip a desk. Ten covers everyday
/// changes (a bot or two leaving); larger clean-ups say so with a higher limit.
pub const DEFAULT_MAX_REMOVALS: usize = 10;

/// Settings of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Refuse, before sending anything, a plan removing more members than this.
    pub max_removals: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            max_removals: DEFAULT_MAX_REMOVALS,
        }
    }
}

/// What an apply reports while it runs (the CLI shows it on a terminal).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// About to send step `index` (0-based) of `total`.
    Sending {
        /// Position of the step, from 0.
        index: usize,
        /// Number of steps.
        total: usize,
        /// The step.
        step: &'a Step,
    },
    /// Step `index` done; Gate's answer was as expected.
    Done {
        /// Position of the step, from 0.
        index: usize,
        /// Number of steps.
        total: usize,
        /// The step.
        step: &'a Step,
    },
    /// A create's answer was lost; listing again found the group, which is adopted.
    Adopted {
        /// The group's name.
        group: &'a str,
        /// Its id.
        stp_id: i64,
    },
}

/// A successful apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Requests sent and confirmed.
    pub steps_done: usize,
    /// Groups created, by name, with their ids.
    pub created: BTreeMap<String, i64>,
    /// Groups whose create answer was lost and that were found by listing again.
    pub adopted: Vec<String>,
}

/// Why an apply stopped after sending something: what was done, what failed, what is left.
/// Running apply again (it reads the live state afresh) continues from there.
#[derive(Debug)]
pub struct StopReport {
    /// Steps sent and confirmed, in order.
    pub done: Vec<Step>,
    /// The step that failed.
    pub failed: Step,
    /// Why.
    pub reason: StopReason,
    /// Steps not sent.
    pub remaining: Vec<Step>,
    /// Groups created (or adopted) before the stop.
    pub created: BTreeMap<String, i64>,
}

/// Why a step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// The request failed.
    Request(Error),
    /// Gate's member list after the change is not the one the plan expected (someone else
    /// changed the group, or Gate did not do what was asked).
    Diverged {
        /// What the plan expected, ascending.
        expected: Vec<i64>,
        /// What Gate answered, ascending.
        got: Vec<i64>,
    },
    /// A create failed without a definite answer and listing again did not settle it:
    /// no group to adopt (the create did not happen: never retried automatically), several
    /// candidates, or the listing failed.
    CreateUnresolved {
        /// The create's error.
        error: Error,
        /// What listing again found.
        finding: String,
    },
    /// A create was answered with a group of another name.
    UnexpectedGroup {
        /// The name Gate answered with.
        name: String,
        /// The id Gate answered with.
        stp_id: i64,
    },
    /// An add targets a group the plan should have created earlier (a hand-edited plan).
    NoGroupId,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Request(error) => write!(f, "{error}"),
            StopReason::Diverged { expected, got } => write!(
                f,
                "Gate answered members [{}], the plan expected [{}]",
                Ids(got),
                Ids(expected)
            ),
            StopReason::CreateUnresolved { error, finding } => {
                write!(f, "no definite answer ({error}); {finding}")
            }
            StopReason::UnexpectedGroup { name, stp_id } => {
                write!(f, "Gate answered with group {} (id {stp_id})", Quoted(name))
            }
            StopReason::NoGroupId => f.write_str("the plan never created this group"),
        }
    }
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.done.len() + 1 + self.remaining.len();
        write!(
            f,
            "apply stopped at step {} of {total} ({}): {}",
            self.done.len() + 1,
            self.failed,
            self.reason
        )?;
        for step in &self.done {
            write!(f, "\n  done:     {step}")?;
        }
        write!(f, "\n  FAILED:   {}", self.failed)?;
        for step in &self.remaining {
            write!(f, "\n  not sent: {step}")?;
        }
        write!(
            f,
            "\nRun `plan` again to see what is left; `apply` reads the live state afresh and continues."
        )
    }
}

/// Everything that stops an apply (or reading the live state for one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The API key belongs to another account than the file's (or plan's) main account.
    /// Nothing but `GET /account/detail` was sent.
    #[error(
        "the API key belongs to account {key_user_id}, but the file is for main account {main_user_id}; nothing was changed"
    )]
    KeyOfAnotherAccount {
        /// The key's account.
        key_user_id: i64,
        /// The file's main account.
        main_user_id: i64,
    },
    /// The file cannot be planned against the live state. Nothing was changed.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The saved plan was computed from another live state. Nothing was changed.
    #[error(
        "stale plan: the live state changed since the plan was computed (plan {}, live now {}); nothing was changed, compute the plan again",
        short(planned),
        short(live)
    )]
    StalePlan {
        /// The fingerprint the plan was computed from.
        planned: String,
        /// The live state's fingerprint now.
        live: String,
    },
    /// A saved plan whose requests are not the ones its group changes describe (edited by
    /// hand, or damaged): what it shows is not what it would send. Nothing was changed.
    #[error(
        "the saved plan's steps do not match its group changes (was it edited?); nothing was changed, compute the plan again"
    )]
    InconsistentPlan,
    /// The plan removes more members than allowed. Nothing was changed.
    #[error(
        "the plan removes {removals} members, more than the limit of {max}; nothing was changed (raise it with --max-removals if this is intended)"
    )]
    TooManyRemovals {
        /// Members the plan removes.
        removals: usize,
        /// The limit.
        max: usize,
    },
    /// Reading the live state failed. Nothing was changed.
    #[error("reading the live state: {0}")]
    Read(#[source] Error),
    /// Some requests were sent, then one failed or Gate's answer diverged.
    #[error("{0}")]
    Stopped(Box<StopReport>),
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

impl ApplyError {
    /// Whether nothing that changes state was sent.
    pub fn nothing_changed(&self) -> bool {
        !matches!(self, ApplyError::Stopped(_))
    }
}

/// Reads the live state (refusing a key of another account first) and computes the plan
/// for `desired`. Sends only reads.
pub async fn plan<A: StpAdmin>(
    admin: &A,
    desired: &DesiredState,
) -> Result<(LiveState, Plan), ApplyError> {
    let live = read_live(admin, Some(desired.main_user_id)).await?;
    let plan = Plan::compute(&live, desired)?;
    Ok((live, plan))
}

/// Applies a plan computed from `live`, which the caller has just read with
/// [`read_live`]: refuses a stale plan, a key of another account or too many removals
/// before anything is sent, then sends the steps one by one (see [`apply_steps`]).
pub async fn apply<A: StpAdmin>(
    admin: &A,
    plan: &Plan,
    live: &LiveState,
    options: ApplyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, ApplyError> {
    check(plan, live, options)?;
    apply_steps(admin, plan, live, progress).await
}

/// The refusals that come before anything is sent: the key's account, a stale plan, and
/// the removal limit.
pub fn check(plan: &Plan, live: &LiveState, options: ApplyOptions) -> Result<(), ApplyError> {
    if plan.main_user_id != live.main_user_id {
        return Err(ApplyError::KeyOfAnotherAccount {
            key_user_id: live.main_user_id,
            main_user_id: plan.main_user_id,
        });
    }
    let now = live.fingerprint();
    if plan.live_fingerprint != now {
        return Err(ApplyError::StalePlan {
            planned: plan.live_fingerprint.clone(),
            live: now,
        });
    }
    // What a plan shows (its group changes) and what it sends (its steps) must agree: a
    // saved plan is a file anyone can edit, and the fingerprint covers only the live state.
    if plan.steps != steps(&plan.groups, live) {
        return Err(ApplyError::InconsistentPlan);
    }
    let removals = plan.removals();
    if removals > options.max_removals {
        return Err(ApplyError::TooManyRemovals {
            removals,
            max: options.max_removals,
        });
    }
    Ok(())
}

/// Reads the live state and applies `desired`: plan, refusals, then the steps.
pub async fn apply_desired<A: StpAdmin>(
    admin: &A,
    desired: &DesiredState,
    options: ApplyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(Plan, ApplyReport), ApplyError> {
    let (live, plan) = self::plan(admin, desired).await?;
    let report = apply(admin, &plan, &live, options, progress).await?;
    Ok((plan, report))
}

/// Reads the live state and applies a saved plan, refusing it if the state changed since.
pub async fn apply_saved<A: StpAdmin>(
    admin: &A,
    plan: &Plan,
    options: ApplyOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, ApplyError> {
    let live = read_live(admin, Some(plan.main_user_id)).await?;
    apply(admin, plan, &live, options, progress).await
}

/// Sends the steps in order without the refusals of [`check`]. After each add or remove
/// compares Gate's member list with the plan's; stops at the first difference or error.
/// A create whose outcome is unknown is settled by listing the groups again and adopting
/// the one with the exact name created by this account; it is never sent twice.
pub async fn apply_steps<A: StpAdmin>(
    admin: &A,
    plan: &Plan,
    live: &LiveState,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, ApplyError> {
    let total = plan.steps.len();
    let known: BTreeSet<i64> = live.groups.iter().map(|group| group.id).collect();
    let mut report = ApplyReport::default();
    for (index, step) in plan.steps.iter().enumerate() {
        progress(Progress::Sending { index, total, step });
        let outcome = match step {
            Step::Create { group } => {
                create(
                    admin,
                    group,
                    plan.main_user_id,
                    &known,
                    &mut report,
                    progress,
                )
                .await
            }
            Step::Remove {
                stp_id,
                user_ids,
                expected_members,
                ..
            } => {
                let answer = admin.remove_members(*stp_id, user_ids).await;
                compare(answer, expected_members)
            }
            Step::Add {
                group,
                stp_id,
                user_ids,
                expected_members,
            } => match stp_id.or_else(|| report.created.get(group).copied()) {
                Some(stp_id) => {
                    let answer = admin.add_members(stp_id, user_ids).await;
                    compare(answer, expected_members)
                }
                None => Err(StopReason::NoGroupId),
            },
        };
        if let Err(reason) = outcome {
            return Err(ApplyError::Stopped(Box::new(StopReport {
                done: plan.steps[..index].to_vec(),
                failed: step.clone(),
                reason,
                remaining: plan.steps[index + 1..].to_vec(),
                created: report.created,
            })));
        }
        report.steps_done += 1;
        progress(Progress::Done { index, total, step });
    }
    Ok(report)
}

fn compare(answer: Result<Vec<i64>, Error>, expected: &[i64]) -> Result<(), StopReason> {
    let got: BTreeSet<i64> = answer.map_err(StopReason::Request)?.into_iter().collect();
    let expected_set: BTreeSet<i64> = expected.iter().copied().collect();
    if got == expected_set {
        Ok(())
    } else {
        Err(StopReason::Diverged {
            expected: expected_set.into_iter().collect(),
            got: got.into_iter().collect(),
        })
    }
}

async fn create<A: StpAdmin>(
    admin: &A,
    name: &str,
    main_user_id: i64,
    known: &BTreeSet<i64>,
    report: &mut ApplyReport,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(), StopReason> {
    let error = match admin.create_group(name).await {
        Ok(group) if group.name == name => {
            report.created.insert(name.to_owned(), group.id);
            return Ok(());
        }
        Ok(group) => {
            return Err(StopReason::UnexpectedGroup {
                name: group.name,
                stp_id: group.id,
            });
        }
        Err(error) if !outcome_unknown(&error) => return Err(StopReason::Request(error)),
        Err(error) => error,
    };
    // The create may or may not have happened. Never create again: look.
    let groups = match admin.groups().await {
        Ok(groups) => groups,
        Err(list_error) => {
            return Err(StopReason::CreateUnresolved {
                error,
                finding: format!(
                    "listing the groups to check failed too ({list_error}); run `plan` before anything else"
                ),
            });
        }
    };
    let candidates: Vec<i64> = groups
        .iter()
        .filter(|group| {
            group.name == name
                && group.creator_id == Some(main_user_id)
                && !known.contains(&group.id)
        })
        .map(|group| group.id)
        .collect();
    match candidates.as_slice() {
        [stp_id] => {
            report.created.insert(name.to_owned(), *stp_id);
            report.adopted.push(name.to_owned());
            progress(Progress::Adopted {
                group: name,
                stp_id: *stp_id,
            });
            Ok(())
        }
        [] => Err(StopReason::CreateUnresolved {
            error,
            finding: "listing again shows no such group, so Gate has not created it; a create is never repeated automatically: run apply again (it plans afresh, and adopts the group if it has appeared by then)".to_owned(),
        }),
        several => Err(StopReason::CreateUnresolved {
            error,
            finding: format!(
                "listing again shows several new groups with this name (ids {}); pin one with `id` in the file",
                Ids(several)
            ),
        }),
    }
}

/// Whether a failed request may still have been executed: no answer (transport error,
/// timeout), or a server-side failure that is not a definite refusal.
pub fn outcome_unknown(error: &Error) -> bool {
    match error {
        Error::Timeout(_) | Error::Transport(_) => true,
        Error::Api(api) => api.status.is_server_error(),
        Error::UnexpectedResponse(unexpected) => {
            unexpected.status.is_server_error() || unexpected.status.is_success()
        }
        Error::BodyTooLarge { status, .. } => status.is_success() || status.is_server_error(),
        _ => false,
    }
}
