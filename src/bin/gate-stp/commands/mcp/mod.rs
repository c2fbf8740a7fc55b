//! `gate-stp mcp`: an MCP server over stdio for AI agents. Agents read freely (account,
//! groups, members, export, plan) and change STP groups only by applying a plan this server
//! computed, named by its digest, and only when the operator started the server with
//! `--allow-apply`.
//!
//! stdout carries only protocol messages (rmcp writes them); logs go to stderr through
//! the CLI's tracing subscriber. Text content for the model is escaped line by line with
//! `gate_stp::text::escape_control`; `structuredContent` keeps the exact values.

pub(crate) mod demo;
mod errors;
mod store;
mod tools;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use clap::Args;
use gate_stp::{
    Client,
    desired::{
        self, ApplyError, ApplyOptions, ApplyReport, DEFAULT_MAX_REMOVALS, DesiredState, Format,
        Plan, Progress, Proposal, RenderOptions, StpAdmin,
    },
};
use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
        Tool,
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
use store::{DigestStore, MAX_STORED_PLANS, StoredPlan};
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

/// Serves MCP on stdin/stdout until the client closes the connection.
pub(crate) async fn run(ctx: &Context, args: McpArgs) -> Result<(), Failure> {
    let client = ctx.as_code_client(None)?;
    let server = StpServer::new(
        client,
        ServerSettings {
            allow_apply: args.allow_apply,
            max_removals: args.max_removals,
        },
    );
    tracing::info!(
        allow_apply = args.allow_apply,
        max_removals = args.max_removals,
        "gate-stp mcp: serving on stdio"
    );
    let running = server
        .serve(rmcp::transport::stdio())
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
}

/// The MCP server: a Gate client, the operator's settings and the plans computed so far.
#[derive(Clone)]
pub(crate) struct StpServer {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: ServerSettings,
    plans: Mutex<DigestStore>,
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

