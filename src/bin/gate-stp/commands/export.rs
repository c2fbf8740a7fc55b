//! `gate-stp export`: the live STP groups as a desired-state file, ids pinned.

use clap::ValueEnum;
use gate_stp::{
    Client,
    desired::{self, DesiredState},
};

use crate::{commands::as_code::read_failure, failure::Failure, output::out, settings::ClientArgs};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Toml,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// File format written to stdout.
    #[arg(long, value_enum, default_value = "toml")]
    format: ExportFormat,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `gate-stp export [--format toml|json]`: the live state as a desired-state file.
pub(crate) async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let live = desired::read_live(client, None)
        .await
        .map_err(read_failure)?;
    let file = DesiredState::from_live(&live);
    let text = match args.format {
        ExportFormat::Json => file.to_json_string(),
        ExportFormat::Toml => file.to_toml_string(),
    };
    out(text);
    Ok(())
}
