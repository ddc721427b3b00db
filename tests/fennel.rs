//! `.quire/ci.fnl` end to end: a realistic pipeline, modules, `quire-ci fennel`,
//! and diagnostics that point at the right line and column.

mod common;

use common::{Run, Workspace, cri_lines, quire_ci};

/// Helpers, a version matrix built with icollect, destructuring, match, and
/// outputs flowing between jobs.
const REALISTIC: &str = r#";; A realistic pipeline.
(local ci (require :quire.ci))
(local {: describe} (require :lib.util))

(local versions [:1.78 :1.80])

(fn cargo [runtime & args]
  (let [argv ["echo" "cargo"]]
    (each [_ a (ipairs args)] (table.insert argv a))
    (runtime.sh argv)))

(ci.job :build [:quire/push]
  (fn [runtime]
    (let [{: sha : ref} (runtime.jobs :quire/push)]
      (cargo runtime "build" (describe ref))
      {:artifact (.. "app-" (string.sub sha 1 4))})))

(each [_ v (ipairs versions)]
  (ci.job (.. :test- v) [:build]
    (fn [runtime]
      (let [{: artifact} (runtime.jobs :build)
            [major minor] (icollect [part (string.gmatch v "%d+")] (tonumber part))]
        (cargo runtime "test" artifact (.. "+" major "." minor))
        {:version v :new? (>= minor 80)}))))

(ci.job :report (icollect [_ v (ipairs versions)] (.. :test- v))
  (fn [runtime]
    (let [notes (icollect [_ v (ipairs versions)]
                  (match (runtime.jobs (.. :test- v))
                    {:new? true : version} (.. version " (new)")
                    {: version} version))]
      (runtime.sh ["echo" (table.concat notes ", ")])
      nil)))
"#;

const UTIL: &str = r#"(fn describe [ref]
  (case ref
    (where r (r:match "^refs/heads/")) (.. "branch " (r:sub 12))
    _ (.. "ref " ref)))
{: describe}
"#;

#[test]
fn a_realistic_pipeline_runs_with_the_exact_stream() {
    let ws = Workspace::fennel(REALISTIC);
    ws.write(".quire/lib/util.fnl", UTIL);
    let run = ws.run_events(&["--sha", &"abcd".repeat(10), "--ref", "refs/heads/main"]);
    run.assert_code(0);
    let sha = "abcd".repeat(10);
    let expected = [
        format!(
            r#"{{"type":"run_started","sha":"{sha}","ref":"refs/heads/main","jobs":["build","test-1.78","test-1.80","report"]}}"#
        ),
        r#"{"type":"job_started","job_id":"build"}"#.into(),
        r#"{"type":"sh_started","job_id":"build","cmd":"echo cargo build 'branch main'"}"#.into(),
        r#"{"type":"sh_finished","job_id":"build","exit_code":0}"#.into(),
        r#"{"type":"job_finished","job_id":"build","outcome":"complete"}"#.into(),
        r#"{"type":"job_started","job_id":"test-1.78"}"#.into(),
        r#"{"type":"sh_started","job_id":"test-1.78","cmd":"echo cargo test app-abcd +1.78"}"#.into(),
        r#"{"type":"sh_finished","job_id":"test-1.78","exit_code":0}"#.into(),
        r#"{"type":"job_finished","job_id":"test-1.78","outcome":"complete"}"#.into(),
        r#"{"type":"job_started","job_id":"test-1.80"}"#.into(),
        r#"{"type":"sh_started","job_id":"test-1.80","cmd":"echo cargo test app-abcd +1.80"}"#.into(),
        r#"{"type":"sh_finished","job_id":"test-1.80","exit_code":0}"#.into(),
        r#"{"type":"job_finished","job_id":"test-1.80","outcome":"complete"}"#.into(),
        r#"{"type":"job_started","job_id":"report"}"#.into(),
        r#"{"type":"sh_started","job_id":"report","cmd":"echo '1.78, 1.80 (new)'"}"#.into(),
        r#"{"type":"sh_finished","job_id":"report","exit_code":0}"#.into(),
        r#"{"type":"job_finished","job_id":"report","outcome":"complete"}"#.into(),
        r#"{"type":"run_finished","outcome":"complete"}"#.to_string(),
    ];
    assert_eq!(run.event_lines(), expected);
    assert_eq!(cri_lines(&ws.log("report", 1)), vec!["stdout F 1.78, 1.80 (new)"]);
}

