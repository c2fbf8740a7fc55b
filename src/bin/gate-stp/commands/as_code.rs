//! What `plan`, `apply` and `export` (STP groups as code, over `gate_stp::desired`)
//! share: their client, the file loader, the rendering of plans and the exit code of
//! each refusal.

use std::{io::IsTerminal, path::Path};

use gate_stp::{
    Client, ClientBuilder, RetryPolicy,
    desired::{self, ApplyError, DesiredState, Plan, RenderOptions, StopReason},
};

use crate::failure::{Failure, exit};

/// The client for these commands: pacing on Gate's rate-limit headers, and retries of
/// idempotent writes (adding or removing members twice leaves the same state; creates are
/// never retried by the client).
pub(crate) fn client(builder: ClientBuilder) -> Result<Client, Failure> {
    Ok(builder
        .pace_rate_limits(true)
        .retry_policy(RetryPolicy::default().retry_idempotent_writes(true))
        .build()?)
}

/// Writes to stdout as it is: plans, files and reports are built with every server- or
/// file-controlled string escaped already, and the colour codes are meant. A closed pipe
/// (`gate-stp plan stp.toml | head -3`) ends the process quietly, as for any Unix filter.
pub(crate) fn out(text: impl AsRef<str>) {
    crate::output::write_stdout_bytes(text.as_ref().as_bytes());
}

/// Writes progress to stderr; a failure to write is ignored (nowhere left to report it).
pub(crate) fn err(text: impl AsRef<str>) {
    crate::output::write_stderr_bytes(text.as_ref().as_bytes());
}

/// A path or other local text with control characters escaped.
pub(crate) fn escape(text: &str) -> String {
    gate_stp::text::escape_control(text).into_owned()
}

fn colour() -> bool {
    colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but empty
/// (no-color.org).
fn colour_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

pub(crate) fn render(plan: &Plan) -> String {
    desired::render_plan(plan, RenderOptions { colour: colour() })
}

pub(crate) fn load_desired(path: &Path) -> Result<DesiredState, Failure> {
    DesiredState::load(path).map_err(|e| Failure::usage(e.to_string()))
}

pub(crate) fn apply_failure(error: ApplyError) -> Failure {
    let code = match &error {
        ApplyError::Read(inner) => Failure::from_error_code(inner),
        ApplyError::Stopped(report) => match &report.reason {
            StopReason::Request(inner) | StopReason::CreateUnresolved { error: inner, .. } => {
                Failure::from_error_code(inner)
            }
            _ => exit::API,
        },
        _ => exit::USAGE,
    };
    Failure {
        code,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colour_wanted;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }
}
