//! `ci.mirror` end to end, against a local bare repository as the remote.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::{Run, Workspace};

fn git(dir: &Path, args: &[&str]) -> String {
    let mut git = Command::new("git");
    let out = common::isolated_git(&mut git)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A workspace that is a git repository with one commit on main, and a bare remote.
/// The pipeline names the remote as "REMOTE", replaced after the commit (see `rewrite_remote`).
fn repo_with_remote(pipeline: &str) -> (Workspace, tempfile::TempDir) {
    let ws = Workspace::fennel(pipeline);
    let dir = ws.path();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Quire Test"]);
    git(dir, &["config", "user.email", "test@example.com"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first commit"]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    (ws, remote)
}

/// A new empty commit on the current branch; its sha.
fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Every ref of `repo`, as `<object> <name>`, by name.
fn refs(repo: &Path) -> Vec<String> {
    let out = git(repo, &["for-each-ref", "--format=%(objectname) %(refname)"]);
    out.lines().map(str::to_string).collect()
}

fn run_with_secret(ws: &Workspace) -> Run {
    run_with_secret_and(ws, &[])
}

fn run_with_secret_and(ws: &Workspace, args: &[&str]) -> Run {
    let mut args = args.to_vec();
    args.extend(["--secret", "PUSH_HEADER=env:QUIRE_TEST_PUSH_HEADER"]);
    let mut cmd = ws.events_command(&args);
    cmd.env("QUIRE_TEST_PUSH_HEADER", "Authorization: Bearer sekrit-token-123");
    Run::from(cmd.output().unwrap())
}

const PIPELINE: &str = r#"(local ci (require :quire.ci))
(ci.job :test [:quire/push] (fn [rt] (rt.sh "true")))
(ci.mirror "REMOTE" {:secret :PUSH_HEADER
                          :tag (fn [push] (.. "ci-" (string.sub push.sha 1 7)))
                          :refs [:refs/heads/main]
                          :after [:test]})
"#;

#[test]
fn mirror_pushes_the_ref_and_tag_and_never_shows_the_secret() {
    let (ws, remote) = repo_with_remote(PIPELINE);
    rewrite_remote(&ws, remote.path());
    let run = run_with_secret(&ws);
    run.assert_code(0);
    let sha = git(ws.path(), &["rev-parse", "HEAD"]);
    let tag = format!("ci-{}", &sha[..7]);
    assert_eq!(git(remote.path(), &["rev-parse", "refs/heads/main"]), sha);
    assert_eq!(
        git(remote.path(), &["rev-parse", &format!("refs/tags/{tag}^{{commit}}")]),
        sha
    );
    let lines = run.event_lines();
    assert!(lines.contains(&r#"{"type":"job_finished","job_id":"quire/mirror","outcome":"complete"}"#.to_string()));
    let logs = walk(&ws.path().join("out"));
    for text in std::iter::once(&run.stdout)
        .chain(std::iter::once(&run.stderr))
        .chain(logs.iter())
    {
        assert!(!text.contains("sekrit-token-123"), "secret leaked: {text}");
    }
}

#[test]
fn the_secret_comes_after_the_git_config_entries_of_the_environment() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "mirror://repo" {:secret :PUSH_HEADER})
"#,
    );
    // The environment's entry makes the url reach the remote; the hook
    // refuses a push without the secret's header.
    let hook = ws.path().join(".git/hooks/pre-push");
    std::fs::write(
        &hook,
        "#!/bin/sh\ntest \"$(git config http.extraHeader)\" = 'Authorization: Bearer sekrit-token-123' || { echo 'pre-push: no header' >&2; exit 1; }\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    let mirror = |count: &str| {
        // --sha and --ref: push detection's git fails with a bogus count.
        let mut cmd = ws.events_command(&[
            "--secret",
            "PUSH_HEADER=env:QUIRE_TEST_PUSH_HEADER",
            "--sha",
            &built,
            "--ref",
            "refs/heads/main",
        ]);
        cmd.env("QUIRE_TEST_PUSH_HEADER", "Authorization: Bearer sekrit-token-123")
            .env("GIT_CONFIG_COUNT", count)
            .env("GIT_CONFIG_KEY_0", format!("url.{}.insteadOf", remote.path().display()))
            .env("GIT_CONFIG_VALUE_0", "mirror://repo");
        Run::from(cmd.output().unwrap())
    };
    mirror("1").assert_code(0);
    assert_eq!(refs(remote.path()), [format!("{built} refs/heads/main")]);

    mirror("one").assert_code(1).assert_stderr_lines(&[
        "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: GIT_CONFIG_COUNT is 'one' in the environment, not a number of entries",
    ]);
}

#[test]
fn a_failing_push_fails_the_mirror_job_with_gits_message() {
    let (ws, remote) = repo_with_remote(PIPELINE);
    rewrite_remote(&ws, &remote.path().join("missing.git"));
    let run = run_with_secret(&ws);
    run.assert_code(1);
    assert!(
        run.event_lines()
            .contains(&r#"{"type":"job_finished","job_id":"quire/mirror","outcome":"failed"}"#.to_string())
    );
    assert!(run.stderr.contains("mirror: git push to"), "{}", run.stderr);
    assert!(
        run.stderr.contains("does not appear to be a git repository"),
        "{}",
        run.stderr
    );
}

/// A mirror with a `ci-<sha>` tag and no `:refs`.
const TAGGED: &str = r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {:tag (fn [push] (.. "ci-" (string.sub push.sha 1 7)))})
"#;

#[test]
fn the_built_commit_is_pushed_to_the_ref_whatever_the_local_branch_holds() {
    let (ws, remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, remote.path());
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    commit(ws.path(), "not built");
    ws.run_events(&["--sha", &built, "--ref", "refs/heads/main"])
        .assert_code(0);
    assert_eq!(
        refs(remote.path()),
        [
            format!("{built} refs/heads/main"),
            format!("{built} refs/tags/ci-{}", &built[..7])
        ]
    );
}

#[test]
fn a_detached_checkout_pushes_to_the_ref_it_is_told() {
    let (ws, remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["checkout", "-q", "--detach"]);
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    ws.run_events(&["--ref", "refs/heads/release"]).assert_code(0);
    assert_eq!(
        refs(remote.path()),
        [
            format!("{built} refs/heads/release"),
            format!("{built} refs/tags/ci-{}", &built[..7])
        ]
    );
}

#[test]
fn each_of_refs_is_set_to_the_built_commit() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {:refs [:refs/heads/main :refs/heads/stable]})
"#,
    );
    rewrite_remote(&ws, remote.path());
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    commit(ws.path(), "not built");
    // The pushed ref is not pushed: :refs replaces it.
    ws.run_events(&["--sha", &built, "--ref", "refs/heads/feature"])
        .assert_code(0);
    assert_eq!(
        refs(remote.path()),
        [format!("{built} refs/heads/main"), format!("{built} refs/heads/stable")]
    );
}

