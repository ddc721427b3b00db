//! One run, start to end: secrets, pipeline, `run_started`, the jobs,
//! `run_finished`. Every way it ends writes `run_finished` last (design §6).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use miette::Diagnostic;
use mlua::{Lua, Table};
use tokio::sync::watch;

use crate::diagnostic::render_plain;

use super::event::{EventKind, JobOutcome, RunOutcome};
use super::load::{self, LoadOptions};
use super::process::LogMade;
use super::push::{PushInfo, PushQuery};
use super::runtime::{Emitter, RecordError, RunContext, RuntimeEvent, output_copier, read_only_view};
use super::schedule::{self, JobState, ScheduleOptions, Stop, StopReason};
use crate::lua::{Limits, PrintTarget};
use crate::secret::Redactor;

/// Where a secret's value comes from: `NAME=env:VAR` or `NAME=file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl FromStr for SecretSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (name, source) = spec.split_once('=').ok_or("expected NAME=env:VAR or NAME=file:PATH")?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("secret name '{name}' must be letters, digits, _ or -"));
        }
        let source = if let Some(var) = source.strip_prefix("env:") {
            if var.is_empty() {
                return Err("env: needs a variable name, as in NAME=env:VAR".into());
            }
            SecretSource::Env(var.to_string())
        } else if let Some(path) = source.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path, as in NAME=file:PATH".into());
            }
            SecretSource::File(PathBuf::from(path))
        } else {
            return Err(format!(
                "unknown secret source '{source}': expected env:VAR or file:PATH"
            ));
        };
        Ok(SecretSpec {
            name: name.to_string(),
            source,
        })
    }
}

/// The spec as it is written on the command line: `NAME=env:VAR`, `NAME=file:PATH`.
impl std::fmt::Display for SecretSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            SecretSource::Env(var) => write!(f, "{}=env:{var}", self.name),
            SecretSource::File(path) => write!(f, "{}=file:{}", self.name, path.display()),
        }
    }
}

/// Everything `quire-ci run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub workspace: PathBuf,
    pub out_dir: PathBuf,
    /// True when `out_dir` is removed at exit (no `--out-dir`): its logs are
    /// made only for commands that print something.
    pub out_dir_is_temporary: bool,
    pub parallelism: usize,
    pub fail_fast: bool,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub secrets: Vec<SecretSpec>,
    pub default_timeout: Option<Duration>,
    pub kill_grace: Duration,
    /// How far pipeline code may go (memory, instructions).
    pub limits: Limits,
}

/// How the run ended, which decides the exit code (design §6).
#[derive(Debug)]
pub enum RunEnd {
    Complete,
    /// A job failed (or `--fail-fast` stopped the run).
    Failed,
    /// The pipeline did not load; `setup` when the cause was the environment rather than the code.
    NotLoaded {
        setup: bool,
    },
    /// A secret could not be read.
    SetupError,
    /// Interrupted by this signal.
    Interrupted(i32),
    /// The events or a log could not be written.
    RecordFailed(RecordError),
}

impl RunEnd {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunEnd::Complete => 0,
            RunEnd::Failed => 1,
            RunEnd::NotLoaded { setup: false } => 1,
            RunEnd::NotLoaded { setup: true } | RunEnd::SetupError => 2,
            RunEnd::RecordFailed(_) => 3,
            RunEnd::Interrupted(signal) => 128 + signal,
        }
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
enum SecretError {
    #[error("secret {name}: environment variable {var} is not set")]
    #[diagnostic(code(quire::secret), help("export {var}, or declare the secret with NAME=file:PATH"))]
    Unset { name: String, var: String },
    #[error("secret {name}: cannot read {}: {error}", .path.display())]
    #[diagnostic(code(quire::secret))]
    Unreadable {
        name: String,
        path: PathBuf,
        /// In the message, not a `source`: miette would print it a second time.
        error: std::io::Error,
    },
    #[error("secret {name}: {} holds more than {} bytes, more than any token or key", .path.display(), MAX_SECRET_BYTES)]
    #[diagnostic(
        code(quire::secret),
        help("give --secret NAME=file:PATH the file holding only the secret")
    )]
    TooLarge { name: String, path: PathBuf },
}

/// The most a `file:` secret may hold. A secret is a token or a key; without
/// a bound, `--secret KEY=file:/dev/zero` (or a log given by mistake) would
/// be read until memory ran out.
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;

