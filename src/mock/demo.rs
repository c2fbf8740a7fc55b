//! The accounts of the built-in demo world, [`World::demo()`](super::World::demo).
//!
//! | user | role | login name | key / secret |
//! |---|---|---|---|
//! | 10000 | main | `demo_main` | `demo-main-key` / `demo-main-secret` |
//! | 10001 | sub of 10000 | `demo_sub` | `demo-sub-key` / `demo-sub-secret` |
//! | 10002 | sub of 10000 | `demo_sub_nokey` | none |
//! | 20000 | another main | `demo_other` | `demo-other-key` / `demo-other-secret` |
//! | 20001 | sub of 20000 | `demo_other_sub` | none |
//!
//! These secrets are public test values: never use them anywhere but the emulator.

/// User id of the demo main account, the one that creates groups.
pub const MAIN_USER: i64 = 10_000;
/// API key of [`MAIN_USER`].
pub const MAIN_KEY: &str = "demo-main-key";
/// API secret of [`MAIN_USER`].
pub const MAIN_SECRET: &str = "demo-main-secret";

/// User id of a sub-account of [`MAIN_USER`] that has a key.
pub const SUB_USER: i64 = 10_001;
/// API key of [`SUB_USER`].
pub const SUB_KEY: &str = "demo-sub-key";
/// API secret of [`SUB_USER`].
pub const SUB_SECRET: &str = "demo-sub-secret";

/// User id of a sub-account of [`MAIN_USER`] without a key (it can be added to groups but
/// cannot call the API).
pub const SUB_USER_WITHOUT_KEY: i64 = 10_002;

/// User id of a second, unrelated main account.
pub const OTHER_MAIN_USER: i64 = 20_000;
/// API key of [`OTHER_MAIN_USER`].
pub const OTHER_KEY: &str = "demo-other-key";
/// API secret of [`OTHER_MAIN_USER`].
pub const OTHER_SECRET: &str = "demo-other-secret";

/// User id of a sub-account of [`OTHER_MAIN_USER`], without a key: adding it to a group of
/// [`MAIN_USER`] is refused.
pub const OTHER_SUB_USER: i64 = 20_001;

/// Login name of [`MAIN_USER`].
pub const MAIN_LOGIN_NAME: &str = "demo_main";
/// Login name of [`SUB_USER`].
pub const SUB_LOGIN_NAME: &str = "demo_sub";
/// Login name of [`SUB_USER_WITHOUT_KEY`].
pub const SUB_WITHOUT_KEY_LOGIN_NAME: &str = "demo_sub_nokey";
/// Login name of [`OTHER_MAIN_USER`].
pub const OTHER_MAIN_LOGIN_NAME: &str = "demo_other";
/// Login name of [`OTHER_SUB_USER`].
pub const OTHER_SUB_LOGIN_NAME: &str = "demo_other_sub";

/// The demo world as a world file: `World::from_toml_str(WORLD_TOML)` equals
/// [`World::demo()`](super::World::demo).
pub const WORLD_TOML: &str = r#"# The built-in demo world of the Gate STP emulator.
[[accounts]]
user_id = 10000
login_name = "demo_main"
key = "demo-main-key"
secret = "demo-main-secret"

[[accounts]]
user_id = 10001
main = 10000
login_name = "demo_sub"
key = "demo-sub-key"
secret = "demo-sub-secret"

[[accounts]]
user_id = 10002
main = 10000
login_name = "demo_sub_nokey"

[[accounts]]
user_id = 20000
login_name = "demo_other"
key = "demo-other-key"
secret = "demo-other-secret"

[[accounts]]
user_id = 20001
main = 20000
login_name = "demo_other_sub"
"#;