#[test]
fn a_detached_head_pushes_only_the_tag() {
    let (ws, remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["checkout", "-q", "--detach"]);
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    ws.run_events(&[]).assert_code(0);
    assert_eq!(refs(remote.path()), [format!("{built} refs/tags/ci-{}", &built[..7])]);
}

#[test]
fn a_detached_head_without_tag_or_refs_has_nothing_to_push() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {})
"#,
    );
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["checkout", "-q", "--detach"]);
    ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[
        "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: nothing to push: the pushed ref is 'HEAD', not a ref under refs/ (as on a detached HEAD without --ref), and there is no :tag or :refs",
    ]);
    assert_eq!(refs(remote.path()), Vec::<String>::new());
}

#[test]
fn a_failed_push_leaves_no_tag_behind_and_the_next_run_mirrors() {
    let (ws, remote) = repo_with_remote(TAGGED);
    let pipeline = ws.read(".quire/ci.fnl");
    git(ws.path(), &["checkout", "-q", "--detach"]);
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    let missing = remote.path().join("missing.git");
    ws.write(".quire/ci.fnl", &pipeline.replace("REMOTE", missing.to_str().unwrap()));
    ws.run_events(&[]).assert_code(1);
    assert_eq!(refs(ws.path()), [format!("{built} refs/heads/main")]);

    ws.write(
        ".quire/ci.fnl",
        &pipeline.replace("REMOTE", remote.path().to_str().unwrap()),
    );
    ws.run_events(&[]).assert_code(0);
    assert_eq!(refs(remote.path()), [format!("{built} refs/tags/ci-{}", &built[..7])]);
}

