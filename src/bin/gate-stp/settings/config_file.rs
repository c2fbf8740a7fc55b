//! The config file: named profiles for several main accounts, and where their secrets
//! come from.
//!
//! ```toml
//! [profiles.desk-a]
//! base_url = "https://api.gateio.ws/api/v4"
//! key = "0123456789abcdef"
//! secret_env = "GATE_DESK_A_SECRET"           # the secret is in this environment variable
//!
//! [profiles.desk-b]
//! key = "fedcba9876543210"
//! secret_command = ["pass", "show", "gate/desk-b"]   # run without a shell; stdout is the secret
//! ```
//!
//! Each setting is taken, in this order, from the command-line flag, its environment
//! variable, the selected profile, and the built-in default. The profile is the one named by
//! `--profile` / `GATE_STP_PROFILE`, else the profile called `default` if the file has one.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroize;

use crate::{failure::Failure, output::errln};

/// Environment variable holding the config file's path, overriding the platform default.
pub(crate) const CONFIG_ENV: &str = "GATE_STP_CONFIG";

/// Profile used when none is selected, if the file defines it.
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

/// One named profile. Its Debug never shows an inline secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    pub(crate) base_url: Option<String>,
    pub(crate) key: Option<String>,
    /// Name of the environment variable that holds the secret.
    pub(crate) secret_env: Option<String>,
    /// Program and arguments, run without a shell; its trimmed stdout is the secret.
    pub(crate) secret_command: Option<Vec<String>>,
    /// Tolerated, with a warning when the file is readable by other users.
    #[serde(default, deserialize_with = "inline_secret")]
    pub(crate) secret: Option<SecretString>,
}

/// Reads an inline secret straight into its zeroizing, redacted box.
fn inline_secret<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
    Ok(Some(SecretString::from(text.as_str())))
}

/// Where a profile's secret comes from.
pub(crate) enum SecretSource<'a> {
    None,
    Env(&'a str),
    Command(&'a [String]),
    Inline(&'a SecretString),
}

impl Profile {
    pub(crate) fn secret_source(&self, name: &str) -> Result<SecretSource<'_>, Failure> {
        match (&self.secret_env, &self.secret_command, &self.secret) {
            (None, None, None) => Ok(SecretSource::None),
            (Some(var), None, None) => Ok(SecretSource::Env(var)),
            (None, Some(argv), None) => Ok(SecretSource::Command(argv)),
            (None, None, Some(secret)) => Ok(SecretSource::Inline(secret)),
            _ => Err(Failure::usage(format!(
                "profile {name}: give only one of secret_env, secret_command and secret"
            ))),
        }
    }

    /// The secret, fetched from its source. Never printed, not even on failure.
    pub(crate) fn secret(&self, name: &str) -> Result<Option<SecretString>, Failure> {
        match self.secret_source(name)? {
            SecretSource::None => Ok(None),
            SecretSource::Inline(secret) => Ok(Some(secret.clone())),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
                _ => Err(Failure::usage(format!(
                    "profile {name}: environment variable {var} (secret_env) is not set"
                ))),
            },
            SecretSource::Command(argv) => run_secret_command(name, argv).map(Some),
        }
    }

    /// How the secret is obtained, for `gate-stp profiles`.
    pub(crate) fn describe_secret(&self, name: &str) -> String {
        match self.secret_source(name) {
            Ok(SecretSource::None) => "-".to_owned(),
            Ok(SecretSource::Env(var)) => format!("env {var}"),
            Ok(SecretSource::Command(argv)) => {
                format!("command {}", argv.first().map_or("", String::as_str))
            }
            Ok(SecretSource::Inline(_)) => "in the file".to_owned(),
            Err(_) => "invalid: several sources".to_owned(),
        }
    }
}

