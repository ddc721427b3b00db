//! `quire-ci validate` end to end.

mod common;

use common::{Run, Workspace, quire_ci};
use serde_json::{Value, json};

#[test]
fn validate_lists_jobs_in_topological_order_with_inputs_and_image() {
    let ws = Workspace::lua(
        r#"
local ci = require("quire.ci")
ci.image("rust:1.80")
ci.job("deploy", {"test", "lint"}, function() end)
ci.job("test", {"build"}, function() end)
ci.job("build", {"quire/push"}, function() end)
ci.job("lint", {"quire/push"}, function() end)
"#,
    );
    let run = ws.run(&["validate"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        // test was declared before lint, so once build is done it comes first.
        ".quire/ci.lua: 4 jobs\nimage: rust:1.80\nbuild   <- quire/push\ntest    <- build\nlint    <- quire/push\ndeploy  <- test, lint\n"
    );
}

#[test]
fn validate_lines_up_ids_by_the_columns_they_take() {
    // `é` is two bytes and one column, `テスト` three chars and six columns.
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job \"café\" [:quire/push] (fn [] nil))\n(ci.job \"テスト\" [\"café\"] (fn [] nil))\n(ci.job :x [\"テスト\"] (fn [] nil))\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        ".quire/ci.fnl: 3 jobs\ncafé    <- quire/push\nテスト  <- café\nx       <- テスト\n"
    );
}

#[test]
fn validate_reports_every_error_with_its_line() {
    let ws = Workspace::lua(
        r#"local ci = require("quire.ci")
ci.image("a")
ci.image("b")
ci.job("build", {}, function() end)
ci.job("x/y", {"quire/push"}, function() end)
ci.job("test", {"biuld"}, "not a function")
ci.job("p", {"q"}, function() end)
ci.job("q", {"p"}, function() end)
ci.job("r", {"p"}, function() end)
ci.job("test", {"quire/push"}, function() end)
"#,
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    for expected in [
        "invalid pipeline: 8 errors",
        "duplicate image: ci.image may be called once (first at .quire/ci.lua:2)",
        "job 'build' has no inputs",
        "job id 'x/y' contains '/'",
        "job 'test': input 'biuld' is neither a job nor a source",
        "did you mean 'build'?",
        "job 'test': run-fn must be a function, got string",
        "cycle between jobs: p -> q -> p",
        "job 'r' is not reachable from a source",
        "duplicate job 'test' (first declared at .quire/ci.lua:6)",
        "[.quire/ci.lua:3:1]",
        "[.quire/ci.lua:10:1]",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
    // In the order of their lines (3, 4, 5, 6, 6, 7, 9, 10), whatever check found them.
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("╭─[.quire/ci.lua:").map(|(_, rest)| rest))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(lines, ["3", "4", "5", "6", "6", "7", "9", "10"], "{}", run.stderr);
}

#[test]
fn errors_come_in_the_order_of_their_lines_not_of_the_checks() {
    // The unknown input is found after the bad id, by a later check.
    let ws = Workspace::lua(
        r#"local ci = require("quire.ci")
ci.job("a", {"nope"}, function() end)
ci.job("x/y", {"quire/push"}, function() end)
"#,
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    let unknown = run
        .stderr
        .find("input 'nope' is neither")
        .expect("unknown input reported");
    let slash = run.stderr.find("job id 'x/y' contains '/'").expect("bad id reported");
    assert!(unknown < slash, "{}", run.stderr);
}

#[test]
fn two_cycles_sharing_a_job_are_shown_by_a_cycle_that_exists() {
    // a -> c -> b -> a and c -> e -> c: one tangle of four jobs.
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push :c] (fn []))\n(ci.job :b [:a] (fn []))\n(ci.job :c [:b :e] (fn []))\n(ci.job :e [:c] (fn []))\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("cycle between jobs: a -> c -> b -> a (and, through other cycles with them, e)"),
        "{}",
        run.stderr
    );
}

#[test]
fn validate_formats_json_and_dot() {
    let ws = Workspace::lua(
        "local ci = require('quire.ci')\nci.job('build', {'quire/push'}, function() end)\nci.job('test', {'build'}, function() end)\n",
    );
    let json = ws.run(&["validate", "--format", "json"]);
    json.assert_code(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["jobs"][1],
        serde_json::json!({"id": "test", "inputs": ["build"], "line": 3})
    );
    let dot = ws.run(&["validate", "--format", "dot"]);
    dot.assert_code(0);
    assert!(dot.stdout.starts_with("digraph pipeline {"));
    assert!(dot.stdout.contains("  \"build\" -> \"test\";\n"));
}

