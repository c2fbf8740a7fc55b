//! `gate-stp plan FILE...`: what apply would do to bring the live STP groups to each file.

use std::path::PathBuf;

use futures_util::stream::{FuturesOrdered, StreamExt};
use gate_stp::desired::{self, DEFAULT_MAX_CREATES, DEFAULT_MAX_REMOVALS, Plan, Proposal};

use crate::{
    as_code::{Tally, apply_failure, file_heading, load_desired, render},
    context::{Context, api_invocation},
    failure::Failure,
    output::{Output, err, escape, out, output_format, plural},
    settings::{ClientArgs, JsonArg},
};

/// Exit code of `plan --exit-code` when the plan has changes (as `git diff --exit-code`).
pub(crate) const CHANGES_PENDING: u8 = 1;

/// How the plan is printed. The variants are described in `--format`'s help rather than
/// with doc comments: described values switch clap to the long help layout, one blank line
/// between options, for this command only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Desired-state files: TOML, or JSON when the name ends in .json. Each file is planned
    /// with its own `profile` when it names one, else with the client options.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Also save the plan as JSON, for `gate-stp apply PLAN.json` (refused later if the
    /// live state changed in between). One file only.
    #[arg(long, value_name = "PLAN.json")]
    out: Option<PathBuf>,
    /// Exit 0 when there is nothing to change and 1 when there is (errors stay 2 and up).
    #[arg(long)]
    exit_code: bool,
    /// Output format: text for a terminal or a log, markdown for a pull-request comment,
    /// json for programs (the document --out saves; `--json` is `--format json`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<PlanFormat>,
    /// The removal limit apply will be given: the plan notes when it removes more.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REMOVALS)]
    max_removals: usize,
    /// The create limit apply will be given: the plan notes when it creates more.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CREATES)]
    max_creates: usize,
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("plan");

/// `gate-stp plan FILE... [--format text|markdown|json] [--out PLAN.json] [--exit-code]`.
pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let format = output_format(
        args.format,
        args.output.json,
        PlanFormat::Json,
        PlanFormat::Text,
    )?;
    if args.files.len() > 1 {
        if args.out.is_some() {
            return Err(Failure::usage(
                "--out saves one plan: with several files, plan each file with its own --out",
            ));
        }
        if format == PlanFormat::Json {
            return Err(Failure::usage(
                "--json prints one plan document: with several files, plan each file on its own",
            ));
        }
        return run_several(ctx, &args, format).await;
    }
    let path = &args.files[0];
    let label = path.display().to_string();
    let plan = match plan_file(ctx, path).await {
        Ok((plan, _)) => plan,
        Err(failure) => {
            if format == PlanFormat::Markdown {
                out(desired::render_refusal_markdown(&label, &failure.message));
            }
            return Err(failure);
        }
    };
    if let Some(path) = &args.out {
        crate::files::write_whole(path, plan.to_json_string().as_bytes()).map_err(|e| {
            Failure::usage(format!(
                "cannot write the plan to {}: {e}",
                escape(&path.display().to_string())
            ))
        })?;
    }
    match format {
        PlanFormat::Json => Output::new(true).json_document(&plan.to_json_string()),
        PlanFormat::Markdown => {
            out(desired::render_plan_markdown(&plan));
            out(limit_notes(&args, &plan, true));
        }
        PlanFormat::Text => {
            out(text(&args, &plan));
            if let Some(path) = &args.out {
                let path = escape(&path.display().to_string());
                out(format!(
                    "Saved the plan to {path}; apply it with `gate-stp apply {path}`.\n"
                ));
            }
        }
    }
    if args.exit_code && !plan.is_empty() {
        return Err(changes_pending());
    }
    Ok(())
}

