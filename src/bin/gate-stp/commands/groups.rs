//! `gate-stp groups list|create`: the STP groups of the calling main account.

use clap::Subcommand;

use crate::{failure::Failure, output::Output, settings::ClientArgs};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: GroupsCommand,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
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

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let (client, out) = (args.client.client()?, Output::new(args.client.json));
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
