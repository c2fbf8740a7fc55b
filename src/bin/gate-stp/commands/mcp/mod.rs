//! `gate-stp mcp`: an MCP server for AI agents, over stdio or (`--http`) Streamable HTTP.
//! Agents read freely (account, groups, members, export, plan) and change STP groups only
//! by applying a plan a server of this operator computed, named by its digest, and only
//! when the operator started the server with `--allow-apply`.
//!
//! - `framing`: the stdio line transport, which answers malformed lines as JSON-RPC 2.0 says
//!   (rmcp 3.11 drops some and answers others without an id); `http`: the HTTP server and
//!   its guard (token, Origin, Host, body size, calls in flight).
//! - `tools`: names, argument and result types, schemas (JSON Schema 2020-12) and hints;
//!   problems with arguments are tool errors the model reads (`errors`).
//! - `store`: plans by digest, on disk per key for `gate-stp mcp` (any process of the
//!   operator applies them, once), in memory for the demo; `seal`: the sealed request
//!   state of the 2026-07-28 confirmation; `consent`: the question the user is asked.
//! - `paging`: the bounds of every answer.
//!
//! stdout carries only protocol messages; logs go to stderr through the CLI's tracing
//! subscriber. Text content for the model is escaped with `gate_stp::text` (line by line,
//! and the JSON block with `\u` escapes); `structuredContent` keeps the exact values.

mod consent;
mod errors;
mod framing;
mod http;
mod paging;
mod seal;
mod store;
mod tools;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use clap::Args;
use gate_stp::{
    Client,
    desired::{
        self, ApplyError, ApplyOptions, ApplyReport, DEFAULT_MAX_CREATES, DEFAULT_MAX_REMOVALS,
        DesiredState, Format, Plan, Progress, Proposal, RenderOptions, StpAdmin,
    },
};
use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationSchema, ErrorCode, Implementation, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, JsonObject, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
    },
    schemars::JsonSchema,
    service::{ElicitationError, ElicitationMode, RequestContext},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    as_code,
    context::{Context, Invocation},
    failure::Failure,
    output::plural,
    settings::{ClientArgs, Takes},
};
use errors::ToolError;
use paging::Page;
use store::{DEFAULT_PLAN_TTL_MINUTES, DigestStore, DiskStore, MAX_STORED_PLANS, StoredPlan};
use tools::{
    APPLY, AccountOut, ApplyOut, DocumentFormat, ExportOut, GroupOut, GroupsOut, MemberOut,
    MembersOut, PlanOut, SubAccountOut,
};

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

/// How long `apply` waits for the user's answer; no answer sends nothing. The live state
/// is read again after the answer, so a slow answer cannot apply a stale plan.
const CONFIRMATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The question `apply` asks the client's user, where the client supports it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ConfirmApply {
    /// Apply these changes to the live STP groups?
    confirm: bool,
}

rmcp::elicit_safe!(ConfirmApply);

/// Whether the client can ask its user (it declared form elicitation). A client that
/// cannot is not asked: the operator's `--allow-apply` is then the consent.
fn can_ask(peer: &Peer<RoleServer>) -> bool {
    peer.supported_elicitation_modes()
        .contains(&ElicitationMode::Form)
}

/// Whether the user's answer to the confirmation lets `apply` send: only an explicit yes.
/// A decline, a dismissal, an unreadable or failed answer sends nothing.
fn confirmed(answer: Result<Option<ConfirmApply>, ElicitationError>) -> Result<(), ToolError> {
    match answer {
        Ok(Some(ConfirmApply { confirm: true })) => Ok(()),
        Ok(_) | Err(ElicitationError::UserDeclined | ElicitationError::UserCancelled) => {
            Err(ToolError::new(
                "the user did not confirm the apply; nothing was sent (the digest stays valid: call apply again to ask again)",
            ))
        }
        Err(error) => Err(ToolError::new(format!(
            "the user could not be asked to confirm ({error}); nothing was sent, call apply again"
        ))),
    }
}

