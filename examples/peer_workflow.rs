//! The five-operation STP workflow through this crate's client, run N times in sequence
//! against a Gate STP emulator: our half of the peer comparison in `benches/peer/`.
//! Prints one JSON line.
//!
//! `cargo run --release --features mock --example peer_workflow -- http://127.0.0.1:18080/api/v4 200`
//!
//! Each round: create a group, find it by name, add a user, list the members, remove the
//! user. Every answer is checked, so a broken run cannot report a speed. One request at a
//! time on a current-thread runtime, like the Python SDK's blocking calls.

use std::time::Instant;

use gate_stp::{Client, Credentials, mock::demo};

const REQUESTS_PER_ROUND: usize = 5;

async fn workflow(client: &Client, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let group = client.create_group(name).await?;
    let id = group.id.ok_or("created group has no id")?;
    let found = client.list_groups().name(name).await?;
    check(found.iter().map(|g| g.id).eq([Some(id)]), "list_groups")?;
    let added = client.add_users(id, &[demo::SUB_USER]).await?;
    check(
        added.iter().any(|u| u.user_id == Some(demo::SUB_USER)),
        "add_users",
    )?;
    let members = client.list_users(id).await?;
    check(
        members.iter().map(|u| u.user_id).eq([Some(demo::SUB_USER)]),
        "list_users",
    )?;
    let left = client.remove_users(id, &[demo::SUB_USER]).await?;
    check(
        left.iter().all(|u| u.user_id != Some(demo::SUB_USER)),
        "remove_users",
    )?;
    Ok(())
}

fn check(ok: bool, operation: &str) -> Result<(), String> {
    ok.then_some(())
        .ok_or_else(|| format!("{operation}: unexpected answer"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .ok_or("usage: peer_workflow BASE_URL ROUNDS [PREFIX]")?;
    let rounds: usize = args.next().ok_or("missing ROUNDS")?.parse()?;
    let prefix = args.next().unwrap_or_else(|| "rs".to_owned());
    let client = Client::builder()
        .base_url(base)
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET)?)
        .build()?;
    let started = Instant::now();
    for round in 0..rounds {
        workflow(&client, &format!("{prefix}-{round}")).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = rounds * REQUESTS_PER_ROUND;
    println!(
        "{}",
        serde_json::json!({
            "impl": concat!("gate-stp ", env!("CARGO_PKG_VERSION"), " (Rust)"),
            "rounds": rounds,
            "requests": requests,
            "seconds": (seconds * 1e4).round() / 1e4,
            "req_per_s": (requests as f64 / seconds * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
