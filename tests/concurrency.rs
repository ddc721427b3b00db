//! Concurrent execution end to end: parallel jobs, outputs across a diamond,
//! failure policy, and stopping on signals with nothing left behind.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Workspace;
use serde_json::Value;

fn events_of(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// (start, end) in ms of each `sh` of `job`, from the stream.
fn sh_interval(events: &[Value], job: &str) -> (u64, u64) {
    let at = |ty: &str| {
        events
            .iter()
            .find(|e| e["type"] == ty && e["job_id"] == job)
            .and_then(|e| e["at_ms"].as_u64())
            .unwrap_or_else(|| panic!("no {ty} for {job}"))
    };
    (at("sh_started"), at("sh_finished"))
}

#[test]
fn independent_jobs_run_at_once() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(each [_ name (ipairs [:a :b :c :d])]
  (ci.job name [:quire/push] (fn [runtime] (runtime.sh "sleep 1"))))
"#,
    );
    let run = ws.run_events(&["-j", "4"]);
    run.assert_code(0);
    let events = run.events();
    let intervals: Vec<(u64, u64)> = ["a", "b", "c", "d"].iter().map(|j| sh_interval(&events, j)).collect();
    // Every command started before any of them finished: all four overlapped.
    let last_start = intervals.iter().map(|i| i.0).max().unwrap();
    let first_end = intervals.iter().map(|i| i.1).min().unwrap();
    assert!(last_start < first_end, "{intervals:?}");
}

/// Exits come in as SIGCHLD, which names no child and coalesces: with eight
/// jobs ending commands close together, every command still sees its own
/// exit. (That one taken by another job's wait is not lost is pinned by a
/// unit test in quire-core's `exits`, where the order can be forced.)
#[test]
fn commands_of_parallel_jobs_all_see_their_exits() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :slow [:quire/push] (fn [runtime] (for [_ 1 5] (runtime.sh "sleep 0.2"))))
(each [_ name (ipairs [:a :b :c :d :e :f :g])]
  (ci.job name [:quire/push] (fn [runtime] (for [_ 1 60] (runtime.sh "true")))))
"#,
    );
    let run = ws.run_events_within(Duration::from_secs(60), &["-j", "8"]);
    run.assert_code(0);
    let events = run.events();
    let finished = |job: &str| {
        events
            .iter()
            .filter(|e| e["type"] == "sh_finished" && e["job_id"] == job && e["exit_code"] == 0)
            .count()
    };
    assert_eq!(finished("slow"), 5);
    for job in ["a", "b", "c", "d", "e", "f", "g"] {
        assert_eq!(finished(job), 60, "{job}");
    }
    // The slow job's commands overlapped the quick ones: their exits competed.
    let (slow_start, _) = sh_interval(&events, "slow");
    let (_, quick_end) = sh_interval(&events, "g");
    assert!(slow_start < quick_end, "{slow_start} {quick_end}");
}

#[test]
fn with_one_slot_ready_jobs_run_one_by_one_in_declaration_order() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
for _, name in ipairs({"c", "a", "b"}) do
  ci.job(name, {"quire/push"}, function(rt) rt.sh("true") end)
end
"#,
    );
    let run = ws.run_events(&["-j", "1"]);
    run.assert_code(0);
    let started: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["type"] == "job_started")
        .map(|e| e["job_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["c", "a", "b"]);
    let lines = run.event_lines();
    // Never two jobs open at once.
    let mut open = 0;
    for line in &lines {
        if line.contains("job_started") {
            open += 1;
        }
        if line.contains("job_finished") {
            open -= 1;
        }
        assert!(open <= 1, "{lines:#?}");
    }
}

#[test]
fn a_diamond_passes_both_parents_outputs_to_the_child() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :root [:quire/push] (fn [] {:n 1}))
(ci.job :left [:root] (fn [rt] {:n (+ 10 (. (rt.jobs :root) :n))}))
(ci.job :right [:root] (fn [rt] {:n (+ 20 (. (rt.jobs :root) :n))}))
(ci.job :join [:left :right]
  (fn [rt]
    (rt.sh ["echo" (tostring (+ (. (rt.jobs :left) :n) (. (rt.jobs :right) :n) (. (rt.jobs :root) :n)))])))
