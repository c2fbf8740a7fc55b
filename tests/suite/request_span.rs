//! The `gate_stp.request` span describes the call's outcome: its `status` and `trace_id`
//! are those of the last attempt, so an attempt that got no response at all must not
//! leave an earlier attempt's status on the span.

use crate::common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{gate, logs::LogBuffer, raw};
use gate_stp::{Client, Credentials, Error};
use tokio::io::AsyncWriteExt;
use tracing_subscriber::fmt::format::FmtSpan;

/// Runs one `list_groups` against a server that answers the n-th connection with
/// `answer(n)` (`None`: close without answering), with two attempts allowed, and
/// returns the call's error and the line the span wrote when it closed.
async fn call_and_close_line(answer: fn(usize) -> Option<&'static [u8]>) -> (Error, String) {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = raw::serve(move |mut stream, _| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            if let Some(bytes) = answer(n) {
                let _ = stream.write_all(bytes).await;
                let _ = stream.shutdown().await;
            }
            drop(stream);
        }
    })
    .await;
    let client = Client::builder()
        .base_url(server.base_url())
        .credentials(Credentials::new("span-test-key", "span-test-secret").unwrap())
        .retry_policy(gate::two_quick_attempts())
        .build()
        .unwrap();
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    common::logs::install_global_registry();
    let _guard = tracing::subscriber::set_default(subscriber);
    let error = tokio::time::timeout(Duration::from_secs(10), client.list_groups())
        .await
        .expect("the call finished")
        .unwrap_err();
    assert_eq!(server.requests().len(), 2, "both attempts were sent");
    let text = logs.text();
    let close = text
        .lines()
        .find(|line| line.contains("gate_stp.request") && line.contains("close"))
        .unwrap_or_else(|| panic!("no close event for the span:\n{text}"))
        .to_owned();
    (error, close)
}

const UNAVAILABLE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[tokio::test(flavor = "current_thread")]
async fn a_last_attempt_without_response_leaves_no_status() {
    let (error, close) = call_and_close_line(|n| (n == 0).then_some(UNAVAILABLE)).await;
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(close.contains("attempt=2"), "{close}");
    // One field, the last attempt's: recorded per attempt, fmt would print `attempt=1 attempt=2`.
    assert_eq!(close.matches("attempt=").count(), 1, "{close}");
    assert!(
        !close.contains("status="),
        "stale status on the span: {close}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_status_on_the_span_is_the_last_attempts() {
    let (error, close) =
        call_and_close_line(|n| Some(if n == 0 { UNAVAILABLE } else { BAD_GATEWAY })).await;
    assert_eq!(error.status().map(|s| s.as_u16()), Some(502), "{error:?}");
    assert!(close.contains("attempt=2"), "{close}");
    assert!(close.contains("status=502"), "{close}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_refused_before_any_attempt_reports_no_attempt() {
    // Every answer says the window is used up and resets 5 s after the client's clock.
    const NOW: u64 = 1_700_000_000;
    let window = format!(
        "X-Gate-RateLimit-Limit: 200\r\nX-Gate-RateLimit-Requests-Remain: 0\r\n\
        X-Gate-RateLimit-Reset-Timestamp: {}\r\n",
        NOW + 5
    );
    let answer = raw::http_answer("200 OK", &window, "[]");
    let (server, _) = raw::answering_after(Duration::ZERO, answer).await;
    let client = Client::builder()
        .base_url(server.base_url())
        .credentials(Credentials::new("span-test-key", "span-test-secret").unwrap())
        .clock(gate_stp::ManualClock::at_unix_secs(NOW))
        .pace_rate_limits(true)
        .build()
        .unwrap();
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    common::logs::install_global_registry();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The first call is sent; its answer tells the pacer the window is used up.
    client.list_groups().await.unwrap();
    // Due 2 s from now, the second could only be sent after the reset: refused unsent.
    let error = client
        .list_groups()
        .expires_in(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ExpiresBeforeRateLimitReset { .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);

    let text = logs.text();
    let closes: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("gate_stp.request") && line.contains("close"))
        .collect();
    let [sent, refused] = closes.as_slice() else {
        panic!("expected two closed spans:\n{text}");
    };
    assert!(sent.contains("attempt=1"), "{sent}");
    assert!(sent.contains("status=200"), "{sent}");
    // Nothing was sent: no attempt number (not even 0) and no status.
    assert!(!refused.contains("attempt="), "{refused}");
    assert!(!refused.contains("status="), "{refused}");
}
