//! The order an apply may send a plan's steps in: which steps each step needs first, and a
//! pure state machine that hands out the steps that may start now. No I/O: the send loop
//! (`send.rs`) drives it and reports back what Gate answered.
//!
//! A step depends on
//! - the step before it on the **same group**, in plan order. Gate answers each add and
//!   remove with the group's full member list, which is checked against the plan's
//!   `expected_members`, computed step after step in plan order; two steps of one group
//!   sent side by side (or in another order) would answer with lists the plan never
//!   expected, and a stop on that divergence would be our own doing. This chain also makes
//!   every add to a new group wait for that group's create (the create is the group's first
//!   step), so a refused or unknown create leaves the members where they were.
//! - every earlier **removal of one of its users** from another group: a user moving
//!   between groups is added to the new one only once Gate confirmed the removal from the
//!   old one, so it is never in two groups (which Gate would refuse).
//! - for a removal, the **create of the new group its users move to**, if the plan creates
//!   it: a refused or unknown create then leaves those users where they were (in their old
//!   group, still under self-trade prevention) rather than in no group at all.
//!
//! Everything else is independent and may be in flight at the same time.

use std::collections::{BTreeSet, HashMap};

use super::plan::Step;

/// Steps of one kind (creates, adds or removes: each its own Gate endpoint, with its own
/// rate-limit window) an apply has in flight at once.
///
/// Gate counts requests per endpoint; the client's pacer keeps each endpoint within its
/// window. Four per endpoint, the width of a read ([`READ_CONCURRENCY`](super::READ_CONCURRENCY)),
/// keep every endpoint busy at a loopback or WAN round trip, and let creates and adds
/// proceed side by side: while the create window is used up, adds to the groups already
/// created go on in theirs. More would only queue inside the pacer.
pub const APPLY_CONCURRENCY: usize = 4;

/// For each step of `steps`, the positions of the steps it needs confirmed before it is
/// sent, ascending, each lower than its own (so the order is never circular). See the
/// module documentation for the rules.
pub(super) fn dependencies(steps: &[Step]) -> Vec<Vec<usize>> {
    // The new group each user is added to, for the users the plan adds to a group it
    // creates.
    let created: BTreeSet<&str> = steps
        .iter()
        .filter(|step| step.is_create())
        .map(Step::group)
        .collect();
    let mut moves_to_new: HashMap<i64, &str> = HashMap::new();
    for step in steps {
        if let Step::Add {
            group, user_ids, ..
        } = step
            && created.contains(group.as_str())
        {
            for user in user_ids {
                moves_to_new.insert(*user, group.as_str());
            }
        }
    }
    // Creates seen so far: a step only ever waits for an earlier one (a plan's creates
    // come first), so the order cannot be circular.
    let mut create_of: HashMap<&str, usize> = HashMap::new();
    let mut last_on_group: HashMap<&str, usize> = HashMap::new();
    // Earlier removals, by user: the steps that take that user out of a group.
    let mut removals_of: HashMap<i64, Vec<usize>> = HashMap::new();
    let mut needs = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let mut mine = BTreeSet::new();
        if let Some(previous) = last_on_group.insert(step.group(), index) {
            mine.insert(previous);
        }
        match step {
            Step::Create { group } => {
                create_of.insert(group, index);
            }
            Step::Remove { user_ids, .. } => {
                for user in user_ids {
                    removals_of.entry(*user).or_default().push(index);
                    if let Some(create) = moves_to_new.get(user).and_then(|g| create_of.get(g)) {
                        mine.insert(*create);
                    }
                }
            }
            Step::Add { user_ids, .. } => {
                for user in user_ids {
                    if let Some(removals) = removals_of.get(user) {
                        mine.extend(removals);
                    }
                }
            }
        }
        needs.push(mine.into_iter().collect());
    }
    needs
}

/// The Gate endpoint a step is sent to: each has its own rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Create,
    Remove,
    Add,
}

impl Endpoint {
    const ALL: usize = 3;

    fn of(step: &Step) -> Endpoint {
        match step {
            Step::Create { .. } => Endpoint::Create,
            Step::Remove { .. } => Endpoint::Remove,
            Step::Add { .. } => Endpoint::Add,
        }
    }

