//! `gate-stp mcp`: an MCP server for AI agents, over stdio or (`--http`) Streamable HTTP.
//! Agents read freely (account, groups, members, export, plan) and change STP groups only
//! by applying a plan a server of this operator computed, named by its digest, and only
//! when the operator started the server with `--allow-apply`.
//!
//! - `framing`: the stdio line transport, which answers malformed lines as JSON-RPC 2.0 says
//!   (rmcp 3.11 drops some and answers others without an id); `http`: the HTTP server and
//!   its guard (token, Origin, Host, body size, calls in flight).
//! - This file: the command, the server and its dispatch of a tool call; the tools
//!   themselves are in `reads` (account, list_groups, list_members, export) and `change`
//!   (plan, apply).
//! - `tools`: names, argument and result types, schemas (JSON Schema 2020-12) and hints;
//!   problems with arguments are tool errors the model reads (`errors`).
//! - `store`: plans by digest, on disk per key for `gate-stp mcp` (any process of the
//!   operator applies them, once), in memory for the demo; `seal`: the sealed request
//!   state of the 2026-07-28 confirmation; `consent`: the question the user is asked, and
//!   how (by protocol revision).
//! - `paging`: the bounds of every answer.
//!
//! stdout carries only protocol messages; logs go to stderr through the CLI's tracing
//! subscriber. Text content for the model is escaped with `gate_stp::text` (line by line,
//! and the JSON block with `\u` escapes); `structuredContent` keeps the exact values.

mod change;
mod consent;
mod errors;
mod framing;
mod http;
mod paging;
mod reads;
mod seal;
mod store;
mod tools;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use clap::Args;
use gate_stp::{
    Client,
    desired::{self, DEFAULT_MAX_CREATES, DEFAULT_MAX_REMOVALS},
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, Implementation, InputRequiredResult, JsonObject, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    context::{Context, Invocation},
    failure::Failure,
    settings::{ClientArgs, Takes},
};
use consent::{Asker, asker_of};
use errors::ToolError;
use store::{DEFAULT_PLAN_TTL_MINUTES, DigestStore, DiskStore, MAX_STORED_PLANS, Plans};
use tools::APPLY;

/// `gate-stp mcp [--allow-apply] [--max-removals N]` and the client options (`--json`
/// refused: the protocol is JSON already).
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    /// Offer the `apply` tool (off by default: without it agents can read and plan, and
    /// nothing they do changes the live groups). Give it in the client's configuration
    /// only for an operator who agrees that the agent applies reviewed plans.
    #[arg(long)]
    allow_apply: bool,
    /// `apply` refuses, before sending anything, a plan that removes more members than this.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_REMOVALS
    )]
    max_removals: usize,
    /// `apply` refuses, before sending anything, a plan that creates more groups than this
    /// (Gate has no call that deletes a group).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_CREATES
    )]
    max_creates: usize,
    /// Where plans are kept until applied, so that any `gate-stp mcp` of this operator
    /// with this key can apply a plan another one made (clients that start a server per
    /// call). Default: the platform's state folder (`$XDG_STATE_HOME` or
    /// `~/.local/state`, `~/Library/Application Support`, `%LOCALAPPDATA%`), then
    /// `gate-stp/mcp-plans`; one owner-only subfolder per key. Deleting it forgets every
    /// plan.
    #[arg(long, value_name = "DIR", env = "GATE_STP_PLANS_DIR")]
    plans_dir: Option<std::path::PathBuf>,
    /// Minutes a plan can be applied after it was made (1 to 1440); then plan again.
    #[arg(
        long,
        value_name = "MINUTES",
        default_value_t = DEFAULT_PLAN_TTL_MINUTES,
        value_parser = clap::value_parser!(u64).range(1..=1440)
    )]
    plan_ttl: u64,
    /// Serve MCP over Streamable HTTP at ADDR (a loopback address, e.g. 127.0.0.1:8765;
    /// path /mcp) instead of stdio, for agent runtimes that cannot start a process. Every
    /// request needs the bearer token of --http-token-file or GATE_STP_MCP_TOKEN.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// The file holding the bearer token for --http (at least 32 characters); without it,
    /// the variable GATE_STP_MCP_TOKEN. Never a flag value.
    #[arg(long, value_name = "FILE", requires = "http")]
    http_token_file: Option<std::path::PathBuf>,
    /// Browser origins allowed to call --http, separated by commas (e.g.
    /// http://localhost:3000). Requests with any other Origin header are refused; clients
    /// that send none pass.
    #[arg(long = "http-allow-origin", value_name = "ORIGINS", requires = "http")]
    http_allow_origins: Option<String>,
    /// Calls over --http handled at once; more are answered 429.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    http_max_concurrent: u16,
    // Last: the client options' help heading applies to what follows them.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

impl Invocation for McpArgs {
    const NAME: &'static str = "mcp";

