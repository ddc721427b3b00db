//! `quire-ci report` end to end: streams written by `quire-ci run` (and by
//! hand, for exact output and for a producer that died) read back as text,
//! JSON and SQLite rows.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Run, Workspace, mask_durations, quire_ci};
use rusqlite::Connection;
use serde_json::Value;

const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// build -> test (fails on its second command) -> package -> deploy, and lint on its own.
const FAILING: &str = r#"
local ci = require("quire.ci")
ci.job("build", {"quire/push"}, function(rt)
  rt.sh("echo compiling")
  return {artifact = "app.bin"}
end)
ci.job("test", {"build"}, function(rt)
  rt.sh("echo testing " .. rt.jobs("build").artifact)
  rt.sh("exit 3")
end)
ci.job("package", {"test"}, function(rt) rt.sh("echo never") end)
ci.job("deploy", {"package"}, function(rt) rt.sh("echo never") end)
ci.job("lint", {"quire/push"}, function(rt) rt.sh("true") end)
"#;

/// `report` of a run of [`FAILING`], durations masked.
const FAILING_REPORT: &str = "\
run 4b825dc642cb refs/heads/main

job      outcome   duration
build    complete  <t>
test     failed    <t>
package  blocked   (blocked by test)
deploy   blocked   (blocked by package)
lint     complete  <t>

test failed:
  sh-1  exit 0  echo testing app.bin
  sh-2  exit 3  exit 3

run failed in <t>: 2 complete, 1 failed, 2 blocked
";

const PASSING: &str = r#"
local ci = require("quire.ci")
ci.job("build", {"quire/push"}, function(rt) rt.sh("echo compiling") end)
ci.job("test", {"build"}, function(rt) rt.sh("echo testing"); rt.sh("true") end)
"#;

/// `quire-ci run` on the workspace, its stream in run.jsonl and its logs in out/.
fn run_to_file(ws: &Workspace, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--events",
        "run.jsonl",
        "--out-dir",
        "out",
        "--sha",
        SHA,
        "--ref",
        "refs/heads/main",
    ];
    if !extra.contains(&"-j") {
        args.extend(["-j", "1"]);
    }
    args.extend_from_slice(extra);
    ws.run(&args)
}

/// `quire-ci report ARGS...`, run from inside the workspace.
fn report(ws: &Workspace, args: &[&str]) -> Run {
    let output = quire_ci()
        .arg("report")
        .args(args)
        .current_dir(ws.path())
        .output()
        .expect("spawn quire-ci");
    Run::from(output)
}

