//! Signing and client overhead, each next to its floor.
//!
//! - `sign/hook/N` signs a built `reqwest::Request` with an N-byte body (what the client
//!   does per request); `sign/primitive/N` is the floor: SHA-512 of the same body plus
//!   HMAC-SHA512, from a state keyed once and cloned per call, of a message as long as the
//!   signature string.
//! - `loopback/gate_stp/X` sends one request through the typed client to an in-process
//!   server on 127.0.0.1 (keep-alive); `loopback/raw_reqwest/X` sends the same bytes with a
//!   bare `reqwest::Client`, signing each request itself (KEY, Timestamp, SIGN from a
//!   keyed HMAC state, written here from the primitives), and decodes the same response
//!   into the same types. A guard checks before measuring that the server receives the
//!   same requests from both, SIGN included. `loopback` runs server and client on
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

use axum::Router;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gate_stp::{
    Client, Credentials, RetryPolicy,
    mock::{Emulator, EmulatorConfig, World, demo},
    models::{StpGroup, StpGroupUser},
    sign_request,
};

#[path = "support/loopback.rs"]
mod loopback;
use loopback::{
    FloorSigner, GROUPS, SECRET, SignFixture, TIMESTAMP, USER_AGENT, USERS, fixed_server,
    floor_http, gate_client, raw_request,
};

fn sign(c: &mut Criterion) {
    let credentials = Credentials::new("bench-key", SECRET).unwrap();
    let http = reqwest::Client::new();
    let mut group = c.benchmark_group("sign");
    for size in [0usize, 100, 10_000] {
        let fixture = SignFixture::new(size);
        let mut request = fixture.request(&http);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("hook", size), &size, |b, _| {
            b.iter(|| sign_request(black_box(&mut request), &credentials, TIMESTAMP).unwrap())
        });
        let primitive = || fixture.primitive();
        group.bench_with_input(BenchmarkId::new("primitive", size), &size, |b, _| {
            b.iter(primitive)
        });
        // What the hook adds to the primitive, in interleaved pairs (as `loopback/overhead`):
        // the machine's drift between two separate benches is larger than the target.
        group.bench_with_input(BenchmarkId::new("overhead", size), &size, |b, _| {
            b.iter_custom(|iters| {
                paired_sync(
                    iters,
                    || sign_request(black_box(&mut request), &credentials, TIMESTAMP).unwrap(),
                    primitive,
                )
            })
        });
    }
    group.finish();
    hex_encoders(c);
}

/// The hand-written table encoder `signing` used before it took the `hex` crate, kept
/// here only as the "before" of the `hex/*` benches.
fn table_hex(bytes: &[u8; 64]) -> [u8; 128] {
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut table = [[0u8; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            table[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
            byte += 1;
        }
        table
    };
    let mut out = [0u8; 128];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
    }
    out
}

/// `hex/*`: the SIGN encoding (64 bytes to 128 lowercase digits) by the `hex` crate, as
/// `signing` does it now, against the former table encoder: each alone, and the
/// difference both ways in interleaved pairs (`hex/crate_minus_table` and
/// `hex/table_minus_crate`; the one that is not slower reads 1 ns).
fn hex_encoders(c: &mut Criterion) {
    let digest: [u8; 64] = std::array::from_fn(|i| (i as u8).wrapping_mul(73) ^ 0x5a);
    let by_crate = || {
        let mut out = [0u8; 128];
        hex::encode_to_slice(black_box(&digest), &mut out).unwrap();
        black_box(out);
    };
    let by_table = || {
        black_box(table_hex(black_box(&digest)));
    };
    let mut check = [0u8; 128];
    hex::encode_to_slice(digest, &mut check).unwrap();
    assert_eq!(check, table_hex(&digest), "the two encoders disagree");
    let mut group = c.benchmark_group("hex");
    group.bench_function("crate", |b| b.iter(by_crate));
    group.bench_function("table", |b| b.iter(by_table));
    group.bench_function("crate_minus_table", |b| {
        b.iter_custom(|iters| paired_sync(iters, by_crate, by_table))
    });
    group.bench_function("table_minus_crate", |b| {
        b.iter_custom(|iters| paired_sync(iters, by_table, by_crate))
    });
    group.finish();
}

