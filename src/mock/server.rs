//! The HTTP side of the emulator: routes, the order of checks, Gate's headers.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, StatusCode,
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        request::Parts,
    },
    response::Response,
    routing::get,
};
use futures_util::StreamExt;
use serde::Serialize;

use super::{
    accounts,
    config::EmulatorConfig,
    faults::{self, FaultKind, Faults},
    ratelimit::{Endpoint, Principal, Quota, RateLimiter},
    rules::{self, Refusal, Registry},
    verify::{self, Arrived},
    world::{Account, World},
};
use crate::{
    generated::types::GateError,
    models::{ServerTime, StpGroup, StpGroupUser},
};

const RATE_LIMIT_REMAIN: &str = "x-gate-ratelimit-requests-remain";
const RATE_LIMIT_LIMIT: &str = "x-gate-ratelimit-limit";
const RATE_LIMIT_RESET: &str = "x-gate-ratelimit-reset-timestamp";
const IN_TIME: &str = "x-in-time";
const OUT_TIME: &str = "x-out-time";
const TRACE_ID: &str = "x-gate-trace-id";
const CLIENT_REQUEST_ID: &str = "x-client-request-id";
const EXPTIME: &str = "x-gate-exptime";

/// Everything an emulator's requests share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) world: World,
    pub(super) config: EmulatorConfig,
    registry: Mutex<Registry>,
    limiter: RateLimiter,
    pub(super) faults: Faults,
    /// Unix seconds at which the emulator was built: the `create_time` of its accounts.
    started_secs: i64,
}

impl Shared {
    pub(super) fn new(world: World, config: EmulatorConfig) -> Self {
        let mut shared = Self {
            limiter: RateLimiter::new(config.rate_limit),
            registry: Mutex::new(Registry::default()),
            world,
            config,
            faults: Faults::default(),
            started_secs: 0,
        };
        shared.started_secs = shared.now_ms().div_euclid(1000);
        shared
    }

    /// The emulator's time: its clock plus its offset.
    pub(super) fn now(&self) -> SystemTime {
        let now = self.config.clock.now();
        let offset = std::time::Duration::from_millis(self.config.clock_offset_ms.unsigned_abs());
        let moved = if self.config.clock_offset_ms >= 0 {
            now.checked_add(offset)
        } else {
            now.checked_sub(offset)
        };
        moved.unwrap_or(now)
    }

    fn now_ms(&self) -> i64 {
        crate::clock::unix_millis(self.now())
    }

    fn now_us(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// The state; a poisoned lock is recovered (every change is applied whole, after all
    /// checks, so a panic cannot leave half of one behind).
    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The emulator's routes over `shared`.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    macro_rules! to {
        ($endpoint:expr) => {
            |State(shared): State<Arc<Shared>>, request: Request| handle(shared, $endpoint, request)
        };
    }
    Router::new()
        .route("/api/v4/spot/time", get(to!(Endpoint::ServerTime)))
        .route(
            "/api/v4/account/stp_groups",
            get(to!(Endpoint::ListGroups)).post(to!(Endpoint::CreateGroup)),
        )
        .route(
            "/api/v4/account/stp_groups/{stp_id}/users",
            get(to!(Endpoint::ListUsers))
                .post(to!(Endpoint::AddUsers))
                .delete(to!(Endpoint::RemoveUsers)),
        )
        .route("/api/v4/account/detail", get(to!(Endpoint::AccountDetail)))
        .route("/api/v4/sub_accounts", get(to!(Endpoint::ListSubAccounts)))
        .method_not_allowed_fallback(to!(Endpoint::MethodNotAllowed))
        .fallback(to!(Endpoint::NotFound))
        .with_state(shared)
}

/// One request: an injected fault first, if one is due for this operation; else as Gate.
async fn handle(shared: Arc<Shared>, endpoint: Endpoint, request: Request) -> Response {
    let fault = endpoint
        .operation_id()
        .and_then(|operation| shared.faults.on_request(operation));
    if let Some(fault) = fault {
        tracing::debug!(
            target: "gate_stp::mock",
            endpoint = endpoint.name(),
            ?fault,
            "injected fault"
        );
    }
    match fault {
        None => process(shared, endpoint, request).await,
        Some(FaultKind::Drop) => faults::lost_answer(),
        Some(FaultKind::ExecuteThenDrop) => {
            // The answer is computed (the state changes) and thrown away.
            drop(process(shared, endpoint, request).await);
            faults::lost_answer()
        }
        Some(FaultKind::Status(code)) => {
            let in_time_us = shared.now_us();
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json_bytes(&GateError {
                label: faults::label_for(code).to_owned(),
                message: Some(format!("injected fault: status {code}")),
                detail: None,
            });
            respond(&shared, status, body, None, request.headers(), in_time_us)
        }
    }
}

