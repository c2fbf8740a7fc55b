//! What `plan`, `apply` and `export` (STP groups as code, over `gate_stp::desired`)
//! share: their client, the file loader, the rendering of plans and the exit code of
//! each refusal.

use std::{path::Path, time::Duration};

use gate_stp::{
    Client, ClientBuilder, Credentials, RetryPolicy,
    desired::{
        self, ApplyError, ApplyReport, DesiredFile, Plan, ReadError, RenderOptions, StopReason,
    },
    mock::demo,
};

use crate::{
    failure::{Failure, exit},
    output::{colour_on_stdout, escape, plural},
};

/// The client for these commands: pacing on Gate's rate-limit headers, and retries of
/// idempotent writes (adding or removing members twice leaves the same state; creates are
/// never retried by the client).
pub(crate) fn client(builder: ClientBuilder) -> Result<Client, Failure> {
    Ok(builder
        .pace_rate_limits(true)
        .retry_policy(RetryPolicy::default().retry_idempotent_writes(true))
        .build()?)
}

/// The demo's main account on the emulator at `base_url`, with the client these commands
/// use (the demo shows them, and its agent session serves them over MCP).
pub(crate) fn demo_client(base_url: &str, timeout: Duration) -> Result<Client, Failure> {
    client(
        Client::builder()
            .base_url(base_url)
            .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET)?)
            .timeout(timeout),
    )
}

/// What an apply did, in one line: counts by kind and the requests sent (the CLI's
/// closing line and the MCP server's answer say it alike).
pub(crate) fn applied_counts(plan: &Plan, report: &ApplyReport) -> String {
    format!(
        "{} created, {} added, {} removed ({} sent, each answer checked)",
        plural(plan.creates(), "group"),
        plural(plan.additions(), "member"),
        plural(plan.removals(), "member"),
        plural(report.steps_done, "request"),
    )
}

/// Why a group was adopted rather than created (its create's answer was lost).
pub(crate) fn adoption_note(name: &str) -> String {
    format!(
        "the answer to creating {} was lost; the group was found by listing and adopted (no second group created)",
        desired::quoted(name)
    )
}

/// The plan for a person: coloured only where [`colour_on_stdout`] says so.
pub(crate) fn render(plan: &Plan) -> String {
    desired::render_plan(
        plan,
        RenderOptions {
            colour: colour_on_stdout(),
        },
    )
}

pub(crate) fn load_desired(path: &Path) -> Result<DesiredFile, Failure> {
    DesiredFile::load(path).map_err(|e| Failure::usage(e.to_string()))
}

/// Tally of a run over several files, for the closing summary.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) with_changes: usize,
    pub(crate) without_changes: usize,
    /// The files refused or failed, with their failure (the first one's code is the run's).
    pub(crate) refused: Vec<(String, Failure)>,
}

impl Tally {
    pub(crate) fn planned(&self) -> usize {
        self.with_changes + self.without_changes + self.refused.len()
    }

    /// `3 files planned: 1 with changes, 1 without, 1 refused (c.toml).`
    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "{} planned: {} with changes, {} without, {} refused",
            crate::output::plural(self.planned(), "file"),
            self.with_changes,
            self.without_changes,
            self.refused.len()
        );
        if !self.refused.is_empty() {
            let names: Vec<String> = self.refused.iter().map(|(file, _)| escape(file)).collect();
            line.push_str(&format!(" ({})", names.join(", ")));
        }
        line.push('.');
        line
    }
}

/// The heading of one file in a run over several: its path and profile.
pub(crate) fn file_heading(file: &str, profile: Option<&str>, markdown: bool) -> String {
    if markdown {
        let profile = profile
            .map(|name| format!(" (profile {})", desired::markdown_code_span(name)))
            .unwrap_or_default();
        format!("## {}{profile}\n\n", desired::markdown_code_span(file))
    } else {
        let profile = profile
            .map(|name| format!(" (profile {})", escape(name)))
            .unwrap_or_default();
        format!("==> {}{profile} <==\n", escape(file))
    }
}

/// A failed read of the live state: Gate's or the transport's code, or a refusal (a key
/// of another account).
pub(crate) fn read_failure(error: ReadError) -> Failure {
    let code = match &error {
        ReadError::Request(inner) => Failure::from_error_code(inner),
        _ => exit::USAGE,
    };
    Failure {
        code,
        message: error.to_string(),
    }
}

pub(crate) fn apply_failure(error: ApplyError) -> Failure {
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
    // The library names no flag; the way out of a limit is this command line's.
    let way_out = match &error {
        ApplyError::TooManyRemovals { removals, .. } => {
            format!(" (raise it with --max-removals {removals} if this is intended)")
        }
        ApplyError::TooManyCreates { creates, .. } => {
            format!(" (raise it with --max-creates {creates} if this is intended)")
        }
        _ => String::new(),
    };
    Failure {
        code,
        message: format!("{error}{way_out}"),
    }
}

#[cfg(test)]
mod tests {
    use gate_stp::desired::{ApplyReport, DesiredGroup, DesiredState, LiveState, Member, Plan};

    use super::{adoption_note, applied_counts};

    #[test]
    fn the_applied_line_counts_the_plan_by_kind_and_the_requests_sent() {
        let live = LiveState {
            main_user_id: 10_000,
            sub_accounts: Vec::new(),
            groups: Vec::new(),
        };
        let desired = DesiredState {
            main_user_id: 10_000,
            groups: vec![DesiredGroup::new("desk", vec![Member::Id(10_000)])],
        };
        let plan = Plan::compute(&live, &desired).unwrap();
        let report = ApplyReport {
            steps_done: 2,
            ..ApplyReport::default()
        };
        assert_eq!(
            applied_counts(&plan, &report),
            "1 group created, 1 member added, 0 members removed (2 requests sent, each answer checked)"
        );
        let one = ApplyReport {
            steps_done: 1,
            ..ApplyReport::default()
        };
        assert!(applied_counts(&plan, &one).ends_with("(1 request sent, each answer checked)"));
    }

    #[test]
    fn the_adoption_note_names_the_group_escaped() {
        assert_eq!(
            adoption_note("desk\u{1b}[2J"),
            "the answer to creating \"desk\\x1b[2J\" was lost; the group was found by listing and adopted (no second group created)"
        );
    }
}
