//! A call's deadline (`expires_in`/`expires_at`) also bounds the client's own waiting:
//! neither pacing nor a retry may hold a request until after it, since Gate would only
//! answer REQUEST_EXPIRED.
//!
//! Judged on tokio's paused clock, with the server on the test's own runtime (a raw
//! server, as in hostile.rs; wiremock runs on a thread of its own, and tokio, seeing the
//! test's runtime idle while it waits, would jump the paused clock to the client's
//! timeout). The server takes [`ANSWER_TIME`] of tokio time to answer, so a call that
//! gives up when the answer comes ends at exactly that time, while a hold or backoff
//! would add its whole 5 s: the bounds say which happened, however loaded the machine.
//! Each test also runs the same call with a deadline the wait fits in, to show that the
//! client would have waited and that the deadline alone stopped it.

use std::{ops::Range, time::Duration};

use gate_stp::{Client, ClientBuilder, Credentials, Error, ManualClock, RetryPolicy};
// tokio's: the clock a paused test moves by hand, and the one the client measures on.
use tokio::time::Instant;

use crate::common::{
    gate::bounded,
    raw::{self, Arrivals, RawServer},
};

/// The client's (fixed) clock, in Unix seconds.
const NOW: u64 = 1_700_000_000;
/// How long the server takes to answer, in tokio time.
const ANSWER_TIME: Duration = Duration::from_millis(100);
/// When the used-up rate-limit window resets, after [`NOW`]: the wait either test's
/// client would make before sending again.
const RESET_IN: Duration = Duration::from_secs(5);

/// A raw server on the test's runtime answering every request, after [`ANSWER_TIME`],
/// with `status_line` (`429 Too Many Requests`), `body` and a used-up rate-limit window
/// that resets [`RESET_IN`] after [`NOW`]; it notes when each request arrived.
async fn window_used_up(status_line: &str, body: &str) -> (RawServer, Arrivals) {
    let window = format!(
        "X-Gate-RateLimit-Limit: 200\r\nX-Gate-RateLimit-Requests-Remain: 0\r\n\
        X-Gate-RateLimit-Reset-Timestamp: {}\r\n",
        NOW + RESET_IN.as_secs(),
    );
    raw::answering_after(ANSWER_TIME, raw::http_answer(status_line, &window, body)).await
}

fn client(server: &RawServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.base_url())
        .credentials(Credentials::new("deadline-key", "deadline-secret").unwrap())
        .clock(ManualClock::at_unix_secs(NOW))
}

/// `exact` and the next few milliseconds: tokio's timers round their deadlines up to the
/// millisecond, and a paused clock advances to the rounded deadline.
fn about(exact: Duration) -> Range<Duration> {
    exact..exact + Duration::from_millis(10)
}

/// The time between the last two requests the server read.
fn last_gap(arrivals: &Arrivals) -> Duration {
    let arrivals = arrivals.lock().unwrap();
    let [.., before, last] = arrivals.as_slice() else {
        panic!("fewer than two requests: {arrivals:?}");
    };
    last.1 - before.1
}

#[tokio::test(start_paused = true)]
async fn pacing_refuses_at_once_a_request_whose_deadline_comes_before_the_reset() {
    bounded(async {
        let (server, arrivals) = window_used_up("200 OK", "[]").await;
        let client = client(&server).pace_rate_limits(true).build().unwrap();
        // The pacer learns the window: used up, resetting in 5 s.
        client.list_groups().await.unwrap();

        let started = Instant::now();
        let error = client
            .list_groups()
            .expires_in(Duration::from_secs(2))
            .await
            .unwrap_err();
        // Refused before anything was sent or awaited: no tokio time passed at all, where
        // a hold, even a part of one, would show.
        assert_eq!(started.elapsed(), Duration::ZERO, "it was held");
        match error {
            // What is left of the window, counted from the answer on tokio's clock, which
            // has not moved since.
            Error::ExpiresBeforeRateLimitReset { reset_in } => assert_eq!(reset_in, RESET_IN),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.requests().len(), 1);

        // With a deadline after the reset, the same call is held until the reset and sent.
        let started = Instant::now();
        client
            .list_groups()
            .expires_in(Duration::from_secs(10))
            .await
            .unwrap();
        let held = started.elapsed();
        assert!(about(RESET_IN + ANSWER_TIME).contains(&held), "{held:?}");
        assert_eq!(server.requests().len(), 2);
        let gap = last_gap(&arrivals);
        assert!(about(ANSWER_TIME + RESET_IN).contains(&gap), "{gap:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_would_wait_past_the_deadline_is_not_made() {
    bounded(async {
        // 429 with a reset 5 s away: the policy would wait until the reset, 5 s, before
        // retrying (its own backoff is at most 100 ms).
        let (server, arrivals) = window_used_up(
            "429 Too Many Requests",
            r#"{"label":"TOO_MANY_REQUESTS","message":"slow down"}"#,
        )
        .await;
        let client = client(&server)
            .retry_policy(
                RetryPolicy::default()
                    .max_attempts(2)
                    .max_elapsed(Duration::from_secs(30)),
            )
            .build()
            .unwrap();

        let started = Instant::now();
        let error = client
            .list_groups()
            .expires_in(Duration::from_secs(1))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, Error::RateLimited(_)), "{error:?}");
        assert_eq!(server.requests().len(), 1);
        // Given up as the answer came, not after any wait.
        assert!(
            about(ANSWER_TIME).contains(&elapsed),
            "it waited: {elapsed:?}"
        );

        // With a deadline the wait fits in, the same call waits the 5 s and retries once.
        let started = Instant::now();
        let error = client
            .list_groups()
            .expires_in(Duration::from_secs(10))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, Error::RateLimited(_)), "{error:?}");
        assert_eq!(server.requests().len(), 3);
        assert!(
            about(ANSWER_TIME + RESET_IN + ANSWER_TIME).contains(&elapsed),
            "{elapsed:?}"
        );
        let gap = last_gap(&arrivals);
        assert!(about(ANSWER_TIME + RESET_IN).contains(&gap), "{gap:?}");
    })
    .await;
}
