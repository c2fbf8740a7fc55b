//! The HTTP side of the emulator: routes, handlers on axum's extractors, and the
//! middleware that adds Gate's headers, logs each request and fires injected faults.
//!
//! Routes come from the generated operations table (`OPERATIONS`: operationId, method,
//! path); this file names each operation once, in `HANDLERS`, beside its handler. The
//! middleware identifies a request's operation in the same table, and the rate-limit
//! buckets and fault targets are keyed on it.
//!
//! Admission (body size, signature, rate limit, `x-gate-exptime`) lives in
//! [`admission`](super::admission); parameters in [`input`](super::input); Gate's rules in
//! [`groups`](super::groups) and [`accounts`](super::accounts).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{
        DefaultBodyLimit, MatchedPath, Path, Query, Request, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};

use super::{
    accounts,
    admission::{self, Exchange, Private, Public, Seen},
    faults::{self, FaultKind},
    input::{self, QueryPairs},
    ratelimit::Endpoint,
    refusal::{Refusal, RefusalLabel},
    shared::Shared,
};
use crate::generated::operations::{self as ops, OPERATIONS, OperationSpec};
use crate::models::{AccountDetail, ServerTime, StpGroup, StpGroupUser, SubAccount};

const RATE_LIMIT_REMAIN: &str = "x-gate-ratelimit-requests-remain";
const RATE_LIMIT_LIMIT: &str = "x-gate-ratelimit-limit";
const RATE_LIMIT_RESET: &str = "x-gate-ratelimit-reset-timestamp";
const IN_TIME: &str = "x-in-time";
const OUT_TIME: &str = "x-out-time";
const TRACE_ID: &str = "x-gate-trace-id";
const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// Where the emulator serves the fragment's paths: the fragment's servers end in `/api/v4`.
const API_PREFIX: &str = "/api/v4";

/// Builds the method router of one operation, for the method the operations table gives.
type Route = fn(MethodFilter) -> MethodRouter<Arc<Shared>>;

/// The handler of each of the fragment's operations, by operationId: the one place an
/// operation added to `openapi/gate-stp.yaml` must be named. Methods and paths come from
/// the generated operations table, and so do the rate-limit buckets and fault targets.
const HANDLERS: &[(&str, Route)] = &[
    (ops::GET_SYSTEM_TIME.id, |method| on(method, server_time)),
    (ops::LIST_STP_GROUPS.id, |method| on(method, list_groups)),
    (ops::CREATE_STP_GROUP.id, |method| on(method, create_group)),
    (ops::LIST_STP_GROUPS_USERS.id, |method| {
        on(method, list_users)
    }),
    (ops::ADD_STP_GROUP_USERS.id, |method| on(method, add_users)),
    (ops::DELETE_STP_GROUP_USERS.id, |method| {
        on(method, remove_users)
    }),
    (ops::GET_ACCOUNT_DETAIL.id, |method| {
        on(method, account_detail)
    }),
    (ops::LIST_SUB_ACCOUNTS.id, |method| {
        on(method, list_sub_accounts)
    }),
];

/// The emulator's routes over `shared`: every operation of the generated table that has a
/// handler, at its method and path.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.max_body_bytes;
    let mut router = Router::new();
    for operation in OPERATIONS {
        match operation_route(operation) {
            Some((path, route)) => router = router.route(&path, route),
            // The conformance test fails on an operation the emulator does not serve.
            None => tracing::warn!(
                target: "gate_stp::mock",
                operation = operation.id,
                "operation without a handler: not served"
            ),
        }
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            exchange,
        ))
        .with_state(shared)
}

/// The path and method router of one operation; `None` without a handler or with a
/// method axum cannot route.
fn operation_route(operation: &OperationSpec) -> Option<(String, MethodRouter<Arc<Shared>>)> {
    let (_, route) = HANDLERS.iter().find(|(id, _)| *id == operation.id)?;
    let method = Method::from_bytes(operation.method.as_bytes()).ok()?;
    let filter = MethodFilter::try_from(method).ok()?;
    Some((format!("{API_PREFIX}{}", operation.path), route(filter)))
}

