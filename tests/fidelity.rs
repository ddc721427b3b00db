//! Output fidelity and faults end to end (design §5, §7): logs keep every
//! byte, the capture returned to Lua is capped, stdin is empty, and a record
//! that can no longer be written, or a workspace that vanishes, ends the run
//! cleanly.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Workspace, cri_lines};

const HANG: Duration = Duration::from_secs(120);

/// The raw bytes of a CRI log line after its timestamp: `stream tag text`.
fn raw_pieces(log: &[u8]) -> Vec<&[u8]> {
    log.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| &line[line.iter().position(|&b| b == b' ').expect("a timestamp") + 1..])
        .collect()
}

#[test]
fn logs_keep_bytes_long_lines_and_a_last_line_without_newline() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("out", {"quire/push"}, function(rt)
  local r = rt.sh("printf 'a\\377\\376b\\r\\n'")
  -- Lua gets the raw bytes too.
  assert(r.stdout == "a\255\254b\r\n", "raw bytes")
  rt.sh("head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'")
  rt.sh("printf 'err\\377' >&2")
  return {}
end)
"#,
    );
    ws.run_events(&[]).assert_code(0);
    let log = std::fs::read(ws.path().join("out/jobs/out/sh-1.log")).unwrap();
    assert_eq!(raw_pieces(&log), [&b"stdout F a\xff\xfeb\r"[..]]);

    let pieces = cri_lines(&ws.log("out", 2));
    let x = |n| "x".repeat(n);
    assert_eq!(
        pieces,
        [
            format!("stdout P {}", x(16384)),
            format!("stdout P {}", x(16384)),
            format!("stdout F {}", x(40000 - 2 * 16384)),
            "stdout F no newline".to_string(),
        ]
    );
    let log = std::fs::read(ws.path().join("out/jobs/out/sh-3.log")).unwrap();
    assert_eq!(raw_pieces(&log), [&b"stderr F err\xff"[..]]);
}

