//! A pseudo-terminal for the CLI tests that need a person's terminal: the binary's stdin,
//! stdout and stderr are the terminal side, so `is_terminal()` holds there as it does for
//! someone typing, and the test plays the person on the other side.

use std::{
    ffi::OsStr,
    fs::{File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::fd::OwnedFd,
    os::unix::ffi::OsStrExt,
    process::{Command, ExitStatus, Output, Stdio},
};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

/// What a run on a terminal left: its exit status and its screen.
pub struct Screen {
    /// How the binary ended.
    pub status: ExitStatus,
    /// Everything written to the terminal, stdout and stderr interleaved as a person sees
    /// them; it includes the echo of what was typed, and line ends are `\r\n`.
    pub text: String,
}

/// Runs `command` on a new pseudo-terminal after typing `typed` into it (held by the
/// terminal until the binary reads), and reads the screen until the binary and every
/// process it shares the terminal with are gone. Blocking: call it off the async runtime.
pub fn run_on_terminal(command: Command, typed: &str) -> Screen {
    let (mut controller, mut child) = spawn_on_terminal(command);
    controller.write_all(typed.as_bytes()).unwrap();
    let bytes = read_screen(&mut controller, |_, _| {});
    Screen {
        status: child.wait().unwrap(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Starts `command` with its stdin, stdout and stderr on a new pseudo-terminal; the
/// controlling side (keyboard and screen) and the child.
fn spawn_on_terminal(mut command: Command) -> (File, std::process::Child) {
    let (controller, terminal) = pseudo_terminal();
    command
        .stdin(terminal.try_clone().unwrap())
        .stdout(terminal.try_clone().unwrap())
        .stderr(terminal);
    let child = command.spawn().expect("the binary starts");
    // The command holds the terminal side's descriptors: closed here, only the child's
    // remain, and reading ends (EIO) when the child closes them.
    drop(command);
    (File::from(controller), child)
}

/// Reads the screen until every terminal-side descriptor is closed (the binary and what it
/// shares the terminal with are gone), calling `after_read` with the screen so far and the
/// keyboard after each read.
fn read_screen(controller: &mut File, mut after_read: impl FnMut(&str, &mut File)) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match controller.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // Linux: every terminal-side descriptor is closed.
            Err(error) if error.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                break;
            }
            Err(error) => panic!("reading the terminal: {error}"),
        }
        after_read(&String::from_utf8_lossy(&bytes), controller);
    }
    bytes
}

/// Runs `command` on a new pseudo-terminal like [`run_on_terminal`], but types `answer`
/// only once the screen shows `prompt`, right after calling `meanwhile` (what someone else
/// does while the person reads the question). Blocking: call it off the async runtime.
pub fn run_on_terminal_answering(
    command: Command,
    prompt: &str,
    meanwhile: impl FnOnce(),
    answer: &str,
) -> Screen {
    let (mut controller, mut child) = spawn_on_terminal(command);
    let mut meanwhile = Some(meanwhile);
    let bytes = read_screen(&mut controller, |screen, keyboard| {
        if screen.contains(prompt)
            && let Some(act) = meanwhile.take()
        {
            act();
            keyboard.write_all(answer.as_bytes()).unwrap();
        }
    });
    Screen {
        status: child.wait().unwrap(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Runs `command` with only its stdin on a new pseudo-terminal, after typing `typed`
/// into it, its stdout and stderr captured: a person could type, but what is printed goes
/// to a file or a pipe.
pub fn run_with_only_stdin_on_terminal(mut command: Command, typed: &str) -> Output {
    let (controller, terminal) = pseudo_terminal();
    File::from(controller.try_clone().unwrap())
        .write_all(typed.as_bytes())
        .unwrap();
    command
        .stdin(terminal)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = command.output().expect("the binary runs");
    drop(controller);
    output
}

/// A new pseudo-terminal: the controlling side (the test's) and the terminal side (the
/// binary's).
fn pseudo_terminal() -> (OwnedFd, File) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .open(OsStr::from_bytes(name.as_bytes()))
        .unwrap();
    (controller, terminal)
}
