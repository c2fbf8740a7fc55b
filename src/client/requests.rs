//! One request builder per operation: per-call options (request id, deadline, retry
//! policy), the operation's own parameters and checks, and sending on `.await`.
//!
//! Every builder has the same shape: a constructor on [`Client`], a struct holding
//! `client`, its parameters and `options: CallOptions`, `request_builder!` for the shared
//! setters and `IntoFuture`, and a `send` that checks the input and hands the generated
//! call to [`Client::execute`] with the operation's [`Idempotency`].

use std::{future::IntoFuture, time::Duration, time::SystemTime};

use super::{BoxFuture, CallOptions, Client};
use crate::{
    error::{Error, InvalidInput},
    generated::operations as ops,
    models::{AccountDetail, StpGroup, StpGroupUser, SubAccount},
    policy::{Idempotency, RetryPolicy},
    response::Response,
};

impl Client {
    /// `listSTPGroups`: the groups the caller created; narrow them with
    /// [`ListGroups::name`].
    pub fn list_groups(&self) -> ListGroups<'_> {
        ListGroups {
            client: self,
            name: None,
            options: CallOptions::default(),
        }
    }

    /// `createSTPGroup`: creates a group named `name` (main accounts only).
    ///
    /// Never retried automatically: Gate does not deduplicate names, so a retry after a
    /// lost answer could create a second group. On a transport error, list the groups
    /// before trying again.
    pub fn create_group(&self, name: impl Into<String>) -> CreateGroup<'_> {
        CreateGroup {
            client: self,
            name: name.into(),
            options: CallOptions::default(),
        }
    }

    /// `listSTPGroupsUsers`: the members of group `stp_id`.
    pub fn list_users(&self, stp_id: i64) -> ListUsers<'_> {
        ListUsers {
            client: self,
            stp_id,
            options: CallOptions::default(),
        }
    }

    /// `addSTPGroupUsers`: adds `user_ids` to group `stp_id`; returns the members after
    /// the change.
    pub fn add_users(&self, stp_id: i64, user_ids: &[i64]) -> AddUsers<'_> {
        AddUsers {
            client: self,
            stp_id,
            user_ids: user_ids.to_vec(),
            options: CallOptions::default(),
        }
    }

    /// `deleteSTPGroupUsers`: removes `user_ids` from group `stp_id` in one request
    /// (`user_id=1,2,3`); returns the members after the change.
    pub fn remove_users(&self, stp_id: i64, user_ids: &[i64]) -> RemoveUsers<'_> {
        RemoveUsers {
            client: self,
            stp_id,
            user_ids: user_ids.to_vec(),
            options: CallOptions::default(),
        }
    }
}

/// Setters shared by every request builder, and sending on `.await`.
macro_rules! request_builder {
    ($name:ident, $output:ty) => {
        impl<'c> $name<'c> {
            /// Sends `X-Client-Request-Id`; Gate echoes it, and it is returned in
            /// [`ResponseMeta::client_request_id`](crate::ResponseMeta::client_request_id).
            pub fn client_request_id(mut self, id: impl Into<String>) -> Self {
                self.options.client_request_id = Some(id.into());
                self
            }

            /// Sends `x-gate-exptime` = now (by Gate's clock, as far as it is known) plus
            /// `window`: Gate drops the request if it arrives later. Retries stop at the
            /// deadline.
            pub fn expires_in(mut self, window: Duration) -> Self {
                self.options.expires_in = Some(window);
                self
            }

            /// Sends `x-gate-exptime` = `deadline`.
            pub fn expires_at(mut self, deadline: SystemTime) -> Self {
                self.options.expires_at = Some(deadline);
                self
            }

            /// Overrides the client's retry policy for this call.
            pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
                self.options.retry = Some(policy);
                self
            }
        }

        impl<'c> IntoFuture for $name<'c> {
            type Output = Result<Response<$output>, Error>;
            type IntoFuture = BoxFuture<'c, Self::Output>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.send())
            }
        }
    };
}

/// Request builder of [`Client::list_groups`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListGroups<'c> {
    client: &'c Client,
    name: Option<String>,
    options: CallOptions,
}
request_builder!(ListGroups, Vec<StpGroup>);