/// Sends a reviewed plan through the library's one apply flow, as `gate-stp apply PLAN.json`
/// does: the live state read afresh for the saved plan, the refusals (stale plan, key of
/// another account, removal limit: nothing sent), then the steps, each answer checked.
async fn send_reviewed_plan(
    client: &Client,
    plan: Plan,
    options: ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let checked = Proposal::for_saved(client, plan).await?.check(options)?;
    let mut progress = |event: Progress<'_>| {
        if let Progress::Done { index, total, step } = event {
            tracing::info!("apply: step {} of {total} done: {step}", index + 1);
        }
    };
    checked.send(client, &mut progress).await
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

/// Where the plans are kept: on disk for `gate-stp mcp` (any process of the operator with
/// the key applies them), in memory for the demo's in-process session.
enum Plans {
    Memory(Mutex<DigestStore>),
    Disk(DiskStore),
}

/// The plan store's failure, for the model: the operator's to fix.
fn store_failed(error: store::StoreError) -> ToolError {
    ToolError::new(format!(
        "the server cannot use its folder of kept plans ({error}); the agent cannot fix this: tell the user to ask the operator who runs gate-stp mcp (--plans-dir)"
    ))
}

impl Plans {
    fn memory(&self) -> Option<std::sync::MutexGuard<'_, DigestStore>> {
        match self {
            // The store is consistent after any panic of a holder (each method is one step).
            Plans::Memory(store) => Some(store.lock().unwrap_or_else(PoisonError::into_inner)),
            Plans::Disk(_) => None,
        }
    }

    fn insert(&self, plan: Plan) -> Result<String, ToolError> {
        match self {
            Plans::Disk(store) => store.insert(&plan).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .map(|mut store| store.insert(StoredPlan { plan }))
                .unwrap_or_default()),
        }
    }

    fn get(&self, digest: &str) -> Result<Option<Plan>, ToolError> {
        match self {
            Plans::Disk(store) => store.get(digest).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .and_then(|store| store.get(digest).map(|stored| stored.plan.clone()))),
        }
    }

    fn take(&self, digest: &str) -> Result<Option<Plan>, ToolError> {
        match self {
            Plans::Disk(store) => store.take(digest).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .and_then(|mut store| store.take(digest).map(|stored| stored.plan))),
        }
    }
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
        let answer = match name {
            tools::ACCOUNT => match arguments::<tools::NoArgs>(name, args) {
                Ok(_) => self.account().await,
                Err(error) => Err(error),
            },
            tools::LIST_GROUPS => match arguments::<tools::ListGroupsArgs>(name, args) {
                Ok(args) => {
                    let page = page_of(&args);
                    self.list_groups(args.name, page).await
                }
                Err(error) => Err(error),
            },
            tools::LIST_MEMBERS => match arguments::<tools::ListMembersArgs>(name, args) {
                Ok(args) => self.list_members(args.stp_id, page_of(&args)).await,
                Err(error) => Err(error),
            },
            tools::EXPORT => match arguments::<tools::ExportArgs>(name, args) {
                Ok(args) => self.export(page_of(&args)).await,
                Err(error) => Err(error),
            },
            tools::PLAN => match arguments::<tools::PlanArgs>(name, args) {
                Ok(args) => self.plan(args.document, args.format).await,
                Err(error) => Err(error),
            },
            tools::APPLY => match arguments::<tools::ApplyArgs>(name, args) {
                Ok(args) => match self.apply(&args.digest, asker).await {
                    Ok(Applied::AskFirst(required)) => {
                        return Ok(CallToolResponse::InputRequired(required));
                    }
                    Ok(Applied::Done(answer)) => Ok(answer),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            },
            _ => return Err(not_offered(name)),
        };
        Ok(CallToolResponse::Complete(match answer {
            Ok(answer) => answer.into_result(),
            Err(error) => error.into_result(),
        }))
    }

    async fn account(&self) -> Result<Answer, ToolError> {
        let client = &self.inner.client;
        let main_user_id = client.key_user_id().await.map_err(ToolError::client)?;
        let subs = client.sub_accounts().await.map_err(ToolError::client)?;
        let mut text = if subs.is_empty() {
            format!("Main account {main_user_id}; no sub-accounts.")
        } else {
            format!(
                "Main account {main_user_id}; {}:",
                plural(subs.len(), "sub-account")
            )
        };
        for sub in &subs {
            text.push_str(&format!(
                "\n- {} {}",
                sub.user_id,
                login(sub.login_name.as_deref())
            ));
        }
        let out = AccountOut {
            main_user_id,
            sub_accounts: subs
                .into_iter()
                .map(|sub| SubAccountOut {
                    user_id: sub.user_id,
                    login_name: sub.login_name,
                })
                .collect(),
        };
        Answer::new(text, &out)
    }

    async fn list_groups(&self, name: Option<String>, page: Page) -> Result<Answer, ToolError> {
        let mut request = self.inner.client.list_groups();
        if let Some(name) = &name {
            request = request.name(name.clone());
        }
        let groups = request.await.map_err(ToolError::client)?.into_inner();
        let total = groups.len();
        let groups: Vec<GroupOut> = groups
            .into_iter()
            .map(|group| GroupOut {
                id: group.id,
                name: group.name,
                creator_id: group.creator_id,
                created_at: group.create_time.map(crate::output::iso8601),
            })
            .collect();
        paging::within(tools::LIST_GROUPS, page, total).map_err(ToolError::new)?;
        let (groups, next_cursor) = paging::cut(groups, page);
        let mut text = match (&name, total) {
            (None, 0) => "No STP groups.".to_owned(),
            (Some(name), 0) => format!("No STP group matches {}.", desired::quoted(name)),
            (_, total) if groups.len() == total => format!("{}:", plural(total, "STP group")),
            (_, total) => format!(
                "{} of {}:",
                shown_range(page.offset, groups.len()),
                plural(total, "STP group")
            ),
        };
        for group in &groups {
            text.push_str(&format!(
                "\n- id {} name {} creator {} created {}",
                optional(group.id),
                desired::quoted(&group.name),
                optional(group.creator_id),
                group.created_at.as_deref().unwrap_or("-"),
            ));
        }
        text.push_str(&paging::more_line(
            tools::LIST_GROUPS,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &GroupsOut {
                total,
                groups,
                next_cursor,
            },
        )
    }

    async fn list_members(&self, stp_id: i64, page: Page) -> Result<Answer, ToolError> {
        let client = &self.inner.client;
        let users = client
            .list_users(stp_id)
            .await
            .map_err(ToolError::client)?
            .into_inner();
        // Login names are a courtesy: members are listed even if this read fails.
        let subs = client.sub_accounts().await.unwrap_or_default();
        let login_of = |user_id: Option<i64>| {
            subs.iter()
                .find(|sub| Some(sub.user_id) == user_id)
                .and_then(|sub| sub.login_name.clone())
        };
        let total = users.len();
        let members: Vec<MemberOut> = users
            .into_iter()
            .map(|user| MemberOut {
                user_id: user.user_id,
                login_name: login_of(user.user_id),
                joined_at: user.create_time.map(crate::output::iso8601),
            })
            .collect();
        paging::within(tools::LIST_MEMBERS, page, total).map_err(ToolError::new)?;
        let (members, next_cursor) = paging::cut(members, page);
        let mut text = if total == 0 {
            format!("Group {stp_id} has no members.")
        } else if members.len() == total {
            format!("Group {stp_id}: {}:", plural(total, "member"))
        } else {
            format!(
                "Group {stp_id}: {} of {}:",
                shown_range(page.offset, members.len()),
                plural(total, "member")
            )
        };
        for member in &members {
            text.push_str(&format!(
                "\n- {} {}",
                optional(member.user_id),
                login(member.login_name.as_deref())
            ));
        }
        text.push_str(&paging::more_line(
            tools::LIST_MEMBERS,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &MembersOut {
                stp_id,
                total,
                members,
                next_cursor,
            },
        )
    }

    async fn export(&self, page: Page) -> Result<Answer, ToolError> {
        let live = desired::read_live(&self.inner.client, None)
            .await
            .map_err(ToolError::read)?;
        let mut state = DesiredState::from_live(&live);
        let total = state.groups.len();
        paging::within(tools::EXPORT, page, total).map_err(ToolError::new)?;
        let (groups, next_cursor) = paging::cut(std::mem::take(&mut state.groups), page);
        state.groups = groups;
        let document = state.to_toml_string();
        let what = if state.groups.len() == total {
            plural(total, "STP group")
        } else {
            format!(
                "{} of {}",
                shown_range(page.offset, state.groups.len()),
                plural(total, "STP group")
            )
        };
        let mut text = format!(
            "The {what} of main account {} as a desired-state document (TOML): edit it and pass it to plan.\n{document}",
            state.main_user_id
        );
        text.push_str(&paging::more_line(
            tools::EXPORT,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &ExportOut {
                document,
                groups: state.groups.len(),
                total,
                next_cursor,
            },
        )
    }

    async fn plan(
        &self,
        document: serde_json::Value,
        format: DocumentFormat,
    ) -> Result<Answer, ToolError> {
        let desired = desired_from(document, format)?;
        let plan = Proposal::for_desired(&self.inner.client, &desired)
            .await
            .map_err(ToolError::apply)?
            .into_plan();
        let rendered = paging::cut_text(
            &desired::render_plan(&plan, RenderOptions { colour: false }),
            paging::MAX_RENDERED_BYTES,
            "the summary above counts every change",
        );
        let summary = desired::summary(&plan);
        let plan_json = plan.to_json_string();
        let plan_bytes = plan_json.len();
        let structured_plan = if plan_bytes <= paging::MAX_STRUCTURED_PLAN_BYTES {
            Some(
                serde_json::from_str(&plan_json)
                    .map_err(|e| ToolError::new(format!("cannot encode the plan: {e}")))?,
            )
        } else {
            None
        };
        let changes = !plan.is_empty();
        let next = self.next_step_after_plan(&plan);
        let digest = self.inner.plans.insert(plan)?;
        let mut text = format!("{summary}\n\n{rendered}\nDigest: {digest}\n");
        text.push_str(&next);
        let out = PlanOut {
            changes,
            summary,
            rendered,
            plan: structured_plan,
            plan_bytes,
            digest,
        };
        Answer::new(text, &out)
    }

    fn next_step_after_plan(&self, plan: &Plan) -> String {
        let settings = self.inner.settings;
        let (removals, creates) = (plan.removals(), plan.creates());
        if plan.is_empty() {
            "No changes: the live groups already match the document.".to_owned()
        } else if removals > settings.max_removals {
            format!(
                "This plan removes {}, more than this server's limit of {} (the operator's --max-removals): apply would refuse it. Split the change into smaller documents, or ask the operator.",
                plural(removals, "member"),
                settings.max_removals
            )
        } else if creates > settings.max_creates {
            format!(
                "This plan creates {}, more than this server's limit of {} (the operator's --max-creates; a group can never be deleted): apply would refuse it. Create fewer groups per document, or ask the operator.",
                plural(creates, "group"),
                settings.max_creates
            )
        } else if settings.allow_apply {
            "Show this plan to the user; once they agree, call apply with this digest.".to_owned()
        } else {
            "This server does not apply plans: show the plan to the user, who can apply the document with `gate-stp apply`.".to_owned()
        }
    }

    async fn apply(&self, digest: &str, asker: Asker<'_>) -> Result<Applied, ToolError> {
        let unknown = || {
            ToolError::new(format!(
                "unknown, expired or already applied digest (a plan can be applied once, within {} of planning it); call plan again and apply the new digest",
                plural(self.inner.settings.plan_ttl_minutes as usize, "minute")
            ))
        };
        let question = self
            .inner
            .plans
            .get(digest)?
            .map(|plan| consent::question(&plan))
            .ok_or_else(unknown)?;
        match asker {
            Asker::Nobody => {}
            Asker::Session(peer) => {
                let question = safe_text(&question);
                confirmed(
                    peer.elicit_with_timeout::<ConfirmApply>(question, Some(CONFIRMATION_TIMEOUT))
                        .await,
                )?;
            }
            Asker::RoundTrip { responses, state } => match state {
                // The first call: ask, and hand over the sealed state.
                None => {
                    return Ok(Applied::AskFirst(self.ask_first(digest, &question)?));
                }
                // The call again with the answer: only under a state this server sealed
                // for this digest.
                Some(state) => {
                    self.inner
                        .sealer
                        .open(&state, digest, store::now_secs())
                        .map_err(|why| {
                            ToolError::new(format!(
                                "{why}; nothing was sent; call apply again without a request state to be asked again"
                            ))
                        })?;
                    confirmed(answer_of(responses))?;
                }
            },
        }
        let _one_at_a_time = self.inner.applying.lock().await;
        // Taken only now: a decline above leaves the digest usable, and of two concurrent
        // applies of one digest only the first gets past here.
        // (In another process too: the disk store's claim is a rename only one wins.)
        let plan = self.inner.plans.take(digest)?.ok_or_else(unknown)?;
        let options = ApplyOptions::default()
            .with_max_removals(self.inner.settings.max_removals)
            .with_max_creates(self.inner.settings.max_creates);
        let report = send_reviewed_plan(&self.inner.client, plan.clone(), options)
            .await
            .map_err(ToolError::apply)?;
        let mut text = format!("Applied: {}.", as_code::applied_counts(&plan, &report));
        for name in &report.adopted {
            text.push_str(&format!("\nNote: {}.", as_code::adoption_note(name)));
        }
        text.push_str("\nCall plan again to confirm: it should show no changes.");
        let out = ApplyOut {
            steps_done: report.steps_done,
            created: report.created,
            adopted: report.adopted,
        };
        Answer::new(text, &out).map(Applied::Done)
    }

    /// Apply's first answer in revision 2026-07-28: the question as an elicitation for the
    /// client to put to its user, and a state sealed for `digest`.
    fn ask_first(&self, digest: &str, question: &str) -> Result<InputRequiredResult, ToolError> {
        let schema = ElicitationSchema::from_type::<ConfirmApply>()
            .map_err(|e| ToolError::new(format!("cannot write the question's schema: {e}")))?;
        let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: safe_text(question),
            requested_schema: schema,
        });
        let requests =
            InputRequests::from([(CONFIRM_KEY.to_owned(), InputRequest::Elicitation(request))]);
        let state = self.inner.sealer.seal(digest, store::now_secs());
        Ok(InputRequiredResult::new(Some(requests), Some(state)))
    }
}

