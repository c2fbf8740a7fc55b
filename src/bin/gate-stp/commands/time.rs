//! `gate-stp time`: Gate's clock and this machine's offset from it.

use crate::{failure::Failure, output::Output, settings::ClientArgs};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let client = args.client.client()?;
    Output::new(args.client.json).clock(&client.sync_clock().await?);
    Ok(())
}
