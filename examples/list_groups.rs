//! `listSTPGroups`, with the name filter against the embedded emulator.
//!
//! `cargo run --features mock --example list_groups`

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
    client.create_group("Alpha desk").await?;
    client.create_group("beta").await?;
    let groups = client.list_groups().name("DESK").await?;
    for group in groups.iter() {
        println!("{:?} {}", group.id, group.name);
    }
    println!("rate limit: {:?}", groups.rate_limit());
    emulator.shutdown().await;
    Ok(())
}
