//! [`StpAdmin`] for the real client: each method is one typed call.

use super::{
    live::StpAdmin,
    model::{GroupInfo, SubAccount},
};
use crate::{
    Client, Error, SubAccountTypeFilter,
    error::UnexpectedResponse,
    models::{StpGroup, StpGroupUser},
    response::ResponseMeta,
};

/// A 2xx answer that lacks a field the plan cannot do without (an id).
fn missing(meta: &ResponseMeta, what: &str) -> Error {
    Error::UnexpectedResponse(Box::new(UnexpectedResponse {
        status: meta.status,
        content_type: None,
        reason: format!("{what} missing from the answer"),
        snippet: String::new(),
        meta: Some(meta.clone()),
    }))
}

fn group_info(group: &StpGroup, meta: &ResponseMeta) -> Result<GroupInfo, Error> {
    Ok(GroupInfo {
        id: group.id.ok_or_else(|| missing(meta, "a group's id"))?,
        name: group.name.clone(),
        creator_id: group.creator_id,
    })
}

fn user_ids(members: &[StpGroupUser]) -> Vec<i64> {
    members.iter().filter_map(|member| member.user_id).collect()
}

impl StpAdmin for Client {
    async fn key_user_id(&self) -> Result<i64, Error> {
        let detail = self.account_detail().await?;
        detail
            .user_id
            .ok_or_else(|| missing(detail.meta(), "user_id"))
    }

    async fn sub_accounts(&self) -> Result<Vec<SubAccount>, Error> {
        let accounts = self
            .list_sub_accounts()
            .kind(SubAccountTypeFilter::All)
            .await?;
        Ok(accounts
            .iter()
            .filter_map(|account| {
                Some(SubAccount {
                    user_id: account.user_id?,
                    login_name: Some(account.login_name.clone()).filter(|name| !name.is_empty()),
                })
            })
            .collect())
    }

    async fn groups(&self) -> Result<Vec<GroupInfo>, Error> {
        let groups = self.list_groups().await?;
        // A group without an id could not be matched: reading it as absent would plan a
        // second group of the same name, so the whole read fails instead.
        groups
            .iter()
            .map(|group| group_info(group, groups.meta()))
            .collect()
    }

    async fn members(&self, stp_id: i64) -> Result<Vec<i64>, Error> {
        Ok(user_ids(&self.list_users(stp_id).await?))
    }

    async fn create_group(&self, name: &str) -> Result<GroupInfo, Error> {
        let group = self.create_group(name).await?;
        group_info(&group, group.meta())
    }

    async fn add_members(&self, stp_id: i64, user_ids: &[i64]) -> Result<Vec<i64>, Error> {
        Ok(self::user_ids(&self.add_users(stp_id, user_ids).await?))
    }

    async fn remove_members(&self, stp_id: i64, user_ids: &[i64]) -> Result<Vec<i64>, Error> {
        Ok(self::user_ids(&self.remove_users(stp_id, user_ids).await?))
    }
}