#[test]
fn the_capture_returned_to_lua_is_capped_at_16_mib_and_the_log_keeps_everything() {
    const SIXTEEN_MIB: usize = 16 * 1024 * 1024;
    const WRITTEN: usize = SIXTEEN_MIB + 1024 * 1024;
    let ws = Workspace::lua(&format!(
        r#"
local ci = require("quire.ci")
ci.job("big", {{"quire/push"}}, function(rt)
  local r = rt.sh("head -c {WRITTEN} /dev/zero | tr '\\0' x; printf small >&2")
  assert(#r.stdout == {SIXTEEN_MIB}, "stdout is " .. #r.stdout .. " bytes")
  assert(r["stdout-truncated"] == true, "stdout-truncated")
  assert(r.stderr == "small" and r["stderr-truncated"] == nil, "stderr whole")
  return {{}}
end)
"#
    ));
    ws.run_events(&[]).assert_code(0);
    // Reassembled from its pieces, the log holds all that was written.
    let log = std::fs::read(ws.path().join("out/jobs/big/sh-1.log")).unwrap();
    let mut stdout = 0;
    let mut finals = 0;
    for piece in raw_pieces(&log) {
        if let Some(text) = piece.strip_prefix(b"stdout P ") {
            stdout += text.len();
        } else if let Some(text) = piece.strip_prefix(b"stdout F ") {
            stdout += text.len();
            finals += 1;
        }
    }
    assert_eq!((stdout, finals), (WRITTEN, 1));
}

#[test]
fn commands_read_an_empty_stdin_whatever_quire_ci_was_given() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("stdin", {"quire/push"}, function(rt)
  local r = rt.sh("cat; readlink /proc/self/fd/0")
  assert(r.stdout == "/dev/null\n", r.stdout)
  return {}
end)
"#,
    );
    let mut cmd = common::quire_ci();
    cmd.arg("-w")
        .arg(ws.path())
        .args(["run", "--events", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Data waiting on quire-ci's own stdin must not reach the command.
    child.stdin.take().unwrap().write_all(b"not for the command\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The `run_finished` line of a run stopped by the log `job`'s sh-`n`.log
/// in `ws/out` failing with `why`.
fn run_failed_on_log(ws: &Workspace, job: &str, n: u32, why: &str) -> String {
    let log = ws.path().join(format!("out/jobs/{job}/sh-{n}.log"));
    let error = format!("quire::record\n\n  × cannot write log {}: {why}", log.display());
    format!(
        r#"{{"type":"run_finished","outcome":"failed","error":{}}}"#,
        serde_json::to_string(&error).unwrap()
    )
}

#[test]
fn a_log_directory_unwritable_mid_run_stops_the_run_with_exit_3_and_a_complete_stream() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
-- Between two jobs, the next job's log directory becomes a file (permission
-- bits would not stop root).
ci.job("vandal", {"quire/push"}, function(rt) rt.sh("touch ../out/jobs/victim", {cwd = "sub"}) end)
ci.job("victim", {"vandal"}, function(rt) rt.sh("echo never logged") end)
ci.job("later", {"victim"}, function(rt) rt.sh("echo never") end)
ci.job("other", {"vandal"}, function(rt) rt.sh("echo never either") end)
"#,
    );
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("cannot write log") && run.stderr.contains("out/jobs/victim/sh-1.log: "),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // The victim's log could not be made, so its command was not started: 127.
    assert_eq!(
        run.event_lines().join("\n"),
        [
            r#"{"type":"run_started","sha":"0000000000000000000000000000000000000000","ref":"HEAD","jobs":["vandal","victim","later","other"]}"#,
            r#"{"type":"job_started","job_id":"vandal"}"#,
            r#"{"type":"sh_started","job_id":"vandal","cmd":"touch ../out/jobs/victim"}"#,
            r#"{"type":"sh_finished","job_id":"vandal","exit_code":0}"#,
            r#"{"type":"job_finished","job_id":"vandal","outcome":"complete"}"#,
            r#"{"type":"job_started","job_id":"victim"}"#,
            r#"{"type":"sh_started","job_id":"victim","cmd":"echo never logged"}"#,
            r#"{"type":"sh_finished","job_id":"victim","exit_code":127}"#,
            r#"{"type":"job_finished","job_id":"victim","outcome":"failed"}"#,
            r#"{"type":"job_skipped","job_id":"later","blocked_by":"victim"}"#,
            r#"{"type":"job_skipped","job_id":"other"}"#,
            &run_failed_on_log(&ws, "victim", 1, "Not a directory (os error 20)"),
        ]
        .join("\n")
    );
}

#[test]
fn a_command_that_removes_its_own_log_directory_stops_the_run_too() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("vandal", {"quire/push"}, function(rt)
  rt.sh("rm -r ../out/jobs && touch ../out/jobs", {cwd = "sub"})
  rt.sh("echo never")
end)
"#,
    );
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("out/jobs/vandal/sh-1.log: Not a directory"),
        "{}",
        run.stderr
    );
    let lines = run.event_lines();
    assert_eq!(
        lines.iter().filter(|l| l.contains("sh_started")).count(),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &run_failed_on_log(&ws, "vandal", 1, "Not a directory (os error 20)")
    );
}

#[test]
fn a_log_removed_while_its_command_runs_is_caught_too() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("vandal", {"quire/push"}, function(rt)
  rt.sh("echo before; rm -r ../out/jobs; echo into the void; exit 5", {cwd = "sub"})
end)
"#,
    );
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("the log file was removed or replaced while the command ran"),
        "{}",
        run.stderr
    );
    // Found out once the command had ended: its own exit code is reported.
    assert_eq!(
        run.event_lines()[2..],
        [
            r#"{"type":"sh_started","job_id":"vandal","cmd":"echo before; rm -r ../out/jobs; echo into the void; exit 5"}"#,
            r#"{"type":"sh_finished","job_id":"vandal","exit_code":5}"#,
            r#"{"type":"job_finished","job_id":"vandal","outcome":"failed"}"#,
            &run_failed_on_log(
                &ws,
                "vandal",
                1,
                "the log file was removed or replaced while the command ran"
            ),
        ]
    );
}