"#,
    );
    let run = ws.run_events(&["-j", "2"]);
    run.assert_code(0);
    assert_eq!(common::cri_lines(&ws.log("join", 1)), vec!["stdout F 33"]);
}

#[test]
fn fail_fast_cancels_a_running_sibling_and_skips_the_rest() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.job("slow", {"quire/push"}, function(rt) rt.sh("sleep 30") end)
ci.job("broken", {"quire/push"}, function(rt) rt.sh("sleep 0.2; exit 1") end)
ci.job("later", {"quire/push"}, function(rt) rt.sh("true") end)
"#,
    );
    let started = Instant::now();
    let run = ws.run_events(&["-j", "2", "--fail-fast"]);
    run.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(20), "the sleep was not stopped");
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"broken","outcome":"failed"}"#.to_string()));
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"slow","outcome":"cancelled"}"#.to_string()));
    assert!(
        lines.contains(&r#"{"type":"job_skipped","job_id":"later"}"#.to_string()),
        "{lines:#?}"
    );
    assert_eq!(lines.last().unwrap(), r#"{"type":"run_finished","outcome":"failed"}"#);
}

/// Start `quire-ci run` in the background with events to `<ws>/run.jsonl`.
fn spawn_run(ws: &Workspace) -> Child {
    spawn_run_with(ws, &[])
}

/// [`spawn_run`] with more arguments for `run`.
fn spawn_run_with(ws: &Workspace, extra: &[&str]) -> Child {
    let mut args = vec!["run", "--events", "run.jsonl"];
    args.extend_from_slice(extra);
    let mut cmd = ws.command(&args);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// The lines of `<ws>/run.jsonl` without `at_ms`, for exact comparison.
fn event_lines_of_file(ws: &Workspace) -> Vec<String> {
    common::Run {
        code: 0,
        stdout: ws.read("run.jsonl"),
        stderr: String::new(),
    }
    .event_lines()
}

/// `run_started` for `jobs`, run outside a git repository.
fn run_started(jobs: &[&str]) -> String {
    let jobs: Vec<String> = jobs.iter().map(|j| format!("{j:?}")).collect();
    format!(
        r#"{{"type":"run_started","sha":"{}","ref":"HEAD","jobs":[{}]}}"#,
        "0".repeat(40),
        jobs.join(",")
    )
}

/// Wait (polling the file, bounded) until the stream holds `count` lines containing `needle`.
fn wait_for_events(path: &Path, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {needle} in:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `sleep` duration that marks a test's processes in the process table:
/// `base`, the test's own, then this test process's id, so that no process
/// of another run of the suite carries it (another checkout's, run at the
/// same time, or a sleep left behind by an earlier run that failed).
fn unique_marker(base: &str) -> String {
    format!("{base}{:07}", std::process::id())
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let mut cmdline = Vec::new();
        if let Ok(mut f) = std::fs::File::open(entry.path().join("cmdline")) {
            let _ = f.read_to_end(&mut cmdline);
        }
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Wait (bounded) until no process carries `marker`.
fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes survived: {:?}",
            processes_with(marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_stops_the_run_with_a_complete_stream_and_no_survivors() {
    // A unique duration marks our sleeps in the process table; the second is a grandchild.
    let marker = &unique_marker("31.4159");
    let ws = Workspace::lua(&format!(
        r#"
local ci = require("quire.ci")
ci.job("long", {{"quire/push"}}, function(rt) rt.sh("sleep {marker} & sleep {marker}; wait") end)
ci.job("other", {{"quire/push"}}, function(rt) rt.sh("sleep {marker}") end)
ci.job("after", {{"long"}}, function(rt) rt.sh("true") end)
"#
    ));
    let mut child = spawn_run(&ws);
    let events = ws.path().join("run.jsonl");
    wait_for_events(&events, "\"sh_started\"", 2);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let events = events_of(&std::fs::read_to_string(&events).unwrap());
    let last = events.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["outcome"].as_str()),
        (Some("run_finished"), Some("cancelled"))
    );
    for job in ["long", "other"] {
        assert!(events.iter().any(|e| e["type"] == "sh_finished" && e["job_id"] == job));
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "job_finished" && e["job_id"] == job && e["outcome"] == "cancelled")
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "job_skipped" && e["job_id"] == "after" && e["blocked_by"] == "long")
    );
    assert_no_process_with(marker);
}

#[test]
fn a_job_stopped_by_a_signal_is_cancelled_even_if_its_code_does_not_raise() {
    // allow-failure: the stopped command does not raise, so the run-fn returns normally.
    // `quick` ended before the signal: it stays complete.
    let marker = &unique_marker("35.1357");
    let ws = Workspace::fennel(&format!(
        r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push] (fn [runtime] (runtime.sh "sleep {marker}" {{:allow-failure true}})))
(ci.job :quick [:quire/push] (fn [runtime] (runtime.sh "true")))
(ci.job :b [:a] (fn [runtime] (runtime.sh "true")))
"#
    ));
    let mut child = spawn_run_with(&ws, &["-j", "2"]);
    let events = ws.path().join("run.jsonl");
    wait_for_events(&events, "\"sh_started\"", 2);
    wait_for_events(&events, "\"job_finished\"", 1);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["a", "quick", "b"]),
            r#"{"type":"job_started","job_id":"a"}"#.to_string(),
            r#"{"type":"job_started","job_id":"quick"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"a","cmd":"sleep {marker}"}}"#),
            r#"{"type":"sh_started","job_id":"quick","cmd":"true"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"quick","exit_code":0}"#.to_string(),
            r#"{"type":"job_finished","job_id":"quick","outcome":"complete"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"a","exit_code":143}"#.to_string(),
            r#"{"type":"job_finished","job_id":"a","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"job_skipped","job_id":"b","blocked_by":"a"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

