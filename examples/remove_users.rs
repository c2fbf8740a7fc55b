//! `deleteSTPGroupUsers`, several ids in one request against the embedded emulator.
//!
//! `cargo run --features mock --example remove_users`

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
    client
        .add_users(stp_id, &[demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY])
        .await?;
    let members = client
        .remove_users(stp_id, &[demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY])
        .client_request_id("example-remove")
        .await?;
    println!(
        "members left: {}; echoed id {:?}",
        members.len(),
        members.meta().client_request_id
    );
    emulator.shutdown().await;
    Ok(())
}
