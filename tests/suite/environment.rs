//! `ClientBuilder::from_env` and `Credentials::from_env`: what the environment gives a
//! client.
//!
//! The environment is one per process and the suite's tests run in parallel, so each case
//! runs in a child process: the parent starts this same test binary on one ignored test,
//! with the variables of the case set and every other GATE_ variable removed, and judges
//! the child by its exit status.

use std::process::Command;

use gate_stp::{
    BASE_URL_ENV, ClientBuilder, Credentials, Error, KEY_ENV, LIVE_BASE_URL, SECRET_ENV,
    error::ConfigError,
};

/// Set in the children only: run with `--ignored` in an ordinary environment, the child
/// tests return at once instead of judging the caller's own GATE_ variables.
const CHILD: &str = "GATE_STP_ENVIRONMENT_CHILD";

/// Whether this process is a child started by [`child_passes`].
fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the ignored test `name` of this binary alone, with only `vars` of the GATE_
/// variables set; true when it passed.
fn child_passes(name: &str, vars: &[(&str, &str)]) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--ignored", "--exact", name, "--test-threads", "1"]);
    for var in [BASE_URL_ENV, KEY_ENV, SECRET_ENV] {
        child.env_remove(var);
    }
    child.envs(vars.iter().copied()).env(CHILD, "1");
    let output = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // A filter that matched nothing also exits 0: make sure the child ran its test.
    assert!(
        stdout.contains("1 passed") || stdout.contains("1 failed"),
        "{stdout}"
    );
    output.status.success()
}

#[test]
fn from_env_reads_base_url_and_credentials_only_when_given() {
    assert!(child_passes("environment::child_nothing_set", &[]));
    let everything = [
        (BASE_URL_ENV, "http://127.0.0.1:9/api/v4"),
        (KEY_ENV, "env-key-0123"),
        (SECRET_ENV, "env-secret"),
    ];
    assert!(child_passes(
        "environment::child_everything_set",
        &everything
    ));
    // A key without its secret, or the other way round, is a mistake to report, not a
    // client without credentials.
    for half in [(KEY_ENV, "env-key-0123"), (SECRET_ENV, "env-secret")] {
        assert!(child_passes("environment::child_half_set", &[half]));
    }
    // The control: the same child judges a complete environment as not "half set".
    assert!(!child_passes("environment::child_half_set", &everything));
}

#[test]
#[ignore = "run by from_env_reads_base_url_and_credentials_only_when_given, in its own process"]
fn child_nothing_set() {
    if !in_child() {
        return;
    }
    let client = ClientBuilder::from_env().unwrap().build().unwrap();
    assert_eq!(client.base_url(), LIVE_BASE_URL);
    assert!(client.credentials().is_none());
    assert!(matches!(
        Credentials::from_env(),
        Err(Error::Config(ConfigError::MissingEnv(KEY_ENV)))
    ));
}

#[test]
#[ignore = "run by from_env_reads_base_url_and_credentials_only_when_given, in its own process"]
fn child_everything_set() {
    if !in_child() {
        return;
    }
    let client = ClientBuilder::from_env().unwrap().build().unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:9/api/v4");
    assert_eq!(client.credentials().unwrap().key(), "env-key-0123");
    assert_eq!(Credentials::from_env().unwrap().key(), "env-key-0123");
}

#[test]
#[ignore = "run by from_env_reads_base_url_and_credentials_only_when_given, in its own process"]
fn child_half_set() {
    if !in_child() {
        return;
    }
    let missing = if std::env::var_os(KEY_ENV).is_some() {
        SECRET_ENV
    } else {
        KEY_ENV
    };
    let error = ClientBuilder::from_env().unwrap_err();
    assert!(
        matches!(error, Error::Config(ConfigError::MissingEnv(name)) if name == missing),
        "{error:?}"
    );
}
