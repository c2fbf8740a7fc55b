//! The `gate-stp` binary, run as the CLI tests need it: isolated from whatever the
//! developer's or CI's environment holds (GATE_* settings, a profile, proxies, RUST_LOG,
//! NO_COLOR, a config file in the home directory), so every test sees the same defaults.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Variables the binary reads that a test must not inherit.
const INHERITED: &[&str] = &[
    "GATE_BASE_URL",
    "GATE_API_KEY",
    "GATE_API_SECRET",
    "GATE_STP_PROFILE",
    "RUST_LOG",
    "NO_COLOR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A config path that does not exist: no profile applies.
pub fn no_config() -> PathBuf {
    // In a fresh folder (a fixed name in the shared temp folder could exist), which is
    // removed at once: the path names nothing, and nothing is left behind.
    super::fresh_dir("no-config").join("none.toml")
}

/// The binary with none of the caller's settings, `config` as its config file and no
/// standard input.
pub fn gate_stp_with_config(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gate-stp"));
    for var in INHERITED {
        command.env_remove(var);
    }
    command.env("GATE_STP_CONFIG", config).stdin(Stdio::null());
    command
}

/// The binary with none of the caller's settings and no config file.
pub fn gate_stp() -> Command {
    gate_stp_with_config(&no_config())
}

/// Runs `command` to its end off the async runtime (a blocking wait on a runtime thread
/// would starve the emulator serving the command on the same runtime).
pub async fn output_off_runtime(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("the binary runs"))
        .await
        .expect("the blocking task ends")
}