fn read_secrets(specs: &[SecretSpec]) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let mut secrets = BTreeMap::new();
    for spec in specs {
        let value = match &spec.source {
            SecretSource::Env(var) => match std::env::var_os(var) {
                Some(value) => value.into_encoded_bytes(),
                None => {
                    return Err(SecretError::Unset {
                        name: spec.name.clone(),
                        var: var.clone(),
                    });
                }
            },
            SecretSource::File(path) => {
                let mut bytes = read_bounded(path, MAX_SECRET_BYTES).map_err(|error| SecretError::Unreadable {
                    name: spec.name.clone(),
                    path: path.clone(),
                    error,
                })?;
                if bytes.len() as u64 > MAX_SECRET_BYTES {
                    return Err(SecretError::TooLarge {
                        name: spec.name.clone(),
                        path: path.clone(),
                    });
                }
                // Files written by editors and `echo` end in a newline that is not part of the secret.
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                bytes
            }
        };
        secrets.insert(spec.name.clone(), value);
    }
    Ok(secrets)
}

/// The file's bytes, or its first `limit + 1` when it holds more (a pipe,
/// a device, a file still growing).
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Run the pipeline of `request.workspace`, reporting to `emitter`, until
/// done or `stop` is requested. Must be called inside a tokio `LocalSet`
/// (jobs are local tasks on one VM).
pub async fn run(request: RunRequest, emitter: Rc<RefCell<Emitter>>, stop: Stop) -> RunEnd {
    // A run whose record failed ends failed, with the failure as its error (exit 3).
    let finish = |emitter: &Rc<RefCell<Emitter>>,
                  redactor: &Redactor,
                  outcome: RunOutcome,
                  error: Option<String>,
                  end: RunEnd| {
        emitter.borrow_mut().run_finished(outcome, error, redactor);
        match emitter.borrow_mut().take_failure() {
            Some(failure) => RunEnd::RecordFailed(failure),
            None => end,
        }
    };

    let secrets = match read_secrets(&request.secrets) {
        Ok(secrets) => secrets,
        Err(err) => {
            return finish(
                &emitter,
                &Redactor::default(),
                RunOutcome::Failed,
                Some(render_plain(&err)),
                RunEnd::SetupError,
            );
        }
    };
    let redactor = Redactor::for_secrets(secrets.values().cloned());

    // What pipeline code prints goes to the observers, so the reporter can keep
    // it apart from its live status line.
    let print_to = emitter.clone();
    let print = move |job_id: Option<&str>, text: &[u8]| {
        print_to.borrow_mut().emit(RuntimeEvent::Print {
            job_id: job_id.map(str::to_string),
            text: text.to_vec(),
        })
    };
    let options = LoadOptions {
        print: PrintTarget::Host(Rc::new(print)),
        redactor: redactor.clone(),
        limits: request.limits,
    };
    // git answers on the other core while the pipeline loads.
    let push = PushQuery::start(&request.workspace, request.sha.as_deref());
    let loaded = match load::load(&request.workspace, options) {
        Ok(loaded) => loaded,
        Err(err) => {
            let setup = err.is_setup();
            let text = redactor.redact_str(&render_plain(&err as &dyn Diagnostic));
            return finish(
                &emitter,
                &redactor,
                RunOutcome::Failed,
                Some(text),
                RunEnd::NotLoaded { setup },
            );
        }
    };
    // What top-level code printed comes out whole before the run starts.
    loaded.sandbox.flush_output();
    let lua = loaded.sandbox.lua();
    let pipeline = &loaded.pipeline;

    let push = push.finish(request.git_ref.as_deref());
    if let Some(said) = &push.refused {
        // git's own words, with its advice, indented under ours.
        let said: Vec<String> = said
            .lines()
            .map(|line| {
                if line.trim().is_empty() {
                    String::new()
                } else {
                    format!("  {line}")
                }
            })
            .collect();
        emitter.borrow_mut().emit(RuntimeEvent::Warning(format!(
            "git refused the workspace's repository, so quire/push is read as outside one (sha forty zeros, ref HEAD):\n{}",
            said.join("\n")
        )));
    }
    emitter.borrow_mut().wire(EventKind::RunStarted {
        sha: push.sha.clone(),
        git_ref: push.r#ref.clone(),
        jobs: pipeline.jobs.iter().map(|j| j.id.clone()).collect(),
    });

    let mut outputs = HashMap::new();
    match push_table(lua, &push) {
        Ok(table) => {
            outputs.insert("quire/push".to_string(), mlua::Value::Table(table));
        }
        Err(err) => {
            let text = format!("cannot build the quire/push output: {err}");
            return finish(&emitter, &redactor, RunOutcome::Failed, Some(text), RunEnd::Failed);
        }
    }
    let helpers = read_only_view(lua).and_then(|view| Ok((view, output_copier(lua)?)));
    let (read_only_view, copy_output) = match helpers {
        Ok(functions) => functions,
        Err(err) => {
            return finish(
                &emitter,
                &redactor,
                RunOutcome::Failed,
                Some(err.to_string()),
                RunEnd::Failed,
            );
        }
    };
    let cancel = watch::Sender::new(false);
    let context = Rc::new(RunContext {
        workspace: request.workspace.clone(),
        out_dir: request.out_dir.clone(),
        log_made: if request.out_dir_is_temporary {
            LogMade::AtFirstOutput
        } else {
            LogMade::BeforeStart
        },
        secrets,
        redactor: redactor.clone(),
        emitter: emitter.clone(),
        cancel: cancel.subscribe(),
        stop: stop.clone(),
        default_timeout: request.default_timeout,
        kill_grace: request.kill_grace,
        outputs: RefCell::new(outputs),
        read_only_view,
        copy_output,
    });
    let options = ScheduleOptions {
        parallelism: request.parallelism,
        fail_fast: request.fail_fast,
    };
    let summary = schedule::execute(
        &loaded.sandbox,
        pipeline,
        &loaded.runtime_global,
        &context,
        &cancel,
        &stop,
        options,
    )
    .await;
    // Each job's print output came out when it ended; nothing else should be
    // left, but nothing may follow the run's last words.
    loaded.sandbox.flush_output();

    if let Some(StopReason::Signal(signal)) = summary.stopped_by {
        return finish(
            &emitter,
            &redactor,
            RunOutcome::Cancelled,
            None,
            RunEnd::Interrupted(signal),
        );
    }
    let failed = summary
        .states
        .iter()
        .any(|s| matches!(s, JobState::Finished(JobOutcome::Failed | JobOutcome::Cancelled)));
    if failed {
        finish(&emitter, &redactor, RunOutcome::Failed, None, RunEnd::Failed)
    } else {
        finish(&emitter, &redactor, RunOutcome::Complete, None, RunEnd::Complete)
    }
}

