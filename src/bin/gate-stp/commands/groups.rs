//! `gate-stp groups list|create`: the STP groups of the calling main account.

use clap::Subcommand;

use crate::{
    context::{Context, api_invocation},
    failure::Failure,
    settings::{ClientArgs, JsonArg},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: GroupsCommand,
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("groups");

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

pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let (client, out) = (ctx.client()?, ctx.output());
    match args.command {
        GroupsCommand::List { name } => {
            let mut request = client.list_groups();
            if let Some(name) = name {
                request = request.name(name);
            }
            out.groups(&request.await?);
        }
        GroupsCommand::Create { name } => out.group(&client.create_group(name).await?.into_inner()),
    }
    Ok(())
}
