//! Where the client's settings come from: flags (before or after the command), environment
//! variables, the selected profile of the config file, built-in defaults; in that order,
//! with the key and the secret always taken as a pair from one place.

mod config_file;

use std::time::Duration;

use clap::Args;
use gate_stp::{Client, ClientBuilder, Credentials};
use secrecy::{ExposeSecret, SecretString};

pub(crate) use config_file::{CONFIG_ENV, config_path, key_prefix, load};

use crate::failure::Failure;

/// Where settings come from, shown under `--help`.
pub(crate) const PRECEDENCE: &str = "\
Each client setting is taken from, in this order: its flag; its environment variable
(GATE_BASE_URL, GATE_API_KEY, GATE_API_SECRET); the selected profile (--profile or
GATE_STP_PROFILE, else the profile named `default` if there is one) in the config file
(GATE_STP_CONFIG, else gate-stp/config.toml in the platform's config directory); the
built-in default (Gate's live API). The key and the secret come as a pair from one place.
Every option of the command line goes before or after the command, one given in both
places must have the same value, and one the command does not take is refused on either
side.";

/// Heading of the client options in every help text, apart from the command's own options.
const CLIENT_OPTIONS: &str = "Client options";

/// Default of `--timeout`, in seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Options of the commands that call the API, given after the command. `global` makes
/// them valid after any subcommand of the command that flattens them
/// (`gate-stp groups list --timeout 5`, `gate-stp groups --timeout 5 list`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = CLIENT_OPTIONS)]
pub(crate) struct ClientArgs {
    /// Profile of the config file to use (default: the profile named `default`, if any).
    #[arg(long, global = true, env = "GATE_STP_PROFILE", value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Base URL of the API, including /api/v4 (default: Gate's live API).
    #[arg(long, global = true, env = "GATE_BASE_URL", value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// API key.
    #[arg(
        long,
        global = true,
        env = "GATE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub(crate) key: Option<String>,
    #[command(flatten)]
    pub(crate) secret: SecretArg,
    /// Timeout of each request, in seconds (1 to 3600).
    #[arg(
        long,
        global = true,
        default_value_t = DEFAULT_TIMEOUT_SECS,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub(crate) timeout: u64,
}

/// `--json`, for the commands that print for programs (after any of their subcommands).
#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print responses as JSON, for programs.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The API secret, kept in a zeroizing box whose Debug is redacted.
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArg {
    /// API secret. Prefer the GATE_API_SECRET environment variable or a profile: a secret
    /// on the command line ends up in shell history and in the process list.
    #[arg(
        id = "secret",
        long = "secret",
        global = true,
        env = "GATE_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub(crate) value: Option<SecretString>,
}

fn parse_secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// The options given before the command (`gate-stp --profile desk-a groups list`): each
/// option some command takes, merged into that command's own by [`LeadingOptions::merge`]
/// and refused for a command that does not take it. Plain flags: the environment variables
/// are read once, by the command's own options, so that the help of a command without
/// them (`mock`) shows none. Their ids differ from the command's options: clap copies a
/// global option's value to every level of the parsed line under its id, which would
/// overwrite the value given before the command with the one given after it.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = CLIENT_OPTIONS)]
pub(crate) struct LeadingOptions {
    /// Profile of the config file to use (GATE_STP_PROFILE).
    #[arg(id = "leading_profile", long = "profile", value_name = "NAME")]
    profile: Option<String>,
    /// Base URL of the API, including /api/v4 (GATE_BASE_URL).
    #[arg(id = "leading_base_url", long = "base-url", value_name = "URL")]
    base_url: Option<String>,
    /// API key (GATE_API_KEY).
    #[arg(id = "leading_key", long = "key", value_name = "KEY")]
    key: Option<String>,
    /// API secret (GATE_API_SECRET; prefer it or a profile to this flag).
    #[arg(id = "leading_secret", long = "secret", value_name = "SECRET", value_parser = parse_secret)]
    secret: Option<SecretString>,
    /// Print responses as JSON, for programs.
    #[arg(id = "leading_json", long = "json", help_heading = None::<&str>)]
    json: bool,
    /// Timeout of each request, in seconds (1 to 3600, default 10).
    #[arg(id = "leading_timeout", long = "timeout", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: Option<u64>,
}

/// Which of a command's options were typed after the command, as opposed to taken from an
/// environment variable or a default (clap knows; the values alone do not say).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TypedAfter {
    pub(crate) profile: bool,
    pub(crate) base_url: bool,
    pub(crate) key: bool,
    pub(crate) secret: bool,
    pub(crate) timeout: bool,
}

impl TypedAfter {
    /// Reads the sources from the parsed command line, at any depth of subcommand.
    pub(crate) fn from_matches(matches: &clap::ArgMatches) -> Self {
        let typed = |id: &str| {
            let mut level = matches.subcommand();
            while let Some((_, sub)) = level {
                let on_line = sub.ids().any(|known| known.as_str() == id)
                    && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
                if on_line {
                    return true;
                }
                level = sub.subcommand();
            }
            false
        };
        Self {
            profile: typed("profile"),
            base_url: typed("base_url"),
            key: typed("key"),
            secret: typed("secret"),
            timeout: typed("timeout"),
        }
    }
}

/// Where a command keeps each option it takes that may also come before it: the slots
/// [`LeadingOptions::merge`] fills. A command declares them once (`cli.rs`); an option
/// without a slot is refused before the command, as clap refuses it after.
#[derive(Debug, Default)]
pub(crate) struct Takes<'a> {
    pub(crate) profile: Option<&'a mut Option<String>>,
    pub(crate) base_url: Option<&'a mut Option<String>>,
    pub(crate) key: Option<&'a mut Option<String>>,
    pub(crate) secret: Option<&'a mut Option<SecretString>>,
    pub(crate) json: Option<&'a mut bool>,
    pub(crate) timeout: Option<&'a mut u64>,
}

