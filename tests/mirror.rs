//! `ci.mirror` end to end, against a local bare repository as the remote.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Run, Workspace};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git");
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

fn run_with_secret(ws: &Workspace) -> Run {
    let mut cmd = ws.events_command(&["--secret", "PUSH_HEADER=env:QUIRE_TEST_PUSH_HEADER"]);
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
