//! Tool failures as results an agent can act on: `isError: true` and one line saying what
//! happened and what to do next.

use gate_stp::{
    Error, Label,
    desired::{ApplyError, ReadError},
};
use rmcp::{
    ErrorData,
    model::{CallToolResult, ContentBlock, ErrorCode},
};

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
                "split the change into smaller documents (plan and apply each), or ask the operator to restart the server with a higher --max-removals"
            }
            ApplyError::TooManyCreates { .. } => {
                "create fewer groups per document (plan and apply each), or ask the operator to restart the server with a higher --max-creates"
            }
            ApplyError::Stopped(_) => {
                "call plan to see what is left, show it to the user, and apply the new digest"
            }
            _ => "call plan again",
        };
        // The library's text names no flag; this server's operator sets the limits.
        let message = match &error {
            ApplyError::TooManyRemovals { .. } => {
                format!("{error} (this server's limit, set by its operator with --max-removals)")
            }
            ApplyError::TooManyCreates { .. } => {
                format!("{error} (this server's limit, set by its operator with --max-creates)")
            }
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

/// The end of every next step the agent cannot take itself.
const ASK_THE_OPERATOR: &str =
    "the agent cannot fix this: tell the user to ask the operator who runs gate-stp mcp";

/// `what` went wrong, and it is the operator's to fix, not the agent's.
pub(super) fn for_the_operator(what: &str) -> String {
    format!("{what}; {ASK_THE_OPERATOR}")
}

/// What to do after a failed request, by kind of failure: the agent's own mistakes (an id
/// that does not exist, a value Gate refuses) it can fix; the key, the secret, the key's
/// permissions, the machine's clock or IP it cannot, and it is told so.
fn next_step(error: &Error) -> String {
    match error {
        Error::Api(api) => match &api.label {
            Label::InvalidCredentials
            | Label::InvalidKey
            | Label::InvalidSignature
            | Label::MissingRequiredHeader => {
                for_the_operator("Gate does not accept the server's API key or secret")
            }
            Label::IpForbidden => {
                for_the_operator("this machine's IP address is not on the key's allow list")
            }
            Label::ReadOnly => for_the_operator("the server's API key is read-only"),
            Label::RequestExpired => {
                for_the_operator("this machine's clock is more than 60 seconds off Gate's")
            }
            Label::AccountLocked => for_the_operator("the account is locked"),
            Label::Forbidden => for_the_operator(
                "the key's account may not do this (only a main account has STP groups, and \
                 only the account that created a group manages it)",
            ),
            Label::NotFound => {
                "no such group: take the id from list_groups and call again".to_owned()
            }
            _ => "Gate refused the request: check the arguments (ids from list_groups and \
                  account) and call again; if they are right, ask the operator about the \
                  key's permissions"
                .to_owned(),
        },
        Error::RateLimited(_) | Error::ExpiresBeforeRateLimitReset { .. } => {
            "Gate's rate limit: wait a few seconds and call again".to_owned()
        }
        Error::InvalidInput(_) => "fix the arguments and call again".to_owned(),
        Error::MissingCredentials { .. } | Error::Config(_) => {
            for_the_operator("the server's settings are wrong (key, secret, base URL or profile)")
        }
        _ => "no usable answer from Gate: call again later (reads are safe to repeat)".to_owned(),
    }
}

/// The JSON kind of `value`, for a message.
pub(super) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The protocol error for a method this server does not know (rmcp's says only the name).
pub(super) fn unknown_method(method: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::METHOD_NOT_FOUND,
        format!(
            "Method not found: {}; this server offers initialize, ping, server/discover, tools/list and tools/call",
            gate_stp::desired::quoted(&gate_stp::text::truncate_chars(method, 64))
        ),
        None,
    )
}
