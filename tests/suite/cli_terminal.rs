//! `plan` and `apply` on a terminal, as a person runs them: the binary's stdin, stdout and
//! stderr are a pseudo-terminal (tests/common/pty.rs). Colour and progress appear there
//! and only there (the other CLI tests run without a terminal and check they do not),
//! never with `NO_COLOR`; only a typed `yes` applies.
#![cfg(all(feature = "cli", unix))]

use gate_stp::mock::{EmulatorConfig, Fault, FaultKind, RunningEmulator, demo};

use crate::common::pty::{
    Screen, run_on_terminal, run_on_terminal_answering, run_with_only_stdin_on_terminal,
};

/// The desired state: one new group with two members (two steps: create, then add).
fn night_desk() -> crate::common::Scratch {
    let path = crate::common::fresh_dir("terminal").file("stp.toml");
    let text = format!(
        "main_user_id = {}\n[[group]]\nname = \"night desk\"\nmembers = [{}, {}]\n",
        demo::MAIN_USER,
        demo::SUB_USER,
        demo::SUB_USER_WITHOUT_KEY
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `gate-stp ARGS FILE` against `emulator` with the demo's main key, and the file's
/// directory (removed when dropped: keep it while the command runs).
fn command(
    emulator: &RunningEmulator,
    args: &[&str],
) -> (std::process::Command, crate::common::Scratch) {
    let desk = night_desk();
    let mut command = crate::common::cli::gate_stp();
    command
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET)
        .args(args)
        .arg(desk.as_os_str());
    (command, desk)
}

/// `gate-stp ARGS FILE` on a terminal against `emulator`, after `typed` was typed.
async fn on_terminal(
    emulator: &RunningEmulator,
    args: &[&str],
    no_color: Option<&str>,
    typed: &str,
) -> Screen {
    let (mut command, _desk) = command(emulator, args);
    if let Some(no_color) = no_color {
        command.env("NO_COLOR", no_color);
    }
    let typed = typed.to_owned();
    tokio::task::spawn_blocking(move || run_on_terminal(command, &typed))
        .await
        .unwrap()
}

async fn emulator() -> RunningEmulator {
    crate::common::emulator::start(EmulatorConfig::default()).await
}

const ESC: char = '\u{1b}';

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_on_a_terminal_is_coloured_unless_no_color_is_set() {
    let emulator = emulator().await;
    let screen = on_terminal(&emulator, &["plan"], None, "").await;
    assert!(screen.status.success(), "{}", screen.text);
    // The new group's `+` in green.
    assert!(
        screen.text.contains("\u{1b}[32m+\u{1b}[0m"),
        "{}",
        screen.text
    );
    let screen = on_terminal(&emulator, &["plan"], Some("1"), "").await;
    assert!(screen.status.success(), "{}", screen.text);
    assert!(screen.text.contains("night desk"), "{}", screen.text);
    assert!(!screen.text.contains(ESC), "{}", screen.text);
    // An empty NO_COLOR is no request (no-color.org): still coloured.
    let screen = on_terminal(&emulator, &["plan"], Some(""), "").await;
    assert!(screen.status.success(), "{}", screen.text);
    assert!(
        screen.text.contains("\u{1b}[32m+\u{1b}[0m"),
        "{}",
        screen.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yes_typed_at_the_prompt_applies_with_a_progress_line_per_step() {
    let emulator = emulator().await;
    let screen = on_terminal(&emulator, &["apply"], None, "yes\n").await;
    assert!(screen.status.success(), "{}", screen.text);
    let text = &screen.text;
    assert!(text.contains("Only 'yes' is accepted"), "{text}");
    assert!(text.contains("[1/2] "), "{text}");
    assert!(text.contains("[2/2] "), "{text}");
    assert!(text.contains("... ok"), "{text}");
    assert!(text.contains("Apply complete"), "{text}");
    assert!(text.contains(ESC), "colour on a terminal: {text}");
    let groups = emulator.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        emulator.members(groups[0].id.unwrap()),
        Some(vec![demo::SUB_USER, demo::SUB_USER_WITHOUT_KEY])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quick_yes_after_someone_created_the_group_is_refused_as_stale() {
    // The plan shows "+ night desk (new)"; while the question is on screen another client
    // creates "night desk"; "yes" is typed at once (well within the two seconds after
    // which a read counts as aged). The apply must not create a second group.
    let emulator = emulator().await;
    let (command, _desk) = command(&emulator, &["apply"]);
    let other = gate_stp::Client::builder()
        .base_url(emulator.base_url())
        .credentials(gate_stp::Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Handle::current();
    let screen = tokio::task::spawn_blocking(move || {
        let meanwhile = || {
            runtime
                .block_on(other.create_group("night desk").send())
                .unwrap();
        };
        run_on_terminal_answering(command, "Only 'yes' is accepted", meanwhile, "yes\n")
    })
    .await
    .unwrap();
    let text = &screen.text;
    assert_eq!(screen.status.code(), Some(2), "{text}");
    assert!(text.contains("stale plan"), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    assert!(!text.contains("[1/2]"), "{text}");
    let groups = emulator.groups();
    assert_eq!(groups.len(), 1, "a second \"night desk\": {groups:?}");
    assert_eq!(emulator.members(groups[0].id.unwrap()), Some(vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_color_the_terminal_gets_progress_without_colour() {
    let emulator = emulator().await;
    let screen = on_terminal(&emulator, &["apply"], Some("1"), "yes\n").await;
    assert!(screen.status.success(), "{}", screen.text);
    assert!(screen.text.contains("[2/2] "), "{}", screen.text);
    assert!(!screen.text.contains(ESC), "{}", screen.text);
    assert_eq!(emulator.groups().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn any_other_answer_or_a_closed_input_cancels_with_nothing_sent() {
    let emulator = emulator().await;
    // `y`, `no`, and end of input (Ctrl-D at the start of a line).
    for typed in ["y\n", "no\n", "\u{4}"] {
        let screen = on_terminal(&emulator, &["apply"], None, typed).await;
        assert_eq!(screen.status.code(), Some(2), "{typed:?}: {}", screen.text);
        assert!(
            screen.text.contains("apply cancelled; nothing was changed"),
            "{typed:?}: {}",
            screen.text
        );
        assert!(!screen.text.contains("[1/2]"), "{}", screen.text);
    }
    assert!(emulator.groups().is_empty(), "{:?}", emulator.groups());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_create_answer_found_by_listing_is_shown_as_adopted() {
    let emulator = emulator().await;
    // The create runs, then its connection is cut: the apply finds the group by listing.
    emulator
        .inject_fault(Fault::new("createSTPGroup", 1, FaultKind::ExecuteThenDrop))
        .unwrap();
    let screen = on_terminal(&emulator, &["apply"], Some("1"), "yes\n").await;
    assert!(screen.status.success(), "{}", screen.text);
    let id = emulator.groups()[0].id.unwrap();
    assert!(
        screen.text.contains(&format!(
            "answer lost; found group \"night desk\" as id {id}, adopted"
        )),
        "{}",
        screen.text
    );
    assert_eq!(emulator.groups().len(), 1, "{:?}", emulator.groups());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_on_stdin_alone_is_no_one_to_ask() {
    // Someone could type, but the question would go to a pipe they do not see: refused
    // even with `yes` typed ahead.
    let emulator = emulator().await;
    let (command, _desk) = command(&emulator, &["apply"]);
    let output =
        tokio::task::spawn_blocking(move || run_with_only_stdin_on_terminal(command, "yes\n"))
            .await
            .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("there is no terminal to ask on"),
        "{stderr}"
    );
    assert!(emulator.groups().is_empty());
}

/// Several files on a terminal: each file's plan, then its question, one file after the
/// other; the first answer other than `yes` stops the run, and the files after it are
/// not attempted.
#[tokio::test(flavor = "multi_thread")]
async fn several_files_are_asked_one_after_the_other_until_one_is_declined() {
    let emulator = emulator().await;
    // A user is in one group at most: each file its own member.
    let desk = |name: &str, member: i64| {
        let path = crate::common::fresh_dir("terminal").file(&format!("{name}.toml"));
        let text = format!(
            "main_user_id = {}\n[[group]]\nname = \"{name}\"\nmembers = [{member}]\n",
            demo::MAIN_USER,
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let (night, day, late) = (
        desk("night", demo::SUB_USER),
        desk("day", demo::SUB_USER_WITHOUT_KEY),
        desk("late", demo::SUB_USER + 10),
    );
    let mut command = crate::common::cli::gate_stp();
    command
        .env("GATE_BASE_URL", emulator.base_url())
        .env("GATE_API_KEY", demo::MAIN_KEY)
        .env("GATE_API_SECRET", demo::MAIN_SECRET)
        .arg("apply")
        .args([night.as_os_str(), day.as_os_str(), late.as_os_str()]);
    // Typed ahead: the CLI reads one line per question.
    let screen = on_terminal_typed(command, "yes\nno\n").await;
    let text = &screen.text;
    assert_eq!(screen.status.code(), Some(2), "{text}");
    // The first file applied before the second was planned: its section comes first.
    let applied = text.find("Apply complete").expect(text);
    let second = text.find(&day.display().to_string()).expect(text);
    assert!(applied < second, "{text}");
    // Each later file's heading after one blank line, the first's after none.
    let heading = |path: &std::path::Path| format!("==> {} <==", path.display());
    assert!(
        text.contains(&format!("\r\n\r\n{}", heading(&day))),
        "{text:?}"
    );
    assert!(
        !text.contains(&format!("\r\n\r\n{}", heading(&night))),
        "{text:?}"
    );
    assert!(
        text.contains("apply cancelled; nothing was changed"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "applied: {}; not attempted: {}",
            night.display(),
            late.display()
        )),
        "{text}"
    );
    let names: Vec<String> = emulator.groups().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["night"], "{text}");
}

async fn on_terminal_typed(command: std::process::Command, typed: &str) -> Screen {
    let typed = typed.to_owned();
    tokio::task::spawn_blocking(move || run_on_terminal(command, &typed))
        .await
        .unwrap()
}