impl ListGroups<'_> {
    /// Only groups whose name contains `name` (Gate's fuzzy search).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroup>>, Error> {
        let name = self.name.as_deref();
        self.client
            .execute(
                &ops::LIST_STP_GROUPS,
                Idempotency::Read,
                &self.options,
                |api, h| async move {
                    api.list_stp_groups(name, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::create_group`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateGroup<'c> {
    client: &'c Client,
    name: String,
    options: CallOptions,
}
request_builder!(CreateGroup, StpGroup);

impl CreateGroup<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<StpGroup>, Error> {
        if self.name.trim().is_empty() {
            return Err(InvalidInput::EmptyGroupName.into());
        }
        // Built through serde rather than a struct literal, so that an optional field added
        // to StpGroup in the fragment does not break this code: only `name` is sent.
        let body: StpGroup = serde_json::from_value(serde_json::json!({ "name": self.name }))
            .map_err(|e| InvalidInput::Request(e.to_string()))?;
        let body = &body;
        self.client
            .execute(
                &ops::CREATE_STP_GROUP,
                Idempotency::Unsafe,
                &self.options,
                |api, h| async move {
                    api.create_stp_group(h.request_id(), h.exptime_ms, body)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::list_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    options: CallOptions,
}
request_builder!(ListUsers, Vec<StpGroupUser>);

impl ListUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        self.client
            .execute(
                &ops::LIST_STP_GROUPS_USERS,
                Idempotency::Read,
                &self.options,
                |api, h| async move {
                    api.list_stp_groups_users(stp_id, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::add_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct AddUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    user_ids: Vec<i64>,
    options: CallOptions,
}
request_builder!(AddUsers, Vec<StpGroupUser>);

impl AddUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        check_user_ids(&self.user_ids)?;
        let user_ids = &self.user_ids;
        self.client
            .execute(
                &ops::ADD_STP_GROUP_USERS,
                Idempotency::IdempotentWrite,
                &self.options,
                |api, h| async move {
                    api.add_stp_group_users(stp_id, h.request_id(), h.exptime_ms, user_ids)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::remove_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct RemoveUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    user_ids: Vec<i64>,
    options: CallOptions,
}
request_builder!(RemoveUsers, Vec<StpGroupUser>);

impl RemoveUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        check_user_ids(&self.user_ids)?;
        let joined = join_ids(&self.user_ids);
        let joined = joined.as_str();
        self.client
            .execute(
                &ops::DELETE_STP_GROUP_USERS,
                Idempotency::IdempotentWrite,
                &self.options,
                |api, h| async move {
                    api.delete_stp_group_users(stp_id, joined, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

// Who the caller is: `getAccountDetail` and `listSubAccounts`. Kept as one block (the
// constructors, the builders and the `type` filter) so that it can move as a unit.

impl Client {
    /// `getAccountDetail`: the account this client's key belongs to. Its
    /// [`user_id`](AccountDetail::user_id) says which main account (or
    /// sub-account) the key acts for.
    pub fn account_detail(&self) -> GetAccountDetail<'_> {
        GetAccountDetail {
            client: self,
            options: CallOptions::default(),
        }
    }

    /// `listSubAccounts`: the sub-accounts of the caller, a main account (Gate refuses a
    /// sub-account's key). Without [`ListSubAccounts::kind`], Gate lists regular
    /// sub-accounts only.
    pub fn list_sub_accounts(&self) -> ListSubAccounts<'_> {
        ListSubAccounts {
            client: self,
            kind: None,
            options: CallOptions::default(),
        }
    }
}

/// Which sub-accounts [`Client::list_sub_accounts`] asks for (Gate's `type` query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubAccountTypeFilter {
    /// Every kind (`type=0`): regular and cross-margin sub-accounts.
    All,
    /// Regular sub-accounts only (`type=1`), as Gate also does without the parameter.
    Regular,
}

impl SubAccountTypeFilter {
    /// The value Gate takes in the `type` query parameter.
    pub fn as_query_value(self) -> &'static str {
        match self {
            Self::All => "0",
            Self::Regular => "1",
        }
    }
}

/// Request builder of [`Client::account_detail`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct GetAccountDetail<'c> {
    client: &'c Client,
    options: CallOptions,
}
request_builder!(GetAccountDetail, AccountDetail);

impl GetAccountDetail<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<AccountDetail>, Error> {
        self.client
            .execute(
                &ops::GET_ACCOUNT_DETAIL,
                Idempotency::Read,
                &self.options,
                |api, h| async move { api.get_account_detail(h.request_id(), h.exptime_ms).await },
            )
            .await
    }
}

/// Request builder of [`Client::list_sub_accounts`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListSubAccounts<'c> {
    client: &'c Client,
    kind: Option<SubAccountTypeFilter>,
    options: CallOptions,
}
request_builder!(ListSubAccounts, Vec<SubAccount>);

impl ListSubAccounts<'_> {
    /// Which kinds of sub-account to list (Gate's `type` query parameter).
    pub fn kind(mut self, kind: SubAccountTypeFilter) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<SubAccount>>, Error> {
        let kind = self.kind.map(SubAccountTypeFilter::as_query_value);
        self.client
            .execute(
                &ops::LIST_SUB_ACCOUNTS,
                Idempotency::Read,
                &self.options,
                |api, h| async move {
                    api.list_sub_accounts(kind, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

fn positive(what: &'static str, value: i64) -> Result<i64, InvalidInput> {
    if value > 0 {
        Ok(value)
    } else {
        Err(InvalidInput::NonPositiveId { what, value })
    }
}

/// Non-empty, all positive, no duplicates.
fn check_user_ids(ids: &[i64]) -> Result<(), InvalidInput> {
    if ids.is_empty() {
        return Err(InvalidInput::NoUserIds);
    }
    for &id in ids {
        positive("user_id", id)?;
    }
    // A sorted copy puts equal ids side by side: one allocation and no hashing, where a
    // `HashSet` seeded its hasher and hashed every id on each call (BENCHMARKS.md).
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(InvalidInput::DuplicateUserId(pair[0])),
        None => Ok(()),
    }
}

/// `1,2,3`: the form Gate's DELETE takes in its `user_id` query parameter.
fn join_ids(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_checks() {
        assert_eq!(check_user_ids(&[]), Err(InvalidInput::NoUserIds));
        assert_eq!(
            check_user_ids(&[1, 0]),
            Err(InvalidInput::NonPositiveId {
                what: "user_id",
                value: 0
            })
        );
        assert_eq!(
            check_user_ids(&[1, 2, 1]),
            Err(InvalidInput::DuplicateUserId(1))
        );
        assert_eq!(check_user_ids(&[3, 1, 2]), Ok(()));
        // Every id is checked for sign before any for repeats; the repeat named is a
        // repeated one, wherever its copies are.
        assert_eq!(
            check_user_ids(&[4, 4, -1]),
            Err(InvalidInput::NonPositiveId {
                what: "user_id",
                value: -1
            })
        );
        assert_eq!(
            check_user_ids(&[9, 5, 7, 9]),
            Err(InvalidInput::DuplicateUserId(9))
        );
        assert_eq!(check_user_ids(&[7]), Ok(()));
        assert_eq!(join_ids(&[10001, 2, 3]), "10001,2,3");
    }

    proptest::proptest! {
        /// Against a model written the obvious way (a set of the ids seen): refused exactly
        /// when an id is not positive or repeats, naming the first non-positive id, else a
        /// repeated one.
        #[test]
        fn user_ids_are_refused_exactly_when_one_is_bad_or_repeated(
            ids in proptest::collection::vec(-3i64..12, 0..10),
        ) {
            let result = check_user_ids(&ids);
            let mut seen = std::collections::HashSet::new();
            let repeated: Vec<i64> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
            match ids.iter().find(|id| **id <= 0) {
                _ if ids.is_empty() => proptest::prop_assert_eq!(result, Err(InvalidInput::NoUserIds)),
                Some(&value) => proptest::prop_assert_eq!(
                    result,
                    Err(InvalidInput::NonPositiveId { what: "user_id", value })
                ),
                None => match result {
                    Err(InvalidInput::DuplicateUserId(id)) => proptest::prop_assert!(repeated.contains(&id)),
                    other => proptest::prop_assert!(repeated.is_empty() && other.is_ok(), "{other:?}"),
                },
            }
        }
    }

    #[test]
    fn the_operations_used_are_listed_and_signed_as_the_fragment_says() {
        for op in [
            &ops::GET_SYSTEM_TIME,
            &ops::LIST_STP_GROUPS,
            &ops::CREATE_STP_GROUP,
            &ops::LIST_STP_GROUPS_USERS,
            &ops::ADD_STP_GROUP_USERS,
            &ops::DELETE_STP_GROUP_USERS,
            &ops::GET_ACCOUNT_DETAIL,
            &ops::LIST_SUB_ACCOUNTS,
        ] {
            // What the signing hook decides from the name the generated call reports is
            // what the fragment says of the operation.
            assert_eq!(
                crate::transport::requires_signature(op.rust_name),
                op.signed,
                "{op:?}"
            );
        }
        // Checked by the compiler: the clock sync must work without a valid signature.
        const { assert!(!ops::GET_SYSTEM_TIME.signed) };
        const { assert!(ops::DELETE_STP_GROUP_USERS.signed) };
        const { assert!(ops::GET_ACCOUNT_DETAIL.signed) };
        const { assert!(ops::LIST_SUB_ACCOUNTS.signed) };
    }
}
