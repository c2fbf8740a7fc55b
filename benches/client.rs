//! Signing and client overhead, each next to its floor.
//!
//! - `sign/hook/N` signs a built `reqwest::Request` with an N-byte body (what the client
//!   does per request); `sign/primitive/N` is the floor: SHA-512 of the same body plus
//!   HMAC-SHA512 of a message as long as the signature string.
//! - `loopback/gate_stp/X` sends one request through the typed client to an in-process
//!   server on 127.0.0.1 (keep-alive); `loopback/raw_reqwest/X` sends the same bytes,
//!   unsigned, with a bare `reqwest::Client` and decodes the same response into the same
//!   types.
//! - `emulator/concurrent_64` is the emulator's throughput with 64 concurrent clients.
//!
//! Quick run (well under a minute): `cargo bench --features mock --bench client -- --quick`.

use std::{hint::black_box, net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gate_stp::{
    Client, Credentials, RetryPolicy,
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

fn loopback(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(fixed_server());
    let base = format!("http://{addr}/api/v4");
    let client = Client::builder()
        .base_url(&base)
        .credentials(Credentials::new("bench-key", SECRET).unwrap())
        .build()
        .unwrap();
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ids = [10001i64, 10002];
    let body = serde_json::to_vec(&ids).unwrap();

    let mut group = c.benchmark_group("loopback");
    group.bench_function("gate_stp/list_groups", |b| {
        b.to_async(&runtime)
            .iter(|| async { client.list_groups().await.unwrap().into_inner() })
    });
    group.bench_function("raw_reqwest/list_groups", |b| {
        b.to_async(&runtime).iter(|| async {
            raw.get(format!("{base}/account/stp_groups"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap()
                .json::<Vec<StpGroup>>()
                .await
                .unwrap()
        })
    });
    group.bench_function("gate_stp/add_users", |b| {
        b.to_async(&runtime)
            .iter(|| async { client.add_users(7, &ids).await.unwrap().into_inner() })
    });
    group.bench_function("raw_reqwest/add_users", |b| {
        b.to_async(&runtime).iter(|| async {
            raw.post(format!("{base}/account/stp_groups/7/users"))
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .json::<Vec<StpGroupUser>>()
                .await
                .unwrap()
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

criterion_group!(benches, sign, loopback, emulator);
criterion_main!(benches);