/// The endpoint of a request, from its method and the route it matched, looked up in the
/// operations table.
fn endpoint_of(method: &Method, route: Option<&str>) -> Endpoint {
    let Some(route) = route else {
        return Endpoint::NotFound;
    };
    // axum answers HEAD with the GET handler.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let path = route.strip_prefix(API_PREFIX);
    OPERATIONS
        .iter()
        .find(|operation| Some(operation.path) == path && operation.method == method)
        .map_or(Endpoint::MethodNotAllowed, Endpoint::Operation)
}

/// Around every request: identifies its endpoint, fires an injected fault if one is due,
/// then adds Gate's headers to the answer and logs it.
async fn exchange(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let in_time_us = shared.now_us();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let endpoint = endpoint_of(request.method(), route);
    let record = Exchange::default();
    request.extensions_mut().insert(endpoint);
    request.extensions_mut().insert(record.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request.headers().get(CLIENT_REQUEST_ID).cloned();

    let fault = endpoint
        .operation_id()
        .and_then(|operation| shared.faults.on_request(operation));
    if let Some(fault) = fault {
        tracing::debug!(target: "gate_stp::mock", endpoint = %endpoint, ?fault, "injected fault");
    }
    let mut response = match fault {
        None => next.run(request).await,
        Some(FaultKind::Drop) => return faults::lost_answer(),
        Some(FaultKind::ExecuteThenDrop) => {
            // Executed to the end (the state changes), then the answer is thrown away.
            drop(next.run(request).await);
            return faults::lost_answer();
        }
        Some(FaultKind::DropThenExecuteAfter(delay)) => {
            faults::execute_after(delay, next.run(request));
            return faults::lost_answer();
        }
        Some(FaultKind::Status(code)) => Refusal::new(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            faults::label_for(code),
            format!("injected fault: status {code}"),
        )
        .into_response(),
    };

    let seen = record.seen();
    tracing::debug!(
        target: "gate_stp::mock",
        endpoint = %endpoint,
        method = %method,
        path = %path,
        user = seen.caller,
        status = response.status().as_u16(),
        label = response.extensions().get::<RefusalLabel>().map(|label| label.0),
        "request"
    );
    add_gate_headers(&shared, &mut response, seen, request_id, in_time_us);
    response
}

fn add_gate_headers(
    shared: &Shared,
    response: &mut Response,
    seen: Seen,
    request_id: Option<HeaderValue>,
    in_time_us: i64,
) {
    let headers = response.headers_mut();
    if let Some(quota) = seen.quota {
        headers.insert(RATE_LIMIT_LIMIT, HeaderValue::from(quota.limit));
        headers.insert(RATE_LIMIT_REMAIN, HeaderValue::from(quota.remaining));
        headers.insert(RATE_LIMIT_RESET, HeaderValue::from(quota.reset_secs));
    }
    if let Some(id) = request_id {
        headers.insert(HeaderName::from_static(CLIENT_REQUEST_ID), id);
    }
    let trace_id = format!("{:032x}", rand::random::<u128>());
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        headers.insert(TRACE_ID, value);
    }
    headers.insert(IN_TIME, HeaderValue::from(in_time_us));
    headers.insert(OUT_TIME, HeaderValue::from(shared.now_us()));
}

/// What a handler answers: the model as JSON, or a Gate-shaped refusal.
type Answer<T> = Result<Json<T>, Refusal>;

async fn server_time(
    State(shared): State<Arc<Shared>>,
    _: Public,
    headers: HeaderMap,
) -> Answer<ServerTime> {
    let now_ms = shared.now_ms();
    if shared.config.honour_exptime {
        admission::check_exptime(&headers, now_ms)?;
    }
    Ok(Json(ServerTime {
        server_time: Some(now_ms),
    }))
}

async fn not_found(_: Public, uri: Uri) -> Refusal {
    Refusal::not_found(format!("no such endpoint: {}", truncate(uri.path(), 200)))
}

async fn method_not_allowed(_: Public, method: Method, uri: Uri) -> Refusal {
    Refusal::method_not_allowed(format!(
        "method {method} is not allowed on {}",
        truncate(uri.path(), 200)
    ))
}

