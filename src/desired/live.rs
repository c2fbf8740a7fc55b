//! Reading Gate's state through a small trait, so that apply can run against the real
//! client, the emulator, or an in-memory fake in tests.

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::model::{GroupInfo, LiveGroup, LiveState, SubAccount};
use crate::Error;

/// Groups whose members are read at the same time. Gate allows 150 requests per 10 s per
/// endpoint and account; four in flight keep a read of dozens of groups quick without
/// bursting into the limit (the client's pacing and retries handle the rest).
pub const READ_CONCURRENCY: usize = 4;

/// The Gate calls that reading and applying a plan need.
///
/// Implemented for [`Client`](crate::Client); tests implement it in memory. Every method
/// returns the crate's [`Error`], so the apply loop can tell a definite refusal from a
/// request whose outcome is unknown.
pub trait StpAdmin: Sync {
    /// The user id the API key belongs to (`GET /account/detail`).
    fn key_user_id(&self) -> impl Future<Output = Result<i64, Error>> + Send;
    /// The sub-accounts of the key's main account (`GET /sub_accounts`).
    fn sub_accounts(&self) -> impl Future<Output = Result<Vec<SubAccount>, Error>> + Send;
    /// The STP groups of the key's account (`listSTPGroups`, unfiltered).
    fn groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, Error>> + Send;
    /// The members of a group (`listSTPGroupsUsers`).
    fn members(&self, stp_id: i64) -> impl Future<Output = Result<Vec<i64>, Error>> + Send;
    /// Creates a group (`createSTPGroup`). Must not be retried by the implementation: a
    /// retry after a lost answer could create a second group.
    fn create_group(&self, name: &str) -> impl Future<Output = Result<GroupInfo, Error>> + Send;
    /// Adds users (`addSTPGroupUsers`); returns the members Gate reports after the change.
    fn add_members(
        &self,
        stp_id: i64,
        user_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<i64>, Error>> + Send;
    /// Removes users (`deleteSTPGroupUsers`); returns the members Gate reports after the
    /// change.
    fn remove_members(
        &self,
        stp_id: i64,
        user_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<i64>, Error>> + Send;
}

/// Why reading the live state failed. Nothing that changes state was sent: reading sends
/// only reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The API key belongs to another account than the file's (or saved plan's) main
    /// account. Nothing but `GET /account/detail` was sent.
    #[error(
        "the API key belongs to account {key_user_id}, but the file is for main account {main_user_id}; nothing was changed"
    )]
    KeyOfAnotherAccount {
        /// The key's account.
        key_user_id: i64,
        /// The file's main account.
        main_user_id: i64,
    },
    /// A request of the read failed.
    #[error("reading the live state: {0}")]
    Request(#[source] Error),
}

/// Reads the live state: the key's account first (and, when `expected_main` is given,
/// refuses at once if the key belongs to another account: the one place this refusal is
/// made), then the sub-accounts and the groups, then every group's members,
/// [`READ_CONCURRENCY`] groups at a time. Sends only reads.
///
/// Applying reads through `Proposal`; this is for reading alone (an
/// export).
pub async fn read_live<A: StpAdmin>(
    admin: &A,
    expected_main: Option<i64>,
) -> Result<LiveState, ReadError> {
    let key_user_id = admin.key_user_id().await.map_err(ReadError::Request)?;
    if let Some(main_user_id) = expected_main
        && main_user_id != key_user_id
    {
        return Err(ReadError::KeyOfAnotherAccount {
            key_user_id,
            main_user_id,
        });
    }
    let (sub_accounts, groups) =
        futures_util::future::try_join(admin.sub_accounts(), admin.groups())
            .await
            .map_err(ReadError::Request)?;
    let groups: Vec<LiveGroup> = stream::iter(groups)
        .map(|info| async move {
            let members = admin.members(info.id).await?;
            Ok::<_, Error>(LiveGroup::new(info, members))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await
        .map_err(ReadError::Request)?;
    let mut live = LiveState {
        main_user_id: key_user_id,
        sub_accounts,
        groups,
    };
    live.normalize();
    Ok(live)
}
