//! `quire-ci run`: open the events sink, run the pipeline on a tokio
//! current-thread runtime, turn the end of the run into an exit code.

use std::cell::RefCell;
use std::io::Stderr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use quire_core::ci::event::RunOutcome;
use quire_core::ci::run::{self, RunRequest, SecretSpec};
use quire_core::ci::runtime::{Emitter, Observer};
use quire_core::ci::schedule::Stop;
use quire_core::diagnostic::render_plain;
use quire_core::secret::Redactor;
use tokio::sync::Notify;

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
    // The io error is in the message, not a `source`: miette would print it a second time.
    #[error("cannot create the log directory {}: {error}", .path.display())]
    #[diagnostic(code(quire::out_dir))]
    OutDir { path: PathBuf, error: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("secret {name} is declared twice: --secret {first} and --secret {second}")]
    #[diagnostic(
        code(quire::secret),
        help("declare each secret once; for two values, give them two names")
    )]
    DuplicateSecret {
        name: String,
        first: String,
        second: String,
    },
}

/// A secret declared twice (the first found), whose value would be whichever came last.
fn duplicate_secret(secrets: &[SecretSpec]) -> Option<SetupError> {
    secrets.iter().enumerate().find_map(|(i, second)| {
        let first = secrets[..i].iter().find(|first| first.name == second.name)?;
        Some(SetupError::DuplicateSecret {
            name: second.name.clone(),
            first: first.to_string(),
            second: second.to_string(),
        })
    })
}

pub fn run(workspace: &Path, args: &RunArgs) -> u8 {
    // First, while this is the only thread: commands' exits are then read
    // from a signalfd. Should it fail, tokio's SIGCHLD handler does instead.
    let _ = quire_core::ci::exits::block_sigchld();
    // A mistake in the flags, like one clap finds: nothing runs, nothing is recorded.
    if let Some(error) = duplicate_secret(&args.secrets) {
        report_error(error);
        return exit::USAGE;
    }
    // The sink comes first: from here on, every way the run ends is recorded.
    let sink = match EventSink::open(&args.events) {
        Ok(sink) => sink,
        Err(err) => {
            report_error(err);
            return exit::USAGE;
        }
    };
    let reporter = Rc::new(RefCell::new(Reporter::stderr(args.quiet)));
    // The sink first: when it fails to write `run_finished`, the reporter's
    // summary already says the run failed, and why (Emitter::run_finished).
    let observers: Vec<Box<dyn Observer>> = vec![Box::new(sink), Box::new(reporter.clone())];
    let emitter = Rc::new(RefCell::new(Emitter::new(observers)));

    match prepare(workspace, args) {
        Ok((request, _temp_dir)) => execute(request, emitter, reporter),
        Err(message) => set_up_failed(&emitter, message),
    }
}

/// End the stream of a run that could not be set up: exit 2, or 3 if the
/// stream could not be written either.
fn set_up_failed(emitter: &RefCell<Emitter>, message: String) -> u8 {
    let mut emitter = emitter.borrow_mut();
    emitter.run_finished(RunOutcome::Failed, Some(message), &Redactor::default());
    match emitter.take_failure() {
        Some(_) => exit::RECORD,
        None => exit::USAGE,
    }
}