async fn list_groups(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<QueryPairs>, QueryRejection>,
    call: Private,
) -> Answer<Vec<StpGroup>> {
    let Query(query) = query.map_err(|rejection| Refusal::from_query(&rejection))?;
    let name = input::first_value(&query, "name");
    Ok(Json(shared.registry().list_groups(&call.caller, name)))
}

async fn create_group(State(shared): State<Arc<Shared>>, call: Private) -> Answer<StpGroup> {
    let name = input::group_name(&call.body)?;
    let group = shared
        .registry()
        .create_group(&call.caller, name, shared.now_secs())?;
    Ok(Json(group))
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    call: Private,
) -> Answer<Vec<StpGroupUser>> {
    let stp_id = stp_id(path)?;
    Ok(Json(shared.registry().list_users(&call.caller, stp_id)?))
}

async fn add_users(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    call: Private,
) -> Answer<Vec<StpGroupUser>> {
    let stp_id = stp_id(path)?;
    let ids = input::body_user_ids(&call.body)?;
    let members = shared.registry().add_users(
        &shared.world,
        &call.caller,
        stp_id,
        &ids,
        shared.now_secs(),
        shared.config.one_group_per_user,
    )?;
    Ok(Json(members))
}

async fn remove_users(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryPairs>, QueryRejection>,
    call: Private,
) -> Answer<Vec<StpGroupUser>> {
    let stp_id = stp_id(path)?;
    let Query(query) = query.map_err(|rejection| Refusal::from_query(&rejection))?;
    let ids = input::query_user_ids(&input::all_values(&query, "user_id"))?;
    let members = shared
        .registry()
        .remove_users(&shared.world, &call.caller, stp_id, &ids)?;
    Ok(Json(members))
}

async fn account_detail(call: Private) -> Answer<AccountDetail> {
    Ok(Json(accounts::account_detail(&call.caller)))
}

async fn list_sub_accounts(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<QueryPairs>, QueryRejection>,
    call: Private,
) -> Answer<Vec<SubAccount>> {
    let Query(query) = query.map_err(|rejection| Refusal::from_query(&rejection))?;
    let kinds = accounts::parse_kinds(input::first_value(&query, "type"))?;
    let subs = accounts::sub_accounts(&shared.world, &call.caller, kinds, shared.started_secs)?;
    Ok(Json(subs))
}

/// The `{stp_id}` of a path, percent-decoded by axum.
fn stp_id(path: Result<Path<String>, PathRejection>) -> Result<i64, Refusal> {
    let Path(text) = path.map_err(|rejection| Refusal::from_path(&rejection, "stp_id"))?;
    input::positive_id(&text, "stp_id")
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_table_has_exactly_one_handler_and_no_handler_is_extra() {
        for operation in OPERATIONS {
            let handlers = HANDLERS
                .iter()
                .filter(|(id, _)| *id == operation.id)
                .count();
            assert_eq!(handlers, 1, "{} has {handlers} handlers", operation.id);
            assert!(
                operation_route(operation).is_some(),
                "{} cannot be routed",
                operation.id
            );
        }
        for (id, _) in HANDLERS {
            assert!(
                OPERATIONS.iter().any(|operation| operation.id == *id),
                "handler for {id}, which the fragment does not have"
            );
        }
    }

    #[test]
    fn a_request_is_identified_by_the_tables_method_and_path() {
        for operation in OPERATIONS {
            let route = format!("/api/v4{}", operation.path);
            let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
            assert_eq!(
                endpoint_of(&method, Some(&route)),
                Endpoint::Operation(operation),
                "{}",
                operation.id
            );
        }
        let time = "/api/v4/spot/time";
        assert_eq!(
            endpoint_of(&Method::HEAD, Some(time)),
            Endpoint::Operation(&ops::GET_SYSTEM_TIME)
        );
        assert_eq!(
            endpoint_of(&Method::PUT, Some(time)),
            Endpoint::MethodNotAllowed
        );
        // The fragment's path without the emulator's prefix is not a route it serves.
        assert_eq!(
            endpoint_of(&Method::GET, Some("/spot/time")),
            Endpoint::MethodNotAllowed
        );
        assert_eq!(endpoint_of(&Method::GET, None), Endpoint::NotFound);
    }
}
