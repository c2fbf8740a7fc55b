//! Plans as text for people: Terraform-style lines (`+` create/add, `-` remove, `~`
//! changed group), unmanaged groups, a one-line summary.

use std::{fmt, fmt::Write as _};

use anstyle::{AnsiColor, Color, Style};

use super::{
    names::NameWarning,
    plan::{Action, Plan, Step, UnmanagedGroup},
};
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

/// One line of a plan's changes, as every rendering shows them: the declared groups that
/// change (each followed by its removals, then its additions), then the unchanged ones.
pub(super) enum ChangeLine<'p> {
    Create {
        name: &'p str,
    },
    Change {
        name: &'p str,
        id: i64,
    },
    Remove {
        user: String,
    },
    Add {
        user: String,
    },
    Unchanged {
        name: &'p str,
        id: i64,
        members: usize,
    },
}

/// How one rendering writes each part of a plan; [`walk`] decides which parts a plan has,
/// in which order, and what they say.
pub(super) trait PlanStyle {
    /// The account and the first characters of the live state's fingerprint.
    fn heading(&mut self, main_user_id: i64, fingerprint: &str);
    /// The changes, when there are any lines.
    fn changes(&mut self, lines: &[ChangeLine<'_>]);
    /// The live groups the file does not declare, under `title`.
    fn unmanaged(&mut self, title: &str, groups: &[UnmanagedGroup]);
    /// The warnings about names.
    fn warnings(&mut self, warnings: &[NameWarning]);
    /// The plan changes nothing.
    fn no_changes(&mut self, text: &str);
    /// Members leave groups: what that means for resting orders.
    fn resting_orders(&mut self, text: &str);
    /// The one-line summary.
    fn summary(&mut self, text: &str);
}

/// Title of the unmanaged groups.
const UNMANAGED: &str = "Not in the file (unmanaged, never changed):";
/// What an empty plan says.
const NO_CHANGES: &str = "No changes: the live STP groups match the file.";
/// What a plan that removes members says about resting orders.
const RESTING_ORDERS: &str =
    "membership changes apply to new orders; resting orders keep the group they were placed with.";

/// The one walk of a plan that the text and the Markdown renderings share: which parts a
/// plan has, in which order, and what they say; `style` writes each part its own way.
pub(super) fn walk(plan: &Plan, style: &mut impl PlanStyle) {
    style.heading(
        plan.main_user_id,
        plan.live_fingerprint.get(..12).unwrap_or(""),
    );
    let mut lines = Vec::new();
    for group in &plan.groups {
        let name = group.name.as_str();
        match group.action {
            Action::Create => lines.push(ChangeLine::Create { name }),
            Action::Change => lines.push(ChangeLine::Change {
                name,
                id: group.id.unwrap_or_default(),
            }),
            Action::Unchanged => continue,
        }
        for &id in &group.remove {
            lines.push(ChangeLine::Remove {
                user: user(plan, id),
            });
        }
        for &id in &group.add {
            lines.push(ChangeLine::Add {
                user: user(plan, id),
            });
        }
    }
    for group in &plan.groups {
        if group.action == Action::Unchanged {
            lines.push(ChangeLine::Unchanged {
                name: &group.name,
                id: group.id.unwrap_or_default(),
                members: group.members_after.len(),
            });
        }
    }
    if !lines.is_empty() {
        style.changes(&lines);
    }
    if !plan.unmanaged.is_empty() {
        style.unmanaged(UNMANAGED, &plan.unmanaged);
    }
    if !plan.warnings.is_empty() {
        style.warnings(&plan.warnings);
    }
    if plan.is_empty() {
        style.no_changes(NO_CHANGES);
    } else if plan.removals() > 0 {
        style.resting_orders(RESTING_ORDERS);
    }
    style.summary(&summary(plan));
}

/// The plan for a terminal or a log: one block per declared group that changes, the
/// unchanged and unmanaged groups, a note on resting orders when members leave, and the
/// summary line. Names are printed with control characters escaped.
pub fn render_plan(plan: &Plan, options: RenderOptions) -> String {
    let mut text = Text {
        out: String::new(),
        paint: Paint {
            colour: options.colour,
        },
    };
    walk(plan, &mut text);
    text.out
}

/// The terminal's way of writing a plan: indented lines, the markers coloured, one blank
/// line between parts.
struct Text {
    out: String,
    paint: Paint,
}

impl PlanStyle for Text {
    fn heading(&mut self, main_user_id: i64, fingerprint: &str) {
        let _ = writeln!(
            self.out,
            "STP groups of main account {main_user_id} (live state {fingerprint})"
        );
        blank_line(&mut self.out);
    }

    fn changes(&mut self, lines: &[ChangeLine<'_>]) {
        let (out, paint) = (&mut self.out, &self.paint);
        for line in lines {
            let _ = match line {
                ChangeLine::Create { name } => {
                    writeln!(out, "  {} group {} (new)", paint.add("+"), Quoted(name))
                }
                ChangeLine::Change { name, id } => writeln!(
                    out,
                    "  {} group {} (id {id})",
                    paint.change("~"),
                    Quoted(name)
                ),
                ChangeLine::Remove { user } => writeln!(out, "      {} {user}", paint.remove("-")),
                ChangeLine::Add { user } => writeln!(out, "      {} {user}", paint.add("+")),
                ChangeLine::Unchanged { name, id, members } => writeln!(
                    out,
                    "    group {} (id {id}): unchanged, {}",
                    Quoted(name),
                    plural(*members, "member", "members")
                ),
            };
        }
    }

    fn unmanaged(&mut self, title: &str, groups: &[UnmanagedGroup]) {
        blank_line(&mut self.out);
        let _ = writeln!(self.out, "{title}");
        for group in groups {
            let _ = writeln!(
                self.out,
                "    group {} (id {}): {}",
                Quoted(&group.name),
                group.id,
                plural(group.members.len(), "member", "members")
            );
        }
    }

    fn warnings(&mut self, warnings: &[NameWarning]) {
        blank_line(&mut self.out);
        for warning in warnings {
            let _ = writeln!(self.out, "{} {warning}", self.paint.change("Warning:"));
        }
    }

    fn no_changes(&mut self, text: &str) {
        blank_line(&mut self.out);
        let _ = writeln!(self.out, "{text}");
    }

    fn resting_orders(&mut self, text: &str) {
        blank_line(&mut self.out);
        let _ = writeln!(self.out, "Note: {text}");
    }

    fn summary(&mut self, text: &str) {
        blank_line(&mut self.out);
        let _ = writeln!(self.out, "{}", self.paint.bold(text));
    }
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
