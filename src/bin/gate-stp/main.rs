//! `gate-stp`: manage Gate STP groups from the command line, debug signatures, and run
//! the offline emulator.
//!
//! The house: `cli` (the clap tree and the dispatch) calls one module per command under
//! `commands/`; they read their settings through `settings` (flags, variables, profiles),
//! print through `output`, write files through `files`, share the STP-as-code helpers of
//! `as_code` and fail with `failure`'s exit codes. This file only parses, runs and exits.

// Every line goes through `outln!`/`errln!` (output.rs): a closed pipe ends quietly and
// control characters are escaped. A bare `println!` would bypass both.
#![deny(clippy::print_stdout, clippy::print_stderr)]
// One module layout: a module with submodules is a folder with a `mod.rs`, a module
// without is one file (README, maintainers).
#![deny(clippy::self_named_module_files)]

mod as_code;
mod cli;
mod commands;
mod context;
mod failure;
mod files;
mod output;
mod settings;

use std::process::ExitCode;

use gate_stp::text::truncate_chars;

use crate::{failure::exit, output::errln};

/// Longest error line printed, in characters: a server's message may be any length.
const MAX_ERROR_CHARS: usize = 2000;

fn main() -> ExitCode {
    let cli = cli::Cli::from_command_line();
    output::init_logs();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SERVICE);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) if output::stdout_failed_meanwhile() => ExitCode::from(exit::OUTPUT),
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // An empty message is an outcome, not an error (`plan --exit-code`: changes).
            // Line by line: a stopped apply's report (done, failed, not sent) spans
            // several lines, and each must stay readable and whole.
            for (index, line) in failure.message.lines().enumerate() {
                let prefix = if index == 0 { "error: " } else { "" };
                errln!("{prefix}{}", truncate_chars(line, MAX_ERROR_CHARS));
            }
            ExitCode::from(failure.code)
        }
    }
}
