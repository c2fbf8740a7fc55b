//! Reading desired-state files (TOML with the `desired-toml` feature, JSON always) and
//! writing them back (export).

use std::{fmt::Write as _, path::Path};

use serde::Deserialize;

use super::{
    limits::{self, MAX_DOCUMENT_BYTES, Oversized, ReadBoundedError},
    model::{DesiredGroup, DesiredState, Member},
    validate::{self, Problems},
};
use crate::text::{terminal_safe_json, toml_string};

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (needs the `desired-toml` feature).
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name implies: `.json` is JSON, anything else TOML.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// Why a desired-state file was refused. Syntax errors name the file, line and column;
/// semantic ones the file, group and member.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML/JSON, or not the shape of a desired-state file.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// Well-formed, but the content breaks a rule (duplicate group, a user in two
    /// groups...).
    #[error("{file}: {problems}")]
    Invalid {
        /// The file.
        file: String,
        /// Every problem found.
        problems: Problems,
    },
    /// The document is larger than its limit ([`MAX_DOCUMENT_BYTES`], or the limit given to
    /// [`read_text`]); it was not read further, nor parsed.
    #[error("{file}: the document is {oversized}; nothing was read further")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size and the limit.
        oversized: Oversized,
    },
    /// A TOML file, but the crate was built without the `desired-toml` feature.
    #[error(
        "{file}: reading TOML needs the `desired-toml` feature of gate-stp; use JSON or enable it"
    )]
    TomlNotEnabled {
        /// The file.
        file: String,
    },
}

/// A desired-state file as read: the state, and the config profile the file names
/// (`profile = "desk-a"` beside `main_user_id`), whose credentials it is planned and
/// applied with.
///
/// The profile is kept apart from [`DesiredState`] on purpose: it says which key to sign
/// with on this machine, not anything about Gate's state, so a plan never depends on it.
///
/// ```
/// use gate_stp::desired::{DesiredFile, Format};
///
/// let text = r#"{"main_user_id": 10000, "profile": "desk-a", "group": []}"#;
/// let file = DesiredFile::parse(text, Format::Json, "desk-a.json")?;
/// assert_eq!(file.profile.as_deref(), Some("desk-a"));
/// assert_eq!(file.state.main_user_id, 10000);
/// # Ok::<(), gate_stp::desired::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFile {
    /// The profile of the config file to use for this file's account, if the file names one.
    pub profile: Option<String>,
    /// The desired state.
    pub state: DesiredState,
}

/// The keys of a file, as read: [`DesiredState`]'s and `profile`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    main_user_id: i64,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default, rename = "group")]
    groups: Vec<DesiredGroup>,
}

impl From<FileForm> for DesiredFile {
    fn from(form: FileForm) -> Self {
        Self {
            profile: form.profile,
            state: DesiredState {
                main_user_id: form.main_user_id,
                groups: form.groups,
            },
        }
    }
}

impl DesiredFile {
    /// Parses and checks a desired-state file; `file` names it in errors. An empty
    /// `profile` is refused (it would silently mean "the default profile"). A text above
    /// [`MAX_DOCUMENT_BYTES`] is refused before it is parsed; the counts and lengths of
    /// [`limits`](super::MAX_GROUPS) are checked before anything else about the content.
    pub fn parse(text: &str, format: Format, file: &str) -> Result<DesiredFile, ParseError> {
        limits::check_text(text, MAX_DOCUMENT_BYTES).map_err(|oversized| ParseError::TooLarge {
            file: file.to_owned(),
            oversized,
        })?;
        let parsed: DesiredFile = match format {
            Format::Json => from_json(text, file)?,
            Format::Toml => from_toml(text, file)?,
        }
        .into();
        if parsed
            .profile
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err(ParseError::Syntax {
                file: file.to_owned(),
                line: 1,
                column: 1,
                message:
                    "`profile` is empty: name a profile of the config file, or leave the key out"
                        .to_owned(),
            });
        }
        let problems = validate::check(&parsed.state);
        if problems.is_empty() {
            Ok(parsed)
        } else {
            Err(ParseError::Invalid {
                file: file.to_owned(),
                problems: Problems(problems),
            })
        }
    }

    /// Reads (at most [`MAX_DOCUMENT_BYTES`]), parses and checks a file; the format comes
    /// from its extension.
    pub fn load(path: impl AsRef<Path>) -> Result<DesiredFile, ParseError> {
        let path = path.as_ref();
        let text = read_text(path, MAX_DOCUMENT_BYTES)?;
        Self::parse(&text, Format::from_path(path), &path.display().to_string())
    }
}

