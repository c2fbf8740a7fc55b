//! The command line: the clap tree and the dispatch of each command to its module.
//!
//! Adding a command is one module under `commands/` (its `Args`, what they tell the
//! dispatch as [`Invocation`](crate::context::Invocation), and its `run(ctx, args)`), one
//! variant of [`Command`] and its line in [`Cli::run`]. Commands are listed in `--help` in
//! the order of the enum: the order an operator meets them.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::{
    commands,
    context::{Context, Invocation},
    failure::Failure,
    settings::{LeadingOptions, PRECEDENCE, TypedAfter},
};

#[derive(Debug, Parser)]
#[command(
    name = "gate-stp",
    version,
    about = "Gate API v4 STP groups: client, signature debugger and offline emulator",
    after_help = PRECEDENCE
)]
pub(crate) struct Cli {
    /// Options given before the command; merged into the command's own.
    #[command(flatten)]
    leading: LeadingOptions,
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
    /// Serve the STP tools to AI agents over MCP (stdio, or HTTP with --http): read and plan
    /// freely, apply a reviewed plan by its digest only with --allow-apply.
    Mcp(commands::mcp::McpArgs),
    /// Run the Gate STP emulator until interrupted.
    Mock(commands::mock::Args),
    /// Run the whole workflow against an in-process emulator.
    Demo(commands::demo::Args),
    /// Compute SIGN for a request, to debug signature mismatches: the signature string
    /// goes to stderr, SIGN is the last line of stdout.
    Sign(commands::sign::Args),
    /// List the profiles of the config file (never their secrets).
    Profiles(commands::profiles::Args),
    /// Print a shell completion script.
    ///
    /// For example: `gate-stp completions bash > ~/.local/share/bash-completion/completions/gate-stp`,
    /// `gate-stp completions zsh > ~/.zfunc/_gate-stp`,
    /// `gate-stp completions fish > ~/.config/fish/completions/gate-stp.fish`.
    Completions(commands::completions::Args),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(commands::man::Args),
}

/// The options a command refuses with a reason of its own (an option that would mean
/// nothing there), by command: refused with that reason before the command
/// ([`Invocation::REFUSES`]) and after it (here, in place of clap's "unexpected argument"),
/// and never listed in its help or completions.
const REFUSED: [(&str, &[(&str, &str)]); 1] = [(
    commands::mcp::McpArgs::NAME,
    commands::mcp::McpArgs::REFUSES,
)];

/// clap's refusal of an option after a command that refuses it with a reason, as that
/// reason; `None` for every other error.
fn refusal_with_reason(error: &clap::Error) -> Option<clap::Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = given.split('=').next().unwrap_or(given);
    // The usage line clap shows names the command the option was given to.
    let Some(ContextValue::StyledStr(usage)) = error.get(ContextKind::Usage) else {
        return None;
    };
    let usage = usage.to_string();
    let words: Vec<&str> = usage.split_whitespace().collect();
    let (command, refused) = REFUSED
        .iter()
        .find(|(command, _)| words.get(2) == Some(command))?;
    let (_, reason) = refused.iter().find(|(refused, _)| *refused == flag)?;
    let mut cli = Cli::command();
    cli.build();
    let command = cli.find_subcommand_mut(command)?;
    Some(command.error(ErrorKind::ArgumentConflict, reason))
}

impl Cli {
    /// Parses the process's arguments; a bad command line (or `--help`) exits here, as
    /// clap does.
    pub(crate) fn from_command_line() -> Self {
        let matches = Self::command()
            .try_get_matches()
            .unwrap_or_else(|error| refusal_with_reason(&error).unwrap_or(error).exit());
        let mut cli = Self::from_arg_matches(&matches)
            .unwrap_or_else(|error| error.format(&mut Self::command()).exit());
        cli.typed_after = TypedAfter::from_matches(&matches);
        cli
    }

