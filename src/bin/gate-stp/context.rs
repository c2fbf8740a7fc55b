//! What every command runs with (`run(ctx, args)`): the options given before the command,
//! merged once into the command's own (`cli.rs`), and the one factory of clients, from
//! those options or from a desired-state file's own profile.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use gate_stp::Client;

use crate::{
    as_code,
    failure::Failure,
    output::Output,
    settings::{ClientArgs, LeadingOptions, Takes, TypedAfter},
};

/// What a command's arguments tell the dispatch, implemented beside each command's `Args`.
pub(crate) trait Invocation {
    /// The command's name, as typed.
    const NAME: &'static str;

    /// Where the options it shares with the line before it go (by default none: each
    /// option given before it is refused).
    fn takes(&mut self) -> Takes<'_> {
        Takes::default()
    }

    /// The options it refuses with a reason of its own, `(flag, reason)`: before the
    /// command as after it (`cli.rs`), and never listed in its help.
    const REFUSES: &'static [(&'static str, &'static str)] = &[];

    /// Its client options, for a command that calls the API.
    fn client_options(&self) -> Option<&ClientArgs> {
        None
    }

    /// Whether it prints JSON for programs.
    fn json(&self) -> bool {
        false
    }
}

/// The [`Invocation`] of a command that calls the API and can print JSON, for its `Args`
/// with a `client` field (the client options) and an `output` field (`--json`): six
/// commands say it alike, `api_invocation!("groups");` beside their `Args`.
macro_rules! api_invocation {
    ($name:literal) => {
        impl $crate::context::Invocation for Args {
            const NAME: &'static str = $name;

            fn takes(&mut self) -> $crate::settings::Takes<'_> {
                $crate::settings::Takes::client(&mut self.client).json(&mut self.output.json)
            }

            fn client_options(&self) -> Option<&$crate::settings::ClientArgs> {
                Some(&self.client)
            }

            fn json(&self) -> bool {
                self.output.json
            }
        }
    };
}
pub(crate) use api_invocation;

/// An account as the clients of STP groups as code are shared by: base URL and API key.
type Account = (Option<String>, Option<String>);

/// The command context: its client options (for the commands that call the API), its
/// output mode and the clients built so far.
#[derive(Debug)]
pub(crate) struct Context {
    client: Option<ClientArgs>,
    json: bool,
    definition: fn() -> clap::Command,
    /// The clients of STP groups as code by account: files of one account share one client,
    /// hence one pacer on the account's rate limits (never two pacers on one key).
    accounts: Mutex<HashMap<Account, Client>>,
}

impl Context {
    /// Merges the options given before the command into its `args` (refusing one it does
    /// not take) and makes the context it runs with; `definition` is the whole command
    /// line's (for `completions` and `man`).
    pub(crate) fn prepare<A: Invocation>(
        leading: LeadingOptions,
        typed_after: TypedAfter,
        mut args: A,
        definition: fn() -> clap::Command,
    ) -> Result<(Self, A), Failure> {
        leading.merge(A::NAME, A::REFUSES, args.takes(), typed_after)?;
        let ctx = Self {
            client: args.client_options().cloned(),
            json: args.json(),
            definition,
            accounts: Mutex::default(),
        };
        Ok((ctx, args))
    }

    /// The printer `--json` chose.
    pub(crate) fn output(&self) -> Output {
        Output::new(self.json)
    }

    /// The whole command-line definition, as clap sees it.
    pub(crate) fn definition(&self) -> clap::Command {
        (self.definition)()
    }

    fn client_args(&self) -> Result<&ClientArgs, Failure> {
        // Only a command that takes client options asks for a client (cli.rs).
        self.client
            .as_ref()
            .ok_or_else(|| Failure::usage("this command takes no client options"))
    }

    /// The client of a command that makes one call (`groups`, `users`, `time`): the client
    /// options' settings, Gate's answers as they come.
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let args = self.client_args()?;
        Ok(args.builder(&args.resolve(None)?)?.build()?)
    }

    /// The client of STP groups as code for a file that names `file_profile` (else for the
    /// client options): paced on Gate's rate-limit headers, idempotent writes retried
    /// ([`as_code::client`]). One per account: the files of one account share it.
    pub(crate) fn as_code_client(&self, file_profile: Option<&str>) -> Result<Client, Failure> {
        let args = self.client_args()?;
        // Held while the settings are resolved: files planned side by side resolve one after
        // the other, so two files of one account never build two clients (two pacers).
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let settings = args.resolve(file_profile)?;
        let account = (settings.base_url.clone(), settings.key.clone());
        if let Some(client) = accounts.get(&account) {
            return Ok(client.clone());
        }
        let client = as_code::client(args.builder(&settings)?)?;
        accounts.insert(account, client.clone());
        Ok(client)
    }
}
