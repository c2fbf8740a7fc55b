//! Sends N requests through one client, for counting instructions per request with
//! callgrind (issue 20, point 5): what the typed client adds to a bare reqwest request,
//! piece by piece, in a count that does not move with the machine's load.
//!
//! ```text
//! cargo build --release --features mock --example per_call
//! valgrind --tool=callgrind --callgrind-out-file=cg.ours target/release/examples/per_call ours list_groups 2000
//! valgrind --tool=callgrind --callgrind-out-file=cg.floor target/release/examples/per_call floor list_groups 2000
//! ```
//!
//! `ours` sends through `gate_stp::Client`, `floor` through the benches' floor (a bare
//! reqwest client with the same timeout, signing from the primitives; the same fixtures as
//! `benches/client.rs`). Both talk to an in-process server with fixed answers on one
//! thread. Run each with two values of N and divide the difference of the totals by the
//! difference of N: setup (building clients, binding the server) cancels out.
//! `sign_100` signs a request with a 100-byte body (`ours`: `gate_stp::sign_request`;
//! `floor`: SHA-512 of the body and HMAC-SHA512 from a keyed state, as `sign/primitive`).
//! `per_call sizes` prints the size of one call's future, ours (boxed by `IntoFuture`) and
//! the floor's: memory written per request, which instruction counts do not show.
//! `callgrind_annotate --inclusive=yes` then shows what each function of our per-call
//! path costs per request (divide by the call counts it prints).

use gate_stp::models::{StpGroup, StpGroupUser};

#[path = "../benches/support/loopback.rs"]
mod loopback;
use loopback::{
    FloorSigner, SECRET, SignFixture, TIMESTAMP, fixed_server, floor_http, gate_client, raw_request,
};

const USAGE: &str = "usage: per_call ours|floor list_groups|add_users|sign_100 N | per_call sizes";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["sizes"] {
        return future_sizes();
    }
    let [client, operation, count] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let count: u32 = count.parse().map_err(|_| USAGE)?;
    if operation == "sign_100" {
        return sign(client, count);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let base = format!("http://{}/api/v4", fixed_server().await);
        match (client.as_str(), operation.as_str()) {
            ("ours", "list_groups") => {
                let client = gate_client(&base);
                for _ in 0..count {
                    std::hint::black_box(client.list_groups().await?);
                }
            }
            ("ours", "add_users") => {
                let client = gate_client(&base);
                for _ in 0..count {
                    std::hint::black_box(client.add_users(7, &[10001, 10002]).await?);
                }
            }
            ("floor", "list_groups") => {
                let (http, signer) = (floor_http(), FloorSigner::new());
                for _ in 0..count {
                    let target = (base.as_str(), "/account/stp_groups");
                    let request = raw_request(&http, &signer, reqwest::Method::GET, target, None);
                    std::hint::black_box(request.send().await?.json::<Vec<StpGroup>>().await?);
                }
            }
            ("floor", "add_users") => {
                let (http, signer) = (floor_http(), FloorSigner::new());
                let body = serde_json::to_vec(&[10001i64, 10002])?;
                for _ in 0..count {
                    let target = (base.as_str(), "/account/stp_groups/7/users");
                    let method = reqwest::Method::POST;
                    let request = raw_request(&http, &signer, method, target, Some(&body));
                    let users = request.send().await?.json::<Vec<StpGroupUser>>().await?;
                    std::hint::black_box(users);
                }
            }
            _ => return Err(USAGE.into()),
        }
        Ok(())
    })
}

/// `sign_100`: the hook on a built request, or the keyed floor, `count` times.
fn sign(client: &str, count: u32) -> Result<(), Box<dyn std::error::Error>> {
    let fixture = SignFixture::new(100);
    match client {
        "ours" => {
            let credentials = gate_stp::Credentials::new("bench-key", SECRET)?;
            let mut request = fixture.request(&reqwest::Client::new());
            for _ in 0..count {
                gate_stp::sign_request(
                    std::hint::black_box(&mut request),
                    &credentials,
                    TIMESTAMP,
                )?;
            }
        }
        "floor" => (0..count).for_each(|_| fixture.primitive()),
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

/// `sizes`: the bytes of one call's future, ours and the floor's, as the runtime holds them.
fn future_sizes() -> Result<(), Box<dyn std::error::Error>> {
    use std::future::IntoFuture;
    let base = "http://127.0.0.1:9/api/v4";
    let client = gate_client(base);
    let ours = client.list_groups().into_future();
    println!("ours  list_groups: {} bytes", std::mem::size_of_val(&*ours));
    let ours = client.add_users(7, &[10001, 10002]).into_future();
    println!("ours  add_users:   {} bytes", std::mem::size_of_val(&*ours));
    let (http, signer) = (floor_http(), FloorSigner::new());
    let floor = async {
        let target = (base, "/account/stp_groups");
        let request = raw_request(&http, &signer, reqwest::Method::GET, target, None);
        request.send().await?.json::<Vec<StpGroup>>().await
    };
    println!("floor list_groups: {} bytes", std::mem::size_of_val(&floor));
    Ok(())
}
