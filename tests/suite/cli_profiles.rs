//! Profiles of the `gate-stp` binary: selection, precedence (flag > environment > profile >
//! default), secret sources, the permission warning and `gate-stp profiles`.
#![cfg(feature = "cli")]

use std::{
    path::Path,
    process::{Command, Output},
};

use gate_stp::mock::{Emulator, EmulatorConfig, RunningEmulator, World, demo};

/// A fresh directory for one test's config file.
fn temp_dir() -> crate::common::Scratch {
    crate::common::fresh_dir("profiles")
}

fn write_config(text: &str) -> crate::common::Scratch {
    let path = temp_dir().file("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// The binary reading `config`, with no GATE_* variable inherited.
fn gate_stp(config: &Path) -> Command {
    crate::common::cli::gate_stp_with_config(config)
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A refused address, held for the whole run so no emulator can be started on it.
fn dead_url() -> String {
    crate::common::raw::DeadPort::for_the_run().base_url()
}

async fn emulator() -> RunningEmulator {
    Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .unwrap()
}

/// Profile `desk` is the demo's main account, its secret in `DESK_SECRET`.
fn desk_config(base_url: &str) -> crate::common::Scratch {
    write_config(&format!(
        "[profiles.desk]\nbase_url = \"{base_url}\"\nkey = \"{}\"\nsecret_env = \"DESK_SECRET\"\n\n\
         [profiles.sub]\nbase_url = \"{}\"\nkey = \"{}\"\nsecret_env = \"SUB_SECRET\"\n",
        demo::MAIN_KEY,
        dead_url(),
        demo::SUB_KEY,
    ))
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_is_selected_by_flag_then_environment() {
    let emulator = emulator().await;
    let config = desk_config(&emulator.base_url());
    let with = |args: &[&str]| {
        let mut command = gate_stp(&config);
        command
            .env("DESK_SECRET", demo::MAIN_SECRET)
            .env("SUB_SECRET", demo::SUB_SECRET)
            .args(args);
        command
    };

    let output = run(with(&["groups", "create", "by flag", "--profile", "desk"])).await;
    assert_eq!(code(&output), Some(0), "{output:?}");

    let mut by_env = with(&["groups", "create", "by env"]);
    by_env.env("GATE_STP_PROFILE", "desk");
    let output = run(by_env).await;
    assert_eq!(code(&output), Some(0), "{output:?}");

    // The flag beats the variable.
    let mut both = with(&["groups", "list", "--profile", "desk"]);
    both.env("GATE_STP_PROFILE", "sub");
    let output = run(both).await;
    assert_eq!(code(&output), Some(0), "{output:?}");

    let output = run(with(&["groups", "list", "--profile", "nosuch"])).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no profile \"nosuch\""));

    // A profile whose secret variable is unset says which variable.
    let mut unset = gate_stp(&config);
    unset
        .args(["groups", "list", "--profile", "desk"])
        .env_remove("DESK_SECRET");
    let output = run(unset).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("DESK_SECRET"));
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_beat_environment_which_beats_the_profile() {
    let emulator = emulator().await;
    let config = desk_config(&emulator.base_url());
    let desk = |args: &[&str]| {
        let mut command = gate_stp(&config);
        command
            .env("DESK_SECRET", demo::MAIN_SECRET)
            .args(args)
            .args(["--profile", "desk", "--timeout", "5"]);
        command
    };

    // Environment over profile: the base URL from GATE_BASE_URL (nobody listens there).
    let mut env_url = desk(&["groups", "list"]);
    env_url.env("GATE_BASE_URL", dead_url());
    assert_eq!(code(&run(env_url).await), Some(4));

    // Flag over environment.
    let mut flag_url = desk(&["groups", "list", "--base-url", &emulator.base_url()]);
    flag_url.env("GATE_BASE_URL", dead_url());
    let output = run(flag_url).await;
    assert_eq!(code(&output), Some(0), "{output:?}");

    // Environment over profile for the credentials: the sub-account's key and secret are
    // used, and Gate's rule refuses a sub-account creating a group.
    let mut env_keys = desk(&["groups", "create", "from env"]);
    env_keys
        .env("GATE_API_KEY", demo::SUB_KEY)
        .env("GATE_API_SECRET", demo::SUB_SECRET);
    let output = run(env_keys).await;
    assert_eq!(code(&output), Some(3), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("FORBIDDEN"));

    // Flags over environment for the credentials.
    let mut flag_keys = desk(&["groups", "create", "from flags"]);
    flag_keys
        .args(["--key", demo::MAIN_KEY, "--secret", demo::MAIN_SECRET])
        .env("GATE_API_KEY", demo::SUB_KEY)
        .env("GATE_API_SECRET", demo::SUB_SECRET);
    let output = run(flag_keys).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_and_a_secret_from_different_places_are_refused() {
    let emulator = emulator().await;
    let config = desk_config(&emulator.base_url());
    // The sub-account's key with the profile's (main account's) secret: never mixed.
    let mut mixed = gate_stp(&config);
    mixed.env("DESK_SECRET", demo::MAIN_SECRET).args([
        "groups",
        "list",
        "--profile",
        "desk",
        "--key",
        demo::SUB_KEY,
    ]);
    let output = run(mixed).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must come from the same place"), "{stderr}");
    // The same with the secret given and the key left to the profile.
    let mut mixed = gate_stp(&config);
    mixed
        .env("GATE_API_SECRET", demo::SUB_SECRET)
        .args(["groups", "list", "--profile", "desk"]);
    let output = run(mixed).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must come from the same place"), "{stderr}");
    // Without `--profile`, the default profile: with the base URL and the secret given
    // (all three only would skip the file), it is still read and its key refused, rather
    // than the run going on without a key.
    let config = write_config(&format!(
        "[profiles.default]\nbase_url = \"{}\"\nkey = \"{}\"\nsecret_env = \"DEFAULT_SECRET\"\n",
        emulator.base_url(),
        demo::MAIN_KEY
    ));
    let mut mixed = gate_stp(&config);
    mixed
        .env("DEFAULT_SECRET", demo::MAIN_SECRET)
        .env("GATE_API_SECRET", demo::SUB_SECRET)
        .args(["groups", "list", "--base-url", &emulator.base_url()]);
    let output = run(mixed).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must come from the same place"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_profile_is_used_when_none_is_named() {
    let emulator = emulator().await;
    let config = write_config(&format!(
        "[profiles.default]\nbase_url = \"{}\"\nkey = \"{}\"\nsecret_env = \"DEFAULT_SECRET\"\n",
        emulator.base_url(),
        demo::MAIN_KEY
    ));
    let mut command = gate_stp(&config);
    command
        .args(["groups", "create", "default desk", "--json"])
        .env("DEFAULT_SECRET", demo::MAIN_SECRET);
    let output = run(command).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("default desk"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_command_supplies_the_secret_and_its_failures_show_no_output() {
    let emulator = emulator().await;
    let dir = temp_dir();
    let marker = dir.join("ran");
    let config = write_config(&format!(
        "[profiles.ok]\nbase_url = \"{url}\"\nkey = \"{key}\"\n\
         secret_command = [\"printf\", \"  %s\\n\", \"{secret}\"]\n\n\
         [profiles.fails]\nbase_url = \"{url}\"\nkey = \"{key}\"\n\
         secret_command = [\"sh\", \"-c\", \"echo leaked-{secret}; exit 3\"]\n\n\
         [profiles.missing]\nbase_url = \"{url}\"\nkey = \"{key}\"\n\
         secret_command = [\"/nonexistent/gate-stp-password-manager\"]\n\n\
         [profiles.marks]\nbase_url = \"{url}\"\nkey = \"{key}\"\n\
         secret_command = [\"touch\", \"{marker}\"]\n",
        url = emulator.base_url(),
        key = demo::MAIN_KEY,
        secret = demo::MAIN_SECRET,
        marker = marker.display(),
    ));
    let with = |profile: &str| {
        let mut command = gate_stp(&config);
        command.args(["groups", "list", "--profile", profile]);
        command
    };

    // Output trimmed, used as the secret.
    let output = run(with("ok")).await;
    assert_eq!(code(&output), Some(0), "{output:?}");

    let output = run(with("fails")).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("secret_command \"sh\" failed"), "{stderr}");
    assert!(stderr.contains("exit status: 3"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
    assert!(output.stdout.is_empty());

    let output = run(with("missing")).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not start"));

    // Credentials given in the environment mean the command is never run (a secret alone
    // would not do: key and secret come from one place).
    let mut env_secret = with("marks");
    env_secret
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET);
    let output = run(env_secret).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
    assert!(!marker.exists());
    // Without it, it runs (and prints nothing, which is refused).
    let output = run(with("marks")).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    assert!(marker.exists());
    assert!(String::from_utf8_lossy(&output.stderr).contains("printed nothing"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_inline_secret_in_a_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;

    let emulator = emulator().await;
    let config = write_config(&format!(
        "[profiles.inline]\nbase_url = \"{}\"\nkey = \"{}\"\nsecret = \"{}\"\n",
        emulator.base_url(),
        demo::MAIN_KEY,
        demo::MAIN_SECRET
    ));
    let list = || {
        let mut command = gate_stp(&config);
        command.args(["groups", "list", "--profile", "inline"]);
        command
    };
    let output = run(list()).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");

    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(list()).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("readable by other users (mode 644)"),
        "{stderr}"
    );
    assert!(!stderr.contains(demo::MAIN_SECRET));
}

#[test]
fn profiles_are_listed_without_secrets() {
    let config = write_config(
        "[profiles.\"desk-a\"]\nbase_url = \"https://api.gateio.ws/api/v4\"\n\
         key = \"0123456789abcdef\"\nsecret_env = \"DESK_A_SECRET\"\n\n\
         [profiles.\"desk-b\"]\nkey = \"fedcba9876543210\"\n\
         secret_command = [\"pass\", \"show\", \"gate/desk-b\"]\n\n\
         [profiles.inline]\nkey = \"k\"\nsecret = \"inline-hunter2\"\n\n\
         [profiles.\"evil\\u001b[2J\"]\n",
    );
    let output = gate_stp(&config).arg("profiles").output().unwrap();
    assert_eq!(code(&output), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("desk-a"),
        [
            "desk-a",
            "https://api.gateio.ws/api/v4",
            "0123…",
            "env",
            "DESK_A_SECRET"
        ]
    );
    assert_eq!(row("desk-b"), ["desk-b", "-", "fedc…", "command", "pass"]);
    assert_eq!(row("inline"), ["inline", "-", "k", "in", "the", "file"]);
    assert_eq!(row("evil"), [r"evil\x1b[2J", "-", "-", "-"]);
    assert!(!text.contains("hunter2") && !text.contains("0123456789abcdef"));
    assert!(!text.contains('\u{1b}'));
    assert!(text.starts_with(&format!("config file: {}", config.display())));

    // A broken file is reported with its line, nothing else.
    let broken = write_config("[profiles.a]\nkey = \"k\"\nsecrte = \"typo\"\n");
    let output = gate_stp(&broken).arg("profiles").output().unwrap();
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(!stderr.contains("typo\""), "{stderr}");

    // No file: no profiles, not an error.
    let missing = temp_dir().file("none.toml");
    let output = gate_stp(&missing).arg("profiles").output().unwrap();
    assert_eq!(code(&output), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("(no profiles)"));
}

/// `gate-stp profiles` with `HOME` and, when given, `XDG_CONFIG_HOME` (no GATE_STP_CONFIG
/// unless `config` is given): the first line names the file it read.
#[cfg(target_os = "linux")]
fn profiles_with(home: &Path, xdg: Option<&std::ffi::OsStr>, config: Option<&Path>) -> String {
    let mut command = crate::common::cli::gate_stp();
    command
        .env_remove("GATE_STP_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home)
        .arg("profiles");
    if let Some(xdg) = xdg {
        command.env("XDG_CONFIG_HOME", xdg);
    }
    if let Some(config) = config {
        command.env("GATE_STP_CONFIG", config);
    }
    let output = command.output().unwrap();
    assert_eq!(code(&output), Some(0), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn the_config_file_is_found_in_xdg_config_home_then_home_unless_gate_stp_config_says() {
    let home = temp_dir();
    let xdg = home.join("xdg");
    let in_xdg = xdg.join("gate-stp").join("config.toml");
    let in_home = home.join(".config").join("gate-stp").join("config.toml");
    for (path, profile) in [(&in_xdg, "from-xdg"), (&in_home, "from-home")] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("[profiles.{profile}]\nkey = \"k\"\n")).unwrap();
    }
    let listed = |text: &str, profile: &str| text.lines().any(|line| line.starts_with(profile));

    // XDG_CONFIG_HOME is used on Linux.
    let text = profiles_with(&home, Some(xdg.as_os_str()), None);
    assert!(
        text.starts_with(&format!("config file: {}\n", in_xdg.display())),
        "{text}"
    );
    assert!(
        listed(&text, "from-xdg") && !listed(&text, "from-home"),
        "{text}"
    );

    // Unset, or not an absolute path (the XDG rule): ~/.config.
    for xdg in [None, Some(std::ffi::OsStr::new("relative/xdg"))] {
        let text = profiles_with(&home, xdg, None);
        assert!(
            text.starts_with(&format!("config file: {}\n", in_home.display())),
            "{xdg:?}: {text}"
        );
        assert!(listed(&text, "from-home"), "{text}");
    }

    // GATE_STP_CONFIG overrides both.
    let elsewhere = write_config("[profiles.from-variable]\nkey = \"k\"\n");
    let text = profiles_with(&home, Some(xdg.as_os_str()), Some(&elsewhere));
    assert!(
        text.starts_with(&format!("config file: {}\n", elsewhere.display())),
        "{text}"
    );
    assert!(
        listed(&text, "from-variable") && !listed(&text, "from-xdg"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_edge_cases() {
    let emulator = emulator().await;
    let missing = temp_dir().file("none.toml");

    // --profile with no config file: refused, the file named.
    let mut command = gate_stp(&missing);
    command.args(["groups", "list", "--profile", "desk"]);
    let output = run(command).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
    assert!(stderr.contains("none.toml"), "{stderr}");

    // No credentials at all: refused before anything is sent, the operation named.
    let mut command = gate_stp(&missing);
    command.args(["groups", "list", "--base-url", &emulator.base_url()]);
    let output = run(command).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("listSTPGroups"),
        "{output:?}"
    );

    // A secret_env variable that is set but empty is no secret.
    let config = desk_config(&emulator.base_url());
    let mut command = gate_stp(&config);
    command
        .env("DESK_SECRET", "")
        .args(["groups", "list", "--profile", "desk"]);
    let output = run(command).await;
    assert_eq!(code(&output), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("environment variable DESK_SECRET (secret_env) is not set"),
        "{stderr}"
    );

    // Everything given by flags: a broken config file is never read.
    let broken = write_config("this is not toml [");
    let mut command = gate_stp(&broken);
    command
        .args(["groups", "list", "--base-url", &emulator.base_url()])
        .args(["--key", demo::MAIN_KEY, "--secret", demo::MAIN_SECRET]);
    let output = run(command).await;
    assert_eq!(code(&output), Some(0), "{output:?}");
    // ... while a profile-dependent run reports it.
    let mut command = gate_stp(&broken);
    command.args(["groups", "list", "--base-url", &emulator.base_url()]);
    assert_eq!(code(&run(command).await), Some(2));
}

#[test]
fn sign_takes_the_secret_of_a_profile() {
    let config = write_config(&format!(
        "[profiles.desk]\nkey = \"{}\"\nsecret_env = \"DESK_SECRET\"\n",
        demo::MAIN_KEY
    ));
    let sign = |extra: &[&str]| {
        let output = gate_stp(&config)
            .env("DESK_SECRET", demo::MAIN_SECRET)
            .args(["sign", "--method", "GET", "--path", "/api/v4/spot/time"])
            .args(["--timestamp", "1700000000"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(code(&output), Some(0), "{extra:?}: {output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned()
    };
    let by_profile = sign(&["--profile", "desk"]);
    let by_flag = sign(&["--secret", demo::MAIN_SECRET]);
    let by_other = sign(&["--secret", demo::SUB_SECRET]);
    assert_eq!(by_profile, by_flag);
    assert_ne!(by_profile, by_other);
    assert_eq!(by_profile.len(), 128, "{by_profile}");
}
