//! `gate-stp`: manage Gate STP groups from the command line, debug signatures, and run
//! the offline emulator.

mod demo;
mod output;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use gate_stp::{
    Client, Credentials, Error,
    mock::{Emulator, EmulatorConfig, World},
    signing::{self, SigningInput},
};

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
}

#[derive(Debug, Parser)]
#[command(
    name = "gate-stp",
    version,
    about = "Gate API v4 STP groups: client, signature debugger and offline emulator"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
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
    /// API secret. Prefer the GATE_API_SECRET environment variable: a secret on the
    /// command line ends up in shell history and in the process list.
    #[arg(
        long,
        global = true,
        env = "GATE_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    secret: Option<String>,
    /// Print responses as JSON, for programs.
    #[arg(long, global = true)]
    json: bool,
    /// Timeout of each request, in seconds.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// STP groups of the calling main account.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Members of an STP group.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Gate's clock and this machine's offset from it.
    Time,
    /// Compute SIGN for a request, to debug signature mismatches: the signature string
    /// goes to stderr, SIGN is the last line of stdout.
    Sign(SignArgs),
    /// Run the Gate STP emulator until interrupted.
    Mock(MockArgs),
    /// Run the whole workflow against an in-process emulator.
    Demo,
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
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SERVICE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

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

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::Api(_) | Error::RateLimited(_) | Error::ExpiresBeforeRateLimitReset { .. } => {
                exit::API
            }
            Error::InvalidInput(_) | Error::MissingCredentials { .. } | Error::Config(_) => {
                exit::USAGE
            }
            _ => exit::TRANSPORT,
        };
        Self {
            code,
            message: with_causes(&error),
        }
    }
}

/// The error and its causes on one line, outermost first: the library's errors print
/// their own line and leave what caused them (e.g. the refused connection behind a
/// transport error) to `source()`.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    let out = Output::new(global.json);
    match cli.command {
        Command::Groups(command) => {
            let client = client(&global)?;
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
        Command::Users(command) => {
            let client = client(&global)?;
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
        Command::Time => {
            let client = client(&global)?;
            out.clock(&client.sync_clock().await?);
        }
        Command::Sign(args) => sign(&global, args)?,
        Command::Mock(args) => mock(args).await?,
        Command::Demo => demo::run(&out, Duration::from_secs(global.timeout)).await?,
    }
    Ok(())
}

fn client(global: &Global) -> Result<Client, Failure> {
    let mut builder = Client::builder().timeout(Duration::from_secs(global.timeout));
    if let Some(url) = &global.base_url {
        builder = builder.base_url(url);
    }
    match (&global.key, &global.secret) {
        (Some(key), Some(secret)) => {
            builder = builder.credentials(Credentials::new(key, secret.as_str())?)
        }
        (None, None) => {}
        _ => {
            return Err(Failure::usage(
                "give both --key and --secret (or GATE_API_KEY and GATE_API_SECRET)",
            ));
        }
    }
    Ok(builder.build()?)
}

fn sign(global: &Global, args: SignArgs) -> Result<(), Failure> {
    let secret = global
        .secret
        .as_deref()
        .ok_or_else(|| Failure::usage("sign needs the API secret (GATE_API_SECRET or --secret)"))?;
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
    eprintln!("signature string (between the lines):");
    eprintln!("-----");
    eprintln!(
        "{}",
        String::from_utf8_lossy(&signing::signature_string(&input))
    );
    eprintln!("-----");
    println!("Timestamp: {timestamp}");
    println!("{}", signing::sign(secret.as_bytes(), &input).to_hex());
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
    let emulator = Emulator::bind(args.listen, world, config)
        .await
        .map_err(|e| Failure::service(format!("cannot listen on {}: {e}", args.listen)))?;
    eprintln!("Gate STP emulator listening on {}", emulator.base_url());
    eprintln!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_offset;

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
