//! Faults injected into an emulator for tests: an error status, a dropped connection, a
//! request executed whose answer is then lost, or one executed only after its connection
//! was dropped.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    response::Response,
};

use crate::generated::operations::OPERATIONS;

/// One fault: on the `nth` request of `operation` counted from the time it is injected,
/// the emulator misbehaves as `kind` says. Each fault fires once.
///
/// ```
/// use gate_stp::mock::{Fault, FaultKind};
///
/// // The second create from now is executed, then its answer is lost.
/// let lost_create = Fault::new("createSTPGroup", 2, FaultKind::ExecuteThenDrop);
/// # let _ = lost_create;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Gate's operationId, as in `openapi/gate-stp.yaml` (e.g. `createSTPGroup`).
    pub operation: String,
    /// Which request of that operation, 1-based, counted from the injection: 1 is the next
    /// one.
    pub nth: u32,
    /// What happens to that request.
    pub kind: FaultKind,
}

impl Fault {
    /// A fault on the `nth` request (1-based) of `operation` from now.
    pub fn new(operation: impl Into<String>, nth: u32, kind: FaultKind) -> Self {
        Self {
            operation: operation.into(),
            nth,
            kind,
        }
    }
}

/// How a faulty request goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Answered at once with this HTTP status (400 to 599) and a Gate-shaped error body
    /// (`SERVER_ERROR` for 5xx, `TOO_MANY_REQUESTS` for 429, ...); nothing is executed,
    /// nothing is checked (not even the signature) and the rate limit does not count it.
    Status(u16),
    /// The connection is closed without an answer; nothing is executed. A client sees a
    /// transport error with no HTTP status.
    Drop,
    /// The request runs as usual (checks, rules, state change), then the connection is
    /// closed without an answer: the lost answer of a write that happened. A client sees
    /// a transport error with no HTTP status.
    ExecuteThenDrop,
    /// The connection is closed at once without an answer, and the request runs (checks,
    /// rules, state change) only after this delay: a write still executing inside Gate
    /// when its client gave up, which a listing made at once does not show yet. A client
    /// sees a transport error with no HTTP status.
    DropThenExecuteAfter(Duration),
}

/// Why [`RunningEmulator::inject_fault`](super::RunningEmulator::inject_fault) refused a
/// fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidFault {
    /// The operation is not one of the fragment's operationIds.
    #[error("unknown operationId {0:?}: a fault needs one of the emulator's operations")]
    UnknownOperation(String),
    /// `nth` is 0: requests are counted from 1.
    #[error("nth must be at least 1 (1 is the next request of the operation)")]
    ZeroNth,
    /// The status is not an error status.
    #[error("status {0} is not an HTTP error status (400 to 599)")]
    NotAnErrorStatus(u16),
}

/// Checks a fault before it is queued.
fn validate(fault: &Fault) -> Result<(), InvalidFault> {
    if !OPERATIONS.iter().any(|op| op.id == fault.operation) {
        return Err(InvalidFault::UnknownOperation(fault.operation.clone()));
    }
    if fault.nth == 0 {
        return Err(InvalidFault::ZeroNth);
    }
    if let FaultKind::Status(code) = fault.kind
        && !(400..=599).contains(&code)
    {
        return Err(InvalidFault::NotAnErrorStatus(code));
    }
    Ok(())
}

#[derive(Debug)]
struct Pending {
    operation: String,
    /// Requests of the operation still to pass before this one fires (0: the next one).
    to_skip: u32,
    kind: FaultKind,
}

/// The faults waiting to fire, in injection order.
#[derive(Debug, Default)]
pub(super) struct Faults {
    pending: Mutex<VecDeque<Pending>>,
}

impl Faults {
    /// Queues a valid fault.
    pub(super) fn inject(&self, fault: Fault) -> Result<(), InvalidFault> {
        validate(&fault)?;
        self.lock().push_back(Pending {
            operation: fault.operation,
            to_skip: fault.nth - 1,
            kind: fault.kind,
        });
        Ok(())
    }

