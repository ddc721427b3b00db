//! The sandbox end to end: what pipeline code cannot reach, and the limits
//! that stop runaway code (design §4 "The sandbox", issue 5).

mod common;

use std::time::{Duration, Instant};

use common::{Workspace, cri_lines};

/// Far more than any of these runs needs; a run past it hung.
const HANG: Duration = Duration::from_secs(120);

fn job_finished(job: &str, outcome: &str) -> String {
    format!(r#"{{"type":"job_finished","job_id":"{job}","outcome":"{outcome}"}}"#)
}

// ---------------------------------------------------------------- limits

#[test]
fn an_endless_loop_at_top_level_fails_the_load_naming_the_limit_the_flag_and_the_line() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(var x 0)\n(while true (set x (+ x 1)))\n");
    let started = Instant::now();
    let run = ws.run_events_within(HANG, &["--lua-instruction-limit", "1M"]);
    run.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    let events = run.events();
    assert_eq!(events.len(), 1, "only run_finished: {}", run.stdout);
    assert_eq!(events[0]["type"], "run_finished");
    assert_eq!(events[0]["outcome"], "failed");
    let error = events[0]["error"].as_str().unwrap();
    for part in [
        ".quire/ci.fnl:3:",
        "the pipeline's top-level code ran more than 1000000 Lua instructions",
        "--lua-instruction-limit",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error}");
    }
    // The diagnostic labels the looping form.
    assert!(error.contains("3 │ (while true (set x (+ x 1)))"), "{error}");
}

#[test]
fn validate_applies_the_instruction_limit_too() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(while true nil)\n");
    let run = ws.run_within(HANG, &["validate", "--lua-instruction-limit", "100k"]);
    run.assert_code(1);
    // miette wraps the message at the terminal's width: check its words.
    for part in [
        ".quire/ci.fnl:2:",
        "top-level code ran more than 100000",
        "--lua-instruction-limit",
    ] {
        assert!(run.stderr.contains(part), "{part:?} missing from {}", run.stderr);
    }
}

#[test]
fn an_endless_loop_in_a_run_fn_fails_that_job_only_even_under_pcall() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :spin [:quire/push]
  (fn [rt]
    (while true
      (pcall (fn [] (while true nil))))))
(ci.job :wrapped [:quire/push]
  (fn [rt]
    ((coroutine.wrap (fn [] (while true (xpcall (fn [] (while true nil)) (fn [] (while true nil)))))))))
(ci.job :fine [:quire/push] (fn [rt] (rt.sh "echo fine")))
(ci.job :after [:spin] (fn [rt] (rt.sh "echo never")))
"#,
    );
    let run = ws.run_events_within(HANG, &["--lua-instruction-limit", "2M", "-j", "2"]);
    run.assert_code(1);
    let lines = run.event_lines();
    assert!(lines.contains(&job_finished("spin", "failed")), "{lines:#?}");
    assert!(lines.contains(&job_finished("wrapped", "failed")), "{lines:#?}");
    assert!(lines.contains(&job_finished("fine", "complete")), "{lines:#?}");
    assert!(lines.contains(&r#"{"type":"job_skipped","job_id":"after","blocked_by":"spin"}"#.to_string()));
    assert_eq!(lines.last().unwrap(), r#"{"type":"run_finished","outcome":"failed"}"#);
    for (job, line) in [("spin", 5), ("wrapped", 8)] {
        let want = format!(
            ".quire/ci.fnl:{line}: job '{job}' ran more than 2000000 Lua instructions, the limit (raise it with --lua-instruction-limit)"
        );
        assert!(run.stderr.contains(&want), "{want:?} missing from\n{}", run.stderr);
    }
}

#[test]
fn time_spent_waiting_on_commands_costs_no_instructions_and_each_job_has_its_own_budget() {
    // 100k instructions at most, per job: each job below runs about 60k
    // instructions of its own and waits on commands for a while.
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
local function work() local x = 0 for i = 1, 10000 do x = x + i end return x end
for _, id in ipairs({"a", "b", "c"}) do
  ci.job(id, {"quire/push"}, function(rt)
    work(); work()
    rt.sh("sleep 0.3")
    work(); work()
    rt.sh("sleep 0.3")
    work()
    return {}
  end)
end
"#,
    );
    let run = ws.run_events_within(HANG, &["--lua-instruction-limit", "100k", "-j", "3"]);
    run.assert_code(0);
    let lines = run.event_lines();
    for job in ["a", "b", "c"] {
        assert!(lines.contains(&job_finished(job, "complete")), "{lines:#?}");
    }
}

#[test]
fn a_huge_allocation_is_refused_by_the_memory_limit_and_other_jobs_go_on() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :huge [:quire/push]
  (fn [rt]
    (local s (string.rep "x" (^ 2 30))) s))
