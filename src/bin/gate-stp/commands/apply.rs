//! `gate-stp apply FILE|PLAN.json`: bring the live STP groups to a file or a saved plan.

use std::{
    io::{BufRead, IsTerminal},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use futures_util::future::join_all;

use gate_stp::desired::{
    self, ApplyOptions, ApplyReport, DEFAULT_MAX_CREATES, DEFAULT_MAX_REMOVALS, DesiredFile,
    Format, Plan, Progress, Proposal,
};

use crate::{
    as_code::{adoption_note, applied_counts, apply_failure, file_heading, render},
    context::{Context, api_invocation},
    failure::Failure,
    output::{Output, err, escape, out, plural},
    settings::{ClientArgs, JsonArg},
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Desired-state files (TOML/JSON), or plans saved with `plan --out`, applied in order;
    /// a file that names a `profile` is applied with that profile's credentials.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Apply without asking (required when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Refuse, before sending anything, a plan that removes more members than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REMOVALS)]
    max_removals: usize,
    /// Refuse, before sending anything, a plan that creates more groups than this (Gate
    /// can never delete a group).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CREATES)]
    max_creates: usize,
    #[command(flatten)]
    pub(crate) output: JsonArg,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

api_invocation!("apply");

/// `gate-stp apply FILE|PLAN.json... [--yes] [--max-removals N] [--max-creates N]`.
pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    // `gate-stp apply --yes f.toml | head -3` must not stop half-way through the changes.
    crate::output::finish_even_if_stdout_fails();
    let printer = ctx.output();
    if let [path] = args.files.as_slice() {
        let mut section = String::new();
        let result = apply_file(ctx, &args, path, &printer, &mut section).await;
        out(section);
        return result;
    }
    if printer.json() {
        return Err(Failure::usage(
            "--json prints one report: with several files, apply each file on its own",
        ));
    }
    let outcomes = if args.yes {
        side_by_side(ctx, &args, &printer).await
    } else {
        one_by_one(ctx, &args, &printer).await
    };
    report(&args.files, outcomes)
}

/// What became of one file of several.
enum Outcome {
    /// Applied (or nothing to change); its section.
    Applied(String),
    /// Started and failed; its section so far and the failure.
    Failed(String, Failure),
    /// Not started: an earlier failure stopped the run.
    NotStarted,
}

/// With a person to ask: one file after the other, each section printed as it goes (the
/// question comes after its plan), stopping at the first failure.
async fn one_by_one(ctx: &Context, args: &Args, printer: &Output) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (index, path) in args.files.iter().enumerate() {
        if outcomes.iter().any(|o| matches!(o, Outcome::Failed(..))) {
            outcomes.push(Outcome::NotStarted);
            continue;
        }
        out(heading(index == 0, path));
        let mut section = String::new();
        let result = apply_file(ctx, args, path, printer, &mut section).await;
        out(&section);
        outcomes.push(match result {
            Ok(()) => Outcome::Applied(String::new()),
            Err(failure) => Outcome::Failed(String::new(), failure),
        });
    }
    outcomes
}

/// With `--yes`: the files of different accounts side by side (Gate counts its limits per
/// account), the files of one account one after the other, in the order given (they may
/// build on each other; they share its client and its pacer). After a failure no file
/// starts; those in flight finish. Each section is printed whole, in the order given.
async fn side_by_side(ctx: &Context, args: &Args, printer: &Output) -> Vec<Outcome> {
    let mut lanes: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    for (index, path) in args.files.iter().enumerate() {
        let account = account_of(path);
        match lanes.iter_mut().find(|(lane, _)| *lane == account) {
            Some((_, files)) => files.push(index),
            None => lanes.push((account, vec![index])),
        }
    }
    let stopped = AtomicBool::new(false);
    let lane = |files: Vec<usize>| {
        let stopped = &stopped;
        async move {
            let mut done = Vec::new();
            for index in files {
                if stopped.load(Ordering::SeqCst) {
                    done.push((index, Outcome::NotStarted));
                    continue;
                }
                let mut section = String::new();
                let path = &args.files[index];
                let outcome = match apply_file(ctx, args, path, printer, &mut section).await {
                    Ok(()) => Outcome::Applied(section),
                    Err(failure) => {
                        stopped.store(true, Ordering::SeqCst);
                        Outcome::Failed(section, failure)
                    }
                };
                done.push((index, outcome));
            }
            done
        }
    };
    let mut outcomes: Vec<(usize, Outcome)> =
        join_all(lanes.into_iter().map(|(_, files)| lane(files)))
            .await
            .into_iter()
            .flatten()
            .collect();
    outcomes.sort_by_key(|(index, _)| *index);
    let mut printed = false;
    outcomes
        .into_iter()
        .map(|(index, outcome)| {
            let section = match &outcome {
                Outcome::Applied(section) | Outcome::Failed(section, _) => section,
                Outcome::NotStarted => return outcome,
            };
            let first = !std::mem::replace(&mut printed, true);
            out(heading(first, &args.files[index]) + section);
            outcome
        })
        .collect()
}