/// `build/*`: what progenitor's request building costs beyond a plain one, for the same
/// request (`GET .../stp_groups/7/users`, `Accept`): the generated code formats the URL with
/// `encode_path` and adds an `api-version` header to a fresh `HeaderMap`, which our hook
/// removes. `build/plain` formats the URL and builds the request, nothing else.
fn build(c: &mut Criterion) {
    use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
    let http = reqwest::Client::new();
    let base = String::from("http://127.0.0.1:1/api/v4");
    let stp_id = 7i64;
    let mut group = c.benchmark_group("build");
    group.bench_function("plain", |b| {
        b.iter(|| {
            let url = format!("{}/account/stp_groups/{}/users", black_box(&base), stp_id);
            http.get(url)
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .build()
                .unwrap()
        })
    });
    group.bench_function("progenitor_style", |b| {
        b.iter(|| {
            let url = format!(
                "{}/account/stp_groups/{}/users",
                black_box(&base),
                progenitor_client::encode_path(&stp_id.to_string()),
            );
            let mut header_map = HeaderMap::with_capacity(1);
            header_map.append(
                HeaderName::from_static("api-version"),
                HeaderValue::from_static("4.0.0"),
            );
            let mut request = http
                .get(url)
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .headers(header_map)
                .build()
                .unwrap();
            request.headers_mut().remove("api-version");
            request
        })
    });
    group.finish();
}

/// One request as a server saw it, every header included: both clients sign with the same
/// fixed timestamp, so even their SIGN values must agree.
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
                    .map(|(name, value)| {
                        format!("{name}: {}", value.to_str().unwrap_or("<binary>"))
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

/// [`paired`] for synchronous work, `PAIRS` times per iteration each.
fn paired_sync(iters: u64, mut ours: impl FnMut(), mut floor: impl FnMut()) -> Duration {
    let (mut ours_total, mut floor_total) = (Duration::ZERO, Duration::ZERO);
    let time = |run: &mut dyn FnMut()| {
        let start = Instant::now();
        run();
        start.elapsed()
    };
    for i in 0..iters * u64::from(PAIRS) {
        if i % 2 == 0 {
            ours_total += time(&mut ours);
            floor_total += time(&mut floor);
        } else {
            floor_total += time(&mut floor);
            ours_total += time(&mut ours);
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
    let raw = floor_http();
    let ids = [10001i64, 10002];
    let body = serde_json::to_vec(&ids).unwrap();
    let signer = FloorSigner::new();

    // The raw client's two requests, URL formatting and signing included, per request (as
    // the typed client does).
    let raw_list = |base: &str| {
        let target = (base, "/account/stp_groups");
        raw_request(&raw, &signer, reqwest::Method::GET, target, None)
    };
    let raw_add = |base: &str| {
        let target = (base, "/account/stp_groups/7/users");
        raw_request(&raw, &signer, reqwest::Method::POST, target, Some(&body))
    };

    // Guard: both clients send the same request, byte for byte (SIGN included), or the
    // comparison means nothing.
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
    // What reqwest's per-request timeout timer costs on its own: the floor (with the
    // client's default timeout) against the same client without a timeout, paired.
    let untimed_raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .unwrap();
    group.bench_function("timeout_timer/list_groups", |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let (untimed_raw, raw_list, base, signer) = (&untimed_raw, &raw_list, &base, &signer);
            async move {
                paired(
                    iters,
                    || async {
                        let groups = raw_list(base).send().await.unwrap().json::<Vec<StpGroup>>();
                        black_box(groups.await.unwrap());
                    },
                    || async {
                        let target = (base.as_str(), "/account/stp_groups");
                        let request =
                            raw_request(untimed_raw, signer, reqwest::Method::GET, target, None);
                        let groups = request.send().await.unwrap().json::<Vec<StpGroup>>();
                        black_box(groups.await.unwrap());
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

criterion_group!(
    benches,
    sign,
    build,
    loopback,
    loopback_multi_thread,
    emulator
);
criterion_main!(benches);
