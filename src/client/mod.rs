//! The typed client: [`Client`] and the driver of its attempt loop.
//!
//! The builder is in `builder.rs`, one request builder per operation in `requests.rs`,
//! and the loop's decisions in [`crate::policy`] (`Attempts`); `execute` here only
//! carries them out.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use progenitor_client::ResponseValue;
use reqwest::header::HeaderValue;
// tokio's clock, not std's: the same monotonic clock in normal running, and the one a
// test can pause, so that max_elapsed, attempt latency and a sync's round trip follow it.
use tokio::time::Instant;
use tracing::{Instrument, debug};

use crate::{
    call::{CallContext, CallState, Shared},
    clock::unix_millis,
    credentials::Credentials,
    error::{self, Error, InvalidInput},
    generated::{
        self,
        operations::{self as ops, OperationSpec},
        types::GateError,
    },
    models::ServerTime,
    policy::{
        FullJitter, Idempotency, RetryPolicy,
        attempts::{Attempts, Decision, Moment, WaitReason},
        pacer::{Pacer, Permit},
    },
    response::{Response, ResponseMeta},
    transport,
};

mod builder;
mod requests;

pub use builder::{
    BASE_URL_ENV, ClientBuilder, DEFAULT_MAX_RESPONSE_BYTES, LIVE_BASE_URL, TESTNET_BASE_URL,
};
pub use requests::{
    AddUsers, CreateGroup, GetAccountDetail, ListGroups, ListSubAccounts, ListUsers, RemoveUsers,
    SubAccountTypeFilter,
};

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
        from_unix_millis(self.inner.shared.now_ms())
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

    /// Sends one operation: the [`Attempts`] policy decides (send, wait, resync, give
    /// up) and this carries it out. Each attempt is built by `send` on a fresh generated
    /// client, so it is signed with a fresh timestamp.
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
        let resync_allowed = inner.resync_on_expired && op.signed;
        let mut attempts =
            Attempts::new(policy, kind, resync_allowed, FullJitter::from_thread_rng());
        let span = request_span(op, self.credentials(), options);
        let started = Instant::now();
        let mut report = AttemptReport::default();
        async {
            // The pacer's permit for the next attempt, taken when pacing lets it go at once.
            let mut permit = None;
            let mut decision = attempts.start(self.moment(op, started, &headers, &mut permit));
            let result = loop {
                decision = match decision {
                    Decision::Send => {
                        report.attempt = attempts.attempt();
                        let sent = self.attempt(&headers, &send, &mut report, permit.take());
                        match sent.await {
                            Ok(response) => break Ok(response),
                            Err(error) => {
                                let attempt = attempts.attempt();
                                debug!(attempt, error = %error, "attempt failed");
                                let at = self.moment(op, started, &headers, &mut permit);
                                attempts.failed(error, at)
                            }
                        }
                    }
                    Decision::Wait(wait, reason) => {
                        // Nothing is sent while waiting: the slot goes back to the window.
                        permit = None;
                        let wait_ms = wait.as_millis() as u64;
                        match reason {
                            WaitReason::Pacing => {
                                debug!(wait_ms, "pacing: window used up, waiting for reset")
                            }
                            WaitReason::Backoff => debug!(wait_ms, "retrying after a backoff"),
                        }
                        tokio::time::sleep(wait).await;
                        attempts.waited(self.moment(op, started, &headers, &mut permit))
                    }
                    Decision::ResyncThenSend => {
                        permit = None;
                        debug!("REQUEST_EXPIRED: syncing the clock and sending again");
                        // Boxed: sync_clock sends a request through this same function.
                        let outcome = Box::pin(self.sync_clock()).await.map(drop);
                        match &outcome {
                            // A window given as a duration was measured on the stale
                            // clock: by Gate's clock that deadline may already be past.
                            Ok(()) => headers = self.headers(op, options)?,
                            Err(sync_error) => debug!(error = %sync_error, "clock sync failed"),
                        }
                        let at = self.moment(op, started, &headers, &mut permit);
                        attempts.resynced(outcome, at)
                    }
                    Decision::GiveUp(error) => break Err(error),
                };
            };
            report.record_on(&span);
            result
        }
        .instrument(span.clone())
        .await
    }

    /// The facts the attempt policy decides on, read now. When pacing lets a request go
    /// at once, `permit` receives the slot it was counted in (checked and counted in one
    /// step, so that concurrent calls cannot both take a window's last request).
    fn moment<'s>(
        &'s self,
        op: &OperationSpec,
        started: Instant,
        headers: &Headers,
        permit: &mut Option<Permit<'s>>,
    ) -> Moment {
        let pacing_hold = match &self.inner.pacer {
            Some(pacer) => match pacer.admit(op.id) {
                Ok(granted) => {
                    *permit = Some(granted);
                    Duration::ZERO
                }
                Err(hold) => {
                    *permit = None;
                    hold
                }
            },
            None => Duration::ZERO,
        };
        Moment {
            now: self.now(),
            elapsed: started.elapsed(),
            pacing_hold,
            deadline_ms: headers.exptime_ms,
        }
    }

    /// One attempt: a fresh generated client (so a fresh signature), the response's
    /// rate limit given to the pacer, the outcome mapped onto [`Error`].
    async fn attempt<T, F, Fut>(
        &self,
        headers: &Headers,
        send: &F,
        report: &mut AttemptReport,
        permit: Option<Permit<'_>>,
    ) -> Result<Response<T>, Error>
    where
        F: Fn(generated::Client, Headers) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, progenitor_client::Error<GateError>>>,
    {
        let inner = &*self.inner;
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
        report.latency = Some(attempt_started.elapsed());
        // The head the transport recorded, not the outcome, is the source of the
        // metadata: a redirect, an oversized body or a body cut off mid-way carry no
        // metadata, but their status, trace id and rate limit arrived all the same.
        let head = call.head();
        if let (Some(permit), Some(head)) = (permit, head) {
            permit.answered(head.meta.rate_limit, self.now());
        }
        let result = match outcome {
            Ok(value) => {
                let meta = match head {
                    Some(head) => head.meta.clone(),
                    None => ResponseMeta::from_parts(value.status(), value.headers()),
                };
                Ok(Response::new(value.into_inner(), meta))
            }
            Err(e) => {
                Err(
                    transport::map_error::from_generated(e, &call, inner.shared.max_body_bytes)
                        .await,
                )
            }
        };
        report.last_call = Some(call);
        result
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
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The `gate_stp.request` span of one call; `attempt` (the last one's number), `status`,
/// `latency_ms` and `trace_id` are filled in once, when the call is over.
fn request_span(
    op: &OperationSpec,
    credentials: Option<&Credentials>,
    options: &CallOptions,
) -> tracing::Span {
    tracing::info_span!(
        "gate_stp.request",
        operation = op.id,
        method = op.method,
        path = op.path,
        key = credentials.map(Credentials::key_prefix),
        client_request_id = options.client_request_id.as_deref(),
        attempt = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    )
}

/// What the last attempt left for the span.
#[derive(Debug, Default)]
struct AttemptReport {
    /// The last attempt's call state, kept to report its response once the call is
    /// over: an attempt that got no response must not leave an earlier attempt's status
    /// on the span.
    last_call: Option<Arc<CallState>>,
    latency: Option<Duration>,
    /// The number of the last attempt sent. Recorded on the span once, when the call is
    /// over: a field recorded again is appended, not replaced, by `tracing_subscriber::fmt`
    /// (a retried call would read `attempt=1 attempt=2`).
    attempt: u32,
}

impl AttemptReport {
    fn record_on(&self, span: &tracing::Span) {
        if self.attempt > 0 {
            span.record("attempt", self.attempt);
        }
        let head = self.last_call.as_deref().and_then(CallState::head);
        if let Some(meta) = head.map(|head| &head.meta) {
            span.record("status", meta.status.as_u16());
            if let Some(trace_id) = &meta.trace_id {
                span.record("trace_id", trace_id.as_str());
            }
        }
        if let Some(latency) = self.latency {
            span.record("latency_ms", latency.as_millis() as u64);
        }
    }
}