(ci.job :grow [:quire/push]
  (fn [rt]
    (local t [])
    (while true (table.insert t (string.rep "y" 1000)))))
(ci.job :too-large [:quire/push] (fn [rt] (local s (string.rep "x" (^ 2 31))) s))
(ci.job :after [:huge :grow] (fn [rt] (rt.sh "echo never")))
(ci.job :fine [:quire/push] (fn [rt] (rt.sh "echo fine")))
(ci.job :huge-last [:quire/push]
  (fn [rt]
    (string.rep "x" (^ 2 30))))
"#,
    );
    let run = ws.run_events_within(HANG, &["--lua-memory-limit", "64MiB"]);
    run.assert_code(1);
    let lines = run.event_lines();
    for job in ["huge", "grow", "too-large", "huge-last"] {
        assert!(lines.contains(&job_finished(job, "failed")), "{lines:#?}");
    }
    // Memory a failed job held is given back: a later job still runs.
    assert!(lines.contains(&job_finished("fine", "complete")), "{lines:#?}");
    // A call in tail position (huge-last) leaves no frame of the run-fn: its
    // line is read from the run-fn's bytecode.
    for (line, job) in [(4, "huge"), (8, "grow"), (14, "huge-last")] {
        let want = format!(
            "{job}: .quire/ci.fnl:{line}: pipeline code ran out of memory: the Lua VM may use at most 64 MiB (raise it with --lua-memory-limit)"
        );
        assert!(run.stderr.contains(&want), "{want:?} missing from\n{}", run.stderr);
    }
    // Lua's own cap on string.rep comes first for 2^31 bytes, at its line.
    assert!(
        run.stderr.contains(".quire/ci.fnl:9: resulting string too large"),
        "{}",
        run.stderr
    );
}

#[test]
fn out_of_memory_at_top_level_fails_the_load_with_the_line() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n\n(local big (string.rep \"x\" (* 100 1024 1024)))\n");
    let run = ws.run_events(&[]);
    run.assert_code(0);
    let run = ws.run_events(&["--lua-memory-limit", "16M"]);
    run.assert_code(1);
    let events = run.events();
    assert_eq!(events.len(), 1);
    let error = events[0]["error"].as_str().unwrap();
    assert!(
        error.contains(".quire/ci.fnl:3: pipeline code ran out of memory: the Lua VM may use at most 16 MiB"),
        "{error}"
    );
}

#[test]
fn library_loops_in_c_are_charged_or_cut_short() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
-- Each of these would loop in C for hours on a single instruction.
ci.job("move", {"quire/push"}, function() table.move({}, 1, 1 << 50, 2) end)
ci.job("insert", {"quire/push"}, function()
  table.insert(setmetatable({}, {__len = function() return 1 << 60 end}), 1, "x")
end)
ci.job("remove", {"quire/push"}, function()
  table.remove(setmetatable({}, {__len = function() return 1 << 60 end}), 1)
end)
ci.job("collect", {"quire/push"}, function()
  local keep = {}
  for i = 1, 1000 do keep[i] = {} end
  while true do collectgarbage() end
end)
-- Repeating nothing is nothing, at once.
ci.job("rep", {"quire/push"}, function()
  assert(string.rep("", math.maxinteger) == "")
  assert(("ab"):rep(3, "-") == "ab-ab-ab")
  local t = {1, 2, 3}
  table.insert(t, 2, 9)
  table.insert(t, 4)
  assert(table.concat(t, ",") == "1,9,2,3,4")
  assert(table.remove(t, 1) == 1 and table.remove(t) == 4 and table.concat(t, ",") == "9,2,3")
  assert(table.concat(table.move({1, 2, 3}, 1, 3, 2), ",") == "1,1,2,3")
  return {}
end)
"#,
    );
    let started = Instant::now();
    let run = ws.run_events_within(HANG, &["--lua-instruction-limit", "1M"]);
    run.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    let lines = run.event_lines();
    for job in ["move", "insert", "remove", "collect"] {
        assert!(lines.contains(&job_finished(job, "failed")), "{job}: {lines:#?}");
        assert!(
            run.stderr
                .contains(&format!("job '{job}' ran more than 1000000 Lua instructions")),
            "{}",
            run.stderr
        );
    }
    assert!(lines.contains(&job_finished("rep", "complete")), "{}", run.stderr);
}