#[test]
fn ci_fnl_wins_over_ci_lua() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(ci.job :from-fennel [:quire/push] (fn [] nil))\n");
    ws.write(".quire/ci.lua", "error('the Lua pipeline must not be loaded')\n");
    let run = ws.run(&["validate"]);
    run.assert_code(0);
    assert_eq!(run.stdout, ".quire/ci.fnl: 1 job\nfrom-fennel  <- quire/push\n");
}

#[test]
fn a_syntax_error_points_at_line_and_column() {
    let ws =
        Workspace::fennel("(local ci (require :quire.ci))\n(ci.job :a [:quire/push]\n  (fn [] (print \"bad \\q\")))\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(".quire/ci.fnl:3:17: parse error: Invalid string"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[.quire/ci.fnl:3:17]"), "{}", run.stderr);
    // The same diagnostic ends the event stream of a run.
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let events = run.events();
    assert_eq!(events.len(), 1);
    assert!(
        events[0]["error"]
            .as_str()
            .unwrap()
            .contains(".quire/ci.fnl:3:17: parse error")
    );
}

#[test]
fn an_unknown_global_is_a_compile_error_naming_it_before_anything_runs() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(print \"top level ran\")\n(ci.job :a [:quire/push]\n  (fn [runtime]\n    (runtime.sh (concat \"a\" \"b\"))))\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains(".quire/ci.fnl:5:18: compile error: unknown identifier: concat"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("top level ran"), "the file ran before it compiled");
}

#[test]
fn a_runtime_error_names_the_fennel_line_in_output_and_job_error() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n\n(ci.job :a [:quire/push]\n  (fn [runtime]\n    (let [config nil]\n\n      (. config :missing))))\n(ci.job :b [:quire/push]\n  (fn [] (error \"boom\")))\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert!(run.stderr.contains("a | failed in"), "{}", run.stderr);
    assert!(
        run.stderr.contains(".quire/ci.fnl:7: attempt to index a nil value"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("b: .quire/ci.fnl:9: boom"), "{}", run.stderr);
}

/// The summary line of each failed job (`job: error`), in declaration order.
fn job_errors(run: &Run) -> Vec<&str> {
    let summary = run.stderr.rsplit_once("\njob ").map_or("", |(_, s)| s);
    summary
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains(": "))
        .filter(|l| !l.starts_with("run "))
        .collect()
}

/// The last form of a run-fn compiles to `return runtime.sh(...)`, a Lua tail
/// call, which leaves no frame of the run-fn for the error to name: the job's
/// failure still names the line of the call, read from the run-fn's bytecode.
#[test]
fn a_failing_command_names_its_line_in_tail_position_too() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))

(ci.job :last [:quire/push]
  (fn [runtime]
    (runtime.sh "true")
    (runtime.sh "exit 3")))
(ci.job :not-last [:quire/push]
  (fn [runtime]
    (runtime.sh "exit 4")
    nil))
(ci.job :one-line [:quire/push] (fn [rt] (rt.sh "exit 5")))
(fn check [rt cmd] (rt.sh cmd))
(ci.job :through-a-helper [:quire/push]
  (fn [rt]
    (check rt "exit 6")))
(ci.job :helper-not-last [:quire/push]
  (fn [rt]
    (check rt "exit 7")
    nil))
(ci.job :either [:quire/push]
  (fn [rt]
    (if (rt.env "QUIRE_TEST_SURELY_UNSET")
        (rt.sh "exit 8")
        (rt.sh "exit 9"))))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert_eq!(
        job_errors(&run),
        [
            "last: .quire/ci.fnl:6: command `exit 3` exited with code 3",
            "not-last: .quire/ci.fnl:9: command `exit 4` exited with code 4",
            "one-line: .quire/ci.fnl:11: command `exit 5` exited with code 5",
            // The call of the helper whose own tail call failed.
            "through-a-helper: .quire/ci.fnl:15: command `exit 6` exited with code 6",
            "helper-not-last: .quire/ci.fnl:18: command `exit 7` exited with code 7",
            // Tail calls on two lines: which one failed is not known, only the job.
            "either: .quire/ci.fnl:20 (in job 'either', declared here): command `exit 9` exited with code 9",
        ],
        "{}",
        run.stderr
    );
    // The progress line says the same.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("last ") && l.ends_with(": .quire/ci.fnl:6: command `exit 3` exited with code 3")),
        "{}",
        run.stderr
    );
}

#[test]
fn errors_that_name_no_line_and_wrong_returns_get_one() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :table-error [:quire/push]
  (fn []
    (error {:code 1})
    nil))
(ci.job :level-zero [:quire/push]
  (fn []
    (error "no position" 0)
    nil))
