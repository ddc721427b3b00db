//! The command line itself: help, completions, man pages, usage errors.

mod common;

use common::{Run, Workspace, quire_ci};

fn run(args: &[&str]) -> Run {
    Run::from(quire_ci().args(args).output().unwrap())
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in ["validate", "run", "fennel", "report", "completions", "man"] {
        let help = run(&[sub, "--help"]);
        help.assert_code(0);
        assert!(
            help.stdout.contains("Example"),
            "{sub} --help has no example:\n{}",
            help.stdout
        );
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef quire-ci"),
        ("fish", "complete -c quire-ci"),
    ] {
        let out = run(&["completions", shell]);
        out.assert_code(0);
        assert!(
            out.stdout.contains(marker),
            "{shell}: {}",
            &out.stdout[..out.stdout.len().min(200)]
        );
        assert!(out.stdout.contains("fail-fast"), "{shell} completions miss run's flags");
    }
}

#[test]
fn man_pages_cover_the_tool_and_each_subcommand() {
    let page = run(&["man"]);
    page.assert_code(0);
    assert!(page.stdout.contains(".TH quire-ci 1"));
    let page = run(&["man", "run"]);
    page.assert_code(0);
    assert!(page.stdout.contains(".TH quire-ci-run 1") && page.stdout.contains("fail\\-fast"));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        page.stdout
            .contains(&format!(".TH quire-ci-run 1  \"quire-ci-run {version}\"")),
        "{}",
        page.stdout.lines().find(|l| l.starts_with(".TH")).unwrap_or("")
    );
    let unknown = run(&["man", "nope"]);
    unknown.assert_code(2);
    assert!(unknown.stderr.contains("no subcommand 'nope'"));
}

#[test]
fn bad_flags_are_usage_errors() {
    run(&["run", "--no-such-flag"]).assert_code(2);
    run(&["run", "-j", "0"]).assert_code(2);
    let bad = run(&["run", "--ref", "main"]);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains(
            "invalid ref \"main\": expected a full ref name such as refs/heads/main or refs/tags/v1.0, or HEAD"
        ),
        "{}",
        bad.stderr
    );
    for duration in ["soon", "0", "-1", "nan", "-inf", "1e-10"] {
        // `=`: clap takes a separate `-1` for a flag.
        let bad = run(&["run", &format!("--timeout={duration}")]);
        bad.assert_code(2);
        assert!(
            bad.stderr.contains(&format!(
                "invalid duration '{duration}': expected e.g. 30s, 10m, 1h30m or a number of seconds"
            )),
            "{}",
            bad.stderr
        );
    }
    let bad = run(&["run", "--secret", "TOKEN"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("expected NAME=env:VAR or NAME=file:PATH"));
}

#[test]
fn a_sha_that_is_not_40_hex_digits_is_a_usage_error_and_nothing_runs() {
    let ws = Workspace::fennel(
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push] (fn [runtime] (runtime.sh \"touch ran\")))\n",
    );
    let sha = "0123456789abcdef0123456789abcdef01234567";
    for bad in ["abc", &sha[1..], &format!("{sha}8"), &sha.replace('a', "z")] {
        let run = ws.run(&["run", "--events", "events.jsonl", "--sha", bad]);
        run.assert_code(2);
        assert!(
            run.stderr.contains(&format!(
                "error: invalid value '{bad}' for '--sha <SHA>': invalid sha '{bad}': expected the 40 hex digits of a commit, e.g. --sha $(git rev-parse HEAD)"
            )),
            "{}",
            run.stderr
        );
        assert!(!ws.path().join("ran").exists());
        assert!(!ws.path().join("events.jsonl").exists());
    }
    // Upper case is a sha too, recorded in git's lower case.
    let run = ws.run_events(&["--sha", &sha.to_ascii_uppercase()]);
    run.assert_code(0);
    assert_eq!(
        run.event_lines()[0],
        format!(r#"{{"type":"run_started","sha":"{sha}","ref":"HEAD","jobs":["a"]}}"#)
    );
}
