//! The `quire/push` source: what was pushed, read from the workspace's git
//! repository by running `git`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
    /// What git said when it refused the workspace's repository (one owned
    /// by another user: "detected dubious ownership"), which is then read as
    /// outside a repository; not part of the source's output.
    pub refused: Option<String>,
}

/// Read push info from the repository containing `workspace`. The overrides
/// (`--sha`, `--ref`) win over what git says; branch and tag follow the final
/// ref. Outside a repository, or without git, sha is [`NULL_SHA`] and ref `HEAD`.
///
/// Every run pays for this before its first job, so it asks git as little as
/// it can, and at the same time where it can: one `rev-parse` for the git dir,
/// HEAD's commit and HEAD's full ref name, and beside it one `log` for the
/// commit's date and message; then `describe` only when HEAD is detached.
/// Outside a repository both fail and nothing more is asked.
pub fn read_push_info(workspace: &Path, sha_override: Option<&str>, ref_override: Option<&str>) -> PushInfo {
    PushQuery::start(workspace, sha_override).finish(ref_override)
}

/// The questions [`read_push_info`] asks git, asked: started with
/// [`PushQuery::start`], so that the caller can do other work (load the
/// pipeline) while git answers, and read with [`PushQuery::finish`].
pub struct PushQuery {
    workspace: PathBuf,
    sha_override: Option<String>,
    log: Option<Git>,
    rev_parse: Git,
}

impl PushQuery {
    /// Start the two `git` processes that most runs need and nothing more.
    pub fn start(workspace: &Path, sha_override: Option<&str>) -> PushQuery {
        let git = |args: &[&str]| Git::start(workspace, args);
        // The log runs beside rev-parse: of the commit an override names, or else
        // of HEAD's, checked against rev-parse's in `finish`.
        let log = match sha_override {
            Some(sha) => commit_arg(sha).map(|c| git(&log_args(&c))),
            None => Some(git(&log_args("HEAD^{commit}"))),
        };
        // `--absolute-git-dir` first: once rev-parse meets an argument that is not
        // a revision (HEAD in a repository without commits) it takes the rest as
        // paths, which `--revs-only` leaves out; the git dir is printed either way.
        let rev_parse = git(&[
            "rev-parse",
            "--absolute-git-dir",
            "--revs-only",
            "HEAD",
            "--symbolic-full-name",
            "HEAD",
        ]);
        PushQuery {
            workspace: workspace.to_path_buf(),
            sha_override: sha_override.map(str::to_string),
            log,
            rev_parse,
        }
    }

    /// Wait for git's answers (asking more where they call for it) and put
    /// them together with `ref_override`.
    pub fn finish(self, ref_override: Option<&str>) -> PushInfo {
        let PushQuery {
            workspace,
            sha_override,
            log,
            rev_parse,
        } = self;
        let workspace = workspace.as_path();
        let sha_override = sha_override.as_deref();
        let git = |args: &[&str]| Git::start(workspace, args);

        let rev_parse = rev_parse.result();
        // Outside a repository git fails too, saying so; only a refusal is news.
        let refused = match &rev_parse {
            Err(said) if said.contains("dubious ownership") => Some(said.clone()),
            _ => None,
        };
        let head = rev_parse.ok().map(|out| Head::parse(&out));

        let sha = sha_override
            .map(str::to_string)
            .or_else(|| head.as_ref().and_then(|h| h.sha.clone()))
            .unwrap_or_else(|| NULL_SHA.to_string());
        let mut log = log.and_then(Git::output).and_then(|out| Commit::parse(&out));
        if sha_override.is_none() && log.as_ref().map(|c| c.sha.as_str()) != Some(sha.as_str()) {
            // Not rev-parse's commit (HEAD moved between the two), or none.
            log = commit_arg(&sha)
                .and_then(|c| git(&log_args(&c)).output())
                .and_then(|out| Commit::parse(&out));
        }

        let r#ref = match (ref_override, &head) {
            (Some(r), _) => Some(r.to_string()),
            // Not a repository: nothing more to ask.
            (None, None) => None,
            (None, Some(head)) => match head.r#ref.as_deref() {
                // Detached.
                Some("HEAD") => None,
                Some(r) => Some(r.to_string()),
                // HEAD names a branch without commits, or rev-parse found the
                // name ambiguous (a tag called HEAD): ask symbolic-ref, as before.
                None => git(&["symbolic-ref", "-q", "HEAD"]).output(),
            }
            .or_else(|| {
                git(&["describe", "--tags", "--exact-match", "HEAD"])
                    .output()
                    .map(|tag| format!("refs/tags/{tag}"))
            }),
        }
        .unwrap_or_else(|| "HEAD".to_string());
        let branch = r#ref.strip_prefix("refs/heads/").map(str::to_string);
        let tag = r#ref.strip_prefix("refs/tags/").map(str::to_string);

        let (pushed_at, commit_message) = match log {
            Some(c) => (Some(c.date), Some(c.message)),
            None => (None, None),
        };

        PushInfo {
            sha,
            r#ref,
            branch,
            tag,
            commit_message,
            pushed_at,
            git_dir: head.map(|h| h.git_dir),
            refused,
        }
    }
}

