//! Text from a server, a file or a user made safe to show to a person or a model.
//!
//! Group names, Gate's `label`, `message` and `detail`, a redirect's location, snippets of
//! unexpected bodies and the names in a desired-state document are written by someone else.
//! Printed raw, an escape sequence in them can rewrite the operator's terminal (move the
//! cursor, change the title, hide lines), a carriage return can overwrite what was printed
//! before, a bidi override can make text read differently from what it is, and invisible
//! characters can hide text from a reviewer while a model reads it (Unicode tag characters
//! spell ASCII no one sees) or make two different names look the same (a zero-width space).
//!
//! The rule, in one place ([`needs_escape`]): every character whose Unicode general category
//! is Cc (controls), Cf (format: zero-width characters, bidi controls, tag characters, the
//! byte order mark, U+061C...), Co (private use), Cn (unassigned, and the noncharacters),
//! Zl or Zp (line and paragraph separators), and every variation selector, is written as a
//! visible escape. [`escape_control`] does it for terminals, logs, error `Display`, plans and
//! the text a model reads; [`escape_json_controls`] and the TOML writer keep exact values in
//! JSON and TOML with the formats' own `\u` escapes.

use std::{borrow::Cow, fmt, fmt::Write as _};

use unicode_general_category::{GeneralCategory, get_general_category};

