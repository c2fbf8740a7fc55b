//! The HTTP side of the emulator: routing, authentication, rules, state and headers.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use super::{
    verify::{Received, query_param, signature_matches},
    world::{Account, World},
};
use crate::{
    clock::{Clock, SystemClock, unix_millis},
    models::{StpGroup, StpGroupUser},
};

/// Gate's window for the Timestamp header.
const EXPIRY_WINDOW_MS: i64 = 60_000;

/// How the emulator behaves beyond Gate's fixed rules.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    clock: Arc<dyn Clock>,
    clock_offset_ms: i64,
    rate_limit: Option<(u32, Duration)>,
    max_body_bytes: usize,
}

impl Default for EmulatorConfig {
    /// System clock, no offset, Gate's 150 requests per 10 s, 64 KiB bodies.
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            clock_offset_ms: 0,
            rate_limit: Some((150, Duration::from_secs(10))),
            max_body_bytes: 64 * 1024,
        }
    }
}

impl EmulatorConfig {
    /// The clock the emulator reads (before the offset).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Moves the emulator's clock away from its clock source, to reproduce skew.
    pub fn clock_offset_ms(mut self, offset_ms: i64) -> Self {
        self.clock_offset_ms = offset_ms;
        self
    }

    /// `limit` requests per `window` per endpoint and account (at least one of each).
    pub fn rate_limit(mut self, limit: u32, window: Duration) -> Self {
        self.rate_limit = Some((limit.max(1), window.max(Duration::from_secs(1))));
        self
    }

    /// No rate limit (for load tests); the rate-limit headers are then omitted.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = None;
        self
    }

    /// Largest request body accepted.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

struct Group {
    group: StpGroup,
    members: BTreeMap<i64, i64>,
}

#[derive(Default)]
struct Store {
    groups: BTreeMap<i64, Group>,
    next_id: i64,
    windows: HashMap<(&'static str, i64), (i64, u32)>,
}

struct App {
    world: World,
    config: EmulatorConfig,
    store: Mutex<Store>,
}

impl App {
    fn now_ms(&self) -> i64 {
        unix_millis(self.config.clock.now()).saturating_add(self.config.clock_offset_ms)
    }

    /// The whole state; a poisoned lock is recovered (every update is applied whole).
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The emulator's router, for embedding in your own axum server.
pub fn router(world: World, config: EmulatorConfig) -> Router {
    let app = Arc::new(App {
        world,
        config,
        store: Mutex::new(Store {
            next_id: 100_001,
            ..Store::default()
        }),
    });
    router_for(app)
}

fn router_for(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Serves `world` on a free loopback port.
    pub async fn start(world: World, config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), world, config).await
    }

