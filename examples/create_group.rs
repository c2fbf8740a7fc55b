//! `createSTPGroup` against the embedded emulator.
//!
//! `cargo run --features mock --example create_group`

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
    let group = client.create_group("example desk").await?;
    println!("created {:?} (id {:?})", group.name, group.id);
    emulator.shutdown().await;
    Ok(())
}