#[test]
fn a_ref_named_twice_is_pushed_once() {
    // A tag left by an earlier mirror (older quire-ci made local tags) is the
    // pushed ref of a detached HEAD, and the very tag `:tag` names.
    let (ws, remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["checkout", "-q", "--detach"]);
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    let tag = format!("ci-{}", &built[..7]);
    git(ws.path(), &["tag", &tag]);
    ws.run_events(&[]).assert_code(0);
    assert_eq!(refs(remote.path()), [format!("{built} refs/tags/{tag}")]);

    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {:refs [:refs/heads/main :refs/heads/main]})
"#,
    );
    rewrite_remote(&ws, remote.path());
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    ws.run_events(&[]).assert_code(0);
    assert_eq!(refs(remote.path()), [format!("{built} refs/heads/main")]);
}

#[test]
fn a_local_tag_of_the_built_commit_goes_as_it_is() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {})
"#,
    );
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["tag", "-a", "v1.0", "-m", "release"]);
    git(ws.path(), &["checkout", "-q", "--detach", "v1.0"]);
    let built = git(ws.path(), &["rev-parse", "HEAD"]);
    let release = git(ws.path(), &["rev-parse", "refs/tags/v1.0"]);
    assert_ne!(release, built);
    ws.run_events(&[]).assert_code(0);
    // The annotated tag itself, not a lightweight tag of its commit.
    assert_eq!(refs(remote.path()), [format!("{release} refs/tags/v1.0")]);
    assert_eq!(git(remote.path(), &["cat-file", "-t", "v1.0"]), "tag");
}

#[test]
fn the_users_tags_are_never_moved() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {:tag (fn [push] "v1.0")})
"#,
    );
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["tag", "-a", "v1.0", "-m", "release"]);
    let built = commit(ws.path(), "after the release");
    let before = refs(ws.path());
    ws.run_events(&[]).assert_code(0);
    assert_eq!(refs(ws.path()), before);
    // On the mirror, v1.0 is the built commit: the tag the pipeline asked for.
    assert_eq!(
        refs(remote.path()),
        [format!("{built} refs/heads/main"), format!("{built} refs/tags/v1.0")]
    );
}

#[test]
fn a_tag_the_mirror_has_at_another_commit_fails_the_push() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(ci.mirror "REMOTE" {:tag (fn [push] "v1.0")})
"#,
    );
    rewrite_remote(&ws, remote.path());
    git(ws.path(), &["tag", "-a", "v1.0", "-m", "release"]);
    git(ws.path(), &["push", "-q", remote.path().to_str().unwrap(), "v1.0"]);
    let built = commit(ws.path(), "after the release");
    let local = refs(ws.path());
    let release = git(remote.path(), &["rev-parse", "refs/tags/v1.0"]);
    let url = remote.path().display();
    ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[
        &format!(
            "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: git push to {url} failed (exit code 1): To {url}"
        ),
        // git's later lines, indented under the error's first in the summary.
        &format!("   ! [rejected]        {built} -> v1.0 (already exists)"),
    ]);
    assert_eq!(refs(ws.path()), local);
    // The tag stays; the branch, pushed in the same (non-atomic) git push, moved.
    assert_eq!(
        refs(remote.path()),
        [format!("{built} refs/heads/main"), format!("{release} refs/tags/v1.0")]
    );
}