#[test]
fn the_dot_output_renders_with_graphviz() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :build [:quire/push] (fn [] nil))\n(ci.job \"odd \\\"name\\\"\" [:build] (fn [] nil))\n(ci.job :test [:build] (fn [] nil))\n",
    );
    let dot = ws.run(&["validate", "--format", "dot"]);
    dot.assert_code(0);
    let svg = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run graphviz's dot ({e}); install graphviz (.ci/run does)"))
        .unwrap();
    use std::io::Write;
    svg.stdin.as_ref().unwrap().write_all(dot.stdout.as_bytes()).unwrap();
    let out = svg.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot refused:\n{}\n{}",
        dot.stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(
        svg.contains("<svg") && svg.contains("quire/push") && svg.contains("odd &quot;name&quot;"),
        "{svg}"
    );
}

#[test]
fn ids_that_are_not_names_are_errors_labelled_on_the_id() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job ".." [:quire/push] (fn [runtime] (runtime.sh "true")))
(ci.job "." [:quire/push] (fn [] nil))
(ci.job "x\0y" [:quire/push] (fn [] nil))
(ci.job "two\nlines" [:quire/push] (fn [] nil))
(ci.job "bell\a" [:quire/push] 42)
(ci.job " é.ok " [:quire/push] (fn [] nil))
"#,
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    let not_a_path = "a job's logs go to jobs/<id>/, and '{}' would put them outside it; name the job with a word";
    let printable =
        "  help: a job id is shown on the terminal, in the events and in log paths: use printable characters";
    run.assert_stderr_lines(&[
        "  × invalid pipeline: 6 errors",
        "  × job id '..' is not allowed",
        "   ╭─[.quire/ci.fnl:2:9]",
        &format!("  help: {}", not_a_path.replace("{}", "..")),
        "  × job id '.' is not allowed",
        "   ╭─[.quire/ci.fnl:3:9]",
        &format!("  help: {}", not_a_path.replace("{}", ".")),
        r"  × job id 'x\0y' contains a control character ('\0')",
        "   ╭─[.quire/ci.fnl:4:9]",
        r"  × job id 'two\nlines' contains a control character ('\n')",
        "   ╭─[.quire/ci.fnl:5:9]",
        printable,
        r"  × job id 'bell\u{7}' contains a control character ('\u{7}')",
        "   ╭─[.quire/ci.fnl:6:9]",
        // The rest of a job with a bad id is still checked, and named printably.
        r"  × job 'bell\u{7}': run-fn must be a function, got integer",
        "   ╭─[.quire/ci.fnl:6:32]",
    ]);
    // Not one line of the report is broken by the ids.
    assert!(
        !run.stderr.lines().any(|line| line.starts_with("lines")),
        "{}",
        run.stderr
    );

    // A run stops before anything runs: nothing lands beside jobs/.
    let run = ws.run_events(&[]);
    run.assert_code(1);
    let events = run.events();
    assert_eq!(events.len(), 1, "{}", run.stdout);
    assert_eq!(events[0]["type"], "run_finished");
    assert_eq!(events[0]["outcome"], "failed");
    assert!(!ws.path().join("out/sh-1.log").exists());
    assert!(!ws.path().join("out/jobs").exists());
}

#[test]
fn a_run_fn_of_two_or_more_arguments_is_an_error_labelled_on_it() {
    let ws = Workspace::fennel(
        r#"(local ci (require :quire.ci))
(ci.job :none [:quire/push] (fn [] nil))
(ci.job :one [:quire/push] (fn [runtime] nil))
(ci.job :destructured [:quire/push] (fn [{: sh}] nil))
(ci.job :vararg [:quire/push] (fn [...] nil))
(ci.job :lambda [:quire/push] (λ [?runtime] nil))
(ci.job :two [:quire/push] (fn [runtime extra] nil))
(ci.job :three [:two]
  (fn [a b c ...] nil))
(ci.job :after [:three] (fn [] nil))
"#,
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    let help = "  help: a run-fn takes the runtime table or nothing: (fn [runtime] …) or (fn [] …)";
    run.assert_stderr_lines(&[
        // Only these two; `after`, below them, is not also unreachable.
        "  × invalid pipeline: 2 errors",
        "  × job 'two': run-fn takes 2 arguments, but it is called with one, the runtime table",
        "   ╭─[.quire/ci.fnl:7:28]",
        help,
        "  × job 'three': run-fn takes 3 arguments, but it is called with one, the runtime table",
        // Two-digit line numbers widen the gutter.
        "    ╭─[.quire/ci.fnl:9:3]",
    ]);
}

/// stdout as the one pretty-printed JSON document `--format json` prints.
fn json_document(run: &Run) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    assert_eq!(run.stdout, format!("{}\n", serde_json::to_string_pretty(&doc).unwrap()));
    doc
}

