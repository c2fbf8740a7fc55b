//! `gate-stp completions SHELL`: a shell completion script.

use clap_complete::Shell;

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::write_stdout_bytes,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to complete for.
    shell: Shell,
}

impl Invocation for Args {
    const NAME: &'static str = "completions";
}

/// The script for `args.shell`, generated from the whole command-line definition (handed
/// down in the context, so that commands never import the tree they are part of).
pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let mut cli = ctx.definition();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "gate-stp", &mut script);
    if args.shell == Shell::Bash {
        script = mend_bash(&script);
    }
    write_stdout_bytes(&script);
    Ok(())
}

/// clap_complete 4.6 spells a subcommand's state in the bash script two ways when the
/// binary's name has a hyphen (clap-rs/clap#6421): the loop that reads the words reaches
/// `gate__stp__subcmd__users`, the `case` arms are labelled `gate__subcmd__stp__subcmd__users`,
/// so nothing after a subcommand ever completes. The arms are relabelled the loop's way; once
/// clap_complete is fixed there is nothing left to replace and this changes nothing.
fn mend_bash(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("gate__subcmd__stp", "gate__stp")
        .into_bytes()
}
