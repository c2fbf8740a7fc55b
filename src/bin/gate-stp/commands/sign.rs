//! `gate-stp sign`: SIGN for a request, to debug signature mismatches.

use gate_stp::signing::{self, SigningInput};
use secrecy::ExposeSecret;

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::{errln, outln},
    settings::{SecretArg, Settings, Takes, settings},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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

impl Invocation for Args {
    const NAME: &'static str = "sign";

    fn takes(&mut self) -> Takes<'_> {
        Takes {
            profile: Some(&mut self.profile),
            secret: Some(&mut self.secret.value),
            ..Takes::default()
        }
    }
}

pub(crate) async fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
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
