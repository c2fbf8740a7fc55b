//! `listSTPGroupsUsers` against the embedded emulator.
//!
//! `cargo run --features mock --example list_users`

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
    let stp_id = client.create_group("desk").await?.id.unwrap_or_default();
    client.add_users(stp_id, &[demo::SUB_USER]).await?;
    for member in client.list_users(stp_id).await?.iter() {
        println!(
            "user {:?} joined at {:?}",
            member.user_id, member.create_time
        );
    }
    emulator.shutdown().await;
    Ok(())
}
