//! `gate-stp users list|add|remove`: the members of an STP group.

use clap::Subcommand;

use crate::{
    context::{Context, api_invocation},
    failure::Failure,
    settings::{ClientArgs, JsonArg},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: UsersCommand,
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("users");

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// List the members of a group.
    List {
        /// Group id.
        stp_id: i64,
    },
    /// Add users to a group.
    Add {
        /// Group id.
        stp_id: i64,
        /// User ids to add.
        #[arg(required = true, num_args = 1..)]
        user_ids: Vec<i64>,
    },
    /// Remove users from a group (one request).
    Remove {
        /// Group id.
        stp_id: i64,
        /// User ids to remove.
        #[arg(required = true, num_args = 1..)]
        user_ids: Vec<i64>,
    },
}

pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let (client, out) = (ctx.client()?, ctx.output());
    let users = match args.command {
        UsersCommand::List { stp_id } => client.list_users(stp_id).await?,
        UsersCommand::Add { stp_id, user_ids } => client.add_users(stp_id, &user_ids).await?,
        UsersCommand::Remove { stp_id, user_ids } => client.remove_users(stp_id, &user_ids).await?,
    };
    out.users(&users);
    Ok(())
}
