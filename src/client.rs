//! The typed client: builder, one method per operation, and the attempt loop.

use std::{
    future::{Future, IntoFuture},
    net::IpAddr,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use progenitor_client::ResponseValue;
use reqwest::header::HeaderValue;
use tracing::{Instrument, debug};

use crate::{
    Credentials,
    clock::{Clock, SystemClock, unix_millis},
    error::{self, ConfigError, Error, InvalidInput, Label},
    generated::{
        self,
        operations::{self as ops, OperationSpec},
        types::GateError,
    },
    models::{ServerTime, StpGroup, StpGroupUser},
    policy::{Idempotency, Pacer, RetryPolicy},
    response::{Response, ResponseMeta},
    transport::{self, CallContext, CallState, Shared},
};

/// Gate's live API.
pub const LIVE_BASE_URL: &str = "https://api.gateio.ws/api/v4";
/// Gate's testnet, as currently documented (older SDKs used
/// `https://fx-api-testnet.gateio.ws/api/v4`).
pub const TESTNET_BASE_URL: &str = "https://api-testnet.gateapi.io/api/v4";
/// Environment variable read by [`ClientBuilder::from_env`] for the base URL.
pub const BASE_URL_ENV: &str = "GATE_BASE_URL";

/// Gate's rate-limit windows are 10 s long: pacing never holds a request longer.
const PACING_MAX_WAIT: Duration = Duration::from_secs(10);

/// Default limit on a response body; STP answers are a few kilobytes at most.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use gate_stp::{Client, Credentials, RetryPolicy};
///
/// let client = Client::builder()
///     .credentials(Credentials::new("key", "secret")?)
///     .base_url("http://127.0.0.1:8080/api/v4") // e.g. the emulator; live by default
///     .timeout(Duration::from_secs(5))
///     .retry_policy(RetryPolicy::default().retry_idempotent_writes(true))
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080/api/v4");
/// # Ok::<(), gate_stp::Error>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    credentials: Option<Credentials>,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    http: Option<reqwest::ClientBuilder>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    resync_on_expired: bool,
    pacing: bool,
    allow_insecure_http: bool,
    max_response_bytes: usize,
    default_expiry: Option<Duration>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: LIVE_BASE_URL.to_owned(),
            credentials: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            user_agent: concat!("gate-stp/", env!("CARGO_PKG_VERSION")).to_owned(),
            http: None,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            resync_on_expired: true,
            pacing: false,
            allow_insecure_http: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            default_expiry: None,
        }
    }
}

