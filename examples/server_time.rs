//! `GET /spot/time` (public) and a clock sync against the embedded emulator.
//!
//! `cargo run --features mock --example server_time`

use gate_stp::{
    Client, Credentials,
    mock::{Emulator, EmulatorConfig, World, demo},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(World::demo(), EmulatorConfig::default()).await?;
    let client = Client::builder()
        .base_url(emulator.base_url())
        .credentials(Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET)?)
        .build()?;
    let time = client.server_time().await?;
    println!("Gate's clock: {:?} ms", time.server_time);
    let sync = client.sync_clock().await?;
    println!(
        "offset {} ms, round trip {:?}",
        sync.offset_ms, sync.round_trip
    );
    emulator.shutdown().await;
    Ok(())
}
