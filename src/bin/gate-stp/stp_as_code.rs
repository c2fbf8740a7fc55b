//! `gate-stp plan`, `apply` and `export`: STP groups as code, over `gate_stp::desired`.

use std::{
    io::{BufRead, IsTerminal},
    path::{Path, PathBuf},
};

use clap::{Args, ValueEnum};
use gate_stp::{
    Client, ClientBuilder, RetryPolicy,
    desired::{
        self, ApplyError, ApplyOptions, ApplyReport, DEFAULT_MAX_REMOVALS, DesiredState, Format,
        Plan, Progress, Proposal, ReadError, RenderOptions, StopReason,
    },
};

use crate::{Failure, exit};

/// Exit code of `plan --exit-code` when the plan has changes (as `git diff --exit-code`).
pub(crate) const CHANGES_PENDING: u8 = 1;

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Desired-state file: TOML, or JSON when it ends in .json.
    file: PathBuf,
    /// Also save the plan as JSON, for `gate-stp apply PLAN.json` (refused later if the
    /// live state changed in between).
    #[arg(long, value_name = "PLAN.json")]
    out: Option<PathBuf>,
    /// Exit 0 when there is nothing to change and 1 when there is (errors stay 2 and up).
    #[arg(long)]
    exit_code: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Desired-state file (TOML/JSON), or a plan saved with `plan --out`.
    file: PathBuf,
    /// Apply without asking (required when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Refuse, before sending anything, a plan that removes more members than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REMOVALS)]
    max_removals: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Toml,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// File format written to stdout.
    #[arg(long, value_enum, default_value = "toml")]
    format: ExportFormat,
}

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
fn escape(text: &str) -> String {
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

fn render(plan: &Plan) -> String {
    desired::render_plan(plan, RenderOptions { colour: colour() })
}

fn load_desired(path: &Path) -> Result<DesiredState, Failure> {
    DesiredState::load(path).map_err(|e| Failure::usage(e.to_string()))
}

fn read_failure(error: ReadError) -> Failure {
    let code = match &error {
        ReadError::Request(inner) => Failure::from_error_code(inner),
        _ => exit::USAGE,
    };
    Failure {
        code,
        message: error.to_string(),
    }
}

fn apply_failure(error: ApplyError) -> Failure {
    let error = match error {
        ApplyError::Read(inner) => return read_failure(inner),
        other => other,
    };
    let code = match &error {
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

/// `gate-stp plan FILE [--out PLAN.json] [--exit-code]`.
pub(crate) async fn plan(client: &Client, json: bool, args: PlanArgs) -> Result<(), Failure> {
    let file = load_desired(&args.file)?;
    let plan = Proposal::for_desired(client, &file)
        .await
        .map_err(apply_failure)?
        .into_plan();
    if let Some(path) = &args.out {
        std::fs::write(path, plan.to_json_string()).map_err(|e| {
            Failure::usage(format!(
                "cannot write the plan to {}: {e}",
                escape(&path.display().to_string())
            ))
        })?;
    }
    if json {
        out(plan.to_json_string());
    } else {
        out(render(&plan));
        if plan.removals() > DEFAULT_MAX_REMOVALS {
            out(format!(
                "Note: this plan removes {} members; apply refuses more than {DEFAULT_MAX_REMOVALS} unless given --max-removals {}.\n",
                plan.removals(),
                plan.removals()
            ));
        }
        if let Some(path) = &args.out {
            let path = escape(&path.display().to_string());
            out(format!(
                "Saved the plan to {path}; apply it with `gate-stp apply {path}`.\n"
            ));
        }
    }
    if args.exit_code && !plan.is_empty() {
        return Err(Failure {
            code: CHANGES_PENDING,
            message: String::new(),
        });
    }
    Ok(())
}

/// `gate-stp apply FILE|PLAN.json [--yes] [--max-removals N]`.
pub(crate) async fn apply(client: &Client, json: bool, args: ApplyArgs) -> Result<(), Failure> {
    // `gate-stp apply --yes f.toml | head -3` must not stop half-way through the changes.
    crate::output::finish_even_if_stdout_fails();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::usage(format!("{}: cannot read: {e}", args.file.display())))?;
    let label = args.file.display().to_string();
    let proposal = if Plan::looks_like_saved_plan(&text) {
        let plan = Plan::from_json(&text, &label).map_err(|e| Failure::usage(e.to_string()))?;
        Proposal::for_saved(client, plan).await
    } else {
        let file = DesiredState::parse(&text, Format::from_path(&args.file), &label)
            .map_err(|e| Failure::usage(e.to_string()))?;
        Proposal::for_desired(client, &file).await
    }
    .map_err(apply_failure)?;
    let options = ApplyOptions::default().with_max_removals(args.max_removals);
    // The refusals come before the question; the re-read after a person's answer is the
    // library's (`Checked::send` reads again when the read has aged).
    let checked = proposal.check(options).map_err(apply_failure)?;
    let plan = checked.plan().clone();
    if !json {
        out(render(&plan));
    }
    if plan.is_empty() {
        if json {
            print_report(&ApplyReport::default());
        }
        return Ok(());
    }
    confirm(args.yes)?;
    let on_terminal = std::io::stderr().is_terminal();
    let mut progress = |event: Progress<'_>| {
        if !on_terminal {
            return;
        }
        match event {
            Progress::Sending { index, total, step } => {
                err(format!("[{}/{total}] {step} ... ", index + 1));
            }
            Progress::Done { .. } => err("ok\n"),
            Progress::Adopted { group, stp_id } => err(format!(
                "(answer lost; found group {} as id {stp_id}, adopted) ",
                desired::quoted(group)
            )),
            _ => {}
        }
    };
    let report = checked.send(client, &mut progress).await.map_err(|error| {
        if on_terminal {
            err("FAILED\n");
        }
        apply_failure(error)
    })?;
    if json {
        print_report(&report);
    } else {
        out(format!(
            "\nApply complete: {} created, {} added, {} removed ({} requests, each answer checked).\n",
            plural(plan.creates(), "group"),
            plural(plan.additions(), "member"),
            plan.removals(),
            report.steps_done,
        ));
        for name in &report.adopted {
            out(format!(
                "note: the answer to creating {} was lost; the group was found by listing and adopted (no second group created)\n",
                desired::quoted(name)
            ));
        }
    }
    Ok(())
}

fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn print_report(report: &ApplyReport) {
    let value = serde_json::json!({
        "steps_done": report.steps_done,
        "created": report.created,
        "adopted": report.adopted,
    });
    out(format!("{value}\n"));
}

/// Asks for `yes` on a terminal unless `--yes`; elsewhere requires `--yes`.
fn confirm(yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(Failure::usage(
            "apply changes the live STP groups: pass --yes to confirm (there is no terminal to ask on)",
        ));
    }
    out("\nApply these changes to the live STP groups? Only 'yes' is accepted: ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::usage("apply cancelled; nothing was changed"))
    }
}

/// `gate-stp export [--format toml|json]`: the live state as a desired-state file.
pub(crate) async fn export(client: &Client, args: ExportArgs) -> Result<(), Failure> {
    let live = desired::read_live(client, None)
        .await
        .map_err(read_failure)?;
    let file = DesiredState::from_live(&live);
    let text = match args.format {
        ExportFormat::Json => file.to_json_string(),
        ExportFormat::Toml => file.to_toml_string(),
    };
    out(text);
    Ok(())
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
