//! The one output layer: aligned tables for people, JSON for programs (`--json`), colour
//! only on a terminal and never with `NO_COLOR`, escaping, plurals, and the stdout and
//! stderr sinks.
//!
//! Everything the CLI writes goes through [`outln!`] (stdout) or
//! [`errln!`] (stderr): a closed stdout (`gate-stp groups list | head -1`) ends
//! the process quietly, and text that came from a server or a file is escaped on its way to
//! the terminal. `clippy::print_stdout` and `clippy::print_stderr` are denied in this binary
//! so that no path bypasses them.

use std::{
    fmt,
    io::{self, IsTerminal, Write},
    sync::atomic::{AtomicBool, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use gate_stp::{
    ClockSync,
    models::{StpGroup, StpGroupUser},
    text::{escape_control, truncate_chars},
};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// Longest server-provided text shown in a table cell, in characters; `--json` has it all.
pub(crate) const MAX_CELL_CHARS: usize = 64;

/// Writes one line to stdout; a closed pipe ends the process quietly.
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// Writes one line to stderr, control characters escaped. Failure to write is ignored:
/// there is nowhere left to report it.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!($($arg)*)) };
}

// Imported by path (`use crate::output::outln`) like any other item of this module, rather
// than exported at the crate root where they would look like part of main.rs.
pub(crate) use {errln, outln};

/// Set by a command that changes state (`apply`): once it has started, its work must not
/// stop half-way because nobody reads its report. A failed stdout then only silences the
/// report; the command finishes and its exit code says how the work went.
static FINISH_WHEN_STDOUT_FAILS: AtomicBool = AtomicBool::new(false);
/// Stdout failed while [`FINISH_WHEN_STDOUT_FAILS`] was set: nothing more is written.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// ... and not because of a closed pipe: the process must not end with success.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// From now on a failure to write stdout silences it instead of ending the process.
pub(crate) fn finish_even_if_stdout_fails() {
    FINISH_WHEN_STDOUT_FAILS.store(true, Ordering::Relaxed);
}

/// Whether stdout failed (other than by a closed pipe) while a command finished its work.
pub(crate) fn stdout_failed_meanwhile() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// Every line is escaped at this sink, whatever built it: table cells and errors are
/// escaped already (escaping is idempotent), anything else that came from a server or a
/// file cannot slip through.
pub(crate) fn write_stdout(line: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let text = line.to_string();
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(escape_control(&text).as_bytes())
        .and_then(|()| stdout.write_all(b"\n"));
    if let Err(error) = written {
        stdout_failed(&error);
    }
}

/// Writes bytes to stdout as they are (generated scripts and pages, rendered plans).
pub(crate) fn write_stdout_bytes(bytes: &[u8]) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(error) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        stdout_failed(&error);
    }
}

/// A reader that stopped reading (`head`, `less` quit) is a normal end, as for any Unix
/// filter: exit 0 without a word. Any other failure to write is reported. While a command
/// finishes its work regardless ([`finish_even_if_stdout_fails`]), stdout only goes quiet.
fn stdout_failed(error: &io::Error) {
    let closed_pipe = error.kind() == io::ErrorKind::BrokenPipe;
    if !closed_pipe {
        write_stderr(format_args!("error: cannot write to stdout: {error}"));
    }
    if FINISH_WHEN_STDOUT_FAILS.load(Ordering::Relaxed) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        STDOUT_FAILED.fetch_or(!closed_pipe, Ordering::Relaxed);
        return;
    }
    std::process::exit(if closed_pipe {
        0
    } else {
        i32::from(crate::failure::exit::OUTPUT)
    });
}

/// Writes bytes to stderr as they are (progress built from escaped parts, with the
/// colour codes meant); a failure to write is ignored: there is nowhere left to report it.
pub(crate) fn write_stderr_bytes(bytes: &[u8]) {
    let _ = io::stderr().lock().write_all(bytes);
}

pub(crate) fn write_stderr(line: fmt::Arguments<'_>) {
    let text = line.to_string();
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{}", escape_control(&text));
}

/// Writes text to stdout as it is: plans, files and reports are built with every server-
/// or file-controlled string escaped already, and the colour codes are meant. A closed pipe
/// (`gate-stp plan stp.toml | head -3`) ends the process quietly, as for any Unix filter.
pub(crate) fn out(text: impl AsRef<str>) {
    write_stdout_bytes(text.as_ref().as_bytes());
}

/// Writes progress to stderr as it is (built from escaped parts); a failure to write is
/// ignored (nowhere left to report it).
pub(crate) fn err(text: impl AsRef<str>) {
    write_stderr_bytes(text.as_ref().as_bytes());
}

/// A path or other local text with control characters escaped.
pub(crate) fn escape(text: &str) -> String {
    escape_control(text).into_owned()
}