/// One request, in Gate's order: body size, authentication, rate limit (a 429 answers
/// before anything else), `x-gate-exptime`, parameters, rules.
async fn process(shared: Arc<Shared>, endpoint: Endpoint, request: Request) -> Response {
    let in_time_us = shared.now_us();
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());

    let body = if endpoint.is_private() {
        read_body(body, &parts.headers, shared.config.max_body_bytes).await
    } else {
        Ok(Bytes::new())
    };
    let now_ms = shared.now_ms();
    let auth = match (&body, endpoint.is_private()) {
        (Ok(bytes), true) => {
            let arrived = Arrived {
                method: &parts.method,
                path: parts.uri.path(),
                raw_query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: bytes,
            };
            let window_ms =
                i64::try_from(shared.config.expiry_window.as_millis()).unwrap_or(i64::MAX);
            Some(verify::authenticate(
                &shared.world,
                &arrived,
                now_ms,
                window_ms,
            ))
        }
        _ => None,
    };
    let caller = match &auth {
        Some(Ok(account)) => Some(*account),
        _ => None,
    };
    let principal = match (caller, peer) {
        (Some(account), _) => Principal::Account(account.user_id()),
        (None, Some(ip)) => Principal::Address(ip),
        (None, None) => Principal::Unknown,
    };
    let quota = shared.limiter.check(endpoint, principal, now_ms);

    let outcome = if quota.is_some_and(|quota| !quota.allowed) {
        Err(Refusal::too_many_requests())
    } else {
        match (body, auth) {
            (Err(refusal), _) => Err(refusal),
            (Ok(_), Some(Err(failure))) => Err(Refusal::from(failure)),
            (Ok(body), _) => execute(&shared, endpoint, caller, &parts, &body, now_ms),
        }
    };

    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(refusal) => refusal.status,
    };
    tracing::debug!(
        target: "gate_stp::mock",
        endpoint = endpoint.name(),
        method = %parts.method,
        path = parts.uri.path(),
        user = caller.map(Account::user_id),
        status = status.as_u16(),
        label = outcome.as_ref().err().map(|refusal| refusal.label),
        "request"
    );
    let body = outcome.unwrap_or_else(|refusal| {
        json_bytes(&GateError {
            label: refusal.label.to_owned(),
            message: Some(refusal.message),
            detail: None,
        })
    });
    respond(&shared, status, body, quota, &parts.headers, in_time_us)
}