impl<'a> Takes<'a> {
    /// The client options of a command that calls the API.
    pub(crate) fn client(args: &'a mut ClientArgs) -> Self {
        Takes {
            profile: Some(&mut args.profile),
            base_url: Some(&mut args.base_url),
            key: Some(&mut args.key),
            secret: Some(&mut args.secret.value),
            json: None,
            timeout: Some(&mut args.timeout),
        }
    }

    /// ... and its `--json`.
    pub(crate) fn json(mut self, json: &'a mut bool) -> Self {
        self.json = Some(json);
        self
    }

    /// The flags of the slots there are, in the order of `--help`.
    pub(crate) fn flags(&self) -> Vec<&'static str> {
        [
            ("--profile", self.profile.is_some()),
            ("--base-url", self.base_url.is_some()),
            ("--key", self.key.is_some()),
            ("--secret", self.secret.is_some()),
            ("--json", self.json.is_some()),
            ("--timeout", self.timeout.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, taken)| taken.then_some(flag))
        .collect()
    }
}

impl LeadingOptions {
    /// Merges the options given before `command` into the ones it takes (`takes`). An
    /// option typed before the command beats its environment variable and default (a flag
    /// beats a variable, wherever it stands); typed on both sides, it must have the same
    /// value. One the command does not take is refused: with the command's own reason
    /// (`refuses`), else named with what it takes.
    pub(crate) fn merge(
        self,
        command: &str,
        refuses: &[(&str, &str)],
        takes: Takes<'_>,
        typed_after: TypedAfter,
    ) -> Result<(), Failure> {
        let taken = takes.flags();
        let refuse = |flag: &str| {
            let reason = refuses.iter().find(|(refused, _)| *refused == flag);
            Failure::usage(if let Some((_, reason)) = reason {
                (*reason).to_owned()
            } else if taken.is_empty() {
                format!(
                    "`{command}` takes no client options (--profile, --base-url, --key, \
                     --secret, --json, --timeout before the command)"
                )
            } else {
                format!(
                    "`{command}` takes no {flag}: before the command it takes {}",
                    taken.join(", ")
                )
            })
        };
        let Takes {
            profile,
            base_url,
            key,
            secret,
            json,
            timeout,
        } = takes;
        if let Some(before) = self.profile {
            let slot = profile.ok_or_else(|| refuse("--profile"))?;
            *slot = pick("profile", slot.take(), typed_after.profile, Some(before))?;
        }
        if let Some(before) = self.base_url {
            let slot = base_url.ok_or_else(|| refuse("--base-url"))?;
            *slot = pick("base-url", slot.take(), typed_after.base_url, Some(before))?;
        }
        if let Some(before) = self.key {
            let slot = key.ok_or_else(|| refuse("--key"))?;
            *slot = pick("key", slot.take(), typed_after.key, Some(before))?;
        }
        if let Some(before) = self.secret {
            let slot = secret.ok_or_else(|| refuse("--secret"))?;
            *slot = pick_secret(slot.take(), typed_after.secret, Some(before))?;
        }
        if self.json {
            *json.ok_or_else(|| refuse("--json"))? = true;
        }
        if let Some(before) = self.timeout {
            let slot = timeout.ok_or_else(|| refuse("--timeout"))?;
            let after = *slot;
            *slot =
                pick("timeout", Some(after), typed_after.timeout, Some(before))?.unwrap_or(after);
        }
        Ok(())
    }
}

