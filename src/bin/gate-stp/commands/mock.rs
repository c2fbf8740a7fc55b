//! `gate-stp mock`: the Gate STP emulator, until interrupted.

use std::{net::SocketAddr, path::PathBuf};

use gate_stp::mock::{Emulator, EmulatorConfig, World};

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::errln,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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

impl Invocation for Args {
    const NAME: &'static str = "mock";
}

pub(crate) async fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
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
