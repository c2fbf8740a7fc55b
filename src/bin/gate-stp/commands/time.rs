//! `gate-stp time`: Gate's clock and this machine's offset from it.

use crate::{
    context::{Context, api_invocation},
    failure::Failure,
    settings::{ClientArgs, JsonArg},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("time");

pub(crate) async fn run(ctx: &Context, _args: Args) -> Result<(), Failure> {
    let client = ctx.client()?;
    ctx.output().clock(&client.sync_clock().await?);
    Ok(())
}
