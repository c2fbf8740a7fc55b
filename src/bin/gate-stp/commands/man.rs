//! `gate-stp man`: the man page (roff), or one page per command into a directory.

use std::{io, path::PathBuf};

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    output::write_stdout_bytes,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to write gate-stp.1 and one page per subcommand into.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Invocation for Args {
    const NAME: &'static str = "man";
}

/// The page of the whole command-line definition on stdout, or every page into `--out`.
pub(crate) async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let cli = ctx.definition();
    match args.out {
        Some(dir) => clap_mangen::generate_to(cli, &dir).map_err(|e| {
            Failure::usage(format!(
                "cannot write man pages into {}: {e}",
                dir.display()
            ))
        }),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cli)
                .render(&mut page)
                .map_err(|e: io::Error| Failure::service(format!("cannot render: {e}")))?;
            write_stdout_bytes(&page);
            Ok(())
        }
    }
}
