//! `gate-stp mcp --http ADDR`: the same server over MCP's Streamable HTTP (rmcp's
//! `StreamableHttpService`, served by axum at `/mcp`), for agent runtimes that cannot
//! start a child process. Locked down:
//!
//! - **Loopback only.** ADDR must be a loopback address (`127.0.0.1:8765`, `[::1]:8765`);
//!   anything else is refused (put a reverse proxy with TLS in front for remote agents).
//!   Only `Host: localhost`, `127.0.0.1` or `::1` is served (DNS rebinding).
//! - **A bearer token** on every request (`Authorization: Bearer TOKEN`), compared in
//!   constant time; missing or wrong: 401, nothing else happens. The token comes from
//!   a file (`--http-token-file`) or the variable `GATE_STP_MCP_TOKEN`, never from a flag
//!   value (flags are visible to every user in the process list), and has at least
//!   [`MIN_TOKEN_CHARS`] characters.
//! - **`Origin`**: a request from a browser page (with an `Origin` header) is refused unless
//!   that origin is listed with `--http-allow-origin`; clients that send no `Origin` pass.
//! - **Limits**: a body over [`MAX_BODY_BYTES`] gets 413; more than `--http-max-concurrent`
//!   requests in flight get 429.
//! - A body that is not one JSON-RPC message, or a call whose `arguments` are not an
//!   object, is answered as on stdio (`framing`): 400 with -32700 or -32600 and
//!   `"id": null`, or the error with the request's id.
//! - `--allow-apply` and the removal and create limits work as over stdio.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt as _;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::framing;
use crate::failure::Failure;

/// The shortest token accepted.
pub(crate) const MIN_TOKEN_CHARS: usize = 32;

/// The largest request body read: 8 MiB, twice the largest desired-state document.
pub(crate) const MAX_BODY_BYTES: usize = 2 * gate_stp::desired::MAX_DOCUMENT_BYTES;

/// The variable that may hold the token.
pub(crate) const TOKEN_VARIABLE: &str = "GATE_STP_MCP_TOKEN";

/// What the operator chose for `--http`.
pub(crate) struct HttpOptions {
    pub(crate) addr: SocketAddr,
    pub(crate) token: String,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_concurrent: usize,
}

/// The token from `file`, else from [`TOKEN_VARIABLE`]; refused when missing or short.
pub(crate) fn token(file: Option<&std::path::Path>) -> Result<String, Failure> {
    let token = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                Failure::usage(format!(
                    "mcp --http: the token file {}: {e}",
                    path.display()
                ))
            })?
            .trim()
            .to_owned(),
        None => std::env::var(TOKEN_VARIABLE).unwrap_or_default(),
    };
    if token.is_empty() {
        return Err(Failure::usage(format!(
            "mcp --http needs a bearer token for its clients: put one in a file named by \
             --http-token-file, or in the variable {TOKEN_VARIABLE} (never a flag value)"
        )));
    }
    if token.chars().count() < MIN_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::usage(format!(
            "mcp --http: the token must be at least {MIN_TOKEN_CHARS} visible ASCII characters \
             (for example 32 random hex digits)"
        )));
    }
    Ok(token)
}

/// The address, refused unless it is a loopback one.
pub(crate) fn loopback(addr: SocketAddr) -> Result<SocketAddr, Failure> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(Failure::usage(format!(
            "mcp --http {addr}: only a loopback address is served (127.0.0.1 or [::1]); put a \
             reverse proxy with TLS in front of it for agents on other machines"
        )))
    }
}

struct Guard {
    token_hash: [u8; 32],
    in_flight: Arc<Semaphore>,
}

