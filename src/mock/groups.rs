//! The emulator's STP groups and Gate's rules for them.
//!
//! Vocabulary, as in the client and the CLI: a group's *members* are *users* (user ids);
//! the operations keep Gate's names (list, add and remove users).
//!
//! Every operation checks everything first and changes state last, under one lock held by
//! the caller, so a refused request changes nothing and concurrent requests never see (or
//! make) a half-applied change.

use std::collections::BTreeMap;

use super::{
    refusal::Refusal,
    world::{Account, World},
};
use crate::models::{StpGroup, StpGroupUser};

/// Id of the first group an emulator creates (Gate-like six-digit ids).
pub(super) const FIRST_GROUP_ID: i64 = 100_001;

#[derive(Debug, Clone)]
struct Group {
    name: String,
    creator_id: i64,
    create_time: i64,
    /// Member user id -> when it joined (Unix seconds).
    members: BTreeMap<i64, i64>,
}

/// All groups of an emulator.
#[derive(Debug, Clone)]
pub(super) struct Registry {
    next_id: i64,
    groups: BTreeMap<i64, Group>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            next_id: FIRST_GROUP_ID,
            groups: BTreeMap::new(),
        }
    }
}

impl Registry {
    /// Every group, ordered by id.
    pub(super) fn groups(&self) -> Vec<StpGroup> {
        self.groups
            .iter()
            .map(|(&id, group)| group_model(id, group))
            .collect()
    }

    /// A group's members, ordered by user id; `None` if there is no such group.
    pub(super) fn members(&self, stp_id: i64) -> Option<Vec<StpGroupUser>> {
        self.groups
            .get(&stp_id)
            .map(|group| member_models(stp_id, group))
    }

    /// GET /account/stp_groups: the caller's groups whose name contains `name`, ignoring
    /// case (every group of the caller without `name`); a sub-account has none.
    pub(super) fn list_groups(&self, caller: &Account, name: Option<&str>) -> Vec<StpGroup> {
        let needle = name.map(str::to_lowercase);
        self.groups
            .iter()
            .filter(|(_, group)| group.creator_id == caller.user_id())
            .filter(|(_, group)| {
                needle
                    .as_deref()
                    .is_none_or(|needle| group.name.to_lowercase().contains(needle))
            })
            .map(|(&id, group)| group_model(id, group))
            .collect()
    }

    /// POST /account/stp_groups: only a main account creates; the new group has no members.
    pub(super) fn create_group(
        &mut self,
        caller: &Account,
        name: String,
        now_secs: i64,
    ) -> Result<StpGroup, Refusal> {
        if !caller.is_main() {
            return Err(Refusal::forbidden(format!(
                "user {} is a sub-account: only a main account may create an STP group",
                caller.user_id()
            )));
        }
        let id = self.next_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Refusal::internal("no STP group id left"))?;
        let group = Group {
            name,
            creator_id: caller.user_id(),
            create_time: now_secs,
            members: BTreeMap::new(),
        };
        let model = group_model(id, &group);
        self.groups.insert(id, group);
        self.next_id = next;
        Ok(model)
    }

    /// GET /account/stp_groups/{stp_id}/users: only the creator may read.
    pub(super) fn list_users(
        &self,
        caller: &Account,
        stp_id: i64,
    ) -> Result<Vec<StpGroupUser>, Refusal> {
        let group = self.owned(caller, stp_id)?;
        Ok(member_models(stp_id, group))
    }

    /// POST /account/stp_groups/{stp_id}/users: all or nothing; members already in stay
    /// as they were.
    pub(super) fn add_users(
        &mut self,
        world: &World,
        caller: &Account,
        stp_id: i64,
        user_ids: &[i64],
        now_secs: i64,
        one_group_per_user: bool,
    ) -> Result<Vec<StpGroupUser>, Refusal> {
        self.owned(caller, stp_id)?;
        check_users(world, caller, user_ids)?;
        if one_group_per_user {
            self.check_in_no_other_group(stp_id, user_ids)?;
        }
        let group = self.owned_mut(stp_id)?;
        for &user_id in user_ids {
            group.members.entry(user_id).or_insert(now_secs);
        }
        Ok(member_models(stp_id, group))
    }

    /// DELETE /account/stp_groups/{stp_id}/users: all or nothing; a valid non-member is a
    /// no-op.
    pub(super) fn remove_users(
        &mut self,
        world: &World,
        caller: &Account,
        stp_id: i64,
        user_ids: &[i64],
    ) -> Result<Vec<StpGroupUser>, Refusal> {
        self.owned(caller, stp_id)?;
        check_users(world, caller, user_ids)?;
        let group = self.owned_mut(stp_id)?;
        for user_id in user_ids {
            group.members.remove(user_id);
        }
        Ok(member_models(stp_id, group))
    }

    /// No user is a member of a group other than `stp_id` (else 400 INVALID_PARAM_VALUE,
    /// the first such user in request order answering).
    fn check_in_no_other_group(&self, stp_id: i64, user_ids: &[i64]) -> Result<(), Refusal> {
        for &user_id in user_ids {
            let other = self
                .groups
                .iter()
                .find(|&(&id, group)| id != stp_id && group.members.contains_key(&user_id));
            if let Some((&other_id, _)) = other {
                return Err(Refusal::bad_param(format!(
                    "user {user_id} is already in STP group {other_id}: a user may belong to \
                     one STP group only; remove it from group {other_id} first"
                )));
            }
        }
        Ok(())
    }

    /// The group, if it exists (404) and the caller created it (403).
    fn owned(&self, caller: &Account, stp_id: i64) -> Result<&Group, Refusal> {
        let group = self
            .groups
            .get(&stp_id)
            .ok_or_else(|| Refusal::not_found(format!("STP group {stp_id} not found")))?;
        if group.creator_id != caller.user_id() {
            return Err(Refusal::forbidden(format!(
                "STP group {stp_id} was not created by user {}: only its creator may manage it",
                caller.user_id()
            )));
        }
        Ok(group)
    }

    fn owned_mut(&mut self, stp_id: i64) -> Result<&mut Group, Refusal> {
        self.groups
            .get_mut(&stp_id)
            .ok_or_else(|| Refusal::not_found(format!("STP group {stp_id} not found")))
    }
}

