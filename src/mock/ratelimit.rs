//! Gate's fixed-window rate limit, counted per endpoint and per caller.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use super::config::RateLimitConfig;
use crate::generated::operations::OperationSpec;

/// What a request reached: one operation of the generated table (method and route), or
/// nothing the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Endpoint {
    /// An operation of the fragment.
    Operation(&'static OperationSpec),
    /// No route matched the path.
    NotFound,
    /// The path exists, not with this method.
    MethodNotAllowed,
}

impl Endpoint {
    /// Gate's operationId (as in the fragment); `None` for an unmatched request.
    pub(super) fn operation_id(self) -> Option<&'static str> {
        match self {
            Endpoint::Operation(operation) => Some(operation.id),
            Endpoint::NotFound | Endpoint::MethodNotAllowed => None,
        }
    }
}

/// Method and route, for logs.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Operation(operation) => write!(f, "{} {}", operation.method, operation.path),
            Endpoint::NotFound => f.write_str("(no route)"),
            Endpoint::MethodNotAllowed => f.write_str("(method not allowed)"),
        }
    }
}

/// Who a request is counted against: the account that authenticated it, else the address
/// it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Principal {
    Account(i64),
    Address(IpAddr),
    Unknown,
}

/// The verdict for one request, and the values of Gate's three headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quota {
    pub(super) allowed: bool,
    pub(super) limit: u32,
    pub(super) remaining: u32,
    /// Unix seconds at which the current window ends.
    pub(super) reset_secs: i64,
}

/// Windows are forgotten when this many callers are tracked (only stale ones go).
const PRUNE_ABOVE: usize = 4096;

/// Gate's documented limit on its sub-account endpoints, per window: lower than the
/// 150 of its other private endpoints.
pub(super) const SUB_ACCOUNT_REQUESTS: u32 = 80;

/// The operations under Gate's sub-account limit (operationIds of the fragment).
const SUB_ACCOUNT_OPERATIONS: &[&str] = &["listSubAccounts"];

/// The requests an endpoint allows per window under a configured limit of `configured`:
/// the sub-account endpoint never more than Gate's 80 (so the default 150 becomes Gate's
/// two limits), every other endpoint the configured number.
pub(super) fn requests_allowed(endpoint: Endpoint, configured: u32) -> u32 {
    match endpoint.operation_id() {
        Some(id) if SUB_ACCOUNT_OPERATIONS.contains(&id) => configured.min(SUB_ACCOUNT_REQUESTS),
        _ => configured,
    }
}

/// Counts requests in fixed windows aligned on multiples of the window since the epoch.
#[derive(Debug)]
pub(super) struct RateLimiter {
    config: Option<RateLimitConfig>,
    /// (endpoint, principal) -> (window index, requests counted in it).
    windows: Mutex<HashMap<(Endpoint, Principal), (i64, u32)>>,
}

impl RateLimiter {
    pub(super) fn new(config: Option<RateLimitConfig>) -> Self {
        Self {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request at `now_ms`; `None` when the limit is switched off.
    pub(super) fn check(
        &self,
        endpoint: Endpoint,
        principal: Principal,
        now_ms: i64,
    ) -> Option<Quota> {
        let config = self.config?;
        let window_ms = i64::try_from(config.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let index = now_ms.div_euclid(window_ms);
        let end_ms = index.saturating_add(1).saturating_mul(window_ms);
        let reset_secs = end_ms.div_euclid(1000) + i64::from(end_ms.rem_euclid(1000) != 0);

        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (window, _)| *window == index);
        }
        let slot = windows.entry((endpoint, principal)).or_insert((index, 0));
        if slot.0 != index {
            *slot = (index, 0);
        }
        let requests = requests_allowed(endpoint, config.requests);
        let allowed = slot.1 < requests;
        if allowed {
            slot.1 += 1;
        }
        Some(Quota {
            allowed,
            limit: requests,
            remaining: requests - slot.1,
            reset_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::generated::operations as ops;

    #[test]
    fn fixed_windows_per_endpoint_and_principal() {
        let limiter = RateLimiter::new(Some(RateLimitConfig {
            requests: 2,
            window: Duration::from_secs(10),
        }));
        let me = Principal::Account(1);
        let at = |ms| {
            limiter
                .check(Endpoint::Operation(&ops::LIST_STP_GROUPS), me, ms)
                .unwrap()
        };
        let first = at(1_000_000_001_000);
        assert_eq!(
            (first.allowed, first.remaining, first.reset_secs),
            (true, 1, 1_000_000_010)
        );
        assert_eq!(at(1_000_000_002_000).remaining, 0);
        let refused = at(1_000_000_009_999);
        assert_eq!((refused.allowed, refused.remaining), (false, 0));
        // Others have their own windows.
        assert!(
            limiter
                .check(
                    Endpoint::Operation(&ops::CREATE_STP_GROUP),
                    me,
                    1_000_000_009_999
                )
                .unwrap()
                .allowed
        );
        assert!(
            limiter
                .check(
                    Endpoint::Operation(&ops::LIST_STP_GROUPS),
                    Principal::Account(2),
                    1_000_000_009_999
                )
                .unwrap()
                .allowed
        );
        // The next window starts afresh.
        let next = at(1_000_000_010_000);
        assert_eq!(
            (next.allowed, next.remaining, next.reset_secs),
            (true, 1, 1_000_000_020)
        );
    }

    #[test]
    fn the_sub_account_endpoint_allows_at_most_gates_80() {
        let limiter = RateLimiter::new(Some(RateLimitConfig::default()));
        let me = Principal::Account(1);
        let count = |endpoint| {
            (0..200)
                .take_while(|_| limiter.check(endpoint, me, 5_000).unwrap().allowed)
                .count()
        };
        let operation = |id: &str| {
            Endpoint::Operation(
                ops::OPERATIONS
                    .iter()
                    .find(|operation| operation.id == id)
                    .expect("an operation of the fragment"),
            )
        };
        assert_eq!(count(operation("listSubAccounts")), 80);
        assert_eq!(count(operation("getAccountDetail")), 150);
        let quota = limiter
            .check(operation("listSubAccounts"), me, 5_000)
            .unwrap();
        assert_eq!((quota.limit, quota.remaining), (80, 0));
        // A lower configured limit applies to it as to the others.
        let low = RateLimiter::new(Some(RateLimitConfig {
            requests: 3,
            window: Duration::from_secs(10),
        }));
        let quota = low.check(operation("listSubAccounts"), me, 5_000).unwrap();
        assert_eq!((quota.limit, quota.remaining), (3, 2));
    }

    #[test]
    fn sub_second_windows_round_the_reset_up_and_none_means_off() {
        let limiter = RateLimiter::new(Some(RateLimitConfig {
            requests: 0,
            window: Duration::from_millis(1500),
        }));
        let quota = limiter
            .check(
                Endpoint::Operation(&ops::LIST_STP_GROUPS),
                Principal::Unknown,
                0,
            )
            .unwrap();
        assert_eq!(
            (quota.allowed, quota.remaining, quota.reset_secs),
            (false, 0, 2)
        );
        let off = RateLimiter::new(None);
        assert_eq!(
            off.check(
                Endpoint::Operation(&ops::LIST_STP_GROUPS),
                Principal::Unknown,
                0
            ),
            None
        );
    }
}
