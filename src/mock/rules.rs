//! Gate's documented STP rules and the emulator's state: groups and their members.
//!
//! Every operation checks everything first and changes state last, under one lock held by
//! the caller, so a refused request changes nothing and concurrent requests never see (or
//! make) a half-applied change.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::Value;

use super::world::{Account, World};
use crate::models::{StpGroup, StpGroupUser};

/// Id of the first group an emulator creates (Gate-like six-digit ids).
pub(super) const FIRST_GROUP_ID: i64 = 100_001;

/// A Gate-shaped refusal: HTTP status, label and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) label: &'static str,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, label: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            label,
            message: message.into(),
        }
    }

    pub(super) fn bad_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAM_VALUE", message)
    }

    pub(super) fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", message)
    }

    pub(super) fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_PARAM",
            format!("Missing required parameter: {name}"),
        )
    }

    pub(super) fn missing_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_HEADER",
            format!("Missing required header: {name}"),
        )
    }

    pub(super) fn unauthorized(label: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, label, message)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub(super) fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Request Rate limit Exceeded",
        )
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", message)
    }
}

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

// ---- Request parsing (Gate's answers for bad input) ----

fn parse_json(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body)
        .map_err(|error| Refusal::bad_body(format!("request body is not valid JSON: {error}")))
}

/// The `name` of a create body (a JSON object; other StpGroup fields are assigned by the
/// server and ignored).
pub(super) fn group_name(body: &[u8]) -> Result<String, Refusal> {
    let Value::Object(fields) = parse_json(body)? else {
        return Err(Refusal::bad_param(
            "request body must be a JSON object (StpGroup)",
        ));
    };
    match fields.get("name") {
        None | Some(Value::Null) => Err(Refusal::missing_param("name")),
        Some(Value::String(name)) if name.trim().is_empty() => {
            Err(Refusal::bad_param("name must not be empty"))
        }
        Some(Value::String(name)) => Ok(name.clone()),
        Some(other) => Err(Refusal::bad_param(format!(
            "name must be a string, got {}",
            json_kind(other)
        ))),
    }
}

/// The user ids of an add body: a non-empty JSON array of positive integers, deduplicated
/// in order.
pub(super) fn body_user_ids(body: &[u8]) -> Result<Vec<i64>, Refusal> {
    let Value::Array(items) = parse_json(body)? else {
        return Err(Refusal::bad_param(
            "request body must be a JSON array of user ids",
        ));
    };
    if items.is_empty() {
        return Err(Refusal::bad_param("at least one user id is required"));
    }
    let ids = items
        .iter()
        .map(|item| match item.as_i64() {
            Some(id) if id > 0 => Ok(id),
            Some(id) => Err(Refusal::bad_param(format!(
                "user id must be positive, got {id}"
            ))),
            None => Err(Refusal::bad_param(format!(
                "user id must be an integer, got {}",
                json_kind(item)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(ids))
}

/// The `user_id` query values of a DELETE: one or several comma-separated positive ids
/// (repeated `user_id` parameters are joined), deduplicated in order.
pub(super) fn query_user_ids(values: &[String]) -> Result<Vec<i64>, Refusal> {
    if values.iter().all(|value| value.trim().is_empty()) {
        return Err(Refusal::missing_param("user_id"));
    }
    let ids = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(|part| positive_id(part.trim(), "user_id"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(ids))
}

/// A positive id from text (path segment or query item).
pub(super) fn positive_id(text: &str, what: &str) -> Result<i64, Refusal> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        Ok(id) => Err(Refusal::bad_param(format!(
            "{what} must be positive, got {id}"
        ))),
        Err(_) => Err(Refusal::bad_param(format!(
            "{what} must be a positive integer, got {:?}",
            truncate(text, 40)
        ))),
    }
}

fn dedup(ids: Vec<i64>) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer out of range",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn input_parsing() {
        assert_eq!(group_name(br#"{"name":"a"}"#), Ok("a".into()));
        assert_eq!(
            group_name(b"{}").unwrap_err().label,
            "MISSING_REQUIRED_PARAM"
        );
        assert_eq!(group_name(b"[1]").unwrap_err().label, "INVALID_PARAM_VALUE");
        assert_eq!(group_name(b"{").unwrap_err().label, "INVALID_REQUEST_BODY");
        assert_eq!(group_name(b"").unwrap_err().label, "INVALID_REQUEST_BODY");
        assert_eq!(body_user_ids(b"[3,1,3]"), Ok(vec![3, 1]));
        for bad in [
            &b"[]"[..],
            b"[1.5]",
            b"[null]",
            b"[18446744073709551615]",
            b"{}",
        ] {
            assert_eq!(body_user_ids(bad).unwrap_err().label, "INVALID_PARAM_VALUE");
        }
        assert_eq!(query_user_ids(&["1, 2,1".into()]), Ok(vec![1, 2]));
        assert_eq!(
            query_user_ids(&[]).unwrap_err().label,
            "MISSING_REQUIRED_PARAM"
        );
        assert_eq!(
            query_user_ids(&[" ".into()]).unwrap_err().label,
            "MISSING_REQUIRED_PARAM"
        );
        assert_eq!(
            query_user_ids(&["1,,2".into()]).unwrap_err().label,
            "INVALID_PARAM_VALUE"
        );
        assert_eq!(
            positive_id("0", "stp_id").unwrap_err().label,
            "INVALID_PARAM_VALUE"
        );
    }

    #[test]
    fn deep_json_is_refused_not_overflowing() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            body_user_ids(deep.as_bytes()).unwrap_err().label,
            "INVALID_REQUEST_BODY"
        );
    }
}