    const REFUSES: &'static [(&'static str, &'static str)] = &[(
        "--json",
        "`mcp` always answers in MCP's JSON-RPC on stdout: --json does not apply",
    )];

    fn takes(&mut self) -> Takes<'_> {
        Takes::client(&mut self.client)
    }

    fn client_options(&self) -> Option<&ClientArgs> {
        Some(&self.client)
    }
}

/// Serves MCP on stdin/stdout (or Streamable HTTP with `--http`) until the client closes
/// the connection.
pub(crate) async fn run(ctx: &Context, args: McpArgs) -> Result<(), Failure> {
    let client = ctx.as_code_client(None)?;
    if client.credentials().is_none() {
        // As an empty key is refused: a server without a key would fail every call.
        return Err(Failure::usage(
            "configuration: no API key and secret: `gate-stp mcp` signs every request; set \
             GATE_API_KEY and GATE_API_SECRET (in the MCP client's `env`, beside `args`), or \
             give --profile with a profile of the config file that has both",
        ));
    }
    let root = match args.plans_dir {
        Some(dir) => dir,
        None => dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| {
                Failure::usage(
                    "mcp: this platform has no state folder for kept plans; give --plans-dir",
                )
            })?
            .join("gate-stp")
            .join("mcp-plans"),
    };
    let key = client
        .credentials()
        .map_or("", |credentials| credentials.key());
    let store = DiskStore::open(
        &root,
        &store::scope(client.base_url(), key),
        std::time::Duration::from_secs(args.plan_ttl * 60),
    )
    .map_err(|error| Failure::usage(format!("mcp: the folder of kept plans: {error}")))?;
    tracing::info!(plans = %store.dir().display(), "mcp: plans are kept here");
    let sealer = seal::Sealer::in_dir(store.dir())
        .map_err(|error| Failure::usage(format!("mcp: the folder of kept plans: {error}")))?;
    let server = StpServer::on_disk(
        client,
        ServerSettings {
            allow_apply: args.allow_apply,
            max_removals: args.max_removals,
            max_creates: args.max_creates,
            plan_ttl_minutes: args.plan_ttl,
        },
        store,
        sealer,
    );
    tracing::info!(
        allow_apply = args.allow_apply,
        max_removals = args.max_removals,
        max_creates = args.max_creates,
        "gate-stp mcp: serving on stdio"
    );
    if let Some(addr) = args.http {
        let options = http::HttpOptions {
            addr: http::loopback(addr)?,
            token: http::token(args.http_token_file.as_deref())?,
            allowed_origins: args
                .http_allow_origins
                .iter()
                .flat_map(|origins| origins.split(','))
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(str::to_owned)
                .collect(),
            max_concurrent: usize::from(args.http_max_concurrent),
        };
        return http::serve(server, options).await;
    }
    let running = server
        .serve(framing::LineTransport::new(
            tokio::io::stdin(),
            tokio::io::stdout(),
        ))
        .await
        .map_err(|e| Failure::service(format!("mcp: the session did not start: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Failure::service(format!("mcp: the session failed: {e}")))?;
    Ok(())
}

/// What an apply call comes to.
enum Applied {
    /// Sent (or refused: that is the error).
    Done(Answer),
    /// The user must be asked first (revision 2026-07-28).
    AskFirst(InputRequiredResult),
}

/// What the operator decided when starting the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerSettings {
    /// Offer `apply`.
    pub(crate) allow_apply: bool,
    /// Limit of removals per apply.
    pub(crate) max_removals: usize,
    /// Limit of groups created per apply.
    pub(crate) max_creates: usize,
    /// How long a plan can be applied after it was made, in minutes.
    pub(crate) plan_ttl_minutes: u64,
}

/// The MCP server: a Gate client, the operator's settings and the plans computed so far.
#[derive(Clone)]
pub(crate) struct StpServer {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: ServerSettings,
    plans: Plans,
    /// Seals apply's request state (revision 2026-07-28).
    sealer: seal::Sealer,
    /// One apply at a time: a second apply reads the live state only after the first has
    /// finished, so it sees the first's changes and is refused as stale if they touch it.
    applying: tokio::sync::Mutex<()>,
}

/// A tool's answer: text for the model and the exact values.
struct Answer {
    text: String,
    structured: serde_json::Value,
}

impl Answer {
    fn new(text: String, value: &impl Serialize) -> Result<Self, ToolError> {
        let structured = serde_json::to_value(value)
            .map_err(|e| ToolError::new(format!("cannot encode the result: {e}")))?;
        Ok(Self { text, structured })
    }

    /// The text for the model (its first line a one-line summary), then the structured
    /// content serialized as JSON in a second text block, for clients that do not read
    /// `structuredContent` (the specification's advice). Both escaped: the text line by
    /// line, the JSON with `\u` escapes that decode to the exact values.
    fn into_result(self) -> CallToolResult {
        let json = serde_json::to_string(&self.structured).unwrap_or_default();
        let mut result = CallToolResult::success(vec![
            ContentBlock::text(safe_text(&self.text)),
            ContentBlock::text(gate_stp::text::escape_json_controls(&json).into_owned()),
        ]);
        result.structured_content = Some(self.structured);
        result
    }
}

/// `text` with control characters escaped line by line: the lines stay lines (a plan and
/// a document are read as such), and nothing else reaches the model raw.
pub(crate) fn safe_text(text: &str) -> String {
    text.split('\n')
        .map(gate_stp::text::escape_control)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The arguments as `T`, checked, or a tool error naming the argument and what it takes:
/// the model reads tool errors (SEP-1303), not protocol errors. Missing `arguments` are
/// an empty object.
fn arguments<T: DeserializeOwned + tools::Check>(
    tool: &str,
    arguments: Option<JsonObject>,
) -> Result<T, ToolError> {
    let invalid = |why: &str| {
        ToolError::new(format!(
            "invalid arguments for {tool}: {}; fix them (the tool's inputSchema says what each takes) and call {tool} again",
            gate_stp::text::truncate_chars(why, 300)
        ))
    };
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    let parsed: T = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            invalid(&error.inner().to_string())
        } else {
            invalid(&format!("`{path}`: {}", error.inner()))
        }
    })?;
    parsed.check().map_err(|why| invalid(&why))?;
    Ok(parsed)
}