#[test]
fn the_json_of_a_valid_pipeline_says_it_is_valid() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.image \"rust:1.80\")\n(ci.job :test [:build] (fn [] nil))\n(ci.job :build [:quire/push] (fn [] nil))\n",
    );
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        json_document(&run),
        json!({
            "file": ".quire/ci.fnl",
            "valid": true,
            "errors": [],
            "image": "rust:1.80",
            "jobs": [
                {"id": "build", "inputs": ["quire/push"], "line": 4},
                {"id": "test", "inputs": ["build"], "line": 3},
            ],
        })
    );
}

#[test]
fn the_json_of_an_invalid_pipeline_lists_every_problem_in_line_order() {
    // The bad id on line 3 is found by an earlier check than the unknown input on line 2.
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n  (ci.job :a [:nope] (fn [] nil))\n(ci.job \"x/y\" [:quire/push] (fn [] nil))\n",
    );
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(1);
    assert_eq!(
        json_document(&run),
        json!({
            "file": ".quire/ci.fnl",
            "valid": false,
            "errors": [
                {
                    "message": "job 'a': input 'nope' is neither a job nor a source",
                    "file": ".quire/ci.fnl",
                    "line": 2,
                    // The inputs, `[:nope]`, not the whole `(ci.job ...)`.
                    "column": 14,
                    "help": "inputs name jobs declared in the pipeline, or the source quire/push",
                },
                {
                    "message": "job id 'x/y' contains '/'",
                    "file": ".quire/ci.fnl",
                    "line": 3,
                    "column": 9,
                    "help": "'/' is reserved for sources such as quire/push",
                },
            ],
        })
    );
    // stderr still has the report, as with --format text.
    assert_eq!(run.stderr, ws.run(&["validate"]).stderr);
    run.assert_stderr_lines(&[
        "  × invalid pipeline: 2 errors",
        "   ╭─[.quire/ci.fnl:2:14]",
        "   ╭─[.quire/ci.fnl:3:9]",
    ]);
}

#[test]
fn the_json_of_a_fennel_compile_error_has_its_line_and_column_in_characters() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(print \"été\" (nope))\n");
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(1);
    assert_eq!(
        json_document(&run),
        json!({
            "file": ".quire/ci.fnl",
            "valid": false,
            "errors": [{
                "message": "compile error: unknown identifier: nope",
                "file": ".quire/ci.fnl",
                "line": 2,
                "column": 15,
                "help": null,
            }],
        })
    );
    run.assert_stderr_lines(&["  × .quire/ci.fnl:2:15: compile error: unknown identifier: nope"]);
}

#[test]
fn a_pipeline_that_is_not_utf8_is_invalid_at_its_first_bad_byte() {
    let ws = Workspace::empty();
    // "café" saved as Latin-1.
    let source = b"(local ci (require :quire.ci))\n(print \"caf\xe9\")\n";
    std::fs::create_dir_all(ws.path().join(".quire")).unwrap();
    std::fs::write(ws.path().join(".quire/ci.fnl"), source).unwrap();
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(1);
    assert_eq!(
        json_document(&run),
        json!({
            "file": ".quire/ci.fnl",
            "valid": false,
            "errors": [{
                "message": "parse error: the file is not UTF-8 text: byte 0xe9 is not part of a character",
                "file": ".quire/ci.fnl",
                "line": 2,
                "column": 12,
                "help": "save the file as UTF-8",
            }],
        })
    );
    // The same for a file run with `quire-ci fennel`, and for a module.
    std::fs::write(ws.path().join("script.fnl"), &source[31..]).unwrap();
    let run = Run::from(
        quire_ci()
            .arg("fennel")
            .arg(ws.path().join("script.fnl"))
            .output()
            .unwrap(),
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(":1:12: parse error: the file is not UTF-8 text"),
        "{}",
        run.stderr
    );
    std::fs::write(ws.path().join(".quire/lib.fnl"), &source[31..]).unwrap();
    ws.write(".quire/ci.fnl", "(local ci (require :quire.ci))\n(require :lib)\n");
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    run.assert_stderr_lines(&[
        "  × .quire/lib.fnl:1:12: parse error: the file is not UTF-8 text: byte 0xe9 is not part of a character",
    ]);
}

#[test]
fn the_json_of_an_error_raised_while_loading_names_the_file_it_was_raised_in() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(local lib (require :lib))\n");
    ws.write(".quire/lib.fnl", "{}\n  (error \"boom\")\n");
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(1);
    assert_eq!(
        json_document(&run),
        json!({
            "file": ".quire/ci.fnl",
            "valid": false,
            "errors": [{
                "message": "boom",
                "file": ".quire/lib.fnl",
                "line": 2,
                "column": 3,
                "help": null,
            }],
        })
    );
    run.assert_stderr_lines(&["  × .quire/lib.fnl:2: boom"]);
}

