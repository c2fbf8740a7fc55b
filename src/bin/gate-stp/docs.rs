//! Commands that document the tool itself: completion scripts and the man page.

use std::{io, path::Path};

use clap::CommandFactory;

use crate::{Cli, Failure, output::write_stdout_bytes};

/// `gate-stp completions SHELL`: the script, generated from the clap definitions.
pub(crate) fn completions(shell: clap_complete::Shell) {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gate-stp", &mut script);
    write_stdout_bytes(&script);
}

/// `gate-stp man`: the roff page on stdout, or every page into `out`.
pub(crate) fn man(out: Option<&Path>) -> Result<(), Failure> {
    let command = Cli::command();
    match out {
        Some(dir) => clap_mangen::generate_to(command, dir).map_err(|e| {
            Failure::usage(format!(
                "cannot write man pages into {}: {e}",
                dir.display()
            ))
        }),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e: io::Error| Failure::service(format!("cannot render: {e}")))?;
            write_stdout_bytes(&page);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, ValueEnum};

    use crate::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
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
