//! Why a command failed, and the exit code that says so.
//!
//! Every command returns `Result<(), Failure>`; `main` prints the message on stderr and
//! exits with the code. The codes are part of the interface (scripts test them), so they
//! are named once here.

use gate_stp::Error;

/// Exit codes, distinct per kind of failure.
pub(crate) mod exit {
    /// Bad command line, input refused before sending, missing credentials, bad config.
    pub(crate) const USAGE: u8 = 2;
    /// Gate answered with an error (including rate limiting).
    pub(crate) const API: u8 = 3;
    /// No usable answer: connection, timeout, unexpected or oversized response, redirect.
    pub(crate) const TRANSPORT: u8 = 4;
    /// The emulator could not start or failed.
    pub(crate) const SERVICE: u8 = 5;
    /// Standard output could not be written (a full disk, say; a closed pipe is a normal
    /// end). Not 1: `plan --exit-code` says "changes pending" with 1.
    pub(crate) const OUTPUT: u8 = 6;
}

/// Why the command failed, and with which exit code. An empty message is an outcome, not
/// an error (`plan --exit-code` with changes): nothing is printed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Bad command line, refused input, missing or mixed credentials, a bad config file.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    /// The emulator could not start, or the demo went wrong.
    pub(crate) fn service(message: impl Into<String>) -> Self {
        Self {
            code: exit::SERVICE,
            message: message.into(),
        }
    }

    /// The exit code for a client error.
    pub(crate) fn from_error_code(error: &Error) -> u8 {
        match error {
            Error::Api(_) | Error::RateLimited(_) | Error::ExpiresBeforeRateLimitReset { .. } => {
                exit::API
            }
            Error::InvalidInput(_) | Error::MissingCredentials { .. } | Error::Config(_) => {
                exit::USAGE
            }
            _ => exit::TRANSPORT,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            code: Self::from_error_code(&error),
            message: with_causes(&error),
        }
    }
}

/// The error and its chain of causes on one line (`error sending request: client error
/// (Connect): tcp connect error: Connection refused`), each cause once: reqwest's own
/// message only says that sending failed, the reason is further down.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = error.source();
    }
    line
}