    /// Counts one request of `operation` and returns the fault it must suffer, if any.
    ///
    /// Every pending fault of the operation counts the request. If several reach their
    /// turn on the same request, the earliest injected fires and the others fire on the
    /// following requests of the operation, one each: no fault is lost.
    pub(super) fn on_request(&self, operation: &str) -> Option<FaultKind> {
        let mut pending = self.lock();
        let mut fired = None;
        for (index, fault) in pending.iter_mut().enumerate() {
            if fault.operation != operation {
                continue;
            }
            if fault.to_skip > 0 {
                fault.to_skip -= 1;
            } else if fired.is_none() {
                fired = Some(index);
            }
        }
        fired
            .and_then(|index| pending.remove(index))
            .map(|fault| fault.kind)
    }

    /// Number of faults that have not fired yet.
    pub(super) fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // Every change is a single push or remove: a poisoned lock holds a consistent queue.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A response that is never answered: its body fails before its first byte, so hyper
/// closes the connection with the status line and headers still unsent, and the client
/// sees the connection end without an answer.
pub(super) fn lost_answer() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("injected fault: answer dropped"))
    });
    Response::new(Body::from_stream(failing))
}

/// Runs `request` (the rest of the emulator's handling of a request) after `delay`, in a
/// task of its own, and throws its answer away: for [`FaultKind::DropThenExecuteAfter`].
pub(super) fn execute_after(
    delay: Duration,
    request: impl Future<Output = Response> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        drop(request.await);
    });
}

/// Gate's label for an injected error status.
pub(super) fn label_for(status: u16) -> &'static str {
    match status {
        401 => "INVALID_KEY",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        429 => "TOO_MANY_REQUESTS",
        400..=499 => "INVALID_PARAM_VALUE",
        _ => "SERVER_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_status_carries_gates_label_for_it() {
        for (status, label) in [
            (401, "INVALID_KEY"),
            (403, "FORBIDDEN"),
            (404, "NOT_FOUND"),
            (429, "TOO_MANY_REQUESTS"),
            (400, "INVALID_PARAM_VALUE"),
            (418, "INVALID_PARAM_VALUE"),
            (499, "INVALID_PARAM_VALUE"),
            (500, "SERVER_ERROR"),
            (503, "SERVER_ERROR"),
            (599, "SERVER_ERROR"),
        ] {
            assert_eq!(label_for(status), label, "{status}");
        }
    }

    #[test]
    fn faults_are_validated() {
        let faults = Faults::default();
        assert_eq!(
            faults.inject(Fault::new("createStpGroup", 1, FaultKind::Drop)),
            Err(InvalidFault::UnknownOperation("createStpGroup".into()))
        );
        assert_eq!(
            faults.inject(Fault::new("createSTPGroup", 0, FaultKind::Drop)),
            Err(InvalidFault::ZeroNth)
        );
        assert_eq!(
            faults.inject(Fault::new("createSTPGroup", 1, FaultKind::Status(200))),
            Err(InvalidFault::NotAnErrorStatus(200))
        );
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn the_nth_request_of_the_operation_fires_once() {
        let faults = Faults::default();
        faults
            .inject(Fault::new("listSTPGroups", 3, FaultKind::Status(503)))
            .unwrap();
        assert_eq!(faults.on_request("listSTPGroups"), None);
        assert_eq!(faults.on_request("createSTPGroup"), None); // another operation
        assert_eq!(faults.on_request("listSTPGroups"), None);
        assert_eq!(
            faults.on_request("listSTPGroups"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(faults.on_request("listSTPGroups"), None);
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn faults_due_on_the_same_request_fire_one_after_the_other() {
        let faults = Faults::default();
        faults
            .inject(Fault::new("createSTPGroup", 2, FaultKind::Drop))
            .unwrap();
        assert_eq!(faults.on_request("createSTPGroup"), None);
        // Counted from its own injection: due on the next request, like the first.
        faults
            .inject(Fault::new("createSTPGroup", 1, FaultKind::ExecuteThenDrop))
            .unwrap();
        assert_eq!(faults.on_request("createSTPGroup"), Some(FaultKind::Drop));
        assert_eq!(
            faults.on_request("createSTPGroup"),
            Some(FaultKind::ExecuteThenDrop)
        );
        assert_eq!(faults.on_request("createSTPGroup"), None);
    }
}