#[test]
fn a_job_stopped_by_fail_fast_is_cancelled_even_if_it_catches_the_error() {
    // `a` catches its stopped command's error with pcall and returns a table.
    // `broken` fails only once `a`'s command has started (a marker file).
    let marker = &unique_marker("36.2468");
    let ws = Workspace::fennel(&format!(
        r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push] (fn [runtime] (pcall runtime.sh "touch a-started; sleep {marker}") {{}}))
(ci.job :child [:a] (fn [runtime] (runtime.sh "true")))
(ci.job :broken [:quire/push]
  (fn [runtime] (runtime.sh "until [ -e a-started ]; do sleep 0.01; done; exit 1")))
"#
    ));
    let mut child = spawn_run_with(&ws, &["-j", "2", "--fail-fast"]);
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["a", "child", "broken"]),
            r#"{"type":"job_started","job_id":"a"}"#.to_string(),
            r#"{"type":"job_started","job_id":"broken"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"a","cmd":"touch a-started; sleep {marker}"}}"#),
            r#"{"type":"sh_started","job_id":"broken","cmd":"until [ -e a-started ]; do sleep 0.01; done; exit 1"}"#
                .to_string(),
            r#"{"type":"sh_finished","job_id":"broken","exit_code":1}"#.to_string(),
            r#"{"type":"job_finished","job_id":"broken","outcome":"failed"}"#.to_string(),
            r#"{"type":"sh_finished","job_id":"a","exit_code":143}"#.to_string(),
            r#"{"type":"job_finished","job_id":"a","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"job_skipped","job_id":"child","blocked_by":"a"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"failed"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

#[test]
fn a_signal_while_the_pipeline_loads_starts_no_job() {
    // The load's second print blocks on the full stderr pipe until the test
    // reads it, so a signal sent once the first line is read comes while the
    // pipeline loads.
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(print "loading")
(print (string.rep "x" (* 4 1024 1024)))
(each [_ name (ipairs [:a :b :c])]
  (ci.job name [:quire/push] (fn [runtime] (runtime.sh "touch started"))))
"#,
    );
    let mut child = spawn_run_with(&ws, &["-j", "2"]);
    let mut pipe = child.stderr.take().unwrap();
    let mut stderr = Vec::new();
    let mut buf = [0u8; 4096];
    while !stderr.starts_with(b"loading\n") {
        let n = pipe.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "quire-ci ended before loading: {}",
            String::from_utf8_lossy(&stderr)
        );
        stderr.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    pipe.read_to_end(&mut stderr).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["a", "b", "c"]),
            r#"{"type":"job_skipped","job_id":"a"}"#.to_string(),
            r#"{"type":"job_skipped","job_id":"b"}"#.to_string(),
            r#"{"type":"job_skipped","job_id":"c"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert!(!ws.path().join("started").exists(), "a command ran");
}