/// Reads the UTF-8 text of the file at `path`, refusing a file larger than `max` bytes
/// ([`ParseError::TooLarge`]) after reading at most `max + 1` of its bytes: the one way the
/// crate and its command line read a document or a saved plan
/// ([`MAX_DOCUMENT_BYTES`], [`MAX_PLAN_BYTES`](super::MAX_PLAN_BYTES)).
pub fn read_text(path: &Path, max: usize) -> Result<String, ParseError> {
    let file = || path.display().to_string();
    limits::read_bounded(path, max).map_err(|error| match error {
        ReadBoundedError::Io(source) => ParseError::Io {
            file: file(),
            source,
        },
        ReadBoundedError::Oversized(oversized) => ParseError::TooLarge {
            file: file(),
            oversized,
        },
    })
}

impl DesiredState {
    /// Parses and checks a desired state; `file` names it in errors. A `profile` key is
    /// accepted and dropped: [`DesiredFile::parse`] keeps it.
    ///
    /// ```
    /// use gate_stp::desired::{DesiredState, Format, Member};
    ///
    /// let text = r#"{"main_user_id": 10000, "group": [{"name": "desk", "members": [10001, "bot"]}]}"#;
    /// let desired = DesiredState::parse(text, Format::Json, "stp.json")?;
    /// assert_eq!(desired.groups[0].members[1], Member::Login("bot".into()));
    ///
    /// let broken = DesiredState::parse("{\n  \"main_user_id\": x\n}", Format::Json, "stp.json");
    /// assert!(broken.unwrap_err().to_string().starts_with("stp.json:2:"));
    /// # Ok::<(), gate_stp::desired::ParseError>(())
    /// ```
    pub fn parse(text: &str, format: Format, file: &str) -> Result<DesiredState, ParseError> {
        DesiredFile::parse(text, format, file).map(|parsed| parsed.state)
    }

    /// Reads, parses and checks a file; the format comes from its extension.
    pub fn load(path: impl AsRef<Path>) -> Result<DesiredState, ParseError> {
        DesiredFile::load(path).map(|parsed| parsed.state)
    }

    /// The state as a JSON file (pretty, with a final newline). Characters that could
    /// act on a terminal are written as `\uXXXX`.
    pub fn to_json_string(&self) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        let mut text = terminal_safe_json(serde_json::to_string_pretty(self).unwrap_or_default());
        text.push('\n');
        text
    }

    /// The state as a TOML file, with a header comment. Written here rather than by a TOML
    /// serializer so that the layout stays stable and every character that could act on a
    /// terminal is a `\uXXXX` escape; needs no feature (reading TOML does).
    pub fn to_toml_string(&self) -> String {
        let mut out = format!(
            "# STP groups of main account {main}, for `gate-stp plan` / `gate-stp apply`.\n\
             # Members are user ids or sub-account login names; groups not listed are left alone.\n\n\
             main_user_id = {main}\n",
            main = self.main_user_id
        );
        for group in &self.groups {
            let _ = write!(out, "\n[[group]]\nname = {}\n", toml_string(&group.name));
            if let Some(id) = group.id {
                let _ = writeln!(out, "id = {id}");
            }
            let members: Vec<String> = group
                .members
                .iter()
                .map(|member| match member {
                    Member::Id(id) => id.to_string(),
                    Member::Login(login) => toml_string(login),
                })
                .collect();
            let _ = writeln!(out, "members = [{}]", members.join(", "));
            if group.protect {
                out.push_str("protect = true\n");
            }
        }
        out
    }
}

