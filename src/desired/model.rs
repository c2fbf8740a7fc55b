//! The two states a plan compares: the file's ([`DesiredState`]) and Gate's ([`LiveState`]).

use std::{collections::BTreeSet, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use sha2::{Digest, Sha512};

/// One main account's STP groups as the operator wants them: the content of a
/// desired-state file.
///
/// ```toml
/// main_user_id = 10000          # the key used must belong to this account
///
/// [[group]]
/// name = "market-makers"        # matched exactly against the live groups
/// id = 100001                   # optional pin, needed when two live groups share the name
/// members = [10001, "desk-bot"] # user ids, or sub-account login names
/// protect = true                # the plan fails rather than remove a member
/// ```
///
/// The JSON form has the same keys: `{"main_user_id": 10000, "group": [{"name": ...}]}`.
///
/// A file may also name the config profile it is applied with (`profile = "desk-a"`,
/// beside `main_user_id`): [`DesiredFile`](super::DesiredFile) keeps it, this type does not
/// (which key signs is no part of Gate's state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// The main account that owns every group of the file.
    pub main_user_id: i64,
    /// The managed groups, in file order.
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<DesiredGroup>,
}

/// One `[[group]]` of a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredGroup {
    /// The group's exact name.
    pub name: String,
    /// Pins the live group with this id (which must carry `name`): needed when several
    /// live groups share the name, and a guard against matching the wrong one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Who should be in the group: the main account and its sub-accounts, by user id or
    /// login name. Anyone else in the live group is removed.
    #[serde(default)]
    pub members: Vec<Member>,
    /// When set, a plan that would remove a member of this group fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
}

impl DesiredGroup {
    /// A group declared by name with these members, not pinned to an id, not protected.
    pub fn new(name: impl Into<String>, members: Vec<Member>) -> Self {
        Self {
            name: name.into(),
            id: None,
            members,
            protect: false,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A member as written in a file: a user id, or a sub-account's login name (resolved
/// through `GET /sub_accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    /// A user id (the main account's or a sub-account's).
    Id(i64),
    /// A sub-account's login name.
    Login(String),
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Id(id) => write!(f, "{id}"),
            Member::Login(name) => write!(f, "{}", crate::text::Quoted(name)),
        }
    }
}

