//! Sending a checked plan: one request at a time, each answer checked, and a stop with a
//! report at the first surprise.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

use super::{
    live::StpAdmin,
    model::LiveState,
    plan::{Plan, Step},
};
use crate::{
    Error,
    text::{Ids, Quoted},
};

/// How many times the groups are listed after a create without a definite answer (a
/// timeout, a dropped connection, a 5xx) before concluding that Gate did not create it.
///
/// A create whose connection dropped may still be executing when the first listing
/// arrives, so one empty listing is no proof: concluding "not created" too early stops an
/// apply that could have gone on and tells the operator that a group about to appear does
/// not exist (a run sent again before it lands creates a second one). Four listings
/// [`LOST_CREATE_INTERVAL`] apart bound the wait to three seconds, longer than a request
/// normally spends inside Gate (our reading: Gate does not document it), short enough that
/// an apply that really failed says so promptly.
pub const LOST_CREATE_LISTINGS: u32 = 4;

/// The pause between two listings of [`LOST_CREATE_LISTINGS`].
pub const LOST_CREATE_INTERVAL: Duration = Duration::from_secs(1);

/// The longest wait for a lost create: the pauses between its listings.
fn lost_create_wait() -> Duration {
    LOST_CREATE_INTERVAL.saturating_mul(LOST_CREATE_LISTINGS.saturating_sub(1))
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

/// Sends the steps of a plan checked against `live` in order, one request at a time. After
/// each add or remove compares Gate's member list with the plan's; stops at the first
/// difference or error. A create whose outcome is unknown is settled by
/// [`settle_lost_create`]; it is never sent twice.
///
/// Only `Checked::send` calls this, right after its re-check: the refusals are not repeated
/// here. Kept apart so that another schedule (a dependency graph) can replace this loop
/// without touching the refusals.
pub(super) async fn send_steps<A: StpAdmin>(
    admin: &A,
    plan: &Plan,
    live: &LiveState,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, Box<StopReport>> {
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
            return Err(Box::new(StopReport {
                done: plan.steps[..index].to_vec(),
                failed: step.clone(),
                reason,
                remaining: plan.steps[index + 1..].to_vec(),
                created: report.created,
            }));
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
    match settle_lost_create(admin, name, main_user_id, known).await {
        Listed::Found(stp_id) => {
            report.created.insert(name.to_owned(), stp_id);
            report.adopted.push(name.to_owned());
            progress(Progress::Adopted {
                group: name,
                stp_id,
            });
            Ok(())
        }
        Listed::Nothing => Err(StopReason::CreateUnresolved {
            error,
            finding: format!(
                "listing again {LOST_CREATE_LISTINGS} times over {} s shows no such group, so Gate has not created it; a create is never repeated automatically: run apply again (it plans afresh, and adopts the group if it has appeared by then)",
                lost_create_wait().as_secs()
            ),
        }),
        Listed::Several(ids) => Err(StopReason::CreateUnresolved {
            error,
            finding: format!(
                "listing again shows several new groups with this name (ids {}); pin one with `id` in the file",
                Ids(&ids)
            ),
        }),
        Listed::Failed(list_error) => Err(StopReason::CreateUnresolved {
            error,
            finding: format!(
                "listing the groups to check failed too ({list_error}); run `plan` before anything else"
            ),
        }),
    }
}

/// What listing the groups again after a lost create found.
enum Listed {
    /// Exactly one new group of that name, created by the account: adopt it.
    Found(i64),
    /// No such group in any listing.
    Nothing,
    /// Several candidates: which one is ours cannot be told.
    Several(Vec<i64>),
    /// The last listing failed (earlier ones, if any, showed nothing).
    Failed(Error),
}

/// Lists the groups up to [`LOST_CREATE_LISTINGS`] times, [`LOST_CREATE_INTERVAL`] apart,
/// until a group named `name`, created by `main_user_id` and not among `known` (the groups
/// read before sending), appears.
async fn settle_lost_create<A: StpAdmin>(
    admin: &A,
    name: &str,
    main_user_id: i64,
    known: &BTreeSet<i64>,
) -> Listed {
    let mut finding = Listed::Nothing;
    for listing in 0..LOST_CREATE_LISTINGS {
        if listing > 0 {
            tokio::time::sleep(LOST_CREATE_INTERVAL).await;
        }
        finding = match admin.groups().await {
            Err(list_error) => Listed::Failed(list_error),
            Ok(groups) => {
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
                    [] => Listed::Nothing,
                    [stp_id] => return Listed::Found(*stp_id),
                    _ => return Listed::Several(candidates),
                }
            }
        };
    }
    finding
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