impl ClientBuilder {
    /// A builder for the live API, without credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder configured from the environment: `GATE_BASE_URL` if set, and credentials
    /// from `GATE_API_KEY` / `GATE_API_SECRET` if both are set.
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = Self::new();
        if let Ok(url) = std::env::var(BASE_URL_ENV) {
            builder = builder.base_url(url);
        }
        let key_set = std::env::var_os(crate::credentials::KEY_ENV).is_some();
        let secret_set = std::env::var_os(crate::credentials::SECRET_ENV).is_some();
        if key_set || secret_set {
            builder = builder.credentials(Credentials::from_env()?);
        }
        Ok(builder)
    }

    /// The key and secret that sign private requests.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where requests go, including `/api/v4` (default [`LIVE_BASE_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Use Gate's testnet ([`TESTNET_BASE_URL`]).
    pub fn testnet(self) -> Self {
        self.base_url(TESTNET_BASE_URL)
    }

    /// Longest time for one attempt, from connecting to the last byte of the body
    /// (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Longest time to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `gate-stp/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Start from your own `reqwest::ClientBuilder` (proxies, TLS roots, pools...).
    ///
    /// The timeouts and user agent of this builder are applied on top, and redirects are
    /// always switched off: a redirect must never carry the key and signature to another
    /// host. Verbose connection logging is switched off too, as it would log them. A finished `reqwest::Client` is not accepted because its redirect policy
    /// cannot be checked.
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
        self
    }

    /// The clock that signing timestamps come from (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Which failures are retried (default [`RetryPolicy::default`]; [`RetryPolicy::none`]
    /// switches retries off).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// On a REQUEST_EXPIRED answer, sync the clock with `GET /spot/time` and send the
    /// request once more with a fresh timestamp (default on). Safe for every operation:
    /// Gate refuses an expired request before executing it.
    pub fn resync_on_expired(mut self, yes: bool) -> Self {
        self.resync_on_expired = yes;
        self
    }

    /// When a response says the rate-limit window is used up, hold the next request of
    /// that operation until the window resets, instead of sending it to be refused
    /// (default off). A request whose deadline (`expires_in`/`expires_at`) comes before
    /// the reset is not held but refused at once with
    /// [`Error::ExpiresBeforeRateLimitReset`].
    pub fn pace_rate_limits(mut self, yes: bool) -> Self {
        self.pacing = yes;
        self
    }

    /// Allow a plain-http base URL on a non-loopback host (default off: credentials and
    /// signatures would cross the network in clear).
    pub fn allow_insecure_http(mut self, yes: bool) -> Self {
        self.allow_insecure_http = yes;
        self
    }

    /// Largest response body read, in bytes (default 1 MiB).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit.max(1);
        self
    }

    /// Send every private request with `x-gate-exptime` set this far in the future
    /// (by Gate's clock), so that Gate drops it if it arrives later. Per-call settings
    /// take precedence.
    pub fn default_expiry(mut self, window: Duration) -> Self {
        self.default_expiry = Some(window);
        self
    }

    /// Builds the client, checking the base URL.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = check_base_url(&self.base_url, self.allow_insecure_http)?;
        let pacer = self.pacing.then(|| Pacer::new(PACING_MAX_WAIT));
        let http = self
            .http
            .unwrap_or_default()
            .redirect(reqwest::redirect::Policy::none())
            // Verbose connection logging would write KEY and SIGN to the log.
            .connection_verbose(false)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                base_url,
                http,
                shared: Arc::new(Shared {
                    credentials: self.credentials,
                    clock: self.clock,
                    offset_ms: Default::default(),
                    max_body_bytes: self.max_response_bytes,
                }),
                retry: self.retry,
                resync_on_expired: self.resync_on_expired,
                pacer,
                default_expiry: self.default_expiry,
            }),
        })
    }
}

/// Parses and checks the base URL: http(s) only, no query or fragment, and plain http only
/// for loopback hosts unless explicitly allowed. Returns it without a trailing slash.
fn check_base_url(url: &str, allow_insecure_http: bool) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("a base URL carries no user or password"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback && !allow_insecure_http {
                return Err(ConfigError::InsecureBaseUrl(url.to_owned()));
            }
        }
        _ => return Err(invalid("the scheme must be https (or http for loopback)")),
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A client for Gate's STP endpoints.
///
/// Cheap to clone (clones share the connection pool, the clock offset and the
/// rate-limit state), `Send + Sync`. Each operation method returns a request builder
/// that is sent by `.await` (or `.send().await`) and can first be given per-call
/// options: [`client_request_id`](ListGroups::client_request_id),
/// [`expires_in`](ListGroups::expires_in), [`retry_policy`](ListGroups::retry_policy).
///
/// ```no_run
/// # async fn run() -> Result<(), gate_stp::Error> {
/// use gate_stp::{Client, Credentials};
///
/// let client = Client::new(Credentials::from_env()?)?;
/// client.sync_clock().await?;
/// let group = client.create_group("market-makers").await?;
/// let id = group.id.unwrap_or_default();
/// client.add_users(id, &[10001, 10002]).await?;
/// let members = client.list_users(id).await?;
/// println!("{} members, {:?} requests left", members.len(), members.rate_limit());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    base_url: String,
    http: reqwest::Client,
    shared: Arc<Shared>,
    retry: RetryPolicy,
    resync_on_expired: bool,
    pacer: Option<Pacer>,
    default_expiry: Option<Duration>,
}

