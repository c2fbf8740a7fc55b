//! `gate-stp`: manage Gate STP groups from the command line, debug signatures, and run
//! the offline emulator.

// Every line goes through `outln!`/`errln!` (output.rs): a closed pipe ends quietly and
// control characters are escaped. A bare `println!` would bypass both.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod demo;
mod demo_as_code;
mod docs;
mod mcp;
mod output;
mod profiles;
mod stp_as_code;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use gate_stp::{
    Client, ClientBuilder, Credentials, Error,
    mock::{Emulator, EmulatorConfig, World},
    signing::{self, SigningInput},
    text::truncate_chars,
};
use secrecy::{ExposeSecret, SecretString};

use output::Output;

/// Exit codes, distinct per kind of failure.
mod exit {
    /// Bad command line, input refused before sending, missing credentials, bad config.
    pub const USAGE: u8 = 2;
    /// Gate answered with an error (including rate limiting).
    pub const API: u8 = 3;
    /// No usable answer: connection, timeout, unexpected or oversized response, redirect.
    pub const TRANSPORT: u8 = 4;
    /// The emulator could not start or failed.
    pub const SERVICE: u8 = 5;
    /// Standard output could not be written (a full disk, say; a closed pipe is a normal
    /// end). Not 1: `plan --exit-code` says "changes pending" with 1.
    pub const OUTPUT: u8 = 6;
}

