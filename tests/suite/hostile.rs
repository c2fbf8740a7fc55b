//! Hostile servers: every way an HTTP peer (Gate, a proxy in front of it, a broken network)
//! can misbehave, and the typed [`gate_stp::Error`] each one must end in, without panics
//! and in bounded time.
//!
//! wiremock expresses what it can; the rest (trickling, never answering, resets, endless
//! bodies, bad bytes) is written by hand on raw sockets (tests/common/raw.rs).
//!
//! Retries, `max_elapsed`, backoff and pacing holds are judged by attempt counts and by
//! tokio's paused clock, never by how fast the machine happens to be. Paused time needs
//! the server on the test's own runtime (a raw server, not wiremock, which runs its own):
//! tokio advances a paused clock whenever the runtime is idle, so while waiting on a
//! server elsewhere it would jump straight to the client's timeout. A socket timeout
//! needs real time: those tests assert the error kind, and bounds the timeout guarantees
//! or that are generous and say why.

use crate::common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use common::{
    gate::{base, bounded},
    raw::{self, RawServer, answering_after, http_answer},
};
use gate_stp::{
    Client, ClientBuilder, Credentials, Error, Label, ManualClock, RetryPolicy, error::ConfigError,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
    // tokio's: the std clock in real time, and the one a paused test moves by hand.
    time::Instant,
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{any, method, path},
};

const KEY: &str = "hostile-test-key";
const SECRET: &str = "hostile-test-secret";
const NOW: u64 = 1_700_000_000;
/// Client timeout for tests that wait on a silent server.
const SHORT_TIMEOUT: Duration = Duration::from_millis(500);
/// Body limit for the huge-body tests.
const LIMIT: usize = 64 * 1024;
/// What the huge-body servers would send if nobody stopped them.
const HUGE: usize = 256 * 1024 * 1024;

/// A client for `base` with a fixed clock, no retries and a 2 s timeout.
fn builder(base: impl Into<String>) -> ClientBuilder {
    Client::builder()
        .base_url(base)
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
}

fn client(base: impl Into<String>) -> Client {
    builder(base).build().unwrap()
}

/// Retries with (almost) no waiting.
fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(5))
}

/// A wiremock server answering every request with `template`.
async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

/// `list_groups` against a server that answers `template`.
async fn list_error(template: ResponseTemplate) -> Error {
    let server = answering(template).await;
    let error = client(base(&server)).list_groups().await.unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    error
}

fn rate_limit_headers(template: ResponseTemplate, remain: u32, reset: u64) -> ResponseTemplate {
    template
        .insert_header(
            "X-Gate-RateLimit-Requests-Remain",
            remain.to_string().as_str(),
        )
        .insert_header("X-Gate-RateLimit-Limit", "150")
        .insert_header(
            "X-Gate-RateLimit-Reset-Timestamp",
            reset.to_string().as_str(),
        )
}

/// A raw server that sends `head`, then one `filler` byte every 50 ms, `count` times.
async fn trickling(head: &'static str, filler: u8, count: usize) -> RawServer {
    raw::serve(move |mut stream, _| async move {
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..count {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(&[filler]).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// A client that gives up on a silent or slow server after [`SHORT_TIMEOUT`].
fn short_timeout_client(base: impl Into<String>) -> Client {
    builder(base).timeout(SHORT_TIMEOUT).build().unwrap()
}

macro_rules! expect {
    ($error:expr, $pattern:pat) => {
        let error = &$error;
        let $pattern = error else {
            panic!("expected {}, got {error:?}", stringify!($pattern));
        };
    };
}

// ---------------------------------------------------------------------------------------
// Bodies that are not what the operation documents.

#[tokio::test]
async fn html_502_from_a_proxy_is_unexpected_and_retried_for_reads() {
    bounded(async {
        let server = answering(
            ResponseTemplate::new(502)
                .set_body_raw("<html><h1>502 Bad Gateway</h1></html>", "text/html"),
        )
        .await;
        let client = builder(base(&server))
            .retry_policy(fast_retries())
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 502);
        assert_eq!(response.content_type.as_deref(), Some("text/html"));
        assert!(
            response.snippet.starts_with("<html><h1>502"),
            "{}",
            response.snippet
        );
        // A 502 is transient: the read was tried the policy's three times.
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn empty_200_is_unexpected() {
    bounded(async {
        let error = list_error(ResponseTemplate::new(200)).await;
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 200);
        assert_eq!(response.snippet, "");
        assert!(response.reason.contains("EOF"), "{}", response.reason);
    })
    .await;
}

#[tokio::test]
async fn truncated_json_is_unexpected() {
    bounded(async {
        let error = list_error(
            ResponseTemplate::new(200).set_body_raw(r#"[{"id":1,"name":"gr"#, "application/json"),
        )
        .await;
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 200);
        assert_eq!(response.snippet, r#"[{"id":1,"name":"gr"#);
        assert!(response.reason.contains("EOF"), "{}", response.reason);
    })
    .await;
}

#[tokio::test]
async fn wrong_json_types_are_unexpected() {
    bounded(async {
        let error =
            list_error(ResponseTemplate::new(200).set_body_json(json!([{"id": "x", "name": "g"}])))
                .await;
        expect!(error, Error::UnexpectedResponse(response));
        assert!(
            response.reason.contains("invalid type"),
            "{}",
            response.reason
        );
        // An object where an array is documented.
        let error =
            list_error(ResponseTemplate::new(200).set_body_json(json!({"id": 1, "name": "g"})))
                .await;
        expect!(error, Error::UnexpectedResponse(_response));
        // A Gate error body with a 200 status is not a success either.
        let error =
            list_error(ResponseTemplate::new(200).set_body_json(json!({"label": "INVALID_KEY"})))
                .await;
        expect!(error, Error::UnexpectedResponse(_response));
    })
    .await;
}

#[tokio::test]
async fn unknown_fields_are_accepted() {
    bounded(async {
        let server = answering(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 5, "name": "g", "creator_id": 1, "create_time": 2,
            "new_field": {"nested": [1, 2]}, "another": null
        }])))
        .await;
        let groups = client(base(&server)).list_groups().await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].id, groups[0].name.as_str()), (Some(5), "g"));
    })
    .await;
}

