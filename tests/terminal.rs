//! The reporter as a person at a terminal sees it: run under a pseudo-terminal
//! (util-linux `script`), colour is on, and off with NO_COLOR.

mod common;

use std::process::Command;

use common::Workspace;

const PIPELINE: &str = r#"(local ci (require :quire.ci))
(ci.job :build [:quire/push] (fn [runtime] (runtime.sh "echo compiled")))
(ci.job :test [:build] (fn [runtime] (runtime.sh "echo 1 test failed; exit 2")))
(ci.job :deploy [:test] (fn [runtime] (runtime.sh "echo never")))
"#;

/// Run `quire-ci run` on a pseudo-terminal; returns what the terminal showed.
fn on_a_terminal(ws: &Workspace, no_color: bool) -> String {
    let (code, screen) = run_on_a_terminal(ws, "-j 1", None, no_color);
    assert_eq!(code, Some(1), "{screen}");
    screen
}

/// `quire-ci run ARGS` on a pseudo-terminal `columns` wide (None: one that
/// does not tell its size, as `script` makes when its stdin is no terminal).
fn run_on_a_terminal(ws: &Workspace, args: &str, columns: Option<u16>, no_color: bool) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_quire-ci");
    let mut command = format!("'{bin}' -w '{}' run {args}", ws.path().display());
    if let Some(columns) = columns {
        command = format!("stty cols {columns} && {command}");
    }
    let mut script = Command::new("script");
    common::as_tests_expect(&mut script)
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        // script runs the command with $SHELL: the quoting above is sh's.
        .env("SHELL", "/bin/sh")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let out = script
        .output()
        .expect("util-linux script runs the command on a pseudo-terminal");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_on_a_terminal() {
    let ws = Workspace::fennel(PIPELINE);
    let screen = on_a_terminal(&ws, false);
    assert!(screen.contains("\x1b["), "no colour:\n{screen}");
    assert!(screen.contains("1 test failed"), "{screen}");
}

#[test]
fn no_colour_with_no_color() {
    let ws = Workspace::fennel(PIPELINE);
    let screen = on_a_terminal(&ws, true);
    // No colour: the only escape allowed is the one that clears the live status line.
    assert_eq!(
        screen.matches('\x1b').count(),
        screen.matches("\x1b[2K").count(),
        "colour despite NO_COLOR:\n{screen:?}"
    );
    assert!(screen.contains("test   | failed in"), "{screen}");
}

#[test]
fn stderr_is_the_same_with_and_without_events_on_stdout() {
    let ws = Workspace::fennel(PIPELINE);
    let mask = |text: &str| -> String {
        // Durations differ between runs; everything else must not.
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                    chars.next();
                }
                out.push('N');
            } else {
                out.push(c);
            }
        }
        out
    };
    let plain = ws.run(&["run", "-j", "1"]);
    let with_events = ws.run(&["run", "-j", "1", "--events", "stdout"]);
    assert_eq!(mask(&plain.stderr), mask(&with_events.stderr));
    assert_eq!(plain.stdout, "");
}

#[test]
fn a_command_that_asks_the_terminal_fails_at_once_instead_of_hanging() {
    // In its own process group on the runner's terminal, the command would
    // be stopped by the kernel (SIGTTIN) for reading it, and the run hang.
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :ask [:quire/push] (fn [runtime] (runtime.sh \"read answer < /dev/tty\")))\n",
    );
    let bin = env!("CARGO_BIN_EXE_quire-ci");
    let command = format!("'{bin}' -w '{}' run", ws.path().display());
    // `timeout` ends a hang (exit 124), so the test fails rather than waits for ever.
    let mut timeout = Command::new("timeout");
    let out = common::as_tests_expect(&mut timeout)
        .args(["60", "script", "-q", "-e", "-c", &command, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env("NO_COLOR", "1")
        .output()
        .expect("timeout and util-linux script run the command on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{screen}");
    assert!(screen.contains("/dev/tty"), "{screen}");
    assert!(screen.contains("ask | failed in"), "{screen}");
}

/// Six jobs with ids of 40 characters, running together for a second.
fn six_long_jobs() -> Workspace {
    let mut pipeline = String::from("(local ci (require :quire.ci))\n");
    for i in 1..=6 {
        let id = format!("job-{i}-{}", "x".repeat(34));
        pipeline.push_str(&format!("(ci.job :{id} [:quire/push] (fn [rt] (rt.sh \"sleep 1\")))\n"));
    }
    Workspace::fennel(&pipeline)
}

/// The live status lines a terminal was sent: each is written last and
/// cleared with `\r\x1b[2K` before anything else is.
fn status_lines(screen: &str) -> Vec<&str> {
    screen
        .split("\r\x1b[2K")
        .filter_map(|chunk| chunk.rsplit('\n').next())
        .filter(|last| last.starts_with("running: "))
        .collect()
}

#[test]
fn the_status_line_fits_one_row_of_the_terminal() {
    // Wider, it wrapped, and each redraw cleared only its last row.
    let ws = six_long_jobs();
    for (columns, fits) in [(Some(70), 70), (None, 80)] {
        let (code, screen) = run_on_a_terminal(&ws, "-j 6", columns, true);
        assert_eq!(code, Some(0), "{screen}");
        let statuses = status_lines(&screen);
        assert!(!statuses.is_empty(), "no status line:\n{screen:?}");
        for status in statuses {
            assert!(status.chars().count() < fits, "{columns:?}: {status:?}");
            assert!(status.ends_with(" more"), "{columns:?}: {status:?}");
        }
    }
}