    fn into_result(self) -> CallToolResult {
        let mut result = CallToolResult::success(vec![ContentBlock::text(safe_text(&self.text))]);
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

/// The arguments as `T`, or a protocol error (they do not match the tool's schema).
fn arguments<T: DeserializeOwned>(
    tool: &str,
    arguments: Option<JsonObject>,
) -> Result<T, ErrorData> {
    serde_json::from_value(serde_json::Value::Object(arguments.unwrap_or_default())).map_err(|e| {
        let message = format!("invalid arguments for {tool}: {e}");
        ErrorData::invalid_params(gate_stp::text::escape_control(&message).into_owned(), None)
    })
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
    pub(crate) fn new(client: Client, settings: ServerSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                settings,
                plans: Mutex::new(DigestStore::new(MAX_STORED_PLANS)),
                applying: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn plans(&self) -> std::sync::MutexGuard<'_, DigestStore> {
        // The store is consistent after any panic of a holder (each method is one step).
        self.inner
            .plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One tool call: the gate (offered tools only), the arguments, the tool. `peer` is
    /// the client to ask for confirmation, where there is one.
    pub(crate) async fn dispatch(
        &self,
        name: &str,
        args: Option<JsonObject>,
        peer: Option<&Peer<RoleServer>>,
    ) -> Result<CallToolResult, ErrorData> {
        if !tools::offered(name, self.inner.settings.allow_apply) {
            return Err(not_offered(name));
        }
        tracing::debug!(tool = name, "tool call");
        let answer = match name {
            tools::ACCOUNT => {
                arguments::<tools::NoArgs>(name, args)?;
                self.account().await
            }
            tools::LIST_GROUPS => {
                let args: tools::ListGroupsArgs = arguments(name, args)?;
                self.list_groups(args.name).await
            }
            tools::LIST_MEMBERS => {
                let args: tools::ListMembersArgs = arguments(name, args)?;
                self.list_members(args.stp_id).await
            }
            tools::EXPORT => {
                arguments::<tools::NoArgs>(name, args)?;
                self.export().await
            }
            tools::PLAN => {
                let args: tools::PlanArgs = arguments(name, args)?;
                self.plan(&args.document, args.format).await
            }
            tools::APPLY => {
                let args: tools::ApplyArgs = arguments(name, args)?;
                self.apply(&args.digest, peer).await
            }
            _ => return Err(not_offered(name)),
        };
        Ok(match answer {
            Ok(answer) => answer.into_result(),
            Err(error) => error.into_result(),
        })
    }

    async fn account(&self) -> Result<Answer, ToolError> {
        let client = &self.inner.client;
        let main_user_id = client.key_user_id().await.map_err(ToolError::client)?;
        let subs = client.sub_accounts().await.map_err(ToolError::client)?;
        let mut text = format!("Main account {main_user_id}; {} sub-accounts:", subs.len());
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

    async fn list_groups(&self, name: Option<String>) -> Result<Answer, ToolError> {
        let mut request = self.inner.client.list_groups();
        if let Some(name) = name {
            request = request.name(name);
        }
        let groups = request.await.map_err(ToolError::client)?.into_inner();
        let mut text = format!("{}:", plural(groups.len(), "STP group"));
        let groups: Vec<GroupOut> = groups
            .into_iter()
            .map(|group| GroupOut {
                id: group.id,
                name: group.name,
                creator_id: group.creator_id,
                created_at: group.create_time.map(crate::output::iso8601),
            })
            .collect();
        for group in &groups {
            text.push_str(&format!(
                "\n- id {} name {} creator {} created {}",
                optional(group.id),
                desired::quoted(&group.name),
                optional(group.creator_id),
                group.created_at.as_deref().unwrap_or("-"),
            ));
        }
        Answer::new(text, &GroupsOut { groups })
    }

    async fn list_members(&self, stp_id: i64) -> Result<Answer, ToolError> {
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
        let members: Vec<MemberOut> = users
            .into_iter()
            .map(|user| MemberOut {
                user_id: user.user_id,
                login_name: login_of(user.user_id),
                joined_at: user.create_time.map(crate::output::iso8601),
            })
            .collect();
        let mut text = format!("Group {stp_id}: {}:", plural(members.len(), "member"));
        for member in &members {
            text.push_str(&format!(
                "\n- {} {}",
                optional(member.user_id),
                login(member.login_name.as_deref())
            ));
        }
        Answer::new(text, &MembersOut { stp_id, members })
    }

    async fn export(&self) -> Result<Answer, ToolError> {
        let live = desired::read_live(&self.inner.client, None)
            .await
            .map_err(ToolError::read)?;
        let document = DesiredState::from_live(&live).to_toml_string();
        Answer::new(document.clone(), &ExportOut { document })
    }

    async fn plan(&self, document: &str, format: DocumentFormat) -> Result<Answer, ToolError> {
        let format = match format {
            DocumentFormat::Toml => Format::Toml,
            DocumentFormat::Json => Format::Json,
        };
        let desired = DesiredState::parse(document, format, "document")
            .map_err(|e| ToolError::new(format!("{e}; fix the document and call plan again")))?;
        let plan = Proposal::for_desired(&self.inner.client, &desired)
            .await
            .map_err(ToolError::apply)?
            .into_plan();
        let rendered = desired::render_plan(&plan, RenderOptions { colour: false });
        let summary = desired::summary(&plan);
        let structured_plan = serde_json::to_value(&plan)
            .map_err(|e| ToolError::new(format!("cannot encode the plan: {e}")))?;
        let changes = !plan.is_empty();
        let removals = plan.removals();
        let digest = self.plans().insert(StoredPlan { plan });
        let mut text = format!("{rendered}\nDigest: {digest}\n");
        text.push_str(&self.next_step_after_plan(changes, removals));
        let out = PlanOut {
            changes,
            summary,
            rendered,
            plan: structured_plan,
            digest,
        };
        Answer::new(text, &out)
    }

    fn next_step_after_plan(&self, changes: bool, removals: usize) -> String {
        let settings = self.inner.settings;
        if !changes {
            "No changes: the live groups already match the document.".to_owned()
        } else if removals > settings.max_removals {
            format!(
                "This plan removes {removals} members, more than this server's limit of {}: apply would refuse it. Split the change, or ask the operator.",
                settings.max_removals
            )
        } else if settings.allow_apply {
            "Show this plan to the user; once they agree, call apply with this digest.".to_owned()
        } else {
            "This server does not apply plans: show the plan to the user, who can apply the document with `gate-stp apply`.".to_owned()
        }
    }

    async fn apply(
        &self,
        digest: &str,
        peer: Option<&Peer<RoleServer>>,
    ) -> Result<Answer, ToolError> {
        let unknown = || {
            ToolError::new(
                "unknown or already applied digest (each plan is applied at most once, and this server keeps the latest plans only); call plan again and apply the new digest",
            )
        };
        let summary = self
            .plans()
            .get(digest)
            .map(|stored| desired::summary(&stored.plan))
            .ok_or_else(unknown)?;
        if let Some(peer) = peer
            && can_ask(peer)
        {
            let question = safe_text(&format!(
                "gate-stp: apply this plan to the live STP groups?\n{summary}"
            ));
            confirmed(
                peer.elicit_with_timeout::<ConfirmApply>(question, Some(CONFIRMATION_TIMEOUT))
                    .await,
            )?;
        }
        let _one_at_a_time = self.inner.applying.lock().await;
        // Taken only now: a decline above leaves the digest usable, and of two concurrent
        // applies of one digest only the first gets past here.
        let stored = self.plans().take(digest).ok_or_else(unknown)?;
        let options = ApplyOptions::default().with_max_removals(self.inner.settings.max_removals);
        let report = send_reviewed_plan(&self.inner.client, stored.plan.clone(), options)
            .await
            .map_err(ToolError::apply)?;
        let mut text = format!(
            "Applied: {}.",
            as_code::applied_counts(&stored.plan, &report)
        );
        for name in &report.adopted {
            text.push_str(&format!("\nNote: {}.", as_code::adoption_note(name)));
        }
        text.push_str("\nCall plan again to confirm: it should show no changes.");
        let out = ApplyOut {
            steps_done: report.steps_done,
            created: report.created,
            adopted: report.adopted,
        };
        Answer::new(text, &out)
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
        self.dispatch(&request.name, request.arguments, Some(&context.peer))
            .await
            .map(Into::into)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::listed(self.inner.settings.allow_apply)
            .into_iter()
            .find(|tool| tool.name == name)
    }
}