#[test]
fn outside_a_repository_there_is_no_commit_to_mirror() {
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let ws = Workspace::fennel(&TAGGED.replace("REMOTE", remote.path().to_str().unwrap()));
    ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[
        "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: there is no commit to push: the workspace is not a git repository, or it has no commits",
    ]);
    assert_eq!(refs(remote.path()), Vec::<String>::new());
}

#[test]
fn a_caught_failure_of_the_helper_names_the_line_that_called_it() {
    // The message itself names the line, as runtime.sh's do: code that
    // catches it gets it too, not only the job's failure.
    let (ws, _remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(local stdlib (require :quire.stdlib))
(ci.job :caught [:quire/push]
  (fn [runtime]
    (let [(ok err) (pcall (fn [] (stdlib.mirror runtime "missing.git" {}) nil))]
      (print err))))
"#,
    );
    ws.run_events(&[]).assert_code(0).assert_stderr_lines(&[
        "caught | .quire/ci.fnl:5: mirror: git push to missing.git failed (exit code 128): fatal: 'missing.git' does not appear to be a git repository",
    ]);
}

#[test]
fn a_failure_of_the_helper_names_the_line_that_called_it() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(local stdlib (require :quire.stdlib))
(ci.job :m6 [:quire/push]
  (fn [runtime]
    (stdlib.mirror runtime "REMOTE" {})
    nil))
(ci.job :m7 [:quire/push]
  (fn [runtime]
    (stdlib.mirror runtime "" {})
    nil))
"#,
    );
    let missing = remote.path().join("missing.git");
    rewrite_remote(&ws, &missing);
    let missing = missing.display();
    ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[
        &format!(
            "m6: .quire/ci.fnl:5: mirror: git push to {missing} failed (exit code 128): fatal: '{missing}' does not appear to be a git repository"
        ),
        "m7: .quire/ci.fnl:9: mirror: url must be a non-empty string, got an empty string",
    ]);
}

#[test]
fn wrong_options_are_named() {
    // What can be told from the options is told when the pipeline loads
    // (validate finds it too), before anything runs.
    for (opts, error) in [
        (
            r#"{:tag "v1"}"#,
            ":tag must be a function of push returning the tag's name, got string",
        ),
        (
            r#"{:refs "refs/heads/main"}"#,
            ":refs must be a sequence of ref names, such as [:refs/heads/main], got string",
        ),
        (
            "{:refs []}",
            ":refs must name at least one ref (leave it out to push the pushed ref)",
        ),
        ("{:refs [42]}", "each of :refs must be a non-empty string, got number"),
        ("{:secret 42}", ":secret must be a non-empty string, got number"),
    ] {
        let (ws, remote) = repo_with_remote(&format!(
            "(local ci (require :quire.ci))\n(ci.mirror \"REMOTE\" {opts})\n"
        ));
        rewrite_remote(&ws, remote.path());
        let expected = format!("  × .quire/ci.fnl:2: ci.mirror: {error}");
        ws.run(&["validate"]).assert_code(1).assert_stderr_lines(&[&expected]);
        let run = ws.run_events(&[]);
        run.assert_code(1).assert_stderr_lines(&[&expected]);
        assert_eq!(run.events().len(), 1, "nothing ran: {opts}");
        assert_eq!(refs(remote.path()), Vec::<String>::new(), "{opts}");
    }
    // What the :tag function returns is known when the job runs.
    for (opts, error) in [
        (
            "{:tag (fn [push] 42)}",
            "the :tag function's result must be a non-empty string, got number",
        ),
        (
            r#"{:tag (fn [push] "")}"#,
            "the :tag function's result must be a non-empty string, got an empty string",
        ),
    ] {
        let (ws, remote) = repo_with_remote(&format!(
            "(local ci (require :quire.ci))\n(ci.mirror \"REMOTE\" {opts})\n"
        ));
        rewrite_remote(&ws, remote.path());
        ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[&format!(
            "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: {error}"
        )]);
        assert_eq!(refs(remote.path()), Vec::<String>::new(), "{opts}");
    }
}

