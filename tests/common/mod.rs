//! Helpers for the end-to-end tests: fixture workspaces and running the built binary.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A temporary workspace with a pipeline file.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A workspace whose `.quire/<name>` holds `source`.
    pub fn with_pipeline(name: &str, source: &str) -> Workspace {
        let ws = Workspace::empty();
        ws.write(&format!(".quire/{name}"), source);
        ws
    }

    pub fn lua(source: &str) -> Workspace {
        Workspace::with_pipeline("ci.lua", source)
    }

    pub fn fennel(source: &str) -> Workspace {
        Workspace::with_pipeline("ci.fnl", source)
    }

    pub fn empty() -> Workspace {
        Workspace {
            dir: tempfile::Builder::new()
                .prefix("quire-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        let path = self.dir.path().join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// `quire-ci -w <ws> ARGS...`, run from inside the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("spawn quire-ci"))
    }

    /// `quire-ci -w <ws> ARGS...` from inside the workspace, to add environment to before running.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = quire_ci();
        cmd.arg("-w").arg(self.path()).args(args).current_dir(self.path());
        cmd
    }

    /// `run --events stdout --out-dir <ws>/out -j 1 ARGS...` (`-j 1` unless ARGS set `-j`)
    pub fn run_events(&self, extra: &[&str]) -> Run {
        Run::from(self.events_command(extra).output().expect("spawn quire-ci"))
    }

    /// The command `run_events` runs, to add environment to before running.
    pub fn events_command(&self, extra: &[&str]) -> Command {
        let args = self.events_args(extra);
        self.command(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The arguments of [`Workspace::run_events`].
    fn events_args(&self, extra: &[&str]) -> Vec<String> {
        let out = self.path().join("out");
        let mut args = vec!["run", "--events", "stdout", "--out-dir", out.to_str().unwrap()];
        if !extra.contains(&"-j") {
            args.extend(["-j", "1"]);
        }
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    }

    /// [`Workspace::run`], killed (exit code -1) if it runs past `limit`: for
    /// tests of what must not hang, so that a regression fails instead of
    /// hanging the suite.
    pub fn run_within(&self, limit: std::time::Duration, args: &[&str]) -> Run {
        let mut cmd = Command::new("timeout");
        cmd.arg("--signal=KILL")
            .arg(limit.as_secs().to_string())
            .arg(env!("CARGO_BIN_EXE_quire-ci"))
            .arg("-w")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        as_tests_expect(&mut cmd);
        let run = Run::from(cmd.output().expect("spawn timeout quire-ci"));
        assert_ne!(
            run.code, 137,
            "killed after {limit:?}: it hung\nstderr:\n{}",
            run.stderr
        );
        run
    }

    /// [`Workspace::run_events`] within `limit` (see [`Workspace::run_within`]).
    pub fn run_events_within(&self, limit: std::time::Duration, extra: &[&str]) -> Run {
        let args = self.events_args(extra);
        self.run_within(limit, &args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    pub fn log(&self, job: &str, n: u32) -> String {
        self.read(&format!("out/jobs/{job}/sh-{n}.log"))
    }
}

/// The built binary, with the stop signals it catches at their defaults.
///
/// quire-ci keeps a signal ignored if it was ignored at start (`nohup`), and
/// a shell without job control starts `cargo test &` with SIGINT ignored:
/// the signal tests would then test that instead. Tests of the ignored case
/// add their own `pre_exec`, which runs after this one.
pub fn quire_ci() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quire-ci"));
    cmd.stdin(Stdio::null()).env_remove("NO_COLOR").env("NO_COLOR", "1");
    as_tests_expect(&mut cmd);
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd
}

/// `cmd`, which starts quire-ci (itself, or through `timeout` or `script`),
/// with the machine's settings that would change what the tests compare
/// taken away: git's (see [`isolated_git`]), and the environment that
/// changes how quire-ci draws its errors (miette reads it): FORCE_COLOR and
/// CLICOLOR_FORCE colour them even on a pipe and despite NO_COLOR,
/// NO_GRAPHICS narrates them as plain text.
pub fn as_tests_expect(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_GRAPHICS");
    isolated_git(cmd)
}

/// `cmd` with git (the tests' own, or the one quire-ci runs) as on a
/// machine of its own: no user or system configuration (a global hooks
/// path, commit signing, url rewrites), and none of the variables a git
/// hook exports, such as GIT_DIR: run from a hook, the tests' git would
/// work on the hook's repository instead of the test's.
pub fn isolated_git(cmd: &mut Command) -> &mut Command {
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout as JSON events; panics (failing the test) on any line that is not one.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{}", self.stderr))
            })
            .collect()
    }

    /// The event lines as written but without `at_ms` (checked to come first
    /// and never go backwards), for exact comparison including key order.
    pub fn event_lines(&self) -> Vec<String> {
        let mut last = 0;
        self.events()
            .iter()
            .zip(self.stdout.lines())
            .map(|(event, line)| {
                let at = event["at_ms"].as_u64().expect("at_ms is a number");
                assert!(at >= last, "at_ms went backwards");
                last = at;
                let prefix = format!("{{\"at_ms\":{at},");
                let rest = line
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("at_ms is not first: {line}"));
                format!("{{{rest}")
            })
            .collect()
    }

    /// Each of `lines` is a whole line of stderr.
    pub fn assert_stderr_lines(&self, lines: &[&str]) -> &Self {
        for line in lines {
            assert!(
                self.stderr.lines().any(|l| l == *line),
                "{line:?} missing from\n{}",
                self.stderr
            );
        }
        self
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The text of each line of a CRI log as `stream tag text`, timestamps checked and dropped.
pub fn cri_lines(log: &str) -> Vec<String> {
    log.lines()
        .map(|line| {
            let (ts, rest) = line.split_once(' ').expect("CRI line has a timestamp");
            assert_eq!(ts.len(), 30, "RFC3339 with nanoseconds: {ts}");
            assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
            rest.to_string()
        })
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Durations (`0.01s`, `1m05s`) replaced by `<t>`, so output of a real run compares exactly.
pub fn mask_durations(text: &str) -> String {
    fn is_duration(word: &str) -> bool {
        let Some(number) = word.strip_suffix('s') else {
            return false;
        };
        let (whole, part) = number
            .split_once('.')
            .or_else(|| number.split_once('m'))
            .unwrap_or(("", ""));
        !whole.is_empty()
            && part.len() == 2
            && whole.bytes().all(|b| b.is_ascii_digit())
            && part.bytes().all(|b| b.is_ascii_digit())
    }
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let (bare, colon) = match word.strip_suffix(':') {
                        Some(bare) => (bare, ":"),
                        None => (word, ""),
                    };
                    if is_duration(bare) {
                        format!("<t>{colon}")
                    } else {
                        word.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map(|line| line + "\n")
        .collect()
}
