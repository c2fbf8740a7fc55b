//! Tool failures as results an agent can act on: `isError: true` and one line saying what
//! happened and what to do next.

use gate_stp::{
    Error,
    desired::{ApplyError, ReadError},
};
use rmcp::model::{CallToolResult, ContentBlock};

/// A tool that ran and failed (Gate refused, no answer, a bad document, a stale plan).
#[derive(Debug)]
pub(crate) struct ToolError {
    message: String,
}

impl ToolError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// A failed request of the Gate client, with the next step for its kind.
    pub(crate) fn client(error: Error) -> Self {
        Self::new(format!(
            "{}; {}",
            crate::failure::with_causes(&error),
            next_step(&error)
        ))
    }

    /// A failed read of the live state (export, or the read before a plan or an apply).
    pub(crate) fn read(error: ReadError) -> Self {
        match error {
            ReadError::Request(inner) => Self::new(format!(
                "reading the live state: {}; {}",
                crate::failure::with_causes(&inner),
                next_step(&inner)
            )),
            refusal @ ReadError::KeyOfAnotherAccount { .. } => Self::new(format!(
                "{refusal}; set main_user_id to the key's account (see the account tool) and call plan again"
            )),
            // ReadError is non-exhaustive: a refusal added later still reaches the agent.
            other => Self::new(format!("{other}; call plan again")),
        }
    }

    /// A refused or stopped apply (or a failed read of the live state for one).
    pub(crate) fn apply(error: ApplyError) -> Self {
        let error = match error {
            ApplyError::Read(inner) => return Self::read(inner),
            other => other,
        };
        let next = match &error {
            ApplyError::Plan(_) => "fix the document and call plan again",
            ApplyError::StalePlan { .. } | ApplyError::InconsistentPlan => {
                "call plan again, show the new plan to the user, and apply its digest"
            }
            ApplyError::TooManyRemovals { .. } => {
                "split the change into smaller documents, or ask the operator to restart the server with a higher --max-removals"
            }
            ApplyError::Stopped(_) => {
                "call plan to see what is left, show it to the user, and apply the new digest"
            }
            _ => "call plan again",
        };
        let message = match &error {
            // The library's text names the CLI's flag; this server's operator sets it.
            ApplyError::TooManyRemovals { removals, max } => format!(
                "the plan removes {removals} members, more than this server's limit of {max}; nothing was changed"
            ),
            _ => error.to_string(),
        };
        Self::new(format!("{message}; {next}"))
    }

    /// The result for the model: one line (a stopped apply's report is joined with "; "),
    /// control characters escaped.
    pub(crate) fn into_result(self) -> CallToolResult {
        let line = self.message.lines().collect::<Vec<_>>().join("; ");
        CallToolResult::error(vec![ContentBlock::text(
            gate_stp::text::escape_control(&line).into_owned(),
        )])
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// What to do after a failed request, by kind of failure.
fn next_step(error: &Error) -> &'static str {
    match error {
        Error::Api(_) => {
            "Gate refused: check the arguments, or ask the operator about the key's permissions"
        }
        Error::RateLimited(_) | Error::ExpiresBeforeRateLimitReset { .. } => {
            "Gate's rate limit: wait a few seconds and call again"
        }
        Error::InvalidInput(_) => "fix the arguments and call again",
        Error::MissingCredentials { .. } | Error::Config(_) => {
            "the operator must fix the server's settings (key, secret, base URL or profile)"
        }
        _ => "no usable answer from Gate: call again later (reads are safe to repeat)",
    }
}