    fn slot(self) -> usize {
        match self {
            Endpoint::Create => 0,
            Endpoint::Remove => 1,
            Endpoint::Add => 2,
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Not handed out (yet).
    NotSent,
    /// Handed out, no answer reported yet.
    InFlight,
    /// Gate's answer was as the plan expected.
    Done,
    /// The request failed or Gate's answer diverged.
    Failed,
}

/// Hands out the steps of a plan as their dependencies are confirmed, at most
/// `per_endpoint` in flight per endpoint, lowest plan position first. After the first
/// failure it hands out nothing more (the conservative choice: a failure may mean the
/// account is not what the plan thinks, so nothing new is sent on it), while the steps
/// already in flight are still reported as they finish.
#[derive(Debug)]
pub(super) struct Schedule {
    endpoint: Vec<Endpoint>,
    dependents: Vec<Vec<usize>>,
    /// Dependencies of each step not confirmed yet.
    unconfirmed: Vec<usize>,
    status: Vec<Status>,
    /// Steps whose dependencies are all confirmed and that were not handed out, per
    /// endpoint.
    ready: [BTreeSet<usize>; Endpoint::ALL],
    in_flight: [usize; Endpoint::ALL],
    per_endpoint: usize,
    stopped: bool,
}

impl Schedule {
    /// A schedule of `steps`, at most `per_endpoint` (at least one) in flight per endpoint.
    pub(super) fn new(steps: &[Step], per_endpoint: usize) -> Schedule {
        let needs = dependencies(steps);
        let mut dependents = vec![Vec::new(); steps.len()];
        for (index, needed) in needs.iter().enumerate() {
            for &before in needed {
                dependents[before].push(index);
            }
        }
        let endpoint: Vec<Endpoint> = steps.iter().map(Endpoint::of).collect();
        let mut ready: [BTreeSet<usize>; Endpoint::ALL] = Default::default();
        for (index, needed) in needs.iter().enumerate() {
            if needed.is_empty() {
                ready[endpoint[index].slot()].insert(index);
            }
        }
        Schedule {
            endpoint,
            dependents,
            unconfirmed: needs.iter().map(Vec::len).collect(),
            status: vec![Status::NotSent; steps.len()],
            ready,
            in_flight: [0; Endpoint::ALL],
            per_endpoint: per_endpoint.max(1),
            stopped: false,
        }
    }

    /// The next step to send, marked in flight: the lowest plan position among the steps
    /// whose dependencies are all confirmed, on an endpoint with room. `None` when nothing
    /// may start now (see [`Schedule::is_over`] for whether anything ever will).
    pub(super) fn start_next(&mut self) -> Option<usize> {
        if self.stopped {
            return None;
        }
        let slot = (0..Endpoint::ALL)
            .filter(|slot| self.in_flight[*slot] < self.per_endpoint)
            .filter_map(|slot| self.ready[slot].first().map(|index| (*index, slot)))
            .min()?
            .1;
        let index = self.ready[slot].pop_first()?;
        self.in_flight[slot] += 1;
        self.status[index] = Status::InFlight;
        Some(index)
    }

    /// Step `index` (in flight) was confirmed: the steps waiting only for it become ready.
    pub(super) fn confirmed(&mut self, index: usize) {
        if !self.land(index, Status::Done) {
            return;
        }
        for &after in &self.dependents[index] {
            self.unconfirmed[after] = self.unconfirmed[after].saturating_sub(1);
            if self.unconfirmed[after] == 0 && self.status[after] == Status::NotSent {
                self.ready[self.endpoint[after].slot()].insert(after);
            }
        }
    }

    /// Step `index` (in flight) failed: nothing new starts.
    pub(super) fn failed(&mut self, index: usize) {
        if self.land(index, Status::Failed) {
            self.stopped = true;
        }
    }

    /// Records the answer of an in-flight step; false (and nothing changed) for any other.
    fn land(&mut self, index: usize, status: Status) -> bool {
        if self.status.get(index) != Some(&Status::InFlight) {
            return false;
        }
        self.status[index] = status;
        let slot = self.endpoint[index].slot();
        self.in_flight[slot] = self.in_flight[slot].saturating_sub(1);
        true
    }

    /// Whether nothing is in flight and nothing will start: every step done, or a failure
    /// with the steps in flight at that time answered. (The send loop needs no such
    /// question: its stream of steps in flight runs dry at that point; the tests ask it.)
    #[cfg(test)]
    pub(super) fn is_over(&self) -> bool {
        let idle = self.in_flight.iter().all(|count| *count == 0);
        idle && (self.stopped || self.ready.iter().all(BTreeSet::is_empty))
    }

    /// Where each step stands, in plan order.
    pub(super) fn status(&self) -> &[Status] {
        &self.status
    }
}