#[test]
fn sigterm_exits_143() {
    let marker = &unique_marker("32.7182");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh('sleep {marker}') end)\n"
    ));
    let mut child = spawn_run(&ws);
    wait_for_events(&ws.path().join("run.jsonl"), "\"sh_started\"", 1);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(
        ws.read("run.jsonl")
            .ends_with("\"type\":\"run_finished\",\"outcome\":\"cancelled\"}\n")
    );
    assert_no_process_with(marker);
}

#[test]
fn sighup_stops_the_run_like_sigterm_and_exits_129() {
    // The terminal closed, or `kill -HUP`: an ordinary end of a local run, so
    // the stream ends with `run_finished`, as for SIGINT and SIGTERM.
    let marker = &unique_marker("38.2718");
    let ws = Workspace::fennel(&format!(
        r#"(local ci (require :quire.ci))
(ci.job :x [:quire/push] (fn [runtime] (runtime.sh "sleep {marker}")))
(ci.job :after [:x] (fn [runtime] (runtime.sh "true")))
"#
    ));
    let mut child = spawn_run(&ws);
    wait_for_events(&ws.path().join("run.jsonl"), "\"sh_started\"", 1);
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    assert_eq!(child.wait().unwrap().code(), Some(129));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["x", "after"]),
            r#"{"type":"job_started","job_id":"x"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"x","cmd":"sleep {marker}"}}"#),
            r#"{"type":"sh_finished","job_id":"x","exit_code":143}"#.to_string(),
            r#"{"type":"job_finished","job_id":"x","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"job_skipped","job_id":"after","blocked_by":"x"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

#[test]
fn a_second_sighup_does_not_cut_the_stop_short() {
    // A closed terminal sends more than one: the shell passes its SIGHUP on
    // to its jobs, and the kernel sends another as the shell exits. The
    // command ignores SIGTERM, so the stop is still waiting out the grace
    // period when the second comes, and ends with SIGKILL. It says when it
    // ignores it: a signal sent at its start (sh_started) could come first.
    let marker = &unique_marker("39.1412");
    let script = format!("trap '' TERM; echo trapped; sleep {marker}");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh(\"{script}\") end)\n"
    ));
    let mut child = spawn_run(&ws);
    let mut pipe = child.stderr.take().unwrap();
    let mut stderr = String::new();
    let mut buf = [0u8; 4096];
    while !stderr.contains("x | trapped\n") {
        let n = pipe.read(&mut buf).unwrap();
        assert!(n > 0, "quire-ci ended before the command ran: {stderr}");
        stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    while !stderr.contains("stopping") {
        let n = pipe.read(&mut buf).unwrap();
        assert!(n > 0, "quire-ci ended before stopping: {stderr}");
        stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    pipe.read_to_string(&mut stderr).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(129), "{stderr}");
    assert!(!stderr.contains("second signal"), "{stderr}");
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["x"]),
            r#"{"type":"job_started","job_id":"x"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"x","cmd":"{script}"}}"#),
            r#"{"type":"sh_finished","job_id":"x","exit_code":137}"#.to_string(),
            r#"{"type":"job_finished","job_id":"x","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

/// A pseudo-terminal: (master, slave), both close-on-exec, so that no other
/// test's child holds the master open when this test closes it.
fn pseudo_terminal() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain calls on descriptors this function opens and owns.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()), 0);
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(slave >= 0, "open the slave: {}", std::io::Error::last_os_error());
        (master, OwnedFd::from_raw_fd(slave))
    }
}

/// `pid`'s session and controlling terminal (0: none), from /proc/`pid`/stat.
fn session_of(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[3].parse().unwrap(), fields[4].parse().unwrap())
}