/// `quire-ci report ARGS...` with `input` on its stdin.
fn report_stdin(ws: &Workspace, args: &[&str], input: &str) -> Run {
    let mut child = quire_ci()
        .arg("report")
        .args(args)
        .current_dir(ws.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quire-ci");
    // Small enough for the pipe: written whole before the output is read.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    Run::from(child.wait_with_output().unwrap())
}

fn report_json(ws: &Workspace, file: &str) -> Value {
    let run = report(ws, &[file, "--format", "json"]);
    run.assert_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// A miette report on one line: its wrapping and gutters removed.
fn flat(stderr: &str) -> String {
    stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn lines(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[test]
fn a_passing_run_reports_every_job_complete() {
    let ws = Workspace::lua(PASSING);
    run_to_file(&ws, &[]).assert_code(0);
    let run = report(&ws, &["run.jsonl"]);
    run.assert_code(0);
    assert_eq!(
        mask_durations(&run.stdout),
        "\
run 4b825dc642cb refs/heads/main

job    outcome   duration
build  complete  <t>
test   complete  <t>

run complete in <t>: 2 complete
"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn a_failing_run_lists_the_commands_of_the_failed_job_and_blocks_its_descendants() {
    let ws = Workspace::lua(FAILING);
    run_to_file(&ws, &[]).assert_code(1);
    let run = report(&ws, &["run.jsonl"]);
    run.assert_code(0);
    assert_eq!(mask_durations(&run.stdout), FAILING_REPORT);

    let json = report_json(&ws, "run.jsonl");
    let states: Vec<(&str, &str, &Value)> = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["job_id"].as_str().unwrap(),
                job["state"].as_str().unwrap(),
                &job["blocked_by"],
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("build", "complete", &Value::Null),
            ("test", "failed", &Value::Null),
            ("package", "blocked", &Value::from("test")),
            ("deploy", "blocked", &Value::from("package")),
            ("lint", "complete", &Value::Null),
        ]
    );
    assert_eq!(json["run"]["sha"], SHA);
    assert_eq!(json["run"]["ref"], "refs/heads/main");
    assert_eq!(json["run"]["outcome"], "failed");
    assert_eq!(json["warnings"], serde_json::json!([]));
    // Each sh row's log path finds the log of that very command.
    for sh in json["sh"].as_array().unwrap() {
        let log = ws.read(&format!("out/{}", sh["log_path"].as_str().unwrap()));
        let cmd = sh["cmd"].as_str().unwrap();
        if let Some(text) = cmd.strip_prefix("echo ") {
            assert!(log.ends_with(&format!("stdout F {text}\n")), "{cmd}: {log}");
        }
    }
    assert_eq!(json["sh"][2]["log_path"], "jobs/test/sh-2.log");
    assert_eq!(json["sh"][2]["exit_code"], 3);
}

#[test]
fn a_run_piped_into_report_dash_is_read_from_stdin() {
    let ws = Workspace::lua(FAILING);
    // quire-ci run --events stdout ... | quire-ci report -
    let mut producer = ws
        .command(&[
            "run",
            "--events",
            "stdout",
            "--sha",
            SHA,
            "--ref",
            "refs/heads/main",
            "-j",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn quire-ci run");
    let stream = producer.stdout.take().unwrap();
    let consumer = quire_ci()
        .args(["report", "-"])
        .current_dir(ws.path())
        .stdin(stream)
        .output()
        .expect("spawn quire-ci report");
    assert_eq!(producer.wait().unwrap().code(), Some(1));
    let run = Run::from(consumer);
    run.assert_code(0);
    assert_eq!(mask_durations(&run.stdout), FAILING_REPORT);
    assert_eq!(run.stderr, "");
}

#[test]
fn a_stream_on_stdin_is_named_stdin_in_warnings_and_errors() {
    let ws = Workspace::empty();
    let run = report_stdin(&ws, &["-", "--format", "json"], &cut_stream());
    run.assert_code(0);
    assert_eq!(
        run.stderr,
        "warning: <stdin>: line 11 has no newline and is not valid JSON: skipped as cut short (the producer likely died while writing it)\n"
    );
    assert!(run.stdout.contains(r#""outcome": "interrupted""#), "{}", run.stdout);

    let run = report_stdin(&ws, &["-"], "not an event\n");
    run.assert_code(1);
    assert!(
        flat(&run.stderr).contains("<stdin> is not a valid quire-ci event stream: line 1 is not an event: not JSON"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");

    let run = report_stdin(&ws, &["-"], "");
    run.assert_code(1);
    assert!(
        flat(&run.stderr).contains("<stdin> is not a valid quire-ci event stream: the stream holds no events"),
        "{}",
        run.stderr
    );

    // A file named `-` is `./-`.
    ws.write("-", &cut_stream());
    let run = report(&ws, &["./-"]);
    run.assert_code(0);
    assert!(
        run.stderr.starts_with("warning: ./-: line 11 has no newline"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_job_returning_nil_is_skipped_and_the_run_completes() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("maybe", {"quire/push"}, function() return nil end)
ci.job("after", {"maybe"}, function(rt) rt.sh("true") end)
"#,
    );
    run_to_file(&ws, &[]).assert_code(0);
    let run = report(&ws, &["run.jsonl"]);
    run.assert_code(0);
    assert_eq!(
        mask_durations(&run.stdout),
        "\
run 4b825dc642cb refs/heads/main

job    outcome   duration
maybe  skipped   <t>
after  complete  <t>

run complete in <t>: 1 skipped, 1 complete
"
    );
}

#[test]
fn fail_fast_cancels_a_running_job_and_report_shows_its_commands() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("slow", {"quire/push"}, function(rt) rt.sh("sleep 2"); rt.sh("echo never") end)
ci.job("broken", {"quire/push"}, function(rt) rt.sh("exit 1") end)
ci.job("later", {"quire/push"}, function(rt) rt.sh("true") end)
"#,
    );
    run_to_file(&ws, &["-j", "2", "--fail-fast"]).assert_code(1);
    let json = report_json(&ws, "run.jsonl");
    let state = |id: &str| {
        json["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|job| job["job_id"] == id)
            .map(|job| job["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state("slow").as_deref(), Some("cancelled"));
    assert_eq!(state("broken").as_deref(), Some("failed"));
    assert_eq!(state("later").as_deref(), Some("blocked"));
    // Its sleep finished or was killed; either way no second command started.
    let slow_commands: Vec<&Value> = json["sh"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sh| sh["job_id"] == "slow")
        .collect();
    assert_eq!(slow_commands.len(), 1, "{slow_commands:?}");
    assert!(slow_commands[0]["exit_code"].is_i64());

    let text = mask_durations(&report(&ws, &["run.jsonl"]).stdout);
    assert!(text.contains("\nslow cancelled:\n  sh-1  exit "), "{text}");
    assert!(text.contains("later   blocked    (the run stopped first)\n"), "{text}");
    assert!(
        text.ends_with("run failed in <t>: 1 cancelled, 1 failed, 1 blocked\n"),
        "{text}"
    );
}

#[test]
fn a_pipeline_that_fails_to_load_is_a_run_with_its_error_and_no_jobs() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job(\"x\", {\"quire/push\"}, function()\n  oops oops\nend)\n",
    );
    run_to_file(&ws, &[]).assert_code(1);
    let run = report(&ws, &["run.jsonl"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("run failed before it started\nerror:\n  "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(".quire/ci.lua:3:"), "{}", run.stdout);

    let json = report_json(&ws, "run.jsonl");
    assert_eq!(json["run"]["sha"], Value::Null);
    assert_eq!(json["run"]["outcome"], "failed");
    assert!(json["run"]["error"].as_str().unwrap().contains("ci.lua:3:"));
    assert_eq!(json["jobs"], serde_json::json!([]));
    assert_eq!(json["sh"], serde_json::json!([]));
}

/// What a producer killed mid-run leaves: no run_finished, a torn last line.
/// Also carries an event type from the future, which must be ignored.
fn cut_stream() -> String {
    let mut text = lines(&[
        r#"{"at_ms":1000,"type":"run_started","sha":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","ref":"refs/heads/main","jobs":["build","test","deploy"]}"#,
        r#"{"at_ms":1010,"type":"job_started","job_id":"build"}"#,
        r#"{"at_ms":1011,"type":"sh_started","job_id":"build","cmd":"cargo build"}"#,
        r#"{"at_ms":2500,"type":"sh_finished","job_id":"build","exit_code":0}"#,
        r#"{"at_ms":2502,"type":"job_finished","job_id":"build","outcome":"complete"}"#,
        r#"{"at_ms":2503,"type":"runner_heartbeat","load":[0.5,0.25]}"#,
        r#"{"at_ms":2510,"type":"job_started","job_id":"test"}"#,
        r#"{"at_ms":2511,"type":"sh_started","job_id":"test","cmd":"cargo test --workspace"}"#,
        r#"{"at_ms":4000,"type":"sh_finished","job_id":"test","exit_code":0}"#,
        r#"{"at_ms":4001,"type":"sh_started","job_id":"test","cmd":"cargo test --doc"}"#,
    ]);
    text.push_str(r#"{"at_ms":9000,"type":"sh_fini"#);
    text
}

#[test]
fn a_warning_to_a_stderr_nobody_reads_does_not_stop_the_report() {
    let ws = Workspace::empty();
    ws.write("cut.jsonl", &cut_stream());
    // stderr a pipe whose reader is gone: writing the warning fails (EPIPE).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = quire_ci()
        .current_dir(ws.path())
        .args(["report", "cut.jsonl"])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("run 4b825dc642cb refs/heads/main\n"));
}

#[test]
fn a_stream_cut_mid_run_is_an_interrupted_run_with_a_warning() {
    let ws = Workspace::empty();
    ws.write("cut.jsonl", &cut_stream());
    let run = report(&ws, &["cut.jsonl"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "\
run 4b825dc642cb refs/heads/main

job     outcome     duration
build   complete    1.49s
test    unfinished  (still running when the stream ended)
deploy  pending     (never started)

test unfinished:
  sh-1  exit 0   cargo test --workspace
  sh-2  running  cargo test --doc

run interrupted (the stream ends without run_finished): 1 complete, 1 unfinished, 1 pending
"
    );
    assert_eq!(
        run.stderr,
        "warning: cut.jsonl: line 11 has no newline and is not valid JSON: skipped as cut short (the producer likely died while writing it)\n"
    );

    let json = report_json(&ws, "cut.jsonl");
    assert_eq!(json["run"]["outcome"], "interrupted");
    assert_eq!(json["run"]["finished_ms"], Value::Null);
    assert_eq!(json["run"]["started_ms"], 1000);
    assert_eq!(json["jobs"][1]["state"], "unfinished");
    assert_eq!(json["jobs"][1]["started_ms"], 2510);
    assert_eq!(json["jobs"][2]["state"], "pending");
    assert_eq!(
        json["sh"][2],
        serde_json::json!({
            "job_id": "test",
            "n": 2,
            "cmd": "cargo test --doc",
            "exit_code": null,
            "started_ms": 4001,
            "finished_ms": null,
            "log_path": "jobs/test/sh-2.log",
        })
    );
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
}

/// The fenced block of docs/events.md that follows `marker`.
fn docs_block(docs: &str, marker: &str) -> String {
    let start = docs.find(marker).expect(marker) + marker.len();
    let rest = &docs[start..];
    let end = rest.find("\n```").expect("closing fence");
    rest[..end].trim_start_matches('\n').to_string() + "\n"
}

#[test]
fn the_example_in_the_docs_is_what_report_prints() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let stream = docs_block(&docs, "```jsonl");
    let expected = docs_block(&docs, "```text");
    let ws = Workspace::empty();
    ws.write("example.jsonl", &stream);
    let run = report(&ws, &["example.jsonl"]);
    run.assert_code(0);
    assert_eq!(run.stdout, expected);
}

#[derive(Debug, Clone, PartialEq)]
struct RunRow {
    id: i64,
    sha: Option<String>,
    git_ref: Option<String>,
    outcome: String,
    took_ms: Option<i64>,
}

#[derive(Debug, PartialEq)]
struct JobRow {
    run_id: i64,
    job_id: String,
    position: i64,
    state: String,
    blocked_by: Option<String>,
}

#[derive(Debug, PartialEq)]
struct ShRow {
    run_id: i64,
    job_id: String,
    n: i64,
    cmd: String,
    exit_code: Option<i64>,
    log_path: String,
}

/// Every row of the three tables, in the order they went in.
fn read_rows(db: &std::path::Path) -> (Vec<RunRow>, Vec<JobRow>, Vec<ShRow>) {
    let conn = Connection::open(db).unwrap();
    let runs = query(
        &conn,
        "SELECT id, sha, ref, outcome, finished_ms - started_ms FROM runs ORDER BY id",
        |r| {
            Ok(RunRow {
                id: r.get(0)?,
                sha: r.get(1)?,
                git_ref: r.get(2)?,
                outcome: r.get(3)?,
                took_ms: r.get(4)?,
            })
        },
    );
    let jobs = query(
        &conn,
        "SELECT run_id, job_id, position, state, blocked_by FROM jobs ORDER BY run_id, position",
        |r| {
            Ok(JobRow {
                run_id: r.get(0)?,
                job_id: r.get(1)?,
                position: r.get(2)?,
                state: r.get(3)?,
                blocked_by: r.get(4)?,
            })
        },
    );
    let sh = query(
        &conn,
        "SELECT run_id, job_id, n, cmd, exit_code, log_path FROM sh_events ORDER BY rowid",
        |r| {
            Ok(ShRow {
                run_id: r.get(0)?,
                job_id: r.get(1)?,
                n: r.get(2)?,
                cmd: r.get(3)?,
                exit_code: r.get(4)?,
                log_path: r.get(5)?,
            })
        },
    );
    (runs, jobs, sh)
}

/// The rows `sql` selects, each made by `row`.
fn query<T>(conn: &Connection, sql: &str, row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>) -> Vec<T> {
    let mut statement = conn.prepare(sql).unwrap();
    statement.query_map([], row).unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn sqlite_ingest_is_idempotent_and_reads_back_the_expected_rows() {
    let ws = Workspace::lua(FAILING);
    run_to_file(&ws, &[]).assert_code(1);
    let db = ws.path().join("history.db");
    for _ in 0..2 {
        let run = report(&ws, &["run.jsonl", "--sqlite", "history.db"]);
        run.assert_code(0);
        assert!(run.stdout.contains("test failed:"), "still prints the report");
    }
    let (runs, jobs, sh) = read_rows(&db);
    assert_eq!(runs.len(), 1, "ingesting twice leaves one run");
    let first = runs[0].clone();
    let run_id = first.id;
    assert_eq!(
        (first.sha.as_deref(), first.git_ref.as_deref(), first.outcome.as_str()),
        (Some(SHA), Some("refs/heads/main"), "failed")
    );
    assert!(first.took_ms.is_some_and(|ms| ms >= 0));
    let job = |job_id: &str, position, state: &str, blocked_by: Option<&str>| JobRow {
        run_id,
        job_id: job_id.into(),
        position,
        state: state.into(),
        blocked_by: blocked_by.map(String::from),
    };
    assert_eq!(
        jobs,
        vec![
            job("build", 1, "complete", None),
            job("test", 2, "failed", None),
            job("package", 3, "blocked", Some("test")),
            job("deploy", 4, "blocked", Some("package")),
            job("lint", 5, "complete", None),
        ]
    );
    let command = |job_id: &str, n, cmd: &str, exit_code| ShRow {
        run_id,
        job_id: job_id.into(),
        n,
        cmd: cmd.into(),
        exit_code: Some(exit_code),
        log_path: format!("jobs/{job_id}/sh-{n}.log"),
    };
    assert_eq!(
        sh,
        vec![
            command("build", 1, "echo compiling", 0),
            command("test", 1, "echo testing app.bin", 0),
            command("test", 2, "exit 3", 3),
            command("lint", 1, "true", 0),
        ]
    );

    // Another run of the same commit is another row; re-ingesting the first keeps its id.
    run_to_file(&ws, &[]).assert_code(1);
    report(&ws, &["run.jsonl", "--sqlite", "history.db"]).assert_code(0);
    ws.write("cut.jsonl", &cut_stream());
    ws.write(
        "not-loaded.jsonl",
        &lines(&[r#"{"at_ms":77,"type":"run_finished","outcome":"failed","error":"no pipeline"}"#]),
    );
    for file in ["cut.jsonl", "not-loaded.jsonl", "cut.jsonl", "not-loaded.jsonl"] {
        report(&ws, &[file, "--sqlite", "history.db"]).assert_code(0);
    }
    let (runs, jobs, sh) = read_rows(&db);
    let summary: Vec<(i64, &str, Option<i64>)> = runs
        .iter()
        .map(|run| (run.id, run.outcome.as_str(), run.took_ms))
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(summary[0].0, run_id);
    assert_eq!(summary[2].1, "interrupted");
    assert_eq!(summary[2].2, None, "an interrupted run has no finish");
    assert_eq!((summary[3].1, summary[3].2), ("failed", Some(0)));
    assert_eq!(runs[3].sha, None);
    assert_eq!(jobs.len(), 5 + 5 + 3);
    let open: Vec<&ShRow> = sh.iter().filter(|row| row.exit_code.is_none()).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].cmd, "cargo test --doc");
}

#[test]
fn a_torn_copy_of_a_stored_finished_run_keeps_the_finished_rows() {
    let ws = Workspace::lua(PASSING);
    run_to_file(&ws, &[]).assert_code(0);
    report(&ws, &["run.jsonl", "--sqlite", "history.db"]).assert_code(0);
    // The same run's stream cut after its first job started, as a copy taken mid-run.
    let full = std::fs::read_to_string(ws.path().join("run.jsonl")).unwrap();
    let cut: String = full.lines().take(2).map(|line| format!("{line}\n")).collect();
    ws.write("cut.jsonl", &cut);
    let run = report(&ws, &["cut.jsonl", "--sqlite", "history.db"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains(
            "warning: cut.jsonl: the stream ends before its run_finished, and history.db already holds this run finished (id 1); kept that"
        ),
        "{}",
        run.stderr
    );
    let (runs, _, _) = read_rows(&ws.path().join("history.db"));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, "complete");
}

#[test]
fn a_file_that_is_not_an_event_stream_says_so() {
    let ws = Workspace::lua(PASSING);
    let run = report(&ws, &[".quire/ci.lua"]);
    run.assert_code(1);
    assert!(
        flat(&run.stderr)
            .contains(".quire/ci.lua is not a valid quire-ci event stream: line 1 is not an event: not JSON"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");

    ws.write("empty.jsonl", "");
    let run = report(&ws, &["empty.jsonl"]);
    run.assert_code(1);
    assert!(
        flat(&run.stderr).contains("the stream holds no events"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_stream_that_breaks_the_contract_names_the_line() {
    let ws = Workspace::empty();
    ws.write(
        "broken.jsonl",
        &lines(&[
            r#"{"at_ms":1,"type":"run_started","sha":"x","ref":"y","jobs":["a"]}"#,
            r#"{"at_ms":2,"type":"job_started","job_id":"a"}"#,
            r#"{"at_ms":3,"type":"sh_finished","job_id":"a","exit_code":0}"#,
        ]),
    );
    let run = report(&ws, &["broken.jsonl"]);
    run.assert_code(1);
    assert!(
        flat(&run.stderr).contains(
            "broken.jsonl is not a valid quire-ci event stream: line 3 breaks the event stream \
             contract: sh_finished in job `a` without a matching sh_started"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_missing_file_or_unusable_database_is_a_usage_error() {
    let ws = Workspace::empty();
    let run = report(&ws, &["nowhere.jsonl"]);
    run.assert_code(2);
    assert!(
        flat(&run.stderr).contains("cannot read nowhere.jsonl: No such file"),
        "{}",
        run.stderr
    );

    ws.write("cut.jsonl", &cut_stream());
    ws.write("notes.txt", &"not a database\n".repeat(200));
    let run = report(&ws, &["cut.jsonl", "--sqlite", "notes.txt"]);
    run.assert_code(2);
    assert!(
        flat(&run.stderr).contains("cannot write the run into notes.txt"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "nothing is printed when the run was not stored");
}