/// Whether `c` must not reach a person or a model as is: a character of general category
/// Cc, Cf, Co, Cn, Zl or Zp (from the Unicode tables of the `unicode-general-category`
/// crate), or a variation selector. Tab, newline and carriage return are controls too: one
/// error or one table cell stays on one line.
pub fn needs_escape(c: char) -> bool {
    if c.is_ascii() {
        // The common case, without a table lookup: in ASCII only C0 and DEL are Cc.
        return c.is_ascii_control();
    }
    is_variation_selector(c)
        || matches!(
            get_general_category(c),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Unicode's `Variation_Selector` property (PropList.txt, unchanged since Unicode 14): the
/// Mongolian free variation selectors, VS1–VS16 and VS17–VS256. Listed here because they are
/// general category Mn (combining marks), which the rule otherwise keeps, and no crate of the
/// tree exposes the property; they change how the character before them looks, or hide
/// bytes in a name, and show nothing themselves.
fn is_variation_selector(c: char) -> bool {
    matches!(c,
        '\u{180b}'..='\u{180d}'
        | '\u{180f}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{e0100}'..='\u{e01ef}')
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
/// newlines written as `\uXXXX` (a UTF-16 surrogate pair above U+FFFF, as JSON requires).
/// serde_json escapes C0 controls inside strings but writes the others raw; outside the
/// layout they can only occur inside strings, where the escape means the same character,
/// so the document decodes to the same values and no terminal or model sees them raw.
pub fn escape_json_controls(json: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && needs_escape(c);
    if !json.contains(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max_chars` characters, the cut marked with `…(N more characters)`
/// (`…(1 more character)`)
/// so that a reader knows something was left out. Cuts only between characters.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let left_out = text[end..].chars().count();
            let noun = if left_out == 1 {
                "character"
            } else {
                "characters"
            };
            Cow::Owned(format!("{}…({left_out} more {noun})", &text[..end]))
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

/// A TOML basic string: `"` and `\` escaped, every [`needs_escape`] character as `\uXXXX`
/// (`\UXXXXXXXX` above U+FFFF), so the value reads back exactly.
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
            c if needs_escape(c) && (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The most characters of a name a message quotes: a valid group name (at most
/// [`MAX_NAME_CHARS`](crate::desired::MAX_NAME_CHARS)) is quoted whole, a longer one is cut
/// and marked, so that the reason after it always shows.
pub(crate) const MAX_QUOTED_CHARS: usize = 256;

/// `"name"` escaped and cut to [`MAX_QUOTED_CHARS`]: names come from files and from Gate.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = truncate_chars(self.0, MAX_QUOTED_CHARS);
        write!(f, "\"{}\"", escape_control(&cut))
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
        assert_eq!(truncate_chars("abc", 2), "ab…(1 more character)");
    }

    /// The categories the rule escapes, read from the crate's table: the reference the
    /// properties below check `needs_escape` and the escapes against.
    fn in_escaped_category(c: char) -> bool {
        use GeneralCategory::*;
        matches!(
            get_general_category(c),
            Control | Format | PrivateUse | Unassigned | LineSeparator | ParagraphSeparator
        )
    }

    /// Characters from where the invisible ones live (tags, variation selectors, the
    /// general punctuation block, Arabic, private use, the specials) as well as anywhere.
    fn tricky_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            any::<char>(),
            prop::char::range('\u{e0000}', '\u{e01ff}'),
            prop::char::range('\u{2000}', '\u{206f}'),
            prop::char::range('\u{fe00}', '\u{feff}'),
            prop::char::range('\u{0600}', '\u{061f}'),
            prop::char::range('\u{1800}', '\u{1810}'),
            prop::char::range('\u{e000}', '\u{e010}'),
            prop::char::range('\u{fff0}', '\u{ffff}'),
            prop::char::range(' ', '~'),
        ];
        prop::collection::vec(c, 0..40).prop_map(|chars| chars.into_iter().collect())
    }

    #[test]
    fn invisible_characters_are_escaped() {
        // The list: tag characters, zero-width characters, the Arabic letter mark,
        // the byte order mark, variation selectors (all three ranges), private use,
        // unassigned code points and noncharacters.
        let cases = [
            ('\u{e0020}', "\\u{e0020}"),
            ('\u{e0041}', "\\u{e0041}"),
            ('\u{e007f}', "\\u{e007f}"),
            ('\u{e0001}', "\\u{e0001}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{200d}', "\\u{200d}"),
            ('\u{200f}', "\\u{200f}"),
            ('\u{2060}', "\\u{2060}"),
            ('\u{2064}', "\\u{2064}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{061c}', "\\u{61c}"),
            ('\u{00ad}', "\\u{ad}"),
            ('\u{fe00}', "\\u{fe00}"),
            ('\u{fe0f}', "\\u{fe0f}"),
            ('\u{e0100}', "\\u{e0100}"),
            ('\u{e01ef}', "\\u{e01ef}"),
            ('\u{180b}', "\\u{180b}"),
            ('\u{180d}', "\\u{180d}"),
            ('\u{180f}', "\\u{180f}"),
            ('\u{e000}', "\\u{e000}"),
            ('\u{10fffd}', "\\u{10fffd}"),
            ('\u{0378}', "\\u{378}"),
            ('\u{ffff}', "\\u{ffff}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
        ];
        for (c, escaped) in cases {
            assert!(needs_escape(c), "U+{:04X}", c as u32);
            assert_eq!(escape_control(&format!("a{c}b")), format!("a{escaped}b"));
        }
        // Their neighbours that show something stay as they are.
        for c in [
            '\u{180e}',
            '\u{fe10}',
            '\u{e01f0}',
            '\u{2065}',
            '\u{e0080}',
            'é',
            '🚀',
        ] {
            assert_eq!(
                needs_escape(c),
                in_escaped_category(c),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(!needs_escape('\u{fe10}') && !needs_escape('🚀') && !needs_escape(' '));
        // A tag-character message hidden in a name is visible once escaped.
        let hidden: String = "ignore"
            .chars()
            .map(|c| char::from_u32(0xe0000 + c as u32).unwrap())
            .collect();
        let name = format!("desk{hidden}");
        let shown = escape_control(&name);
        assert_eq!(
            shown,
            "desk\\u{e0069}\\u{e0067}\\u{e006e}\\u{e006f}\\u{e0072}\\u{e0065}"
        );
    }

    #[test]
    fn the_rule_is_the_unicode_table_for_every_character() {
        // Every scalar value: the ASCII short-cut and the variation selectors agree with the
        // table, and every escape reads as one character's code point.
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let selector =
                matches!(c as u32, 0x180b..=0x180d | 0x180f | 0xfe00..=0xfe0f | 0xe0100..=0xe01ef);
            assert_eq!(
                needs_escape(c),
                in_escaped_category(c) || selector,
                "U+{:04X}",
                c as u32
            );
            // std's own idea of a control (Cc) is a subset.
            assert!(!c.is_control() || needs_escape(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn json_and_toml_escape_characters_above_the_basic_plane() {
        let text = "a\u{e0041}\u{feff}\u{fe0f}\u{e0100}b";
        let json = terminal_safe_json(serde_json::to_string(text).unwrap());
        assert_eq!(json, "\"a\\udb40\\udc41\\ufeff\\ufe0f\\udb40\\udd00b\"");
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
        assert_eq!(
            toml_string(text),
            "\"a\\U000e0041\\ufeff\\ufe0f\\U000e0100b\""
        );
    }

    #[test]
    fn a_quoted_name_is_cut_before_the_reason() {
        let long = "x".repeat(MAX_QUOTED_CHARS + 10);
        let quoted = Quoted(&long).to_string();
        assert!(quoted.starts_with(&format!("\"{}", "x".repeat(MAX_QUOTED_CHARS))));
        assert!(quoted.ends_with("…(10 more characters)\""), "{quoted}");
        let exact = "y".repeat(MAX_QUOTED_CHARS);
        assert_eq!(Quoted(&exact).to_string(), format!("\"{exact}\""));
    }

    proptest! {
        #[test]
        fn no_character_of_the_rule_survives_escaping(text in tricky_text()) {
            let escaped = escape_control(&text);
            prop_assert!(
                !escaped.chars().any(|c| in_escaped_category(c) || needs_escape(c)),
                "{:?}",
                escaped
            );
            // Every character the table selects in the input is written as its escape.
            for c in text.chars().filter(|c| in_escaped_category(*c)) {
                let code = if (c as u32) < 0x80 {
                    format!("\\x{:02x}", c as u32)
                } else {
                    format!("\\u{{{:x}}}", c as u32)
                };
                prop_assert!(escaped.contains(&code), "{:?} lacks {}", escaped, code);
            }
        }

        #[test]
        fn json_and_toml_keep_every_value_with_no_raw_character_of_the_rule(text in tricky_text()) {
            let json = terminal_safe_json(serde_json::to_string(&text).unwrap());
            prop_assert!(!json.contains(needs_escape), "{:?}", json);
            prop_assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text.clone());
            let toml = toml_string(&text);
            prop_assert!(!toml.contains(needs_escape), "{:?}", toml);
            #[cfg(feature = "desired-toml")]
            {
                let table: toml::Table = toml::from_str(&format!("v = {toml}")).unwrap();
                prop_assert_eq!(table["v"].as_str(), Some(text.as_str()));
            }
        }

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
                prop_assert!(cut.contains("more character"));
            }
        }
    }
}
