//! The one way to apply a plan: a [`Proposal`] (a plan and the live state it was checked
//! against, both read together), [`Proposal::check`] (the refusals, before a person is
//! asked), then [`Checked::send`] (a re-read if the read has aged, the refusals again, a
//! fresh listing of the groups before any create, then the requests). The types make the
//! order: steps can only be sent from a [`Checked`], a [`Checked`] can only come from a
//! [`Proposal`] built by reading, and neither can be copied, so one check sends once.
//!
//! ```compile_fail
//! // A check cannot be cloned and sent twice: `Checked` is not `Clone`.
//! fn twice(checked: gate_stp::desired::Checked) -> (gate_stp::desired::Checked, gate_stp::desired::Checked) {
//!     (checked.clone(), checked)
//! }
//! ```
//!
//! ```compile_fail
//! // Nor can the proposal it comes from, which would give two checks.
//! fn twice(proposal: gate_stp::desired::Proposal) -> (gate_stp::desired::Proposal, gate_stp::desired::Proposal) {
//!     (proposal.clone(), proposal)
//! }
//! ```

use std::time::Duration;

use tokio::time::Instant;

use super::{
    live::{ReadError, StpAdmin, read_live},
    model::{DesiredState, GroupInfo, LiveGroup, LiveState},
    plan::{Plan, PlanError, steps},
    send::{ApplyReport, Progress, StopReport, send_steps},
};

/// Default of [`ApplyOptions::max_removals`]: a run removes at most this many members.
///
/// Removing a member silently turns self-trade prevention off for that user's new orders,
/// so a file that lost a few lines by mistake must not strip a desk. Ten covers everyday
/// changes (a bot or two leaving); larger clean-ups say so with a higher limit.
pub const DEFAULT_MAX_REMOVALS: usize = 10;

/// Default of [`ApplyOptions::max_creates`]: a run creates at most this many groups.
///
/// A create is the one change no later apply can undo: Gate has no endpoint that deletes or
/// renames a group. Ten covers everyday changes (a new desk or two, a file for a new
/// account with a handful of groups); a larger setup, or a document that declares
/// thousands of groups by mistake (a generator's bug, an agent's loop), needs a higher
/// limit said out loud.
pub const DEFAULT_MAX_CREATES: usize = 10;

/// Default of [`ApplyOptions::max_read_age`]: two seconds.
///
/// A plan is only as good as the read it was checked against; between that read and the
/// first request, anyone else with a key of the account can change the groups (the case
/// that made a duplicate group: a group created while a confirmation prompt was open).
/// Reading again costs a few requests, so a read this recent is trusted: two seconds cover
/// a plan sent at once by a program, while any wait for a person (seconds to minutes)
/// exceeds it and gets a fresh read.
pub const DEFAULT_MAX_READ_AGE: Duration = Duration::from_secs(2);

/// Settings of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Refuse, before sending anything, a plan removing more members than this.
    pub max_removals: usize,
    /// Refuse, before sending anything, a plan creating more groups than this. See
    /// [`DEFAULT_MAX_CREATES`].
    pub max_creates: usize,
    /// A read older than this when [`Checked::send`] starts is repeated, and the plan
    /// checked again against it, before anything is sent. See [`DEFAULT_MAX_READ_AGE`].
    pub max_read_age: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            max_removals: DEFAULT_MAX_REMOVALS,
            max_creates: DEFAULT_MAX_CREATES,
            max_read_age: DEFAULT_MAX_READ_AGE,
        }
    }
}

impl ApplyOptions {
    /// These options with another removal limit.
    pub fn with_max_removals(mut self, max_removals: usize) -> Self {
        self.max_removals = max_removals;
        self
    }

    /// These options with another limit on the groups an apply creates.
    pub fn with_max_creates(mut self, max_creates: usize) -> Self {
        self.max_creates = max_creates;
        self
    }

    /// These options with another bound on the age of the read a plan is sent against.
    pub fn with_max_read_age(mut self, max_read_age: Duration) -> Self {
        self.max_read_age = max_read_age;
        self
    }
}