/// The argument that names the commit `sha` for git, when there is one. Only
/// hex goes on git's command line, so an override cannot pass as an option.
fn commit_arg(sha: &str) -> Option<String> {
    if !sha.is_empty() && sha != NULL_SHA && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(format!("{sha}^{{commit}}"))
    } else {
        None
    }
}

/// `git log` printing the sha, committer date (RFC 3339) and message of
/// `commit`, NUL after each of the first two. `--no-show-signature`: with
/// `log.showSignature` set, git would print the signature check before them.
fn log_args(commit: &str) -> [&str; 6] {
    [
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H%x00%cI%x00%B",
        commit,
        "--",
    ]
}

/// What `git log` says about a commit.
struct Commit {
    sha: String,
    /// RFC 3339.
    date: String,
    message: String,
}

impl Commit {
    /// Neither a sha nor a date holds a NUL, so the first two end them,
    /// whatever the message holds.
    fn parse(out: &str) -> Option<Commit> {
        let (sha, rest) = out.split_once('\0')?;
        let (date, message) = rest.split_once('\0')?;
        Some(Commit {
            sha: sha.to_string(),
            date: date.to_string(),
            message: message.trim_end_matches('\n').to_string(),
        })
    }
}

/// What the one `rev-parse` says about the repository.
struct Head {
    git_dir: PathBuf,
    /// HEAD's commit; `None` in a repository without commits.
    sha: Option<String>,
    /// HEAD's full ref name, `HEAD` when detached; `None` when HEAD does not
    /// resolve to a commit of its own, or when rev-parse finds its name ambiguous.
    r#ref: Option<String>,
}

impl Head {
    /// Parse `GIT_DIR[\nSHA[\nREF]]`. Taken from the end, so a git dir with a
    /// newline in its path stays whole: a ref name is `HEAD` or starts with
    /// `refs/` (git checks that of HEAD), a sha is 40 or 64 hex digits, and
    /// the git dir is an absolute path.
    fn parse(out: &str) -> Head {
        let mut rest = out;
        let mut pop = |is: fn(&str) -> bool| {
            let (before, last) = rest.rsplit_once('\n')?;
            is(last).then(|| {
                rest = before;
                last.to_string()
            })
        };
        let r#ref = pop(|l| l == "HEAD" || l.starts_with("refs/"));
        let sha = pop(|l| matches!(l.len(), 40 | 64) && l.bytes().all(|b| b.is_ascii_hexdigit()));
        Head {
            git_dir: PathBuf::from(rest),
            sha,
            // When HEAD names a branch without commits, rev-parse resolves
            // `HEAD` as it would any name: to `refs/tags/HEAD`, `refs/heads/HEAD`
            // and the like, when one exists. Not HEAD's ref: leave it to symbolic-ref.
            r#ref: r#ref.filter(|r| !r.ends_with("/HEAD")),
        }
    }
}