/// Where settings come from, shown under `--help`.
const PRECEDENCE: &str = "\
Each client setting is taken from, in this order: its flag; its environment variable
(GATE_BASE_URL, GATE_API_KEY, GATE_API_SECRET); the selected profile (--profile or
GATE_STP_PROFILE, else the profile named `default` if there is one) in the config file
(GATE_STP_CONFIG, else gate-stp/config.toml in the platform's config directory); the
built-in default (Gate's live API). The key and the secret come as a pair from one place.";

#[derive(Debug, Parser)]
#[command(
    name = "gate-stp",
    version,
    about = "Gate API v4 STP groups: client, signature debugger and offline emulator",
    after_help = PRECEDENCE
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of the commands that call the API. `global` makes them valid after any
/// subcommand of the command that flattens them (`gate-stp groups list --json`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Client options")]
struct ClientArgs {
    /// Profile of the config file to use (default: the profile named `default`, if any).
    #[arg(long, global = true, env = "GATE_STP_PROFILE", value_name = "NAME")]
    profile: Option<String>,
    /// Base URL of the API, including /api/v4 (default: Gate's live API).
    #[arg(long, global = true, env = "GATE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// API key.
    #[arg(
        long,
        global = true,
        env = "GATE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    #[command(flatten)]
    secret: SecretArg,
    /// Print responses as JSON, for programs.
    #[arg(long, global = true)]
    json: bool,
    /// Timeout of each request, in seconds (1 to 3600).
    #[arg(
        long,
        global = true,
        default_value_t = 10,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    timeout: u64,
}

/// The API secret, kept in a zeroizing box whose Debug is redacted.
#[derive(Debug, Args)]
struct SecretArg {
    /// API secret. Prefer the GATE_API_SECRET environment variable or a profile: a secret
    /// on the command line ends up in shell history and in the process list.
    #[arg(
        long = "secret",
        global = true,
        env = "GATE_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    value: Option<SecretString>,
}

fn parse_secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// STP groups of the calling main account.
    Groups {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Members of an STP group.
    Users {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Gate's clock and this machine's offset from it.
    Time(ClientArgs),
    /// Compute SIGN for a request, to debug signature mismatches: the signature string
    /// goes to stderr, SIGN is the last line of stdout.
    Sign(SignArgs),
    /// Run the Gate STP emulator until interrupted.
    Mock(MockArgs),
    /// Run the whole workflow against an in-process emulator.
    Demo(DemoArgs),
    /// List the profiles of the config file (never their secrets).
    Profiles,
    /// Print a shell completion script.
    ///
    /// For example: `gate-stp completions bash > ~/.local/share/bash-completion/completions/gate-stp`,
    /// `gate-stp completions zsh > ~/.zfunc/_gate-stp`,
    /// `gate-stp completions fish > ~/.config/fish/completions/gate-stp.fish`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    Man {
        /// Directory to write gate-stp.1 and one page per subcommand into.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare a desired-state file with the live STP groups and show what apply would do.
    Plan {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: stp_as_code::PlanArgs,
    },
    /// Bring the live STP groups to a desired-state file (or a saved plan).
    Apply {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: stp_as_code::ApplyArgs,
    },
    /// Serve the STP tools to AI agents over MCP (stdio): read, plan, and apply a reviewed
    /// plan by its digest (only with --allow-apply).
    Mcp(mcp::McpArgs),
    /// Write the live STP groups as a desired-state file, ids pinned.
    Export {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: stp_as_code::ExportArgs,
    },
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// List groups, optionally those whose name contains NAME.
    List {
        /// Part of the group name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a group.
    Create {
        /// Name of the new group.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// List the members of a group.
    List {
        /// Group id.
        stp_id: i64,
    },
    /// Add users to a group.
    Add {
        /// Group id.
        stp_id: i64,
        /// User ids to add.
        #[arg(required = true, num_args = 1..)]
        user_ids: Vec<i64>,
    },
    /// Remove users from a group (one request).
    Remove {
        /// Group id.
        stp_id: i64,
        /// User ids to remove.
        #[arg(required = true, num_args = 1..)]
        user_ids: Vec<i64>,
    },
}

#[derive(Debug, Args)]
struct SignArgs {
    /// HTTP method.
    #[arg(long)]
    method: String,
    /// URL path including /api/v4, e.g. /api/v4/account/stp_groups.
    #[arg(long)]
    path: String,
    /// Query string as sent (percent-encoded), without `?`.
    #[arg(long, default_value = "")]
    query: String,
    /// Request body, exactly as sent.
    #[arg(long, default_value = "")]
    body: String,
    /// Timestamp header value (default: now).
    #[arg(long)]
    timestamp: Option<String>,
    /// Profile whose secret to use.
    #[arg(long, env = "GATE_STP_PROFILE", value_name = "NAME")]
    profile: Option<String>,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Print responses as JSON.
    #[arg(long)]
    json: bool,
    /// Timeout of each request, in seconds (1 to 3600).
    #[arg(long, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

#[derive(Debug, Args)]
struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// World file (TOML) with accounts; default: the built-in demo world.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Offset of the emulator's clock from this machine's, e.g. 300s, -2m, 1h, 500ms.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_offset)]
    clock_offset: Option<i64>,
    /// Switch off the rate limit (for load tests).
    #[arg(long)]
    no_rate_limit: bool,
    /// Ignore x-gate-exptime, as Gate may on STP calls (it documents the header only for
    /// order placement).
    #[arg(long)]
    ignore_exptime: bool,
    /// Let a user be in several groups (by default the emulator refuses it: an order
    /// carries one stp_id, so Gate very likely allows one group per user).
    #[arg(long)]
    allow_multiple_groups: bool,
}

/// A signed duration like `300s`, `-2m`, `1h` or `500ms`, in milliseconds.
fn parse_offset(text: &str) -> Result<i64, String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by ms, s, m or h"))?;
    let scale = match unit {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    let millis = number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?}: too large"))?;
    Ok(if negative { -millis } else { millis })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SERVICE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) if output::stdout_failed_meanwhile() => ExitCode::from(exit::OUTPUT),
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // An empty message is an outcome, not an error (`plan --exit-code`: changes).
            // Line by line: a stopped apply's report (done, failed, not sent) spans
            // several lines, and each must stay readable and whole.
            for (index, line) in failure.message.lines().enumerate() {
                let prefix = if index == 0 { "error: " } else { "" };
                errln!("{prefix}{}", truncate_chars(line, MAX_ERROR_CHARS));
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Longest error line printed, in characters: a server's message may be any length.
const MAX_ERROR_CHARS: usize = 2000;

/// Logs go to stderr, filtered by `RUST_LOG` (nothing below WARN by default).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Why the command failed, and with which exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    fn service(message: impl Into<String>) -> Self {
        Self {
            code: exit::SERVICE,
            message: message.into(),
        }
    }
}

impl Failure {
    /// The exit code for a client error.
    fn from_error_code(error: &Error) -> u8 {
        match error {
            Error::Api(_) | Error::RateLimited(_) | Error::ExpiresBeforeRateLimitReset { .. } => {
                exit::API
            }
            Error::InvalidInput(_) | Error::MissingCredentials { .. } | Error::Config(_) => {
                exit::USAGE
            }
            _ => exit::TRANSPORT,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            code: Self::from_error_code(&error),
            message: with_causes(&error),
        }
    }
}

/// The error and its chain of causes on one line (`error sending request: client error
/// (Connect): tcp connect error: Connection refused`), each cause once: reqwest's own
/// message only says that sending failed, the reason is further down.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = error.source();
    }
    line
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Groups {
            client: args,
            command,
        } => {
            let (client, out) = (client(&args)?, Output::new(args.json));
            match command {
                GroupsCommand::List { name } => {
                    let mut request = client.list_groups();
                    if let Some(name) = name {
                        request = request.name(name);
                    }
                    out.groups(&request.await?);
                }
                GroupsCommand::Create { name } => {
                    out.group(&client.create_group(name).await?.into_inner())
                }
            }
        }
        Command::Users {
            client: args,
            command,
        } => {
            let (client, out) = (client(&args)?, Output::new(args.json));
            let users = match command {
                UsersCommand::List { stp_id } => client.list_users(stp_id).await?,
                UsersCommand::Add { stp_id, user_ids } => {
                    client.add_users(stp_id, &user_ids).await?
                }
                UsersCommand::Remove { stp_id, user_ids } => {
                    client.remove_users(stp_id, &user_ids).await?
                }
            };
            out.users(&users);
        }
        Command::Time(args) => {
            let client = client(&args)?;
            Output::new(args.json).clock(&client.sync_clock().await?);
        }
        Command::Sign(args) => sign(args)?,
        Command::Mock(args) => mock(args).await?,
        Command::Demo(args) => {
            demo::run(&Output::new(args.json), Duration::from_secs(args.timeout)).await?
        }
        Command::Profiles => profiles::list()?,
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { out } => docs::man(out.as_deref())?,
        Command::Plan { client, args } => {
            let api = stp_as_code::client(client_builder(&client)?)?;
            stp_as_code::plan(&api, client.json, args).await?
        }
        Command::Apply { client, args } => {
            let api = stp_as_code::client(client_builder(&client)?)?;
            stp_as_code::apply(&api, client.json, args).await?
        }
        Command::Mcp(args) => mcp::run(args).await?,
        Command::Export { client, args } => {
            let api = stp_as_code::client(client_builder(&client)?)?;
            stp_as_code::export(&api, args).await?
        }
    }
    Ok(())
}