/// A FIFO at `path` that nothing writes to: reading it waits for ever.
fn fifo(path: &std::path::Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

#[test]
fn a_command_whose_log_fails_while_it_runs_is_killed_and_its_sh_finished_says_so() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("full", {"quire/push"}, function(rt)
  rt.sh("echo onto a full disk; exec cat never-written")
end)
"#,
    );
    fifo(&ws.path().join("never-written"));
    // The log's first write fails, while the command waits on the FIFO.
    let log = ws.path().join("out/jobs/full/sh-1.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(3);
    let want = format!(
        "full | failed in <t>: .quire/ci.lua:4: cannot write log {}: No space left on device (os error 28)",
        log.display()
    );
    let stderr = common::mask_durations(&run.stderr);
    assert!(stderr.lines().any(|l| l == want), "{want:?} missing from\n{stderr}");
    // It was started, then killed by the runner (SIGKILL): 128 + 9, not 127.
    assert_eq!(
        run.event_lines()[2..],
        [
            r#"{"type":"sh_started","job_id":"full","cmd":"echo onto a full disk; exec cat never-written"}"#,
            r#"{"type":"sh_finished","job_id":"full","exit_code":137}"#,
            r#"{"type":"job_finished","job_id":"full","outcome":"failed"}"#,
            &run_failed_on_log(&ws, "full", 1, "No space left on device (os error 28)"),
        ]
    );
}

#[test]
fn a_run_whose_log_failed_ends_failed_with_the_error_even_if_every_job_completed() {
    // The job catches the failing command's error and completes.
    let ws = Workspace::fennel(
        r#"
(local ci (require :quire.ci))
(ci.job :a [:quire/push]
  (fn [runtime]
    (print (pcall runtime.sh "echo one; rm -r ../out/jobs; echo two" {:cwd "sub"}))
    {}))
"#,
    );
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(3);
    let why = "the log file was removed or replaced while the command ran";
    assert_eq!(
        run.event_lines()[1..],
        [
            r#"{"type":"job_started","job_id":"a"}"#,
            r#"{"type":"sh_started","job_id":"a","cmd":"echo one; rm -r ../out/jobs; echo two"}"#,
            r#"{"type":"sh_finished","job_id":"a","exit_code":0}"#,
            r#"{"type":"job_finished","job_id":"a","outcome":"complete"}"#,
            &run_failed_on_log(&ws, "a", 1, why),
        ]
    );
    // The person sees the failure once, with the run's end, which does not say complete.
    let log = ws.path().join("out/jobs/a/sh-1.log");
    let error = format!("quire::record\n\n  × cannot write log {}: {why}\n", log.display());
    let stderr = common::mask_durations(&run.stderr);
    assert_eq!(stderr.matches("× cannot write log").count(), 1, "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "{error}\njob  outcome    duration\na    complete   <t>\n\nrun failed in <t>: 1 complete\n"
        )),
        "{stderr}"
    );
}

#[test]
fn a_workspace_that_disappears_mid_run_fails_its_job_with_the_reason() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("vanish", {"quire/push"}, function(rt)
  rt.sh("rm -rf \"$PWD\"")
  rt.sh("echo too late")
end)
"#,
    );
    let logs = tempfile::tempdir().unwrap();
    let run = ws.run_within(
        HANG,
        &[
            "run",
            "--events",
            "stdout",
            "-j",
            "1",
            "--out-dir",
            logs.path().to_str().unwrap(),
        ],
    );
    run.assert_code(1);
    assert!(!ws.path().exists());
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"sh_finished","job_id":"vanish","exit_code":127}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"vanish","outcome":"failed"}"#.to_string()));
    assert_eq!(lines.last().unwrap(), r#"{"type":"run_finished","outcome":"failed"}"#);
    let want = format!(
        "command `echo too late` could not be started (exit code 127): cannot run \"/bin/sh\": working directory {}: No such file or directory",
        ws.path().display()
    );
    assert!(run.stderr.contains(&want), "{want:?} missing from\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
