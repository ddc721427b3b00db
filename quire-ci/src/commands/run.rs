//! `quire-ci run`: open the events sink, run the pipeline on a tokio
//! current-thread runtime, turn the end of the run into an exit code.

use std::cell::RefCell;
use std::io::Stderr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use quire_core::ci::event::{EventKind, RunOutcome};
use quire_core::ci::run::{self, RunEnd, RunRequest, render_plain};
use quire_core::ci::runtime::{Emitter, Observer};
use quire_core::ci::schedule::StopReason;
use tokio::sync::{Notify, watch};

use super::resolve_workspace;
use crate::cli::RunArgs;
use crate::reporter::Reporter;
use crate::sink::EventSink;
use crate::{exit, report_error};

/// How often the live status line is redrawn on a terminal.
const STATUS_TICK: Duration = Duration::from_millis(500);

/// How long a command gets between SIGTERM and SIGKILL when it is stopped.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum SetupError {
    #[error("cannot open the events file {path}: {source}")]
    #[diagnostic(code(quire::events), help("--events takes null, stdout, or a writable file path"))]
    Events { path: String, source: std::io::Error },
    #[error("cannot create the log directory {}: {source}", .path.display())]
    #[diagnostic(code(quire::out_dir))]
    OutDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    #[diagnostic(code(quire::record))]
    Record(String),
}

pub fn run(workspace: &Path, args: &RunArgs) -> u8 {
    // The sink comes first: from here on, every way the run ends is recorded.
    let sink = match EventSink::open(&args.events) {
        Ok(sink) => Rc::new(RefCell::new(sink)),
        Err(source) => {
            report_error(SetupError::Events {
                path: args.events.clone(),
                source,
            });
            return exit::USAGE;
        }
    };
    let reporter = Rc::new(RefCell::new(Reporter::stderr(args.quiet)));
    let observers: Vec<Box<dyn Observer>> = vec![Box::new(reporter.clone()), Box::new(sink.clone())];
    let emitter = Rc::new(RefCell::new(Emitter::new(observers)));

    let code = match prepare(workspace, args) {
        Ok((request, _temp_dir)) => execute(request, emitter.clone(), reporter),
        Err(message) => {
            let error = Some(message);
            emitter.borrow_mut().wire(EventKind::RunFinished {
                outcome: RunOutcome::Failed,
                error,
            });
            match emitter.borrow_mut().take_failure() {
                Some(failure) => record_failed(&failure.to_string()),
                None => exit::USAGE,
            }
        }
    };
    let finished = sink.borrow_mut().finish();
    match finished {
        // A record that already failed has been reported once; don't pile on.
        Err(err) if code != RECORD_FAILED => {
            let what = sink
                .borrow()
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "stdout".into());
            record_failed(&format!("cannot flush the events to {what}: {err}"))
        }
        _ => code,
    }
}

/// Check the workspace and the log directory. The error is the rendered diagnostic.
fn prepare(workspace: &Path, args: &RunArgs) -> Result<(RunRequest, Option<tempfile::TempDir>), String> {
    let workspace = resolve_workspace(workspace).map_err(|e| render_plain(&e))?;
    let (out_dir, temp_dir) = match &args.out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| std::path::absolute(dir))
            .map(|dir| (dir, None))
            .map_err(|source| {
                render_plain(&SetupError::OutDir {
                    path: dir.clone(),
                    source,
                })
            })?,
        None => {
            let temp = tempfile::Builder::new()
                .prefix("quire-ci-")
                .tempdir()
                .map_err(|source| {
                    render_plain(&SetupError::OutDir {
                        path: std::env::temp_dir(),
                        source,
                    })
                })?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let parallelism = match args.jobs {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let request = RunRequest {
        workspace,
        out_dir,
        out_dir_is_temporary: temp_dir.is_some(),
        parallelism,
        fail_fast: args.fail_fast,
        sha: args.sha.clone(),
        git_ref: args.git_ref.clone(),
        secrets: args.secrets.clone(),
        default_timeout: args.timeout,
        kill_grace: KILL_GRACE,
        limits: args.limits.limits(),
    };
    Ok((request, temp_dir))
}

fn execute(request: RunRequest, emitter: Rc<RefCell<Emitter>>, reporter: Rc<RefCell<Reporter<Stderr>>>) -> u8 {
    // Before any command, and early: the fork is cheap while the runner is small.
    if let Err(err) = quire_core::ci::watchdog::start() {
        crate::say(&format!(
            "quire-ci: warning: cannot start the watchdog ({err}): if quire-ci is killed (SIGKILL, \
             out of memory), what its commands started in the background may keep running"
        ));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            let error = Some(render_plain(&SetupError::Runtime(err)));
            emitter.borrow_mut().wire(EventKind::RunFinished {
                outcome: RunOutcome::Failed,
                error,
            });
            return exit::USAGE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let end = local.block_on(&runtime, async {
        let (stop_tx, stop_rx) = watch::channel(None);
        // Handlers go in now, before any job: a signal must never meet the
        // default action, and children reset the handlers that exist at the
        // first command (quire_core::ci::spawn).
        if let Some(signals) = StopSignals::install() {
            tokio::task::spawn_local(signals.watch(stop_tx));
        }
        // Lines of output are written out in batches, once the job yields.
        let flusher = Rc::new(Notify::new());
        reporter.borrow_mut().batch_output(flusher.clone());
        let batched = reporter.clone();
        tokio::task::spawn_local(async move {
            loop {
                flusher.notified().await;
                // The reporter is for a person: a closed stderr must not stop the run.
                let _ = batched.borrow_mut().flush();
            }
        });
        // Keep the live status line's durations moving between events.
        tokio::task::spawn_local(async move {
            let mut ticks = tokio::time::interval(STATUS_TICK);
            loop {
                ticks.tick().await;
                reporter.borrow_mut().tick();
            }
        });
        run::run(request, emitter, stop_rx).await
    });
    match end {
        RunEnd::RecordFailed(failure) => record_failed(&failure.to_string()),
        end => u8::try_from(end.exit_code()).unwrap_or(exit::FAILED),
    }
}

/// Exit code: the run record or a log could not be written.
const RECORD_FAILED: u8 = 3;

fn record_failed(message: &str) -> u8 {
    report_error(SetupError::Record(message.to_string()));
    RECORD_FAILED
}

/// SIGINT and SIGTERM, caught. First: ask the run to stop cleanly. Second:
/// kill every command's process group and exit at once.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Option<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(StopSignals {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn watch(self, stop: watch::Sender<Option<StopReason>>) {
        let StopSignals {
            mut interrupt,
            mut terminate,
        } = self;
        let mut received = false;
        loop {
            let signal = tokio::select! {
                _ = interrupt.recv() => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
            };
            if received {
                crate::say("quire-ci: second signal, exiting now");
                // exit() skips the orderly stop; take the commands' backgrounded children down too.
                quire_core::ci::process::kill_all_groups();
                std::process::exit(128 + signal);
            }
            received = true;
            crate::say(&format!(
                "quire-ci: stopping (signal {signal}); send it again to exit at once"
            ));
            stop.send_replace(Some(StopReason::Signal(signal)));
        }
    }
}
