//! Signing and client overhead, each next to its floor.
//!
//! - `sign/hook/N` signs a built `reqwest::Request` with an N-byte body (what the client
//!   does per request); `sign/primitive/N` is the floor: SHA-512 of the same body plus
//!   HMAC-SHA512 of a message as long as the signature string.
//! - `loopback/gate_stp/X` sends one request through the typed client to an in-process
//!   server on 127.0.0.1 (keep-alive); `loopback/raw_reqwest/X` sends the same bytes with a
//!   bare `reqwest::Client`, its KEY, Timestamp and SIGN computed once beforehand, and
//!   decodes the same response into the same types. A guard checks before measuring that
//!   the server receives the same requests from both. `loopback` runs server and client on
//!   one thread (the strict, low-noise setting); `loopback_multi_thread` on tokio's
//!   default runtime.
//! - `emulator/concurrent_64` is the emulator's throughput with 64 concurrent clients.
//!
//! Quick run (well under a minute): `cargo bench --features mock --bench client -- --quick`.

use std::{
    hint::black_box,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gate_stp::{
    Client, Credentials, ManualClock, RetryPolicy,
    mock::{Emulator, EmulatorConfig, World, demo},
    models::{StpGroup, StpGroupUser},
    sign_request,
    signing::{self, SigningInput},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
const TIMESTAMP: i64 = 1_700_000_000;

fn sign(c: &mut Criterion) {
    let credentials = Credentials::new("bench-key", SECRET).unwrap();
    let http = reqwest::Client::new();
    let mut group = c.benchmark_group("sign");
    for size in [0usize, 100, 10_000] {
        let body = vec![b'7'; size];
        let path = "/api/v4/account/stp_groups/7/users";
        let mut request = http
            .post(format!("http://127.0.0.1{path}"))
            .body(body.clone())
            .build()
            .unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("hook", size), &size, |b, _| {
            b.iter(|| sign_request(black_box(&mut request), &credentials, TIMESTAMP).unwrap())
        });

        let timestamp = TIMESTAMP.to_string();
        let message_len = signing::signature_string(&SigningInput {
            method: "POST",
            path,
            query: "",
            body: &body,
            timestamp: &timestamp,
        })
        .len();
        let message = vec![b'm'; message_len];
        group.bench_with_input(BenchmarkId::new("primitive", size), &size, |b, _| {
            b.iter(|| {
                let body_hash = Sha512::digest(black_box(&body));
                let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(black_box(&message));
                (body_hash, mac.finalize().into_bytes())
            })
        });
    }
    group.finish();
}

const GROUPS: &str = r#"[{"id":100001,"name":"desk-a","creator_id":10000,"create_time":1700000000},{"id":100002,"name":"desk-b","creator_id":10000,"create_time":1700000001}]"#;
const USERS: &str = r#"[{"user_id":10001,"stp_id":7,"create_time":1700000000},{"user_id":10002,"stp_id":7,"create_time":1700000000}]"#;

/// A server that answers both routes with fixed bodies and checks nothing, so the
/// signed and unsigned clients see exactly the same server cost.
async fn fixed_server() -> SocketAddr {
    let json = |body: &'static str| ([("content-type", "application/json")], body);
    let app = Router::new()
        .route(
            "/api/v4/account/stp_groups",
            get(move || async move { json(GROUPS) }),
        )
        .route(
            "/api/v4/account/stp_groups/7/users",
            axum::routing::post(move || async move { json(USERS) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

const USER_AGENT: &str = "bench-agent/1";
const KEY: &str = "bench-key";

/// The headers a signed request carries, computed once: the raw client sends them
/// verbatim, so both clients put the same bytes on the wire and the difference is the
/// work of signing and of our layer, not of the extra headers.
fn fixed_signature_headers(method: &str, path: &str, body: &[u8]) -> [(&'static str, String); 3] {
    let timestamp = TIMESTAMP.to_string();
    let sign = signing::sign(
        SECRET.as_bytes(),
        &SigningInput {
            method,
            path,
            query: "",
            body,
            timestamp: &timestamp,
        },
    );
    [
        ("key", KEY.to_owned()),
        ("timestamp", timestamp),
        ("sign", sign.to_hex()),
    ]
}

fn raw_request(
    raw: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    signature: &[(&'static str, String); 3],
    body: Option<&[u8]>,
) -> reqwest::RequestBuilder {
    let mut request = raw
        .request(method, url)
        .header("accept", "application/json");
    for (name, value) in signature {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    request
}

/// One request as a server saw it, with the values that change every second (Timestamp,
/// SIGN) reduced to their length.
type Seen = Arc<Mutex<Vec<String>>>;

async fn capture_server(seen: Seen) -> SocketAddr {
    let app = Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let mut lines: Vec<String> = headers
                    .iter()
                    .map(|(name, value)| match name.as_str() {
                        "timestamp" | "sign" => format!("{name}: <{} bytes>", value.len()),
                        _ => format!("{name}: {}", value.to_str().unwrap_or("<binary>")),
                    })
                    .collect();
                lines.sort();
                lines.insert(0, format!("{method} {uri}"));
                lines.push(String::from_utf8_lossy(&body).into_owned());
                seen.lock().unwrap().push(lines.join("\n"));
                let body = if uri.path().ends_with("/users") {
                    USERS
                } else {
                    GROUPS
                };
                ([("content-type", "application/json")], body)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn gate_client(base: &str) -> Client {
    Client::builder()
        .base_url(base)
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .user_agent(USER_AGENT)
        .clock(ManualClock::at_unix_secs(TIMESTAMP as u64))
        .build()
        .unwrap()
}

/// Pairs per criterion iteration of the `overhead` benches: enough that a batch's sum is
/// dominated by the overhead, not by the noise of single requests.
const PAIRS: u32 = 32;

/// Runs `ours` and `floor` `PAIRS` times per iteration each, alternating which goes first,
/// and returns how much longer `ours` took per pair, so criterion reports the overhead per
/// request. A batch in which `floor` was slower counts as 1 ns (criterion refuses zero),
/// which can only overstate the overhead.
async fn paired<A, B, FA, FB>(iters: u64, ours: A, floor: B) -> Duration
where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: Future<Output = ()>,
    FB: Future<Output = ()>,
{
    let (mut ours_total, mut floor_total) = (Duration::ZERO, Duration::ZERO);
    for i in 0..iters * u64::from(PAIRS) {
        if i % 2 == 0 {
            ours_total += timed(&ours).await;
            floor_total += timed(&floor).await;
        } else {
            floor_total += timed(&floor).await;
            ours_total += timed(&ours).await;
        }
    }
    (ours_total.saturating_sub(floor_total) / PAIRS).max(Duration::from_nanos(1))
}

async fn timed<F: Fn() -> Fut, Fut: Future<Output = ()>>(run: &F) -> Duration {
    let start = Instant::now();
    run().await;
    start.elapsed()
}

/// `loopback`: server and client on one thread. No cross-thread wake-ups, so what differs
/// between the two clients is the work each does, not scheduling luck; it is also the
/// strictest setting, as the smaller the floor, the larger our share of it.
fn loopback(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    loopback_group(c, "loopback", &runtime);
}

/// `loopback_multi_thread`: tokio's default multi-thread runtime, as services run it.
/// Cross-thread wake-ups make the floor larger and noisier.
fn loopback_multi_thread(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    loopback_group(c, "loopback_multi_thread", &runtime);
}

fn loopback_group(c: &mut Criterion, name: &str, runtime: &tokio::runtime::Runtime) {
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .unwrap();
    let ids = [10001i64, 10002];
    let body = serde_json::to_vec(&ids).unwrap();
    let list_signature = fixed_signature_headers("GET", "/api/v4/account/stp_groups", b"");
    let add_signature =
        fixed_signature_headers("POST", "/api/v4/account/stp_groups/7/users", &body);

    // The raw client's two requests, URL formatting included (as the typed client does).
    let raw_list = |base: &str| {
        let url = format!("{base}/account/stp_groups");
        raw_request(&raw, reqwest::Method::GET, url, &list_signature, None)
    };
    let raw_add = |base: &str| {
        let url = format!("{base}/account/stp_groups/7/users");
        raw_request(
            &raw,
            reqwest::Method::POST,
            url,
            &add_signature,
            Some(&body),
        )
    };

    // Guard: both clients send the same request, byte for byte apart from the
    // Timestamp and SIGN values, or the comparison means nothing.
    let seen = Seen::default();
    let capture = runtime.block_on(capture_server(Arc::clone(&seen)));
    let capture_base = format!("http://{capture}/api/v4");
    let gate = gate_client(&capture_base);
    runtime.block_on(async {
        gate.list_groups().await.unwrap();
        raw_list(&capture_base).send().await.unwrap();
        gate.add_users(7, &ids).await.unwrap();
        raw_add(&capture_base).send().await.unwrap();
    });
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4);
        assert_eq!(
            seen[0], seen[1],
            "list_groups: the two clients send different requests"
        );
        assert_eq!(
            seen[2], seen[3],
            "add_users: the two clients send different requests"
        );
    }

    let addr = runtime.block_on(fixed_server());
    let base = format!("http://{addr}/api/v4");
    let client = gate_client(&base);
    let mut group = c.benchmark_group(name);
    group.bench_function("gate_stp/list_groups", |b| {
        b.to_async(runtime)
            .iter(|| async { client.list_groups().await.unwrap().into_inner() })
    });
    group.bench_function("raw_reqwest/list_groups", |b| {
        b.to_async(runtime).iter(|| async {
            raw_list(&base)
                .send()
                .await
                .unwrap()
                .json::<Vec<StpGroup>>()
                .await
                .unwrap()
        })
    });
    group.bench_function("gate_stp/add_users", |b| {
        b.to_async(runtime)
            .iter(|| async { client.add_users(7, &ids).await.unwrap().into_inner() })
    });
    group.bench_function("raw_reqwest/add_users", |b| {
        b.to_async(runtime).iter(|| async {
            raw_add(&base)
                .send()
                .await
                .unwrap()
                .json::<Vec<StpGroupUser>>()
                .await
                .unwrap()
        })
    });
    // What our client adds per request, measured in pairs: requests through each client
    // alternate, and the difference is counted. Drift of the machine between criterion's
    // windows, which moves the two benches above by more than 5 % from run to run here,
    // falls on both halves of a pair alike.
    group.bench_function("overhead/list_groups", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let (client, raw_list, base) = (&client, &raw_list, &base);
            async move {
                paired(
                    iters,
                    || async {
                        black_box(client.list_groups().await.unwrap().into_inner());
                    },
                    || async {
                        black_box(
                            raw_list(base)
                                .send()
                                .await
                                .unwrap()
                                .json::<Vec<StpGroup>>()
                                .await
                                .unwrap(),
                        );
                    },
                )
                .await
            }
        })
    });
    group.bench_function("overhead/add_users", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let (client, raw_add, base, ids) = (&client, &raw_add, &base, &ids);
            async move {
                paired(
                    iters,
                    || async {
                        black_box(client.add_users(7, ids).await.unwrap().into_inner());
                    },
                    || async {
                        black_box(
                            raw_add(base)
                                .send()
                                .await
                                .unwrap()
                                .json::<Vec<StpGroupUser>>()
                                .await
                                .unwrap(),
                        );
                    },
                )
                .await
            }
        })
    });
    group.finish();
}

fn emulator(c: &mut Criterion) {
    const CLIENTS: usize = 64;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime
        .block_on(Emulator::start(
            World::demo(),
            EmulatorConfig::default().without_rate_limit(),
        ))
        .unwrap();
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            Client::builder()
                .base_url(emulator.base_url())
                .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
                .retry_policy(RetryPolicy::none())
                .build()
                .unwrap()
        })
        .collect();
    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("concurrent_64", |b| {
        b.to_async(&runtime).iter(|| async {
            let calls = clients.iter().map(|client| async move {
                client.list_groups().await.unwrap();
            });
            futures_util::future::join_all(calls).await
        })
    });
    group.finish();
    runtime.block_on(emulator.shutdown());
}

criterion_group!(benches, sign, loopback, loopback_multi_thread, emulator);
criterion_main!(benches);
