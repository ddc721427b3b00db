//! `quire-ci run` end to end: the event stream, logs, exit codes, bad input.

mod common;

use common::{Run, Workspace, cri_lines, mask_durations};

const TWO_JOBS: &str = r#"
local ci = require("quire.ci")
ci.job("build", {"quire/push"}, function(rt)
  rt.sh("echo compiling; echo careful >&2")
  return {artifact = "app.bin"}
end)
ci.job("test", {"build"}, function(rt)
  rt.sh("echo testing " .. rt.jobs("build").artifact)
  rt.sh("exit 3")
end)
"#;

#[test]
fn two_jobs_with_a_failing_command_give_the_exact_stream_and_logs() {
    let ws = Workspace::lua(TWO_JOBS);
    let run = ws.run_events(&["--sha", &"a".repeat(40), "--ref", "refs/heads/main"]);
    run.assert_code(1);
    let sha = "a".repeat(40);
    assert_eq!(
        run.event_lines(),
        vec![
            format!(r#"{{"type":"run_started","sha":"{sha}","ref":"refs/heads/main","jobs":["build","test"]}}"#),
            r#"{"type":"job_started","job_id":"build"}"#.to_string(),
            r#"{"type":"sh_started","job_id":"build","cmd":"echo compiling; echo careful >&2"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"build","exit_code":0}"#.to_string(),
            r#"{"type":"job_finished","job_id":"build","outcome":"complete"}"#.to_string(),
            r#"{"type":"job_started","job_id":"test"}"#.to_string(),
            r#"{"type":"sh_started","job_id":"test","cmd":"echo testing app.bin"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"test","exit_code":0}"#.to_string(),
            r#"{"type":"sh_started","job_id":"test","cmd":"exit 3"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"test","exit_code":3}"#.to_string(),
            r#"{"type":"job_finished","job_id":"test","outcome":"failed"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"failed"}"#.to_string(),
        ]
    );
    // Pairing: the n-th sh_started of a job pairs with its n-th sh_finished and sh-<n>.log.
    // stdout and stderr are separate pipes: their lines' relative order is not defined.
    let mut build = cri_lines(&ws.log("build", 1));
    build.sort();
    assert_eq!(build, vec!["stderr F careful", "stdout F compiling"]);
    assert_eq!(cri_lines(&ws.log("test", 1)), vec!["stdout F testing app.bin"]);
    assert_eq!(cri_lines(&ws.log("test", 2)), Vec::<String>::new());
    // The person at the terminal sees why.
    assert!(
        run.stderr.contains("command `exit 3` exited with code 3"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(".quire/ci.lua:9:"), "{}", run.stderr);
}

/// The runner blocks SIGCHLD (it reads it from a signalfd); its commands
/// must not inherit that, or a program waiting for its own children by
/// SIGCHLD would never hear of them. (An argv, not `sh`, which clears its
/// mask itself.)
#[test]
fn commands_start_with_no_signal_blocked() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job('x', {'quire/push'}, function(rt) rt.sh({'grep', 'SigBlk', '/proc/self/status'}) end)\n",
    );
    ws.run_events(&[]).assert_code(0);
    assert_eq!(cri_lines(&ws.log("x", 1)), vec!["stdout F SigBlk:\t0000000000000000"]);
}

#[test]
fn descendants_of_a_failed_job_are_skipped_and_independent_branches_run() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("test", {"quire/push"}, function(rt) rt.sh("false") end)
ci.job("package", {"test"}, function(rt) rt.sh("echo never") end)
ci.job("deploy", {"package"}, function(rt) rt.sh("echo never") end)
ci.job("lint", {"quire/push"}, function(rt) rt.sh("true") end)
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"job_skipped","job_id":"package","blocked_by":"test"}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_skipped","job_id":"deploy","blocked_by":"package"}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"lint","outcome":"complete"}"#.to_string()));
    assert!(!run.stdout.contains("never"));
}

#[test]
fn a_job_returning_nil_without_commands_is_skipped_and_the_run_completes() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("maybe", {"quire/push"}, function() return nil end)
ci.job("after", {"maybe"}, function(rt) return {seen = rt.jobs("maybe") == nil} end)
ci.job("check", {"after"}, function(rt) if not rt.jobs("after").seen then error("output lost") end end)
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(0);
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"maybe","outcome":"skipped"}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"check","outcome":"skipped"}"#.to_string()));
    assert_eq!(lines.last().unwrap(), r#"{"type":"run_finished","outcome":"complete"}"#);
}

