//! Server-controlled text made safe to print on a terminal or in a log line.
//!
//! Group names, Gate's `label`, `message` and `detail`, a redirect's location and snippets of
//! unexpected bodies are written by whoever runs the server. Printed raw, an escape sequence
//! in them can rewrite the operator's terminal (move the cursor, change the title, hide
//! lines), a carriage return can overwrite what was printed before, and a bidi override can
//! make text read differently from what it is. [`escape_control`] is the one function that
//! turns such characters into visible escapes; the crate's error `Display` and the CLI both
//! use it.

use std::{borrow::Cow, fmt, fmt::Write as _};

/// Whether `c` must not reach a terminal or a log line as is: C0 controls (including tab,
/// newline and carriage return: one error or one table cell stays on one line), DEL, C1
/// controls, the line and paragraph separators, and the bidi embedding, override and
/// isolate characters.
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `text` with every character [`needs_escape`] selects written as a visible escape: `\x1b`
/// for C0 controls and DEL, `\u{85}` for the rest. Everything else, including backslashes
/// and non-ASCII letters, is kept as is; text that needs no escape is borrowed, not copied.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// JSON text (compact or pretty) with every [`needs_escape`] character except the layout's
/// newlines written as `\uXXXX`. serde_json escapes C0 controls inside strings but writes
/// DEL, C1 controls, bidi overrides and line separators raw; they can only occur inside
/// strings, where `\uXXXX` means the same character (all are in the Basic Multilingual
/// Plane), so the document decodes to the same values and no terminal sees them raw.
pub fn escape_json_controls(json: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && needs_escape(c);
    if !json.contains(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max_chars` characters, the cut marked with `…(N more characters)`
/// so that a reader knows something was left out. Cuts only between characters.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let left_out = text[end..].chars().count();
            Cow::Owned(format!("{}…({left_out} more characters)", &text[..end]))
        }
    }
}

/// Pretty JSON of ours made terminal-safe (see [`escape_json_controls`]); takes and returns
/// the owned text so that the common case (nothing to escape) copies nothing.
pub(crate) fn terminal_safe_json(json: String) -> String {
    match escape_json_controls(&json) {
        Cow::Borrowed(_) => json,
        Cow::Owned(safe) => safe,
    }
}

/// A TOML basic string: `"` and `\` escaped, every [`needs_escape`] character as `\uXXXX`.
///
/// Hand-written on purpose: the `toml` crate is optional (feature `desired-toml`), and a plan
/// or an export must write TOML-safe names without it.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"name"` with control characters escaped: names come from files and from Gate.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape_control(self.0))
    }
}