    /// Serves `world` on `addr`.
    pub async fn bind(
        addr: SocketAddr,
        world: World,
        config: EmulatorConfig,
    ) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            world,
            config,
            store: Mutex::new(Store {
                next_id: 100_001,
                ..Store::default()
            }),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let router = router_for(Arc::clone(&app));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(RunningEmulator {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running emulator; stops when shut down or dropped.
pub struct RunningEmulator {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RunningEmulator {
    /// `http://ADDR/api/v4`, the base URL for a client.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v4", self.addr)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every group, by id.
    pub fn groups(&self) -> Vec<StpGroup> {
        self.app
            .store()
            .groups
            .values()
            .map(|g| g.group.clone())
            .collect()
    }

    /// Member user ids of a group, ascending; `None` if there is no such group.
    pub fn members(&self, stp_id: i64) -> Option<Vec<i64>> {
        self.app
            .store()
            .groups
            .get(&stp_id)
            .map(|g| g.members.keys().copied().collect())
    }

    /// Stops accepting connections, lets requests in flight finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A Gate-shaped error answer.
struct GateError {
    status: StatusCode,
    label: &'static str,
    message: String,
}

fn refuse(status: StatusCode, label: &'static str, message: impl Into<String>) -> GateError {
    GateError {
        status,
        label,
        message: message.into(),
    }
}

fn bad_param(message: impl Into<String>) -> GateError {
    refuse(StatusCode::BAD_REQUEST, "INVALID_PARAM_VALUE", message)
}

type Answer = Result<Value, GateError>;

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let in_time_us = app.now_ms().saturating_mul(1000);
    let (parts, body) = request.into_parts();
    let echo_id = parts.headers.get("x-client-request-id").cloned();
    let mut rate_headers = None;
    let answer = serve(&app, &parts, body, &mut rate_headers).await;
    let mut response = match answer {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(error) => (
            error.status,
            axum::Json(json!({"label": error.label, "message": error.message})),
        )
            .into_response(),
    };
    let headers = response.headers_mut();
    if let Some((limit, remaining, reset)) = rate_headers {
        headers.insert("x-gate-ratelimit-limit", HeaderValue::from(limit));
        headers.insert(
            "x-gate-ratelimit-requests-remain",
            HeaderValue::from(remaining),
        );
        headers.insert("x-gate-ratelimit-reset-timestamp", HeaderValue::from(reset));
    }
    if let Some(id) = echo_id {
        headers.insert("x-client-request-id", id);
    }
    headers.insert("x-in-time", HeaderValue::from(in_time_us));
    headers.insert(
        "x-out-time",
        HeaderValue::from(app.now_ms().saturating_mul(1000)),
    );
    let trace: u64 = rand::random();
    if let Ok(value) = HeaderValue::from_str(&format!("{trace:016x}")) {
        headers.insert("x-gate-trace-id", value);
    }
    response
}

enum Route {
    Time,
    Groups,
    Users(String),
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/api/v4")?;
    match rest {
        "/spot/time" => Some(Route::Time),
        "/account/stp_groups" => Some(Route::Groups),
        _ => {
            let id = rest
                .strip_prefix("/account/stp_groups/")?
                .strip_suffix("/users")?;
            (!id.is_empty() && !id.contains('/')).then(|| Route::Users(id.to_owned()))
        }
    }
}

async fn serve(
    app: &App,
    parts: &axum::http::request::Parts,
    body: Body,
    rate_headers: &mut Option<(u32, u32, i64)>,
) -> Answer {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    let method = &parts.method;
    let Some(route) = route(path) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no such path {path}"),
        ));
    };
    let endpoint: &'static str = match (&route, method) {
        (Route::Time, &Method::GET) => "GET /spot/time",
        (Route::Groups, &Method::GET) => "GET /account/stp_groups",
        (Route::Groups, &Method::POST) => "POST /account/stp_groups",
        (Route::Users(_), &Method::GET) => "GET /account/stp_groups/{stp_id}/users",
        (Route::Users(_), &Method::POST) => "POST /account/stp_groups/{stp_id}/users",
        (Route::Users(_), &Method::DELETE) => "DELETE /account/stp_groups/{stp_id}/users",
        _ => {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("{method} is not allowed on {path}"),
            ));
        }
    };
    let body = to_bytes(body, app.config.max_body_bytes)
        .await
        .map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_BODY",
                format!(
                    "request body larger than {} bytes",
                    app.config.max_body_bytes
                ),
            )
        })?;
    if let Route::Time = route {
        count(app, endpoint, 0, rate_headers)?;
        return Ok(json!({"server_time": app.now_ms()}));
    }
    let caller = authenticate(app, parts, query, &body)?;
    count(app, endpoint, caller.user_id(), rate_headers)?;
    if let Some(exptime) = parts.headers.get("x-gate-exptime") {
        let deadline: i64 = exptime
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| bad_param("x-gate-exptime must be milliseconds since the epoch"))?;
        if app.now_ms() > deadline {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "REQUEST_EXPIRED",
                "request arrived after its x-gate-exptime",
            ));
        }
    }
    match (route, method) {
        (Route::Groups, &Method::GET) => list_groups(app, caller, query),
        (Route::Groups, _) => create_group(app, caller, &body),
        (Route::Users(id), method) => {
            let stp_id = positive_id(&id, "stp_id")?;
            match *method {
                Method::GET => change_members(app, caller, stp_id, &[], Change::None),
                Method::POST => {
                    let ids = body_ids(&body)?;
                    change_members(app, caller, stp_id, &ids, Change::Add)
                }
                _ => {
                    let raw = query_param(query, "user_id").ok_or_else(|| {
                        refuse(
                            StatusCode::BAD_REQUEST,
                            "MISSING_REQUIRED_PARAM",
                            "user_id is required",
                        )
                    })?;
                    let ids = raw
                        .split(',')
                        .map(|id| positive_id(id.trim(), "user_id"))
                        .collect::<Result<Vec<_>, _>>()?;
                    change_members(app, caller, stp_id, &ids, Change::Remove)
                }
            }
        }
        (Route::Time, _) => Err(refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "unreachable")),
    }
}

fn authenticate<'a>(
    app: &'a App,
    parts: &axum::http::request::Parts,
    query: &str,
    body: &[u8],
) -> Result<&'a Account, GateError> {
    let header = |name: &'static str| -> Result<&str, GateError> {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "MISSING_REQUIRED_HEADER",
                    format!("Missing required header: {name}"),
                )
            })
    };
    let (key, timestamp, sign) = (header("KEY")?, header("Timestamp")?, header("SIGN")?);
    let account = app.world.account_by_key(key).ok_or_else(|| {
        refuse(
            StatusCode::UNAUTHORIZED,
            "INVALID_KEY",
            "Invalid key provided",
        )
    })?;
    let seconds: f64 = timestamp
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite())
        .ok_or_else(|| bad_param("Timestamp must be Unix seconds"))?;
    let gap_ms = (seconds * 1000.0 - app.now_ms() as f64).abs();
    if gap_ms > EXPIRY_WINDOW_MS as f64 {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "REQUEST_EXPIRED",
            "gap between request Timestamp and server time exceeds 60",
        ));
    }
    let received = Received {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: query,
        body,
        timestamp,
        sign,
    };
    let secret = account.secret_bytes().unwrap_or_default();
    if !signature_matches(secret, &received) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "INVALID_SIGNATURE",
            "Signature mismatch",
        ));
    }
    Ok(account)
}