#[test]
fn registering_from_a_run_fn_fails_the_job_instead_of_doing_nothing() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push] (fn [] (ci.job :late [:a] (fn [r] (r.sh "touch late")))))
(ci.job :b [:quire/push] (fn [] (ci.image "rust:1.80")))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"a","outcome":"failed"}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"b","outcome":"failed"}"#.to_string()));
    assert!(!ws.path().join("late").exists());
    for (job, line, function) in [("a", 2, "job"), ("b", 3, "image")] {
        let expected = format!(
            "{job} | failed in <t>: .quire/ci.fnl:{line}: ci.{function} is called from a job's run-fn, \
             after the pipeline was loaded: it would change nothing; call it from the top level of the pipeline"
        );
        assert!(
            common::mask_durations(&run.stderr).lines().any(|l| l == expected),
            "{expected:?} missing from\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_name_of_the_wrong_type_fails_the_job_naming_the_function_and_what_it_expects() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :jobs [:quire/push] (fn [r] (r.jobs)))
(ci.job :secret [:quire/push] (fn [r] (r.secret {})))
(ci.job :env [:quire/push] (fn [r] (r.env [])))
(ci.job :bytes [:quire/push] (fn [r] (r.jobs "\xff")))
(ci.job :require [:quire/push] (fn [r] (require)))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    for expected in [
        ".quire/ci.fnl:2: runtime.jobs expects a job id (a string), got nil",
        ".quire/ci.fnl:3: runtime.secret expects a secret's name (a string), got table",
        ".quire/ci.fnl:4: runtime.env expects a variable's name (a string), got table",
        ".quire/ci.fnl:5: runtime.jobs expects a job id (a string), got a string that is not valid UTF-8",
        ".quire/ci.fnl:6: require expects a module name (a string), got nil",
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains("| failed in ") && l.ends_with(expected)),
            "{expected:?} missing from\n{}",
            run.stderr
        );
    }
}

#[test]
fn stdout_carries_only_the_event_stream() {
    let ws = Workspace::lua(
        r#"
print("top-level print")
local ci = require("quire.ci")
ci.job("noisy", {"quire/push"}, function(rt)
  print("print from a job")
  rt.sh("echo command output | tr a-z A-Z; echo to stderr | tr a-z A-Z >&2")
end)
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert_eq!(run.events().len(), 6);
    for text in ["top-level print", "print from a job", "COMMAND OUTPUT", "TO STDERR"] {
        assert!(!run.stdout.contains(text), "{text} leaked to stdout");
        assert!(run.stderr.contains(text), "{text} missing from stderr:\n{}", run.stderr);
    }
}

/// Prints at top level, and from two jobs' run-fns (one of which fails).
const PRINTING: &str = r#"(local ci (require :quire.ci))
(print "registering jobs")
(ci.job :build [:quire/push]
  (fn [runtime]
    (print "building version" 3)
    (runtime.sh "echo compiled")
    (warn "cache " "cold")
    {}))
(ci.job :test-all [:build]
  (fn [runtime]
    (runtime.sh "true")
    (print "two\nlines")
    (error "no tests")))
"#;

#[test]
fn print_in_a_job_is_prefixed_like_its_command_output_and_top_level_print_is_not() {
    let ws = Workspace::fennel(PRINTING);
    let run = ws.run(&["run", "-j", "1"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        mask_durations(&run.stderr),
        "\
registering jobs
run 000000000000 HEAD: 2 jobs
build    | started
build    | building version\t3
build    | $ echo compiled
build    | compiled
build    | Lua warning: cache cold
build    | complete in <t>
test-all | started
test-all | $ true
test-all | two
test-all | lines
test-all | failed in <t>: .quire/ci.fnl:13: no tests

job       outcome    duration
build     complete   <t>
test-all  failed     <t>

test-all: .quire/ci.fnl:13: no tests
  two
  lines

run failed in <t>: 1 complete, 1 failed
"
    );

    // Quiet: like command output, shown only for the failed job, and once:
    // the summary does not repeat what the failure's line just showed.
    let quiet = ws.run(&["run", "-j", "1", "-q"]);
    quiet.assert_code(1);
    assert_eq!(
        mask_durations(&quiet.stderr),
        "\
test-all | failed in <t>: .quire/ci.fnl:13: no tests
test-all | two
test-all | lines

job       outcome    duration
build     complete   <t>
test-all  failed     <t>

run failed in <t>: 1 complete, 1 failed
"
    );
}

#[test]
fn events_go_to_a_file_flushed_and_complete() {
    let ws = Workspace::lua(TWO_JOBS);
    let run = ws.run(&["run", "--events", "run.jsonl", "-j", "1"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    let text = ws.read("run.jsonl");
    assert_eq!(text.lines().count(), 12);
    assert!(text.ends_with("\"type\":\"run_finished\",\"outcome\":\"failed\"}\n"));
}

#[test]
fn events_null_writes_nothing_and_a_file_named_null_needs_a_path() {
    let ws = Workspace::lua(TWO_JOBS);
    ws.run(&["run"]).assert_code(1);
    assert!(!ws.path().join("null").exists());
    ws.run(&["run", "--events", "./null"]).assert_code(1);
    assert!(ws.read("null").contains("run_finished"));
}

#[test]
fn an_unwritable_events_path_is_a_usage_error_and_nothing_runs() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("touch", {"quire/push"}, function(rt) rt.sh("touch ran") end)
"#,
    );
    let run = ws.run(&["run", "--events", "no/such/dir/run.jsonl"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("cannot open the events file no/such/dir/run.jsonl"),
        "{}",
        run.stderr
    );
    assert!(!ws.path().join("ran").exists());
}

#[test]
fn a_missing_pipeline_is_a_setup_error_recorded_as_run_finished() {
    let ws = Workspace::empty();
    let run = ws.run_events(&[]);
    run.assert_code(2);
    let events = run.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "run_finished");
    assert_eq!(events[0]["outcome"], "failed");
    assert!(events[0]["error"].as_str().unwrap().contains("expected .quire/ci.fnl"));
}

#[test]
fn a_pipeline_that_is_a_directory_is_named_as_unreadable_not_missing() {
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join(".quire/ci.fnl")).unwrap();
    let run = ws.run(&["validate"]);
    run.assert_code(2);
    let pipeline = ws.path().join(".quire/ci.fnl");
    run.assert_stderr_lines(&[&format!(
        "  × cannot read {}: Is a directory (os error 21)",
        pipeline.display()
    )]);
    let run = ws.run_events(&[]);
    run.assert_code(2);
    let events = run.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "run_finished");
    assert!(
        events[0]["error"].as_str().unwrap().contains("Is a directory"),
        "{}",
        events[0]
    );
}

