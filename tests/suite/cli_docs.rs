//! The binary's own documentation: help, usage lines, completion scripts, man pages, and
//! refusal of nonsensical option values.
#![cfg(feature = "cli")]

use std::{collections::BTreeSet, process::Output};

fn gate_stp(args: &[&str]) -> Output {
    crate::common::cli::gate_stp().args(args).output().unwrap()
}

fn stdout(args: &[&str]) -> String {
    let output = gate_stp(args);
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands listed under `Commands:` in a help text, without `help`.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        // A wrapped description continues on a deeper indented line.
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path (`["groups", "list"]`...), walking the binary's own help, so that
/// commands added later are covered.
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        for name in listed_commands(&stdout(&args)) {
            let mut child = path.clone();
            child.push(name);
            paths.push(child.clone());
            todo.push(child);
        }
    }
    paths
}

#[test]
fn completions_name_every_subcommand_in_every_shell() {
    let paths = command_paths();
    for expected in [
        &["groups", "list"][..],
        &["users", "remove"],
        &["completions"],
        &["man"],
        &["profiles"],
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected:?} not in {paths:?}"
        );
    }
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: {script}");
        for path in &paths {
            let name = path.last().unwrap();
            assert!(script.contains(name.as_str()), "{shell} lacks {path:?}");
        }
    }
    assert_eq!(gate_stp(&["completions", "tcsh"]).status.code(), Some(2));
}

/// The long options a command's own `--help` lists (`--timeout`, `--help`...).
fn long_options(path: &[String]) -> BTreeSet<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    stdout(&args)
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            line.split([' ', ','])
                .find(|word| word.starts_with("--"))
                .map(|word| word.trim_start_matches('-').to_owned())
        })
        .collect()
}

/// The long options offered in a fish script on lines whose condition (`-n "..."`) is
/// exactly that of `path`: the command typed, none of its subcommands yet (for a command
/// with subcommands, clap_complete adds `; and not __fish_seen_subcommand_from ...`).
fn fish_options(script: &str, path: &[String]) -> BTreeSet<String> {
    let mut condition = format!("__fish_gate_stp_using_subcommand {}", path[0]);
    if let Some(sub) = path.get(1) {
        condition.push_str(&format!("; and __fish_seen_subcommand_from {sub}"));
    }
    script
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" -n \"")?;
            let (given, rest) = rest.split_once('"')?;
            let own = given == condition
                || given.starts_with(&format!("{condition}; and not __fish_seen_subcommand_from"));
            own.then_some(rest)
        })
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            words.find(|word| *word == "-l")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