    /// Runs the command: the options before it are merged into its own, once, and it runs
    /// with the context they make.
    pub(crate) async fn run(self) -> Result<(), Failure> {
        let Self {
            leading,
            command,
            typed_after,
        } = self;
        // `commands::NAME::run(ctx, args)`, once the options before the command are merged
        // into `args` and the context is made.
        macro_rules! exec {
            ($command:ident, $args:expr) => {{
                let (ctx, args) = Context::prepare(leading, typed_after, $args, Self::command)?;
                commands::$command::run(&ctx, args).await
            }};
        }
        match command {
            Command::Groups(args) => exec!(groups, args),
            Command::Users(args) => exec!(users, args),
            Command::Time(args) => exec!(time, args),
            Command::Plan(args) => exec!(plan, args),
            Command::Apply(args) => exec!(apply, args),
            Command::Export(args) => exec!(export, args),
            Command::Mcp(args) => exec!(mcp, args),
            Command::Mock(args) => exec!(mock, args),
            Command::Demo(args) => exec!(demo, args),
            Command::Sign(args) => exec!(sign, args),
            Command::Profiles(args) => exec!(profiles, args),
            Command::Completions(args) => exec!(completions, args),
            Command::Man(args) => exec!(man, args),
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

    /// The long options a command's slots take before it (its `Invocation::takes`).
    fn taken_before(command: super::Command) -> Vec<&'static str> {
        use super::Command as C;
        use crate::context::Invocation as _;
        match command {
            C::Groups(mut args) => args.takes().flags(),
            C::Users(mut args) => args.takes().flags(),
            C::Time(mut args) => args.takes().flags(),
            C::Plan(mut args) => args.takes().flags(),
            C::Apply(mut args) => args.takes().flags(),
            C::Export(mut args) => args.takes().flags(),
            C::Mcp(mut args) => args.takes().flags(),
            C::Mock(mut args) => args.takes().flags(),
            C::Demo(mut args) => args.takes().flags(),
            C::Sign(mut args) => args.takes().flags(),
            C::Profiles(mut args) => args.takes().flags(),
            C::Completions(mut args) => args.takes().flags(),
            C::Man(mut args) => args.takes().flags(),
        }
    }

    /// Every option a command takes after it, it takes before it, and no other option of
    /// the line before the command (issue 29): its slots (`Invocation::takes`) are exactly
    /// its visible options that may also come first, read from the definition its help and
    /// completions are generated from.
    #[test]
    fn every_option_a_command_takes_after_it_it_takes_before_it() {
        let invocations: [&[&str]; 13] = [
            &["groups", "list"],
            &["users", "list", "1"],
            &["time"],
            &["plan", "f.toml"],
            &["apply", "f.toml"],
            &["export"],
            &["mcp"],
            &["mock"],
            &["demo"],
            &["sign", "--method", "GET", "--path", "/"],
            &["profiles"],
            &["completions", "bash"],
            &["man"],
        ];
        let mut definition = Cli::command();
        definition.build();
        // The options of the line before a command (clap's own --help and --version aside).
        let before: Vec<String> = definition
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|long| !["help", "version"].contains(long))
            .map(|long| format!("--{long}"))
            .collect();
        for invocation in invocations {
            // The command and its subcommand, as typed.
            let mut level = &definition;
            let mut after = Vec::new();
            for word in invocation.iter().take_while(|word| !word.starts_with('-')) {
                let Some(sub) = level.find_subcommand(word) else {
                    break;
                };
                level = sub;
                after.extend(
                    level
                        .get_arguments()
                        .filter(|arg| !arg.is_hide_set())
                        .filter_map(|arg| arg.get_long())
                        .map(|long| format!("--{long}"))
                        .filter(|flag| before.contains(flag)),
                );
            }
            after.sort();
            after.dedup();
            let cli = Cli::try_parse_from(std::iter::once(&"gate-stp").chain(invocation))
                .unwrap_or_else(|e| panic!("{invocation:?}: {e}"));
            let mut taken = taken_before(cli.command);
            taken.sort_unstable();
            assert_eq!(taken, after, "{invocation:?}");
        }
        // Every command is in the table.
        let top: Vec<&str> = definition
            .get_subcommands()
            .map(clap::Command::get_name)
            .filter(|name| *name != "help")
            .collect();
        let listed: Vec<&str> = invocations.iter().map(|invocation| invocation[0]).collect();
        assert_eq!(top, listed);
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

    /// The CI recipes of `examples/ci/`, read at compile time.
    const RECIPES: [(&str, &str); 3] = [
        (
            "stp-plan.yml",
            include_str!("../../../examples/ci/stp-plan.yml"),
        ),
        (
            "stp-apply.yml",
            include_str!("../../../examples/ci/stp-apply.yml"),
        ),
        (
            "stp-drift.yml",
            include_str!("../../../examples/ci/stp-drift.yml"),
        ),
    ];

    /// Shell words of one line, quotes removed (enough for the recipes: no escapes, no
    /// nested quotes).
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut in_word = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(open), c) if c == open => quote = None,
                (Some(_), c) => word.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// Every `gate-stp` command of a script, as argument lists: a word `gate-stp` in
    /// command position (`cargo install gate-stp` is not one), up to the shell operator
    /// or redirection that ends it.
    fn invocations(script: &str) -> Vec<Vec<String>> {
        const STARTS: [&str; 8] = ["!", "|", "&&", "||", ";", "then", "do", "$("];
        let mut found = Vec::new();
        for line in script.lines() {
            let words = shell_words(line);
            for (index, word) in words.iter().enumerate() {
                let command_position = index == 0 || STARTS.contains(&words[index - 1].as_str());
                if word != "gate-stp" || !command_position {
                    continue;
                }
                let mut args = vec![word.clone()];
                for next in &words[index + 1..] {
                    let ends = [";", "|", "||", "&&", ")"].contains(&next.as_str())
                        || next.starts_with('>')
                        || next.starts_with("2>");
                    if ends {
                        break;
                    }
                    if let Some(last) = next.strip_suffix(';') {
                        args.push(last.to_owned());
                        break;
                    }
                    args.push(next.clone());
                }
                found.push(args);
            }
        }
        found
    }