impl ClientArgs {
    /// Base URL, key and secret after flags, environment and profile are applied; for a
    /// desired-state file that names `file_profile`, all three come from that profile,
    /// never from a flag or variable (those may be meant for another account, and a key
    /// must never sign for another account's file).
    pub(crate) fn resolve(&self, file_profile: Option<&str>) -> Result<Settings, Failure> {
        match file_profile {
            Some(profile) => settings(Some(profile), Settings::default()),
            None => resolve_flags_first(self),
        }
    }

    /// The client builder for resolved settings, with these options' timeout.
    pub(crate) fn builder(&self, settings: &Settings) -> Result<ClientBuilder, Failure> {
        builder_from(settings, self.timeout)
    }
}

/// One option's value: typed after the command, else typed before it, else the
/// environment's or the default.
fn pick<T: PartialEq>(
    flag: &str,
    after: Option<T>,
    typed_after: bool,
    before: Option<T>,
) -> Result<Option<T>, Failure> {
    match (before, typed_after) {
        (Some(before), true) if after.as_ref() != Some(&before) => Err(twice(flag)),
        (Some(before), false) => Ok(Some(before)),
        _ => Ok(after),
    }
}

/// [`pick`] for the secret, compared without leaving its box longer than the comparison.
fn pick_secret(
    after: Option<SecretString>,
    typed_after: bool,
    before: Option<SecretString>,
) -> Result<Option<SecretString>, Failure> {
    match (before, typed_after) {
        (Some(before), true) => {
            let same = after
                .as_ref()
                .is_some_and(|after| after.expose_secret() == before.expose_secret());
            if same {
                Ok(after)
            } else {
                Err(twice("secret"))
            }
        }
        (Some(before), false) => Ok(Some(before)),
        (None, _) => Ok(after),
    }
}

fn twice(flag: &str) -> Failure {
    Failure::usage(format!(
        "--{flag} is given before and after the command with different values; give it once"
    ))
}

/// Base URL, key and secret after flags, environment and profile are applied.
#[derive(Debug, Default, Clone)]
pub(crate) struct Settings {
    pub(crate) base_url: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) secret: Option<SecretString>,
}