/// The result of [`Client::sync_clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// Gate's clock as reported.
    pub server_time: SystemTime,
    /// Our clock halfway through the request.
    pub local_time: SystemTime,
    /// Gate's clock minus ours, in milliseconds: positive when ours is behind.
    pub offset_ms: i64,
    /// How long the request took.
    pub round_trip: Duration,
}

impl Client {
    /// A client for the live API with these credentials and default settings.
    pub fn new(credentials: Credentials) -> Result<Self, Error> {
        ClientBuilder::new().credentials(credentials).build()
    }

    /// A builder, for anything beyond the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The credentials, if any (their `Debug` is redacted).
    pub fn credentials(&self) -> Option<&Credentials> {
        self.inner.shared.credentials.as_ref()
    }

    /// Gate's clock minus ours in milliseconds, as last measured (0 before any sync).
    pub fn clock_offset_ms(&self) -> i64 {
        self.inner.shared.offset_ms.load(Ordering::Relaxed)
    }

    /// Sets the clock offset by hand (e.g. one measured by another client).
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.inner
            .shared
            .offset_ms
            .store(offset_ms, Ordering::Relaxed);
    }

    /// The time signing uses now: our clock corrected by the offset.
    pub fn now(&self) -> SystemTime {
        let ms = unix_millis(self.inner.shared.clock.now()).saturating_add(self.clock_offset_ms());
        from_unix_millis(ms)
    }

    /// `GET /spot/time`: Gate's clock (public, unsigned).
    pub async fn server_time(&self) -> Result<Response<ServerTime>, Error> {
        self.execute(
            &ops::GET_SYSTEM_TIME,
            Idempotency::Read,
            &CallOptions::default(),
            |api, _| async move { api.get_system_time().await },
        )
        .await
    }

    /// Measures Gate's clock against ours with `GET /spot/time` and keeps the offset for
    /// signing. Offsets of either sign are kept.
    pub async fn sync_clock(&self) -> Result<ClockSync, Error> {
        let clock = &self.inner.shared.clock;
        let started = Instant::now();
        let before = clock.now();
        let response = self.server_time().await?;
        let round_trip = started.elapsed();
        // The midpoint by the signing clock itself, not by `Instant`: a clock that did not
        // move (a `ManualClock`) or jumped back must not be shifted by real elapsed time.
        let half = clock.now().duration_since(before).unwrap_or_default() / 2;
        let local_time = before.checked_add(half).unwrap_or(before);
        let server_ms = response.server_time.ok_or_else(|| {
            Error::UnexpectedResponse(Box::new(error::UnexpectedResponse {
                status: response.meta().status,
                content_type: None,
                reason: "server_time missing".to_owned(),
                snippet: String::new(),
                meta: Some(response.meta().clone()),
            }))
        })?;
        let offset_ms = server_ms.saturating_sub(unix_millis(local_time));
        self.set_clock_offset_ms(offset_ms);
        debug!(
            offset_ms,
            round_trip_ms = round_trip.as_millis() as u64,
            "clock synced with Gate"
        );
        Ok(ClockSync {
            server_time: from_unix_millis(server_ms),
            local_time,
            offset_ms,
            round_trip,
        })
    }

    /// `listSTPGroups`: the groups the caller created; narrow them with
    /// [`ListGroups::name`].
    pub fn list_groups(&self) -> ListGroups<'_> {
        ListGroups {
            client: self,
            name: None,
            options: CallOptions::default(),
        }
    }

    /// `createSTPGroup`: creates a group named `name` (main accounts only).
    ///
    /// Never retried automatically: Gate does not deduplicate names, so a retry after a
    /// lost answer could create a second group. On a transport error, list the groups
    /// before trying again.
    pub fn create_group(&self, name: impl Into<String>) -> CreateGroup<'_> {
        CreateGroup {
            client: self,
            name: name.into(),
            options: CallOptions::default(),
        }
    }

    /// `listSTPGroupsUsers`: the members of group `stp_id`.
    pub fn list_users(&self, stp_id: i64) -> ListUsers<'_> {
        ListUsers {
            client: self,
            stp_id,
            options: CallOptions::default(),
        }
    }

    /// `addSTPGroupUsers`: adds `user_ids` to group `stp_id`; returns the members after
    /// the change.
    pub fn add_users(&self, stp_id: i64, user_ids: &[i64]) -> AddUsers<'_> {
        AddUsers {
            client: self,
            stp_id,
            user_ids: user_ids.to_vec(),
            options: CallOptions::default(),
        }
    }

    /// `deleteSTPGroupUsers`: removes `user_ids` from group `stp_id` in one request
    /// (`user_id=1,2,3`); returns the members after the change.
    pub fn remove_users(&self, stp_id: i64, user_ids: &[i64]) -> RemoveUsers<'_> {
        RemoveUsers {
            client: self,
            stp_id,
            user_ids: user_ids.to_vec(),
            options: CallOptions::default(),
        }
    }

    /// Sends one operation with retries, clock resync and pacing; each attempt is built
    /// by `send` on a fresh generated client, so it is signed with a fresh timestamp.
    async fn execute<T, F, Fut>(
        &self,
        op: &'static OperationSpec,
        kind: Idempotency,
        options: &CallOptions,
        send: F,
    ) -> Result<Response<T>, Error>
    where
        F: Fn(generated::Client, Headers) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, progenitor_client::Error<GateError>>>,
    {
        let inner = &*self.inner;
        if op.signed && inner.shared.credentials.is_none() {
            return Err(Error::MissingCredentials { operation: op.id });
        }
        let mut headers = self.headers(op, options)?;
        let policy = options.retry.as_ref().unwrap_or(&inner.retry);
        let span = tracing::info_span!(
            "gate_stp.request",
            operation = op.id,
            method = op.method,
            path = op.path,
            key = self.credentials().map(Credentials::key_prefix),
            client_request_id = options.client_request_id.as_deref(),
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut resynced = false;
        let mut attempt = 1u32;
        async {
            // The last attempt's call state, kept to report its response on the span
            // once the call is over: an attempt that got no response must not leave an
            // earlier attempt's status there.
            let mut last_call: Option<Arc<CallState>> = None;
            let mut latency = None;
            let result = loop {
                span.record("attempt", attempt);
                if let Some(pacer) = &inner.pacer {
                    let hold = pacer.delay(op.id, self.now());
                    if !hold.is_zero() && headers.expired_after(self.now(), hold) {
                        // Sent after the hold, the request would only come back expired.
                        break Err(Error::ExpiresBeforeRateLimitReset { reset_in: hold });
                    }
                    if !hold.is_zero() {
                        debug!(hold_ms = hold.as_millis() as u64, "pacing: window used up, waiting for reset");
                        tokio::time::sleep(hold).await;
                    }
                }
                let call = Arc::new(CallState::default());
                let api = generated::Client::new_with_client(
                    &inner.base_url,
                    inner.http.clone(),
                    CallContext {
                        shared: Arc::clone(&inner.shared),
                        call: Arc::clone(&call),
                    },
                );
                let attempt_started = Instant::now();
                // Bounded by reqwest's per-request timeout, which covers the body too.
                let outcome = send(api, headers.clone()).await;
                latency = Some(attempt_started.elapsed());
                // The head the transport recorded, not the outcome, is the source of the
                // metadata: a redirect, an oversized body or a body cut off mid-way carry
                // no metadata, but their status, trace id and rate limit arrived all the
                // same.
                let head = call.head();
                if let (Some(pacer), Some(limit)) =
                    (&inner.pacer, head.and_then(|head| head.meta.rate_limit))
                {
                    pacer.record(op.id, limit);
                }
                let error = match outcome {
                    Ok(value) => {
                        let meta = match head {
                            Some(head) => head.meta.clone(),
                            None => ResponseMeta::from_parts(value.status(), value.headers()),
                        };
                        last_call = Some(call);
                        break Ok(Response::new(value.into_inner(), meta));
                    }
                    Err(e) => transport::from_generated(e, &call, inner.shared.max_body_bytes).await,
                };
                last_call = Some(call);
                if headers.expired_after(self.now(), Duration::ZERO) {
                    break Err(error);
                }
                // Only a signed request can be expired: resyncing after an unsigned one
                // (the clock sync itself) would recurse for as long as the server says so.
                if inner.resync_on_expired
                    && op.signed
                    && !resynced
                    && error.label() == Some(&Label::RequestExpired)
                {
                    resynced = true;
                    debug!(attempt, "REQUEST_EXPIRED: syncing the clock and sending again");
                    // Boxed: sync_clock sends a request through this same function.
                    if let Err(sync_error) = Box::pin(self.sync_clock()).await {
                        // The caller asked for this operation, not for /spot/time: its own
                        // (definitive) answer is what they get.
                        debug!(error = %sync_error, "clock sync failed");
                        break Err(error);
                    }
                    // A window given as a duration was measured on the stale clock: by
                    // Gate's clock that deadline may already be past.
                    headers = self.headers(op, options)?;
                    attempt += 1;
                    continue;
                }
                if !policy.allows(kind, &error) {
                    break Err(error);
                }
                let next = attempt + 1;
                let Some(wait) = policy.wait_before(next, started.elapsed(), &error, self.now())
                else {
                    break Err(error);
                };
                if headers.expired_after(self.now(), wait) {
                    // The retry would only come back expired: the real failure says more.
                    break Err(error);
                }
                debug!(attempt, next, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
                tokio::time::sleep(wait).await;
                attempt = next;
            };
            if let Some(meta) = last_call.as_deref().and_then(CallState::head).map(|head| &head.meta) {
                span.record("status", meta.status.as_u16());
                if let Some(trace_id) = &meta.trace_id {
                    span.record("trace_id", trace_id.as_str());
                }
            }
            if let Some(latency) = latency {
                span.record("latency_ms", latency.as_millis() as u64);
            }
            result
        }
        .instrument(span.clone())
        .await
    }

    /// Per-call headers, checked once: the client request id and the expiry deadline.
    fn headers(&self, op: &OperationSpec, options: &CallOptions) -> Result<Headers, Error> {
        if let Some(id) = &options.client_request_id
            && HeaderValue::from_str(id).is_err()
        {
            return Err(InvalidInput::InvalidHeaderValue("client request id").into());
        }
        let deadline = match (
            options.expires_at,
            options.expires_in.or(self.inner.default_expiry),
        ) {
            _ if !op.signed => None,
            (Some(at), _) => Some(unix_millis(at)),
            (None, Some(window)) => {
                let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                Some(unix_millis(self.now()).saturating_add(window_ms))
            }
            (None, None) => None,
        };
        Ok(Headers {
            client_request_id: options.client_request_id.clone(),
            exptime_ms: deadline,
        })
    }
}

fn from_unix_millis(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
    .unwrap_or(UNIX_EPOCH)
}

/// Per-call options shared by every request builder.
#[derive(Debug, Clone, Default)]
struct CallOptions {
    client_request_id: Option<String>,
    expires_at: Option<SystemTime>,
    expires_in: Option<Duration>,
    retry: Option<RetryPolicy>,
}

/// Per-call header values handed to the generated client on every attempt.
#[derive(Debug, Clone)]
struct Headers {
    client_request_id: Option<String>,
    exptime_ms: Option<i64>,
}

impl Headers {
    fn request_id(&self) -> Option<&str> {
        self.client_request_id.as_deref()
    }

    /// Whether a request sent `after` from `now` would be past the call's deadline.
    fn expired_after(&self, now: SystemTime, after: Duration) -> bool {
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.exptime_ms
            .is_some_and(|deadline| unix_millis(now).saturating_add(after_ms) >= deadline)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Setters shared by every request builder, and sending on `.await`.
macro_rules! request_builder {
    ($name:ident, $output:ty) => {
        impl<'c> $name<'c> {
            /// Sends `X-Client-Request-Id`; Gate echoes it, and it is returned in
            /// [`ResponseMeta::client_request_id`].
            pub fn client_request_id(mut self, id: impl Into<String>) -> Self {
                self.options.client_request_id = Some(id.into());
                self
            }

            /// Sends `x-gate-exptime` = now (by Gate's clock, as far as it is known) plus
            /// `window`: Gate drops the request if it arrives later. Retries stop at the
            /// deadline.
            pub fn expires_in(mut self, window: Duration) -> Self {
                self.options.expires_in = Some(window);
                self
            }

            /// Sends `x-gate-exptime` = `deadline`.
            pub fn expires_at(mut self, deadline: SystemTime) -> Self {
                self.options.expires_at = Some(deadline);
                self
            }

            /// Overrides the client's retry policy for this call.
            pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
                self.options.retry = Some(policy);
                self
            }
        }

        impl<'c> IntoFuture for $name<'c> {
            type Output = Result<Response<$output>, Error>;
            type IntoFuture = BoxFuture<'c, Self::Output>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.send())
            }
        }
    };
}

/// Request builder of [`Client::list_groups`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListGroups<'c> {
    client: &'c Client,
    name: Option<String>,
    options: CallOptions,
}
request_builder!(ListGroups, Vec<StpGroup>);