/// The account a file is applied to, as far as the file says: the profile it names
/// (`None`: the command line's, as for a saved plan or a file it cannot read, whose own
/// refusal comes when it is applied).
fn account_of(path: &Path) -> Option<String> {
    let text = desired::read_text(path, desired::MAX_PLAN_BYTES).ok()?;
    if Plan::looks_like_saved_plan(&text) {
        return None;
    }
    DesiredFile::parse(&text, Format::from_path(path), "")
        .ok()?
        .profile
}

/// The heading of a file's section; a blank line before it unless it is the first.
fn heading(first: bool, path: &Path) -> String {
    let blank = if first { "" } else { "\n" };
    format!(
        "{blank}{}",
        file_heading(&path.display().to_string(), None, false)
    )
}

/// The run's end: the summary, or the first failure with what was applied and what was
/// not attempted (the files in flight when it failed are applied, or failed too).
fn report(files: &[PathBuf], outcomes: Vec<Outcome>) -> Result<(), Failure> {
    let labels: Vec<String> = files
        .iter()
        .map(|path| escape(&path.display().to_string()))
        .collect();
    let list = |names: Vec<&str>| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut applied = Vec::new();
    let mut not_attempted = Vec::new();
    let mut failed = Vec::new();
    for (label, outcome) in labels.iter().zip(outcomes) {
        match outcome {
            Outcome::Applied(_) => applied.push(label.as_str()),
            Outcome::NotStarted => not_attempted.push(label.as_str()),
            Outcome::Failed(_, failure) => failed.push((label.as_str(), failure)),
        }
    }
    let mut failed = failed.into_iter();
    let Some((label, first)) = failed.next() else {
        out(format!(
            "\nSummary: {} applied ({}).\n",
            plural(labels.len(), "file"),
            labels.join(", ")
        ));
        return Ok(());
    };
    // Stop at the first account that fails: the next ones may depend on it, and the
    // operator must look first. Say what was done and what was not tried.
    let mut message = format!(
        "{label}: {}\napplied: {}; not attempted: {}",
        first.message,
        list(applied),
        list(not_attempted)
    );
    for (label, also) in failed {
        message.push_str(&format!("\nalso failed: {label}: {}", also.message));
    }
    Err(Failure {
        code: first.code,
        message,
    })
}

/// Applies one desired-state file (with its profile's credentials if it names one) or one
/// saved plan (with the command line's).
/// Its text for stdout goes to `section` (printed whole by the caller), but for a person
/// to answer: then what comes before the question is printed first.
async fn apply_file(
    ctx: &Context,
    args: &Args,
    path: &Path,
    printer: &Output,
    section: &mut String,
) -> Result<(), Failure> {
    // Bounded by the larger of the two limits (a saved plan's); a desired-state document
    // is then held to its own by `DesiredFile::parse`.
    let text = desired::read_text(path, desired::MAX_PLAN_BYTES)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let label = path.display().to_string();
    let (client, proposal) = if Plan::looks_like_saved_plan(&text) {
        let plan = Plan::from_json(&text, &label).map_err(|e| {
            let way_out = match e {
                desired::PlanFileError::Format { .. } => " (`gate-stp plan FILE --out PLAN.json`)",
                _ => "",
            };
            Failure::usage(format!("{e}{way_out}"))
        })?;
        let client = ctx.as_code_client(None)?;
        let proposal = Proposal::for_saved(&client, plan).await;
        (client, proposal)
    } else {
        let file = DesiredFile::parse(&text, Format::from_path(path), &label)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let client = ctx.as_code_client(file.profile.as_deref())?;
        let proposal = Proposal::for_desired(&client, &file.state).await;
        (client, proposal)
    };
    let proposal = proposal.map_err(apply_failure)?;
    let client = &client;
    let options = ApplyOptions::default()
        .with_max_removals(args.max_removals)
        .with_max_creates(args.max_creates);
    // The refusals come before the question; the re-read after a person's answer is the
    // library's (`Checked::send` reads again when the read has aged, and lists the groups
    // again before any create however quick the answer).
    let checked = proposal.check(options).map_err(apply_failure)?;
    let plan = checked.plan().clone();
    if !printer.json() {
        section.push_str(&render(&plan));
    }
    if plan.is_empty() {
        if printer.json() {
            print_report(printer, &ApplyReport::default());
        }
        return Ok(());
    }
    if !args.yes {
        out(std::mem::take(section));
    }
    confirm(args.yes, Prompt::stdin())?;
    let on_terminal = std::io::stderr().is_terminal();
    let mut progress = |event: Progress<'_>| {
        if !on_terminal {
            return;
        }
        match event {
            // Steps run side by side, so each line is written whole when its step is
            // answered, not begun at Sending and ended at Done.
            Progress::Done { index, total, step } => {
                err(format!("[{}/{total}] {step} ... ok\n", index + 1));
            }
            Progress::Adopted { group, stp_id } => err(format!(
                "answer lost; found group {} as id {stp_id}, adopted\n",
                desired::quoted(group)
            )),
            _ => {}
        }
    };
    let report = checked
        .send(client, &mut progress)
        .await
        .map_err(apply_failure)?;
    if printer.json() {
        print_report(printer, &report);
    } else {
        section.push_str(&format!(
            "\nApply complete: {}.\n",
            applied_counts(&plan, &report)
        ));
        for name in &report.adopted {
            section.push_str(&format!("note: {}\n", adoption_note(name)));
        }
    }
    Ok(())
}