#[test]
fn set_up_errors_have_a_json_document_too_and_exit_2() {
    let ws = Workspace::empty();
    let run = ws.run(&["validate", "--format", "json"]);
    run.assert_code(2);
    assert_eq!(
        json_document(&run),
        json!({
            "file": null,
            "valid": false,
            "errors": [{
                "message": format!("no pipeline in {}: expected .quire/ci.fnl (or .quire/ci.lua)", ws.path().display()),
                "file": null,
                "line": null,
                "column": null,
                "help": "create .quire/ci.fnl, or point -w at the workspace that has one",
            }],
        })
    );
    run.assert_stderr_lines(&["  help: create .quire/ci.fnl, or point -w at the workspace that has one"]);

    let missing = ws.path().join("missing");
    let run = Run::from(
        quire_ci()
            .arg("-w")
            .arg(&missing)
            .args(["validate", "--format", "json"])
            .output()
            .unwrap(),
    );
    run.assert_code(2);
    assert_eq!(
        json_document(&run),
        json!({
            "file": null,
            "valid": false,
            "errors": [{
                "message": format!("workspace {} does not exist", missing.display()),
                "file": null,
                "line": null,
                "column": null,
                "help": "pass the directory holding .quire/ci.fnl with -w DIR",
            }],
        })
    );

    // A usage error is clap's: no document.
    let run = ws.run(&["validate", "--format", "yaml"]);
    run.assert_code(2);
    assert_eq!(run.stdout, "");
}

#[test]
fn text_and_dot_print_nothing_on_stdout_for_an_invalid_pipeline() {
    let ws = Workspace::fennel("(local ci (require :quire.ci))\n(ci.job :a [:nope] (fn [r] nil))\n");
    for format in ["text", "dot"] {
        let run = ws.run(&["validate", "--format", format]);
        run.assert_code(1);
        assert_eq!(run.stdout, "", "--format {format}");
        run.assert_stderr_lines(&["  × job 'a': input 'nope' is neither a job nor a source"]);
    }
}

#[test]
fn each_problem_is_shown_on_its_own_and_the_count_last() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :build [:quire/push] (fn [] nil))\n(ci.job :build [:quire/push] (fn [] nil))\n(ci.job :test [:biuld] (fn [] nil))\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    // As a terminal shows them, most recent last: no bare `Error:` lines,
    // no problem after the summary.
    assert_eq!(
        run.stderr,
        "  × duplicate job 'build' (first declared at .quire/ci.fnl:2)
   ╭─[.quire/ci.fnl:3:1]
 2 │ (ci.job :build [:quire/push] (fn [] nil))
 3 │ (ci.job :build [:quire/push] (fn [] nil))
   · ─────────────────────────────────────────
 4 │ (ci.job :test [:biuld] (fn [] nil))
   ╰────

  × job 'test': input 'biuld' is neither a job nor a source
   ╭─[.quire/ci.fnl:4:15]
 3 │ (ci.job :build [:quire/push] (fn [] nil))
 4 │ (ci.job :test [:biuld] (fn [] nil))
   ·               ────────
   ╰────
  help: did you mean 'build'?

quire::invalid_pipeline

  × invalid pipeline: 2 errors

"
    );
    // A run refuses the pipeline with the same report, which its record
    // carries too.
    let refused = ws.run(&["run"]);
    refused.assert_code(1);
    assert_eq!(refused.stderr, format!("{}\nrun failed\n", run.stderr.trim_end()));
    let events = ws.run(&["run", "--events", "stdout"]).events();
    assert_eq!(events[0]["error"].as_str(), Some(run.stderr.trim_end()));
}

#[test]
fn an_argument_after_the_run_fn_and_an_empty_image_are_errors() {
    // Options given to the job rather than to runtime.sh would be dropped
    // without a word; a nil passed on is nothing.
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.image \" \")\n(ci.job :a [:quire/push] (fn [] nil) nil)\n(ci.job :b [:a] (fn [] nil) {:timeout 5} nil)\n",
    );
    let run = ws.run(&["validate"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    run.assert_stderr_lines(&[
        "  × ci.image expects the name of an image, got an empty string",
        "   ╭─[.quire/ci.fnl:2:1]",
        "  × job 'b': ci.job takes 3 arguments (id, inputs, run-fn), but it is given 4",
        // Labelled on the options table.
        "   ╭─[.quire/ci.fnl:4:29]",
        "  help: a job has no options: give :timeout, :env and the like to each runtime.sh",
        "  × invalid pipeline: 2 errors",
    ]);
}
