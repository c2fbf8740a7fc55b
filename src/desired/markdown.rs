//! Plans as Markdown, for a pull-request comment: a heading with the account and the
//! live-state fingerprint, the changes in one fenced `diff` block, the unmanaged groups and
//! the summary line.
//!
//! Names come from files and from Gate, so they are hostile until shown otherwise: a name
//! must not open a link, mention someone, close the fence or inject HTML in the rendered
//! comment, nor act on the terminal of whoever reads the raw text. Two rules do it:
//! - inside a fenced block nothing is Markdown or HTML, so a name only has to leave the
//!   fence closed: the fence is longer than any backtick run in the block;
//! - outside, a name only ever appears as a code span (delimited by more backticks than it
//!   contains), where links, mentions, autolinks, emphasis and HTML are inert too.
//!
//! Backslash-escaping punctuation was the other way; code spans were chosen because GitHub
//! turns `@team` and `www.x.com` into a mention and a link even when their punctuation is
//! escaped. Control characters, line breaks and bidi controls are written as visible
//! escapes first ([`escape_control`]), so no name spans two lines or reorders what follows.

use std::fmt::Write as _;

use super::{
    names::NameWarning,
    plan::{Plan, UnmanagedGroup},
    render::{ChangeLine, PlanStyle, plural, walk},
};
use crate::text::{Quoted, escape_control};

/// The plan as Markdown for a pull-request comment (see the module's documentation for how
/// names are kept inert). Ends with a newline.
pub fn render_plan_markdown(plan: &Plan) -> String {
    let mut markdown = Markdown(String::new());
    walk(plan, &mut markdown);
    markdown.0
}

/// The pull request's way of writing a plan: the changes in a fenced `diff` block, names
/// outside it as code spans, one blank line before each part.
struct Markdown(String);

impl PlanStyle for Markdown {
    fn heading(&mut self, main_user_id: i64, fingerprint: &str) {
        let _ = writeln!(
            self.0,
            "### STP plan: main account {main_user_id}, live state {}",
            markdown_code_span(fingerprint)
        );
    }

