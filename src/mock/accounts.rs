//! Who the caller is: `GET /account/detail` and `GET /sub_accounts`, answered from the
//! world file (accounts never change while an emulator runs).

use super::{
    rules::Refusal,
    world::{Account, World},
};
use crate::models::{AccountDetail, AccountDetailKey, SubAccount};

/// Gate's sub-account state "normal" (2 is "locked", which the emulator does not model).
const STATE_NORMAL: i32 = 1;
/// Gate's sub-account type of a regular sub-account.
const TYPE_REGULAR: i32 = 1;
/// Gate's sub-account type of a cross-margin sub-account.
const TYPE_CROSS_MARGIN: i32 = 3;
/// Gate's key mode "classic account".
const KEY_MODE_CLASSIC: i32 = 1;

/// GET /account/detail: the caller's own account. What the emulator does not model (IP
/// allow list, pair restrictions, VIP tier, copy trading) is reported as Gate reports an
/// unrestricted, ordinary account.
pub(super) fn account_detail(caller: &Account) -> AccountDetail {
    AccountDetail {
        user_id: Some(caller.user_id()),
        ip_whitelist: Vec::new(),
        currency_pairs: Vec::new(),
        tier: Some(0),
        key: Some(AccountDetailKey {
            mode: Some(KEY_MODE_CLASSIC),
        }),
        copy_trading_role: Some(0),
    }
}

/// Which sub-accounts a `type` query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kinds {
    /// `type=0`: every kind.
    All,
    /// `type=1`, or no `type`: regular sub-accounts only (the SDK's documented default).
    Regular,
}

/// The `type` query parameter of GET /sub_accounts: `0`, `1` or absent.
pub(super) fn parse_kinds(value: Option<&str>) -> Result<Kinds, Refusal> {
    let kinds = match value.map(str::trim) {
        None | Some("") | Some("1") => Kinds::Regular,
        Some("0") => Kinds::All,
        Some(other) => {
            return Err(Refusal::bad_param(format!(
                "type must be 0 (all sub-accounts) or 1 (regular ones), got {:?}",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    Ok(kinds)
}

/// GET /sub_accounts: the caller's sub-accounts, ordered by user id; a sub-account's key
/// is refused with 403 FORBIDDEN.
/// `create_time` is `since_secs`: the emulator's accounts exist from its start.
pub(super) fn sub_accounts(
    world: &World,
    caller: &Account,
    kinds: Kinds,
    since_secs: i64,
) -> Result<Vec<SubAccount>, Refusal> {
    if !caller.is_main() {
        return Err(Refusal::forbidden(format!(
            "user {} is a sub-account: only a main account may list sub-accounts",
            caller.user_id()
        )));
    }
    Ok(world
        .accounts()
        .filter(|account| account.parent() == Some(caller.user_id()))
        .filter(|account| kinds == Kinds::All || !account.is_cross_margin())
        .map(|account| SubAccount {
            user_id: Some(account.user_id()),
            login_name: account.effective_login_name(),
            remark: account.remark().map(str::to_owned),
            email: None,
            state: Some(STATE_NORMAL),
            type_: Some(if account.is_cross_margin() {
                TYPE_CROSS_MARGIN
            } else {
                TYPE_REGULAR
            }),
            create_time: Some(since_secs),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::demo;

    #[test]
    fn type_filter_follows_the_sdk() {
        assert_eq!(parse_kinds(None), Ok(Kinds::Regular));
        assert_eq!(parse_kinds(Some("1")), Ok(Kinds::Regular));
        assert_eq!(parse_kinds(Some("0")), Ok(Kinds::All));
        assert_eq!(
            parse_kinds(Some("3")).unwrap_err().label,
            "INVALID_PARAM_VALUE"
        );
    }

    #[test]
    fn only_a_main_account_lists_and_sees_only_its_own() {
        let world = World::demo();
        let main = world.account(demo::MAIN_USER).unwrap();
        let subs = sub_accounts(&world, main, Kinds::All, 5).unwrap();
        let ids: Vec<_> = subs.iter().filter_map(|s| s.user_id).collect();
        assert_eq!(ids, [demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY]);
        assert_eq!(subs[0].login_name, demo::SUB_LOGIN_NAME);
        let sub = world.account(demo::SUB_USER).unwrap();
        assert_eq!(
            sub_accounts(&world, sub, Kinds::All, 5).unwrap_err().label,
            "FORBIDDEN"
        );
    }
}
