//! An in-memory Gate for the module's tests: Gate's rules (only the main account and its
//! sub-accounts may join, at most one group per user, a refused request changes nothing),
//! a log of what was sent, and injected faults.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Mutex, PoisonError},
};

use reqwest::StatusCode;

use super::{
    live::StpAdmin,
    model::{GroupInfo, LiveState, SubAccount},
};
use crate::{ApiError, Error, Label, response::ResponseMeta};

/// A fault, triggered on the `nth` (1-based) matching request from when it was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The create happens, its answer is lost (a timeout).
    CreateExecutedThenLost,
    /// The create happens and is answered with another name than the one sent.
    CreateAnswersAnotherName,
    /// The create times out without happening.
    CreateLost,
    /// The create's answer is lost and the first `listings` listings after it do not show
    /// the group yet (a create still executing when its connection dropped).
    CreateLandsLate { listings: usize },
    /// The nth listing of the groups fails with a 503 (nothing executed).
    ListingFails { nth: usize },
    /// The nth add or remove times out without happening.
    WriteLost { nth: usize },
    /// The nth add also adds this user (someone else changed the group meanwhile).
    AddAlsoAdds { nth: usize, user_id: i64 },
}

#[derive(Debug, Default)]
struct State {
    key_user_id: i64,
    main_user_id: i64,
    sub_accounts: Vec<SubAccount>,
    groups: BTreeMap<i64, (String, i64, BTreeSet<i64>)>,
    next_id: i64,
    faults: Vec<Fault>,
    writes_seen: usize,
    /// Groups created by a [`Fault::CreateLandsLate`]: listings left before they appear,
    /// id, name, creator.
    landing: Vec<(usize, i64, String, i64)>,
    /// Every request, as `op` or `op:arg`.
    log: Vec<String>,
    /// State-changing requests received and not answered yet, and the most at once.
    writes_in_flight: usize,
    most_writes_in_flight: usize,
}

#[derive(Debug)]
pub(crate) struct FakeGate {
    state: Mutex<State>,
}

/// A timeout, as the client reports an answer that never came. reqwest's errors cannot be
/// built by hand; a request that fails to build gives a real one without any I/O.
pub(crate) fn lost_answer() -> Error {
    let cause = reqwest::Client::new()
        .get("not a url")
        .build()
        .expect_err("a relative URL cannot be built into a request");
    Error::Timeout(cause)
}

fn api(status: StatusCode, label: Label, message: &str) -> Error {
    Error::Api(Box::new(ApiError {
        status,
        label,
        message: Some(message.to_owned()),
        detail: None,
        meta: ResponseMeta {
            status,
            rate_limit: None,
            trace_id: None,
            client_request_id: None,
        },
    }))
}