#[test]
fn a_closed_terminal_stops_the_run_with_a_complete_stream() {
    // quire-ci leads a session whose terminal is a pseudo-terminal, with
    // stdin and stderr on it. Closing the master hangs the terminal up: the
    // kernel sends the session leader SIGHUP, and stderr writes fail (EIO)
    // from then on. The command has a session of its own, so the hang-up
    // reaches it only as the run's stop (SIGTERM, 143).
    let marker = &unique_marker("40.5772");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh('echo $$ > x.pid; exec sleep {marker}') end)\n"
    ));
    let (master, slave) = pseudo_terminal();
    let mut cmd = ws.command(&["run", "--events", "run.jsonl"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(slave);
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // its copies of the slave
    let sleep = wait_for_pid_file(&ws, "x.pid");
    let (runner_session, terminal) = session_of(child.id() as i32);
    assert_eq!(runner_session, child.id() as i32);
    assert_ne!(terminal, 0, "the pseudo-terminal is not quire-ci's");
    let (sleep_session, sleep_terminal) = session_of(sleep);
    assert_ne!(sleep_session, runner_session);
    assert_eq!(sleep_terminal, 0);
    drop(master);
    assert_eq!(child.wait().unwrap().code(), Some(129));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["x"]),
            r#"{"type":"job_started","job_id":"x"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"x","cmd":"echo $$ > x.pid; exec sleep {marker}"}}"#),
            r#"{"type":"sh_finished","job_id":"x","exit_code":143}"#.to_string(),
            r#"{"type":"job_finished","job_id":"x","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

#[test]
fn a_sighup_after_stderr_closed_still_ends_the_stream() {
    // Whoever read stderr went away first: every write to it fails (EPIPE),
    // the notice and the summary included, and the stop goes on regardless.
    let marker = &unique_marker("41.4142");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh('echo before; sleep {marker}') end)\n"
    ));
    let mut child = spawn_run(&ws);
    let mut pipe = child.stderr.take().unwrap();
    let mut stderr = String::new();
    let mut buf = [0u8; 4096];
    // Its output is shown once the command has started.
    while !stderr.contains("x | before\n") {
        let n = pipe.read(&mut buf).unwrap();
        assert!(n > 0, "quire-ci ended early: {stderr}");
        stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    drop(pipe);
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    assert_eq!(child.wait().unwrap().code(), Some(129));
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["x"]),
            r#"{"type":"job_started","job_id":"x"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"x","cmd":"echo before; sleep {marker}"}}"#),
            r#"{"type":"sh_finished","job_id":"x","exit_code":143}"#.to_string(),
            r#"{"type":"job_finished","job_id":"x","outcome":"cancelled"}"#.to_string(),
            r#"{"type":"run_finished","outcome":"cancelled"}"#.to_string(),
        ]
    );
    assert_no_process_with(marker);
}

/// The signal mask `field` (`SigIgn`, `SigCgt`) of /proc/`pid`/status.
fn signal_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn under_nohup_sighup_stays_ignored_by_the_run_and_its_commands() {
    // As `nohup` starts it: the run was meant to outlive its terminal.
    stays_ignored_when_ignored_at_start(libc::SIGHUP);
}

#[test]
fn in_the_background_of_a_script_sigint_stays_ignored_by_the_run_and_its_commands() {
    // As a non-interactive shell starts a job with `&`: Ctrl-C at the
    // terminal is not for it.
    stays_ignored_when_ignored_at_start(libc::SIGINT);
}

/// quire-ci started with `sig` ignored: it keeps it ignored, and so do its
/// commands; `sig` sent to it changes nothing. The command records its own
/// mask, then waits.
fn stays_ignored_when_ignored_at_start(sig: libc::c_int) {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job('x', {'quire/push'}, function(rt) rt.sh('grep SigIgn /proc/$$/status > ign; until [ -e go ]; do sleep 0.01; done') end)\n",
    );
    let mut cmd = ws.command(&["run", "--events", "run.jsonl"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(sig, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for_events(&ws.path().join("run.jsonl"), "\"sh_started\"", 1);
    let runner = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    // An ignored signal is dropped as it is sent.
    unsafe { libc::kill(child.id() as i32, sig) };
    // Before any assertion, so that a failing one leaves no run waiting.
    ws.write("go", "");
    let status = child.wait().unwrap();
    let bit = 1 << (sig - 1);
    assert_ne!(
        signal_mask(&runner, "SigIgn") & bit,
        0,
        "signal {sig} caught:\n{runner}"
    );
    assert_eq!(status.code(), Some(0));
    assert_ne!(
        signal_mask(&ws.read("ign"), "SigIgn") & bit,
        0,
        "the command has signal {sig} back"
    );
    assert!(
        ws.read("run.jsonl")
            .ends_with("\"type\":\"run_finished\",\"outcome\":\"complete\"}\n")
    );
}

#[test]
fn sigkill_of_quire_ci_leaves_no_command_behind() {
    let marker = &unique_marker("33.1415");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh({{'sleep', '{marker}'}}) end)\n"
    ));
    let mut child = spawn_run(&ws);
    wait_for_events(&ws.path().join("run.jsonl"), "\"sh_started\"", 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_process_with(marker);
}