/// Everything that stops an apply, from the read of its [`Proposal`] to the last request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The file cannot be planned against the live state. Nothing was changed.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The plan was computed from another live state than the one read now: a saved plan
    /// the account changed since, a change made between a [`Proposal`]'s read and an aged
    /// [`Checked::send`], or a group created or gone between that read and the listing
    /// [`Checked::send`] makes before its first create. Nothing was changed.
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
    /// The plan removes more members than allowed ([`ApplyOptions::max_removals`]).
    /// Nothing was changed.
    #[error(
        "the plan removes {removals} {}, more than the limit of {max}; nothing was changed",
        noun(*removals, "member", "members")
    )]
    TooManyRemovals {
        /// Members the plan removes.
        removals: usize,
        /// The limit.
        max: usize,
    },
    /// The plan creates more groups than allowed ([`ApplyOptions::max_creates`]).
    /// Nothing was changed.
    #[error(
        "the plan creates {creates} {}, more than the limit of {max}; nothing was changed (a group can never be deleted)",
        noun(*creates, "group", "groups")
    )]
    TooManyCreates {
        /// Groups the plan creates.
        creates: usize,
        /// The limit.
        max: usize,
    },
    /// Reading the live state failed or refused the key. Nothing was changed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Some requests were sent, then one failed or Gate's answer diverged.
    #[error("{0}")]
    Stopped(Box<StopReport>),
}

