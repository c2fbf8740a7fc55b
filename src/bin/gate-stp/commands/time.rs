//! `gate-stp time`: Gate's clock and this machine's offset from it.

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    settings::{ClientArgs, JsonArg, Takes},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

impl Invocation for Args {
    const NAME: &'static str = "time";

    fn takes(&mut self) -> Takes<'_> {
        Takes::client(&mut self.client).json(&mut self.output.json)
    }

    fn client_options(&self) -> Option<&ClientArgs> {
        Some(&self.client)
    }

    fn json(&self) -> bool {
        self.output.json
    }
}

pub(crate) async fn run(ctx: &Context, _args: Args) -> Result<(), Failure> {
    let client = ctx.client()?;
    ctx.output().clock(&client.sync_clock().await?);
    Ok(())
}