impl FakeGate {
    /// A Gate holding `live`, whose key belongs to `live.main_user_id`.
    pub(crate) fn new(live: &LiveState) -> Self {
        let groups = live
            .groups
            .iter()
            .map(|group| {
                (
                    group.id,
                    (
                        group.name.clone(),
                        group.creator_id.unwrap_or(live.main_user_id),
                        group.members.iter().copied().collect(),
                    ),
                )
            })
            .collect::<BTreeMap<_, _>>();
        let next_id = groups.keys().max().copied().unwrap_or(100_000) + 1;
        Self {
            state: Mutex::new(State {
                key_user_id: live.main_user_id,
                main_user_id: live.main_user_id,
                sub_accounts: live.sub_accounts.clone(),
                groups,
                next_id,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key now belongs to `user_id`.
    pub(crate) fn set_key_user(&self, user_id: i64) {
        self.state().key_user_id = user_id;
    }

    pub(crate) fn inject(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    /// State-changing requests received (executed or not).
    pub(crate) fn writes_seen(&self) -> usize {
        self.state().writes_seen
    }

    /// The most state-changing requests that were in flight at once.
    pub(crate) fn most_writes_in_flight(&self) -> usize {
        self.state().most_writes_in_flight
    }

    /// Runs a state-changing request as a server would: received, then (after the caller
    /// had a chance to send others: one yield to the runtime) executed and answered. This
    /// is what lets an apply have several writes in flight at once, and a test see it.
    async fn write<T>(&self, execute: impl FnOnce() -> T) -> T {
        {
            let mut state = self.state();
            state.writes_in_flight += 1;
            state.most_writes_in_flight = state.most_writes_in_flight.max(state.writes_in_flight);
        }
        tokio::task::yield_now().await;
        let answer = execute();
        self.state().writes_in_flight -= 1;
        answer
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }

    /// Groups by name, with their member ids.
    pub(crate) fn groups_named(&self, name: &str) -> Vec<(i64, Vec<i64>)> {
        self.state()
            .groups
            .iter()
            .filter(|(_, (group, _, _))| group == name)
            .map(|(id, (_, _, members))| (*id, members.iter().copied().collect()))
            .collect()
    }

    /// Creates a group behind the plan's back (another operator); returns its id.
    pub(crate) fn create_behind_the_back(&self, name: &str) -> i64 {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let creator = state.main_user_id;
        state
            .groups
            .insert(id, (name.to_owned(), creator, BTreeSet::new()));
        id
    }

    /// Changes a group behind the plan's back (another operator).
    pub(crate) fn add_behind_the_back(&self, stp_id: i64, user_id: i64) {
        if let Some((_, _, members)) = self.state().groups.get_mut(&stp_id) {
            members.insert(user_id);
        }
    }

    fn take_fault(state: &mut State, matches: impl Fn(&mut Fault) -> bool) -> Option<Fault> {
        let index = state.faults.iter_mut().position(matches)?;
        Some(state.faults.remove(index))
    }

    /// Counts down every write fault this request matches; returns the first that fires.
    fn write_fault(state: &mut State, is_add: bool) -> Option<Fault> {
        let mut fired = None;
        state.faults.retain_mut(|fault| {
            let nth = match fault {
                Fault::WriteLost { nth } => nth,
                Fault::AddAlsoAdds { nth, .. } if is_add => nth,
                _ => return true,
            };
            *nth = nth.saturating_sub(1);
            if *nth == 0 && fired.is_none() {
                fired = Some(*fault);
                return false;
            }
            true
        });
        fired
    }

    fn change(&self, stp_id: i64, user_ids: &[i64], add: bool) -> Result<Vec<i64>, Error> {
        let mut state = self.state();
        state.writes_seen += 1;
        let op = if add { "add" } else { "remove" };
        state.log.push(format!("{op}:{stp_id}:{user_ids:?}"));
        let fault = Self::write_fault(&mut state, add);
        if fault.is_some_and(|f| matches!(f, Fault::WriteLost { .. })) {
            return Err(lost_answer());
        }
        let main = state.main_user_id;
        let ours = |id: i64| id == main || state.sub_accounts.iter().any(|s| s.user_id == id);
        if let Some(id) = user_ids.iter().find(|id| !ours(**id)) {
            return Err(api(
                StatusCode::FORBIDDEN,
                Label::Forbidden,
                &format!("user {id} is not under this main account"),
            ));
        }
        let Some((_, creator, _)) = state.groups.get(&stp_id) else {
            return Err(api(StatusCode::NOT_FOUND, Label::NotFound, "no such group"));
        };
        if *creator != state.key_user_id {
            return Err(api(
                StatusCode::FORBIDDEN,
                Label::Forbidden,
                "not the creator",
            ));
        }
        if add {
            // One group per user: refused whole, nothing changes.
            for (other, (_, _, members)) in &state.groups {
                if *other != stp_id && user_ids.iter().any(|id| members.contains(id)) {
                    return Err(api(
                        StatusCode::BAD_REQUEST,
                        Label::InvalidParamValue,
                        "user already in another group",
                    ));
                }
            }
        }
        let members = &mut state.groups.get_mut(&stp_id).expect("checked above").2;
        for id in user_ids {
            if add {
                members.insert(*id);
            } else {
                members.remove(id);
            }
        }
        if let Some(Fault::AddAlsoAdds { user_id, .. }) = fault {
            members.insert(user_id);
        }
        Ok(members.iter().copied().collect())
    }
}

impl StpAdmin for FakeGate {
    async fn key_user_id(&self) -> Result<i64, Error> {
        let mut state = self.state();
        state.log.push("account".into());
        Ok(state.key_user_id)
    }

    async fn sub_accounts(&self) -> Result<Vec<SubAccount>, Error> {
        let mut state = self.state();
        state.log.push("sub_accounts".into());
        Ok(state.sub_accounts.clone())
    }

    async fn groups(&self) -> Result<Vec<GroupInfo>, Error> {
        let mut state = self.state();
        state.log.push("groups".into());
        let mut landing = std::mem::take(&mut state.landing);
        landing.retain_mut(|(listings, id, name, creator)| {
            if *listings > 0 {
                *listings -= 1;
                return true;
            }
            let group = (std::mem::take(name), *creator, BTreeSet::new());
            state.groups.insert(*id, group);
            false
        });
        state.landing = landing;
        let mut failing = false;
        state.faults.retain_mut(|fault| match fault {
            Fault::ListingFails { nth } => {
                *nth = nth.saturating_sub(1);
                failing |= *nth == 0;
                *nth > 0
            }
            _ => true,
        });
        if failing {
            return Err(api(
                StatusCode::SERVICE_UNAVAILABLE,
                Label::Other("SERVER_ERROR".into()),
                "injected: listing failed",
            ));
        }
        let key = state.key_user_id;
        Ok(state
            .groups
            .iter()
            .filter(|(_, (_, creator, _))| *creator == key)
            .map(|(id, (name, creator, _))| GroupInfo {
                id: *id,
                name: name.clone(),
                creator_id: Some(*creator),
            })
            .collect())
    }

    async fn members(&self, stp_id: i64) -> Result<Vec<i64>, Error> {
        let mut state = self.state();
        state.log.push(format!("members:{stp_id}"));
        match state.groups.get(&stp_id) {
            Some((_, _, members)) => Ok(members.iter().copied().collect()),
            None => Err(api(StatusCode::NOT_FOUND, Label::NotFound, "no such group")),
        }
    }

    async fn create_group(&self, name: &str) -> Result<GroupInfo, Error> {
        self.write(|| self.execute_create(name)).await
    }

    async fn add_members(&self, stp_id: i64, user_ids: &[i64]) -> Result<Vec<i64>, Error> {
        self.write(|| self.change(stp_id, user_ids, true)).await
    }

    async fn remove_members(&self, stp_id: i64, user_ids: &[i64]) -> Result<Vec<i64>, Error> {
        self.write(|| self.change(stp_id, user_ids, false)).await
    }
}

impl FakeGate {
    fn execute_create(&self, name: &str) -> Result<GroupInfo, Error> {
        let mut state = self.state();
        state.writes_seen += 1;
        state.log.push(format!("create:{name}"));
        let fault = Self::take_fault(&mut state, |f| {
            matches!(
                f,
                Fault::CreateExecutedThenLost
                    | Fault::CreateLost
                    | Fault::CreateLandsLate { .. }
                    | Fault::CreateAnswersAnotherName
            )
        });
        if fault == Some(Fault::CreateLost) {
            return Err(lost_answer());
        }
        if state.key_user_id != state.main_user_id {
            return Err(api(
                StatusCode::FORBIDDEN,
                Label::Forbidden,
                "main accounts only",
            ));
        }
        let id = state.next_id;
        state.next_id += 1;
        let creator = state.key_user_id;
        if let Some(Fault::CreateLandsLate { listings }) = fault {
            state.landing.push((listings, id, name.to_owned(), creator));
            return Err(lost_answer());
        }
        state
            .groups
            .insert(id, (name.to_owned(), creator, BTreeSet::new()));
        if fault == Some(Fault::CreateExecutedThenLost) {
            return Err(lost_answer());
        }
        let answered = if fault == Some(Fault::CreateAnswersAnotherName) {
            format!("{name}-other")
        } else {
            name.to_owned()
        };
        Ok(GroupInfo {
            id,
            name: answered,
            creator_id: Some(creator),
        })
    }
}