/// Ids as `1, 2, 3`.
pub(crate) struct Ids<'a>(pub(crate) &'a [i64]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset of `text`; an offset inside a
/// character counts as that character's start, one past the end as the end. Used for the
/// positions of parse errors in desired-state files and emulator world files.
#[cfg_attr(
    not(any(feature = "desired-toml", feature = "mock", test)),
    allow(dead_code)
)]
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("desk"), "desk");
        assert_eq!(escape_control("a\nb\u{1b}[2J"), "a\\x0ab\\x1b[2J");
        assert_eq!(escape_control("r\u{202e}l\u{85}"), "r\\u{202e}l\\u{85}");
        assert_eq!(
            terminal_safe_json(serde_json::to_string("a\u{202e}\u{7f}").unwrap()),
            "\"a\\u202e\\u007f\""
        );
        assert_eq!(toml_string("q\"b\\\u{1b}"), "\"q\\\"b\\\\\\u001b\"");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        assert_eq!(Quoted("a\u{1b}").to_string(), "\"a\\x1b\"");
        assert_eq!(Ids(&[3, 1, 2]).to_string(), "3, 1, 2");
        assert_eq!(Ids(&[]).to_string(), "");
    }

    #[test]
    fn line_column_counts_characters_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nxé!", 6), (2, 3));
        assert_eq!(line_column("", 10), (1, 1));
        let text = "a\nbé c\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (2, 1));
        assert_eq!(line_column(text, 5), (2, 3));
        assert_eq!(line_column(text, 4), (2, 2)); // inside 'é': floor to its start
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn escapes_are_visible_and_distinct() {
        assert_eq!(
            escape_control("a\u{1b}[2Jb\u{7}\r\n\0"),
            "a\\x1b[2Jb\\x07\\x0d\\x0a\\x00"
        );
        assert_eq!(escape_control("\u{7f}\u{85}\u{9b}"), "\\x7f\\u{85}\\u{9b}");
        assert_eq!(
            escape_control("left\u{202e}thgir\u{2066}x\u{2069}"),
            "left\\u{202e}thgir\\u{2066}x\\u{2069}"
        );
    }

    #[test]
    fn ascii_controls_are_byte_escapes_and_the_rest_code_points() {
        // U+007F is the last character below 0x80, U+0080 the first C1 control: written as
        // `\x80` it would read as a raw byte of an invalid UTF-8 sequence, not a character.
        assert_eq!(escape_control("\u{7f}"), "\\x7f");
        assert_eq!(escape_control("\u{80}"), "\\u{80}");
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for text in ["desk-1", "Déjà vu 取引 🚀", "back\\slash", "\u{fffd}", ""] {
            assert!(matches!(escape_control(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn truncation_is_marked_and_counts_characters() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcdé", 2), "ab…(3 more characters)");
        assert_eq!(truncate_chars("ééé", 0), "…(3 more characters)");
    }

    proptest! {
        #[test]
        fn output_never_contains_a_character_to_escape(text in any::<String>()) {
            let escaped = escape_control(&text);
            prop_assert!(!escaped.chars().any(needs_escape), "{:?}", escaped);
            prop_assert!(!escaped.chars().any(char::is_control), "{:?}", escaped);
        }

        #[test]
        fn text_without_such_characters_is_unchanged(
            text in any::<String>().prop_map(|t| t.replace(needs_escape, ""))
        ) {
            prop_assert_eq!(escape_control(&text), text.as_str());
        }

        #[test]
        fn printable_characters_survive_in_order(text in any::<String>()) {
            let kept: String = text.chars().filter(|c| !needs_escape(*c)).collect();
            let escaped = escape_control(&text);
            // Removing the escapes (which contain only printable ASCII) gives back the
            // printable characters in their order.
            let mut rest = escaped.as_ref();
            for c in kept.chars() {
                let at = rest.find(c);
                prop_assert!(at.is_some(), "{:?} lost from {:?}", c, escaped);
                rest = &rest[at.unwrap_or(0) + c.len_utf8()..];
            }
        }

        #[test]
        fn escaping_twice_changes_nothing_more(text in any::<String>()) {
            // Callers may escape a line that holds already escaped parts (an error's
            // Display inside a CLI message) without mangling them.
            let once = escape_control(&text).into_owned();
            prop_assert_eq!(escape_control(&once), once.as_str());
        }

        #[test]
        fn json_keeps_its_values_without_raw_controls(text in any::<String>()) {
            let compact = serde_json::to_string(&text).unwrap();
            let pretty = serde_json::to_string_pretty(&vec![text.clone()]).unwrap();
            let safe = escape_json_controls(&compact);
            prop_assert!(!safe.contains(needs_escape), "{:?}", safe);
            prop_assert_eq!(serde_json::from_str::<String>(&safe).unwrap(), text.clone());
            let safe = escape_json_controls(&pretty);
            prop_assert!(!safe.contains(|c| c != '\n' && needs_escape(c)), "{:?}", safe);
            prop_assert_eq!(serde_json::from_str::<Vec<String>>(&safe).unwrap(), vec![text]);
        }

        #[test]
        fn truncation_keeps_a_prefix(text in any::<String>(), max in 0usize..50) {
            let cut = truncate_chars(&text, max);
            if text.chars().count() <= max {
                prop_assert_eq!(cut.as_ref(), text.as_str());
            } else {
                let kept: String = text.chars().take(max).collect();
                prop_assert!(cut.starts_with(&kept));
                prop_assert!(cut.contains("more characters)"));
            }
        }
    }
}
