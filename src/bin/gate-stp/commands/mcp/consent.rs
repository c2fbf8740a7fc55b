//! The question `apply` asks the client's user: the change itself, not only its counts;
//! and how it is asked, by the client's protocol revision ([`Asker`]): an elicitation
//! request during the call (2025-11-25), or an `input_required` result answered by the
//! call made again (2026-07-28). Only an explicit yes lets `apply` send.
//!
//! Each group that changes gets its lines: the group to create, the members to add and the
//! members to remove, each member by user id with its login name where the plan knows it,
//! every name escaped (`gate_stp::text`). The list is cut to stay readable in a dialog:
//! at most [`MAX_MEMBERS_PER_LINE`] members on a line and [`MAX_CHANGE_LINES`] lines, each cut
//! saying "and N more"; the plan's one-line summary with the counts always ends it.

use gate_stp::desired::{self, Action, Plan};
use rmcp::{
    Peer, RoleServer,
    model::{
        CallToolRequestParams, ElicitResult, ElicitationAction, InputResponses, ProtocolVersion,
    },
    schemars::JsonSchema,
    service::{ElicitationError, ElicitationMode, RequestContext},
};
use serde::Deserialize;

use super::errors::ToolError;

/// Lines of changes shown before "and N more lines".
pub(crate) const MAX_CHANGE_LINES: usize = 20;

/// Members shown on one line before "and N more".
pub(crate) const MAX_MEMBERS_PER_LINE: usize = 10;

/// A user as the question shows it: `10001 "bot_1"`, or the id alone.
fn user(plan: &Plan, id: i64) -> String {
    match plan.login_names.get(&id) {
        Some(login) => format!("{id} {}", desired::quoted(login)),
        None => id.to_string(),
    }
}

/// `users`, at most [`MAX_MEMBERS_PER_LINE`] of them, then "and N more".
fn users(plan: &Plan, users: &[i64]) -> String {
    let mut shown: Vec<String> = users
        .iter()
        .take(MAX_MEMBERS_PER_LINE)
        .map(|id| user(plan, *id))
        .collect();
    let left = users.len().saturating_sub(MAX_MEMBERS_PER_LINE);
    if left > 0 {
        shown.push(format!("and {left} more"));
    }
    shown.join(", ")
}

/// One line per change, in the plan's group order.
fn change_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for group in &plan.groups {
        let name = desired::quoted(&group.name);
        let at = group
            .id
            .map_or_else(String::new, |id| format!(" (id {id})"));
        if group.action == Action::Create {
            lines.push(format!(
                "- create group {name} (a group can never be deleted)"
            ));
        }
        if !group.add.is_empty() {
            lines.push(format!("- add to {name}{at}: {}", users(plan, &group.add)));
        }
        if !group.remove.is_empty() {
            lines.push(format!(
                "- remove from {name}{at}: {}",
                users(plan, &group.remove)
            ));
        }
    }
    lines
}

/// The question: what is applied to which account, the changes (cut), then the counts.
pub(crate) fn question(plan: &Plan) -> String {
    let mut text = format!(
        "gate-stp: apply these changes to the live STP groups of main account {}?",
        plan.main_user_id
    );
    let lines = change_lines(plan);
    for line in lines.iter().take(MAX_CHANGE_LINES) {
        text.push('\n');
        text.push_str(line);
    }
    let left = lines.len().saturating_sub(MAX_CHANGE_LINES);
    if left > 0 {
        let lines = if left == 1 { "line" } else { "lines" };
        text.push_str(&format!(
            "\n- and {left} more {lines} (the whole plan is in the agent's plan result)"
        ));
    }
    if plan.removals() > 0 {
        text.push_str("\nA member removed is no longer protected from self-trades for new orders.");
    }
    text.push('\n');
    text.push_str(&desired::summary(plan));
    text
}

/// How long `apply` waits for the user's answer; no answer sends nothing. The live state
/// is read again after the answer, so a slow answer cannot apply a stale plan.
pub(super) const CONFIRMATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The question `apply` asks the client's user, where the client supports it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(super) struct ConfirmApply {
    /// Apply these changes to the live STP groups?
    pub(super) confirm: bool,
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
pub(super) fn confirmed(
    answer: Result<Option<ConfirmApply>, ElicitationError>,
) -> Result<(), ToolError> {
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

/// The key of apply's question among the `inputRequests` (and of its answer).
pub(super) const CONFIRM_KEY: &str = "confirm";

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

/// The user's answer among a round trip's `responses`, read as `peer.elicit` reads one.
pub(super) fn answer_of(
    responses: Option<InputResponses>,
) -> Result<Option<ConfirmApply>, ElicitationError> {
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
        // Decline, cancel, and any answer added later: not a yes (`confirmed` says the
        // same for each).
        _ => Err(ElicitationError::UserDeclined),
    }
}