#[test]
fn a_second_signal_exits_at_once_and_kills_the_commands() {
    // The command ignores SIGTERM, so the first signal's orderly stop would wait out the grace period.
    let marker = &unique_marker("34.5678");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh(\"trap '' TERM; sleep {marker} & sleep {marker}; wait\") end)\n"
    ));
    let mut child = spawn_run(&ws);
    wait_for_events(&ws.path().join("run.jsonl"), "\"sh_started\"", 1);
    // Both sleeps exist before we signal, so the test checks that they are killed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(marker).len() < 2 {
        assert!(Instant::now() < deadline, "commands did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut stderr = String::new();
    let pipe = child.stderr.as_mut().unwrap();
    // Wait until the first signal was taken before sending the second.
    let mut buf = [0u8; 4096];
    while !stderr.contains("stopping") {
        let n = pipe.read(&mut buf).unwrap();
        assert!(n > 0, "quire-ci ended before stopping: {stderr}");
        stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let sent = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "the second signal did not exit at once"
    );
    assert_no_process_with(marker);
}

#[test]
fn a_second_signal_removes_the_temporary_log_directory() {
    // Without --out-dir the logs go to $TMPDIR/quire-ci-*; the command
    // ignores SIGTERM (so the first signal's orderly stop is still waiting
    // when the second comes), then prints (so it has a log there, and the
    // test knows the SIGTERM will find it ignoring it).
    let marker = &unique_marker("37.1593");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh(\"trap '' TERM; echo hi; sleep {marker}\") end)\n"
    ));
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = ws.command(&["run", "--events", "run.jsonl"]);
    cmd.env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let mut stderr = String::new();
    let mut read_until = |needle: &str| {
        let mut buf = [0u8; 4096];
        while !stderr.contains(needle) {
            let n = pipe.read(&mut buf).unwrap();
            assert!(n > 0, "quire-ci ended before {needle:?}: {stderr}");
            stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    // Its output is shown once it is in the log.
    read_until("x | hi\n");
    let logs: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].path().join("jobs/x/sh-1.log").is_file());
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    read_until("stopping");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Killed outright: the stream has no finishing events.
    assert_eq!(
        event_lines_of_file(&ws),
        [
            run_started(&["x"]),
            r#"{"type":"job_started","job_id":"x"}"#.to_string(),
            format!(r#"{{"type":"sh_started","job_id":"x","cmd":"trap '' TERM; echo hi; sleep {marker}"}}"#),
        ]
    );
    assert_no_process_with(marker);
}

/// `pid`'s state letter and start time (clock ticks after boot) from
/// /proc/PID/stat, or None once it is gone.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the process that had start time `start` still runs as `pid`. A
/// zombie is dead: an orphan's zombie waits for an init that may be slow to
/// reap it, or, in a container, may never do so. Another process given the
/// same pid since has another start time.
fn still_running(pid: i32, start: u64) -> bool {
    proc_stat(pid).is_some_and(|(state, s)| s == start && state != 'Z' && state != 'X')
}

