//! The HTTP side of the emulator: routes, handlers on axum's extractors, and the
//! middleware that adds Gate's headers, logs each request and fires injected faults.
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
    routing::get,
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
use crate::models::{AccountDetail, ServerTime, StpGroup, StpGroupUser, SubAccount};

const RATE_LIMIT_REMAIN: &str = "x-gate-ratelimit-requests-remain";
const RATE_LIMIT_LIMIT: &str = "x-gate-ratelimit-limit";
const RATE_LIMIT_RESET: &str = "x-gate-ratelimit-reset-timestamp";
const IN_TIME: &str = "x-in-time";
const OUT_TIME: &str = "x-out-time";
const TRACE_ID: &str = "x-gate-trace-id";
const CLIENT_REQUEST_ID: &str = "x-client-request-id";

const SERVER_TIME: &str = "/api/v4/spot/time";
const STP_GROUPS: &str = "/api/v4/account/stp_groups";
const STP_GROUP_USERS: &str = "/api/v4/account/stp_groups/{stp_id}/users";
const ACCOUNT_DETAIL: &str = "/api/v4/account/detail";
const SUB_ACCOUNTS: &str = "/api/v4/sub_accounts";

/// The emulator's routes over `shared`.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.max_body_bytes;
    Router::new()
        .route(SERVER_TIME, get(server_time))
        .route(STP_GROUPS, get(list_groups).post(create_group))
        .route(
            STP_GROUP_USERS,
            get(list_users).post(add_users).delete(remove_users),
        )
        .route(ACCOUNT_DETAIL, get(account_detail))
        .route(SUB_ACCOUNTS, get(list_sub_accounts))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            exchange,
        ))
        .with_state(shared)
}

/// The endpoint of a request, from its method and the route it matched.
fn endpoint_of(method: &Method, route: Option<&str>) -> Endpoint {
    // axum answers HEAD with the GET handler.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    match (route, method) {
        (None, _) => Endpoint::NotFound,
        (Some(SERVER_TIME), "GET") => Endpoint::ServerTime,
        (Some(STP_GROUPS), "GET") => Endpoint::ListGroups,
        (Some(STP_GROUPS), "POST") => Endpoint::CreateGroup,
        (Some(STP_GROUP_USERS), "GET") => Endpoint::ListUsers,
        (Some(STP_GROUP_USERS), "POST") => Endpoint::AddUsers,
        (Some(STP_GROUP_USERS), "DELETE") => Endpoint::RemoveUsers,
        (Some(ACCOUNT_DETAIL), "GET") => Endpoint::AccountDetail,
        (Some(SUB_ACCOUNTS), "GET") => Endpoint::ListSubAccounts,
        (Some(_), _) => Endpoint::MethodNotAllowed,
    }
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
        tracing::debug!(target: "gate_stp::mock", endpoint = endpoint.name(), ?fault, "injected fault");
    }
    let mut response = match fault {
        None => next.run(request).await,
        Some(FaultKind::Drop) => return faults::lost_answer(),
        Some(FaultKind::ExecuteThenDrop) => {
            // Executed to the end (the state changes), then the answer is thrown away.
            drop(next.run(request).await);
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
        endpoint = endpoint.name(),
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