(ci.job :returns-true [:quire/push]
  (fn [] true))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let errors = job_errors(&run);
    assert!(
        errors[0].starts_with("table-error: .quire/ci.fnl:4: table: 0x"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1..],
        [
            "level-zero: .quire/ci.fnl:8: no position",
            "returns-true: .quire/ci.fnl:10: the run-fn of job 'returns-true' returned a boolean; it must return a table (the job's output) or nil",
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn an_error_in_tail_position_names_its_line() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(fn check [ok why] (when (not ok) (error why 2)))
(ci.job :error-last [:quire/push]
  (fn [rt]
    (error "boom")))
(ci.job :blames-the-caller [:quire/push]
  (fn [rt]
    (check (= 1 1) "fine")
    (check (= 1 2) "one is not two")))
(ci.job :library-last [:quire/push]
  (fn [rt]
    (string.rep "x" 10 (fn []))))
(ci.job :runtime-last [:quire/push]
  (fn [rt]
    (rt.jobs :nothing)))
"#,
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert_eq!(
        job_errors(&run),
        [
            "error-last: .quire/ci.fnl:5: boom",
            "blames-the-caller: .quire/ci.fnl:9: one is not two",
            "library-last: .quire/ci.fnl:12: bad argument #3 to 'rep' (string expected, got function)",
            "runtime-last: .quire/ci.fnl:15: runtime.jobs: 'nothing' is not an input of job 'runtime-last' (directly or indirectly); it can read: quire/push",
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn a_compile_error_in_a_module_is_shown_on_its_form_in_the_module() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(local bad (require :lib.bad))\n");
    // Characters of two bytes before the error: columns count characters.
    ws.write(
        ".quire/lib/bad.fnl",
        ";; ünïcode\n(local s \"été\") (print s (nope s))\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        r#"fennel::compile

  × .quire/lib/bad.fnl:2:27: compile error: unknown identifier: nope
   ╭─[.quire/lib/bad.fnl:2:27]
 1 │ ;; ünïcode
 2 │ (local s "été") (print s (nope s))
   ·                           ──┬─
   ·                             ╰── here
   ╰────

"#
    );
}

#[test]
fn a_missing_module_is_an_error_on_the_line_that_requires_it() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n\n(local x (require :lib.nothere))\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "  × .quire/ci.fnl:3: module 'lib.nothere' not found: tried .quire/lib/nothere.fnl, \
         .quire/lib/nothere.lua; built-in modules: quire.ci, quire.runtime, quire.stdlib
   ╭─[.quire/ci.fnl:3:1]
 2 │ 
 3 │ (local x (require :lib.nothere))
   · ────────────────────────────────
   ╰────

"
    );
}

#[test]
fn a_require_cycle_names_the_line_and_every_module_in_it() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(local cyc (require :lib.cyc))\n");
    ws.write(".quire/lib/cyc.fnl", ";; cyc\n(local other (require :lib.cyc2))\n{}\n");
    ws.write(".quire/lib/cyc2.fnl", "\n\n(require :lib.cyc)\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "  × .quire/lib/cyc2.fnl:3: module 'lib.cyc' requires itself (a require cycle: lib.cyc -> lib.cyc2 -> lib.cyc)
   ╭─[.quire/lib/cyc2.fnl:3:1]
 2 │ 
 3 │ (require :lib.cyc)
   · ──────────────────
   ╰────

"
    );
    // In a job, in tail position too.
    ws.write(
        ".quire/ci.fnl",
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push]\n  (fn []\n    (require :lib.cyc2)))\n",
    );
    let run = ws.run_events(&[]);
    run.assert_code(1);
    assert_eq!(
        job_errors(&run),
        ["a: .quire/lib/cyc.fnl:2: module 'lib.cyc2' requires itself \
          (a require cycle: lib.cyc2 -> lib.cyc -> lib.cyc2)"],
        "{}",
        run.stderr
    );
    ws.write(
        ".quire/ci.fnl",
        "(local ci (require :quire.ci))\n(local cyc (require :lib.cyc))\n",
    );
    ws.write(".quire/lib/cyc.fnl", "(require :lib.cyc)\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert!(
        run.stderr.starts_with(
            "  × .quire/lib/cyc.fnl:1: module 'lib.cyc' requires itself (a require cycle: lib.cyc -> lib.cyc)\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn registration_errors_are_labelled_on_the_ci_job_form() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :build [:quire/push] (fn [] nil))\n  (ci.job :deploy [] (fn [] nil))\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    // The label starts at the `(ci.job` form (column 3), not at the start of the line.
    assert!(run.stderr.contains("job 'deploy' has no inputs"), "{}", run.stderr);
    assert!(run.stderr.contains("[.quire/ci.fnl:3:3]"), "{}", run.stderr);
}

#[test]
fn user_macros_are_a_clear_compile_error() {
    let ws = Workspace::fennel("(macro twice [x] `(do ,x ,x))\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert!(run.stderr.contains(".quire/ci.fnl:1:"), "{}", run.stderr);
    assert!(run.stderr.contains("macros are not supported"), "{}", run.stderr);
}

#[test]
fn code_nested_past_luas_parser_is_a_compile_error_on_its_line() {
    // 120 nested additions compile to Lua nested deeper than Lua's parser
    // goes, which says only "C stack overflow".
    let sum = format!("{}1{}", "(+ 1 ".repeat(120), ")".repeat(120));
    let ws = Workspace::fennel(&format!(
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push]\n  (fn []\n    (print {sum})))\n"
    ));
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            ".quire/ci.fnl:4:5: compile error: nested too deeply for Lua's parser (about 200 levels of blocks and expressions)"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[.quire/ci.fnl:4:5]"), "{}", run.stderr);
    assert!(run.stderr.contains("help: split it"), "{}", run.stderr);
}

