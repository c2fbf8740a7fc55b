//! The command line: the clap tree and the dispatch of each command to its module.
//!
//! Adding a command is one module under `commands/` (its `Args` and its `run`), one
//! variant of [`Command`] and its arm in [`Cli::run`]. Commands are listed in `--help` in
//! the order of the enum: the order an operator meets them.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::{
    commands,
    failure::Failure,
    settings::{LeadingClientArgs, PRECEDENCE, TypedAfter},
};

#[derive(Debug, Parser)]
#[command(
    name = "gate-stp",
    version,
    about = "Gate API v4 STP groups: client, signature debugger and offline emulator",
    after_help = PRECEDENCE
)]
pub(crate) struct Cli {
    /// Client options given before the command; merged into the command's own.
    #[command(flatten)]
    leading: LeadingClientArgs,
    #[command(subcommand)]
    command: Command,
    /// Which client options were typed after the command (filled from clap's matches).
    #[arg(skip)]
    typed_after: TypedAfter,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// STP groups of the calling main account.
    Groups(commands::groups::Args),
    /// Members of an STP group.
    Users(commands::users::Args),
    /// Gate's clock and this machine's offset from it.
    Time(commands::time::Args),
    /// Compare a desired-state file with the live STP groups and show what apply would do.
    Plan(commands::plan::Args),
    /// Bring the live STP groups to a desired-state file (or a saved plan).
    Apply(commands::apply::Args),
    /// Write the live STP groups as a desired-state file, ids pinned.
    Export(commands::export::Args),
    /// Run the Gate STP emulator until interrupted.
    Mock(commands::mock::Args),
    /// Run the whole workflow against an in-process emulator.
    Demo(commands::demo::Args),
    /// Compute SIGN for a request, to debug signature mismatches: the signature string
    /// goes to stderr, SIGN is the last line of stdout.
    Sign(commands::sign::Args),
    /// List the profiles of the config file (never their secrets).
    Profiles,
    /// Print a shell completion script.
    ///
    /// For example: `gate-stp completions bash > ~/.local/share/bash-completion/completions/gate-stp`,
    /// `gate-stp completions zsh > ~/.zfunc/_gate-stp`,
    /// `gate-stp completions fish > ~/.config/fish/completions/gate-stp.fish`.
    Completions(commands::completions::Args),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(commands::man::Args),
}

impl Cli {
    /// Parses the process's arguments; a bad command line (or `--help`) exits here, as
    /// clap does.
    pub(crate) fn from_command_line() -> Self {
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches)
            .unwrap_or_else(|error| error.format(&mut Self::command()).exit());
        cli.typed_after = TypedAfter::from_matches(&matches);
        cli
    }

    /// Runs the command.
    pub(crate) async fn run(self) -> Result<(), Failure> {
        let Self {
            leading,
            command,
            typed_after,
        } = self;
        match command {
            Command::Groups(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                commands::groups::run(args).await
            }
            Command::Users(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                commands::users::run(args).await
            }
            Command::Time(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                commands::time::run(args).await
            }
            Command::Plan(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                commands::plan::run(args).await
            }
            Command::Apply(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                commands::apply::run(args).await
            }
            Command::Export(mut args) => {
                args.client = args.client.with_leading(leading, typed_after)?;
                let api = commands::as_code::client(args.client.builder()?)?;
                commands::export::run(&api, args).await
            }
            Command::Mock(args) => {
                leading.refuse_for("mock")?;
                commands::mock::run(args).await
            }
            Command::Demo(args) => {
                leading.refuse_for("demo")?;
                commands::demo::run(args).await
            }
            Command::Sign(args) => {
                leading.refuse_for("sign")?;
                commands::sign::run(args)
            }
            Command::Profiles => {
                leading.refuse_for("profiles")?;
                commands::profiles::run()
            }
            Command::Completions(args) => {
                leading.refuse_for("completions")?;
                commands::completions::run(args, Self::command());
                Ok(())
            }
            Command::Man(args) => {
                leading.refuse_for("man")?;
                commands::man::run(args, Self::command())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        for args in [
            &["gate-stp", "groups", "list", "--secret", "hunter2-xyz"][..],
            &["gate-stp", "--secret", "hunter2-xyz", "groups", "list"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let debug = format!("{cli:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("REDACTED"), "{debug}");
        }
    }

    /// Every subcommand at every depth, as clap knows them (so commands added later are
    /// covered without touching this test).
    fn all_subcommands(command: &clap::Command, out: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            out.push(sub.get_name().to_owned());
            all_subcommands(sub, out);
        }
    }

    #[test]
    fn every_completion_script_names_every_subcommand() {
        use clap::ValueEnum;
        let mut names = Vec::new();
        all_subcommands(&Cli::command(), &mut names);
        assert!(names.len() >= 12, "{names:?}");
        for shell in clap_complete::Shell::value_variants() {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "gate-stp", &mut script);
            let script = String::from_utf8(script).unwrap();
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell}: no {name}");
            }
        }
    }
}