/// Wait (bounded) until `<ws>/<name>` holds a whole line with a pid; return it.
fn wait_for_pid_file(ws: &Workspace, name: &str) -> i32 {
    let path = ws.path().join(name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = text.strip_suffix('\n').and_then(|line| line.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {name}: {text:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait (bounded) until none of `processes` (pid, start time) runs.
fn assert_all_end(processes: &[(i32, u64)], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<i32> = processes
            .iter()
            .filter(|&&(pid, start)| still_running(pid, start))
            .map(|&(pid, _)| pid)
            .collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for &pid in &left {
                // Don't leave them to the next test run.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            panic!("{what}: {left:?} still running");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid of `runner`'s watchdog: its child named `quire-watchdog`.
fn watchdog_of(runner: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let Some((name, rest)) = stat.split_once(" (").and_then(|(_, s)| s.rsplit_once(')')) else {
                continue;
            };
            let ppid = rest.split_whitespace().nth(1);
            if name == "quire-watchdog" && ppid == Some(runner.to_string().as_str()) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "quire-ci {runner} has no watchdog");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn process_group_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn sigkill_of_quire_ci_kills_what_its_commands_started() {
    // The parent-death signal reaches each command's own process, not what it
    // started. Job a: a background sleep of sh's, and one whose parent (a
    // subshell) has already exited. Job b, an argv command: sh's background
    // sleep. Job a's short commands come and go while b's runs, so the
    // watchdog's list has had groups removed, not only added.
    let marker = &unique_marker("35.2718");
    let ws = Workspace::fennel(&format!(
        r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push]
  (fn [runtime]
    (runtime.sh "sleep 0.2")
    (runtime.sh "true")
    (runtime.sh "(sleep {marker} & echo $! > a1.pid); sleep {marker} & echo $! > a2.pid; wait")))
(ci.job :b [:quire/push]
  (fn [runtime] (runtime.sh ["sh" "-c" "sleep {marker} & echo $! > b.pid; wait"])))
"#
    ));
    let mut runner = ws.command(&["run", "-q", "-j", "2", "--events", "run.jsonl"]);
    runner.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runner = runner.spawn().unwrap();
    let sleeps: Vec<(i32, u64)> = ["a1.pid", "a2.pid", "b.pid"]
        .iter()
        .map(|name| {
            let pid = wait_for_pid_file(&ws, name);
            let (_, start) = proc_stat(pid).unwrap_or_else(|| panic!("{name}: {pid} is not running"));
            (pid, start)
        })
        .collect();
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert_all_end(
        &sleeps,
        "background processes of commands outlived a SIGKILLed quire-ci",
    );
    assert_no_process_with(marker);
}

#[test]
fn the_watchdog_ends_with_a_normal_run_and_leaves_no_trace() {
    // The command waits for the test to let it finish, so the watchdog is
    // looked at while the run is under way.
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :x [:quire/push]
  (fn [runtime] (runtime.sh "echo $$ > x.pid; while [ ! -e go ]; do sleep 0.01; done; echo done")))
"#,
    );
    let mut runner = ws.events_command(&[]);
    runner.stdout(Stdio::piped()).stderr(Stdio::piped());
    let runner = runner.spawn().unwrap();
    wait_for_pid_file(&ws, "x.pid");
    let watchdog = watchdog_of(runner.id());
    let (_, start) = proc_stat(watchdog).unwrap();
    // Its own process group: a terminal's Ctrl-C is for the runner alone.
    assert_eq!(process_group_of(watchdog), watchdog);
    assert_ne!(process_group_of(runner.id() as i32), watchdog);
    ws.write("go", "");
    let out = runner.wait_with_output().unwrap();
    let run = common::Run::from(out);
    run.assert_code(0);
    assert_all_end(&[(watchdog, start)], "the watchdog outlived a normal run");
    assert!(!run.stderr.contains("watchdog"), "{}", run.stderr);
    let types: Vec<String> = run
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "run_started",
            "job_started",
            "sh_started",
            "sh_finished",
            "job_finished",
            "run_finished"
        ]
    );
}

#[test]
fn an_interrupt_sent_to_the_runners_process_group_stops_the_run_cleanly() {
    // As a terminal's Ctrl-C does: SIGINT to the foreground process group,
    // which holds the runner but neither its commands nor its watchdog.
    let marker = &unique_marker("36.1803");
    let ws = Workspace::lua(&format!(
        "local ci = require('quire.ci')\nci.job('x', {{'quire/push'}}, function(rt) rt.sh('sleep {marker} & echo $! > x.pid; wait') end)\n"
    ));
    let mut runner = ws.command(&["run", "--events", "run.jsonl"]);
    runner.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    let mut runner = runner.spawn().unwrap();
    let sleep = wait_for_pid_file(&ws, "x.pid");
    let sleep_start = proc_stat(sleep).unwrap().1;
    let watchdog = watchdog_of(runner.id());
    let watchdog_start = proc_stat(watchdog).unwrap().1;
    unsafe { libc::kill(-(runner.id() as i32), libc::SIGINT) };
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    assert!(
        ws.read("run.jsonl")
            .ends_with("\"type\":\"run_finished\",\"outcome\":\"cancelled\"}\n")
    );
    assert_all_end(&[(sleep, sleep_start), (watchdog, watchdog_start)], "survived the run");
}