/// Runs `argv` (no shell) with stdin closed and stderr shared, so that a password manager
/// can prompt on the terminal. Its stdout is never shown: it is, or contains, the secret.
fn run_secret_command(name: &str, argv: &[String]) -> Result<SecretString, Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::usage(format!(
            "profile {name}: secret_command is empty"
        )));
    };
    let failed = |why: String| {
        Failure::usage(format!(
            "profile {name}: secret_command {program:?} {why} (its output is not shown)"
        ))
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    let mut bytes = Vec::new();
    let read = child
        .stdout
        .take()
        .map_or(Ok(0), |mut stdout| stdout.read_to_end(&mut bytes));
    let status = child.wait();
    let result = match (read, status) {
        (_, Ok(status)) if !status.success() => Err(failed(format!("failed ({status})"))),
        (Ok(_), Ok(_)) => match std::str::from_utf8(&bytes) {
            Ok(text) if !text.trim().is_empty() => Ok(SecretString::from(text.trim())),
            Ok(_) => Err(failed("printed nothing".to_owned())),
            Err(_) => Err(failed("printed bytes that are not UTF-8".to_owned())),
        },
        (Err(e), _) | (_, Err(e)) => Err(failed(format!("could not be read: {e}"))),
    };
    bytes.zeroize();
    result
}

/// The config file's path: `GATE_STP_CONFIG`, else `gate-stp/config.toml` in the platform's
/// config directory (`$XDG_CONFIG_HOME` or `~/.config`, `~/Library/Application Support`,
/// `%APPDATA%`, as the `dirs` crate knows them). `None` when no home directory is known.
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    dirs::config_dir().map(|dir| dir.join("gate-stp").join("config.toml"))
}

/// Reads the config file. A missing file is an empty config unless `required`.
pub(crate) fn load(path: Option<&Path>, required: bool) -> Result<ConfigFile, Failure> {
    let Some(path) = path else {
        return if required {
            Err(Failure::usage(format!(
                "no config file: set {CONFIG_ENV} (no home directory is known)"
            )))
        } else {
            Ok(ConfigFile::default())
        };
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(ConfigFile::default());
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    let config: ConfigFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        Failure::usage(format!(
            "config file {}{}: {}",
            path.display(),
            line.map(|l| format!(", line {l}")).unwrap_or_default(),
            e.message()
        ))
    })?;
    if config.profiles.values().any(|p| p.secret.is_some()) {
        warn_if_readable_by_others(path);
    }
    Ok(config)
}

/// A secret in a file others can read is a secret shared with them.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            errln!(
                "warning: {} holds a secret and is readable by other users (mode {mode:03o}); \
                 run `chmod 600` on it, or use secret_env or secret_command",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The profile selected by name, or the `default` one when none is named.
pub(crate) fn select<'a>(
    config: &'a ConfigFile,
    name: Option<&str>,
    path: Option<&Path>,
) -> Result<Option<(&'a str, &'a Profile)>, Failure> {
    let Some(name) = name else {
        return Ok(config
            .profiles
            .get_key_value(DEFAULT_PROFILE)
            .map(|(n, p)| (n.as_str(), p)));
    };
    match config.profiles.get_key_value(name) {
        Some((n, p)) => Ok(Some((n.as_str(), p))),
        None => Err(Failure::usage(format!(
            "no profile {name:?} in {}",
            path.map_or_else(|| "(no config file)".into(), |p| p.display().to_string())
        ))),
    }
}

/// The first 4 characters of a key (as in the library's request spans), never the whole.
pub(crate) fn key_prefix(key: &str) -> String {
    let prefix: String = key.chars().take(4).collect();
    if prefix.len() < key.len() {
        format!("{prefix}…")
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn inline_secret_never_shows_in_debug() {
        let config = parse("[profiles.a]\nkey = \"k\"\nsecret = \"hunter2-secret\"\n");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(config.profiles["a"].describe_secret("a"), "in the file");
    }

    #[test]
    fn several_secret_sources_are_refused() {
        let config = parse("[profiles.a]\nsecret_env = \"X\"\nsecret = \"s\"\n");
        assert!(config.profiles["a"].secret("a").is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<ConfigFile>("[profiles.a]\nsecrte_env = \"X\"\n").is_err());
    }

    #[test]
    fn key_prefixes_hide_the_rest() {
        assert_eq!(key_prefix("0123456789abcdef"), "0123…");
        assert_eq!(key_prefix("abc"), "abc");
    }
}