/// Counts a request in its fixed window; refuses past the limit.
fn count(
    app: &App,
    endpoint: &'static str,
    user_id: i64,
    rate_headers: &mut Option<(u32, u32, i64)>,
) -> Result<(), GateError> {
    let Some((limit, window)) = app.config.rate_limit else {
        return Ok(());
    };
    let window_s = i64::try_from(window.as_secs()).unwrap_or(i64::MAX).max(1);
    let now_s = app.now_ms().div_euclid(1000);
    let start = now_s - now_s.rem_euclid(window_s);
    let mut store = app.store();
    let slot = store
        .windows
        .entry((endpoint, user_id))
        .or_insert((start, 0));
    if slot.0 != start {
        *slot = (start, 0);
    }
    slot.1 = slot.1.saturating_add(1);
    let used = slot.1;
    *rate_headers = Some((limit, limit.saturating_sub(used), start + window_s));
    if used > limit {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Request Rate limit Exceeded",
        ));
    }
    Ok(())
}

fn positive_id(text: &str, what: &str) -> Result<i64, GateError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| bad_param(format!("{what} must be a positive integer, got {text:?}")))
}

fn parse_json(body: &[u8]) -> Result<Value, GateError> {
    serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            format!("malformed JSON: {e}"),
        )
    })
}

fn body_ids(body: &[u8]) -> Result<Vec<i64>, GateError> {
    let Value::Array(items) = parse_json(body)? else {
        return Err(bad_param("body must be an array of user ids"));
    };
    if items.is_empty() {
        return Err(bad_param("body must name at least one user id"));
    }
    items
        .iter()
        .map(|item| {
            item.as_i64()
                .filter(|id| *id > 0)
                .ok_or_else(|| bad_param(format!("user ids must be positive integers, got {item}")))
        })
        .collect()
}

fn list_groups(app: &App, caller: &Account, query: &str) -> Answer {
    let needle = query_param(query, "name").map(|n| n.to_lowercase());
    let store = app.store();
    let groups: Vec<&StpGroup> = store
        .groups
        .values()
        .map(|g| &g.group)
        .filter(|g| g.creator_id == Some(caller.user_id()))
        .filter(|g| {
            needle
                .as_ref()
                .is_none_or(|n| g.name.to_lowercase().contains(n))
        })
        .collect();
    Ok(json!(groups))
}

fn create_group(app: &App, caller: &Account, body: &[u8]) -> Answer {
    if !caller.is_main() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "only a main account may create an STP group",
        ));
    }
    let value = parse_json(body)?;
    let name = match value.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(Value::String(_)) => return Err(bad_param("name must not be empty")),
        _ => return Err(bad_param("name is required and must be a string")),
    };
    let create_time = app.now_ms().div_euclid(1000);
    let mut store = app.store();
    let id = store.next_id;
    store.next_id += 1;
    let group = StpGroup {
        id: Some(id),
        name,
        creator_id: Some(caller.user_id()),
        create_time: Some(create_time),
    };
    store.groups.insert(
        id,
        Group {
            group: group.clone(),
            members: BTreeMap::new(),
        },
    );
    Ok(json!(group))
}

#[derive(Clone, Copy, PartialEq)]
enum Change {
    None,
    Add,
    Remove,
}

/// Lists, adds or removes members, all or nothing, under one lock.
fn change_members(app: &App, caller: &Account, stp_id: i64, ids: &[i64], change: Change) -> Answer {
    let now_s = app.now_ms().div_euclid(1000);
    let mut store = app.store();
    let group = store.groups.get_mut(&stp_id).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("STP group {stp_id} not found"),
        )
    })?;
    if group.group.creator_id != Some(caller.user_id()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("STP group {stp_id} belongs to another account"),
        ));
    }
    for &id in ids {
        let account = app
            .world
            .account(id)
            .ok_or_else(|| bad_param(format!("user {id} does not exist")))?;
        if account.main_id() != caller.user_id() {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("user {id} belongs to another main account"),
            ));
        }
    }
    for &id in ids {
        match change {
            Change::Add => {
                group.members.entry(id).or_insert(now_s);
            }
            Change::Remove => {
                group.members.remove(&id);
            }
            Change::None => {}
        }
    }
    let members: Vec<StpGroupUser> = group
        .members
        .iter()
        .map(|(&user_id, &joined)| StpGroupUser {
            user_id: Some(user_id),
            stp_id: Some(stp_id),
            create_time: Some(joined),
        })
        .collect();
    Ok(json!(members))
}