/// How the client of this call can be asked, by its protocol revision and capabilities.
pub(super) fn asker_of<'a>(
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

#[cfg(test)]
mod tests {
    use gate_stp::desired::{
        DesiredGroup, DesiredState, GroupInfo, LiveGroup, LiveState, Member, Plan, SubAccount,
    };

    use super::{MAX_CHANGE_LINES, MAX_MEMBERS_PER_LINE, question};

    const MAIN: i64 = 10_000;

    /// Sub-accounts 10001..=10000+subs, login names bot_N (bot_1 hostile when asked).
    fn live(subs: i64, groups: Vec<LiveGroup>, hostile_login: bool) -> LiveState {
        LiveState {
            main_user_id: MAIN,
            sub_accounts: (1..=subs)
                .map(|i| SubAccount {
                    user_id: MAIN + i,
                    login_name: Some(if hostile_login && i == 1 {
                        "bot\u{1b}[2J\u{200b}_1".to_owned()
                    } else {
                        format!("bot_{i}")
                    }),
                })
                .collect(),
            groups,
        }
    }

    fn plan(live: &LiveState, groups: Vec<DesiredGroup>) -> Plan {
        Plan::compute(
            live,
            &DesiredState {
                main_user_id: MAIN,
                groups,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_question_lists_each_create_add_and_remove_with_login_names_then_the_counts() {
        let old = LiveGroup::new(
            GroupInfo {
                id: 7,
                name: "old".to_owned(),
                creator_id: Some(MAIN),
            },
            [MAIN + 3],
        );
        let live = live(3, vec![old], false);
        let plan = plan(
            &live,
            vec![
                DesiredGroup::new("desk", vec![Member::Id(MAIN + 1), Member::Id(MAIN + 2)]),
                DesiredGroup::new("old", Vec::new()),
            ],
        );
        let text = question(&plan);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "gate-stp: apply these changes to the live STP groups of main account 10000?",
                "- create group \"desk\" (a group can never be deleted)",
                "- add to \"desk\": 10001 \"bot_1\", 10002 \"bot_2\"",
                "- remove from \"old\" (id 7): 10003 \"bot_3\"",
                "A member removed is no longer protected from self-trades for new orders.",
                "Plan: 1 group to create, 2 members to add, 1 to remove (3 requests).",
            ]
        );
    }

    #[test]
    fn names_are_escaped() {
        let live = live(1, Vec::new(), true);
        let plan = plan(
            &live,
            vec![DesiredGroup::new(
                "desk\u{202e}kcab\u{e0041}",
                vec![Member::Id(MAIN + 1)],
            )],
        );
        let text = question(&plan);
        for raw in ['\u{1b}', '\u{200b}', '\u{202e}', '\u{e0041}'] {
            assert!(!text.contains(raw), "raw {raw:?} in {text:?}");
        }
        assert!(
            text.contains("\\u{202e}") && text.contains("\\x1b"),
            "{text}"
        );
    }

    #[test]
    fn long_changes_are_cut_with_what_was_left_out() {
        let subs = i64::try_from(MAX_MEMBERS_PER_LINE).unwrap() + 3;
        let live = live(subs, Vec::new(), false);
        // One group with every sub-account: one line cut after MAX_MEMBERS_PER_LINE.
        let members = (1..=subs).map(|i| Member::Id(MAIN + i)).collect();
        let text = question(&plan(&live, vec![DesiredGroup::new("big", members)]));
        let add = text
            .lines()
            .find(|line| line.starts_with("- add to"))
            .unwrap();
        assert_eq!(add.matches(", ").count(), MAX_MEMBERS_PER_LINE, "{add}");
        assert!(add.ends_with(", and 3 more"), "{add}");
        assert!(add.contains(&format!(
            "{} \"bot_{MAX_MEMBERS_PER_LINE}\"",
            MAIN + subs - 3
        )));

        // More groups than lines: MAX_CHANGE_LINES lines, then the rest counted.
        let groups = (0..MAX_CHANGE_LINES + 2)
            .map(|i| DesiredGroup::new(format!("g{i}"), Vec::new()))
            .collect();
        let text = question(&plan(&live, groups));
        let creates = text
            .lines()
            .filter(|line| line.starts_with("- create"))
            .count();
        assert_eq!(creates, MAX_CHANGE_LINES, "{text}");
        assert!(
            text.contains("\n- and 2 more lines (the whole plan is in the agent's plan result)\n"),
            "{text}"
        );
        assert!(text.ends_with("(22 requests)."), "{text}");
        assert!(!text.contains("no longer protected"), "no removal: {text}");
    }
}
