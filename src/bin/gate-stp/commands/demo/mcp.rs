//! The end of `gate-stp demo`: an agent session over MCP against the same emulator. The
//! server and the agent's client talk over an in-process pipe, so the demo needs no child
//! process; a desktop client runs `gate-stp mcp` over stdio instead.

use std::time::Duration;

use gate_stp::{
    Client,
    desired::{DesiredGroup, DesiredState, Format, Member},
    mock::demo,
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
};
use serde_json::{Value, json};

use crate::commands::mcp::{ServerSettings, StpServer};
use crate::{
    as_code,
    failure::Failure,
    output::{demo_step as step, out},
};

fn failed(error: impl std::fmt::Display) -> Failure {
    Failure::service(format!("demo (agent session): {error}"))
}

/// The agent's side of the session.
struct Agent {
    session: RunningService<RoleClient, ()>,
}

impl Agent {
    /// Calls `tool`; prints the call and the text the model reads; returns the result.
    async fn call(&self, tool: &str, arguments: Value) -> Result<CallToolResult, Failure> {
        let shown = match tool {
            "plan" => "{\"document\": \"...\"}".to_owned(),
            _ => arguments.to_string(),
        };
        out(format!("agent> {tool} {shown}\n"));
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let result = self.session.call_tool(params).await.map_err(failed)?;
        let marker = if result.is_error == Some(true) {
            "isError: "
        } else {
            ""
        };
        let mut blocks = result.content.iter().filter_map(|block| block.as_text());
        if let Some(text) = blocks.next() {
            // The server escaped it already; every line is printed as it came.
            out(format!("{marker}{}\n", text.text.trim_end()));
        }
        for json in blocks {
            // The structured content again, for clients that read only text.
            out(format!(
                "(and the same as JSON: {} bytes)\n",
                json.text.len()
            ));
        }
        Ok(result)
    }

    /// A call that must succeed; its structured content.
    async fn ok(&self, tool: &str, arguments: Value) -> Result<Value, Failure> {
        let result = self.call(tool, arguments).await?;
        if result.is_error == Some(true) {
            return Err(failed(format!("{tool} failed")));
        }
        result
            .structured_content
            .ok_or_else(|| failed(format!("{tool} returned no structured content")))
    }
}

fn text_field<'a>(value: &'a Value, key: &str) -> Result<&'a str, Failure> {
    value[key]
        .as_str()
        .ok_or_else(|| failed(format!("no {key} in the answer")))
}

/// Runs steps `first`.. against the emulator at `base_url`.
pub(crate) async fn run(base_url: &str, timeout: Duration, first: u32) -> Result<(), Failure> {
    let client = as_code::demo_client(base_url, timeout)?;
    let server = StpServer::new(
        client.clone(),
        ServerSettings {
            allow_apply: true,
            max_removals: gate_stp::desired::DEFAULT_MAX_REMOVALS,
            max_creates: gate_stp::desired::DEFAULT_MAX_CREATES,
            plan_ttl_minutes: 30,
        },
    );
    let (server_end, agent_end) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    let session = ().serve(agent_end).await.map_err(failed)?;
    let agent = Agent { session };
    let result = session_steps(&agent, &client, first).await;
    let _ = agent.session.cancel().await;
    let _ = serving.await;
    result
}

async fn session_steps(agent: &Agent, client: &Client, first: u32) -> Result<(), Failure> {
    step(
        first,
        "an AI agent connects to `gate-stp mcp --allow-apply` (in-process here) and lists the tools",
    );
    let tools = agent.session.list_all_tools().await.map_err(failed)?;
    for tool in &tools {
        let hints = tool.annotations.clone().unwrap_or_default();
        out(format!(
            "{:<13} readOnly={:?} destructive={:?} idempotent={:?} openWorld={:?}\n",
            tool.name,
            hints.read_only_hint.unwrap_or_default(),
            hints.destructive_hint.unwrap_or_default(),
            hints.idempotent_hint.unwrap_or_default(),
            hints.open_world_hint.unwrap_or_default(),
        ));
    }

    step(
        first + 1,
        "the agent exports the groups and plans a change: demo_sub_nokey moves to a new \"agent-desk\"",
    );
    let exported = agent.ok("export", json!({})).await?;
    let mut document =
        DesiredState::parse(text_field(&exported, "document")?, Format::Toml, "export")
            .map_err(failed)?;
    let login = demo::SUB_WITHOUT_KEY_LOGIN_NAME.to_owned();
    for group in &mut document.groups {
        group.members.retain(
            |member| !matches!(member, Member::Id(id) if *id == demo::SUB_USER_WITHOUT_KEY),
        );
        group
            .members
            .retain(|member| *member != Member::Login(login.clone()));
    }
    document
        .groups
        .push(DesiredGroup::new("agent-desk", vec![Member::Login(login)]));
    let toml = document.to_toml_string();
    let planned = agent.ok("plan", json!({"document": toml})).await?;
    let digest = text_field(&planned, "digest")?.to_owned();

    step(
        first + 2,
        "the user agrees; the agent applies the plan by its digest",
    );
    agent.ok("apply", json!({"digest": digest})).await?;

    step(
        first + 3,
        "the agent plans the same document again: no changes",
    );
    let again = agent.ok("plan", json!({"document": toml})).await?;
    if again["changes"] != json!(false) {
        return Err(failed("the second plan has changes"));
    }

    step(
        first + 4,
        "refused, nothing sent: a digest made stale because someone created a group meanwhile",
    );
    let mut more = document.clone();
    more.groups
        .push(DesiredGroup::new("agent-desk-2", Vec::new()));
    let stale = agent
        .ok("plan", json!({"document": more.to_toml_string()}))
        .await?;
    out("(meanwhile, another caller creates the group \"by-hand\")\n");
    client.create_group("by-hand").await?;
    let digest = text_field(&stale, "digest")?.to_owned();
    let refusal = agent.call("apply", json!({"digest": digest})).await?;
    if refusal.is_error != Some(true) {
        return Err(failed("a stale digest was applied"));
    }
    Ok(())
}