#[test]
fn too_many_locals_is_a_compile_error_on_the_first_one_past_the_limit() {
    let locals: String = (0..210).map(|i| format!("(local x{i} {i})\n")).collect();
    let ws = Workspace::fennel(&format!("(local ci (require :quire.ci))\n{locals}"));
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    // Line 1 is the `ci` local, so the 201st local, x199, is on line 201.
    assert!(
        run.stderr.contains(
            ".quire/ci.fnl:201:1: compile error: more than Lua allows: too many local variables (limit is 200) in main function\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("near"),
        "Lua's token is of code the user never wrote: {}",
        run.stderr
    );
}

#[test]
fn errors_of_runtime_functions_caught_with_pcall_are_strings() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push]
  (fn [runtime]
    (let [(ok err) (pcall runtime.sh "exit 3")]
      (print ok (type err) (string.match err "code (%d+)") err))
    (let [(_ err) (pcall require :lib.missing)]
      (print (type err)))
    (let [(_ err) (xpcall #(runtime.jobs :nope) #(.. "handled: " $1))]
      (print err))
    (let [co (coroutine.create #(runtime.secret :none))]
      (print (select 2 (coroutine.resume co))))
    (print (type (select 2 (pcall error {:code 1}))))
    nil))
"#,
    );
    let run = ws.run(&["run"]);
    run.assert_code(0);
    let printed: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("a | ") && !l.starts_with("a | $") && !l.contains(" in 0."))
        .skip(1) // "started"
        .collect();
    assert_eq!(
        printed,
        [
            "a | false\tstring\t3\t.quire/ci.fnl:4: command `exit 3` exited with code 3",
            "a | string",
            "a | handled: .quire/ci.fnl:8: runtime.jobs: 'nope' is not an input of job 'a' (directly or indirectly); it can read: quire/push",
            "a | .quire/ci.fnl:10: runtime.secret: unknown secret 'none'; no secrets are declared (use --secret NAME=env:VAR or NAME=file:PATH)",
            "a | table",
        ],
        "{}",
        run.stderr
    );
}

/// `quire-ci fennel ARGS...`, run from inside `ws`.
fn fennel(ws: &Workspace, args: &[&str]) -> Run {
    Run::from(
        quire_ci()
            .arg("fennel")
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap(),
    )
}

/// The absolute path of `file` in `ws`.
fn absolute(ws: &Workspace, file: &str) -> String {
    ws.path().join(file).to_str().unwrap().to_string()
}

#[test]
fn the_fennel_command_runs_a_file_with_print_on_stdout() {
    let ws = Workspace::empty();
    ws.write("lib/greet.fnl", "(fn greet [who] (.. \"hello \" who))\n{: greet}\n");
    ws.write(
        "main.fnl",
        "(local {: greet} (require :lib.greet))\n(print (greet :world) (+ 1 2))\n",
    );
    let run = fennel(&ws, &[&absolute(&ws, "main.fnl")]);
    run.assert_code(0);
    assert_eq!(run.stdout, "hello world\t3\n");
}