/// A `git` process started in the workspace, its stdout piped.
struct Git(Option<Child>);

impl Git {
    /// Start `git ARGS` in `dir`. stdin and stderr are null and git may not
    /// prompt for anything, so nothing can wait on a terminal.
    fn start(dir: &Path, args: &[&str]) -> Git {
        let child = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        Git(child.ok())
    }

    /// Its stdout without the final newline when it succeeded; `None` on any
    /// failure (not a repository, no such object, no git).
    fn output(self) -> Option<String> {
        self.result().ok()
    }

    /// Its stdout as [`Git::output`] gives it, or what it said on stderr
    /// when it failed (empty when it could not run at all).
    fn result(mut self) -> Result<String, String> {
        let out = self.0.take().and_then(|child| child.wait_with_output().ok());
        let Some(out) = out else {
            return Err(String::new());
        };
        let trimmed = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            text.strip_suffix('\n').unwrap_or(&text).to_string()
        };
        if out.status.success() {
            Ok(trimmed(&out.stdout))
        } else {
            Err(trimmed(&out.stderr))
        }
    }
}

/// A git whose answer is not wanted any more (the pipeline did not load) is
/// stopped and reaped rather than left a zombie.
impl Drop for Git {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// stdout of a successful `git ARGS` in `dir`, without the final newline;
/// `None` on any failure (not a repository, no such object, no git).
#[cfg(test)]
fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    Git::start(dir, args).output()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let mut git = Command::new("git");
        // Nothing from the machine's configuration (a global hooks path), and
        // no GIT_DIR or the like from a git hook running the tests, which would
        // make this commit and tag in the hook's repository.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_COMMON_DIR",
            "GIT_OBJECT_DIRECTORY",
        ] {
            git.env_remove(var);
        }
        let status = git
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
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
        assert_eq!(info.refused, None, "outside a repository is no refusal");
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

    #[test]
    fn a_tag_named_head() {
        // rev-parse finds the name HEAD ambiguous, or (on a branch without
        // commits) takes it for the tag; the ref is still HEAD's branch.
        let dir = repo();
        git(dir.path(), &["tag", "HEAD"]);
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.sha, head(dir.path()));
        assert_eq!(info.r#ref, "refs/heads/main");
        assert_eq!(info.commit_message.as_deref(), Some("First line\n\nBody text."));

        git(dir.path(), &["checkout", "-q", "--orphan", "fresh"]);
        let info = read_push_info(dir.path(), None, None);
        assert_eq!(info.r#ref, "refs/heads/fresh");
        assert_eq!(info.branch.as_deref(), Some("fresh"));
    }

    #[test]
    fn rev_parse_output() {
        let sha = "a".repeat(40);
        let parse = |out: &str| {
            let head = Head::parse(out);
            (head.git_dir, head.sha, head.r#ref)
        };
        let dir = |d: &str| PathBuf::from(d);
        assert_eq!(
            parse(&format!("/r/.git\n{sha}\nrefs/heads/main")),
            (dir("/r/.git"), Some(sha.clone()), Some("refs/heads/main".into()))
        );
        assert_eq!(
            parse(&format!("/r/.git\n{sha}\nHEAD")),
            (dir("/r/.git"), Some(sha.clone()), Some("HEAD".into()))
        );
        assert_eq!(
            parse(&format!("/r/.git\n{sha}")),
            (dir("/r/.git"), Some(sha.clone()), None)
        );
        assert_eq!(parse("/r/.git"), (dir("/r/.git"), None, None));
        assert_eq!(parse("/new\nline/.git"), (dir("/new\nline/.git"), None, None));
        assert_eq!(
            parse(&format!("/new\nline/.git\n{sha}\nrefs/tags/HEAD")),
            (dir("/new\nline/.git"), Some(sha), None)
        );
    }
}
