//! Sending a checked plan: independent steps side by side in the order of
//! [`schedule`](super::schedule), each answer checked, and a stop with a report at the
//! first surprise.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};

use super::{
    live::StpAdmin,
    model::LiveState,
    plan::{Plan, Step},
    schedule::{APPLY_CONCURRENCY, Schedule, Status},
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
///
/// Independent steps are in flight side by side, so events of several steps interleave: a
/// step's `Sending` may be followed by other steps' events before its `Done`. `index` (the
/// step's position in the plan) tells them apart.
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
///
/// Every step of the plan is in exactly one of `done`, `failed`, `also_failed` and
/// `remaining`.
#[derive(Debug)]
pub struct StopReport {
    /// Steps sent and confirmed, in plan order. Besides the steps before the failure, these
    /// can be steps after it in the plan that did not depend on it and were in flight or
    /// answered when it failed.
    pub done: Vec<Step>,
    /// The step whose failure stopped the apply (the first answered with a failure).
    pub failed: Step,
    /// The position of `failed` in the plan, from 0 (as in [`Progress`]).
    pub at: usize,
    /// Why.
    pub reason: StopReason,
    /// Other steps that were in flight when `failed` failed and failed too, in the order
    /// they were answered.
    pub also_failed: Vec<(Step, StopReason)>,
    /// Steps not sent, in plan order: those depending on a failed step, and every step not
    /// started before the first failure (nothing new starts after it).
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
        let total = self.done.len() + 1 + self.also_failed.len() + self.remaining.len();
        write!(
            f,
            "apply stopped at step {} of {total} ({}): {}",
            self.at + 1,
            self.failed,
            self.reason
        )?;
        for step in &self.done {
            write!(f, "\n  done:     {step}")?;
        }
        write!(f, "\n  FAILED:   {}", self.failed)?;
        for (step, reason) in &self.also_failed {
            write!(f, "\n  FAILED:   {step}: {reason}")?;
        }
        for step in &self.remaining {
            write!(f, "\n  not sent: {step}")?;
        }
        write!(
            f,
            "\nRun `plan` again to see what is left; `apply` reads the live state afresh and continues."
        )
    }
}

/// Sends the steps of a plan checked against `live`, independent steps side by side (see
/// [`schedule`](super::schedule): a step waits for the steps it depends on, at most
/// [`APPLY_CONCURRENCY`] in flight per endpoint). After each add or remove compares Gate's
/// member list with the plan's. At the first difference or error nothing new starts; the
/// steps already in flight are answered and reported (they were sent: the report must say
/// what they did). A create whose outcome is unknown is settled by [`settle_lost_create`];
/// it is never sent twice.
///
/// Only `Checked::send` calls this, right after its re-check: the refusals are not repeated
/// here.
pub(super) async fn send_steps<A: StpAdmin>(
    admin: &A,
    plan: &Plan,
    live: &LiveState,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ApplyReport, Box<StopReport>> {
    let total = plan.steps.len();
    let known: BTreeSet<i64> = live.groups.iter().map(|group| group.id).collect();
    let known = &known;
    let main_user_id = plan.main_user_id;
    let mut report = ApplyReport::default();
    let mut schedule = Schedule::new(&plan.steps, APPLY_CONCURRENCY);
    let mut failures: Vec<(usize, StopReason)> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while let Some(index) = schedule.start_next() {
            let step = &plan.steps[index];
            progress(Progress::Sending { index, total, step });
            // The group's create, if the plan makes it, is confirmed by now: an add depends
            // on it (the schedule's same-group order).
            let created = report.created.get(step.group()).copied();
            in_flight.push(async move {
                let outcome = send_one(admin, step, created, main_user_id, known).await;
                (index, outcome)
            });
        }
        let Some((index, outcome)) = in_flight.next().await else {
            break;
        };
        let step = &plan.steps[index];
        match outcome {
            Ok(Confirmed::Changed) => {}
            Ok(Confirmed::Created { stp_id, adopted }) => {
                report.created.insert(step.group().to_owned(), stp_id);
                if adopted {
                    report.adopted.push(step.group().to_owned());
                    progress(Progress::Adopted {
                        group: step.group(),
                        stp_id,
                    });
                }
            }
            Err(reason) => {
                schedule.failed(index);
                failures.push((index, reason));
                continue;
            }
        }
        schedule.confirmed(index);
        report.steps_done += 1;
        progress(Progress::Done { index, total, step });
    }
    let mut failures = failures.into_iter();
    let Some((at, reason)) = failures.next() else {
        return Ok(report);
    };
    let steps_with = |wanted: Status| -> Vec<Step> {
        schedule
            .status()
            .iter()
            .zip(&plan.steps)
            .filter(|(status, _)| **status == wanted)
            .map(|(_, step)| step.clone())
            .collect()
    };
    Err(Box::new(StopReport {
        done: steps_with(Status::Done),
        failed: plan.steps[at].clone(),
        at,
        reason,
        also_failed: failures
            .map(|(index, reason)| (plan.steps[index].clone(), reason))
            .collect(),
        remaining: steps_with(Status::NotSent),
        created: report.created,
    }))
}

/// What a confirmed step did.
enum Confirmed {
    /// An add or remove answered with the expected members.
    Changed,
    /// A create answered with the group (or, its answer lost, the group found by listing).
    Created { stp_id: i64, adopted: bool },
}

/// Sends one step: one request (a lost create adds listings, never a second create).
/// `created` is the id of the step's group if this apply created it.
async fn send_one<A: StpAdmin>(
    admin: &A,
    step: &Step,
    created: Option<i64>,
    main_user_id: i64,
    known: &BTreeSet<i64>,
) -> Result<Confirmed, StopReason> {
    match step {
        Step::Create { group } => create(admin, group, main_user_id, known).await,
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
            stp_id,
            user_ids,
            expected_members,
            ..
        } => match stp_id.or(created) {
            Some(stp_id) => {
                let answer = admin.add_members(stp_id, user_ids).await;
                compare(answer, expected_members)
            }
            None => Err(StopReason::NoGroupId),
        },
    }
}

fn compare(answer: Result<Vec<i64>, Error>, expected: &[i64]) -> Result<Confirmed, StopReason> {
    let got: BTreeSet<i64> = answer.map_err(StopReason::Request)?.into_iter().collect();
    let expected_set: BTreeSet<i64> = expected.iter().copied().collect();
    if got == expected_set {
        Ok(Confirmed::Changed)
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
) -> Result<Confirmed, StopReason> {
    let error = match admin.create_group(name).await {
        Ok(group) if group.name == name => {
            return Ok(Confirmed::Created {
                stp_id: group.id,
                adopted: false,
            });
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
        Listed::Found(stp_id) => Ok(Confirmed::Created {
            stp_id,
            adopted: true,
        }),
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
