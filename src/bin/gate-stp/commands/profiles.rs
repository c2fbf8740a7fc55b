//! `gate-stp profiles`: the profiles of the config file, secrets described, never shown.

use std::path::Path;

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::{cell, outln, print_table},
    settings::{CONFIG_ENV, config_path, key_prefix, load},
};

/// `gate-stp profiles` takes no options of its own.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

impl Invocation for Args {
    const NAME: &'static str = "profiles";
}

/// One row per profile: name, base URL, key prefix, where the secret comes from.
pub(crate) async fn run(_ctx: &Context, _args: Args) -> Result<(), Failure> {
    let path = config_path();
    let config = load(path.as_deref(), false)?;
    match &path {
        Some(path) => outln!("config file: {}", cell_path(path)),
        None => outln!("config file: none (no home directory; set {})", CONFIG_ENV),
    }
    let rows: Vec<Vec<String>> = config
        .profiles
        .iter()
        .map(|(name, profile)| {
            vec![
                cell(name),
                profile.base_url.as_deref().map_or("-".into(), cell),
                profile
                    .key
                    .as_deref()
                    .map_or("-".into(), |k| cell(&key_prefix(k))),
                cell(&profile.describe_secret(name)),
            ]
        })
        .collect();
    print_table(&["PROFILE", "BASE URL", "KEY", "SECRET"], &rows, "profiles");
    Ok(())
}

fn cell_path(path: &Path) -> String {
    gate_stp::text::escape_control(&path.display().to_string()).into_owned()
}