fn noun(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
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

/// A plan together with the live state it was computed or checked against, and when that
/// read finished. Built only by reading; the first step of an apply.
///
/// `Send + Sync + 'static`: it can be kept (for instance between a proposal shown to a
/// person and their answer) and its read's age is accounted for when it is finally sent.
/// Not `Clone`: two copies would give two [`Checked`], and a plan could be sent twice. To
/// show or save the plan, borrow it ([`plan`](Proposal::plan)) or clone the [`Plan`].
#[derive(Debug)]
pub struct Proposal {
    plan: Plan,
    live: LiveState,
    read_at: Instant,
}

impl Proposal {
    /// Reads the live state (refusing a key of another account first) and computes the plan
    /// for `desired`. Sends only reads.
    pub async fn for_desired<A: StpAdmin>(
        admin: &A,
        desired: &DesiredState,
    ) -> Result<Proposal, ApplyError> {
        let live = read_live(admin, Some(desired.main_user_id)).await?;
        let read_at = Instant::now();
        let plan = Plan::compute(&live, desired)?;
        Ok(Proposal {
            plan,
            live,
            read_at,
        })
    }

    /// Reads the live state for a saved plan (refusing a key of another account first).
    /// Whether the plan still fits is [`check`](Proposal::check)'s question. Sends only
    /// reads.
    pub async fn for_saved<A: StpAdmin>(admin: &A, plan: Plan) -> Result<Proposal, ApplyError> {
        let live = read_live(admin, Some(plan.main_user_id)).await?;
        Ok(Proposal {
            plan,
            live,
            read_at: Instant::now(),
        })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The live state the plan is checked against.
    pub fn live(&self) -> &LiveState {
        &self.live
    }

    /// When the read of [`live`](Proposal::live) finished.
    pub fn read_at(&self) -> Instant {
        self.read_at
    }

    /// The plan, for a caller that only wanted to show or save it.
    pub fn into_plan(self) -> Plan {
        self.plan
    }

    /// The refusals that need no request: a stale plan (the live state changed since a
    /// saved plan was computed), a saved plan whose steps are not its changes, more
    /// removals than `options.max_removals` and more creates than `options.max_creates`.
    /// Call it before asking a person, so that a refusal comes before the question.
    pub fn check(self, options: ApplyOptions) -> Result<Checked, ApplyError> {
        check(&self.plan, &self.live, options)?;
        Ok(Checked {
            proposal: self,
            options,
        })
    }
}

/// A [`Proposal`] that passed its [`check`](Proposal::check); the only thing that can send
/// steps. Neither `Clone` nor `Copy`, and [`send`](Checked::send) takes it by value: one
/// check, one send (a create sent twice is a second group, forever).
#[derive(Debug)]
pub struct Checked {
    proposal: Proposal,
    options: ApplyOptions,
}

impl Checked {
    /// The plan that will be sent.
    pub fn plan(&self) -> &Plan {
        &self.proposal.plan
    }

    /// Sends the plan.
    ///
    /// 1. If the read it was checked against finished more than
    ///    [`ApplyOptions::max_read_age`] ago, reads the live state again and checks again.
    /// 2. Whatever the read's age, if the plan creates a group, lists the groups once more
    ///    (one request) right before the first step: a group created (or gone) since the
    ///    read, by anyone, makes the plan stale. This is what catches a group of the same
    ///    name created by someone else while a person was confirming, however quickly they
    ///    answered.
    ///
    /// Either way a plan the live state no longer fits is refused
    /// ([`ApplyError::StalePlan`]) with nothing sent. Then sends the steps, each after the
    /// steps it depends on and independent ones side by side (at most
    /// [`APPLY_CONCURRENCY`](super::APPLY_CONCURRENCY) per endpoint), checking each
    /// answer; at the first surprise nothing new starts, the steps in flight finish, and
    /// the apply stops ([`ApplyError::Stopped`]).
    /// A create whose answer is lost is settled by listing again (see
    /// [`LOST_CREATE_LISTINGS`](super::send::LOST_CREATE_LISTINGS)), never sent twice.
    ///
    /// **The window that remains.** Between that last listing and the create requests
    /// (one round trip, plus the removals a create is scheduled beside), another client can
    /// still create a group of the same name. Gate's API has no conditional write (no
    /// unique names, no "create if absent", no idempotency key, no precondition header),
    /// so no client can close this window; it shrinks from a person's answer (seconds to
    /// minutes) to a request's latency (milliseconds), and the next plan shows two groups
    /// of that name as ambiguous instead of adopting one silently.
    pub async fn send<A: StpAdmin>(
        self,
        admin: &A,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<ApplyReport, ApplyError> {
        let Checked { proposal, options } = self;
        let live = if proposal.read_at.elapsed() > options.max_read_age {
            let fresh = read_live(admin, Some(proposal.plan.main_user_id)).await?;
            check(&proposal.plan, &fresh, options)?;
            fresh
        } else {
            proposal.live
        };
        if proposal.plan.steps.iter().any(super::plan::Step::is_create) {
            let listed = admin
                .groups()
                .await
                .map_err(|error| ApplyError::Read(ReadError::Request(error)))?;
            if let Some(now) = listing_changed(&live, listed) {
                return Err(ApplyError::StalePlan {
                    planned: proposal.plan.live_fingerprint.clone(),
                    live: now.fingerprint(),
                });
            }
        }
        send_steps(admin, &proposal.plan, &live, progress)
            .await
            .map_err(ApplyError::Stopped)
    }
}

/// The live state as a fresh group listing shows it, if the listing differs from `live`'s
/// groups (ids, names, creators): groups the listing still has keep their members as
/// read, new ones have none known. `None` when nothing changed.
fn listing_changed(live: &LiveState, listed: Vec<GroupInfo>) -> Option<LiveState> {
    let key = |id: i64, name: &str, creator: Option<i64>| (id, name.to_owned(), creator);
    let mut before: Vec<_> = live
        .groups
        .iter()
        .map(|group| key(group.id, &group.name, group.creator_id))
        .collect();
    let mut after: Vec<_> = listed
        .iter()
        .map(|info| key(info.id, &info.name, info.creator_id))
        .collect();
    before.sort_unstable();
    after.sort_unstable();
    if before == after {
        return None;
    }
    let groups = listed
        .into_iter()
        .map(|info| {
            let members = live.group(info.id).map(|g| g.members.clone());
            LiveGroup::new(info, members.unwrap_or_default())
        })
        .collect();
    let mut now = LiveState {
        main_user_id: live.main_user_id,
        sub_accounts: live.sub_accounts.clone(),
        groups,
    };
    now.normalize();
    Some(now)
}

/// The refusals that come before anything is sent: a stale plan, a saved plan whose steps
/// are not its changes, and the removal and create limits. (A key of another account is refused by the
/// read, [`ReadError::KeyOfAnotherAccount`]: `live` always comes from a read for
/// `plan.main_user_id`.)
pub(super) fn check(
    plan: &Plan,
    live: &LiveState,
    options: ApplyOptions,
) -> Result<(), ApplyError> {
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
    let creates = plan.steps.iter().filter(|step| step.is_create()).count();
    if creates > options.max_creates {
        return Err(ApplyError::TooManyCreates {
            creates,
            max: options.max_creates,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ApplyError;

    #[test]
    fn limit_refusals_count_in_the_singular_and_name_no_flag() {
        let one = ApplyError::TooManyRemovals {
            removals: 1,
            max: 0,
        };
        assert_eq!(
            one.to_string(),
            "the plan removes 1 member, more than the limit of 0; nothing was changed"
        );
        let two = ApplyError::TooManyRemovals {
            removals: 2,
            max: 1,
        };
        assert!(two.to_string().starts_with("the plan removes 2 members,"));
        let one = ApplyError::TooManyCreates { creates: 1, max: 0 };
        assert_eq!(
            one.to_string(),
            "the plan creates 1 group, more than the limit of 0; nothing was changed (a group can never be deleted)"
        );
        assert!(one.nothing_changed());
    }
}