    /// The `run:` scripts of every step of every job of a workflow.
    fn scripts(name: &str, yaml: &str) -> Vec<String> {
        let workflow: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        let jobs = workflow["jobs"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: no jobs"));
        let mut found = Vec::new();
        for (_, job) in jobs {
            let steps = job["steps"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: a job without steps"));
            for step in steps {
                if let Some(run) = step["run"].as_str() {
                    found.push(run.to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_gate_stp_command_of_the_ci_recipes_parses() {
        let mut counts = Vec::new();
        for (name, yaml) in RECIPES {
            let mut count = 0;
            for script in scripts(name, yaml) {
                for args in invocations(&script) {
                    if let Err(error) = Cli::try_parse_from(&args) {
                        panic!("{name}: {args:?} does not parse:\n{error}");
                    }
                    count += 1;
                }
            }
            counts.push((name, count));
        }
        // plan: the comment and the saved plans; apply: the reviewed plans; drift: none.
        assert_eq!(
            counts,
            [
                ("stp-plan.yml", 2),
                ("stp-apply.yml", 1),
                ("stp-drift.yml", 0)
            ]
        );
        let drift = scripts("stp-drift.yml", RECIPES[2].1).join("\n");
        assert!(drift.contains("python3 openapi/upstream/derive.py refresh latest"));
    }

    #[test]
    fn the_recipe_check_catches_a_renamed_flag() {
        let script = "gate-stp plan stp/*.toml --format markdown > plan.md\n\
                      if ! gate-stp apply \"$plan\" --profile \"$p\" --yes; then";
        let found = invocations(script);
        assert_eq!(
            found,
            [
                vec!["gate-stp", "plan", "stp/*.toml", "--format", "markdown"],
                vec!["gate-stp", "apply", "$plan", "--profile", "$p", "--yes"],
            ]
        );
        for args in &found {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        let renamed = invocations(&script.replace("--format", "--output-format"));
        assert!(Cli::try_parse_from(&renamed[0]).is_err());
        assert!(invocations("cargo install gate-stp --features cli").is_empty());
    }
}
