//! Admitting a request, in Gate's order: body size, authentication, rate limit (a 429
//! answers before any other check), then `x-gate-exptime`. Handlers receive only what
//! was admitted, as the extractors [`Private`] and [`Public`].

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{Extensions, HeaderMap, header::CONTENT_LENGTH, request::Parts},
};

use super::{
    ratelimit::{Endpoint, Principal, Quota},
    refusal::Refusal,
    shared::Shared,
    verify::{self, Arrived},
    world::Account,
};

/// The `x-gate-exptime` request header (Unix milliseconds).
const EXPTIME: &str = "x-gate-exptime";

/// What admission learnt about one request, for the response headers and the request log.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    /// The rate-limit verdict, when the request was counted.
    pub(super) quota: Option<Quota>,
    /// The account that authenticated it.
    pub(super) caller: Option<i64>,
}

/// A per-request record shared between the middleware (which puts it in the request's
/// extensions and reads it once the response is ready) and the extractors (which fill it).
#[derive(Debug, Clone, Default)]
pub(super) struct Exchange(Arc<Mutex<Seen>>);

impl Exchange {
    pub(super) fn seen(&self) -> Seen {
        // A `Seen` is written whole: a poisoned lock still holds a consistent value.
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, seen: Seen) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = seen;
    }
}

/// A private request admitted: body within the limit, signature verified, within the rate
/// limit and (when honoured) before its `x-gate-exptime`. `body` is the exact bytes the
/// signature covered.
#[derive(Debug)]
pub(super) struct Private {
    pub(super) caller: Account,
    pub(super) body: Bytes,
}

impl FromRequest<Arc<Shared>> for Private {
    type Rejection = Refusal;

    async fn from_request(request: Request, shared: &Arc<Shared>) -> Result<Self, Refusal> {
        let endpoint = endpoint(request.extensions())?;
        let exchange = exchange(request.extensions());
        let peer = peer(request.extensions());
        // What the signature covers besides the body: method, raw path, raw query, headers.
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();

        let body = read_body(request, shared).await;
        let now_ms = shared.now_ms();
        let auth = body.as_ref().ok().map(|body| {
            let arrived = Arrived {
                method: &method,
                path: uri.path(),
                raw_query: uri.query().unwrap_or(""),
                headers: &headers,
                body,
            };
            let window_ms =
                i64::try_from(shared.config.expiry_window.as_millis()).unwrap_or(i64::MAX);
            verify::authenticate(&shared.world, &arrived, now_ms, window_ms)
        });
        let caller = auth.as_ref().and_then(|auth| auth.as_ref().ok().copied());
        let principal = match (caller, peer) {
            (Some(account), _) => Principal::Account(account.user_id()),
            (None, Some(ip)) => Principal::Address(ip),
            (None, None) => Principal::Unknown,
        };
        let quota = shared.limiter.check(endpoint, principal, now_ms);
        exchange.record(Seen {
            quota,
            caller: caller.map(Account::user_id),
        });

        if quota.is_some_and(|quota| !quota.allowed) {
            return Err(Refusal::too_many_requests());
        }
        let body = body?;
        let caller = match auth {
            Some(Ok(account)) => account,
            Some(Err(failure)) => return Err(Refusal::from(failure)),
            None => return Err(Refusal::internal("request not authenticated")),
        };
        if shared.config.honour_exptime {
            check_exptime(&headers, now_ms)?;
        }
        Ok(Private {
            caller: caller.clone(),
            body,
        })
    }
}

/// A public (or unmatched) request admitted by the rate limit, counted per client address.
/// `x-gate-exptime` is left to the handler: an unknown route answers 404 whatever it says.
#[derive(Debug)]
pub(super) struct Public;

impl FromRequestParts<Arc<Shared>> for Public {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Refusal> {
        let endpoint = endpoint(&parts.extensions)?;
        let principal = peer(&parts.extensions).map_or(Principal::Unknown, Principal::Address);
        let quota = shared.limiter.check(endpoint, principal, shared.now_ms());
        exchange(&parts.extensions).record(Seen {
            quota,
            caller: None,
        });
        if quota.is_some_and(|quota| !quota.allowed) {
            return Err(Refusal::too_many_requests());
        }
        Ok(Public)
    }
}

/// The endpoint the middleware identified.
fn endpoint(extensions: &Extensions) -> Result<Endpoint, Refusal> {
    extensions
        .get::<Endpoint>()
        .copied()
        .ok_or_else(|| Refusal::internal("request reached a handler without its endpoint"))
}

/// The middleware's record, or a detached one when the router is used without it.
fn exchange(extensions: &Extensions) -> Exchange {
    extensions.get::<Exchange>().cloned().unwrap_or_default()
}

fn peer(extensions: &Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The body through axum's `Bytes` extractor, bounded by the router's `DefaultBodyLimit`
/// (the configured limit); refused with 400 INVALID_REQUEST_BODY when larger or unreadable.
async fn read_body(request: Request, shared: &Arc<Shared>) -> Result<Bytes, Refusal> {
    let limit = shared.config.max_body_bytes;
    // An announced length over the limit is refused before a byte is read: waiting for a
    // body the emulator would refuse anyway only holds the connection.
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(Refusal::too_large(limit));
    }
    Bytes::from_request(request, shared)
        .await
        .map_err(|rejection| Refusal::from_body(&rejection, limit))
}

/// `x-gate-exptime` (Unix ms): refused with 400 REQUEST_EXPIRED when the emulator's time is
/// past it; 400 INVALID_PARAM_VALUE when it is not an integer.
pub(super) fn check_exptime(headers: &HeaderMap, now_ms: i64) -> Result<(), Refusal> {
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
            axum::http::StatusCode::BAD_REQUEST,
            "REQUEST_EXPIRED",
            format!("request expired: x-gate-exptime {deadline} is before server time {now_ms}"),
        ));
    }
    Ok(())
}