/// The `quire/push` source's output, as `(runtime.jobs :quire/push)` returns it.
fn push_table(lua: &Lua, push: &PushInfo) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("sha", push.sha.as_str())?;
    table.set("ref", push.r#ref.as_str())?;
    table.set("branch", push.branch.as_deref())?;
    table.set("tag", push.tag.as_deref())?;
    table.set("commit-message", push.commit_message.as_deref())?;
    table.set("pushed-at", push.pushed_at.as_deref())?;
    table.set(
        "git-dir",
        push.git_dir
            .as_deref()
            .map(Path::to_string_lossy)
            .map(|s| s.into_owned()),
    )?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs_parse() {
        assert_eq!(
            "TOKEN=env:GH_TOKEN".parse::<SecretSpec>(),
            Ok(SecretSpec {
                name: "TOKEN".into(),
                source: SecretSource::Env("GH_TOKEN".into())
            })
        );
        assert_eq!(
            "key=file:./k.txt".parse::<SecretSpec>(),
            Ok(SecretSpec {
                name: "key".into(),
                source: SecretSource::File("./k.txt".into())
            })
        );
        assert!("TOKEN".parse::<SecretSpec>().unwrap_err().contains("NAME=env:VAR"));
        assert!(
            "TOKEN=vault:x"
                .parse::<SecretSpec>()
                .unwrap_err()
                .contains("unknown secret source")
        );
        assert!("A B=env:X".parse::<SecretSpec>().is_err());
        for spec in ["TOKEN=env:GH_TOKEN", "key=file:./k.txt"] {
            assert_eq!(spec.parse::<SecretSpec>().unwrap().to_string(), spec);
        }
    }

    #[test]
    fn a_secret_file_is_read_up_to_its_bound_and_refused_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |file: &str| SecretSpec {
            name: "KEY".into(),
            source: SecretSource::File(dir.path().join(file)),
        };
        let at_bound = vec![b'k'; MAX_SECRET_BYTES as usize];
        std::fs::write(dir.path().join("key"), &at_bound).unwrap();
        assert_eq!(read_secrets(&[spec("key")]).unwrap()["KEY"], at_bound);

        std::fs::write(dir.path().join("big"), vec![b'k'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        let err = read_secrets(&[spec("big")]).unwrap_err();
        assert!(matches!(err, SecretError::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("holds more than 1048576 bytes"), "{err}");

        // A device that never ends is refused too, after reading past the bound only.
        let zero = SecretSpec {
            name: "KEY".into(),
            source: SecretSource::File("/dev/zero".into()),
        };
        assert!(matches!(read_secrets(&[zero]), Err(SecretError::TooLarge { .. })));
    }
}
