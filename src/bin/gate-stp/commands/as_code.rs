//! What `plan`, `apply` and `export` (STP groups as code, over `gate_stp::desired`)
//! share: their client, the file loader, the rendering of plans and the exit code of
//! each refusal.

use std::path::Path;

use gate_stp::{
    Client, ClientBuilder, RetryPolicy,
    desired::{self, ApplyError, DesiredState, Plan, ReadError, RenderOptions, StopReason},
};

use crate::{
    failure::{Failure, exit},
    output::colour_on_stdout,
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

/// The plan for a person: coloured only where [`colour_on_stdout`] says so.
pub(crate) fn render(plan: &Plan) -> String {
    desired::render_plan(
        plan,
        RenderOptions {
            colour: colour_on_stdout(),
        },
    )
}

pub(crate) fn load_desired(path: &Path) -> Result<DesiredState, Failure> {
    DesiredState::load(path).map_err(|e| Failure::usage(e.to_string()))
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
    Failure {
        code,
        message: error.to_string(),
    }
}
