//! `gate-stp plan FILE`: what apply would do to bring the live STP groups to a file.

use std::path::PathBuf;

use gate_stp::{
    Client,
    desired::{DEFAULT_MAX_REMOVALS, Proposal},
};

use crate::{
    commands::as_code::{apply_failure, load_desired, render},
    failure::Failure,
    output::{Output, escape, out},
    settings::ClientArgs,
};

/// Exit code of `plan --exit-code` when the plan has changes (as `git diff --exit-code`).
pub(crate) const CHANGES_PENDING: u8 = 1;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Desired-state file: TOML, or JSON when it ends in .json.
    file: PathBuf,
    /// Also save the plan as JSON, for `gate-stp apply PLAN.json` (refused later if the
    /// live state changed in between).
    #[arg(long, value_name = "PLAN.json")]
    out: Option<PathBuf>,
    /// Exit 0 when there is nothing to change and 1 when there is (errors stay 2 and up).
    #[arg(long)]
    exit_code: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `gate-stp plan FILE [--out PLAN.json] [--exit-code]`.
pub(crate) async fn run(client: &Client, printer: &Output, args: Args) -> Result<(), Failure> {
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
    if printer.json() {
        printer.json_document(&plan.to_json_string());
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