/// The protocol error for a tool this server does not offer.
fn not_offered(name: &str) -> ErrorData {
    let message = if name == APPLY {
        "apply is not enabled on this server: the operator must start `gate-stp mcp \
         --allow-apply`; until then use plan and let a person apply the document"
            .to_owned()
    } else {
        format!(
            "unknown tool {}; call tools/list",
            desired::quoted(&gate_stp::text::truncate_chars(name, 64))
        )
    };
    ErrorData::invalid_params(message, None)
}

impl StpServer {
    /// A server keeping its plans in memory (the demo, tests).
    pub(crate) fn new(client: Client, settings: ServerSettings) -> Self {
        Self::with_plans(
            client,
            settings,
            Plans::Memory(Mutex::new(DigestStore::new(MAX_STORED_PLANS))),
            seal::Sealer::random(),
        )
    }

    /// A server keeping its plans in `store`.
    fn on_disk(
        client: Client,
        settings: ServerSettings,
        store: DiskStore,
        sealer: seal::Sealer,
    ) -> Self {
        Self::with_plans(client, settings, Plans::Disk(store), sealer)
    }

    fn with_plans(
        client: Client,
        settings: ServerSettings,
        plans: Plans,
        sealer: seal::Sealer,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                settings,
                plans,
                sealer,
                applying: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// One tool call: the gate (offered tools only), the arguments, the tool. `asker` says
    /// how the client's user can be asked to confirm an apply, if at all.
    pub(crate) async fn dispatch(
        &self,
        name: &str,
        args: Option<JsonObject>,
        asker: Asker<'_>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !tools::offered(name, self.inner.settings.allow_apply) {
            return Err(not_offered(name));
        }
        tracing::debug!(tool = name, "tool call");
        Ok(match self.run_tool(name, args, asker).await {
            Ok(Applied::AskFirst(required)) => CallToolResponse::InputRequired(required),
            Ok(Applied::Done(answer)) => CallToolResponse::Complete(answer.into_result()),
            Err(error) => CallToolResponse::Complete(error.into_result()),
        })
    }

    /// The tool `name` (one [`tools::offered`] let through) with its arguments checked.
    async fn run_tool(
        &self,
        name: &str,
        args: Option<JsonObject>,
        asker: Asker<'_>,
    ) -> Result<Applied, ToolError> {
        let answer = match name {
            tools::ACCOUNT => {
                arguments::<tools::NoArgs>(name, args)?;
                self.account().await?
            }
            tools::LIST_GROUPS => self.list_groups(arguments(name, args)?).await?,
            tools::LIST_MEMBERS => self.list_members(&arguments(name, args)?).await?,
            tools::EXPORT => self.export(&arguments(name, args)?).await?,
            tools::PLAN => {
                let args: tools::PlanArgs = arguments(name, args)?;
                self.plan(args.document, args.format).await?
            }
            tools::APPLY => {
                let args: tools::ApplyArgs = arguments(name, args)?;
                return self.apply(&args.digest, asker).await;
            }
            // Not reached: `dispatch` answers a tool it does not offer first.
            _ => return Err(ToolError::new(not_offered(name).message.into_owned())),
        };
        Ok(Applied::Done(answer))
    }
}

impl ServerHandler for StpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gate-stp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Gate STP (self-trade prevention) groups. Read with account, list_groups, \
                 list_members and export. To change groups: edit export's document, call \
                 plan, show the plan to the user, and (if this server offers apply) apply \
                 its digest. There is no other way to change a group.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::listed(
            self.inner.settings.allow_apply,
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut request = request;
        let asker = asker_of(&context, &mut request);
        self.dispatch(&request.name, request.arguments, asker).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::listed(self.inner.settings.allow_apply)
            .into_iter()
            .find(|tool| tool.name == name)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(errors::unknown_method(&request.method))
    }
}
