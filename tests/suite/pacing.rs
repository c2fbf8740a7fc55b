//! Client-side pacing against the emulator's rate limit: concurrent calls over several
//! windows get no 429, counted from the emulator's answers.
//!
//! Time is tokio's paused clock: the emulator and the client both read it (through
//! [`TokioClock`]), so windows of 10 s pass in no real time and the test does not depend
//! on how fast the machine is.
#![cfg(feature = "mock")]

use crate::common::clock::TokioClock;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::Request, middleware::Next, response::Response};
use gate_stp::{
    Client, Credentials, RetryPolicy,
    mock::{Emulator, EmulatorConfig, World, demo},
};

/// The emulator's answers, counted per (path, status) by a layer around its routes.
#[derive(Debug, Default, Clone)]
struct Answers(Arc<Mutex<BTreeMap<(String, u16), u32>>>);

impl Answers {
    fn count(&self, status: u16) -> u32 {
        let counts = self.0.lock().unwrap();
        counts
            .iter()
            .filter(|((_, code), _)| *code == status)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Serves `config`'s emulator of the demo world on the shared clock; every answer counted.
async fn start(config: EmulatorConfig, clock: TokioClock) -> (String, Answers) {
    let answers = Answers::default();
    let counted = answers.clone();
    let emulator = Emulator::new(World::demo(), config.clock(clock));
    let router = emulator.router().layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let counted = counted.clone();
            async move {
                let path = request.uri().path().to_owned();
                let response: Response = next.run(request).await;
                *counted
                    .0
                    .lock()
                    .unwrap()
                    .entry((path, response.status().as_u16()))
                    .or_default() += 1;
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    (format!("http://{addr}/api/v4"), answers)
}

/// A pacing client on the shared clock that never retries: a 429 would fail its call.
fn paced_client(base_url: &str, clock: TokioClock) -> Client {
    Client::builder()
        .base_url(base_url)
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .clock(clock)
        .pace_rate_limits(true)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

/// `width` tasks share `calls` calls of one operation; returns the tokio time taken and
/// the failed calls' errors.
async fn run_concurrently<F, Fut>(width: usize, calls: usize, call: F) -> (Duration, Vec<String>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), gate_stp::Error>> + Send,
{
    let started = tokio::time::Instant::now();
    let next = Arc::new(Mutex::new(0usize));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..width {
        let (call, next, failures) = (call.clone(), Arc::clone(&next), Arc::clone(&failures));
        tasks.push(tokio::spawn(async move {
            loop {
                {
                    let mut taken = next.lock().unwrap();
                    if *taken == calls {
                        return;
                    }
                    *taken += 1;
                }
                if let Err(error) = call().await {
                    failures.lock().unwrap().push(error.to_string());
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    (started.elapsed(), failures)
}

/// `calls` list_groups at `width`, limit `limit` per 10 s; no 429 and several windows used.
async fn no_429_at(width: usize, limit: u32, calls: usize) {
    let clock = TokioClock::new();
    let config = EmulatorConfig::default().rate_limit(limit, Duration::from_secs(10));
    let (base_url, answers) = start(config, clock).await;
    let client = paced_client(&base_url, clock);
    let (took, failures) = run_concurrently(width, calls, move || {
        let client = client.clone();
        async move { client.list_groups().await.map(drop) }
    })
    .await;
    assert_eq!(answers.count(429), 0, "width {width}: refused");
    assert_eq!(answers.count(200), calls as u32, "width {width}");
    assert_eq!(failures, Vec::<String>::new(), "width {width}");
    // The floor: the calls need ceil(calls / limit) windows; the first is what is left of
    // the window the run starts in (6.4 s), so the last starts 6.4 s + 10 s per window
    // between. Not before (the windows' limits hold), and within a second of it (the
    // pacer leaves no window half used).
    let windows = calls.div_ceil(limit as usize) as u32;
    let floor = Duration::from_millis(6_400) + Duration::from_secs(10) * (windows - 2);
    assert!(
        took >= floor && took < floor + Duration::from_secs(1),
        "width {width}: {took:?}, floor {floor:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_over_several_windows_get_no_429() {
    for width in [4, 16] {
        no_429_at(width, 20, 80).await;
    }
}

#[tokio::test(start_paused = true)]
async fn wider_than_the_window_still_gets_no_429() {
    // More calls at once than a window allows.
    no_429_at(24, 10, 45).await;
}

/// Gate's documented limits, the emulator's default: 80 requests per 10 s on the
/// sub-account endpoint, 150 on the other private ones.
#[tokio::test(start_paused = true)]
async fn the_default_limits_are_gates_and_each_is_paced() {
    let clock = TokioClock::new();
    let (base_url, answers) = start(EmulatorConfig::default(), clock).await;
    let client = paced_client(&base_url, clock);

    let sub_accounts = client.list_sub_accounts().await.unwrap();
    let groups = client.list_groups().await.unwrap();
    let limit = |meta: &gate_stp::ResponseMeta| meta.rate_limit.unwrap().limit;
    assert_eq!(limit(sub_accounts.meta()), 80);
    assert_eq!(limit(groups.meta()), 150);

    // Three windows' worth of each, side by side, 16 wide: none refused.
    let (sub_calls, group_calls) = (3 * 80 - 1, 3 * 150 - 1);
    let reads = client.clone();
    let subs = run_concurrently(16, sub_calls, move || {
        let client = reads.clone();
        async move { client.list_sub_accounts().await.map(drop) }
    });
    let lists = run_concurrently(16, group_calls, move || {
        let client = client.clone();
        async move { client.list_groups().await.map(drop) }
    });
    let ((sub_took, sub_failures), (group_took, group_failures)) = tokio::join!(subs, lists);
    assert_eq!(answers.count(429), 0, "refused");
    assert_eq!(sub_failures, Vec::<String>::new());
    assert_eq!(group_failures, Vec::<String>::new());
    assert_eq!(answers.count(200), (sub_calls + group_calls + 2) as u32);
    // Each waited for its own windows: 240 sub-account reads (one taken above) need a
    // third window, as do 450 list_groups.
    let floor = Duration::from_millis(16_400);
    for took in [sub_took, group_took] {
        assert!(
            took >= floor && took < floor + Duration::from_secs(1),
            "{took:?}"
        );
    }
}