fn from_json(text: &str, file: &str) -> Result<FileForm, ParseError> {
    serde_json::from_str(text).map_err(|error| ParseError::Syntax {
        file: file.to_owned(),
        line: error.line().max(1),
        column: error.column().max(1),
        message: strip_position(&error.to_string()),
    })
}

/// serde_json appends " at line L column C" to its messages; the error says it already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(feature = "desired-toml")]
fn from_toml(text: &str, file: &str) -> Result<FileForm, ParseError> {
    toml::from_str(text).map_err(|error| {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| crate::text::line_column(text, span.start));
        ParseError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: error.message().trim_end().to_owned(),
        }
    })
}

#[cfg(not(feature = "desired-toml"))]
fn from_toml(_text: &str, file: &str) -> Result<FileForm, ParseError> {
    Err(ParseError::TomlNotEnabled {
        file: file.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{desired::DesiredGroup, text::needs_escape};

    #[test]
    fn json_errors_name_file_line_and_column() {
        let text = "{\n  \"main_user_id\": 10000,\n  \"group\": [{\"nam\": \"x\"}]\n}";
        let error = DesiredState::parse(text, Format::Json, "desk.json").unwrap_err();
        let ParseError::Syntax {
            file, line, column, ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!((file.as_str(), *line), ("desk.json", 3));
        assert!(*column > 1);
        assert!(error.to_string().contains("unknown field `nam`"), "{error}");
    }

    #[test]
    fn semantic_errors_name_the_file_and_group() {
        let text = r#"{"main_user_id": 10000, "group": [{"name": "a"}, {"name": "a"}]}"#;
        let error = DesiredState::parse(text, Format::Json, "f.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            "f.json: group \"a\" is declared more than once (names are the key of a file)"
        );
    }

    #[test]
    fn names_that_could_act_on_a_terminal_are_written_escaped() {
        // A name with control characters (Gate's names are server-controlled) is written
        // escaped and reads back the same.
        let hostile = DesiredState {
            main_user_id: 1,
            groups: vec![DesiredGroup {
                name: "desk\u{1b}[2J\n\"x\" \\ \u{202e}\u{85}\u{200b}\u{e0041}\u{fe0f}\u{e0100}\u{feff}\u{e000}"
                    .into(),
                id: Some(5),
                members: vec![],
                protect: false,
            }],
        };
        let mut written = vec![(hostile.to_json_string(), Format::Json)];
        if cfg!(feature = "desired-toml") {
            written.push((hostile.to_toml_string(), Format::Toml));
        }
        for (text, format) in written {
            assert!(!text.contains(|c| c != '\n' && needs_escape(c)), "{text}");
            assert_eq!(DesiredState::parse(&text, format, "x").unwrap(), hostile);
        }
    }

    #[cfg(feature = "desired-toml")]
    #[test]
    fn toml_round_trips_and_reports_positions() {
        let desired = DesiredState {
            main_user_id: 10000,
            groups: vec![DesiredGroup {
                name: "desk \"one\"".into(),
                id: Some(100001),
                members: vec![
                    crate::desired::Member::Id(10000),
                    crate::desired::Member::Login("bot-1".into()),
                ],
                protect: true,
            }],
        };
        let text = desired.to_toml_string();
        assert!(text.contains("[[group]]"), "{text}");
        assert_eq!(
            DesiredState::parse(&text, Format::Toml, "x.toml").unwrap(),
            desired
        );

        let broken = "main_user_id = 10000\n\n[[group]]\nname = \"a\"\nmembers = [1, 2.5]\n";
        let error = DesiredState::parse(broken, Format::Toml, "desk.toml").unwrap_err();
        let ParseError::Syntax { line, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(*line, 5, "{error}");
        assert!(error.to_string().starts_with("desk.toml:5:"), "{error}");
    }

    #[test]
    fn a_file_may_name_its_profile_and_an_empty_one_is_refused() {
        let json = r#"{"main_user_id": 10000, "profile": "desk-a", "group": [{"name": "g"}]}"#;
        let parsed = DesiredFile::parse(json, Format::Json, "a.json").unwrap();
        assert_eq!(parsed.profile.as_deref(), Some("desk-a"));
        assert_eq!(parsed.state.groups[0].name, "g");
        // The state alone is the same file without the key.
        let without = r#"{"main_user_id": 10000, "group": [{"name": "g"}]}"#;
        assert_eq!(
            DesiredState::parse(json, Format::Json, "a.json").unwrap(),
            DesiredState::parse(without, Format::Json, "b.json").unwrap()
        );
        assert_eq!(
            DesiredFile::parse(without, Format::Json, "b.json")
                .unwrap()
                .profile,
            None
        );
        let empty = r#"{"main_user_id": 10000, "profile": " "}"#;
        let error = DesiredFile::parse(empty, Format::Json, "e.json").unwrap_err();
        assert!(error.to_string().contains("`profile` is empty"), "{error}");
        // Still no other unknown key at the top.
        let typo = r#"{"main_user_id": 10000, "profiel": "desk-a"}"#;
        let error = DesiredFile::parse(typo, Format::Json, "t.json").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `profiel`"),
            "{error}"
        );
    }

    #[test]
    fn oversized_documents_long_names_and_too_many_groups_are_refused_in_one_line() {
        use crate::desired::{MAX_DOCUMENT_BYTES, MAX_GROUPS, MAX_NAME_CHARS};
        // A document above the size limit is not parsed (this one is not even JSON).
        let big = "x".repeat(MAX_DOCUMENT_BYTES + 1);
        let error = DesiredFile::parse(&big, Format::Json, "big.json").unwrap_err();
        assert!(matches!(error, ParseError::TooLarge { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "big.json: the document is {} bytes, more than the limit of 4 MiB; nothing was read further",
                MAX_DOCUMENT_BYTES + 1
            )
        );
        // Exactly at the limit, it is parsed (and found not to be JSON).
        let edge = "x".repeat(MAX_DOCUMENT_BYTES);
        let error = DesiredFile::parse(&edge, Format::Json, "edge.json").unwrap_err();
        assert!(matches!(error, ParseError::Syntax { .. }), "{error:?}");

        // A name one character too long is refused, quoted cut, the reason first.
        let long = "n".repeat(MAX_NAME_CHARS + 1);
        let text = format!(r#"{{"main_user_id": 1, "group": [{{"name": "{long}"}}]}}"#);
        let error = DesiredFile::parse(&text, Format::Json, "n.json").unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "n.json: group #1 has a name of {} characters, more than the limit of {MAX_NAME_CHARS}: \"nnn",
                MAX_NAME_CHARS + 1
            )),
            "{message}"
        );
        assert!(message.ends_with("…(1 more character)\""), "{message}");
        assert!(!message.contains('\n'), "{message}");
        // At the limit, accepted.
        let name = "n".repeat(MAX_NAME_CHARS);
        let text = format!(r#"{{"main_user_id": 1, "group": [{{"name": "{name}"}}]}}"#);
        DesiredFile::parse(&text, Format::Json, "n.json").unwrap();
        // A login name too long, likewise.
        let text =
            format!(r#"{{"main_user_id": 1, "group": [{{"name": "g", "members": ["{long}"]}}]}}"#);
        let error = DesiredFile::parse(&text, Format::Json, "l.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "l.json: group \"g\": a member's login name has 257 characters, more than the limit of {MAX_NAME_CHARS}"
            )
        );

        // A login name at the limit is accepted (and found unknown only when planning).
        let login = "l".repeat(MAX_NAME_CHARS);
        let text =
            format!(r#"{{"main_user_id": 1, "group": [{{"name": "g", "members": ["{login}"]}}]}}"#);
        DesiredFile::parse(&text, Format::Json, "l.json").unwrap();

        // Fifty problems are all shown; fifty-one, the last one is counted.
        let names = |count: usize| {
            let groups: Vec<String> = (0..=count).map(|_| r#"{"name": "x"}"#.to_owned()).collect();
            format!(r#"{{"main_user_id": 1, "group": [{}]}}"#, groups.join(","))
        };
        let fifty = DesiredFile::parse(&names(50), Format::Json, "f.json")
            .unwrap_err()
            .to_string();
        assert_eq!(fifty.lines().count(), 51, "{fifty}");
        assert!(!fifty.contains("  - and "), "{fifty}");
        let fifty_one = DesiredFile::parse(&names(51), Format::Json, "f.json")
            .unwrap_err()
            .to_string();
        assert_eq!(fifty_one.lines().count(), 52, "{fifty_one}");
        assert!(fifty_one.ends_with("\n  - and 1 more"), "{fifty_one}");

        // One group more than the limit: one line, whatever else is wrong with them.
        let groups: Vec<String> = (0..=MAX_GROUPS)
            .map(|_| r#"{"name": "same"}"#.to_owned())
            .collect();
        let text = format!(r#"{{"main_user_id": 1, "group": [{}]}}"#, groups.join(","));
        let error = DesiredFile::parse(&text, Format::Json, "many.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "many.json: the document declares {} groups, more than the limit of {MAX_GROUPS}; nothing was planned",
                MAX_GROUPS + 1
            )
        );
        // At the limit, checked as usual (here: every name a duplicate, the list cut).
        let text = format!(
            r#"{{"main_user_id": 1, "group": [{}]}}"#,
            groups[1..].join(",")
        );
        let message = DesiredFile::parse(&text, Format::Json, "many.json")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("many.json: 9999 problems:"),
            "{}",
            &message[..80]
        );
        assert_eq!(message.lines().count(), 1 + 50 + 1);
        assert!(
            message.ends_with("\n  - and 9949 more"),
            "{}",
            &message[message.len() - 80..]
        );
    }

    #[test]
    fn read_text_refuses_a_file_above_its_limit() {
        let dir = std::env::temp_dir().join(format!("gate-stp-read-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.json");
        std::fs::write(&path, r#"{"main_user_id": 1}"#).unwrap();
        assert_eq!(read_text(&path, 19).unwrap(), r#"{"main_user_id": 1}"#);
        let error = read_text(&path, 18).unwrap_err();
        assert!(matches!(error, ParseError::TooLarge { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("19 bytes, more than the limit of 18 bytes"),
            "{error}"
        );
        assert!(DesiredFile::load(&path).is_ok());
        let error = read_text(&dir.join("none"), 18).unwrap_err();
        assert!(matches!(error, ParseError::Io { .. }), "{error:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Built without `desired-toml`, a TOML file is refused by name with the way out, not
    /// misread. (Only a build without the feature runs this: `cargo test --lib --features mock`.)
    #[cfg(not(feature = "desired-toml"))]
    #[test]
    fn without_desired_toml_a_toml_file_is_refused_by_name() {
        let error =
            DesiredState::parse("main_user_id = 10000\n", Format::Toml, "desk.toml").unwrap_err();
        assert!(
            matches!(&error, ParseError::TomlNotEnabled { file } if file == "desk.toml"),
            "{error:?}"
        );
        assert!(error.to_string().contains("use JSON"), "{error}");
    }

    #[cfg(feature = "desired-toml")]
    #[test]
    fn a_toml_file_names_its_profile_beside_main_user_id() {
        let text = "main_user_id = 10000\nprofile = \"desk-b\"\n\n[[group]]\nname = \"g\"\nmembers = [10000]\n";
        let parsed = DesiredFile::parse(text, Format::Toml, "b.toml").unwrap();
        assert_eq!(parsed.profile.as_deref(), Some("desk-b"));
        assert_eq!(parsed.state.groups[0].members, vec![Member::Id(10000)]);
    }
}
