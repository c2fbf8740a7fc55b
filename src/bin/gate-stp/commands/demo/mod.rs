//! `gate-stp demo`: the whole workflow through the real signed client, over HTTP, against
//! an in-process emulator with the built-in demo world.

mod as_code;
mod mcp;

use std::time::Duration;

use gate_stp::{
    Client, Credentials, Error, Label,
    mock::{Emulator, EmulatorConfig, World, demo},
};

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::{Output, demo_step as step, outln},
    settings::Takes,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print responses as JSON.
    #[arg(long)]
    json: bool,
    /// Timeout of each request, in seconds (1 to 3600).
    #[arg(long, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

impl Invocation for Args {
    const NAME: &'static str = "demo";

    fn takes(&mut self) -> Takes<'_> {
        Takes {
            json: Some(&mut self.json),
            timeout: Some(&mut self.timeout),
            ..Takes::default()
        }
    }

    fn json(&self) -> bool {
        self.json
    }
}

pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let (out, timeout) = (&ctx.output(), Duration::from_secs(args.timeout));
    let emulator = Emulator::start(World::demo(), EmulatorConfig::default())
        .await
        .map_err(|e| Failure::service(format!("cannot start the emulator: {e}")))?;
    outln!("Gate STP emulator running at {}", emulator.base_url());
    let result = workflow(&emulator.base_url(), out, timeout).await;
    emulator.shutdown().await;
    result
}

async fn workflow(base_url: &str, out: &Output, timeout: Duration) -> Result<(), Failure> {
    let client = |key: &str, secret: &str| -> Result<Client, Failure> {
        Ok(Client::builder()
            .base_url(base_url)
            .credentials(Credentials::new(key, secret)?)
            .timeout(timeout)
            .build()?)
    };
    let main = client(demo::MAIN_KEY, demo::MAIN_SECRET)?;
    let sub = client(demo::SUB_KEY, demo::SUB_SECRET)?;

    step(1, "sync the signing clock with GET /spot/time");
    out.clock(&main.sync_clock().await?);

    step(
        2,
        &format!(
            "main account {} creates the group \"demo-desk\"",
            demo::MAIN_USER
        ),
    );
    let group = main.create_group("demo-desk").await?.into_inner();
    out.group(&group);
    let stp_id = group
        .id
        .ok_or_else(|| Failure::service("the emulator returned a group without id"))?;

    step(
        3,
        "list the groups whose name contains \"DEMO\" (case-insensitive)",
    );
    out.groups(&main.list_groups().name("DEMO").await?);

    let members = [demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY];
    step(
        4,
        &format!("add its sub-accounts {} and {}", members[0], members[1]),
    );
    out.users(&main.add_users(stp_id, &members).await?);

    step(5, "list the members");
    out.users(&main.list_users(stp_id).await?);

    step(6, &format!("remove {}", members[1]));
    out.users(&main.remove_users(stp_id, &members[1..]).await?);

    step(
        7,
        &format!(
            "refused: sub-account {} tries to create a group",
            demo::SUB_USER
        ),
    );
    expect_refusal(sub.create_group("sub-desk").await.map(drop))?;

    step(
        8,
        &format!(
            "refused: adding user {} of another main account ({})",
            demo::OTHER_SUB_USER,
            demo::OTHER_MAIN_USER
        ),
    );
    expect_refusal(
        main.add_users(stp_id, &[demo::OTHER_SUB_USER])
            .await
            .map(drop),
    )?;

    step(9, "the refused request changed nothing: members are still");
    out.users(&main.list_users(stp_id).await?);

    as_code::run(base_url, timeout, 10).await?;
    mcp::run(base_url, timeout, 16).await?;

    outln!();
    outln!("demo finished: every step behaved as Gate documents");
    Ok(())
}

/// The refusals must come back as Gate's FORBIDDEN; anything else fails the demo.
fn expect_refusal(result: Result<(), Error>) -> Result<(), Failure> {
    match result {
        Err(error @ Error::Api(_)) if error.label() == Some(&Label::Forbidden) => {
            outln!("refused as expected: {error}");
            Ok(())
        }
        Err(error) => Err(error.into()),
        Ok(()) => Err(Failure::service(
            "the emulator accepted a request Gate refuses",
        )),
    }
}

#[cfg(test)]
mod tests {
    use gate_stp::{
        Client, Credentials,
        mock::{Emulator, EmulatorConfig, World, demo},
    };

    use super::expect_refusal;

    /// Only Gate's FORBIDDEN is the refusal the demo shows; another error from Gate, or
    /// none, fails the demo.
    #[tokio::test]
    async fn only_forbidden_counts_as_the_expected_refusal() {
        let emulator = Emulator::start(World::demo(), EmulatorConfig::default())
            .await
            .unwrap();
        let client = |key, secret| {
            Client::builder()
                .base_url(emulator.base_url())
                .credentials(Credentials::new(key, secret).unwrap())
                .build()
                .unwrap()
        };
        // A sub-account may not create a group: FORBIDDEN.
        let sub = client(demo::SUB_KEY, demo::SUB_SECRET);
        let forbidden = sub.create_group("sub-desk").await.map(drop);
        assert!(expect_refusal(forbidden).is_ok());
        // A group that does not exist: NOT_FOUND, not the refusal the demo expects.
        let main = client(demo::MAIN_KEY, demo::MAIN_SECRET);
        let invalid = main.list_users(424_242).await.map(drop);
        assert!(
            matches!(invalid, Err(gate_stp::Error::Api(_))),
            "{invalid:?}"
        );
        assert!(expect_refusal(invalid).is_err());
        assert!(expect_refusal(Ok(())).is_err());
        emulator.shutdown().await;
    }
}