/// The long options of `path`'s own `_arguments` call in a zsh script: the arm `(name)`
/// for each word of the path, in order (the first arm after the previous one's), up to the
/// end of the call (`&& ret=0`).
fn zsh_options(script: &str, path: &[String]) -> BTreeSet<String> {
    let mut lines = script.lines().map(str::trim);
    for name in path {
        let arm = format!("({name})");
        lines
            .by_ref()
            .find(|line| *line == arm)
            .unwrap_or_else(|| panic!("zsh has no arm for {path:?}"));
    }
    lines
        .take_while(|line| !line.contains("&& ret=0"))
        .filter_map(|line| {
            let start = line.find("'--")? + 3;
            let rest = &line[start..];
            let end = rest.find(['=', '[', '\''])?;
            Some(rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn zsh_and_fish_offer_each_command_its_own_options() {
    let fish = stdout(&["completions", "fish"]);
    let zsh = stdout(&["completions", "zsh"]);
    let paths = command_paths();
    // The check can fail: commands differ in their options (a script that offered every
    // command the same list would not match).
    let apply = long_options(&["apply".to_owned()]);
    let remove = long_options(&["users".to_owned(), "remove".to_owned()]);
    assert!(apply.contains("max-removals") && !remove.contains("max-removals"));
    for path in paths.iter().filter(|p| p.len() <= 2) {
        let expected = long_options(path);
        assert!(expected.contains("help"), "{path:?}: {expected:?}");
        assert_eq!(fish_options(&fish, path), expected, "fish, {path:?}");
        assert_eq!(zsh_options(&zsh, path), expected, "zsh, {path:?}");
    }
}

#[test]
fn the_man_page_covers_every_command() {
    let page = stdout(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH gate-stp 1"),
        "{page}"
    );
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        assert!(page.contains(&path[0]), "man page lacks {path:?}");
    }

    // With --out, one page per command at every depth.
    let dir = crate::common::fresh_dir("man");
    let output = gate_stp(&["man", "--out", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(dir.join("gate-stp.1").is_file());
    for path in command_paths() {
        let file = dir.join(format!("gate-stp-{}.1", path.join("-")));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        // Its own title and synopsis, naming the whole command (roff escapes each '-')...
        let title = format!(".TH gate-stp-{} 1", path.join("-"));
        assert!(text.contains(&title), "{file:?}: {text}");
        let synopsis_start = format!("\\fBgate\\-stp {}\\fR", path.join(" ").replace('-', "\\-"));
        let synopsis = text
            .lines()
            .find(|line| line.starts_with(&synopsis_start))
            .unwrap_or_else(|| panic!("{file:?} has no synopsis {synopsis_start}: {text}"));
        // ...offering exactly the options the command's own help lists.
        let offered: BTreeSet<String> = synopsis
            .split("\\fB\\-\\-")
            .skip(1)
            .filter_map(|rest| rest.split_once("\\fR"))
            .map(|(name, _)| name.replace("\\-", "-"))
            .collect();
        assert_eq!(offered, long_options(&path), "{file:?}");
    }
}

#[test]
fn the_emulator_lists_only_its_own_options() {
    let help = stdout(&["mock", "--help"]);
    for client_option in [
        "--key",
        "--secret",
        "--base-url",
        "--profile",
        "--json",
        "--timeout",
    ] {
        assert!(!help.contains(client_option), "{client_option}: {help}");
    }
    assert!(help.contains("--listen"), "{help}");
    // And refuses them.
    assert_eq!(gate_stp(&["mock", "--key", "k"]).status.code(), Some(2));
}

#[test]
fn usage_lines_do_not_present_env_options_as_required() {
    for args in [
        &["groups", "list", "--help"][..],
        &["users", "add", "--help"],
        &["time", "--help"],
        &["sign", "--help"],
    ] {
        let help = stdout(args);
        let usage = help
            .lines()
            .find(|line| line.starts_with("Usage:"))
            .unwrap();
        for option in ["--key", "--secret", "--base-url", "--profile"] {
            assert!(!usage.contains(option), "{args:?}: {usage}");
        }
        // They are documented with their variables.
        assert!(help.contains("GATE_API_SECRET"), "{args:?}: {help}");
    }
    // Precedence is explained.
    assert!(stdout(&["--help"]).contains("in this order: its flag; its environment variable"));
}

#[test]
fn nonsensical_timeouts_are_usage_errors() {
    for value in ["0", "-1", "abc", "1.5", "3601", "99999999999999999999"] {
        for command in [&["groups", "list"][..], &["time"], &["demo"]] {
            let mut args = command.to_vec();
            args.extend(["--timeout", value]);
            let output = gate_stp(&args);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            // The value itself, quoted, as clap names what it refused (a bare "0" would
            // be found in almost any message).
            assert!(stderr.contains(&format!("'{value}'")), "{args:?}: {stderr}");
        }
    }
    assert_eq!(
        gate_stp(&["mock", "--listen", "not-an-address"])
            .status
            .code(),
        Some(2)
    );
}

/// What bash offers after `line` (which ends where the cursor is), with the script
/// `gate-stp completions bash` prints loaded as a user would load it.
fn bash_offers(script: &std::path::Path, line: &str) -> Vec<String> {
    let program = r#"
        source "$1"
        function=$(complete -p gate-stp | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
        COMP_LINE="$2"
        COMP_POINT=${#COMP_LINE}
        read -r -a COMP_WORDS <<< "$COMP_LINE"
        # A line ending in a space starts a new, empty word.
        [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        "$function" gate-stp "$cur" "$prev"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let output = std::process::Command::new("bash")
        .args(["-c", program, "bash"])
        .arg(script)
        .arg(line)
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{line:?}: {output:?}");
    let mut offered: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    offered.sort();
    offered
}

#[cfg(unix)]
#[test]
fn bash_offers_each_commands_own_words() {
    let dir = crate::common::fresh_dir("bash");
    let script = dir.join("gate-stp.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).unwrap();

    let offered = bash_offers(&script, "gate-stp users ");
    for word in ["add", "list", "remove"] {
        assert!(offered.iter().any(|w| w == word), "{offered:?}");
    }
    assert!(!offered.iter().any(|w| w == "create"), "{offered:?}");

    let offered = bash_offers(&script, "gate-stp ");
    for command in [
        "groups",
        "users",
        "time",
        "plan",
        "apply",
        "export",
        "mock",
        "demo",
        "sign",
        "profiles",
        "completions",
        "man",
    ] {
        assert!(
            offered.iter().any(|w| w == command),
            "{command}: {offered:?}"
        );
    }

    let offered = bash_offers(&script, "gate-stp plan --");
    for option in ["--out", "--exit-code", "--profile", "--json"] {
        assert!(offered.iter().any(|w| w == option), "{option}: {offered:?}");
    }
    let offered = bash_offers(&script, "gate-stp mock --");
    assert!(offered.iter().any(|w| w == "--listen"), "{offered:?}");
    assert!(!offered.iter().any(|w| w == "--profile"), "{offered:?}");
}