#[tokio::test]
async fn non_utf8_body_is_unexpected() {
    bounded(async {
        let bytes = vec![0xff, 0xfe, b'[', 0x80, b']'];
        let error =
            list_error(ResponseTemplate::new(200).set_body_raw(bytes, "application/json")).await;
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 200);
        assert!(
            response.snippet.contains('\u{fffd}'),
            "{:?}",
            response.snippet
        );
        // The same bytes as an error body.
        let error =
            list_error(ResponseTemplate::new(400).set_body_bytes(vec![0xc3, 0x28, 0xa0])).await;
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 400);
    })
    .await;
}

#[tokio::test]
async fn non_utf8_header_values_are_ignored_not_fatal() {
    bounded(async {
        let server = raw::serve(|mut stream, _| async move {
            let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                X-Gate-Trace-Id: \xff\xfe\r\nX-Client-Request-Id: \xc3\x28\r\n\
                Content-Length: 2\r\n\r\n[]"
                .to_vec();
            let _ = stream.write_all(&response).await;
        })
        .await;
        let groups = client(server.base_url()).list_groups().await.unwrap();
        assert!(groups.is_empty());
        assert_eq!(groups.meta().trace_id, None);
        assert_eq!(groups.meta().client_request_id, None);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Gate's own error bodies.

#[tokio::test]
async fn invalid_signature_401_is_an_api_error() {
    bounded(async {
        let error =
            list_error(ResponseTemplate::new(401).set_body_json(
                json!({"label": "INVALID_SIGNATURE", "message": "Signature mismatch"}),
            ))
            .await;
        expect!(error, Error::Api(api));
        assert_eq!(
            (api.status.as_u16(), &api.label),
            (401, &Label::InvalidSignature)
        );
        assert_eq!(api.message.as_deref(), Some("Signature mismatch"));
        assert_eq!(
            error.to_string(),
            "INVALID_SIGNATURE: Signature mismatch (HTTP 401)"
        );
    })
    .await;
}

#[tokio::test]
async fn missing_required_header_400_is_an_api_error() {
    bounded(async {
        let error = list_error(ResponseTemplate::new(400).set_body_json(
            json!({"label": "MISSING_REQUIRED_HEADER", "message": "Missing required header: Timestamp"}),
        ))
        .await;
        expect!(error, Error::Api(api));
        assert_eq!((api.status.as_u16(), &api.label), (400, &Label::MissingRequiredHeader));
        assert_eq!(error.label(), Some(&Label::MissingRequiredHeader));
    })
    .await;
}

#[tokio::test]
async fn detail_error_keeps_its_detail() {
    bounded(async {
        let error = list_error(
            ResponseTemplate::new(400)
                .set_body_json(json!({"label": "INVALID_PARAM_VALUE", "detail": "stp_id"})),
        )
        .await;
        expect!(error, Error::Api(api));
        assert_eq!(api.label, Label::InvalidParamValue);
        assert_eq!(
            (api.message.as_deref(), api.detail.as_deref()),
            (None, Some("stp_id"))
        );
        assert!(error.to_string().contains("stp_id"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn error_json_without_label_is_unexpected_with_its_status() {
    bounded(async {
        let error =
            list_error(ResponseTemplate::new(403).set_body_json(json!({"message": "x"}))).await;
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 403);
        assert_eq!(error.status().map(|s| s.as_u16()), Some(403));
        assert!(
            response.snippet.contains(r#""message""#),
            "{}",
            response.snippet
        );
        assert!(response.meta.is_some());
    })
    .await;
}

#[tokio::test]
async fn rate_limited_with_headers_carries_the_reset_time() {
    bounded(async {
        let error = list_error(rate_limit_headers(
            ResponseTemplate::new(429).set_body_json(
                json!({"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}),
            ),
            0,
            NOW + 7,
        ))
        .await;
        expect!(error, Error::RateLimited(limited));
        assert_eq!(
            limited.reset_at(),
            Some(UNIX_EPOCH + Duration::from_secs(NOW + 7))
        );
        assert_eq!(limited.label, Some(Label::TooManyRequests));
        assert_eq!(
            error.rate_limit().map(|r| (r.limit, r.remaining)),
            Some((150, 0))
        );
        assert_eq!(error.status().map(|s| s.as_u16()), Some(429));
    })
    .await;
}

#[tokio::test]
async fn rate_limited_without_headers_or_body() {
    bounded(async {
        for template in [
            ResponseTemplate::new(429),
            ResponseTemplate::new(429).set_body_raw("<html>slow down</html>", "text/html"),
            ResponseTemplate::new(429).set_body_json(json!({"label": "TOO_MANY_REQUESTS"})),
        ] {
            let error = list_error(template).await;
            expect!(error, Error::RateLimited(limited));
            assert_eq!(limited.reset_at(), None);
            assert_eq!(error.status().map(|s| s.as_u16()), Some(429));
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Huge bodies: reading stops at the limit, and the server is not made to send it all.

/// A raw server sending a 200 of `HUGE` bytes, with a Content-Length or chunked; reports
/// how many bytes it managed to write and whether it wrote them all.
async fn huge_body_server(chunked: bool) -> (RawServer, mpsc::UnboundedReceiver<(usize, bool)>) {
    let (report, reports) = mpsc::unbounded_channel();
    let server = raw::serve(move |mut stream, _| {
        let report = report.clone();
        async move {
            let head = if chunked {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n"
                    .to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                    Content-Length: {HUGE}\r\n\r\n"
                )
            };
            let piece = vec![b' '; 16 * 1024];
            let mut written = 0;
            let mut complete = stream.write_all(head.as_bytes()).await.is_ok();
            while complete && written < HUGE {
                complete = if chunked {
                    let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
                    frame.extend_from_slice(&piece);
                    frame.extend_from_slice(b"\r\n");
                    stream.write_all(&frame).await.is_ok()
                } else {
                    stream.write_all(&piece).await.is_ok()
                };
                if complete {
                    written += piece.len();
                }
            }
            if complete && chunked {
                complete = stream.write_all(b"0\r\n\r\n").await.is_ok();
            }
            let _ = report.send((written, complete));
        }
    })
    .await;
    (server, reports)
}

async fn huge_body_is_refused(chunked: bool) {
    let (server, mut reports) = huge_body_server(chunked).await;
    let client = builder(server.base_url())
        .max_response_bytes(LIMIT)
        .build()
        .unwrap();
    let error = client.list_groups().await.unwrap_err();
    // No clock needed to see that reading stopped early: the client's 2 s timeout covers
    // the body, so a client still reading at 2 s ends in Timeout, not BodyTooLarge; and
    // the server's own count shows the client hung up long before the end.
    expect!(error, Error::BodyTooLarge { status, limit });
    assert_eq!((status.as_u16(), *limit), (200, LIMIT));
    let (written, complete) = tokio::time::timeout(Duration::from_secs(5), reports.recv())
        .await
        .expect("the server was left writing: the client did not close the connection")
        .unwrap();
    assert!(
        !complete && written < HUGE / 4,
        "server wrote {written} bytes, complete {complete}"
    );
    drop(client);
}

#[tokio::test]
async fn huge_body_with_content_length_is_too_large() {
    bounded(huge_body_is_refused(false)).await;
}

#[tokio::test]
async fn huge_chunked_body_is_too_large() {
    bounded(huge_body_is_refused(true)).await;
}

#[tokio::test]
async fn a_body_at_the_limit_is_read() {
    bounded(async {
        // `[` + spaces + `]`, exactly LIMIT bytes, both framings.
        let mut body = vec![b' '; LIMIT];
        body[0] = b'[';
        body[LIMIT - 1] = b']';
        let server =
            answering(ResponseTemplate::new(200).set_body_raw(body, "application/json")).await;
        let client = builder(base(&server))
            .max_response_bytes(LIMIT)
            .build()
            .unwrap();
        assert!(client.list_groups().await.unwrap().is_empty());
        let small = builder(base(&server))
            .max_response_bytes(LIMIT - 1)
            .build()
            .unwrap();
        expect!(
            small.list_groups().await.unwrap_err(),
            Error::BodyTooLarge { .. }
        );
    })
    .await;
}

/// A raw server answering 200 with a JSON array of exactly `size` bytes (`[`, spaces,
/// `]`), with a Content-Length or chunked in pieces of 1000 bytes (so that the count runs
/// across many frames).
async fn body_of_size(size: usize, chunked: bool) -> RawServer {
    raw::serve(move |mut stream, _| async move {
        let mut body = vec![b' '; size];
        body[0] = b'[';
        body[size - 1] = b']';
        let mut out = if chunked {
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n"
                .to_vec()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: {size}\r\n\r\n"
            )
            .into_bytes()
        };
        if chunked {
            for piece in body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&body);
        }
        let _ = stream.write_all(&out).await;
        let _ = stream.flush().await;
        // Keep the connection until the client is done reading.
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await
}

/// The limit is inclusive in both framings: LIMIT bytes are read, LIMIT + 1 are refused.
#[tokio::test]
async fn the_limit_is_exact_with_content_length_and_chunked() {
    bounded(async {
        for chunked in [false, true] {
            let at_limit = body_of_size(LIMIT, chunked).await;
            let client = builder(at_limit.base_url())
                .max_response_bytes(LIMIT)
                .build()
                .unwrap();
            let groups = client.list_groups().await;
            assert!(
                groups.as_ref().is_ok_and(|g| g.is_empty()),
                "chunked {chunked}: {groups:?}"
            );
            let over = body_of_size(LIMIT + 1, chunked).await;
            let client = builder(over.base_url())
                .max_response_bytes(LIMIT)
                .build()
                .unwrap();
            let error = client.list_groups().await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::BodyTooLarge { status, limit: LIMIT } if status.as_u16() == 200
                ),
                "chunked {chunked}: {error:?}"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Slow, silent and broken connections.

/// The timeout covers the whole body, not each read: a body trickled one byte per 50 ms
/// never lets a read wait long, yet the call ends at the timeout.
#[tokio::test]
async fn trickling_body_times_out() {
    bounded(async {
        // 1000 bytes (`[` and spaces), complete after about 50 s.
        let server = trickling(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
            b' ',
            999,
        )
        .await;
        let client = short_timeout_client(server.base_url());
        let started = Instant::now();
        let error = client.list_groups().await.unwrap_err();
        let elapsed = started.elapsed();
        // Timeout, not the UnexpectedResponse the whole (unclosed) array would end in.
        expect!(error, Error::Timeout(_));
        // Not before the timeout (a timer never fires early), and a tenth of the 50 s
        // the body takes: a generous bound only a timeout of the whole call meets.
        assert!(
            elapsed >= SHORT_TIMEOUT && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "a read's timeout is not retried here"
        );
    })
    .await;
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    bounded(async {
        let server = raw::serve(|stream, _| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        })
        .await;
        let client = short_timeout_client(server.base_url());
        let started = Instant::now();
        expect!(client.list_groups().await.unwrap_err(), Error::Timeout(_));
        let elapsed = started.elapsed();
        // Not before the timeout, and a sixth of the 30 s the server stays silent: a
        // generous bound that only the client's own timeout meets.
        assert!(
            elapsed >= SHORT_TIMEOUT && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

/// A raw server that writes `bytes`, then closes (with a reset if `reset`).
async fn writes_then_closes(bytes: &'static [u8], reset: bool) -> RawServer {
    raw::serve(move |mut stream: TcpStream, _| async move {
        let _ = stream.write_all(bytes).await;
        let _ = stream.flush().await;
        if reset {
            stream.set_zero_linger().unwrap();
        } else {
            let _ = stream.shutdown().await;
        }
        // Let the client read what was sent before the connection goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(stream);
    })
    .await
}

/// A response that was cut off is a transport failure, not a malformed body: the server
/// may have answered correctly and the network lost the rest.
#[tokio::test]
async fn close_mid_body_with_content_length_is_transport() {
    bounded(async {
        let server = writes_then_closes(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n[{\"id\":1,\"name\":\"ab",
            false,
        )
        .await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(e));
        assert!(e.is_body() || e.is_decode() || e.is_request(), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn reset_mid_body_is_transport() {
    bounded(async {
        let server = writes_then_closes(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n[{\"id\":1,",
            true,
        )
        .await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(_e));
    })
    .await;
}

#[tokio::test]
async fn chunked_body_cut_short_is_transport() {
    bounded(async {
        let server = writes_then_closes(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n10\r\n[{\"id\":1,\"name\":\"\r\n",
            false,
        )
        .await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(e));
        // The capped (chunked) body still belongs to its response: the error names the
        // URL that was called.
        let url = e.url().map(|url| url.as_str().to_owned());
        assert_eq!(
            url,
            Some(format!("{}/account/stp_groups", server.base_url())),
            "{e:?}"
        );
    })
    .await;
}

/// Without Content-Length or chunking, the close *is* the end of the body: what arrived is
/// the whole (malformed) answer.
#[tokio::test]
async fn close_delimited_body_cut_short_is_unexpected() {
    bounded(async {
        let server = writes_then_closes(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Connection: close\r\n\r\n[{\"id\":1,\"na",
            false,
        )
        .await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.snippet, r#"[{"id":1,"na"#);
    })
    .await;
}

#[tokio::test]
async fn connection_closed_without_an_answer_is_transport() {
    bounded(async {
        let server = writes_then_closes(b"", false).await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(_e));
        let server = writes_then_closes(b"", true).await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(_e));
    })
    .await;
}

#[tokio::test]
async fn garbage_instead_of_http_is_transport() {
    bounded(async {
        let server = writes_then_closes(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false).await;
        let error = client(server.base_url()).list_groups().await.unwrap_err();
        expect!(error, Error::Transport(_e));
    })
    .await;
}

#[tokio::test]
async fn connection_refused_is_transport() {
    bounded(async {
        let dead = raw::DeadPort::hold();
        let client = client(dead.base_url());
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::Transport(e));
        assert!(e.is_connect(), "{e:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Redirects are never followed.

#[tokio::test]
async fn redirects_are_not_followed() {
    bounded(async {
        for status in [301, 302, 307, 308] {
            let elsewhere = raw::serve(|mut stream, _| async move {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Content-Length: 2\r\n\r\n[]",
                    )
                    .await;
            })
            .await;
            let location = format!("{}/account/stp_groups", elsewhere.base_url());
            let server = answering(
                ResponseTemplate::new(status).insert_header("Location", location.as_str()),
            )
            .await;
            let client = builder(base(&server))
                .retry_policy(fast_retries())
                .build()
                .unwrap();
            for error in [
                client.list_groups().await.unwrap_err(),
                client.create_group("g").await.unwrap_err(),
            ] {
                expect!(
                    error,
                    Error::Redirect {
                        status: got,
                        location: Some(got_location)
                    }
                );
                assert_eq!(got.as_u16(), status);
                assert_eq!(got_location, &location);
            }
            assert_eq!(
                server.received_requests().await.unwrap().len(),
                2,
                "redirect retried"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                elsewhere.connections(),
                0,
                "HTTP {status}: the redirect target was contacted"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Clock drift.

/// Answers like Gate: REQUEST_EXPIRED unless the Timestamp is within 60 s of `server_now`,
/// INVALID_SIGNATURE unless the request verifies.
struct GateWithClock {
    server_now: u64,
}

impl Respond for GateWithClock {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Err(why) = common::verify_wiremock(request, KEY, SECRET) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"label": "INVALID_SIGNATURE", "message": why}));
        }
        let timestamp: u64 = request
            .headers
            .get("Timestamp")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if timestamp.abs_diff(self.server_now) > 60 {
            return ResponseTemplate::new(401).set_body_json(json!({
                "label": "REQUEST_EXPIRED",
                "message": "gap between request Timestamp and server time exceeds 60"
            }));
        }
        ResponseTemplate::new(200).set_body_json(json!([]))
    }
}

async fn gate_ahead_by(secs: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/spot/time"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"server_time": (NOW + secs) * 1000})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/account/stp_groups"))
        .respond_with(GateWithClock {
            server_now: NOW + secs,
        })
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn request_expired_syncs_the_clock_and_succeeds() {
    bounded(async {
        let server = gate_ahead_by(120).await;
        let client = client(base(&server));
        client.list_groups().await.unwrap();

        let received = server.received_requests().await.unwrap();
        let paths: Vec<_> = received.iter().map(|r| r.url.path()).collect();
        assert_eq!(
            paths,
            [
                "/api/v4/account/stp_groups",
                "/api/v4/spot/time",
                "/api/v4/account/stp_groups"
            ]
        );
        let timestamp = |r: &Request| {
            r.headers
                .get("Timestamp")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(timestamp(&received[0]), NOW.to_string());
        // Gate is 120 s ahead of the (stopped) client clock.
        assert_eq!(client.clock_offset_ms(), 120_000);
        assert_eq!(timestamp(&received[2]), (NOW + 120).to_string());
        common::verify_wiremock(&received[2], KEY, SECRET).unwrap();
        assert_ne!(
            received[0].headers.get("SIGN"),
            received[2].headers.get("SIGN")
        );
    })
    .await;
}

#[tokio::test]
async fn request_expired_without_resync_is_an_api_error() {
    bounded(async {
        let server = gate_ahead_by(120).await;
        let client = builder(base(&server))
            .resync_on_expired(false)
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::Api(api));
        assert_eq!(
            (api.status.as_u16(), &api.label),
            (401, &Label::RequestExpired)
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        assert_eq!(client.clock_offset_ms(), 0);
    })
    .await;
}

#[tokio::test]
async fn request_expired_is_resynced_only_once() {
    bounded(async {
        // /spot/time says 120 s ahead, but the endpoint keeps refusing: one resync, then
        // the REQUEST_EXPIRED is returned.
        let server = MockServer::start().await;
        Mock::given(path("/api/v4/spot/time"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"server_time": (NOW + 120) * 1000})),
            )
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(GateWithClock {
                server_now: NOW + 1000,
            })
            .mount(&server)
            .await;
        let client = builder(base(&server))
            .retry_policy(fast_retries())
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        assert_eq!(error.label(), Some(&Label::RequestExpired), "{error:?}");
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Retries.

/// 503 for the first `failures` requests, then `[]`; advances the client's clock by 7 s
/// on each failure and records what each request carried.
struct FlakyGate {
    failures: usize,
    seen: AtomicUsize,
    clock: ManualClock,
    verified: Mutex<Vec<Result<(), String>>>,
}

impl Respond for FlakyGate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.verified
            .lock()
            .unwrap()
            .push(common::verify_wiremock(request, KEY, SECRET));
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.failures {
            self.clock.advance(Duration::from_secs(7));
            ResponseTemplate::new(503)
                .set_body_json(json!({"label": "SERVER_ERROR", "message": "try later"}))
        } else {
            ResponseTemplate::new(200).set_body_json(json!([]))
        }
    }
}

#[tokio::test]
async fn get_after_5xx_is_retried_with_a_fresh_signature() {
    bounded(async {
        let clock = ManualClock::at_unix_secs(NOW);
        let server = MockServer::start().await;
        let flaky = Arc::new(FlakyGate {
            failures: 2,
            seen: AtomicUsize::new(0),
            clock: clock.clone(),
            verified: Mutex::new(Vec::new()),
        });
        Mock::given(any())
            .respond_with(ArcRespond(Arc::clone(&flaky)))
            .mount(&server)
            .await;
        let client = builder(base(&server))
            .clock(clock)
            .retry_policy(fast_retries())
            .build()
            .unwrap();
        client.list_groups().await.unwrap();

        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 3);
        assert!(
            flaky.verified.lock().unwrap().iter().all(Result::is_ok),
            "{:?}",
            flaky.verified
        );
        let header =
            |r: &Request, name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
        let timestamps: Vec<_> = received.iter().map(|r| header(r, "Timestamp")).collect();
        assert_eq!(timestamps, [NOW, NOW + 7, NOW + 14].map(|t| t.to_string()));
        let signs: std::collections::HashSet<_> =
            received.iter().map(|r| header(r, "SIGN")).collect();
        assert_eq!(signs.len(), 3, "a retry reused a signature");
    })
    .await;
}

struct ArcRespond<R>(Arc<R>);

impl<R: Respond> Respond for ArcRespond<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

#[tokio::test]
async fn create_is_never_retried() {
    bounded(async {
        let server =
            answering(ResponseTemplate::new(503).set_body_raw("<html>busy</html>", "text/html"))
                .await;
        let client = builder(base(&server))
            .retry_policy(fast_retries().retry_idempotent_writes(true).max_attempts(5))
            .build()
            .unwrap();
        let error = client.create_group("desk").await.unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "{error:?}");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    })
    .await;
}

/// 503 once, then a member list.
async fn add_users_flaky_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"label": "SERVER_ERROR"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"user_id": 2, "stp_id": 7, "create_time": 1}])),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn add_users_is_retried_only_when_the_policy_opts_in() {
    bounded(async {
        let server = add_users_flaky_server().await;
        let client = builder(base(&server))
            .retry_policy(fast_retries())
            .build()
            .unwrap();
        let error = client.add_users(7, &[2]).await.unwrap_err();
        expect!(error, Error::Api(api));
        assert_eq!(api.status.as_u16(), 503);
        assert_eq!(server.received_requests().await.unwrap().len(), 1);

        let server = add_users_flaky_server().await;
        let client = builder(base(&server))
            .retry_policy(fast_retries().retry_idempotent_writes(true))
            .build()
            .unwrap();
        let users = client.add_users(7, &[2]).await.unwrap();
        assert_eq!(users[0].user_id, Some(2));
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 2);
        assert!(received.iter().all(|r| r.body == b"[2]"));
    })
    .await;
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    bounded(async {
        let server = answering(ResponseTemplate::new(503)).await;
        let client = builder(base(&server))
            .retry_policy(fast_retries().max_attempts(4))
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
        assert_eq!(server.received_requests().await.unwrap().len(), 4);
    })
    .await;
}

/// On tokio's paused clock, so that every answer takes exactly its 100 ms however loaded
/// the machine is: the attempt count is exact.
#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_elapsed() {
    bounded(async {
        // Every answer takes 100 ms; 50 attempts allowed but only 350 ms in all, and no
        // backoff: attempts start at 0, 100, 200 and 300 ms, and the one that would start
        // at 400 ms is past the limit.
        let (server, arrivals) = answering_after(
            Duration::from_millis(100),
            http_answer("503 Service Unavailable", "", r#"{"label":"SERVER_ERROR"}"#),
        )
        .await;
        let policy = RetryPolicy::default()
            .max_attempts(50)
            .initial_backoff(Duration::ZERO)
            .max_backoff(Duration::ZERO)
            .max_elapsed(Duration::from_millis(350));
        let client = builder(server.base_url())
            .retry_policy(policy)
            .build()
            .unwrap();
        let started = Instant::now();
        let error = client.list_groups().await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "{error:?}");
        assert_eq!(server.requests().len(), 4);
        // The server's own clock: one attempt per 100 ms, each after the last answer.
        let gaps: Vec<_> = arrivals
            .lock()
            .unwrap()
            .windows(2)
            .map(|pair| pair[1].1 - pair[0].1)
            .collect();
        assert!(
            gaps.iter()
                .all(|gap| (Duration::from_millis(100)..Duration::from_millis(110)).contains(gap)),
            "{gaps:?}"
        );
        // Given up once the fourth answer came, at 400 ms, not waiting for anything else.
        assert!(
            (Duration::from_millis(400)..Duration::from_millis(450)).contains(&elapsed),
            "{elapsed:?}"
        );
    })
    .await;
}

/// On tokio's paused clock (the silent server is on the test's runtime): the timeouts
/// and the backoff pass in no real time, and their sum is exact.
#[tokio::test(start_paused = true)]
async fn timeouts_of_reads_are_retried_within_bounds() {
    bounded(async {
        let server = raw::serve(|stream, _| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        })
        .await;
        let timeout = Duration::from_millis(300);
        let client = builder(server.base_url())
            .timeout(timeout)
            .retry_policy(fast_retries().max_attempts(2))
            .build()
            .unwrap();
        let started = Instant::now();
        expect!(client.list_groups().await.unwrap_err(), Error::Timeout(_));
        let elapsed = started.elapsed();
        assert_eq!(server.requests().len(), 2);
        // Two timeouts and one backoff of at most 5 ms (a few ms more for the timer's
        // millisecond rounding): neither attempt outlived its timeout.
        assert!(
            elapsed >= 2 * timeout && elapsed <= 2 * timeout + Duration::from_millis(10),
            "{elapsed:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Pacing, request ids, builder rules.

/// On tokio's paused clock, with the server on the test's runtime: the hold is the
/// exact second to the reset, and a call not held takes no tokio time at all, whatever
/// the machine's load.
#[tokio::test(start_paused = true)]
async fn pacing_waits_for_the_window_to_reset() {
    bounded(async {
        // The window is used up and resets 1 s after the client's (fixed) clock.
        let used_up = format!(
            "X-Gate-RateLimit-Requests-Remain: 0\r\nX-Gate-RateLimit-Limit: 150\r\n\
            X-Gate-RateLimit-Reset-Timestamp: {}\r\n",
            NOW + 1
        );
        let (server, arrivals) =
            answering_after(Duration::ZERO, http_answer("200 OK", &used_up, "[]")).await;
        // Any hold is the whole second; a call that is not held takes no tokio time.
        let one_second = Duration::from_secs(1)..Duration::from_millis(1_010);
        let not_held = Duration::ZERO..Duration::from_millis(10);
        let paced = builder(server.base_url())
            .pace_rate_limits(true)
            .build()
            .unwrap();
        paced.list_groups().await.unwrap();
        let started = Instant::now();
        paced.list_groups().await.unwrap();
        let held = started.elapsed();
        assert!(one_second.contains(&held), "held {held:?}");
        // Another operation has its own window.
        let started = Instant::now();
        paced.list_users(7).await.unwrap();
        let other = started.elapsed();
        assert!(not_held.contains(&other), "{other:?}");

        // Without pacing, nothing waits.
        let unpaced = client(server.base_url());
        unpaced.list_groups().await.unwrap();
        let started = Instant::now();
        unpaced.list_groups().await.unwrap();
        let unheld = started.elapsed();
        assert!(not_held.contains(&unheld), "{unheld:?}");

        // The server saw the same: the paced call arrived a second after the first.
        let arrivals = arrivals.lock().unwrap().clone();
        let paths: Vec<_> = arrivals.iter().map(|(path, _)| path.as_str()).collect();
        let groups = "/api/v4/account/stp_groups";
        let users = "/api/v4/account/stp_groups/7/users";
        assert_eq!(paths, [groups, groups, users, groups, groups]);
        let gap = arrivals[1].1 - arrivals[0].1;
        assert!(one_second.contains(&gap), "{gap:?}");
    })
    .await;
}

/// Echoes `X-Client-Request-Id` like Gate.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut template = if self.0 == 200 {
            ResponseTemplate::new(200).set_body_json(json!([]))
        } else {
            ResponseTemplate::new(self.0)
                .set_body_json(json!({"label": "FORBIDDEN", "message": "no"}))
        };
        if let Some(id) = request.headers.get("X-Client-Request-Id") {
            template = template.insert_header("X-Client-Request-Id", id.clone());
        }
        template
    }
}

#[tokio::test]
async fn client_request_id_is_echoed_in_meta() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Echo(200))
            .mount(&server)
            .await;
        let client = client(base(&server));
        let groups = client.list_groups().client_request_id("abc").await.unwrap();
        assert_eq!(groups.meta().client_request_id.as_deref(), Some("abc"));
        let groups = client.list_groups().await.unwrap();
        assert_eq!(groups.meta().client_request_id, None);

        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Echo(403))
            .mount(&server)
            .await;
        let error = client_for(&server)
            .list_groups()
            .client_request_id("abc")
            .await
            .unwrap_err();
        assert_eq!(
            error.meta().and_then(|m| m.client_request_id.as_deref()),
            Some("abc")
        );
    })
    .await;
}

fn client_for(server: &MockServer) -> Client {
    client(base(server))
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    for url in [
        "http://example.com/api/v4",
        "http://10.0.0.1:8080/api/v4",
        "http://[2001:db8::1]/api/v4",
    ] {
        let error = builder(url).build().unwrap_err();
        assert!(
            matches!(error, Error::Config(ConfigError::InsecureBaseUrl(_))),
            "{url}: {error:?}"
        );
        builder(url).allow_insecure_http(true).build().unwrap();
    }
    for url in [
        "http://127.0.0.1:1/api/v4",
        "http://localhost:1/api/v4",
        "http://[::1]:1/api/v4",
        "https://example.com/api/v4",
    ] {
        builder(url).build().unwrap();
    }
    assert!(matches!(
        builder("ftp://example.com/api/v4").build(),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn a_429_or_redirect_with_a_huge_body_keeps_its_meaning() {
    bounded(async {
        let big = vec![b'x'; 4 * LIMIT];
        let server = answering(rate_limit_headers(
            ResponseTemplate::new(429).set_body_raw(big.clone(), "text/html"),
            0,
            NOW + 3,
        ))
        .await;
        let client = builder(base(&server))
            .max_response_bytes(LIMIT)
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::RateLimited(limited));
        assert_eq!(
            limited.reset_at(),
            Some(UNIX_EPOCH + Duration::from_secs(NOW + 3))
        );

        let server = answering(
            ResponseTemplate::new(302)
                .insert_header("Location", "https://elsewhere.invalid/")
                .set_body_raw(big, "text/html"),
        )
        .await;
        let client = builder(base(&server))
            .max_response_bytes(LIMIT)
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(
            error,
            Error::Redirect {
                location: Some(_),
                ..
            }
        );
    })
    .await;
}

#[tokio::test]
async fn undocumented_status_with_a_trickling_body_is_read_within_the_timeout() {
    bounded(async {
        let server = trickling(
            "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nx",
            b'x',
            999,
        )
        .await;
        let client = short_timeout_client(server.base_url());
        let started = Instant::now();
        let error = client.list_groups().await.unwrap_err();
        let elapsed = started.elapsed();
        // The body takes about 50 s; a tenth of that is a generous bound that only a
        // call ended by its timeout meets.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {error:?}");
        // The status already says the answer is not usable: what arrived is kept.
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 201);
        assert!(
            response.snippet.starts_with('x') && response.snippet.len() < 256,
            "{}",
            response.snippet
        );
    })
    .await;
}

/// The snippet of an undocumented answer is at most 256 bytes, and reading stops as soon
/// as it has them: a server that sends 256 bytes of a longer body and then stalls does not
/// hold the call until the (here, long) timeout.
#[tokio::test]
async fn an_undocumented_answer_is_read_only_up_to_the_snippet() {
    bounded(async {
        let server = raw::serve(|mut stream, _| async move {
            let mut answer = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n\
                Content-Length: 1000\r\n\r\n"
                .to_vec();
            answer.extend_from_slice(&[b'y'; 256]);
            if stream.write_all(&answer).await.is_err() {
                return;
            }
            // Never send the rest: wait for the client to hang up.
            let mut sink = [0u8; 64];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        let client = builder(server.base_url())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::UnexpectedResponse(response));
        assert_eq!(response.status.as_u16(), 201);
        assert_eq!(response.snippet, "y".repeat(256));
    })
    .await;
}

/// After a resync, a relative expiry (`expires_in`) must be re-expressed in Gate's clock:
/// the deadline computed from the stale clock is already past by Gate's clock, so Gate
/// would drop the resent request.
#[tokio::test]
async fn expiry_window_follows_the_resynced_clock() {
    bounded(async {
        let server = gate_ahead_by(120).await;
        let client = client(base(&server));
        client
            .list_groups()
            .expires_in(Duration::from_secs(5))
            .await
            .unwrap();
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 3);
        let exptime = |r: &Request| -> i64 {
            r.headers
                .get("x-gate-exptime")
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(exptime(&received[0]), NOW as i64 * 1000 + 5000);
        let gate_now_ms = (NOW as i64 + 120) * 1000;
        let resent = exptime(&received[2]);
        assert!(
            resent > gate_now_ms && resent <= gate_now_ms + 5000,
            "x-gate-exptime {resent} vs Gate's now {gate_now_ms}"
        );
    })
    .await;
}

/// A server answering REQUEST_EXPIRED to everything, /spot/time included: one resync
/// attempt, then the error, not an endless chain of clock syncs.
#[tokio::test]
async fn request_expired_everywhere_does_not_loop() {
    bounded(async {
        let server = answering(
            ResponseTemplate::new(401).set_body_json(json!({"label": "REQUEST_EXPIRED"})),
        )
        .await;
        let client = builder(base(&server))
            .retry_policy(fast_retries())
            .build()
            .unwrap();
        let error = tokio::time::timeout(Duration::from_secs(3), client.list_groups())
            .await
            .expect("endless resync")
            .unwrap_err();
        assert_eq!(error.label(), Some(&Label::RequestExpired), "{error:?}");
        let paths: Vec<_> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(paths, ["/api/v4/account/stp_groups", "/api/v4/spot/time"]);
    })
    .await;
}

/// When the resync itself fails, the operation's own REQUEST_EXPIRED is returned, not the
/// failure of /spot/time the caller never asked for.
#[tokio::test]
async fn failed_resync_returns_the_original_error() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(path("/api/v4/spot/time"))
            .respond_with(ResponseTemplate::new(500).set_body_raw("<html>oops</html>", "text/html"))
            .mount(&server)
            .await;
        Mock::given(path("/api/v4/account/stp_groups"))
            .respond_with(GateWithClock {
                server_now: NOW + 120,
            })
            .mount(&server)
            .await;
        let client = client(base(&server));
        let error = client.create_group("desk").await.unwrap_err();
        expect!(error, Error::Api(api));
        assert_eq!(
            (api.status.as_u16(), &api.label),
            (401, &Label::RequestExpired)
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
        assert_eq!(client.clock_offset_ms(), 0);
    })
    .await;
}

#[tokio::test]
async fn endless_headers_are_transport() {
    bounded(async {
        let server = raw::serve(|mut stream, _| async move {
            if stream.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                return;
            }
            for i in 0..1_000_000u32 {
                let line = format!("X-Pad-{i}: {}\r\n", "p".repeat(100));
                if stream.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        })
        .await;
        // A timeout far past the test's bound: only the header limit can end the call in
        // time, however slowly a loaded machine parses (about 1.5 s at 16 tests at once
        // on 2 busy cores, which failed the earlier 1 s bound, and could have reached a
        // 2 s timeout); bounded() fails the test if nothing ends it.
        let client = builder(server.base_url())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let error = client.list_groups().await.unwrap_err();
        expect!(error, Error::Transport(_e));
    })
    .await;
}

/// The offset is measured on the signing clock alone: a slow /spot/time must not shift a
/// stopped clock by elapsed time. On tokio's paused clock, with the server on the test's
/// runtime, the round trip is exactly the server's 100 ms.
#[tokio::test(start_paused = true)]
async fn clock_sync_measures_on_the_signing_clock() {
    bounded(async {
        let server_time = format!(r#"{{"server_time":{}}}"#, (NOW + 5) * 1000);
        let (server, _) = answering_after(
            Duration::from_millis(100),
            http_answer("200 OK", "", &server_time),
        )
        .await;
        let sync = client(server.base_url()).sync_clock().await.unwrap();
        // Half the round trip added to a stopped clock would make this 4950.
        assert_eq!(sync.offset_ms, 5000);
        assert!(
            (Duration::from_millis(100)..Duration::from_millis(110)).contains(&sync.round_trip),
            "{:?}",
            sync.round_trip
        );
    })
    .await;
}