fn refusal(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Whether `given` is the token whose SHA-256 is `token_hash`. Compared as digests, every
/// byte looked at whatever the first difference: the time taken says nothing about the
/// token.
fn token_matches(given: &str, token_hash: &[u8; 32]) -> bool {
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    given
        .iter()
        .zip(token_hash.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// The bearer token, then a place among the requests in flight.
async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !token_matches(given, &guard.token_hash) {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer TOKEN)",
        );
    }
    // Calls (POST) count while their answer is written, a stream of events included; a
    // client's open GET stream for notifications does not.
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let Ok(permit) = guard.in_flight.clone().try_acquire_owned() else {
        return refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in flight; try again shortly",
        );
    };
    // The body screened as a stdio line is (`framing`): what rmcp would answer badly is
    // answered here, the rest goes on unchanged.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|bytes| bytes > MAX_BODY_BYTES as u64) {
        // Refused before a byte of the body is read.
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a request body is at most {MAX_BODY_BYTES} bytes"),
        );
    }
    let (request_parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a request body is at most {MAX_BODY_BYTES} bytes"),
        );
    };
    let mut started = true;
    if let framing::Screened::Answer(error) = framing::screen(&bytes, &mut started) {
        let status = if error["id"].is_null() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        return (status, axum::Json(error)).into_response();
    }
    let request = Request::from_parts(request_parts, axum::body::Body::from(bytes));
    let (parts, body) = next.run(request).await.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

/// Serves `server` (the STP server; any MCP server handler) over Streamable HTTP until
/// Ctrl-C, one clone per session.
pub(crate) async fn serve<S>(server: S, options: HttpOptions) -> Result<(), Failure>
where
    S: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1", "[::1]"])
        .with_max_request_body_bytes(MAX_BODY_BYTES);
    config = if options.allowed_origins.is_empty() {
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(options.allowed_origins.clone())
    };
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    let guard = Arc::new(Guard {
        token_hash: Sha256::digest(options.token.as_bytes()).into(),
        in_flight: Arc::new(Semaphore::new(options.max_concurrent)),
    });
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(guard, self::guard));
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| Failure::usage(format!("mcp --http {}: {e}", options.addr)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::service(format!("mcp --http: {e}")))?;
    // The line a supervisor (or a test) waits for; the token is not in it.
    tracing::warn!("gate-stp mcp: serving MCP at http://{bound}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::service(format!("mcp --http: {e}")))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::{MIN_TOKEN_CHARS, loopback, token_matches};

    /// Only the token itself matches; every byte of the digests counts. The wrong token
    /// below is chosen so that its digest's bytes XOR to the same value as the right
    /// one's: a comparison that folded the differences with XOR instead of OR would let it
    /// in (about one wrong token in 256 does).
    #[test]
    fn only_the_token_matches() {
        let token = "0123456789abcdef0123456789abcdef";
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert!(token_matches(token, &hash));
        let xor = |bytes: &[u8]| bytes.iter().fold(0u8, |x, b| x ^ b);
        let twin = (0..)
            .map(|i| format!("wrong-{i}"))
            .find(|wrong| xor(&Sha256::digest(wrong.as_bytes())) == xor(&hash))
            .unwrap();
        for wrong in [
            twin.as_str(),
            "",
            "0123456789abcdef0123456789abcdeF",
            &token[1..],
        ] {
            assert!(!token_matches(wrong, &hash), "{wrong:?}");
        }
    }

    #[test]
    fn only_loopback_addresses_are_served() {
        for addr in ["127.0.0.1:8765", "[::1]:0", "127.1.2.3:9"] {
            assert!(loopback(addr.parse().unwrap()).is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:8765", "[::]:8765", "192.168.1.2:80"] {
            let error = loopback(addr.parse().unwrap()).unwrap_err();
            assert!(error.message.contains("only a loopback address"), "{addr}");
        }
    }

    #[test]
    fn a_short_or_missing_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "short\n").unwrap();
        let error = super::token(Some(&file)).unwrap_err();
        assert!(error.message.contains("at least 32"), "{}", error.message);
        let good = "x".repeat(MIN_TOKEN_CHARS);
        std::fs::write(&file, format!("{good}\n")).unwrap();
        assert_eq!(super::token(Some(&file)).unwrap(), good);
        let error = super::token(Some(&dir.path().join("missing"))).unwrap_err();
        assert!(
            error.message.contains("the token file"),
            "{}",
            error.message
        );
    }
}