/// Check the workspace and the log directory. The error is the rendered diagnostic.
fn prepare(workspace: &Path, args: &RunArgs) -> Result<(RunRequest, Option<tempfile::TempDir>), String> {
    let workspace = resolve_workspace(workspace).map_err(|e| render_plain(&e))?;
    let (out_dir, temp_dir) = match &args.out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| std::path::absolute(dir))
            .map(|dir| (dir, None))
            .map_err(|error| {
                render_plain(&SetupError::OutDir {
                    path: dir.clone(),
                    error,
                })
            })?,
        None => {
            let temp = tempfile::Builder::new()
                .prefix("quire-ci-")
                .tempdir()
                .map_err(|error| {
                    render_plain(&SetupError::OutDir {
                        path: std::env::temp_dir(),
                        error,
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
        Err(err) => return set_up_failed(&emitter, render_plain(&SetupError::Runtime(err))),
    };
    let local = tokio::task::LocalSet::new();
    let end = local.block_on(&runtime, async {
        let stop = Stop::default();
        // Handlers go in now, before any job: a signal must never meet the
        // default action, and children reset the handlers that exist at the
        // first command (quire_core::ci::spawn).
        if let Some(signals) = StopSignals::install(&stop) {
            let temporary_out_dir = request.out_dir_is_temporary.then(|| request.out_dir.clone());
            tokio::task::spawn_local(signals.watch(stop.clone(), temporary_out_dir, reporter.clone()));
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
        run::run(request, emitter, stop).await
    });
    // A record failure was shown with the run's end, as its error.
    u8::try_from(end.exit_code()).unwrap_or(exit::FAILED)
}

/// SIGINT, SIGTERM and SIGHUP (the terminal closed, `kill -HUP`), caught.
/// First: ask the run to stop cleanly. Second SIGINT or SIGTERM: kill every
/// command's process group and exit at once.
struct StopSignals {
    /// None when SIGINT was ignored at start (see `install`).
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: tokio::signal::unix::Signal,
    /// None when SIGHUP was ignored at start (`nohup`): it stays ignored.
    hangup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install(stop: &Stop) -> Option<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        // The handler itself records the request, the moment the signal
        // comes: the task below hears of it only when the event loop runs,
        // and pipeline code holds the loop up (the load: without this, the
        // jobs would start before the task ran). Registered before tokio's
        // own action for the same signals, so it runs first.
        // A signal the shell set to ignored stays ignored, by the commands
        // too (quire_core::ci::spawn): SIGHUP under `nohup` (quire-ci was
        // meant to outlive its terminal), SIGINT in a job a script put in
        // the background (Ctrl-C at the terminal is not for it).
        let interrupt = !ignored(libc::SIGINT);
        let hangup = !ignored(libc::SIGHUP);
        for (sig, caught) in [(libc::SIGINT, interrupt), (libc::SIGTERM, true), (libc::SIGHUP, hangup)] {
            if !caught {
                continue;
            }
            let stop = stop.clone();
            // SAFETY: the action is async-signal-safe: one atomic operation on
            // memory it owns, no allocation, no lock.
            unsafe { signal_hook_registry::register(sig, move || stop.request(sig)) }.ok()?;
        }
        Some(StopSignals {
            interrupt: interrupt.then(|| signal(SignalKind::interrupt())).transpose().ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
            hangup: hangup.then(|| signal(SignalKind::hangup())).transpose().ok()?,
        })
    }

    /// `temporary_out_dir`: the log directory that is removed at exit, which
    /// the second signal's exit must remove too.
    /// `reporter`: where the notices go, so they clear the live status line.
    async fn watch(self, stop: Stop, temporary_out_dir: Option<PathBuf>, reporter: Rc<RefCell<Reporter<Stderr>>>) {
        let StopSignals {
            mut interrupt,
            mut terminate,
            mut hangup,
        } = self;
        let mut received = false;
        loop {
            let signal = tokio::select! {
                () = caught(&mut interrupt) => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
                () = caught(&mut hangup) => libc::SIGHUP,
            };
            if received {
                // A hang-up comes more than once: the shell passes the
                // terminal's on to its jobs, and the kernel sends the old
                // foreground group another as the shell exits. That is
                // nobody asking to hurry: the stop under way goes on
                // (SIGINT or SIGTERM still cut it short).
                if signal == libc::SIGHUP {
                    continue;
                }
                // exit() skips the orderly stop; take the commands' backgrounded children down too.
                quire_core::ci::process::kill_all_groups();
                // And it drops nothing: the temporary log directory goes by
                // hand. Nothing else writes there now (this thread writes the
                // logs, and is here); deleting files waits on nothing.
                if let Some(dir) = &temporary_out_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                reporter.borrow_mut().notice("quire-ci: second signal, exiting now");
                std::process::exit(128 + signal);
            }
            received = true;
            // After a hang-up there may be no terminal to show this on: the
            // reporter lets the write fail, and the run stops all the same.
            let again = match signal {
                libc::SIGHUP => "send SIGINT or SIGTERM",
                _ => "send it again",
            };
            reporter.borrow_mut().notice(&format!(
                "quire-ci: stopping (signal {signal}); {again} to exit at once"
            ));
            // The handler has recorded it already; asking again changes
            // nothing, and keeps this task right on its own.
            stop.request(signal);
            stop.wake();
        }
    }
}

/// The next of `signal`; never, when it is not caught.
async fn caught(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether `sig` is ignored (SIG_IGN) now.
fn ignored(sig: libc::c_int) -> bool {
    // SAFETY: with no new action, sigaction only fills in `action`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut action) == 0 && action.sa_sigaction == libc::SIG_IGN
    }
}