#[test]
fn the_fennel_command_compiles_to_lua_and_reports_errors() {
    let ws = Workspace::empty();
    ws.write("ok.fnl", "(local x 1)\n(print (+ x 2))\n");
    let run = fennel(&ws, &["--compile", &absolute(&ws, "ok.fnl")]);
    run.assert_code(0);
    assert!(run.stdout.contains("print"), "{}", run.stdout);
    // Line-preserving: the print call is on line 2 of the Lua too.
    assert!(
        run.stdout.lines().nth(1).unwrap_or("").contains("print"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with(")\n"), "the last line is ended: {:?}", run.stdout);
    ws.write("bad.fnl", "(print \"a\")\n(print (undefined-thing))\n");
    let run = fennel(&ws, &[&absolute(&ws, "bad.fnl")]);
    run.assert_code(1);
    assert_eq!(run.stdout, "", "nothing runs before the whole file compiles");
    assert!(
        run.stderr
            .contains("bad.fnl:2:9: compile error: unknown identifier: undefined-thing"),
        "{}",
        run.stderr
    );
    let run = fennel(&ws, &[&absolute(&ws, "missing.fnl")]);
    run.assert_code(2);
}

#[test]
fn the_fennel_command_says_the_pipeline_modules_are_for_pipelines_only() {
    let ws = Workspace::empty();
    let fennel = |file: &str| {
        let run = fennel(&ws, &[file]);
        run.assert_code(1);
        run
    };
    for module in ["quire.ci", "quire.runtime", "quire.stdlib"] {
        ws.write("main.fnl", &format!("(print :start)\n(local m (require :{module}))\n"));
        let run = fennel("main.fnl");
        assert_eq!(run.stdout, "start\n");
        assert_eq!(
            run.stderr,
            format!(
                "  × main.fnl:2: module '{module}' is only available to pipelines (.quire/ci.fnl, as loaded by \
                 `quire-ci validate` and `quire-ci run`), not to files run by `quire-ci fennel`\n\n"
            )
        );
    }
    // No list of built-in modules when there are none.
    ws.write("other.fnl", "(require :lib.none)\n");
    assert_eq!(
        fennel("other.fnl").stderr,
        "  × other.fnl:1: module 'lib.none' not found: tried ./lib/none.fnl, ./lib/none.lua\n\n"
    );
}

#[test]
fn the_fennel_command_says_modules_resolve_beside_the_file() {
    let ws = Workspace::empty();
    ws.write("scripts/main.fnl", "(require \"../x\")\n");
    let run = fennel(&ws, &["scripts/main.fnl"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "  × scripts/main.fnl:1: module '../x' not found: module names are dot-separated words \
         (letters, digits, _ and -), resolved under scripts/\n\n"
    );
}

#[test]
fn the_fennel_command_shows_a_modules_compile_error_on_its_form() {
    let ws = Workspace::empty();
    ws.write("main.fnl", "(require :bad)\n");
    ws.write("bad.fnl", "(print \"é\")\n(print (undefined-thing))\n");
    let run = fennel(&ws, &["main.fnl"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "fennel::compile

  × ./bad.fnl:2:9: compile error: unknown identifier: undefined-thing
   ╭─[./bad.fnl:2:9]
 1 │ (print \"é\")
 2 │ (print (undefined-thing))
   ·         ───────┬───────
   ·                ╰── here
   ╰────

"
    );
}

#[test]
fn the_fennel_command_names_a_file_it_cannot_read_once_with_the_systems_reason() {
    let ws = Workspace::empty();
    std::fs::create_dir(ws.path().join("dir.fnl")).unwrap();
    ws.write("main.fnl", "(require :dir)\n");
    let fennel = |args: &[&str]| fennel(&ws, args);
    for args in [&["dir.fnl"][..], &["--compile", "dir.fnl"]] {
        let run = fennel(args);
        run.assert_code(2);
        assert_eq!(run.stderr, "  × cannot read dir.fnl: Is a directory (os error 21)\n\n");
    }
    let run = fennel(&["missing.fnl"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        "  × cannot read missing.fnl: No such file or directory (os error 2)\n\n"
    );
    // A module that cannot be read is an error on the line requiring it.
    let run = fennel(&["main.fnl"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "  × main.fnl:1: cannot read ./dir.fnl: Is a directory (os error 21)\n\n"
    );
}

#[test]
fn the_fennel_command_compiling_a_file_that_is_not_utf8_points_at_the_byte() {
    let ws = Workspace::empty();
    std::fs::write(ws.path().join("latin1.fnl"), b"(print \"caf\xe9\")\n").unwrap();
    let run = fennel(&ws, &["--compile", "latin1.fnl"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    run.assert_stderr_lines(&[
        "  × latin1.fnl:1:12: parse error: the file is not UTF-8 text: byte 0xe9 is not part of a character",
        "  help: save the file as UTF-8",
    ]);
}