#[test]
fn wrong_arguments_of_the_helper_are_named() {
    let (ws, remote) = repo_with_remote(
        r#"(local ci (require :quire.ci))
(local stdlib (require :quire.stdlib))
(ci.job :no-runtime [:quire/push]
  (fn [runtime]
    (stdlib.mirror "REMOTE" {})
    nil))
(ci.job :options [:quire/push]
  (fn [runtime]
    (stdlib.mirror runtime "REMOTE" :refs/heads/main)
    nil))
"#,
    );
    rewrite_remote(&ws, remote.path());
    ws.run_events(&[]).assert_code(1).assert_stderr_lines(&[
        "no-runtime: .quire/ci.fnl:5: mirror: the first argument must be the runtime table, as in (stdlib.mirror runtime url opts), got string",
        "options: .quire/ci.fnl:9: mirror: the options must be a table, got string",
    ]);
    assert_eq!(refs(remote.path()), Vec::<String>::new());
}

#[test]
fn names_git_would_refuse_or_take_for_options_are_refused() {
    let cases = [
        (
            r#""--receive-pack=touch pwned" {}"#,
            "url '--receive-pack=touch pwned' starts with '-': git would take it for an option",
        ),
        (
            r#""REMOTE" {:refs ["--force"]}"#,
            "each of :refs must be a full ref name, such as refs/heads/main, got '--force'",
        ),
        (
            r#""REMOTE" {:refs [:main]}"#,
            "each of :refs must be a full ref name, such as refs/heads/main, got 'main'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a b"]}"#,
            ":refs names 'refs/heads/a b', which is not a valid ref name: it holds a space",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a\tb"]}"#,
            ":refs names 'refs/heads/a\tb', which is not a valid ref name: it holds a control character",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a~1"]}"#,
            ":refs names 'refs/heads/a~1', which is not a valid ref name: it holds '~'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a..b"]}"#,
            ":refs names 'refs/heads/a..b', which is not a valid ref name: it holds '..'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a@{1}"]}"#,
            ":refs names 'refs/heads/a@{1}', which is not a valid ref name: it holds '@{'",
        ),
        (
            r#""REMOTE" {:refs ["refs//a"]}"#,
            ":refs names 'refs//a', which is not a valid ref name: it holds '//'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/"]}"#,
            ":refs names 'refs/heads/', which is not a valid ref name: it ends with '/'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a."]}"#,
            ":refs names 'refs/heads/a.', which is not a valid ref name: it ends with '.'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/.a"]}"#,
            ":refs names 'refs/heads/.a', which is not a valid ref name: a part of it starts with '.'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/-a"]}"#,
            ":refs names 'refs/heads/-a', which is not a valid ref name: a part of it starts with '-'",
        ),
        (
            r#""REMOTE" {:refs ["refs/heads/a.lock"]}"#,
            ":refs names 'refs/heads/a.lock', which is not a valid ref name: a part of it ends with '.lock'",
        ),
        (
            r#""REMOTE" {:tag (fn [push] "--delete")}"#,
            "the :tag function returned '--delete', which is not a valid tag name: a part of it starts with '-'",
        ),
        (
            r#""REMOTE" {:tag (fn [push] "v1:v2")}"#,
            "the :tag function returned 'v1:v2', which is not a valid tag name: it holds ':'",
        ),
    ];
    // One job a case, each on a line of its own.
    let mut pipeline = String::from("(local ci (require :quire.ci))\n(local stdlib (require :quire.stdlib))\n");
    for (i, (args, _)) in cases.iter().enumerate() {
        pipeline.push_str(&format!(
            "(ci.job :case{i} [:quire/push] (fn [runtime] (stdlib.mirror runtime {args}) nil))\n"
        ));
    }
    let (ws, remote) = repo_with_remote(&pipeline);
    rewrite_remote(&ws, remote.path());
    let run = ws.run_events(&[]);
    run.assert_code(1);
    for (i, (_, error)) in cases.iter().enumerate() {
        run.assert_stderr_lines(&[&format!("case{i}: .quire/ci.fnl:{}: mirror: {error}", i + 3)]);
    }
    assert_eq!(refs(remote.path()), Vec::<String>::new());
    assert!(!ws.path().join("pwned").exists());
}