fn print_report(printer: &Output, report: &ApplyReport) {
    let value = serde_json::json!({
        "steps_done": report.steps_done,
        "created": report.created,
        "adopted": report.adopted,
    });
    printer.json_value(&value);
}

/// Where a person could be asked: whether both stdin and stdout are terminals, and what
/// is read from. Tests hand in their own, as no test runs on a terminal.
pub(crate) struct Prompt<R> {
    pub(crate) terminal: bool,
    pub(crate) input: R,
}

impl Prompt<std::io::StdinLock<'static>> {
    /// The process's terminal, if it runs on one.
    fn stdin() -> Self {
        Self {
            terminal: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
            input: std::io::stdin().lock(),
        }
    }
}

/// Asks for confirmation unless `--yes`: on a terminal only `yes` proceeds, elsewhere
/// `--yes` is required. Says whether a person was asked (and so time passed).
fn confirm(yes: bool, mut prompt: Prompt<impl BufRead>) -> Result<bool, Failure> {
    if yes {
        return Ok(false);
    }
    if !prompt.terminal {
        return Err(Failure::usage(
            "apply changes the live STP groups: pass --yes to confirm (there is no terminal to ask on)",
        ));
    }
    out("\nApply these changes to the live STP groups? Only 'yes' is accepted: ");
    let mut answer = String::new();
    prompt
        .input
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(true)
    } else {
        Err(Failure::usage("apply cancelled; nothing was changed"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Prompt, confirm};
    use crate::failure::exit;

    fn on_terminal(answer: &str) -> Prompt<&[u8]> {
        Prompt {
            terminal: true,
            input: answer.as_bytes(),
        }
    }

    #[test]
    fn only_yes_on_a_terminal_proceeds_and_says_a_person_was_asked() {
        assert_eq!(confirm(false, on_terminal("yes\n")).ok(), Some(true));
        assert_eq!(confirm(false, on_terminal("  yes  \n")).ok(), Some(true));
        for answer in ["no\n", "y\n", "YES\n", "yes please\n", "\n", ""] {
            let failure = confirm(false, on_terminal(answer)).unwrap_err();
            assert_eq!(failure.code, exit::USAGE, "{answer:?}");
            assert!(
                failure.message.contains("cancelled"),
                "{answer:?}: {failure:?}"
            );
        }
    }

    #[test]
    fn yes_asks_nobody_and_no_terminal_needs_yes() {
        // --yes: nothing read, nobody asked (no time passed for a re-read).
        let unread = Prompt {
            terminal: false,
            input: "no\n".as_bytes(),
        };
        assert_eq!(confirm(true, unread).ok(), Some(false));
        let no_terminal = Prompt {
            terminal: false,
            input: "yes\n".as_bytes(),
        };
        let failure = confirm(false, no_terminal).unwrap_err();
        assert!(failure.message.contains("--yes"), "{failure:?}");
    }
}