#[test]
fn a_missing_workspace_is_a_usage_error() {
    let mut cmd = common::quire_ci();
    cmd.args(["-w", "/no/such/workspace", "run"]);
    let run = common::Run::from(cmd.output().unwrap());
    run.assert_code(2);
    assert!(
        run.stderr.contains("workspace /no/such/workspace does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_lua_syntax_error_fails_the_run_with_its_line() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job(\"x\", {\"quire/push\"}, function()\n  oops oops\nend)\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let events = run.events();
    assert_eq!(events.len(), 1);
    let error = events[0]["error"].as_str().unwrap();
    assert!(error.contains(".quire/ci.lua:3:"), "{error}");
}

#[test]
fn an_error_in_a_run_fn_fails_that_job_with_the_line() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job('x', {'quire/push'}, function()\n  local t = nil\n  return t.field\nend)\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert!(
        run.event_lines()
            .contains(&r#"{"type":"job_finished","job_id":"x","outcome":"failed"}"#.to_string())
    );
    assert!(
        run.stderr.contains(".quire/ci.lua:4: attempt to index a nil value"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failing_command_returned_from_a_lua_run_fn_names_its_line() {
    // `return rt.sh(...)` is a tail call: the run-fn's frame is gone when it fails.
    let ws = Workspace::lua(
        r#"local ci = require("quire.ci")
ci.job("tail", {"quire/push"}, function(rt)
  rt.sh("true")
  return rt.sh("exit 3")
end)
ci.job("not-tail", {"quire/push"}, function(rt)
  rt.sh("exit 4")
end)
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    run.assert_stderr_lines(&[
        "tail: .quire/ci.lua:4: command `exit 3` exited with code 3",
        "not-tail: .quire/ci.lua:7: command `exit 4` exited with code 4",
    ]);
}

#[test]
fn a_command_that_cannot_start_exits_127_with_the_reason_in_its_log() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job('x', {'quire/push'}, function(rt) rt.sh({'no-such-program-xyz', 'arg'}) end)\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert!(
        run.event_lines()
            .contains(&r#"{"type":"sh_finished","job_id":"x","exit_code":127}"#.to_string())
    );
    let log = ws.log("x", 1);
    assert!(
        log.contains(" stderr F ") && log.contains("no-such-program-xyz"),
        "{log}"
    );
}

#[test]
fn a_secret_whose_variable_is_unset_is_a_setup_error() {
    let ws = Workspace::lua(TWO_JOBS);
    let run = ws.run_events(&["--secret", "TOKEN=env:QUIRE_TEST_UNSET_VAR"]);
    run.assert_code(2);
    let events = run.events();
    assert_eq!(events.len(), 1);
    let error = events[0]["error"].as_str().unwrap();
    assert!(
        error.contains("secret TOKEN: environment variable QUIRE_TEST_UNSET_VAR is not set"),
        "{error}"
    );
}

#[test]
fn set_up_errors_give_the_os_reason_once() {
    let ws = Workspace::lua(TWO_JOBS);
    let missing = ws.path().join("no-such-key.txt");
    let secret = format!("KEY=file:{}", missing.display());
    let run = ws.run(&["run", "--secret", &secret]);
    run.assert_code(2);
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        run.stderr
    );
    run.assert_stderr_lines(&[&format!(
        "  × secret KEY: cannot read {}: No such file or directory (os error 2)",
        missing.display()
    )]);

    let run = ws.run(&["run", "--out-dir", "/proc/no-such-dir"]);
    run.assert_code(2);
    run.assert_stderr_lines(&[
        "  × cannot create the log directory /proc/no-such-dir: No such file or directory (os error 2)",
    ]);
    assert_eq!(run.stderr.matches("No such file").count(), 1, "{}", run.stderr);
}

#[test]
fn secrets_reach_commands_and_are_redacted_from_events_and_logs() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("deploy", {"quire/push"}, function(rt)
  local token = rt.secret("TOKEN")
  rt.sh("echo using " .. token)
  local out = rt.sh({"printenv", "DEPLOY_TOKEN"}, {env = {DEPLOY_TOKEN = token}})
  assert(out.stdout == token .. "\n", "raw value returned to Lua")
end)
"#,
    );
    let mut cmd = ws.events_command(&["--secret", "TOKEN=env:QUIRE_TEST_TOKEN"]);
    let run = common::Run::from(cmd.env("QUIRE_TEST_TOKEN", "hunter2-s3cret").output().unwrap());
    run.assert_code(0);
    assert!(run.stdout.contains(r#""cmd":"echo using ***""#), "{}", run.stdout);
    for text in [&run.stdout, &run.stderr, &ws.log("deploy", 1), &ws.log("deploy", 2)] {
        assert!(!text.contains("hunter2-s3cret"), "secret leaked: {text}");
    }
    assert_eq!(cri_lines(&ws.log("deploy", 1)), vec!["stdout F using ***"]);
}

#[test]
fn unknown_secrets_and_non_ancestor_jobs_are_errors_naming_what_exists() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("a", {"quire/push"}, function(rt) return {} end)
ci.job("b", {"quire/push"}, function(rt) rt.jobs("a") end)
ci.job("c", {"quire/push"}, function(rt) rt.secret("NOPE") end)
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    // Each names the line that called it, like runtime.sh.
    run.assert_stderr_lines(&[
        "b: .quire/ci.lua:4: runtime.jobs: 'a' is not an input of job 'b' (directly or indirectly); it can read: quire/push",
        "c: .quire/ci.lua:5: runtime.secret: unknown secret 'NOPE'; no secrets are declared (use --secret NAME=env:VAR or NAME=file:PATH)",
    ]);
}

#[test]
fn sh_options_env_cwd_and_allow_failure() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("opts", {"quire/push"}, function(rt)
  local r = rt.sh("echo $GREETING; pwd", {env = {GREETING = "hello"}, cwd = "sub"})
  assert(r.exit == 0 and r.cmd == "echo $GREETING; pwd")
  local f = rt.sh("exit 4", {["allow-failure"] = true})
  assert(f.exit == 4, "allow-failure returns the exit code")
  return {out = r.stdout}
end)
ci.job("escape", {"quire/push"}, function(rt) rt.sh("pwd", {cwd = "../.."}) end)
"#,
    );
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let log = cri_lines(&ws.log("opts", 1));
    assert_eq!(log[0], "stdout F hello");
    assert!(log[1].ends_with("/sub"), "{log:?}");
    assert!(
        run.event_lines()
            .contains(&r#"{"type":"job_finished","job_id":"opts","outcome":"complete"}"#.to_string())
    );
    assert!(run.stderr.contains(":cwd ../.. leaves the workspace"), "{}", run.stderr);
}

#[test]
fn sh_results_hold_the_captured_output_small_or_large() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
local function keys(t)
  local seen = {}
  for k in pairs(t) do seen[#seen + 1] = k end
  table.sort(seen)
  return table.concat(seen, ",")
end
ci.job("sizes", {"quire/push"}, function(rt)
  local small = rt.sh("printf hi; printf oops >&2")
  assert(keys(small) == "cmd,exit,stderr,stdout", keys(small))
  assert(small.stdout == "hi" and small.stderr == "oops")
  -- Past 64 KiB the strings are made when read; pairs lists them after that.
  local big = rt.sh("head -c 70000 /dev/zero | tr '\\0' x; printf err >&2")
  assert(keys(big) == "cmd,exit", keys(big))
  assert(#big.stdout == 70000 and big.stdout:sub(1, 3) == "xxx", #big.stdout)
  assert(big.stderr == "err" and big.stderr == "err")
  assert(keys(big) == "cmd,exit,stderr,stdout", keys(big))
end)
"#,
    );
    let run = ws.run(&["run", "-q"]);
    run.assert_code(0);
}

/// What a pipeline can see of an sh result besides its fields' values: the
/// fields `pairs` lists (in no set order: Lua seeds its string hashes), their
/// types, the metatable (none for a small capture, one with only `__index`
/// for a large one), and that each result is a fresh table of the job's own.
#[test]
fn sh_results_are_fresh_plain_tables() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
local function listed(t)
  local seen = {}
  for k, v in pairs(t) do seen[#seen + 1] = k .. "=" .. tostring(v) end
  table.sort(seen)
  return table.concat(seen, " ")
end
ci.job("shape", {"quire/push"}, function(rt)
  local r = rt.sh("printf hi; printf oops >&2")
  assert(listed(r) == "cmd=printf hi; printf oops >&2 exit=0 stderr=oops stdout=hi", listed(r))
  assert(math.type(r.exit) == "integer" and getmetatable(r) == nil and #r == 0)
  assert(r["stdout-truncated"] == nil and r["stderr-truncated"] == nil)
  local argv = rt.sh({"printf", "%s", "a b", "c'd"})
  assert(argv.cmd == [[printf %s 'a b' 'c'\''d']] and argv.stdout == "a bc'd", argv.cmd)
  local failed = rt.sh("exit 3", {["allow-failure"] = true})
  assert(listed(failed) == "cmd=exit 3 exit=3 stderr= stdout=", listed(failed))
  local again = rt.sh("printf hi; printf oops >&2")
  assert(again ~= r and listed(again) == listed(r))
  r.exit, r.mine = 7, true
  assert(r.exit == 7 and r.mine and again.exit == 0 and again.mine == nil)

  local big = rt.sh("head -c 70000 /dev/zero | tr '\\0' x; printf err >&2")
  assert(listed(big) == "cmd=head -c 70000 /dev/zero | tr '\\0' x; printf err >&2 exit=0", listed(big))
  local meta = getmetatable(big)
  assert(type(meta) == "table" and type(meta.__index) == "function")
  assert(next(meta) == "__index" and next(meta, "__index") == nil)
  assert(rawget(big, "stdout") == nil and big.other == nil and rawget(big, "other") == nil)
  big.stderr = "mine"
  assert(big.stderr == "mine" and #big.stdout == 70000 and rawget(big, "stdout") == big.stdout)
  return {}
end)
"#,
    );
    let run = ws.run(&["run", "-q"]);
    run.assert_code(0);
}

/// `runtime.sh`'s errors, caught: a string naming the line that called it,
/// whether the error comes before the command (its arguments) or after it
/// (its exit, its timeout), from the run-fn or from a function it called.
#[test]
fn runtime_sh_errors_caught_with_pcall_name_the_calling_line() {
    let ws = Workspace::lua(
        r#"local ci = require("quire.ci")
ci.job("caught", {"quire/push"}, function(rt)
  local function show(ok, err)
    assert(not ok and type(err) == "string", tostring(err))
    print("caught: " .. err)
  end
  show(pcall(rt.sh, "exit 3"))
  show(pcall(function()
    rt.sh("exit 4")
  end))
  show(pcall(rt.sh, "sleep 5", {timeout = 0.1}))
  show(pcall(rt.sh, 42))
  local function helper() return rt.sh("exit 5") end
  show(pcall(helper))
  show(pcall(coroutine.wrap(rt.sh), "true"))
  show(pcall(coroutine.wrap(function()
    local ok, err = pcall(rt.sh, "true")
    error(err, 0)
  end)))
end)
"#,
    );
    let run = ws.run(&["run"]);
    run.assert_code(0);
    let refused = "runtime.sh: job 'caught' runs commands from its run-fn only, not from a coroutine it created, \
                   nor from another job or after it has finished";
    let printed: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("| caught: "))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(
        printed,
        [
            ".quire/ci.lua:7: command `exit 3` exited with code 3",
            ".quire/ci.lua:9: command `exit 4` exited with code 4",
            ".quire/ci.lua:11: command `sleep 5` timed out after 0.1s (exit code 124)",
            ".quire/ci.lua:12: runtime.sh: expected a command string or an argv sequence, got integer",
            // The helper's frame is gone (a tail call): the line that called it.
            ".quire/ci.lua:14: command `exit 5` exited with code 5",
            // Called by no function of the pipeline: no line.
            refused,
            &format!(".quire/ci.lua:17: {refused}"),
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn without_out_dir_logs_go_to_a_temporary_directory_only_for_commands_that_print() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("j", {"quire/push"}, function(rt)
  rt.sh("true")
  rt.sh("echo hi")
  rt.sh('cd "$TMPDIR"/quire-ci-*/jobs/j && ls && cat sh-2.log | cut -d" " -f2-')
end)
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = ws.command(&["run"]).env("TMPDIR", tmp.path()).output().unwrap();
    let run = common::Run::from(out);
    run.assert_code(0);
    // The silent first command made no log; the third one's is made after its output.
    let listed: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("j | $ cd"))
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(listed, ["j | sh-2.log", "j | stdout F hi"], "{}", run.stderr);
    // Removed at exit.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_run_fn_returning_a_non_table_fails() {
    let ws = Workspace::lua("local ci = require('quire.ci')\nci.job('x', {'quire/push'}, function() return 42 end)\n");
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("returned an integer; it must return a table"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_sandbox_has_no_host_access_but_the_runtime() {
    let ws = Workspace::lua(
        r#"
assert(io == nil and debug == nil and dofile == nil and loadfile == nil)
assert(os.execute == nil and os.getenv == nil and os.remove == nil and os.time ~= nil)
assert(string.dump == nil)
assert(load(string.char(27) .. "Lua") == nil, "binary chunks refused")
local ci = require("quire.ci")
ci.job("ok", {"quire/push"}, function(rt) return {env = rt.env("HOME")} end)
"#,
    );
    ws.run_events(&[]).assert_code(0);
}

#[test]
fn the_global_runtime_is_the_running_jobs() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("a", {"quire/push"}, function() runtime.sh("echo from a") end)
ci.job("b", {"quire/push"}, function() runtime.sh("echo from b") end)
"#,
    );
    let run = ws.run_events(&["-j", "2"]);
    run.assert_code(0);
    assert_eq!(cri_lines(&ws.log("a", 1)), vec!["stdout F from a"]);
    assert_eq!(cri_lines(&ws.log("b", 1)), vec!["stdout F from b"]);
}

#[test]
fn a_command_past_its_timeout_is_stopped_with_exit_124_and_fails_the_job() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("slow", {"quire/push"}, function(rt) rt.sh("sleep 30", {timeout = 0.3}) end)
ci.job("bounded", {"quire/push"}, function(rt) rt.sh("sleep 30") end)
ci.job("quick", {"quire/push"}, function(rt) rt.sh("true") end)
"#,
    );
    let started = std::time::Instant::now();
    let run = ws.run_events(&["--timeout", "0.5s"]);
    run.assert_code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let lines = run.event_lines();
    for job in ["slow", "bounded"] {
        assert!(
            lines.contains(&format!(r#"{{"type":"sh_finished","job_id":"{job}","exit_code":124}}"#)),
            "{lines:#?}"
        );
        assert!(lines.contains(&format!(
            r#"{{"type":"job_finished","job_id":"{job}","outcome":"failed"}}"#
        )));
    }
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"quick","outcome":"complete"}"#.to_string()));
    assert!(
        run.stderr
            .contains("command `sleep 30` timed out after 0.3s (exit code 124)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("command `sleep 30` timed out after 0.5s (exit code 124)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_timeout_too_long_for_the_clock_is_no_timeout_and_overrides_the_flag() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :long [:quire/push]
  (fn [runtime]
    (runtime.sh "true" {:timeout 1e300})
    (runtime.sh "true" {:timeout 1e19})
    (runtime.sh "true" {:timeout 9223372036854775807})
    ;; Outlives --timeout: math.huge lifts it for this one command.
    (runtime.sh "sleep 0.5" {:timeout math.huge})))
"#,
    );
    let run = ws.run_events(&["--timeout", "0.2s"]);
    run.assert_code(0);
    let finished = r#"{"type":"sh_finished","job_id":"long","exit_code":0}"#;
    assert_eq!(
        run.event_lines().iter().filter(|line| *line == finished).count(),
        4,
        "{:#?}",
        run.event_lines()
    );
    // The flag alike, where a number of seconds past the clock's reach panicked.
    for huge in ["1e19", "1e300", "inf"] {
        ws.run_events(&["--timeout", huge]).assert_code(0);
    }
}

#[test]
fn a_timeout_that_is_not_a_positive_number_fails_the_job_naming_it() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :nan [:quire/push] (fn [runtime] (runtime.sh "true" {:timeout (/ 0 0)})))
(ci.job :minus-inf [:quire/push] (fn [runtime] (runtime.sh "true" {:timeout (- math.huge)})))
(ci.job :negative [:quire/push] (fn [runtime] (runtime.sh "true" {:timeout -1e300})))
(ci.job :zero [:quire/push] (fn [runtime] (runtime.sh "true" {:timeout 0})))
(ci.job :text [:quire/push] (fn [runtime] (runtime.sh "true" {:timeout "10"})))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    for (line, job, got) in [
        (2, "nan", "nan"),
        (3, "minus-inf", "-inf"),
        (4, "negative", "-1e300"),
        (5, "zero", "0"),
        (6, "text", "string"),
    ] {
        run.assert_stderr_lines(&[&format!(
            "{job}: .quire/ci.fnl:{line}: runtime.sh: :timeout must be a positive number of seconds, got {got}"
        )]);
    }
    assert_eq!(
        run.event_lines().last().unwrap(),
        r#"{"type":"run_finished","outcome":"failed"}"#
    );
}

#[test]
fn env_names_that_cannot_name_a_variable_fail_the_job_before_the_command() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :equals [:quire/push] (fn [runtime] (runtime.sh "true" {:env {"A=B" "x"}})))
(ci.job :empty [:quire/push] (fn [runtime] (runtime.sh "true" {:env {"" "x"}})))
(ci.job :number [:quire/push] (fn [runtime] (runtime.sh "true" {:env {1 "x"}})))
(ci.job :sequence [:quire/push] (fn [runtime] (runtime.sh "true" {:env ["A=x"]})))
(ci.job :boolean [:quire/push] (fn [runtime] (runtime.sh "true" {:env {true "x"}})))
(ci.job :nul-name [:quire/push] (fn [runtime] (runtime.sh "true" {:env {"A\0B" "x"}})))
(ci.job :nul-value [:quire/push] (fn [runtime] (runtime.sh "true" {:env {:A "x\0y"}})))
(ci.job :not-a-table [:quire/push] (fn [runtime] (runtime.sh "true" {:env "A=x"})))
(ci.job :fine [:quire/push]
  (fn [runtime]
    (runtime.sh "echo \"$A $B $C $D\"" {:env {:A "x=y" :B 1 :C true :D 1.5}})))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let strings = r#"(:env maps names to values, as in {:NAME "value"})"#;
    run.assert_stderr_lines(&[
        "equals: .quire/ci.fnl:2: runtime.sh: :env name 'A=B' contains '=', which cannot be in a variable's name",
        "empty: .quire/ci.fnl:3: runtime.sh: :env has an empty name",
        &format!("number: .quire/ci.fnl:4: runtime.sh: :env names must be strings, got the number 1 {strings}"),
        &format!("sequence: .quire/ci.fnl:5: runtime.sh: :env names must be strings, got the number 1 {strings}"),
        &format!("boolean: .quire/ci.fnl:6: runtime.sh: :env names must be strings, got boolean {strings}"),
        r"nul-name: .quire/ci.fnl:7: runtime.sh: :env name 'A\0B' contains a NUL byte, which cannot be in a variable's name",
        "nul-value: .quire/ci.fnl:8: runtime.sh: :env A contains a NUL byte, which cannot be in a variable's value",
        r#"not-a-table: .quire/ci.fnl:9: runtime.sh: :env must be a table of variables, as in {:NAME "value"}, got string"#,
    ]);
    // None of them ran a command; the one that is fine did.
    let lines = run.event_lines();
    let commands: Vec<&String> = lines.iter().filter(|l| l.contains(r#""type":"sh_started""#)).collect();
    assert_eq!(
        commands,
        [r#"{"type":"sh_started","job_id":"fine","cmd":"echo \"$A $B $C $D\""}"#]
    );
    assert_eq!(cri_lines(&ws.log("fine", 1)), ["stdout F x=y 1 true 1.5"]);
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = common::isolated_git(&mut std::process::Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const PUSH_PIPELINE: &str = r#"
local ci = require("quire.ci")
ci.job("show", {"quire/push"}, function(rt)
  local p = rt.jobs("quire/push")
  for _, key in ipairs({"sha", "ref", "branch", "tag", "commit-message", "pushed-at", "git-dir"}) do
    rt.sh({"echo", key .. "=" .. tostring(p[key])})
  end
end)
"#;

fn push_fields(ws: &Workspace) -> Vec<String> {
    (1..=7)
        .map(|n| cri_lines(&ws.log("show", n)).join("|").replacen("stdout F ", "", 1))
        .collect()
}

#[test]
fn quire_push_is_read_from_the_workspace_repository() {
    let ws = Workspace::lua(PUSH_PIPELINE);
    let dir = ws.path();
    git(dir, &["init", "-q", "-b", "trunk"]);
    git(
        dir,
        &["-c", "user.name=T", "-c", "user.email=t@example.com", "add", "-A"],
    );
    git(
        dir,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "add the pipeline",
        ],
    );
    let sha = git(dir, &["rev-parse", "HEAD"]);
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert_eq!(
        run.event_lines()[0],
        format!(r#"{{"type":"run_started","sha":"{sha}","ref":"refs/heads/trunk","jobs":["show"]}}"#)
    );
    let fields = push_fields(&ws);
    assert_eq!(fields[0], format!("sha={sha}"));
    assert_eq!(fields[1], "ref=refs/heads/trunk");
    assert_eq!(fields[2], "branch=trunk");
    assert_eq!(fields[3], "tag=nil");
    assert_eq!(fields[4], "commit-message=add the pipeline");
    assert!(fields[5].starts_with("pushed-at=20"), "{}", fields[5]);
    assert!(
        fields[6].starts_with("git-dir=/") && fields[6].ends_with(".git"),
        "{}",
        fields[6]
    );

    // Flags override what the repository says.
    let run = ws.run_events(&["--sha", &"b".repeat(40), "--ref", "refs/tags/v1.0"]);
    run.assert_code(0);
    let fields = push_fields(&ws);
    assert_eq!(fields[0], format!("sha={}", "b".repeat(40)));
    assert_eq!(fields[1], "ref=refs/tags/v1.0");
    assert_eq!(fields[2], "branch=nil");
    assert_eq!(fields[3], "tag=v1.0");
}

#[test]
fn outside_a_repository_the_push_is_forty_zeros_and_head() {
    let ws = Workspace::lua(PUSH_PIPELINE);
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert_eq!(
        run.event_lines()[0],
        format!(
            r#"{{"type":"run_started","sha":"{}","ref":"HEAD","jobs":["show"]}}"#,
            "0".repeat(40)
        )
    );
    assert_eq!(
        push_fields(&ws)[..3],
        [
            format!("sha={}", "0".repeat(40)),
            "ref=HEAD".into(),
            "branch=nil".into()
        ]
    );
}

#[test]
fn an_events_file_on_a_full_disk_stops_the_run_with_exit_3() {
    let ws = Workspace::lua(TWO_JOBS);
    let run = ws.run(&["run", "--events", "/dev/full", "-j", "1"]);
    run.assert_code(3);
    // The run stopped before its first job; its end says failed, and why, once.
    assert_eq!(
        mask_durations(&run.stderr),
        "\
run 000000000000 HEAD: 2 jobs
build | not run: the run stopped first
test  | not run: blocked by build
quire::record

  × cannot write the run record: No space left on device (os error 28)

job    outcome    duration
build  not run    (run stopped)
test   not run    (blocked by build)

run failed in <t>: 2 not run
"
    );
}

#[test]
fn a_reader_that_goes_away_is_a_record_failure_not_a_crash() {
    let ws = Workspace::lua(TWO_JOBS);
    let mut cmd = ws.command(&["run", "--events", "stdout"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("\n  × cannot write the run record: Broken pipe (os error 32)\n"),
        "{stderr}"
    );
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(summary.starts_with("run failed in "), "{stderr}");
}

/// `quire-ci -w <ws> ARGS...` with its stdout closed (`>&-`), which
/// std::process::Command cannot do itself.
fn run_with_stdout_closed(ws: &Workspace, args: &str) -> common::Run {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(r#"exec "$0" -w "$1" {args} >&-"#))
        .arg(env!("CARGO_BIN_EXE_quire-ci"))
        .arg(ws.path())
        .current_dir(ws.path())
        .stdin(std::process::Stdio::null())
        .env("NO_COLOR", "1");
    common::as_tests_expect(&mut cmd);
    common::Run::from(cmd.output().unwrap())
}

#[test]
fn events_to_a_stdout_closed_at_start_are_a_setup_error_and_nothing_runs() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("a", {"quire/push"}, function(rt) rt.sh("touch ran") end)
"#,
    );
    let run = run_with_stdout_closed(&ws, "run -q --events stdout");
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        "\
quire::events

  × cannot write the events to stdout: it is closed
  help: run quire-ci with its stdout open (on a file or a pipe), or give --events a file path

"
    );
    assert!(!ws.path().join("ran").exists());

    // With no events for stdout, its being closed does not matter.
    run_with_stdout_closed(&ws, "run -q").assert_code(0);
    assert!(ws.path().join("ran").exists());
}

#[test]
fn without_out_dir_logs_go_to_a_temporary_directory_removed_at_exit() {
    let ws = Workspace::lua(TWO_JOBS);
    let tmp = tempfile::tempdir().unwrap();
    let run = common::Run::from(ws.command(&["run"]).env("TMPDIR", tmp.path()).output().unwrap());
    run.assert_code(1);
    // The output was shown on stderr instead...
    assert!(run.stderr.contains("build | compiling"), "{}", run.stderr);
    // ...and nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn relative_paths_in_flags_are_relative_to_the_current_directory_not_the_workspace() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("a", {"quire/push"}, function(rt) rt.sh({"echo", rt.secret("S")}) end)
"#,
    );
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("secret.txt"), "from-the-cwd\n").unwrap();
    let mut cmd = common::quire_ci();
    cmd.arg("-w").arg(ws.path()).current_dir(cwd.path());
    cmd.args([
        "run",
        "--events",
        "run.jsonl",
        "--out-dir",
        "logs",
        "--secret",
        "S=file:secret.txt",
    ]);
    let run = common::Run::from(cmd.output().unwrap());
    run.assert_code(0);
    assert!(cwd.path().join("run.jsonl").is_file());
    let log = std::fs::read_to_string(cwd.path().join("logs/jobs/a/sh-1.log")).unwrap();
    assert_eq!(cri_lines(&log), vec!["stdout F ***"]);
    assert!(!ws.path().join("run.jsonl").exists() && !ws.path().join("logs").exists());
}

#[test]
fn a_repository_git_refuses_is_read_as_outside_one_with_a_warning() {
    let ws = Workspace::lua(TWO_JOBS);
    let git = |args: &[&str]| {
        let status = common::isolated_git(&mut std::process::Command::new("git"))
            .args(args)
            .current_dir(ws.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    // Owned by another user, git refuses it ("dubious ownership"); only root may chown.
    if std::os::unix::fs::chown(ws.path(), Some(12345), None).is_err() {
        eprintln!("skipped: changing a directory's owner needs root");
        return;
    }
    let run = Run::from(
        common::quire_ci()
            .arg("-w")
            .arg(ws.path())
            .args(["run", "-q", "--events", "stdout"])
            // No safe.directory from the machine's own git configuration.
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap(),
    );
    run.assert_code(1); // TWO_JOBS's test job fails
    assert!(
        run.stderr.starts_with(
            "warning: git refused the workspace's repository, so quire/push is read as outside one (sha forty zeros, ref HEAD):\n  fatal: detected dubious ownership in repository at "
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.events()[0]["sha"], "0".repeat(40));
}

#[test]
fn a_job_changing_an_output_it_read_changes_it_for_no_other_job() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :make [:quire/push] (fn [] {:nested {:n 1} :list [1 2]}))
(ci.job :spoil [:make]
  (fn [runtime]
    (let [out (runtime.jobs :make)]
      (set out.nested.n 999)
      (table.insert out.list 3)
      (tset (runtime.jobs :quire/push) :sha "spoiled"))
    {}))
(ci.job :read [:spoil]
  (fn [runtime]
    (let [out (runtime.jobs :make)]
      (print out.nested.n (length out.list) (. (runtime.jobs :quire/push) :sha)))
    {}))
"#,
    );
    let run = ws.run(&["run", "-j", "1"]);
    run.assert_code(0);
    run.assert_stderr_lines(&["read  | 1\t2\t0000000000000000000000000000000000000000"]);
}

#[test]
fn a_line_that_redraws_itself_shows_as_its_last_drawing_and_is_logged_whole() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :fetch [:quire/push]
  (fn [rt] (rt.sh "printf 'fetching 10%%\\rfetching 100%%\\nwindows line\\r\\n'")))
"#,
    );
    let run = ws.run(&["run", "--out-dir", "out"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("fetch | fetching 100%\nfetch | windows line\nfetch | complete"),
        "{:?}",
        run.stderr
    );
    assert!(!run.stderr.contains('\r'), "{:?}", run.stderr);
    // The reporter shows the line as a terminal would; the log has every byte.
    let log = ws.read("out/jobs/fetch/sh-1.log");
    let texts: Vec<&str> = log
        .split('\n')
        .filter_map(|line| line.split_once(" F "))
        .map(|(_, text)| text)
        .collect();
    assert_eq!(texts, ["fetching 10%\rfetching 100%", "windows line\r"]);
}
