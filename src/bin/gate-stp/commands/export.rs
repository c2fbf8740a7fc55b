//! `gate-stp export`: the live STP groups as a desired-state file, ids pinned.

use clap::ValueEnum;
use gate_stp::desired::{self, DesiredState};

use crate::{
    as_code::read_failure,
    context::{Context, api_invocation},
    failure::Failure,
    output::{out, output_format},
    settings::{ClientArgs, JsonArg},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Toml,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// File format written to stdout: toml (the default) or json (`--json` is
    /// `--format json`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<ExportFormat>,
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("export");

/// `gate-stp export [--format toml|json]`: the live state as a desired-state file.
pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let format = output_format(
        args.format,
        args.output.json,
        ExportFormat::Json,
        ExportFormat::Toml,
    )?;
    let client = ctx.as_code_client(None)?;
    let live = desired::read_live(&client, None)
        .await
        .map_err(read_failure)?;
    let file = DesiredState::from_live(&live);
    let text = match format {
        ExportFormat::Json => file.to_json_string(),
        ExportFormat::Toml => file.to_toml_string(),
    };
    out(text);
    Ok(())
}