/// Plans every file at once, each with its own credentials (the files of one account
/// share its client and its pacer; Gate counts its limits per account), prints each
/// file's section whole and in the order given as soon as those before it are printed,
/// and ends with the summary. A refused file does not stop the others: a reviewer sees
/// every account.
async fn run_several(ctx: &Context, args: &Args, format: PlanFormat) -> Result<(), Failure> {
    let markdown = format == PlanFormat::Markdown;
    let mut tally = Tally::default();
    let mut planned: FuturesOrdered<_> = args
        .files
        .iter()
        .map(|path| async move { (path, plan_file(ctx, path).await) })
        .collect();
    let mut first = true;
    while let Some((path, result)) = planned.next().await {
        let label = path.display().to_string();
        if !std::mem::take(&mut first) {
            out("\n");
        }
        match result {
            Ok((plan, profile)) => {
                let mut section = file_heading(&label, profile.as_deref(), markdown);
                if markdown {
                    section.push_str(&desired::render_plan_markdown(&plan));
                    section.push_str(&limit_notes(args, &plan, true));
                } else {
                    section.push_str(&text(args, &plan));
                }
                out(section);
                if plan.is_empty() {
                    tally.without_changes += 1;
                } else {
                    tally.with_changes += 1;
                }
            }
            Err(failure) => {
                if markdown {
                    out(desired::render_refusal_markdown(&label, &failure.message));
                } else {
                    out(file_heading(&label, None, false) + "Refused (see stderr).\n");
                }
                for line in failure.message.lines() {
                    err(format!("error: {}: {}\n", escape(&label), escape(line)));
                }
                tally.refused.push((label, failure));
            }
        }
    }
    if markdown {
        out(format!("\n### Summary\n\n{}\n", tally.line()));
    } else {
        out(format!("\nSummary: {}\n", tally.line()));
    }
    if let Some((_, first)) = tally.refused.first() {
        // Printed above, file by file; the code is the first failure's.
        return Err(Failure {
            code: first.code,
            message: String::new(),
        });
    }
    if args.exit_code && tally.with_changes > 0 {
        return Err(changes_pending());
    }
    Ok(())
}

/// Reads one file and the live state of its account (with the file's profile, if it names
/// one); the plan and the profile used.
async fn plan_file(
    ctx: &Context,
    path: &std::path::Path,
) -> Result<(Plan, Option<String>), Failure> {
    let file = load_desired(path)?;
    let client = ctx.as_code_client(file.profile.as_deref())?;
    let plan = Proposal::for_desired(&client, &file.state)
        .await
        .map_err(apply_failure)?
        .into_plan();
    Ok((plan, file.profile))
}

/// The plan for a person, with a note when apply would refuse it by its limits.
fn text(args: &Args, plan: &Plan) -> String {
    render(plan) + &limit_notes(args, plan, false)
}

/// One line per limit of apply (`--max-removals`, `--max-creates`) the plan exceeds, as a
/// text note or a Markdown blockquote; empty when it exceeds none.
fn limit_notes(args: &Args, plan: &Plan, markdown: bool) -> String {
    /// One of apply's limits, as the plan's note words it.
    struct Limit {
        planned: usize,
        max: usize,
        change: &'static str,
        noun: &'static str,
        aside: &'static str,
        flag: &'static str,
    }
    let limits = [
        Limit {
            planned: plan.removals(),
            max: args.max_removals,
            change: "removes",
            noun: "member",
            aside: "",
            flag: "--max-removals",
        },
        Limit {
            planned: plan.creates(),
            max: args.max_creates,
            change: "creates",
            noun: "group",
            aside: ", which can never be deleted",
            flag: "--max-creates",
        },
    ];
    let prefix = if markdown { "\n> **Note:** " } else { "Note: " };
    limits
        .iter()
        .filter(|limit| limit.planned > limit.max)
        .map(|limit| {
            format!(
                "{prefix}this plan {} {}{}; apply refuses more than {} unless given {} {}.\n",
                limit.change,
                plural(limit.planned, limit.noun),
                limit.aside,
                limit.max,
                limit.flag,
                limit.planned
            )
        })
        .collect()
}

/// `--exit-code` with changes: an outcome, not an error (nothing printed).
fn changes_pending() -> Failure {
    Failure {
        code: CHANGES_PENDING,
        message: String::new(),
    }
}
