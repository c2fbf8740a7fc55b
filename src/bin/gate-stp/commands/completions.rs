//! `gate-stp completions SHELL`: a shell completion script.

use crate::output::write_stdout_bytes;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// The script for `args.shell`, generated from `cli` (the whole command-line definition,
/// handed down so that commands never import the tree they are part of).
pub(crate) fn run(args: Args, mut cli: clap::Command) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "gate-stp", &mut script);
    write_stdout_bytes(&script);
}