#[test]
fn a_pushed_ref_git_would_refuse_is_refused_before_anything_runs() {
    let (ws, remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, remote.path());
    let run = ws.run(&["run", "--ref", "refs/heads/a..b"]);
    run.assert_code(2);
    assert!(run.stderr.contains("invalid ref \"refs/heads/a..b\""), "{}", run.stderr);
    assert_eq!(refs(remote.path()), Vec::<String>::new());
}

/// The URL of a repository on an HTTP server that answers every request
/// with 401, asking for credentials.
fn server_asking_for_credentials() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/repo.git", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut head = BufReader::new(&stream);
            let mut line = String::new();
            while head.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = (&stream).write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"quire\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    url
}

#[test]
fn a_server_asking_for_credentials_fails_the_push_without_a_prompt() {
    let url = server_asking_for_credentials();
    let (ws, _remote) = repo_with_remote(TAGGED);
    rewrite_remote(&ws, Path::new(&url));
    // Killed if git waits on a prompt (on a terminal); no configured
    // credential helper or askpass may answer.
    let mut timeout = Command::new("timeout");
    let out = common::as_tests_expect(&mut timeout)
        .args(["--signal=KILL", "60"])
        .arg(env!("CARGO_BIN_EXE_quire-ci"))
        .args(["-w", ws.path().to_str().unwrap(), "run", "-j", "1"])
        .current_dir(ws.path())
        .stdin(std::process::Stdio::null())
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .env_remove("GIT_TERMINAL_PROMPT")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .output()
        .unwrap();
    let run = Run::from(out);
    let authority = url.trim_end_matches("/repo.git");
    run.assert_code(1).assert_stderr_lines(&[&format!(
        "quire/mirror: .quire/ci.fnl:2 (in job 'quire/mirror', declared here): mirror: git push to {url} failed (exit code 128): fatal: could not read Username for '{authority}': terminal prompts disabled"
    )]);
}

#[test]
fn with_q_gits_message_is_shown_once() {
    let (ws, remote) = repo_with_remote(PIPELINE);
    rewrite_remote(&ws, &remote.path().join("missing.git"));
    let run = run_with_secret_and(&ws, &["-q"]);
    run.assert_code(1);
    // The job's error ends with git's stderr: not again as the output under
    // it, nor in the summary, which with -q is the table.
    let says = |text: &str| run.stderr.matches(text).count();
    assert_eq!(says("does not appear to be a git repository"), 1, "{}", run.stderr);
    assert_eq!(says("Could not read from remote repository"), 1, "{}", run.stderr);
    assert!(run.stderr.contains("quire/mirror | failed in "), "{}", run.stderr);
}

/// Point the committed pipeline at `remote` (after the commit, so the commit does not depend on a temp path).
fn rewrite_remote(ws: &Workspace, remote: &Path) {
    let text = ws.read(".quire/ci.fnl").replace("REMOTE", remote.to_str().unwrap());
    ws.write(".quire/ci.fnl", &text);
}

/// The contents of every file under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            texts.extend(walk(&path));
        } else {
            texts.push(std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    texts
}
