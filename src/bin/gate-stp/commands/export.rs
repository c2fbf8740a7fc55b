//! `gate-stp export`: the live STP groups as a desired-state file, ids pinned.

use clap::ValueEnum;
use gate_stp::{
    Client,
    desired::{self, DesiredState},
};

use crate::{as_code::read_failure, failure::Failure, output::out, settings::ClientArgs};

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
    pub(crate) client: ClientArgs,
}

impl Args {
    /// The format asked for: `--format`, or `--json`; both must agree.
    fn output_format(&self) -> Result<ExportFormat, Failure> {
        match (self.format, self.client.json) {
            (Some(ExportFormat::Toml), true) => Err(Failure::usage(
                "--json asks for --format json; give one of them",
            )),
            (Some(format), _) => Ok(format),
            (None, true) => Ok(ExportFormat::Json),
            (None, false) => Ok(ExportFormat::Toml),
        }
    }
}

/// `gate-stp export [--format toml|json]`: the live state as a desired-state file.
pub(crate) async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let format = args.output_format()?;
    let live = desired::read_live(client, None)
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
