//! The tools that lead to a change: `plan` (the document read and checked, the plan kept
//! under its digest) and `apply` (the user asked, the plan taken once, then sent through
//! the library's one apply flow).

use gate_stp::{
    Client,
    desired::{
        self, ApplyError, ApplyOptions, ApplyReport, DesiredState, Format, Plan, Progress,
        Proposal, RenderOptions,
    },
};
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitationSchema, InputRequest, InputRequests,
    InputRequiredResult,
};

use super::{
    Answer, Applied, StpServer,
    consent::{self, Asker, CONFIRM_KEY, CONFIRMATION_TIMEOUT, ConfirmApply, answer_of, confirmed},
    errors::ToolError,
    paging, safe_text, store,
    tools::{ApplyOut, DocumentFormat, PlanOut},
};
use crate::{as_code, output::plural};

impl StpServer {
    pub(super) async fn plan(
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

    pub(super) async fn apply(&self, digest: &str, asker: Asker<'_>) -> Result<Applied, ToolError> {
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
            super::errors::json_kind(&other)
        ))),
    }
}