/// Runs an endpoint whose request passed authentication and the rate limit.
fn execute(
    shared: &Shared,
    endpoint: Endpoint,
    caller: Option<&Account>,
    parts: &Parts,
    body: &[u8],
    now_ms: i64,
) -> Result<Bytes, Refusal> {
    let path = parts.uri.path();
    match endpoint {
        Endpoint::NotFound => {
            return Err(Refusal::not_found(format!(
                "no such endpoint: {}",
                truncate(path, 200)
            )));
        }
        Endpoint::MethodNotAllowed => {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!(
                    "method {} is not allowed on {}",
                    parts.method,
                    truncate(path, 200)
                ),
            ));
        }
        _ => {}
    }
    if shared.config.honour_exptime {
        check_exptime(&parts.headers, now_ms)?;
    }
    if endpoint == Endpoint::ServerTime {
        return Ok(json_bytes(&ServerTime {
            server_time: Some(now_ms),
        }));
    }
    let caller = caller.ok_or_else(|| Refusal::internal("request not authenticated"))?;
    let query = parts.uri.query().unwrap_or("");
    let now_secs = now_ms.div_euclid(1000);
    let world = &shared.world;
    match endpoint {
        Endpoint::ListGroups => {
            let name = verify::query_values(query, "name").into_iter().next();
            let groups: Vec<StpGroup> = shared.registry().list_groups(caller, name.as_deref());
            Ok(json_bytes(&groups))
        }
        Endpoint::CreateGroup => {
            let name = rules::group_name(body)?;
            let group = shared.registry().create_group(caller, name, now_secs)?;
            Ok(json_bytes(&group))
        }
        Endpoint::ListUsers => {
            let stp_id = stp_id(path)?;
            let members: Vec<StpGroupUser> = shared.registry().list_users(caller, stp_id)?;
            Ok(json_bytes(&members))
        }
        Endpoint::AddUsers => {
            let stp_id = stp_id(path)?;
            let ids = rules::body_user_ids(body)?;
            let members = shared.registry().add_users(
                world,
                caller,
                stp_id,
                &ids,
                now_secs,
                shared.config.one_group_per_user,
            )?;
            Ok(json_bytes(&members))
        }
        Endpoint::RemoveUsers => {
            let stp_id = stp_id(path)?;
            let ids = rules::query_user_ids(&verify::query_values(query, "user_id"))?;
            let members = shared
                .registry()
                .remove_users(world, caller, stp_id, &ids)?;
            Ok(json_bytes(&members))
        }
        Endpoint::AccountDetail => Ok(json_bytes(&accounts::account_detail(caller))),
        Endpoint::ListSubAccounts => {
            let kind = verify::query_values(query, "type").into_iter().next();
            let kinds = accounts::parse_kinds(kind.as_deref())?;
            let subs = accounts::sub_accounts(world, caller, kinds, shared.started_secs)?;
            Ok(json_bytes(&subs))
        }
        Endpoint::ServerTime | Endpoint::NotFound | Endpoint::MethodNotAllowed => {
            Err(Refusal::internal("unreachable endpoint"))
        }
    }
}

/// `x-gate-exptime` (Unix ms): refused with 400 REQUEST_EXPIRED when the emulator's time is
/// past it; 400 INVALID_PARAM_VALUE when it is not an integer.
fn check_exptime(headers: &HeaderMap, now_ms: i64) -> Result<(), Refusal> {
    let Some(value) = headers.get(EXPTIME) else {
        return Ok(());
    };
    let deadline = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .ok_or_else(|| Refusal::bad_param("x-gate-exptime must be Unix milliseconds"))?;
    if now_ms > deadline {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "REQUEST_EXPIRED",
            format!("request expired: x-gate-exptime {deadline} is before server time {now_ms}"),
        ));
    }
    Ok(())
}

/// The `{stp_id}` of `/api/v4/account/stp_groups/{stp_id}/users`, percent-decoded.
fn stp_id(path: &str) -> Result<i64, Refusal> {
    let segment = path
        .strip_prefix("/api/v4/account/stp_groups/")
        .and_then(|rest| rest.strip_suffix("/users"))
        .unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    rules::positive_id(&decoded, "stp_id")
}

/// The body, refused with 400 INVALID_REQUEST_BODY when larger than `limit` (announced
/// or actual) or unreadable.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Refusal> {
    let too_large = || Refusal::bad_body(format!("request body is larger than {limit} bytes"));
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Refusal::bad_body("request body could not be read"))?;
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    // The models serialize infallibly (strings and integers only).
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec()))
}

fn respond(
    shared: &Shared,
    status: StatusCode,
    body: Bytes,
    quota: Option<Quota>,
    request_headers: &HeaderMap,
    in_time_us: i64,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(quota) = quota {
        headers.insert(RATE_LIMIT_LIMIT, HeaderValue::from(quota.limit));
        headers.insert(RATE_LIMIT_REMAIN, HeaderValue::from(quota.remaining));
        headers.insert(RATE_LIMIT_RESET, HeaderValue::from(quota.reset_secs));
    }
    if let Some(id) = request_headers.get(CLIENT_REQUEST_ID) {
        headers.insert(HeaderName::from_static(CLIENT_REQUEST_ID), id.clone());
    }
    let trace_id = format!("{:032x}", rand::random::<u128>());
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        headers.insert(TRACE_ID, value);
    }
    headers.insert(IN_TIME, HeaderValue::from(in_time_us));
    headers.insert(OUT_TIME, HeaderValue::from(shared.now_us()));
    response
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