impl Serialize for Member {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Member::Id(id) => serializer.serialize_i64(*id),
            Member::Login(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl de::Visitor<'_> for MemberVisitor {
            type Value = Member;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user id (an integer) or a sub-account login name (a string)")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Member, E> {
                Ok(Member::Id(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Member, E> {
                i64::try_from(value)
                    .map(Member::Id)
                    .map_err(|_| E::custom(format!("user id {value} is out of range")))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Member, E> {
                Ok(Member::Login(value.to_owned()))
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// A sub-account of the main account, as `GET /sub_accounts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubAccount {
    /// Its user id.
    pub user_id: i64,
    /// Its login name, when Gate gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_name: Option<String>,
}

/// A live STP group without its members, as `listSTPGroups` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Gate's id of the group.
    pub id: i64,
    /// Its name (not unique: Gate does not say names are).
    pub name: String,
    /// The main account that created it, when Gate said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<i64>,
}

/// A live STP group with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveGroup {
    /// Gate's id of the group.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The main account that created it, when Gate said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<i64>,
    /// Member user ids, ascending and without duplicates.
    pub members: Vec<i64>,
}

impl LiveGroup {
    /// A group from its listing and its members (sorted and deduplicated here).
    pub fn new(info: GroupInfo, members: impl IntoIterator<Item = i64>) -> Self {
        let members: BTreeSet<i64> = members.into_iter().collect();
        Self {
            id: info.id,
            name: info.name,
            creator_id: info.creator_id,
            members: members.into_iter().collect(),
        }
    }
}

/// What Gate holds for one main account: read by `read_live`, or
/// built by hand in tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    /// The account the API key belongs to (`GET /account/detail`).
    pub main_user_id: i64,
    /// Its sub-accounts (`GET /sub_accounts`), which may join its groups.
    pub sub_accounts: Vec<SubAccount>,
    /// Its STP groups with their members.
    pub groups: Vec<LiveGroup>,
}

impl LiveState {
    /// Sorts groups by id, sub-accounts by user id and members ascending without
    /// duplicates, so that two reads of the same state compare equal.
    pub fn normalize(&mut self) {
        self.groups.sort_by_key(|group| group.id);
        for group in &mut self.groups {
            group.members.sort_unstable();
            group.members.dedup();
        }
        self.sub_accounts.sort_by_key(|account| account.user_id);
    }

    /// The group with this id.
    pub fn group(&self, id: i64) -> Option<&LiveGroup> {
        self.groups.iter().find(|group| group.id == id)
    }

    /// Lowercase hex SHA-512 of a canonical form of what a plan changes: the main account,
    /// and each group's id, name, creator and members, by ascending id.
    ///
    /// Sub-accounts are left out on purpose: a plan holds resolved user ids, so a
    /// sub-account renamed or added since does not change what the plan would do.
    pub fn fingerprint(&self) -> String {
        let mut groups: Vec<&LiveGroup> = self.groups.iter().collect();
        groups.sort_by_key(|group| group.id);
        let mut hasher = Sha512::new();
        // A length-prefixed encoding: no name can be crafted to look like a field boundary.
        hasher.update(b"gate-stp live state v1\n");
        hasher.update(self.main_user_id.to_be_bytes());
        hasher.update((groups.len() as u64).to_be_bytes());
        for group in groups {
            hasher.update(group.id.to_be_bytes());
            hasher.update((group.name.len() as u64).to_be_bytes());
            hasher.update(group.name.as_bytes());
            hasher.update(group.creator_id.unwrap_or(0).to_be_bytes());
            let members: BTreeSet<i64> = group.members.iter().copied().collect();
            hasher.update((members.len() as u64).to_be_bytes());
            for member in members {
                hasher.update(member.to_be_bytes());
            }
        }
        hex::encode(hasher.finalize())
    }

    /// The login name of a sub-account, if Gate gave one.
    pub fn login_name(&self, user_id: i64) -> Option<&str> {
        self.sub_accounts
            .iter()
            .find(|account| account.user_id == user_id)
            .and_then(|account| account.login_name.as_deref())
    }
}

impl DesiredState {
    /// The live state as a desired state, for `export`: every live group with its id
    /// pinned, members as sub-account login names where Gate gave one and as user ids
    /// otherwise (the main account always by id). Planning it against the same live state
    /// gives an empty plan.
    pub fn from_live(live: &LiveState) -> DesiredState {
        let mut groups: Vec<&_> = live.groups.iter().collect();
        groups.sort_by_key(|group| group.id);
        DesiredState {
            main_user_id: live.main_user_id,
            groups: groups
                .into_iter()
                .map(|group| DesiredGroup {
                    name: group.name.clone(),
                    id: Some(group.id),
                    members: group
                        .members
                        .iter()
                        .map(|&id| match live.login_name(id) {
                            Some(login) if id != live.main_user_id && unique(live, login) => {
                                Member::Login(login.to_owned())
                            }
                            _ => Member::Id(id),
                        })
                        .collect(),
                    protect: false,
                })
                .collect(),
        }
    }
}

/// Only a login name that names one sub-account can stand for it in a file.
fn unique(live: &LiveState, login: &str) -> bool {
    live.sub_accounts
        .iter()
        .filter(|account| account.login_name.as_deref() == Some(login))
        .count()
        == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> LiveState {
        LiveState {
            main_user_id: 10000,
            sub_accounts: vec![],
            groups: vec![
                LiveGroup {
                    id: 2,
                    name: "b".into(),
                    creator_id: Some(10000),
                    members: vec![10002, 10001],
                },
                LiveGroup {
                    id: 1,
                    name: "a".into(),
                    creator_id: Some(10000),
                    members: vec![],
                },
            ],
        }
    }

    #[test]
    fn fingerprint_ignores_order_and_sees_every_change() {
        let base = state();
        let mut reordered = base.clone();
        reordered.normalize();
        assert_eq!(base.fingerprint(), reordered.fingerprint());
        assert_eq!(base.fingerprint().len(), 128);

        let mut member_added = base.clone();
        member_added.groups[1].members.push(10003);
        let mut renamed = base.clone();
        renamed.groups[0].name = "c".into();
        let mut other_main = base.clone();
        other_main.main_user_id = 20000;
        // "a" + "b" must not hash like "ab" + "": lengths are part of the encoding.
        let mut shifted = base.clone();
        shifted.groups[0].name = "ba".into();
        shifted.groups[1].name = String::new();
        for changed in [member_added, renamed, other_main, shifted] {
            assert_ne!(base.fingerprint(), changed.fingerprint());
        }
    }

    #[test]
    fn normalizing_makes_two_reads_in_any_order_equal() {
        let read = LiveState {
            main_user_id: 10000,
            sub_accounts: vec![
                SubAccount {
                    user_id: 10003,
                    login_name: None,
                },
                SubAccount {
                    user_id: 10001,
                    login_name: Some("bot".into()),
                },
            ],
            groups: vec![
                LiveGroup {
                    id: 2,
                    name: "b".into(),
                    creator_id: None,
                    members: vec![10003, 10001, 10003],
                },
                LiveGroup {
                    id: 1,
                    name: "a".into(),
                    creator_id: None,
                    members: vec![],
                },
            ],
        };
        let mut normalized = read.clone();
        normalized.normalize();
        let expected = LiveState {
            main_user_id: 10000,
            sub_accounts: vec![
                SubAccount {
                    user_id: 10001,
                    login_name: Some("bot".into()),
                },
                SubAccount {
                    user_id: 10003,
                    login_name: None,
                },
            ],
            groups: vec![
                LiveGroup {
                    id: 1,
                    name: "a".into(),
                    creator_id: None,
                    members: vec![],
                },
                LiveGroup {
                    id: 2,
                    name: "b".into(),
                    creator_id: None,
                    members: vec![10001, 10003],
                },
            ],
        };
        assert_eq!(normalized, expected);
        // The same state read in another order normalizes to the same value.
        let mut reversed = read;
        reversed.groups.reverse();
        reversed.sub_accounts.reverse();
        reversed.groups[1].members.reverse();
        reversed.normalize();
        assert_eq!(reversed, expected);
    }

    #[test]
    fn a_json_file_says_protect_only_for_a_protected_group() {
        let state = DesiredState {
            main_user_id: 10000,
            groups: vec![
                DesiredGroup {
                    protect: true,
                    ..DesiredGroup::new("kept", vec![Member::Id(10001)])
                },
                DesiredGroup::new("open", vec![Member::Login("bot".into())]),
            ],
        };
        let written: serde_json::Value = serde_json::from_str(&state.to_json_string()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "main_user_id": 10000,
                "group": [
                    {"name": "kept", "members": [10001], "protect": true},
                    {"name": "open", "members": ["bot"]}
                ]
            })
        );
    }

    #[test]
    fn members_parse_as_ids_or_login_names() {
        let group: DesiredGroup =
            serde_json::from_str(r#"{"name":"g","members":[10001,"desk-bot"]}"#).unwrap();
        assert_eq!(
            group.members,
            vec![Member::Id(10001), Member::Login("desk-bot".into())]
        );
        let error = serde_json::from_str::<DesiredGroup>(r#"{"name":"g","members":[1.5]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("a user id (an integer) or a sub-account login name"),
            "{error}"
        );
    }
}