/// The key of apply's question among the `inputRequests` (and of its answer).
const CONFIRM_KEY: &str = "confirm";

/// How an apply can ask the client's user to confirm.
pub(crate) enum Asker<'a> {
    /// It cannot (no elicitation; or a test): the operator's `--allow-apply` is the consent.
    Nobody,
    /// Revision 2025-11-25 and earlier: an elicitation request during the call.
    Session(&'a Peer<RoleServer>),
    /// Revision 2026-07-28: an `input_required` result, then the call again with the
    /// answer in `responses` and the sealed `state`.
    RoundTrip {
        responses: Option<InputResponses>,
        state: Option<String>,
    },
}

/// What an apply call comes to.
enum Applied {
    /// Sent (or refused: that is the error).
    Done(Answer),
    /// The user must be asked first (revision 2026-07-28).
    AskFirst(InputRequiredResult),
}

/// The user's answer among a round trip's `responses`, read as `peer.elicit` reads one.
fn answer_of(responses: Option<InputResponses>) -> Result<Option<ConfirmApply>, ElicitationError> {
    let answer = responses
        .and_then(|mut responses| responses.remove(CONFIRM_KEY))
        .ok_or(ElicitationError::NoContent)?;
    let answer: ElicitResult =
        serde_json::from_value(answer.clone()).map_err(|error| ElicitationError::ParseError {
            error,
            data: answer,
        })?;
    match answer.action {
        ElicitationAction::Accept => {
            let content = answer.content.ok_or(ElicitationError::NoContent)?;
            serde_json::from_value(content.clone())
                .map(Some)
                .map_err(|error| ElicitationError::ParseError {
                    error,
                    data: content,
                })
        }
        ElicitationAction::Decline => Err(ElicitationError::UserDeclined),
        // Cancel, and any answer added later: not a yes.
        _ => Err(ElicitationError::UserCancelled),
    }
}