/// Base URL, key and secret after flags, environment and profile are applied.
#[derive(Debug, Default)]
struct Settings {
    base_url: Option<String>,
    key: Option<String>,
    secret: Option<SecretString>,
}

/// Fills what flags and environment left open from the selected profile. The profile's
/// secret is only fetched (its command only run) when no flag or variable gave one.
fn settings(profile: Option<&str>, given: Settings) -> Result<Settings, Failure> {
    let complete = given.base_url.is_some() && given.key.is_some() && given.secret.is_some();
    if complete && profile.is_none() {
        return Ok(given);
    }
    let path = profiles::config_path();
    let config = profiles::load(path.as_deref(), profile.is_some())?;
    let Some((name, selected)) = profiles::select(&config, profile, path.as_deref())? else {
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

fn client(args: &ClientArgs) -> Result<Client, Failure> {
    Ok(client_builder(args)?.build()?)
}

fn client_builder(args: &ClientArgs) -> Result<ClientBuilder, Failure> {
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
    let mut builder = Client::builder().timeout(Duration::from_secs(args.timeout));
    if let Some(url) = &settings.base_url {
        builder = builder.base_url(url);
    }
    match (&settings.key, &settings.secret) {
        (Some(key), Some(secret)) => {
            builder = builder.credentials(Credentials::new(key, profiles::expose(secret))?)
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

fn sign(args: SignArgs) -> Result<(), Failure> {
    let given = Settings {
        secret: args.secret.value.clone(),
        ..Settings::default()
    };
    let secret = settings(args.profile.as_deref(), given)?
        .secret
        .ok_or_else(|| {
            Failure::usage("sign needs the API secret (GATE_API_SECRET, --secret or a profile)")
        })?;
    let timestamp = args.timestamp.unwrap_or_else(|| {
        gate_stp::Clock::now(&gate_stp::SystemClock)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string()
    });
    let input = SigningInput {
        method: &args.method,
        path: &args.path,
        query: &args.query,
        body: args.body.as_bytes(),
        timestamp: &timestamp,
    };
    errln!("signature string (between the lines):");
    errln!("-----");
    // One line at a time: the newlines are the format, anything else is escaped.
    for line in String::from_utf8_lossy(&signing::signature_string(&input)).split('\n') {
        errln!("{line}");
    }
    errln!("-----");
    outln!("Timestamp: {}", gate_stp::text::escape_control(&timestamp));
    outln!(
        "{}",
        signing::sign(secret.expose_secret().as_bytes(), &input).to_hex()
    );
    Ok(())
}

async fn mock(args: MockArgs) -> Result<(), Failure> {
    let world = match &args.accounts {
        Some(path) => World::load(path).map_err(|e| Failure::usage(e.to_string()))?,
        None => World::demo(),
    };
    let mut config = EmulatorConfig::default();
    if let Some(offset_ms) = args.clock_offset {
        config = config.clock_offset_ms(offset_ms);
    }
    if args.no_rate_limit {
        config = config.without_rate_limit();
    }
    config = config
        .honour_exptime(!args.ignore_exptime)
        .one_group_per_user(!args.allow_multiple_groups);
    let emulator = Emulator::bind(args.listen, world, config)
        .await
        .map_err(|e| Failure::service(format!("cannot listen on {}: {e}", args.listen)))?;
    errln!("Gate STP emulator listening on {}", emulator.base_url());
    errln!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, parse_offset};

    #[test]
    fn the_secret_never_shows_in_debug() {
        let cli =
            Cli::try_parse_from(["gate-stp", "groups", "list", "--secret", "hunter2-xyz"]).unwrap();
        let debug = format!("{cli:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }

    #[test]
    fn offsets_parse_with_sign_and_unit() {
        assert_eq!(parse_offset("300s"), Ok(300_000));
        assert_eq!(parse_offset("-2m"), Ok(-120_000));
        assert_eq!(parse_offset("+1h"), Ok(3_600_000));
        assert_eq!(parse_offset("500ms"), Ok(500));
        assert_eq!(parse_offset("7"), Ok(7_000));
        assert!(parse_offset("5 minutes").is_err());
        assert!(parse_offset("s").is_err());
        assert!(parse_offset("99999999999999999h").is_err());
    }
}