/// Fills what flags and environment left open from the selected profile. The profile's
/// secret is only fetched (its command only run) when no flag or variable gave one.
pub(crate) fn settings(profile: Option<&str>, given: Settings) -> Result<Settings, Failure> {
    let complete = given.base_url.is_some() && given.key.is_some() && given.secret.is_some();
    if complete && profile.is_none() {
        return Ok(given);
    }
    let path = config_file::config_path();
    let config = config_file::load(path.as_deref(), profile.is_some())?;
    let Some((name, selected)) = config_file::select(&config, profile, path.as_deref())? else {
        return Ok(given);
    };
    let secret = match given.secret {
        Some(secret) => Some(secret),
        None => selected.secret(name)?,
    };
    Ok(Settings {
        base_url: given.base_url.or_else(|| selected.base_url.clone()),
        key: given.key.or_else(|| selected.key.clone()),
        secret,
    })
}

fn resolve_flags_first(args: &ClientArgs) -> Result<Settings, Failure> {
    let given = Settings {
        base_url: args.base_url.clone(),
        key: args.key.clone(),
        secret: args.secret.value.clone(),
    };
    // A key and a secret belong together: one from the flags or environment and the other
    // from a profile would sign with a secret of another key.
    let half_given = given.key.is_some() != given.secret.is_some();
    let settings = settings(args.profile.as_deref(), given)?;
    if half_given && settings.key.is_some() && settings.secret.is_some() {
        return Err(Failure::usage(
            "the key and the secret must come from the same place: give both --key and \
             --secret (or GATE_API_KEY and GATE_API_SECRET), or neither and let the profile \
             give both",
        ));
    }
    Ok(settings)
}

/// The builder for resolved settings: the key and the secret must both be there, or neither.
fn builder_from(settings: &Settings, timeout_secs: u64) -> Result<ClientBuilder, Failure> {
    let mut builder = Client::builder().timeout(Duration::from_secs(timeout_secs));
    if let Some(url) = &settings.base_url {
        builder = builder.base_url(url);
    }
    match (&settings.key, &settings.secret) {
        (Some(key), Some(secret)) => {
            builder = builder.credentials(Credentials::new(key, secret.expose_secret())?)
        }
        (None, None) => {}
        _ => {
            return Err(Failure::usage(
                "give both the API key and the secret (--key and --secret, GATE_API_KEY and \
                 GATE_API_SECRET, or a profile with both)",
            ));
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::{pick, pick_secret};

    #[test]
    fn an_option_typed_after_the_command_wins_over_its_variable_but_not_over_a_clash() {
        // Typed only before: beats whatever the environment gave after.
        assert_eq!(
            pick("key", Some("env"), false, Some("before")).ok(),
            Some(Some("before"))
        );
        // Typed only after, or nothing before: the after value (typed, variable or default).
        assert_eq!(
            pick("key", Some("after"), true, None).ok(),
            Some(Some("after"))
        );
        assert_eq!(
            pick("key", Some("env"), false, None).ok(),
            Some(Some("env"))
        );
        assert_eq!(pick::<&str>("key", None, false, None).ok(), Some(None));
        // Typed on both sides: the same value is one setting, two values are refused.
        assert_eq!(
            pick("key", Some("a"), true, Some("a")).ok(),
            Some(Some("a"))
        );
        let clash = pick("key", Some("a"), true, Some("b")).unwrap_err();
        assert!(clash.message.contains("--key"), "{clash:?}");
    }

    #[test]
    fn secrets_follow_the_same_rule() {
        let secret = |text: &str| Some(SecretString::from(text));
        let exposed = |value: Option<SecretString>| value.map(|s| s.expose_secret().to_owned());
        assert_eq!(
            exposed(pick_secret(secret("env"), false, secret("before")).unwrap()),
            Some("before".to_owned())
        );
        assert_eq!(
            exposed(pick_secret(secret("same"), true, secret("same")).unwrap()),
            Some("same".to_owned())
        );
        let clash = pick_secret(secret("hunter2-a"), true, secret("hunter2-b")).unwrap_err();
        // The refusal names the option, never a value.
        assert!(clash.message.contains("--secret"), "{clash:?}");
        assert!(!clash.message.contains("hunter2"), "{clash:?}");
        assert_eq!(
            exposed(pick_secret(secret("after"), true, None).unwrap()),
            Some("after".to_owned())
        );
    }
}