impl ListGroups<'_> {
    /// Only groups whose name contains `name` (Gate's fuzzy search).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroup>>, Error> {
        let name = self.name.as_deref();
        self.client
            .execute(
                &ops::LIST_STP_GROUPS,
                Idempotency::Read,
                &self.options,
                |api, h| async move {
                    api.list_stp_groups(name, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::create_group`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateGroup<'c> {
    client: &'c Client,
    name: String,
    options: CallOptions,
}
request_builder!(CreateGroup, StpGroup);

impl CreateGroup<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<StpGroup>, Error> {
        if self.name.trim().is_empty() {
            return Err(InvalidInput::EmptyGroupName.into());
        }
        // Built through serde rather than a struct literal, so that an optional field added
        // to StpGroup in the fragment does not break this code: only `name` is sent.
        let body: StpGroup = serde_json::from_value(serde_json::json!({ "name": self.name }))
            .map_err(|e| InvalidInput::Request(e.to_string()))?;
        let body = &body;
        self.client
            .execute(
                &ops::CREATE_STP_GROUP,
                Idempotency::Unsafe,
                &self.options,
                |api, h| async move {
                    api.create_stp_group(h.request_id(), h.exptime_ms, body)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::list_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    options: CallOptions,
}
request_builder!(ListUsers, Vec<StpGroupUser>);

impl ListUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        self.client
            .execute(
                &ops::LIST_STP_GROUPS_USERS,
                Idempotency::Read,
                &self.options,
                |api, h| async move {
                    api.list_stp_groups_users(stp_id, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::add_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct AddUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    user_ids: Vec<i64>,
    options: CallOptions,
}
request_builder!(AddUsers, Vec<StpGroupUser>);

impl AddUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        check_user_ids(&self.user_ids)?;
        let user_ids = &self.user_ids;
        self.client
            .execute(
                &ops::ADD_STP_GROUP_USERS,
                Idempotency::IdempotentWrite,
                &self.options,
                |api, h| async move {
                    api.add_stp_group_users(stp_id, h.request_id(), h.exptime_ms, user_ids)
                        .await
                },
            )
            .await
    }
}

/// Request builder of [`Client::remove_users`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct RemoveUsers<'c> {
    client: &'c Client,
    stp_id: i64,
    user_ids: Vec<i64>,
    options: CallOptions,
}
request_builder!(RemoveUsers, Vec<StpGroupUser>);

impl RemoveUsers<'_> {
    /// Sends the request.
    pub async fn send(self) -> Result<Response<Vec<StpGroupUser>>, Error> {
        let stp_id = positive("stp_id", self.stp_id)?;
        check_user_ids(&self.user_ids)?;
        let joined = join_ids(&self.user_ids);
        let joined = joined.as_str();
        self.client
            .execute(
                &ops::DELETE_STP_GROUP_USERS,
                Idempotency::IdempotentWrite,
                &self.options,
                |api, h| async move {
                    api.delete_stp_group_users(stp_id, joined, h.request_id(), h.exptime_ms)
                        .await
                },
            )
            .await
    }
}

fn positive(what: &'static str, value: i64) -> Result<i64, InvalidInput> {
    if value > 0 {
        Ok(value)
    } else {
        Err(InvalidInput::NonPositiveId { what, value })
    }
}

/// Non-empty, all positive, no duplicates.
fn check_user_ids(ids: &[i64]) -> Result<(), InvalidInput> {
    if ids.is_empty() {
        return Err(InvalidInput::NoUserIds);
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for &id in ids {
        positive("user_id", id)?;
        if !seen.insert(id) {
            return Err(InvalidInput::DuplicateUserId(id));
        }
    }
    Ok(())
}

/// `1,2,3`: the form Gate's DELETE takes in its `user_id` query parameter.
fn join_ids(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(check_base_url("https://api.gateio.ws/api/v4", false).is_ok());
        assert_eq!(
            check_base_url("http://127.0.0.1:9/api/v4/", false).unwrap(),
            "http://127.0.0.1:9/api/v4"
        );
        assert!(check_base_url("http://[::1]:9/api/v4", false).is_ok());
        assert!(check_base_url("http://localhost:9/api/v4", false).is_ok());
        assert!(matches!(
            check_base_url("http://example.com/api/v4", false),
            Err(ConfigError::InsecureBaseUrl(_))
        ));
        assert!(check_base_url("http://example.com/api/v4", true).is_ok());
        assert!(check_base_url("ftp://example.com", true).is_err());
        assert!(check_base_url("not a url", false).is_err());
        assert!(check_base_url("https://h/api/v4?x=1", false).is_err());
        assert!(check_base_url("https://user:pw@h/api/v4", false).is_err());
    }

    #[test]
    fn user_id_checks() {
        assert_eq!(check_user_ids(&[]), Err(InvalidInput::NoUserIds));
        assert_eq!(
            check_user_ids(&[1, 0]),
            Err(InvalidInput::NonPositiveId {
                what: "user_id",
                value: 0
            })
        );
        assert_eq!(
            check_user_ids(&[1, 2, 1]),
            Err(InvalidInput::DuplicateUserId(1))
        );
        assert_eq!(check_user_ids(&[3, 1, 2]), Ok(()));
        assert_eq!(join_ids(&[10001, 2, 3]), "10001,2,3");
    }

    #[test]
    fn the_operations_used_are_listed_and_signed_as_the_fragment_says() {
        for op in [
            &ops::GET_SYSTEM_TIME,
            &ops::LIST_STP_GROUPS,
            &ops::CREATE_STP_GROUP,
            &ops::LIST_STP_GROUPS_USERS,
            &ops::ADD_STP_GROUP_USERS,
            &ops::DELETE_STP_GROUP_USERS,
        ] {
            assert!(ops::OPERATIONS.contains(op), "{op:?}");
        }
        // Checked by the compiler: the clock sync must work without a valid signature.
        const { assert!(!ops::GET_SYSTEM_TIME.signed) };
        const { assert!(ops::DELETE_STP_GROUP_USERS.signed) };
    }
}
