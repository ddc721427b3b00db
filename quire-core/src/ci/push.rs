//! The `quire/push` source: what was pushed, read from the workspace's git
//! repository by running `git`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The sha used outside a git repository.
pub const NULL_SHA: &str = "0000000000000000000000000000000000000000";

/// The output of the `quire/push` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushInfo {
    pub sha: String,
    /// Full ref name (`refs/heads/main`, `refs/tags/v1`), or `HEAD` when detached.
    pub r#ref: String,
    /// `ref` without `refs/heads/`; `None` for anything that is not a branch.
    pub branch: Option<String>,
    /// `ref` without `refs/tags/`; `None` for anything that is not a tag.
    pub tag: Option<String>,
    pub commit_message: Option<String>,
    /// Committer date of the commit, RFC 3339.
    pub pushed_at: Option<String>,
    pub git_dir: Option<PathBuf>,
}

/// Read push info from the repository containing `workspace`. The overrides
/// (`--sha`, `--ref`) win over what git says; branch and tag follow the final
/// ref. Outside a repository, or without git, sha is [`NULL_SHA`] and ref `HEAD`.
pub fn read_push_info(workspace: &Path, sha_override: Option<&str>, ref_override: Option<&str>) -> PushInfo {
    let git = |args: &[&str]| git_output(workspace, args);

    let head = git(&["rev-parse", "--verify", "-q", "HEAD"]);
    let sha = sha_override
        .map(str::to_string)
        .or(head)
        .unwrap_or_else(|| NULL_SHA.to_string());
    let r#ref = ref_override
        .map(str::to_string)
        .or_else(|| git(&["symbolic-ref", "-q", "HEAD"]))
        .or_else(|| git(&["describe", "--tags", "--exact-match", "HEAD"]).map(|tag| format!("refs/tags/{tag}")))
        .unwrap_or_else(|| "HEAD".to_string());
    let branch = r#ref.strip_prefix("refs/heads/").map(str::to_string);
    let tag = r#ref.strip_prefix("refs/tags/").map(str::to_string);

    // Describe the commit named by sha, when git knows it. Only hex goes on
    // git's command line, so an override cannot pass as an option.
    let commit = if !sha.is_empty() && sha != NULL_SHA && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(format!("{sha}^{{commit}}"))
    } else {
        None
    };
    let (commit_message, pushed_at) = match &commit {
        Some(c) => (
            git(&["log", "-1", "--format=%B", c, "--"]).map(|m| m.trim_end_matches('\n').to_string()),
            git(&["log", "-1", "--format=%cI", c, "--"]),
        ),
        None => (None, None),
    };
    let git_dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);

    PushInfo {
        sha,
        r#ref,
        branch,
        tag,
        commit_message,
        pushed_at,
        git_dir,
    }
}

/// stdout of a successful `git ARGS` in `dir`, without the final newline;
/// `None` on any failure (not a repository, no such object, no git).
fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_COMMITTER_DATE", "2026-11-27T12:00:00+01:00")
            .env("GIT_AUTHOR_DATE", "2026-11-27T12:00:00+01:00")
            .stdout(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        git(d, &["config", "user.name", "Test"]);
        git(d, &["config", "user.email", "test@example.com"]);
        git(d, &["config", "commit.gpgsign", "false"]);
        git(d, &["config", "tag.gpgsign", "false"]);
        std::fs::write(d.join("a"), "a").unwrap();
        git(d, &["add", "a"]);
        git(d, &["commit", "-q", "-m", "First line\n\nBody text."]);
        dir
    }

    fn head(dir: &Path) -> String {
        git_output(dir, &["rev-parse", "HEAD"]).unwrap()
    }

    #[test]
    fn branch_checkout() {
        let dir = repo();
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.sha, head(dir.path()));
        assert_eq!(info.sha.len(), 40);
        assert_eq!(info.r#ref, "refs/heads/main");
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(info.tag, None);
        assert_eq!(info.commit_message.as_deref(), Some("First line\n\nBody text."));
        assert_eq!(info.pushed_at.as_deref(), Some("2026-11-27T12:00:00+01:00"));
        let git_dir = info.git_dir.unwrap();
        assert_eq!(
            git_dir.canonicalize().unwrap(),
            dir.path().join(".git").canonicalize().unwrap()
        );
    }

    #[test]
    fn subdirectory_of_repo() {
        let dir = repo();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let info = read_push_info(&sub, None, None);
        assert_eq!(info.sha, head(dir.path()));
        assert_eq!(info.branch.as_deref(), Some("main"));
    }

    #[test]
    fn detached_tag_checkout() {
        let dir = repo();
        git(dir.path(), &["tag", "-a", "v1.0", "-m", "release"]);
        git(dir.path(), &["checkout", "-q", "--detach", "v1.0"]);
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.r#ref, "refs/tags/v1.0");
        assert_eq!(info.tag.as_deref(), Some("v1.0"));
        assert_eq!(info.branch, None);
        assert_eq!(info.sha, head(dir.path()));
    }

    #[test]
    fn detached_without_tag() {
        let dir = repo();
        git(dir.path(), &["checkout", "-q", "--detach"]);
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.r#ref, "HEAD");
        assert_eq!((info.branch, info.tag), (None, None));
        assert!(info.commit_message.is_some());
    }

    #[test]
    fn overrides_win() {
        let dir = repo();
        let first = head(dir.path());
        std::fs::write(dir.path().join("b"), "b").unwrap();
        git(dir.path(), &["add", "b"]);
        git(dir.path(), &["commit", "-q", "-m", "Second"]);

        let info = read_push_info(dir.path(), Some(&first), Some("refs/tags/v2"));
        assert_eq!(info.sha, first);
        assert_eq!(info.r#ref, "refs/tags/v2");
        assert_eq!(info.tag.as_deref(), Some("v2"));
        assert_eq!(info.branch, None);
        // The message is the overriding commit's.
        assert_eq!(info.commit_message.as_deref(), Some("First line\n\nBody text."));

        let info = read_push_info(dir.path(), Some("--output=/tmp/x"), Some("refs/heads/dev"));
        assert_eq!(info.sha, "--output=/tmp/x");
        assert_eq!(info.branch.as_deref(), Some("dev"));
        assert_eq!((info.commit_message, info.pushed_at), (None, None));
        assert!(info.git_dir.is_some());
    }

    #[test]
    fn outside_a_repository() {
        // The temp dir is outside any repository.
        let dir = tempfile::tempdir().unwrap();
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.sha, NULL_SHA);
        assert_eq!(info.r#ref, "HEAD");
        assert_eq!(
            (info.branch, info.tag, info.commit_message, info.pushed_at, info.git_dir),
            (None, None, None, None, None)
        );
        let info = read_push_info(&dir.path().join("missing"), Some("abc"), Some("refs/heads/x"));
        assert_eq!(info.sha, "abc");
        assert_eq!(info.branch.as_deref(), Some("x"));
    }

    #[test]
    fn repository_without_commits() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "trunk"]);
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.sha, NULL_SHA);
        assert_eq!(info.branch.as_deref(), Some("trunk"));
        assert_eq!(info.commit_message, None);
        assert!(info.git_dir.is_some());
    }
}
