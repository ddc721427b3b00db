//! Secrets end to end: a declared secret's value never leaves the process
//! (design §7): not in events, logs, stderr, errors, print output or reports,
//! however it is split; Lua still gets the raw value.

mod common;

use std::path::Path;

use common::{Run, Workspace, cri_lines};

/// A plain secret, and one with a quote, which shell quoting would split.
const TOKEN: &str = "hunter2-s3cret-xyz";
const QUOTED: &str = "it's-a-s3cret";
/// Lines short enough that only the whole value is masked, not each line.
const SHORT_LINES: &str = "ab\ncd";

/// `quire-ci -w ws run --events PATH_OR_STDOUT --out-dir ws/out` with the secrets declared.
fn run_with_secrets(ws: &Workspace, events: &str, extra: &[&str]) -> Run {
    std::fs::write(
        ws.path().join("key.txt"),
        "-----BEGIN KEY-----\nline-one-secret\nline-two-secret\n",
    )
    .unwrap();
    let mut cmd = common::quire_ci();
    let out = ws.path().join("out");
    cmd.arg("-w")
        .arg(ws.path())
        .args(["run", "--events", events, "--out-dir"])
        .arg(&out)
        .args(["-j", "1"])
        .args(["--secret", "TOKEN=env:QUIRE_TEST_TOKEN"])
        .args(["--secret", "QUOTED=env:QUIRE_TEST_QUOTED"])
        .args(["--secret", "SHORT=env:QUIRE_TEST_SHORT"])
        .args(["--secret", "KEY=file:key.txt"])
        .args(extra)
        .current_dir(ws.path())
        .env("QUIRE_TEST_TOKEN", TOKEN)
        .env("QUIRE_TEST_QUOTED", QUOTED)
        .env("QUIRE_TEST_SHORT", SHORT_LINES);
    Run::from(cmd.output().expect("spawn quire-ci"))
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

/// The raw values (and the lines of the key) that must appear nowhere.
const LEAKS: &[&str] = &[
    TOKEN,
    QUOTED,
    "line-one-secret",
    "line-two-secret",
    "-----BEGIN KEY-----",
    "s3cret",
];

fn assert_no_leak(what: &str, text: &[u8]) {
    for leak in LEAKS {
        assert!(
            !text.windows(leak.len()).any(|w| w == leak.as_bytes()),
            "{leak:?} leaked into {what}:\n{}",
            String::from_utf8_lossy(text)
        );
    }
    assert!(
        !text.windows(SHORT_LINES.len()).any(|w| w == SHORT_LINES.as_bytes()),
        "the two-line secret leaked into {what}"
    );
}

const PIPELINE: &str = r#"
local ci = require("quire.ci")
ci.job("leaky", {"quire/push"}, function(rt)
  local token, quoted, key = rt.secret("TOKEN"), rt.secret("QUOTED"), rt.secret("KEY")
  -- Lua gets the raw values.
  assert(token == rt.env("QUIRE_TEST_TOKEN") and #quoted == 13 and key:find("line%-two%-secret$"))
  -- Echoed by a shell command given the secret in its text.
  rt.sh("echo token=" .. token)
  -- In argv, inside a longer word, with a quote that shell quoting splits.
  local out = rt.sh({"printf", "%s|%s\n", "pre" .. token .. "post", quoted})
  assert(out.stdout == "pre" .. token .. "post|" .. quoted .. "\n", "raw stdout")
  -- In :env, written in two reads with a pause between.
  rt.sh("printf %s \"$A\"; sleep 0.3; printf '%s!\\n' \"$B\" >&1",
        {env = {A = token:sub(1, 7), B = token:sub(8)}})
  -- A multi-line secret, whole, then line by line re-indented, and on stderr.
  rt.sh("printf '%s\\n' \"$KEY\"; printf '%s\\n' \"$KEY\" | sed 's/^/    /' >&2", {env = {KEY = key}})
  -- print, inside a longer word; and a two-line secret printed a line at a time.
  print("printed:" .. token .. ":end")
  local short = rt.secret("SHORT")
  print(short:sub(1, 2))
  print(short:sub(4))
  return {}
end)
ci.job("raiser", {"leaky"}, function(rt)
  error("bad " .. rt.secret("TOKEN") .. " and " .. rt.secret("QUOTED"))
end)
ci.job("failing", {"leaky"}, function(rt)
  rt.sh("echo " .. rt.secret("TOKEN") .. "; exit 3")
end)
"#;

#[test]
fn declared_secrets_are_masked_in_events_logs_stderr_errors_and_print() {
    let ws = Workspace::lua(PIPELINE);
    let run = run_with_secrets(&ws, "stdout", &[]);
    run.assert_code(1);
    assert_no_leak("the event stream", run.stdout.as_bytes());
    assert_no_leak("stderr", run.stderr.as_bytes());
    for (path, bytes) in files_under(&ws.path().join("out")) {
        assert_no_leak(&path, &bytes);
    }

    let lines = run.event_lines();
    for cmd in [
        r#""cmd":"echo token=***""#,
        r#""cmd":"printf '%s|%s\n' 'pre***post' '***'""#,
        r#""cmd":"echo ***; exit 3""#,
    ] {
        assert!(lines.iter().any(|l| l.contains(cmd)), "{cmd} not in\n{lines:#?}");
    }
    assert_eq!(cri_lines(&ws.log("leaky", 1)), ["stdout F token=***"]);
    assert_eq!(cri_lines(&ws.log("leaky", 2)), ["stdout F pre***post|***"]);
    assert_eq!(cri_lines(&ws.log("leaky", 3)), ["stdout F ***!"]);
    let key_log = cri_lines(&ws.log("leaky", 4));
    // stdout and stderr are separate pipes: only each stream's own order is defined.
    assert!(key_log.contains(&"stdout F ***".to_string()), "{key_log:#?}");
    assert!(key_log.contains(&"stderr F     ***".to_string()), "{key_log:#?}");
    // stderr: print output (the job's, so prefixed), the job's error, the
    // failure summary's output tail.
    for text in [
        "\nleaky   | printed:***:end\nleaky   | ***\nleaky   | complete in ",
        "raiser: .quire/ci.lua:25: bad *** and ***",
        "failing | ***",
    ] {
        assert!(run.stderr.contains(text), "{text:?} missing from\n{}", run.stderr);
    }
}

#[test]
fn a_secret_in_the_pipeline_source_is_masked_in_run_finished_error() {
    // Someone pasted the token into ci.fnl: the diagnostic quotes that line.
    let ws = Workspace::fennel(&format!(
        "(local ci (require :quire.ci))\n(local token \"{TOKEN}\") (error (.. \"refused \" token))\n"
    ));
    let run = run_with_secrets(&ws, "stdout", &[]);
    run.assert_code(1);
    let events = run.events();
    assert_eq!(events.len(), 1);
    let error = events[0]["error"].as_str().unwrap();
    assert!(error.contains(".quire/ci.fnl:2: refused ***"), "{error}");
    assert_no_leak("run_finished.error", error.as_bytes());
    assert_no_leak("stderr", run.stderr.as_bytes());
}

#[test]
fn reports_of_a_run_hold_no_secret() {
    let ws = Workspace::lua(PIPELINE);
    run_with_secrets(&ws, "run.jsonl", &[]).assert_code(1);
    assert_no_leak("run.jsonl", &std::fs::read(ws.path().join("run.jsonl")).unwrap());
    for format in ["text", "json"] {
        let report = ws.run(&["report", "run.jsonl", "--format", format]);
        report.assert_code(0);
        assert_no_leak(&format!("report --format {format}"), report.stdout.as_bytes());
        assert_no_leak(&format!("report --format {format} (stderr)"), report.stderr.as_bytes());
        assert!(report.stdout.contains("***"), "{}", report.stdout);
    }
    ws.run(&["report", "run.jsonl", "--sqlite", "history.db"])
        .assert_code(0);
    assert_no_leak(
        "the SQLite history",
        &std::fs::read(ws.path().join("history.db")).unwrap(),
    );
}

#[test]
fn a_secret_declared_twice_is_a_usage_error_naming_it() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push] (fn [runtime] (runtime.sh \"touch ran\")))\n",
    );
    // KEY is declared by run_with_secrets already, from a file.
    let run = run_with_secrets(&ws, "events.jsonl", &["--secret", "KEY=env:QUIRE_TEST_TOKEN"]);
    run.assert_code(2);
    run.assert_stderr_lines(&[
        "  × secret KEY is declared twice: --secret KEY=file:key.txt and --secret KEY=env:QUIRE_TEST_TOKEN",
        "  help: declare each secret once; for two values, give them two names",
    ]);
    assert!(!ws.path().join("ran").exists());
    assert!(!ws.path().join("events.jsonl").exists());
    assert_no_leak("stderr", run.stderr.as_bytes());
}