#[test]
fn the_fennel_command_is_bounded_too() {
    let ws = Workspace::empty();
    ws.write("spin.fnl", "(print :start)\n(while true nil)\n");
    let run = ws.run_within(HANG, &["fennel", "spin.fnl", "--lua-instruction-limit", "1M"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "start\n");
    assert!(
        run.stderr
            .contains("spin.fnl:2: the script ran more than 1000000 Lua instructions"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_limit_values_are_usage_errors() {
    let ws = Workspace::lua("local ci = require('quire.ci')\n");
    for (flag, value, why) in [
        ("--lua-memory-limit", "12", "at least 1MiB"),
        ("--lua-memory-limit", "lots", "invalid size"),
        ("--lua-instruction-limit", "0", "invalid count"),
        ("--lua-instruction-limit", "1e9", "invalid count"),
    ] {
        let run = ws.run(&["run", flag, value]);
        run.assert_code(2);
        assert!(run.stderr.contains(why), "{flag} {value}: {}", run.stderr);
    }
}

// ---------------------------------------------------------------- escapes

/// Each probe must fail (pcall false) with a message containing the expected text.
const LUA_ESCAPES: &str = r#"
local failures = {}
local function refused(name, expected, f, ...)
  local ok, err = pcall(f, ...)
  if ok then
    failures[#failures + 1] = name .. ": was allowed"
  elseif not tostring(err):find(expected, 1, true) then
    failures[#failures + 1] = name .. ": unexpected error: " .. tostring(err)
  end
end
refused("io", "global 'io'", function() return io.open("/etc/passwd") end)
refused("os.execute", "field 'execute'", function() return os.execute("touch escaped") end)
refused("os.remove", "field 'remove'", function() return os.remove(".quire/ci.lua") end)
refused("os.getenv", "field 'getenv'", function() return os.getenv("HOME") end)
refused("os.exit", "field 'exit'", function() return os.exit(0) end)
refused("debug", "global 'debug'", function() return debug.getregistry() end)
refused("package.loadlib", "global 'package'", function() return package.loadlib("libc.so.6", "system") end)
refused("dofile", "global 'dofile'", function() return dofile("/etc/passwd") end)
refused("loadfile", "global 'loadfile'", function() return loadfile("/etc/passwd") end)
refused("string.dump", "field 'dump'", function() return string.dump(print) end)
refused("binary chunk", "attempt to load a binary chunk", function()
  return assert(load("\27Lua\84\0\25\147\13\10\26\10\4\8\8", "x", "b"))
end)
refused("require ../x", "module names are dot-separated words", require, "../x")
refused("require /etc/passwd", "module names are dot-separated words", require, "/etc/passwd")
refused("require a..b", "module names are dot-separated words", require, "lib..secret")
refused("require symlink", "leads outside the workspace", require, "outside")
for _, opt in ipairs({"stop", "restart", "incremental", "generational", "setpause", "setstepmul"}) do
  refused("collectgarbage " .. opt, "option '" .. opt .. "' is not allowed", collectgarbage, opt)
end
refused("setmetatable on a string", "table expected, got string", setmetatable, "", {})
refused("string metatable", "attempt to index a boolean value", function()
  return getmetatable("").__index
end)
refused("rawget on the string metatable", "table expected, got boolean", function()
  return rawget(getmetatable(""), "__index")
end)
refused("__gc", "__gc metamethods are not allowed", setmetatable, {}, {__gc = function() while true do end end})
refused("__gc placeholder", "__gc metamethods are not allowed", setmetatable, {}, {__gc = true})
refused("runtime at top level", "runtime is only available while a job runs", function() return runtime.sh end)
refused("assign into runtime", "runtime is read-only", function() runtime.sh = print end)
refused("rawset into runtime", "read-only", rawset, runtime, "sh", print)
refused("setmetatable on runtime", "cannot change a protected metatable", setmetatable, runtime, {})
-- What there is to reach is the sandbox itself.
assert(getmetatable("") == false)
assert(_G.io == nil and _G.debug == nil and _G.package == nil and _G.os.execute == nil)
assert(load("return 1 + 1")() == 2, "text chunks load")
assert(collectgarbage("count") > 0)
if #failures > 0 then error(table.concat(failures, "\n")) end

local ci = require("quire.ci")
ci.job("probe", {"quire/push"}, function(rt)
  -- The global runtime is the job's, in coroutines too.
  assert(coroutine.wrap(function() return runtime.env("PATH") end)() ~= nil)
  assert(select(2, coroutine.resume(coroutine.create(function() return runtime.jobs("quire/push").ref end))) == "HEAD")
  refused("runtime.sh from a coroutine", "runs commands from its run-fn only", coroutine.wrap(function()
    return rt.sh("touch escaped")
  end))
  -- The run-fn's own table is as locked as the global view of it.
  refused("assign into the run-fn's runtime", "runtime is read-only", function() rt.sh = print end)
  refused("rawset into the run-fn's runtime", "read-only", rawset, rt, "sh", print)
  refused("setmetatable on the run-fn's runtime", "cannot change a protected metatable", setmetatable, rt, {})
  stashed = rt
  if #failures > 0 then error(table.concat(failures, "\n")) end
  rt.sh("true")
  return {}
end)
ci.job("thief", {"probe"}, function(rt)
  refused("another job's runtime.sh", "job 'probe' runs commands from its run-fn only", stashed.sh, "touch escaped")
  if #failures > 0 then error(table.concat(failures, "\n")) end
  return {}
end)
"#;

#[test]
fn lua_pipelines_cannot_reach_the_host_but_through_runtime_sh() {
    let ws = Workspace::lua(LUA_ESCAPES);
    std::os::unix::fs::symlink("/etc/passwd", ws.path().join(".quire/outside.lua")).unwrap();
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert!(!ws.path().join("escaped").exists());
    let lines = run.event_lines();
    assert!(lines.contains(&job_finished("thief", "complete")), "{}", run.stderr);
    // No command but the probe's own `true` ran.
    let commands: Vec<&String> = lines.iter().filter(|l| l.contains("sh_started")).collect();
    assert_eq!(commands, [r#"{"type":"sh_started","job_id":"probe","cmd":"true"}"#]);
}

/// `runtime.sh` waits for its command by suspending the job's coroutine.
/// Other code resuming that coroutine meanwhile (it can hold it, from
/// `coroutine.running()`) gets nothing and changes nothing: the command's
/// own result comes back, once. Where the job cannot be suspended (a sort's
/// comparator, called from C), no command starts. And the run-fn's own
/// `coroutine.yield` comes back with nothing.
#[test]
fn only_the_job_resumes_a_command_s_wait_and_only_where_it_can_wait() {
    let ws = Workspace::lua(
        r##"local ci = require("quire.ci")
local shared = {}
ci.job("waits", {"quire/push"}, function(rt)
  shared.waiting = coroutine.running()
  local r = rt.sh("sleep 1; echo real")
  assert(r.stdout == "real\n" and r.exit == 0, r.stdout)
  assert(select("#", coroutine.yield("x", 1)) == 0)
  return {}
end)
ci.job("meddles", {"quire/push"}, function(rt)
  rt.sh("sleep 0.2")
  local answers = table.pack(coroutine.resume(shared.waiting, {stdout = "forged"}))
  assert(answers.n == 1 and answers[1] == true, tostring(answers[2]))
  answers = table.pack(coroutine.resume(shared.waiting))
  assert(answers.n == 1 and answers[1] == true, tostring(answers[2]))
  return {}
end)
ci.job("sorts", {"quire/push"}, function(rt)
  table.sort({3, 1, 2}, function(a, b) rt.sh("touch sorted") return a < b end)
end)
"##,
    );
    let run = ws.run_events_within(HANG, &["-j", "3"]);
    run.assert_code(1);
    let lines = run.event_lines();
    assert!(lines.contains(&job_finished("waits", "complete")), "{}", run.stderr);
    assert!(lines.contains(&job_finished("meddles", "complete")), "{}", run.stderr);
    assert!(lines.contains(&job_finished("sorts", "failed")), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("sorts: .quire/ci.lua:19: attempt to yield across a C-call boundary"),
        "{}",
        run.stderr
    );
    assert!(!lines.iter().any(|l| l.contains("sh_started") && l.contains("sorts")));
    assert!(!ws.path().join("sorted").exists());
}

#[test]
fn fennel_pipelines_naming_a_host_library_do_not_compile() {
    for (form, name) in [
        ("(io.open \"/etc/passwd\")", "io"),
        ("(debug.getinfo 1)", "debug"),
        ("(package.loadlib \"libc.so.6\" \"system\")", "package"),
        ("(dofile \"/etc/passwd\")", "dofile"),
        ("(loadfile \"/etc/passwd\")", "loadfile"),
        ("(load-string \"x\")", "load-string"),
    ] {
        let ws = Workspace::fennel(&format!("(local ci (require :quire.ci))\n{form}\n"));
        let run = ws.run_events(&[]);
        run.assert_code(1);
        let error = run.events()[0]["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(&format!(".quire/ci.fnl:2:2: compile error: unknown identifier: {name}")),
            "{form}: {error}"
        );
    }
    // Names that exist but are emptied are refused when called, on their line.
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(os.execute \"touch escaped\")\n");
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let error = run.events()[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains(".quire/ci.fnl:2: attempt to call a nil value (field 'execute')"),
        "{error}"
    );
    assert!(!ws.path().join("escaped").exists());
}

#[test]
fn modules_resolve_inside_the_workspace_only() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(local shared (require :shared))\n(ci.job :x [:quire/push] (fn [rt] (rt.sh (.. \"echo \" shared.greeting))))\n",
    );
    // A link to another file of the workspace is fine.
    ws.write("ci/shared.fnl", "{:greeting \"hello\"}\n");
    std::os::unix::fs::symlink("../ci/shared.fnl", ws.path().join(".quire/shared.fnl")).unwrap();
    let run = ws.run_events(&[]);
    run.assert_code(0);
    assert_eq!(cri_lines(&ws.log("x", 1)), ["stdout F hello"]);
}

#[test]
fn code_lua_would_run_with_its_hooks_off_cannot_escape_the_limit() {
    // Lua runs a message handler from inside the hook that raised the error,
    // hooks off: once the budget is spent, the handler is bypassed.
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("handler", {"quire/push"}, function()
  xpcall(function() while true do end end, function() while true do end end)
end)
ci.job("handled", {"quire/push"}, function()
  local ok, why = xpcall(function() error("boom") end, function(e) return "handled: " .. e end)
  assert(not ok and why:find("handled: .*boom"), why)
  return {}
end)
"#,
    );
    let run = ws.run_events_within(HANG, &["--lua-instruction-limit", "1M"]);
    run.assert_code(1);
    let lines = run.event_lines();
    assert!(lines.contains(&job_finished("handler", "failed")), "{lines:#?}");
    assert!(lines.contains(&job_finished("handled", "complete")), "{}", run.stderr);

    // A finalizer, or a to-be-closed variable's __close, can run with hooks
    // off too: neither can be made.
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nlocal x <close> = setmetatable({}, {__close = function() while true do end end})\n",
    );
    let run = ws.run_events_within(HANG, &[]);
    run.assert_code(1);
    let error = run.events()[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains(".quire/ci.lua:2: to-be-closed variables (<close>) are not allowed in the sandbox"),
        "{error}"
    );
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(local (f why) (load "local x <close> = nil"))
(assert (= f nil) "a chunk with <close> loads")
(assert (why:find "to%-be%-closed variables") why)
(local (g why) (load (fn [] nil)))
(assert g why)
(local (ok why) (pcall setmetatable {} {:__gc (fn [] (while true nil))}))
(assert (and (not ok) (why:find "__gc metamethods are not allowed")) why)
"#,
    );
    ws.run_events_within(HANG, &[]).assert_code(0);
}