    /// `+`/`-`/`~` lines and the unchanged groups as context lines, names escaped for
    /// terminals (the fence keeps them out of Markdown).
    fn changes(&mut self, lines: &[ChangeLine<'_>]) {
        let mut diff = String::new();
        for line in lines {
            let _ = match line {
                ChangeLine::Create { name } => writeln!(diff, "+ group {} (new)", Quoted(name)),
                ChangeLine::Change { name, id } => {
                    writeln!(diff, "~ group {} (id {id})", Quoted(name))
                }
                ChangeLine::Remove { user } => writeln!(diff, "-     {user}"),
                ChangeLine::Add { user } => writeln!(diff, "+     {user}"),
                ChangeLine::Unchanged { name, id, members } => writeln!(
                    diff,
                    "  group {} (id {id}): unchanged, {}",
                    Quoted(name),
                    plural(*members, "member", "members")
                ),
            };
        }
        let _ = write!(self.0, "\n{}", fenced("diff", &diff));
    }

    fn unmanaged(&mut self, title: &str, groups: &[UnmanagedGroup]) {
        let _ = write!(self.0, "\n{title}\n\n");
        for group in groups {
            let _ = writeln!(
                self.0,
                "- group {} (id {}): {}",
                markdown_code_span(&group.name),
                group.id,
                plural(group.members.len(), "member", "members")
            );
        }
    }

    fn warnings(&mut self, warnings: &[NameWarning]) {
        // Fenced: the names are shown escaped as text, nothing in them is Markdown.
        let lines: String = warnings
            .iter()
            .map(|warning| format!("{warning}\n"))
            .collect();
        let _ = write!(self.0, "\n**Warnings:**\n\n{}", fenced("text", &lines));
    }

    fn no_changes(&mut self, text: &str) {
        let _ = write!(self.0, "\n{text}\n");
    }

    fn resting_orders(&mut self, text: &str) {
        let mut chars = text.chars();
        let first = chars.next().map(|c| c.to_uppercase().to_string());
        let _ = write!(
            self.0,
            "\n> {}{}\n",
            first.unwrap_or_default(),
            chars.as_str()
        );
    }

    fn summary(&mut self, text: &str) {
        let _ = writeln!(self.0, "\n**{text}**");
    }
}

/// A refusal as Markdown: a heading naming `subject` (a file, say) and the message in a
/// fenced block, where nothing in it is Markdown. Ends with a newline.
pub fn render_refusal_markdown(subject: &str, message: &str) -> String {
    let body: String = message
        .lines()
        .map(|line| format!("{}\n", escape_control(line)))
        .collect();
    format!(
        "### STP plan refused: {}\n\n{}",
        markdown_code_span(subject),
        fenced("text", &body)
    )
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `body` (whole lines) in a fenced block tagged `info`, the fence longer than any backtick
/// run of the body so that no line of it can close the block.
fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    format!("{fence}{info}\n{body}{fence}\n")
}

/// `text` as an inline Markdown code span, inert whatever it holds: control characters
/// escaped, delimited by one backtick more than its longest run, padded with a space where
/// it starts or ends with a backtick or a space (CommonMark strips exactly that padding).
///
/// ```
/// assert_eq!(gate_stp::desired::markdown_code_span("a`b"), "``a`b``");
/// ```
pub fn markdown_code_span(text: &str) -> String {
    let text = escape_control(text);
    let delimiter = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{delimiter}{pad}{text}{pad}{delimiter}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::desired::{Action, GroupChange, PLAN_FORMAT, Step};

    /// A plan that creates `name`, adds user 10001 (login `login`) to it, and leaves a
    /// live group called `name` unmanaged.
    fn plan_naming(name: &str, login: &str) -> Plan {
        Plan {
            format: PLAN_FORMAT.to_owned(),
            main_user_id: 10000,
            live_fingerprint: "ab".repeat(64),
            groups: vec![GroupChange {
                name: name.to_owned(),
                id: None,
                action: Action::Create,
                add: vec![10001],
                remove: vec![],
                members_after: vec![10001],
            }],
            unmanaged: vec![UnmanagedGroup {
                id: 7,
                name: name.to_owned(),
                members: vec![],
            }],
            steps: vec![
                Step::Create {
                    group: name.to_owned(),
                },
                Step::Add {
                    group: name.to_owned(),
                    stp_id: None,
                    user_ids: vec![10001],
                    expected_members: vec![10001],
                },
            ],
            login_names: BTreeMap::from([(10001, login.to_owned())]),
            warnings: Vec::new(),
        }
    }

    /// The fenced blocks of `markdown` as (opening fence, body), read the way CommonMark
    /// does: a block ends at the first line made of at least as many backticks.
    fn fenced_blocks(markdown: &str) -> (Vec<String>, String) {
        let mut blocks = Vec::new();
        let mut outside = String::new();
        let mut open: Option<(usize, String)> = None;
        for line in markdown.lines() {
            let run = line.len() - line.trim_start_matches('`').len();
            match &mut open {
                None if run >= 3 => open = Some((run, String::new())),
                None => {
                    outside.push_str(line);
                    outside.push('\n');
                }
                Some((fence, body)) => {
                    if run >= *fence && line.trim_end().len() == run {
                        blocks.push(std::mem::take(body));
                        open = None;
                    } else {
                        body.push_str(line);
                        body.push('\n');
                    }
                }
            }
        }
        assert!(open.is_none(), "a fence was left open:\n{markdown}");
        (blocks, outside)
    }

    /// The text outside code spans (what GitHub would read as Markdown).
    fn outside_code_spans(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('`') {
            out.push_str(&rest[..start]);
            let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
            let delimiter = "`".repeat(run);
            let after = &rest[start + run..];
            // The closing run must be exactly as long (CommonMark).
            let mut search = 0;
            let close = loop {
                let Some(found) = after[search..].find(&delimiter) else {
                    panic!("unclosed code span in {text:?}")
                };
                let at = search + found;
                let longer = after[at + run..].starts_with('`');
                if !longer && (at == 0 || !after[..at].ends_with('`')) {
                    break at;
                }
                search = at + run;
                while after[search..].starts_with('`') {
                    search += 1;
                }
            };
            rest = &after[close + run..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn hostile_names_stay_inert() {
        let hostile = [
            "```\n# injected heading",
            "a`b``c",
            "````",
            "`edge`",
            "[click](https://evil.example)",
            "](javascript:alert(1))",
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "@everyone **bold** _x_ www.evil.example",
            "desk\u{202e}gnp.exe\u{2066}",
            "line\rover\u{1b}[2J\u{85}",
        ];
        for name in hostile {
            let markdown = render_plan_markdown(&plan_naming(name, name));
            // No raw control or bidi character reaches the terminal or the page.
            assert!(
                !markdown.contains(|c| c != '\n' && crate::text::needs_escape(c)),
                "{name:?}: {markdown}"
            );
            let (blocks, outside) = fenced_blocks(&markdown);
            // One diff block, holding every +/- line: no name closed it early.
            assert_eq!(blocks.len(), 1, "{name:?}:\n{markdown}");
            assert_eq!(blocks[0].lines().count(), 2, "{name:?}:\n{markdown}");
            assert!(blocks[0].starts_with("+ group \""), "{name:?}:\n{markdown}");
            // Outside the block, what is left once code spans are taken out holds no
            // Markdown or HTML that a name could have brought.
            let prose = outside_code_spans(&outside);
            for marker in ["<", ">", "](", "[", "@", "www.", "_x_"] {
                assert!(!prose.contains(marker), "{name:?}: {marker:?} in {prose:?}");
            }
            // Only the heading opens a heading.
            assert_eq!(
                outside.lines().filter(|l| l.starts_with('#')).count(),
                1,
                "{name:?}:\n{markdown}"
            );
        }
    }

    #[test]
    fn a_code_span_keeps_its_text_and_a_fence_outlasts_any_run() {
        assert_eq!(markdown_code_span("desk"), "`desk`");
        assert_eq!(markdown_code_span("a`b"), "``a`b``");
        assert_eq!(markdown_code_span("`x`"), "`` `x` ``");
        assert_eq!(markdown_code_span("a``b"), "```a``b```");
        assert_eq!(markdown_code_span("\u{202e}"), "`\\u{202e}`");
        assert_eq!(fenced("diff", "+ x\n"), "```diff\n+ x\n```\n");
        assert_eq!(fenced("diff", "+ ````\n"), "`````diff\n+ ````\n`````\n");
    }

    #[test]
    fn a_refusal_is_a_heading_and_a_closed_block() {
        let markdown = render_refusal_markdown("stp/`a`.toml", "line one\n```\n<b>two</b>");
        let (blocks, outside) = fenced_blocks(&markdown);
        assert_eq!(blocks, vec!["line one\n```\n<b>two</b>\n".to_owned()]);
        assert_eq!(outside, "### STP plan refused: ``stp/`a`.toml``\n\n");
    }
}