/// `1 group`, `2 groups`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

/// Whether what goes to stdout may be coloured.
pub(crate) fn colour_on_stdout() -> bool {
    colour_wanted(io::stdout().is_terminal(), anstyle_query::no_color())
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but empty
/// (no-color.org; `anstyle_query::no_color` reads the variable, as clap's anstream does).
/// Not anstream's whole choice: it also reads `CLICOLOR`, `CLICOLOR_FORCE` and `TERM`, which
/// this tool has never followed.
fn colour_wanted(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

/// Logs go to stderr, filtered by `RUST_LOG` (nothing below WARN by default), coloured by
/// the same rule as the rest of the output: tracing-subscriber colours by default, which
/// fills a log file (`2>log`) with escape sequences.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = colour_wanted(io::stderr().is_terminal(), anstyle_query::no_color());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// The format a command prints in, reconciled in this one place for every command that
/// has a `--format`: the `--format` given, else `as_json` for `--json`, else `default`;
/// `--json` with another `--format` is refused.
pub(crate) fn output_format<F: Copy + PartialEq>(
    format: Option<F>,
    json: bool,
    as_json: F,
    default: F,
) -> Result<F, crate::failure::Failure> {
    match (format, json) {
        (Some(format), true) if format != as_json => Err(crate::failure::Failure::usage(
            "--json asks for --format json; give one of them",
        )),
        (Some(format), _) => Ok(format),
        (None, true) => Ok(as_json),
        (None, false) => Ok(default),
    }
}

/// Printer chosen by `--json`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether programs read the output (`--json`).
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// A value as one line of JSON, nothing raw a terminal would act on.
    pub(crate) fn json_value(&self, value: &impl Serialize) {
        print_json(value);
    }

    /// A JSON document the library wrote terminal-safe already (a plan), as it is.
    pub(crate) fn json_document(&self, text: &str) {
        out(text);
    }

    pub(crate) fn groups(&self, groups: &[StpGroup]) {
        if self.json {
            return print_json(&groups);
        }
        let rows = groups
            .iter()
            .map(|g| {
                vec![
                    opt(g.id),
                    cell(&g.name),
                    opt(g.creator_id),
                    time(g.create_time),
                ]
            })
            .collect::<Vec<_>>();
        print_table(&["ID", "NAME", "CREATOR", "CREATED (UTC)"], &rows, "groups");
    }

    pub(crate) fn group(&self, group: &StpGroup) {
        self.groups(std::slice::from_ref(group));
    }

    pub(crate) fn users(&self, users: &[StpGroupUser]) {
        if self.json {
            return print_json(&users);
        }
        let rows = users
            .iter()
            .map(|u| vec![opt(u.user_id), opt(u.stp_id), time(u.create_time)])
            .collect::<Vec<_>>();
        print_table(&["USER", "GROUP", "JOINED (UTC)"], &rows, "members");
    }

    pub(crate) fn clock(&self, sync: &ClockSync) {
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default()
        };
        if self.json {
            return print_json(&serde_json::json!({
                "server_time_ms": ms(sync.server_time),
                "local_time_ms": ms(sync.local_time),
                "offset_ms": sync.offset_ms,
                "round_trip_ms": sync.round_trip.as_millis() as u64,
            }));
        }
        outln!("server time:  {}", iso8601_millis(ms(sync.server_time)));
        outln!("local time:   {}", iso8601_millis(ms(sync.local_time)));
        let direction = if sync.offset_ms >= 0 {
            "behind"
        } else {
            "ahead of"
        };
        outln!(
            "offset:       {:+} ms (this machine is {} ms {direction} Gate)",
            sync.offset_ms,
            sync.offset_ms.unsigned_abs()
        );
        outln!("round trip:   {} ms", sync.round_trip.as_millis());
    }
}

fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Server text in a table cell: cut to [`MAX_CELL_CHARS`] with a marker, then escaped (in
/// this order so that the cut never splits an escape).
pub(crate) fn cell(text: &str) -> String {
    escape_control(&truncate_chars(text, MAX_CELL_CHARS)).into_owned()
}

/// A Gate timestamp in seconds as UTC ISO 8601; `-` when absent.
fn time(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), iso8601)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
/// Outside the years -9999..=9999 (no real Gate timestamp; a hostile or broken answer)
/// the number itself, as `@SECONDS`.
pub(crate) fn iso8601(seconds: i64) -> String {
    match jiff::Timestamp::from_second(seconds) {
        Ok(instant) => format!("{instant:.0}"),
        Err(_) => format!("@{seconds}"),
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`; `@MILLIS ms` outside
/// the years -9999..=9999.
pub(crate) fn iso8601_millis(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(instant) => format!("{instant:.3}"),
        Err(_) => format!("@{millis} ms"),
    }
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => outln!("{}", gate_stp::text::escape_json_controls(&text)),
        Err(e) => errln!("error: cannot encode JSON: {e}"),
    }
}

/// Left-aligned columns separated by two spaces; `no WHAT` for an empty list. Cells are
/// already escaped.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>], what: &str) {
    if rows.is_empty() {
        outln!("(no {what})");
        return;
    }
    for line in table_lines(header, rows) {
        outln!("{line}");
    }
}

/// The lines of [`print_table`]: each column as wide as its widest cell on a terminal
/// (`unicode-width`: a CJK character takes two columns, a combining mark none).
fn table_lines(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            line.push_str(cell);
            let pad = width.saturating_sub(cell.width()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        line.trim_end().to_owned()
    };
    std::iter::once(line(header.to_vec()))
        .chain(
            rows.iter()
                .map(|row| line(row.iter().map(String::as_str).collect())),
        )
        .collect()
}

/// A step heading of `gate-stp demo` (and of its STP-as-code and agent parts).
pub(crate) fn demo_step(number: u32, text: &str) {
    out(format!("\n== step {number}: {text}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_iso8601() {
        // Independent references: `date -u -d @N`.
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_548_000_000), "2019-01-20T16:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(iso8601(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            iso8601_millis(1_548_000_000_123),
            "2019-01-20T16:00:00.123Z"
        );
        assert_eq!(iso8601_millis(-1), "1969-12-31T23:59:59.999Z");
        // Before 1970, far before.
        assert_eq!(iso8601(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(iso8601(-2_208_988_800), "1900-01-01T00:00:00Z");
        assert_eq!(iso8601(-12_219_292_800), "1582-10-15T00:00:00Z");
        assert_eq!(iso8601(-62_135_596_800), "0001-01-01T00:00:00Z");
        assert_eq!(iso8601_millis(-1_001), "1969-12-31T23:59:58.999Z");
        assert_eq!(
            iso8601_millis(1_548_000_000_000),
            "2019-01-20T16:00:00.000Z"
        );
    }

    #[test]
    fn instants_no_calendar_names_are_shown_as_numbers_without_a_panic() {
        assert_eq!(iso8601(i64::MAX), format!("@{}", i64::MAX));
        assert_eq!(iso8601(i64::MIN), format!("@{}", i64::MIN));
        assert_eq!(iso8601_millis(i64::MAX), format!("@{} ms", i64::MAX));
        assert_eq!(iso8601_millis(i64::MIN), format!("@{} ms", i64::MIN));
    }

    #[test]
    fn table_columns_line_up_on_a_terminal_with_wide_and_combining_characters() {
        let rows = [
            vec!["デスク".to_owned(), "1".to_owned()],
            vec!["desk".to_owned(), "2".to_owned()],
            vec!["e\u{301}".to_owned(), "3".to_owned()],
        ];
        // デスク takes six columns, e + a combining acute one: the ID column starts at
        // the eighth column on every line.
        assert_eq!(
            table_lines(&["NAME", "ID"], &rows),
            ["NAME    ID", "デスク  1", "desk    2", "e\u{301}       3"]
        );
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walks 1600-03-01 .. 2400-03-01 one day at a time against a calendar counted
        // by hand (month lengths and the Gregorian leap rule), not the date crate's.
        let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: u32| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let start = -135_080; // 1600-03-01
        let (mut y, mut m, mut d) = (1600, 3, 1);
        for days in start..start + 292_194 {
            assert_eq!(
                iso8601(days * 86_400),
                format!("{y:04}-{m:02}-{d:02}T00:00:00Z"),
                "day {days}"
            );
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let name = "a\u{1b}b\u{7f}c\u{9b}d\u{202e}e\u{2028}f\\u{202e}";
        let json = serde_json::to_string(&serde_json::json!({ "name": name })).unwrap();
        let safe = gate_stp::text::escape_json_controls(&json);
        assert!(
            !safe
                .chars()
                .any(|c| c.is_control() || gate_stp::text::needs_escape(c))
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], name);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        // (An empty NO_COLOR counts as unset: anstyle_query's rule, checked end to end by
        // tests/suite/cli_terminal.rs.)
        assert!(colour_wanted(true, false));
        assert!(!colour_wanted(true, true));
        assert!(!colour_wanted(false, false));
    }

    #[test]
    fn plurals_count() {
        assert_eq!(plural(0, "group"), "0 groups");
        assert_eq!(plural(1, "group"), "1 group");
        assert_eq!(plural(2, "member"), "2 members");
    }

    #[test]
    fn cells_are_escaped_and_cut() {
        assert_eq!(cell("desk\u{1b}]0;owned\u{7}"), "desk\\x1b]0;owned\\x07");
        let long = "x".repeat(100);
        assert_eq!(
            cell(&long),
            format!("{}…(36 more characters)", "x".repeat(64))
        );
    }
}
