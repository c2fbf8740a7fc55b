//! Load with nothing lost: many concurrent tasks create groups and add/remove users through
//! the real signed client against the emulator; afterwards every group's membership must
//! equal what the successful responses imply, with zero unexpected errors.
//!
//! `cargo run --release --features mock --example load -- [TASKS] [ROUNDS]`
//! (defaults 64 and 200; CI runs small versions in tests/suite/emulator_rules.rs).

use std::time::{Duration, Instant};

use gate_stp::{
    Client, Credentials, RetryPolicy,
    mock::{Emulator, EmulatorConfig, World, demo},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let tasks = args.next().transpose()?.unwrap_or(64);
    let rounds = args.next().transpose()?.unwrap_or(200);
    let emulator = Emulator::start(
        World::demo(),
        EmulatorConfig::default().without_rate_limit(),
    )
    .await?;
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET)?)
        .retry_policy(RetryPolicy::none())
        .build()?;
    let users = [demo::MAIN_USER, demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY];

    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(rounds * 2 + 1);
                let timed = Instant::now();
                let stp_id = client
                    .create_group(format!("load-{task}"))
                    .await?
                    .id
                    .unwrap_or_default();
                latencies.push(timed.elapsed());
                // The task owns its group: what it last did decides each user's state.
                let mut expected = std::collections::BTreeSet::new();
                for round in 0..rounds {
                    let user = users[round % users.len()];
                    let timed = Instant::now();
                    if round % 2 == 0 {
                        client.add_users(stp_id, &[user]).await?;
                        expected.insert(user);
                    } else {
                        client.remove_users(stp_id, &[user]).await?;
                        expected.remove(&user);
                    }
                    latencies.push(timed.elapsed());
                }
                Ok::<_, gate_stp::Error>((stp_id, expected, latencies))
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut mismatches = 0;
    let mut groups = 0;
    for handle in handles {
        let (stp_id, expected, mut times) = handle.await??;
        groups += 1;
        let actual: Vec<i64> = emulator.members(stp_id).unwrap_or_default();
        if actual != expected.into_iter().collect::<Vec<_>>() {
            mismatches += 1;
        }
        latencies.append(&mut times);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "{tasks} tasks x {rounds} rounds: {} requests in {elapsed:.2?} = {:.0} req/s; p50 {:?}, p99 {:?}; {groups} groups, {mismatches} membership mismatches, 0 unexpected errors",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pick(0.5),
        pick(0.99),
    );
    emulator.shutdown().await;
    if mismatches > 0 {
        return Err("membership does not match the successful responses".into());
    }
    Ok(())
}
