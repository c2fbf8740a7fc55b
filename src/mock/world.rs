//! The accounts the emulator knows: who is a main account, who is whose sub-account, and
//! which API keys exist.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::{Path, PathBuf},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use toml::Spanned;

use super::demo;
use crate::text::line_column;

/// One Gate account of the emulated world.
///
/// `Debug` never shows the secret.
#[derive(Clone)]
pub struct Account {
    user_id: i64,
    main: Option<i64>,
    key: Option<String>,
    secret: Option<SecretString>,
    login_name: Option<String>,
    remark: Option<String>,
    cross_margin: bool,
}

impl Account {
    /// The account's user id.
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// The main account this account belongs to: its own id for a main account.
    pub fn main_id(&self) -> i64 {
        self.main.unwrap_or(self.user_id)
    }

    /// The main account of a sub-account; `None` for a main account.
    pub fn parent(&self) -> Option<i64> {
        self.main
    }

    /// Whether this is a main account (only main accounts may create STP groups).
    pub fn is_main(&self) -> bool {
        self.main.is_none()
    }

    /// The account's API key, if it has one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the account has an API key (and secret), so it can call the API.
    pub fn has_credentials(&self) -> bool {
        // A key never comes without its secret: the demo world gives them as a pair, and
        // a world file with one but not the other is refused when it is read.
        self.key.is_some()
    }

    /// The login name the world file gives the account, if any.
    pub fn login_name(&self) -> Option<&str> {
        self.login_name.as_deref()
    }

    /// The login name `GET /sub_accounts` reports: the world file's, else `sub_<user_id>`
    /// (every Gate sub-account has one).
    pub fn effective_login_name(&self) -> String {
        self.login_name
            .clone()
            .unwrap_or_else(|| default_login_name(self.user_id))
    }

    /// The account's remark, if the world file gives one.
    pub fn remark(&self) -> Option<&str> {
        self.remark.as_deref()
    }

    /// Whether this is a cross-margin sub-account (Gate's sub-account type 3) rather than a
    /// regular one (type 1).
    pub fn is_cross_margin(&self) -> bool {
        self.cross_margin
    }

    /// The secret's bytes, for signature verification only.
    pub(super) fn secret_bytes(&self) -> Option<&[u8]> {
        self.secret.as_ref().map(|s| s.expose_secret().as_bytes())
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("user_id", &self.user_id)
            .field("main", &self.main)
            .field("key", &self.key)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("login_name", &self.login_name)
            .field("remark", &self.remark)
            .field("cross_margin", &self.cross_margin)
            .finish()
    }
}

/// The accounts of an emulated Gate: main accounts, their sub-accounts, and API keys.
///
/// Built by [`World::demo`], [`World::from_toml_str`] or [`World::load`]; a world is
/// validated as a whole before it exists, so there is never a half-loaded world.
///
/// World file format (TOML):
///
/// ```toml
/// [[accounts]]
/// user_id = 10000           # positive, unique
/// key = "demo-main-key"     # optional, unique; key and secret come together
/// secret = "demo-main-secret"
///
/// [[accounts]]
/// user_id = 10001
/// main = 10000              # a sub-account of 10000; no `main` means a main account
/// login_name = "desk_a"     # optional: letters, digits and `_`; unique among a main
///                           # account and its sub-accounts (default for a
///                           # sub-account: `sub_<user_id>`)
/// remark = "market making"  # optional, reported by GET /sub_accounts
/// cross_margin = false      # optional, sub-accounts only: a cross-margin sub-account
/// ```
#[derive(Clone)]
pub struct World {
    accounts: BTreeMap<i64, Account>,
    keys: HashMap<String, i64>,
}

