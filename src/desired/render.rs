//! Plans as text for people: Terraform-style lines (`+` create/add, `-` remove, `~`
//! changed group), unmanaged groups, a one-line summary.

use std::{fmt, fmt::Write as _};

use anstyle::{AnsiColor, Color, Style};

use super::plan::{Action, Plan, Step};
use crate::text::{Ids, Quoted, escape_control};

/// A group name in double quotes with control characters escaped, as plans print it.
pub fn quoted(name: &str) -> String {
    Quoted(name).to_string()
}

/// How [`render_plan`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colours (`+` green, `-` red, `~` yellow). Only for terminals, never with
    /// `NO_COLOR`: the caller decides.
    pub colour: bool,
}

/// The plan's styles (clap's `anstyle`), written only when [`RenderOptions::colour`] says so.
struct Paint {
    colour: bool,
}

const ADD: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Green)));
const REMOVE: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Red)));
const CHANGE: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
const BOLD: Style = Style::new().bold();

impl Paint {
    fn wrap(&self, style: Style, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
    fn add(&self, text: &str) -> String {
        self.wrap(ADD, text)
    }
    fn remove(&self, text: &str) -> String {
        self.wrap(REMOVE, text)
    }
    fn change(&self, text: &str) -> String {
        self.wrap(CHANGE, text)
    }
    fn bold(&self, text: &str) -> String {
        self.wrap(BOLD, text)
    }
}

pub(super) fn user(plan: &Plan, id: i64) -> String {
    match plan.login_names.get(&id) {
        Some(login) => format!("{id} ({})", escape_control(login)),
        None => id.to_string(),
    }
}

pub(super) fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The one-line summary, e.g. `Plan: 1 group to create, 2 members to add, 1 to remove
/// (4 requests).`
pub fn summary(plan: &Plan) -> String {
    format!(
        "Plan: {} to create, {} to add, {} to remove ({}).",
        plural(plan.creates(), "group", "groups"),
        plural(plan.additions(), "member", "members"),
        plan.removals(),
        plural(plan.steps.len(), "request", "requests"),
    )
}

/// The plan for a terminal or a log: one block per declared group that changes, the
/// unchanged and unmanaged groups, a note on resting orders when members leave, and the
/// summary line. Names are printed with control characters escaped.
pub fn render_plan(plan: &Plan, options: RenderOptions) -> String {
    let paint = Paint {
        colour: options.colour,
    };
    let mut out = String::new();
    let short = plan.live_fingerprint.get(..12).unwrap_or("");
    let _ = writeln!(
        out,
        "STP groups of main account {} (live state {short})",
        plan.main_user_id
    );
    blank_line(&mut out);
    for group in &plan.groups {
        let name = Quoted(&group.name);
        match group.action {
            Action::Create => {
                let _ = writeln!(out, "  {} group {name} (new)", paint.add("+"));
            }
            Action::Change => {
                let id = group.id.unwrap_or_default();
                let _ = writeln!(out, "  {} group {name} (id {id})", paint.change("~"));
            }
            Action::Unchanged => continue,
        }
        for &id in &group.remove {
            let _ = writeln!(out, "      {} {}", paint.remove("-"), user(plan, id));
        }
        for &id in &group.add {
            let _ = writeln!(out, "      {} {}", paint.add("+"), user(plan, id));
        }
    }
    let unchanged: Vec<_> = plan
        .groups
        .iter()
        .filter(|group| group.action == Action::Unchanged)
        .collect();
    for group in &unchanged {
        let _ = writeln!(
            out,
            "    group {} (id {}): unchanged, {}",
            Quoted(&group.name),
            group.id.unwrap_or_default(),
            plural(group.members_after.len(), "member", "members")
        );
    }
    if !plan.unmanaged.is_empty() {
        blank_line(&mut out);
        let _ = writeln!(out, "Not in the file (unmanaged, never changed):");
        for group in &plan.unmanaged {
            let _ = writeln!(
                out,
                "    group {} (id {}): {}",
                Quoted(&group.name),
                group.id,
                plural(group.members.len(), "member", "members")
            );
        }
    }
    if !plan.warnings.is_empty() {
        blank_line(&mut out);
        for warning in &plan.warnings {
            let _ = writeln!(out, "{} {warning}", paint.change("Warning:"));
        }
    }
    if plan.is_empty() {
        blank_line(&mut out);
        let _ = writeln!(out, "No changes: the live STP groups match the file.");
    } else if plan.removals() > 0 {
        blank_line(&mut out);
        let _ = writeln!(
            out,
            "Note: membership changes apply to new orders; resting orders keep the group they were placed with."
        );
    }
    blank_line(&mut out);
    let _ = writeln!(out, "{}", paint.bold(&summary(plan)));
    out
}

/// Ends `out` with one blank line before the next section, unless it already does (a
/// plan with nothing to show between its heading and a section).
fn blank_line(out: &mut String) {
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Create { group } => write!(f, "create group {}", Quoted(group)),
            Step::Remove {
                group,
                stp_id,
                user_ids,
                ..
            } => write!(
                f,
                "remove {} from group {} (id {stp_id})",
                Ids(user_ids),
                Quoted(group)
            ),
            Step::Add {
                group,
                stp_id,
                user_ids,
                ..
            } => {
                write!(f, "add {} to group {}", Ids(user_ids), Quoted(group))?;
                match stp_id {
                    Some(id) => write!(f, " (id {id})"),
                    None => f.write_str(" (created by this plan)"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `quoted` is what the CLI and the MCP server print a group name with: in double
    /// quotes, control and bidi characters as visible escapes, everything else kept.
    #[test]
    fn a_quoted_name_is_in_double_quotes_with_controls_escaped() {
        assert_eq!(quoted("desk"), "\"desk\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("münz \\ desk"), "\"münz \\ desk\"");
        assert_eq!(
            quoted("evil\u{1b}[2J\n\u{202e}"),
            "\"evil\\x1b[2J\\x0a\\u{202e}\""
        );
    }
}