/// Every id names an account (else 400) under the caller's main account (else 403); the
/// first offending id, in request order, answers.
fn check_users(world: &World, caller: &Account, user_ids: &[i64]) -> Result<(), Refusal> {
    for &user_id in user_ids {
        let account = world
            .account(user_id)
            .ok_or_else(|| Refusal::bad_param(format!("user {user_id} does not exist")))?;
        if account.main_id() != caller.main_id() {
            return Err(Refusal::forbidden(format!(
                "user {user_id} does not belong to main account {}: cross-account STP is not permitted",
                caller.main_id()
            )));
        }
    }
    Ok(())
}

fn group_model(id: i64, group: &Group) -> StpGroup {
    StpGroup {
        id: Some(id),
        name: group.name.clone(),
        creator_id: Some(group.creator_id),
        create_time: Some(group.create_time),
    }
}

fn member_models(stp_id: i64, group: &Group) -> Vec<StpGroupUser> {
    group
        .members
        .iter()
        .map(|(&user_id, &joined)| StpGroupUser {
            user_id: Some(user_id),
            stp_id: Some(stp_id),
            create_time: Some(joined),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::mock::demo;

    fn main_account(world: &World) -> &Account {
        world.account(demo::MAIN_USER).unwrap()
    }

    #[test]
    fn refused_requests_change_nothing() {
        let world = World::demo();
        let main = main_account(&world);
        let mut registry = Registry::default();
        let id = registry
            .create_group(main, "g".into(), 7)
            .unwrap()
            .id
            .unwrap();
        assert_eq!(id, FIRST_GROUP_ID);
        registry
            .add_users(&world, main, id, &[demo::SUB_USER], 8, true)
            .unwrap();
        let before = registry.members(id);
        let refused = registry.add_users(
            &world,
            main,
            id,
            &[demo::SUB_USER_WITHOUT_KEY, demo::OTHER_SUB_USER],
            9,
            true,
        );
        assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN);
        let refused = registry.remove_users(&world, main, id, &[demo::SUB_USER, 424_242]);
        assert_eq!(refused.unwrap_err().label, "INVALID_PARAM_VALUE");
        assert_eq!(format!("{:?}", registry.members(id)), format!("{before:?}"));
    }

    #[test]
    fn rejoining_keeps_the_first_join_time() {
        let world = World::demo();
        let main = main_account(&world);
        let mut registry = Registry::default();
        let id = registry
            .create_group(main, "g".into(), 1)
            .unwrap()
            .id
            .unwrap();
        registry
            .add_users(&world, main, id, &[demo::SUB_USER], 5, true)
            .unwrap();
        let members = registry
            .add_users(&world, main, id, &[demo::SUB_USER], 9, true)
            .unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].create_time, Some(5));
    }
}