impl World {
    /// The documented demo world; its ids and credentials are the constants of
    /// [`mock::demo`](super::demo).
    pub fn demo() -> World {
        let account = |user_id, main, credentials: Option<(&str, &str)>, login: &str| Account {
            user_id,
            main,
            key: credentials.map(|(key, _)| key.to_owned()),
            secret: credentials.map(|(_, secret)| SecretString::from(secret)),
            login_name: Some(login.to_owned()),
            remark: None,
            cross_margin: false,
        };
        World::from_accounts(vec![
            account(
                demo::MAIN_USER,
                None,
                Some((demo::MAIN_KEY, demo::MAIN_SECRET)),
                demo::MAIN_LOGIN_NAME,
            ),
            account(
                demo::SUB_USER,
                Some(demo::MAIN_USER),
                Some((demo::SUB_KEY, demo::SUB_SECRET)),
                demo::SUB_LOGIN_NAME,
            ),
            account(
                demo::SUB_USER_WITHOUT_KEY,
                Some(demo::MAIN_USER),
                None,
                demo::SUB_WITHOUT_KEY_LOGIN_NAME,
            ),
            account(
                demo::OTHER_MAIN_USER,
                None,
                Some((demo::OTHER_KEY, demo::OTHER_SECRET)),
                demo::OTHER_MAIN_LOGIN_NAME,
            ),
            account(
                demo::OTHER_SUB_USER,
                Some(demo::OTHER_MAIN_USER),
                None,
                demo::OTHER_SUB_LOGIN_NAME,
            ),
        ])
    }

    /// Parses and validates a world file's text.
    ///
    /// Syntax and type errors name the line and column; semantic errors (duplicate user,
    /// key or login name, non-positive id, unknown `main` or one that is itself a
    /// sub-account, key without secret, a login name Gate would refuse, `cross_margin` on a
    /// main account) name the offending user and the line of its `user_id`.
    pub fn from_toml_str(text: &str) -> Result<World, WorldError> {
        let file: WorldFile = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            WorldError::Syntax {
                line,
                column,
                message: error.message().trim().to_owned(),
            }
        })?;
        validate(text, file.accounts)
    }

    /// Reads, parses and validates a world file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<World, WorldError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Io {
            path: path.to_owned(),
            source,
        })?;
        World::from_toml_str(&text).map_err(|error| WorldError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// The account with this user id.
    pub fn account(&self, user_id: i64) -> Option<&Account> {
        self.accounts.get(&user_id)
    }

    /// The account that owns this API key.
    pub fn account_by_key(&self, key: &str) -> Option<&Account> {
        self.keys.get(key).and_then(|id| self.accounts.get(id))
    }

    /// All accounts, ordered by user id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the world has no account at all.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Builds a world from accounts already known to be valid.
    fn from_accounts(list: Vec<Account>) -> World {
        let mut accounts = BTreeMap::new();
        let mut keys = HashMap::new();
        for account in list {
            if let Some(key) = &account.key {
                keys.insert(key.clone(), account.user_id);
            }
            accounts.insert(account.user_id, account);
        }
        World { accounts, keys }
    }
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("accounts", &self.accounts.values().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a world file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// The file could not be read.
    #[error("cannot read world file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// An error in a world file, with the file's name.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error in it.
        error: Box<WorldError>,
    },
    /// Not valid TOML, or a field of the wrong type, missing or unknown.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The parser's explanation.
        message: String,
    },
    /// Two accounts with the same user id.
    #[error("line {line}: user {user_id} appears more than once")]
    DuplicateUser {
        /// The repeated user id.
        user_id: i64,
        /// Line of the second occurrence.
        line: usize,
    },
    /// Two accounts with the same API key.
    #[error("line {line}: user {user_id} has the same key as user {other}")]
    DuplicateKey {
        /// The account with the repeated key.
        user_id: i64,
        /// The account that has it first.
        other: i64,
        /// Line of `user_id`'s account.
        line: usize,
    },
    /// A user id or `main` that is zero or negative.
    #[error("line {line}: user {user_id}: `{field}` must be positive, got {value}")]
    NonPositiveId {
        /// The account.
        user_id: i64,
        /// `user_id` or `main`.
        field: &'static str,
        /// The value given.
        value: i64,
        /// Line of the account.
        line: usize,
    },
    /// `main` names no account of the file.
    #[error("line {line}: user {user_id}: main account {main} does not exist")]
    UnknownMain {
        /// The sub-account.
        user_id: i64,
        /// The missing main account.
        main: i64,
        /// Line of the sub-account.
        line: usize,
    },
    /// `main` names a sub-account (sub-accounts cannot have sub-accounts).
    #[error("line {line}: user {user_id}: {main} is itself a sub-account, not a main account")]
    MainIsSub {
        /// The sub-account.
        user_id: i64,
        /// The account named as main.
        main: i64,
        /// Line of the sub-account.
        line: usize,
    },
    /// `key` without `secret`.
    #[error("line {line}: user {user_id} has a key but no secret")]
    KeyWithoutSecret {
        /// The account.
        user_id: i64,
        /// Line of the account.
        line: usize,
    },
    /// `secret` without `key`.
    #[error("line {line}: user {user_id} has a secret but no key")]
    SecretWithoutKey {
        /// The account.
        user_id: i64,
        /// Line of the account.
        line: usize,
    },
    /// A `login_name` that is empty or has a character other than an ASCII letter, digit
    /// or `_` (Gate's rule for sub-account login names).
    #[error(
        "line {line}: user {user_id}: login_name {login_name:?} must be letters, digits and underscores"
    )]
    InvalidLoginName {
        /// The account.
        user_id: i64,
        /// The refused name.
        login_name: String,
        /// Line of the account.
        line: usize,
    },
    /// Two accounts of one main account (the main account and its sub-accounts) with the
    /// same login name.
    #[error("line {line}: user {user_id} has the same login_name {login_name:?} as user {other}")]
    DuplicateLoginName {
        /// The account with the repeated name.
        user_id: i64,
        /// The account that has it first.
        other: i64,
        /// The repeated name (possibly a sub-account's default, `sub_<user_id>`).
        login_name: String,
        /// Line of `user_id`'s account.
        line: usize,
    },
    /// `cross_margin = true` on a main account: only sub-accounts have a type.
    #[error(
        "line {line}: user {user_id} is a main account: only a sub-account can be cross_margin"
    )]
    CrossMarginMain {
        /// The account.
        user_id: i64,
        /// Line of the account.
        line: usize,
    },
    /// An empty `key` or `secret`.
    #[error("line {line}: user {user_id}: `{field}` must not be empty")]
    EmptyCredential {
        /// The account.
        user_id: i64,
        /// `key` or `secret`.
        field: &'static str,
        /// Line of the account.
        line: usize,
    },
}