/// How the client of this call can be asked, by its protocol revision and capabilities.
fn asker_of<'a>(
    context: &'a RequestContext<RoleServer>,
    request: &mut CallToolRequestParams,
) -> Asker<'a> {
    let modern = context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if modern {
        let form = context
            .client_capabilities()
            .and_then(|capabilities| capabilities.elicitation)
            .is_some_and(|elicitation| elicitation.form.is_some() || elicitation.url.is_none());
        if form {
            Asker::RoundTrip {
                responses: request.input_responses.take(),
                state: request.request_state.take(),
            }
        } else {
            Asker::Nobody
        }
    } else if can_ask(&context.peer) {
        Asker::Session(&context.peer)
    } else {
        Asker::Nobody
    }
}

/// The desired state in `document`: a TOML or JSON text (as `format` says), or a JSON
/// object. Either way the library's parser checks it (bounds, names, members), so an
/// object is held to exactly what a file is.
fn desired_from(
    document: serde_json::Value,
    format: DocumentFormat,
) -> Result<DesiredState, ToolError> {
    let refused = |why: &dyn std::fmt::Display| {
        ToolError::new(format!(
            "{}; fix the document and call plan again",
            gate_stp::text::truncate_chars(&why.to_string(), 2000)
        ))
    };
    let parse = |text: &str, format| {
        DesiredState::parse(text, format, "document").map_err(|error| refused(&error))
    };
    match document {
        serde_json::Value::String(text) => parse(
            &text,
            match format {
                DocumentFormat::Toml => Format::Toml,
                DocumentFormat::Json => Format::Json,
            },
        ),
        object @ serde_json::Value::Object(_) => {
            let state: DesiredState =
                serde_path_to_error::deserialize(object).map_err(|error| {
                    refused(&format_args!(
                        "document: `{}`: {}",
                        error.path(),
                        error.inner()
                    ))
                })?;
            parse(&state.to_json_string(), Format::Json)
        }
        other => Err(ToolError::new(format!(
            "invalid arguments for plan: `document`: expected a TOML or JSON text or a JSON object, got {}; fix them (the tool's inputSchema says what each takes) and call plan again",
            json_kind(&other)
        ))),
    }
}

/// The JSON kind of `value`, for a message.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The page of the arguments (checked already by `arguments`).
fn page_of(args: &impl tools::Paged) -> Page {
    args.page().unwrap_or(Page {
        offset: 0,
        limit: paging::DEFAULT_LIMIT,
    })
}

/// `11–20` for a page of ten from offset 10 (1-based, as people count).
fn shown_range(offset: usize, len: usize) -> String {
    match len {
        0 | 1 => format!("number {}", offset + 1),
        _ => format!("{}–{}", offset + 1, offset + len),
    }
}

fn optional(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn login(name: Option<&str>) -> String {
    name.map_or_else(|| "(login name unknown)".to_owned(), desired::quoted)
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
        Err(unknown_method(&request.method))
    }
}

/// The protocol error for a method this server does not know (rmcp's says only the name).
pub(super) fn unknown_method(method: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::METHOD_NOT_FOUND,
        format!(
            "Method not found: {}; this server offers initialize, ping, server/discover, tools/list and tools/call",
            desired::quoted(&gate_stp::text::truncate_chars(method, 64))
        ),
        None,
    )
}