impl WorldError {
    /// The 1-based line the error is about, if it is about a line.
    pub fn line(&self) -> Option<usize> {
        match self {
            WorldError::Io { .. } => None,
            WorldError::InFile { error, .. } => error.line(),
            WorldError::Syntax { line, .. }
            | WorldError::DuplicateUser { line, .. }
            | WorldError::DuplicateKey { line, .. }
            | WorldError::NonPositiveId { line, .. }
            | WorldError::UnknownMain { line, .. }
            | WorldError::MainIsSub { line, .. }
            | WorldError::KeyWithoutSecret { line, .. }
            | WorldError::SecretWithoutKey { line, .. }
            | WorldError::InvalidLoginName { line, .. }
            | WorldError::DuplicateLoginName { line, .. }
            | WorldError::CrossMarginMain { line, .. }
            | WorldError::EmptyCredential { line, .. } => Some(*line),
        }
    }

    /// The error itself, without the [`WorldError::InFile`] wrapper that names the file.
    pub fn root(&self) -> &WorldError {
        match self {
            WorldError::InFile { error, .. } => error.root(),
            other => other,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorldFile {
    #[serde(default)]
    accounts: Vec<AccountEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    user_id: Spanned<i64>,
    #[serde(default)]
    main: Option<i64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    login_name: Option<String>,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    cross_margin: bool,
}

/// Checks every rule, then builds: nothing is kept from a refused file.
fn validate(text: &str, entries: Vec<AccountEntry>) -> Result<World, WorldError> {
    let line_of = |entry: &AccountEntry| line_column(text, entry.user_id.span().start).0;

    // Pass 1: each entry on its own, and uniqueness of ids and keys.
    let mut seen: HashMap<i64, &AccountEntry> = HashMap::new();
    let mut keys: HashMap<&str, i64> = HashMap::new();
    for entry in &entries {
        let user_id = *entry.user_id.get_ref();
        let line = line_of(entry);
        if user_id <= 0 {
            return Err(WorldError::NonPositiveId {
                user_id,
                field: "user_id",
                value: user_id,
                line,
            });
        }
        if let Some(main) = entry.main
            && main <= 0
        {
            return Err(WorldError::NonPositiveId {
                user_id,
                field: "main",
                value: main,
                line,
            });
        }
        if seen.insert(user_id, entry).is_some() {
            return Err(WorldError::DuplicateUser { user_id, line });
        }
        match (&entry.key, &entry.secret) {
            (Some(_), None) => return Err(WorldError::KeyWithoutSecret { user_id, line }),
            (None, Some(_)) => return Err(WorldError::SecretWithoutKey { user_id, line }),
            (Some(key), Some(secret)) => {
                for (field, value) in [("key", key), ("secret", secret)] {
                    if value.is_empty() {
                        return Err(WorldError::EmptyCredential {
                            user_id,
                            field,
                            line,
                        });
                    }
                }
                if let Some(&other) = keys.get(key.as_str()) {
                    return Err(WorldError::DuplicateKey {
                        user_id,
                        other,
                        line,
                    });
                }
                keys.insert(key, user_id);
            }
            (None, None) => {}
        }
        if let Some(name) = &entry.login_name
            && !is_valid_login_name(name)
        {
            return Err(WorldError::InvalidLoginName {
                user_id,
                login_name: name.clone(),
                line,
            });
        }
        if entry.cross_margin && entry.main.is_none() {
            return Err(WorldError::CrossMarginMain { user_id, line });
        }
    }

    // Pass 2: every `main` names an existing main account.
    for entry in &entries {
        let Some(main) = entry.main else { continue };
        let user_id = *entry.user_id.get_ref();
        match seen.get(&main) {
            None => {
                return Err(WorldError::UnknownMain {
                    user_id,
                    main,
                    line: line_of(entry),
                });
            }
            Some(target) if target.main.is_some() => {
                return Err(WorldError::MainIsSub {
                    user_id,
                    main,
                    line: line_of(entry),
                });
            }
            Some(_) => {}
        }
    }

    // Pass 3: login names are unique within each main account's family, defaults included
    // (a sub-account without one is reported as `sub_<user_id>`).
    let mut login_names: HashMap<(i64, String), i64> = HashMap::new();
    for entry in &entries {
        let user_id = *entry.user_id.get_ref();
        let name = match (&entry.login_name, entry.main) {
            (Some(name), _) => name.clone(),
            (None, Some(_)) => default_login_name(user_id),
            (None, None) => continue,
        };
        let family = entry.main.unwrap_or(user_id);
        if let Some(&other) = login_names.get(&(family, name.clone())) {
            return Err(WorldError::DuplicateLoginName {
                user_id,
                other,
                login_name: name,
                line: line_of(entry),
            });
        }
        login_names.insert((family, name), user_id);
    }

    Ok(World::from_accounts(
        entries
            .into_iter()
            .map(|entry| Account {
                user_id: entry.user_id.into_inner(),
                main: entry.main,
                key: entry.key,
                secret: entry.secret.map(SecretString::from),
                login_name: entry.login_name,
                remark: entry.remark,
                cross_margin: entry.cross_margin,
            })
            .collect(),
    ))
}

/// The login name of a sub-account the world file names none for.
fn default_login_name(user_id: i64) -> String {
    format!("sub_{user_id}")
}

/// Gate's rule for sub-account login names: letters, digits and underscores.
fn is_valid_login_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_file_without_accounts_is_an_empty_world() {
        let empty = World::from_toml_str("# nobody yet\n").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert!(!World::demo().is_empty());
    }

    #[test]
    fn an_error_names_its_line_and_the_file_wrapper_passes_it_on() {
        let text = "[[accounts]]\nuser_id = 1\n\n[[accounts]]\nuser_id = 1\n";
        let error = World::from_toml_str(text).unwrap_err();
        assert_eq!(error.line(), Some(5), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.toml");
        std::fs::write(&path, text).unwrap();
        let in_file = World::load(&path).unwrap_err();
        assert_eq!(in_file.line(), Some(5), "{in_file}");
        // An unreadable file is about no line.
        let missing = World::load(dir.path().join("none.toml")).unwrap_err();
        assert_eq!(missing.line(), None, "{missing}");
    }

    #[test]
    fn only_an_account_with_a_key_has_credentials() {
        let world = World::demo();
        let with_key = world.account(demo::SUB_USER).unwrap();
        assert!(with_key.has_credentials());
        let without_key = world.account(demo::SUB_USER_WITHOUT_KEY).unwrap();
        assert!(!without_key.has_credentials());
    }

    #[test]
    fn demo_world_file_matches_demo_world() {
        let parsed = World::from_toml_str(demo::WORLD_TOML).unwrap();
        let built = World::demo();
        // Accounts in user-id order (the key index is a HashMap: its Debug order varies).
        let accounts = |w: &World| format!("{:?}", w.accounts().collect::<Vec<_>>());
        assert_eq!(accounts(&parsed), accounts(&built));
        let secret = |w: &World, id| w.account(id).unwrap().secret_bytes().map(<[u8]>::to_vec);
        for account in built.accounts() {
            assert_eq!(
                secret(&parsed, account.user_id()),
                secret(&built, account.user_id())
            );
        }
    }

    #[test]
    fn login_names_follow_gates_charset_and_are_unique_per_main() {
        let world = |body: &str| World::from_toml_str(body);
        let ok = world(
            "[[accounts]]\nuser_id = 1\nlogin_name = \"boss\"\n\
             [[accounts]]\nuser_id = 2\nmain = 1\nlogin_name = \"desk_A1\"\n\
             [[accounts]]\nuser_id = 3\nmain = 1\n\
             [[accounts]]\nuser_id = 4\nlogin_name = \"desk_A1\"\n",
        )
        .unwrap();
        assert_eq!(ok.account(2).unwrap().login_name(), Some("desk_A1"));
        assert_eq!(ok.account(3).unwrap().login_name(), None);
        assert_eq!(ok.account(3).unwrap().effective_login_name(), "sub_3");

        for bad in ["", "a-b", "a b", "é"] {
            let text = format!(
                "[[accounts]]\nuser_id = 1\n\n[[accounts]]\nuser_id = 2\nmain = 1\nlogin_name = {bad:?}\n"
            );
            let error = world(&text).unwrap_err();
            assert!(
                matches!(
                    &error,
                    WorldError::InvalidLoginName { user_id: 2, login_name, line: 5 }
                        if login_name == bad
                ),
                "{bad:?}: {error:?}"
            );
        }
        let error = world(
            "[[accounts]]\nuser_id = 1\nlogin_name = \"x\"\n\
             [[accounts]]\nuser_id = 2\nmain = 1\nlogin_name = \"x\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(
                &error,
                WorldError::DuplicateLoginName {
                    user_id: 2,
                    other: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        // A default name is a name too.
        let error = world(
            "[[accounts]]\nuser_id = 1\n\
             [[accounts]]\nuser_id = 2\nmain = 1\n\
             [[accounts]]\nuser_id = 3\nmain = 1\nlogin_name = \"sub_2\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(
                &error,
                WorldError::DuplicateLoginName {
                    user_id: 3,
                    other: 2,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = world("[[accounts]]\nuser_id = 1\ncross_margin = true\n").unwrap_err();
        assert!(
            matches!(
                error,
                WorldError::CrossMarginMain {
                    user_id: 1,
                    line: 2
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", World::demo());
        assert!(text.contains("demo-main-key"));
        assert!(!text.contains("demo-main-secret"));
        assert!(text.contains("[REDACTED]"));
    }
}
