//! Running one command: spawn, stream its output into a CRI log as it comes,
//! capture it for the caller, enforce a timeout, obey cancellation, and make
//! sure nothing it started outlives it.
//!
//! The child runs in its own process group with stdin on /dev/null, and gets
//! `PR_SET_PDEATHSIG=SIGKILL`. While it runs its group is listed for the
//! watchdog, which kills the group if the runner dies without running any
//! code of its own ([`super::watchdog`]). stdout and stderr are read
//! concurrently in chunks; each chunk is captured raw (capped), redacted as a
//! stream, cut into CRI pieces, written to the log and handed to `on_line`.
//! Memory stays bounded by the read buffers, the log buffer, one line piece
//! per stream and the capture cap, whatever the command prints.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::thread::LocalKey;
use std::time::Duration;

use std::os::fd::{AsFd, OwnedFd};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::watch;
use tokio::time::Instant;

pub use super::cri::OutputStream;
use super::cri::{self, LineSplitter};
use super::exits::ExitWatch;
use super::spawn::{self, Program};
use super::watchdog;
use crate::secret::{Redactor, StreamRedactor};

/// The most output of each stream returned to the caller (the log keeps all).
pub const CAPTURE_LIMIT: usize = 16 * 1024 * 1024;
/// Exit code of a command that ran past its timeout.
pub const EXIT_TIMED_OUT: i32 = 124;
/// Exit code of a command that could not be started.
pub const EXIT_CANNOT_RUN: i32 = 127;
/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// Size of each pipe read: the kernel's default pipe capacity.
const READ_BUF: usize = 64 * 1024;
const LOG_BUF: usize = 64 * 1024;
/// After the command exits, how long at least we wait for its pipes to close
/// (only something that left the process group can keep them open).
const MIN_DRAIN: Duration = Duration::from_millis(500);
/// Reads at most made at once without waiting (at the reap, and when giving
/// up on a pipe): a writer outside the process group may never stop.
const FINAL_READS: usize = 16;
/// How long a command runs before its pipes are registered with the reactor.
///
/// Registration is lazy because most commands are short: one that is over
/// sooner has its pipes read straight after the reap, where they end (see
/// [`spawn::Spawned::writers`]), and they are never registered. That saves
/// two epoll registrations and their removal, and, where pipes honour
/// `RWF_NOWAIT`, the two fcntl making the read ends non-blocking. Measured
/// on a 2-CPU VM for `runtime.sh "true"`: 17 system calls a command instead
/// of 23, 40 000 instructions instead of 43 000, and about 6 µs less of the
/// runner's CPU (docs/performance.md).
///
/// 5 ms, not less: `sh -c true` takes about 0.6 ms, but on that VM a wait
/// with a timeout due before the kernel's next tick (4 ms apart at HZ=250)
/// cost a few µs more CPU than one without (the timer device reprogrammed
/// when the wait starts, and again when the exit cuts it short, it seems),
/// one of 5 ms or more nothing: with 1 ms the runner spent more CPU than
/// before, not less. It is also the most a command's first output waits to
/// be streamed, and the most a command that fills a pipe (64 KiB) sooner
/// waits for it to be read: 5 to 6 ms, as tokio's timer rounds a deadline
/// up to the next millisecond.
const REGISTER_AFTER: Duration = Duration::from_millis(5);

/// What a pipe holds before its writer waits (Linux's default capacity).
const PIPE_CAPACITY: u64 = 64 * 1024;

thread_local! {
    /// Whether the last command run on this thread wrote at least a pipe's
    /// worth on one stream. Such a command, with its pipes not yet watched,
    /// waits up to [`REGISTER_AFTER`] for them to be read; the command after
    /// a loud one most likely is loud too (a job reading files, listing,
    /// diffing), so it has its pipes watched from the start. 100 commands
    /// writing 200 KiB each at once (`perf stat -r 5`, 2 CPUs): 0.74 s with
    /// the wait every time, 0.20 s with it only the first time, as before
    /// registration was lazy.
    static LAST_WAS_LOUD: Cell<bool> = const { Cell::new(false) };
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// Run directly, no shell. Must be non-empty (an empty one cannot be run, exit 127).
    Argv(Vec<String>),
}

impl CommandLine {
    /// The command as shown to people and in `sh_started.cmd`: a shell string
    /// as given; argv words joined by spaces, each POSIX-quoted only if needed.
    pub fn display(&self) -> String {
        match self {
            CommandLine::Shell(s) => s.clone(),
            CommandLine::Argv(words) => {
                let quoted: Vec<Cow<'_, str>> = words.iter().enumerate().map(|(i, w)| shell_quote(w, i == 0)).collect();
                quoted.join(" ")
            }
        }
    }
}

impl CommandLine {
    /// [`CommandLine::display`] with every secret masked. Argv words are
    /// redacted before quoting, since quoting a secret that holds a `'` would
    /// split it (`it's` shows as `'it'\''s'`) so the display no longer
    /// contains it; the joined line is redacted again for secrets spanning words.
    pub fn display_redacted(&self, redactor: &Redactor) -> String {
        match self {
            CommandLine::Shell(s) => redactor.redact_str(s),
            CommandLine::Argv(words) => {
                let redacted: Vec<String> = words.iter().map(|w| redactor.redact_str(w)).collect();
                redactor.redact_str(&CommandLine::Argv(redacted).display())
            }
        }
    }
}

/// Quote `word` for a POSIX shell if it is not made of plainly safe
/// characters. A first word with `=` would read as an assignment, so it is
/// quoted too.
fn shell_quote(word: &str, first: bool) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
        && !(first && word.contains('='));
    if safe {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct ShRequest {
    pub command: CommandLine,
    pub cwd: PathBuf,
    /// Added to (or overriding) the runner's own environment.
    pub env: Vec<(String, String)>,
    /// None, or one too long for the clock to count (`Duration::MAX`): no timeout.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL on timeout or cancellation.
    pub kill_grace: Duration,
    /// The CRI log; parent directories are created.
    pub log_path: PathBuf,
    pub log_made: LogMade,
}

/// When a command's log file is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogMade {
    /// Before the command starts: every command has a log, and a log that
    /// cannot be made stops the command from running.
    #[default]
    BeforeStart,
    /// At the command's first output, for logs nobody reads once the run is
    /// over (a temporary out-dir): a silent command then costs no file.
    AtFirstOutput,
}

impl ShRequest {
    /// A request with no extra env, no timeout, the default grace and cap.
    pub fn new(command: CommandLine, cwd: impl Into<PathBuf>, log_path: impl Into<PathBuf>) -> Self {
        ShRequest {
            command,
            cwd: cwd.into(),
            env: Vec::new(),
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
            log_path: log_path.into(),
            log_made: LogMade::BeforeStart,
        }
    }
}

/// How a command ended and what it printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShOutput {
    /// The exit code; 128+N if killed by signal N; 124 on timeout; 127 if it could not start.
    pub exit_code: i32,
    /// Raw (unredacted) output, at most [`CAPTURE_LIMIT`] bytes each.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
    pub cancelled: bool,
    /// Why the command could not be started (exit 127), secrets masked.
    pub not_started: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShError {
    /// The log could not be created or written: the run must stop (exit 3).
    #[error("cannot write command log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
        /// How the command ended, if it was started: the code it exited
        /// with (as in [`ShOutput::exit_code`]), or 137 when it was still
        /// running and was killed for this. None when the log could not be
        /// made before the command was to start, so nothing ran.
        exit_code: Option<i32>,
    },
}

/// The instant `wait` from now, or `None` when the clock cannot count that
/// far (a timeout of `u64::MAX` seconds, `math.huge` from Lua): no command
/// can run that long, so such a wait never ends. tokio rounds a deadline up
/// to the next millisecond, which must not overflow either, hence the second
/// of headroom asked for.
fn deadline_after(wait: Duration) -> Option<Instant> {
    let at = Instant::now().checked_add(wait)?;
    at.checked_add(Duration::from_secs(1))?;
    Some(at)
}

/// Run one command to its end. See the module docs.
///
/// `on_line` gets every piece written to the log (redacted, no newline).
/// Cancellation: once `*cancel.borrow()` is true the process group gets
/// SIGTERM, then SIGKILL after `kill_grace`. If it is already true on entry the
/// command is not started (`cancelled`, exit 143). Dropping the future kills
/// the process group. A log that cannot be written ends the command (killed
/// if it still runs): [`ShError::Log`] says how it ended.
pub async fn run(
    req: &ShRequest,
    redactor: &Redactor,
    on_line: &mut dyn FnMut(OutputStream, &[u8]),
    cancel: &mut watch::Receiver<bool>,
) -> Result<ShOutput, ShError> {
    run_with_capture_limit(req, CAPTURE_LIMIT, redactor, on_line, cancel).await
}

/// [`run`] with another cap on the captured output (tests use small ones).
pub async fn run_with_capture_limit(
    req: &ShRequest,
    capture_limit: usize,
    redactor: &Redactor,
    on_line: &mut dyn FnMut(OutputStream, &[u8]),
    cancel: &mut watch::Receiver<bool>,
) -> Result<ShOutput, ShError> {
    let mut log = LogFile::new(&req.log_path, req.log_made)?;
    if *cancel.borrow_and_update() {
        log.flush()?;
        return Ok(ShOutput {
            exit_code: 128 + libc::SIGTERM,
            cancelled: true,
            ..ShOutput::default()
        });
    }

    let (mut child, mut group, [mut stdout, mut stderr]) = match spawn(req) {
        Ok(started) => started,
        Err(err) => return cannot_run(req, &err, redactor, &mut log, on_line),
    };

    let mut out = Capture::new(OutputStream::Stdout, redactor, capture_limit);
    let mut err = Capture::new(OutputStream::Stderr, redactor, capture_limit);
    let mut out_buf = Pooled::read();
    let mut err_buf = Pooled::read();
    let mut scratch = Vec::new();

    let mut phase = Phase::Running;
    let mut status: Option<ExitStatus> = None;
    let mut timed_out = false;
    let mut cancelled = false;
    let mut cancel_live = true;
    // One timer for whatever comes next: the timeout, the SIGKILL after a
    // SIGTERM, or the end of draining.
    let mut deadline = req.timeout.and_then(deadline_after);
    let timer = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now));
    tokio::pin!(timer);
    // The pipes are registered lazily, see REGISTER_AFTER.
    let mut watched = false;
    // After a loud command, at once (see LAST_WAS_LOUD).
    let mut outlived = LAST_WAS_LOUD.get();
    let register_timer = tokio::time::sleep(REGISTER_AFTER);
    tokio::pin!(register_timer);

    // The `?`s below end the command early: the log cannot be written.
    let streamed: Result<(), ShError> = async {
        while out.open || err.open || status.is_none() {
            // Watch the pipes once the command has outlived REGISTER_AFTER
            // (unless it has just exited: the reap reads them, on this turn),
            // is being stopped, or has exited leaving one open.
            let needed = match phase {
                Phase::Running => outlived && !child.may_have_exited(),
                Phase::Terminating | Phase::Killed | Phase::Draining => true,
            };
            if !watched && needed && (out.open || err.open) {
                watched = true;
                let mut registered = Ok(());
                if out.open {
                    registered = stdout.watch();
                }
                if err.open && registered.is_ok() {
                    registered = stderr.watch();
                }
                if let Err(e) = registered {
                    // Its output can no longer be read: the command is stopped, and its log says why.
                    if status.is_none() {
                        group.signal(libc::SIGKILL);
                        phase = Phase::Killed;
                        deadline = None;
                    }
                    out.finish(&mut log, on_line)?;
                    err.finish(&mut log, on_line)?;
                    let message = format!("quire-ci: cannot read the command's output: {e}");
                    note(&mut log, on_line, message.as_bytes())?;
                    log.flush()?;
                }
            }
            tokio::select! {
                read = stdout.read(&mut out_buf), if out.open && watched => {
                    out.take(read, &out_buf, &mut log, on_line, &mut scratch)?;
                    log.flush()?;
                }
                read = stderr.read(&mut err_buf), if err.open && watched => {
                    err.take(read, &err_buf, &mut log, on_line, &mut scratch)?;
                    log.flush()?;
                }
                waited = child.wait(), if status.is_none() => {
                    // Nothing may outlive the command, and a leftover background
                    // job would hold the pipes open.
                    group.signal(libc::SIGKILL);
                    group.disarm();
                    // A failed wait means the child is gone without a status
                    // (someone else reaped it); the group was just killed.
                    status = Some(waited.unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL)));
                    phase = Phase::Draining;
                    deadline = deadline_after(req.kill_grace.max(MIN_DRAIN));
                    // Usually the pipes hold the last output and their end now:
                    // read them straight away rather than after another turn of
                    // the event loop.
                    out.take_now(&stdout, &mut out_buf, &mut log, on_line, &mut scratch)?;
                    err.take_now(&stderr, &mut err_buf, &mut log, on_line, &mut scratch)?;
                    log.flush()?;
                }
                () = &mut register_timer, if !watched && !outlived && status.is_none() => outlived = true,
                changed = cancel.changed(), if cancel_live && status.is_none() => {
                    match changed {
                        Err(_) => cancel_live = false, // sender gone: no cancellation any more
                        Ok(()) => {
                            if *cancel.borrow_and_update() && !cancelled {
                                cancelled = true;
                                if phase == Phase::Running {
                                    group.signal(libc::SIGTERM);
                                    phase = Phase::Terminating;
                                    deadline = deadline_after(req.kill_grace);
                                }
                            }
                        }
                    }
                }
                () = &mut timer, if deadline.is_some() => {
                    match phase {
                        Phase::Running => {
                            timed_out = true;
                            group.signal(libc::SIGTERM);
                            phase = Phase::Terminating;
                            deadline = deadline_after(req.kill_grace);
                        }
                        Phase::Terminating => {
                            group.signal(libc::SIGKILL);
                            phase = Phase::Killed;
                            deadline = None;
                        }
                        // Something outside the group still holds a pipe: take
                        // what is already in it, then stop reading.
                        Phase::Killed | Phase::Draining => {
                            out.take_now(&stdout, &mut out_buf, &mut log, on_line, &mut scratch)?;
                            err.take_now(&stderr, &mut err_buf, &mut log, on_line, &mut scratch)?;
                            break;
                        }
                    }
                }
            }
            if let Some(at) = deadline
                && timer.deadline() != at
            {
                timer.as_mut().reset(at);
            }
        }

        // Whatever was cut short by a break still gets its last line out.
        out.finish(&mut log, on_line)?;
        err.finish(&mut log, on_line)?;
        log.flush()?;
        log.verify_in_place()
    }
    .await;

    LAST_WAS_LOUD.set(out.read.max(err.read) >= PIPE_CAPACITY);

    if let Err(ShError::Log { path, source, .. }) = streamed {
        // The run stops: a command still running is killed now, and reaped
        // to tell what really happened (it may have exited just before).
        if status.is_none() {
            group.signal(libc::SIGKILL);
            // SIGKILL takes effect at once, short of a process stuck in the kernel.
            let reaped = tokio::time::timeout(req.kill_grace.max(MIN_DRAIN), child.wait()).await;
            status = reaped.ok().and_then(Result::ok);
            group.disarm();
        }
        return Err(ShError::Log {
            path,
            source,
            exit_code: Some(final_code(status, timed_out)),
        });
    }

    Ok(ShOutput {
        exit_code: final_code(status, timed_out),
        stdout: out.captured,
        stderr: err.captured,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        timed_out,
        cancelled,
        not_started: None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// SIGTERM sent, SIGKILL at the deadline.
    Terminating,
    Killed,
    /// The command exited; reading what is left in the pipes.
    Draining,
}

/// The code a command ended with: 124 if it ran past its timeout, else its
/// status; 137 if it was killed and could not be reaped.
fn final_code(status: Option<ExitStatus>, timed_out: bool) -> i32 {
    if timed_out {
        EXIT_TIMED_OUT
    } else {
        status.map_or(128 + libc::SIGKILL, exit_code)
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 128 + libc::SIGKILL,
    }
}

/// Start the command, its process group listed (see [`list_group_of`]).
/// Returns the read ends of its stdout and stderr too, not yet watched.
fn spawn(req: &ShRequest) -> io::Result<(Child, GroupKill, [ReadEnd; 2])> {
    let program = match &req.command {
        CommandLine::Shell(script) => Program::shell(script, &req.env)?,
        CommandLine::Argv(words) => Program::argv(words, &req.env)?,
    };
    let exits = ExitWatch::new()?;
    let spawned = list_group_of(|slot| spawn::spawn(&program, &req.cwd, slot))?;
    // The child leads its own process group: the group id is its pid. From
    // here on, dropping `group` kills it and unlists it, and dropping `child`
    // kills and reaps the process.
    let group = GroupKill {
        pgid: Some(spawned.pid),
    };
    let child = Child {
        pid: spawned.pid,
        writers: Some(spawned.writers),
        exits,
        reaped: false,
    };
    let pipes = [ReadEnd::Direct(spawned.stdout), ReadEnd::Direct(spawned.stderr)];
    Ok((child, group, pipes))
}

/// The read end of the command's stdout or stderr.
enum ReadEnd {
    /// Not registered with the reactor (see [`REGISTER_AFTER`]): read only
    /// by [`ReadEnd::read_now`], which never waits.
    Direct(OwnedFd),
    /// Registered and non-blocking: read as output comes.
    Watched(pipe::Receiver),
    /// Could not be registered: read no more.
    Lost,
}

impl ReadEnd {
    /// Register with the reactor, to be read as output comes.
    fn watch(&mut self) -> io::Result<()> {
        *self = match std::mem::replace(self, ReadEnd::Lost) {
            ReadEnd::Direct(fd) => {
                #[cfg(test)]
                tests::WATCHED.with(|n| n.set(n.get() + 1));
                spawn::set_nonblocking(fd.as_fd())?;
                ReadEnd::Watched(pipe::Receiver::from_owned_fd_unchecked(fd)?)
            }
            watched => watched,
        };
        Ok(())
    }

    /// Wait for output and read it; only a watched pipe ever gets any.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadEnd::Watched(pipe) => pipe.read(buf).await,
            ReadEnd::Direct(_) | ReadEnd::Lost => std::future::pending().await,
        }
    }

    /// Read what the pipe holds right now: WouldBlock when it is empty but
    /// something outside the process group still holds it.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadEnd::Direct(fd) => spawn::read_now(fd.as_fd(), buf),
            ReadEnd::Watched(pipe) => spawn::read_now(pipe.as_fd(), buf),
            ReadEnd::Lost => Ok(0),
        }
    }
}

/// A running command: `wait` reaps it; dropped before that, it is SIGKILLed
/// and reaped later.
struct Child {
    pid: libc::pid_t,
    /// Closed once the process is reaped (see [`spawn::Spawned::writers`]).
    writers: Option<[OwnedFd; 2]>,
    exits: ExitWatch,
    reaped: bool,
}

impl Child {
    /// Whether the process may have exited, asked without a system call.
    fn may_have_exited(&self) -> bool {
        self.exits.may_have_exited()
    }

    /// Wait for the exit. Cancel-safe: the select loop in `run` polls a new one each turn.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        let reaped = self.exits.reap(self.pid).await;
        // Exited (or gone): the pipes may now end, once what the process left behind is read.
        self.writers = None;
        self.reaped = reaped.is_ok();
        reaped.map(ExitStatus::from_raw)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            spawn::abandon(self.pid);
        }
    }
}

/// Exit 127: say why in the log (as a stderr line), to `on_line`, and in the
/// captured stderr.
fn cannot_run(
    req: &ShRequest,
    err: &io::Error,
    redactor: &Redactor,
    log: &mut LogFile,
    on_line: &mut dyn FnMut(OutputStream, &[u8]),
) -> Result<ShOutput, ShError> {
    let program = match &req.command {
        CommandLine::Shell(_) => "/bin/sh".to_string(),
        CommandLine::Argv(words) => words.first().cloned().unwrap_or_default(),
    };
    // A missing working directory makes exec fail with ENOENT too; name the real cause.
    let reason = match std::fs::metadata(&req.cwd) {
        Err(e) => format!("working directory {}: {e}", req.cwd.display()),
        Ok(m) if !m.is_dir() => {
            format!("working directory {} is not a directory", req.cwd.display())
        }
        Ok(_) => err.to_string(),
    };
    let not_started = redactor.redact_str(&format!("cannot run \"{program}\": {reason}"));
    let message = format!("quire-ci: {not_started}").into_bytes();
    note(log, on_line, &message)?;
    log.flush()?;
    let mut stderr = message;
    stderr.push(b'\n');
    Ok(ShOutput {
        exit_code: EXIT_CANNOT_RUN,
        stderr,
        not_started: Some(not_started),
        ..ShOutput::default()
    })
}

/// A line of the runner's own among the command's stderr, in the log and to `on_line`.
fn note(log: &mut LogFile, on_line: &mut dyn FnMut(OutputStream, &[u8]), message: &[u8]) -> Result<(), ShError> {
    log.stamp_now();
    for (partial, text) in cri::pieces(message) {
        log.piece(OutputStream::Stderr, partial, text)?;
        on_line(OutputStream::Stderr, text);
    }
    Ok(())
}

/// Process groups of commands that are running, for [`kill_all_groups`]
/// (and mirrored in the watchdog's table).
static LIVE_GROUPS: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

fn live_groups() -> std::sync::MutexGuard<'static, Vec<libc::pid_t>> {
    // The list stays valid even if a holder panicked.
    LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start a command with `start`, its group listed here and in the
/// watchdog's table before it can start anything of its own: a slot is
/// reserved (empty) before the clone, and `start` hands it to the child,
/// which writes its group there before its exec. Listing it after the clone
/// left a moment in which a runner killed outright would leave what `sh`
/// started running. The list is locked throughout, so no other thread's
/// group moves into the reserved slot meanwhile.
fn list_group_of(
    start: impl FnOnce(Option<&'static std::sync::atomic::AtomicI32>) -> io::Result<spawn::Spawned>,
) -> io::Result<spawn::Spawned> {
    let mut groups = live_groups();
    let index = groups.len();
    groups.push(0); // not a group: skipped by every kill until it is one
    watchdog::set_slot(index, 0);
    watchdog::set_count(groups.len());
    match start(watchdog::slot(index)) {
        Ok(spawned) => {
            groups[index] = spawned.pid;
            watchdog::set_slot(index, spawned.pid);
            Ok(spawned)
        }
        Err(err) => {
            remove_group_at(&mut groups, index);
            Err(err)
        }
    }
}

/// Unlist a group. The last one moves into its place: in the watchdog's
/// table, before the count goes down, so a running group is never missing
/// from it (see [`watchdog`]).
fn unlist_group(pgid: libc::pid_t) {
    let mut groups = live_groups();
    if let Some(index) = groups.iter().position(|&g| g == pgid) {
        remove_group_at(&mut groups, index);
    }
}

fn remove_group_at(groups: &mut Vec<libc::pid_t>, index: usize) {
    groups.swap_remove(index);
    if let Some(&moved) = groups.get(index) {
        watchdog::set_slot(index, moved);
    }
    watchdog::set_count(groups.len());
}

/// SIGKILL the process group of every command now running.
///
/// For a runner about to exit without unwinding (`std::process::exit` on a
/// second signal): the parent-death signal only reaches each command's
/// direct child, not what that child started in the background. (A runner
/// that dies without running any code leaves this to the watchdog.)
pub fn kill_all_groups() {
    // Above 1: kill(-1) would mean every process (and 0 is a reserved slot).
    for &pgid in live_groups().iter().filter(|&&pgid| pgid > 1) {
        // SAFETY: plain syscall; ESRCH (group already gone) is fine.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Signals the command's process group; SIGKILLs it when dropped (an early
/// return or the caller dropping the future) unless disarmed.
/// A listed process group (see [`list_group_of`]): dropped, it is killed and unlisted.
struct GroupKill {
    pgid: Option<libc::pid_t>,
}

impl GroupKill {
    fn signal(&self, sig: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: plain syscall; ESRCH (group already gone) is fine.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }

    /// Stop tracking the group: its leader has been reaped, so the id may
    /// soon belong to someone else.
    fn disarm(&mut self) {
        if let Some(p) = self.pgid.take() {
            unlist_group(p);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        self.disarm();
    }
}

/// One output stream on its way to the caller, the log and `on_line`.
struct Capture<'r> {
    stream: OutputStream,
    open: bool,
    redact: StreamRedactor<&'r Redactor>,
    lines: LineSplitter,
    captured: Vec<u8>,
    truncated: bool,
    limit: usize,
    /// Bytes read from the pipe so far.
    read: u64,
}

impl<'r> Capture<'r> {
    fn new(stream: OutputStream, redactor: &'r Redactor, limit: usize) -> Self {
        Capture {
            stream,
            open: true,
            redact: redactor.stream(),
            lines: LineSplitter::new(),
            captured: Vec::new(),
            truncated: false,
            limit,
            read: 0,
        }
    }

    /// Handle the result of one read: a chunk, or the end of the stream.
    fn take(
        &mut self,
        read: io::Result<usize>,
        buf: &[u8],
        log: &mut LogFile,
        on_line: &mut dyn FnMut(OutputStream, &[u8]),
        scratch: &mut Vec<u8>,
    ) -> Result<(), ShError> {
        let n = match read {
            Ok(0) | Err(_) => return self.finish(log, on_line),
            Ok(n) => n.min(buf.len()),
        };
        let chunk = &buf[..n];
        self.read += n as u64;
        let room = self.limit.saturating_sub(self.captured.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.captured.extend_from_slice(&chunk[..chunk.len().min(room)]);

        log.stamp_now();
        let stream = self.stream;
        let redacted = self.redact.push(chunk, scratch);
        self.lines.push(redacted, |partial, text| {
            log.piece(stream, partial, text)?;
            on_line(stream, text);
            Ok(())
        })
    }

    /// Read what `pipe` holds right now with reads that never wait
    /// (bounded: a writer outside the process group may never stop), up to
    /// its end or until it would block.
    fn take_now(
        &mut self,
        pipe: &ReadEnd,
        buf: &mut [u8],
        log: &mut LogFile,
        on_line: &mut dyn FnMut(OutputStream, &[u8]),
        scratch: &mut Vec<u8>,
    ) -> Result<(), ShError> {
        for _ in 0..FINAL_READS {
            if !self.open {
                break;
            }
            match pipe.read_now(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => self.take(read, buf, log, on_line, scratch)?,
            }
        }
        Ok(())
    }

    /// The stream ended (or we stopped reading): flush held-back bytes.
    fn finish(&mut self, log: &mut LogFile, on_line: &mut dyn FnMut(OutputStream, &[u8])) -> Result<(), ShError> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        log.stamp_now();
        let stream = self.stream;
        let tail = self.redact.finish();
        let mut emit = |partial: bool, text: &[u8]| {
            log.piece(stream, partial, text)?;
            on_line(stream, text);
            Ok::<(), ShError>(())
        };
        self.lines.push(&tail, &mut emit)?;
        self.lines.finish(&mut emit)
    }
}

/// A log file, and which file it is (device and inode), to tell later
/// whether its path still leads to it.
struct OpenLog {
    file: std::fs::File,
    id: (u64, u64),
}

/// The CRI log of one command.
struct LogFile {
    path: PathBuf,
    /// None until made, with [`LogMade::AtFirstOutput`].
    file: Option<OpenLog>,
    /// Pieces not yet written to the file.
    buf: Pooled,
    /// Timestamp of the read being written, formatted once per read, and
    /// only when the read gives a piece to write (an end of stream gives none).
    stamp: String,
    read_at: Option<jiff::Timestamp>,
}

impl LogFile {
    fn new(path: &Path, made: LogMade) -> Result<Self, ShError> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: match made {
                LogMade::BeforeStart => Some(LogFile::create(path)?),
                LogMade::AtFirstOutput => None,
            },
            buf: Pooled::log(),
            stamp: String::new(),
            read_at: None,
        })
    }

    fn create(path: &Path) -> Result<OpenLog, ShError> {
        use std::os::unix::fs::MetadataExt;
        let fail = |source| ShError::Log {
            path: path.to_path_buf(),
            source,
            exit_code: None,
        };
        // Not O_TRUNC: truncating a file updates its inode even when it is
        // empty already (a journal transaction on ext4), and a reused
        // --out-dir holds the empty logs of silent commands.
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        };
        // The job's directory exists from its first command on: try the file first.
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(fail)?;
                }
                open()
            }
            opened => opened,
        }
        .map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if meta.len() > 0 {
            file.set_len(0).map_err(fail)?;
        }
        Ok(OpenLog {
            file,
            id: (meta.dev(), meta.ino()),
        })
    }

    fn stamp_now(&mut self) {
        self.read_at = Some(jiff::Timestamp::now());
    }

    fn piece(&mut self, stream: OutputStream, partial: bool, text: &[u8]) -> Result<(), ShError> {
        // Timestamp, stream, tag and newline take under 64 bytes.
        if self.buf.len() + text.len() + 64 > LOG_BUF {
            self.flush()?;
        }
        if let Some(at) = self.read_at.take() {
            self.stamp = cri::format_timestamp(at);
        }
        // Writing to a Vec cannot fail.
        let _ = cri::write_piece(&mut *self.buf, &self.stamp, stream, partial, text);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ShError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(LogFile::create(&self.path)?),
        };
        let written = file.file.write_all(&self.buf);
        self.buf.clear();
        written.map_err(|e| self.fail(e))
    }

    /// Writes into a log file that was removed (or replaced) still succeed,
    /// into a file no one will read: the last write is checked to have
    /// reached the file the path leads to.
    fn verify_in_place(&self) -> Result<(), ShError> {
        use std::os::unix::fs::MetadataExt;
        let Some(open) = &self.file else {
            return Ok(()); // nothing written, no file made
        };
        let in_place = match std::fs::metadata(&self.path) {
            Ok(on_disk) => (on_disk.dev(), on_disk.ino()) == open.id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(self.fail(e)),
        };
        if in_place {
            Ok(())
        } else {
            Err(self.fail(io::Error::other(
                "the log file was removed or replaced while the command ran",
            )))
        }
    }

    /// The command's end is filled in by [`run`], which knows it.
    fn fail(&self, source: io::Error) -> ShError {
        ShError::Log {
            path: self.path.clone(),
            source,
            exit_code: None,
        }
    }
}

/// Read and log buffers, kept for the next command on this thread: allocating
/// and zeroing 192 KiB for every command showed in the profile as page faults
/// and memset (docs/performance.md).
struct Pooled {
    buf: Vec<u8>,
    pool: &'static LocalKey<RefCell<Vec<Vec<u8>>>>,
}

thread_local! {
    static READ_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static LOG_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers of each kind kept; enough for a few commands running at once.
const SPARE_BUFS: usize = 8;

impl Pooled {
    fn take(pool: &'static LocalKey<RefCell<Vec<Vec<u8>>>>, new: fn() -> Vec<u8>) -> Pooled {
        let spare = pool.with(|p| p.borrow_mut().pop());
        Pooled {
            buf: spare.unwrap_or_else(new),
            pool,
        }
    }

    /// READ_BUF bytes to read into.
    fn read() -> Pooled {
        Pooled::take(&READ_BUFS, || vec![0; READ_BUF])
    }

    /// Empty, with room for LOG_BUF bytes.
    fn log() -> Pooled {
        Pooled::take(&LOG_BUFS, || Vec::with_capacity(LOG_BUF))
    }
}

impl std::ops::Deref for Pooled {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // At thread exit the pool may be gone already; then the buffer is just freed.
        let _ = self.pool.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut()
                && pool.len() < SPARE_BUFS
            {
                pool.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::rerun_alone;
    use std::time::Instant as StdInstant;

    thread_local! {
        /// Pipes registered with the reactor on this thread (each test's runtime runs on its own).
        pub(super) static WATCHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    type Lines = Vec<(OutputStream, Vec<u8>)>;

    struct Ran {
        out: ShOutput,
        /// The log with every timestamp checked and replaced by `TS`.
        log: String,
        /// What `on_line` got.
        seen: Lines,
        /// The log reassembled into logical lines.
        lines: Lines,
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn req(dir: &Path, command: CommandLine) -> ShRequest {
        ShRequest::new(command, dir, dir.join("logs/sh-1.log"))
    }

    fn sh(dir: &Path, script: &str) -> ShRequest {
        req(dir, CommandLine::Shell(script.to_string()))
    }

    fn run_with(req: &ShRequest, secrets: &[&str]) -> Ran {
        run_capped(req, secrets, CAPTURE_LIMIT)
    }

    fn run_capped(req: &ShRequest, secrets: &[&str], limit: usize) -> Ran {
        let redactor = Redactor::new(secrets.iter().map(|s| s.as_bytes().to_vec()));
        let (_tx, mut rx) = watch::channel(false);
        let mut seen = Vec::new();
        let mut on_line = |s, t: &[u8]| seen.push((s, t.to_vec()));
        let out = block_on(run_with_capture_limit(req, limit, &redactor, &mut on_line, &mut rx)).unwrap();
        finish(req, out, seen)
    }

    fn finish(req: &ShRequest, out: ShOutput, seen: Lines) -> Ran {
        let raw = std::fs::read(&req.log_path).unwrap();
        let lines = cri::reassemble(&raw).expect("log is CRI");
        let mut log = String::new();
        for line in raw.split_inclusive(|&b| b == b'\n') {
            let (ts, rest) = line.split_at(30);
            let ts = std::str::from_utf8(ts).unwrap();
            assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "timestamp {ts}");
            ts.parse::<jiff::Timestamp>().unwrap();
            log.push_str("TS");
            log.push_str(&String::from_utf8_lossy(rest));
        }
        Ran { out, log, seen, lines }
    }

    /// The log's lines of one stream, in order.
    fn stream_log(ran: &Ran, stream: OutputStream) -> Vec<&str> {
        let tag = format!(" {} ", stream.as_str());
        ran.log.lines().filter(|l| l.contains(&tag)).collect()
    }

    fn alive(pid: i32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after "(comm)": state is the 1st, flags the 7th. Its pipe
        // closing (what run() waits for) comes before it turns zombie, so a
        // process that is exiting (PF_EXITING) counts as dead, as does a
        // zombie nobody reaps.
        const PF_EXITING: u64 = 0x4;
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let exiting = fields
            .get(6)
            .and_then(|f| f.parse::<u64>().ok())
            .is_some_and(|f| f & PF_EXITING != 0);
        !(exiting || matches!(fields.first(), Some(&"Z") | Some(&"X")))
    }

    #[test]
    fn display_quotes_only_where_needed() {
        let argv = |w: &[&str]| CommandLine::Argv(w.iter().map(|s| s.to_string()).collect()).display();
        assert_eq!(argv(&["echo", "a b"]), "echo 'a b'");
        assert_eq!(argv(&["printf", "%s\\n", "x"]), r"printf '%s\n' x");
        assert_eq!(argv(&["echo", ""]), "echo ''");
        assert_eq!(argv(&["echo", "it's"]), r"echo 'it'\''s'");
        assert_eq!(
            argv(&["cargo", "build", "--release", "-p=a/b.c:1,@2+%"]),
            "cargo build --release -p=a/b.c:1,@2+%"
        );
        assert_eq!(argv(&["A=1", "B=2"]), "'A=1' B=2");
        assert_eq!(argv(&["echo", "$HOME", "~", "*", "é"]), "echo '$HOME' '~' '*' 'é'");
        let shell = CommandLine::Shell("echo 'a b' | wc".into());
        assert_eq!(shell.display(), "echo 'a b' | wc");
    }

    #[test]
    fn stdout_and_stderr_lines() {
        let dir = tempfile::tempdir().unwrap();
        let ran = run_with(&sh(dir.path(), "printf 'one\\n\\ntwo\\n'; printf 'oops\\n' >&2"), &[]);
        assert_eq!(ran.out.exit_code, 0);
        assert_eq!(ran.out.stdout, b"one\n\ntwo\n");
        assert_eq!(ran.out.stderr, b"oops\n");
        assert_eq!(
            stream_log(&ran, OutputStream::Stdout),
            ["TS stdout F one", "TS stdout F ", "TS stdout F two"]
        );
        assert_eq!(stream_log(&ran, OutputStream::Stderr), ["TS stderr F oops"]);
        assert_eq!(ran.seen.len(), 4);
        assert!(ran.seen.contains(&(OutputStream::Stderr, b"oops".to_vec())));
    }

    #[test]
    fn long_lines_split_and_last_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let ran = run_with(
            &sh(dir.path(), "head -c 40000 /dev/zero | tr '\\0' a; echo; printf tail"),
            &[],
        );
        let a = |n| "a".repeat(n);
        assert_eq!(
            stream_log(&ran, OutputStream::Stdout),
            [
                format!("TS stdout P {}", a(16384)),
                format!("TS stdout P {}", a(16384)),
                format!("TS stdout F {}", a(40000 - 2 * 16384)),
                "TS stdout F tail".to_string(),
            ]
        );
        assert_eq!(ran.seen.len(), 4);
        assert_eq!(ran.lines[0].1.len(), 40000);
    }

    #[test]
    fn non_utf8_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "printf 'a\\377\\376b\\r\\n'");
        let ran = run_with(&r, &[]);
        let raw = std::fs::read(&r.log_path).unwrap();
        assert!(raw.ends_with(b" stdout F a\xff\xfeb\r\n"), "{raw:?}");
        assert_eq!(ran.seen, [(OutputStream::Stdout, b"a\xff\xfeb\r".to_vec())]);
        assert_eq!(ran.out.stdout, b"a\xff\xfeb\r\n");
    }

    #[test]
    fn exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run_with(&sh(dir.path(), "true"), &[]).out.exit_code, 0);
        assert_eq!(run_with(&sh(dir.path(), "exit 3"), &[]).out.exit_code, 3);
        let killed = run_with(&sh(dir.path(), "kill -9 $$"), &[]).out;
        assert_eq!(
            (killed.exit_code, killed.timed_out, killed.cancelled),
            (137, false, false)
        );
        let argv = CommandLine::Argv(vec!["sh".into(), "-c".into(), "exit 42".into()]);
        assert_eq!(run_with(&req(dir.path(), argv), &[]).out.exit_code, 42);
    }

    #[test]
    fn environment_cwd_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(
            dir.path(),
            "echo \"$QUIRE_TEST_VAR\"; pwd; cat; echo \"${PATH:+has path}\"",
        );
        r.env.push(("QUIRE_TEST_VAR".into(), "value".into()));
        let ran = run_with(&r, &[]);
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            ran.out.stdout,
            format!("value\n{}\nhas path\n", cwd.display()).as_bytes()
        );
    }

    fn executable(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn argv_is_found_on_the_commands_own_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        executable(&bin.join("quire-tool"), "#!/bin/sh\necho found \"$1\"\n", 0o755);
        let mut r = req(dir.path(), CommandLine::Argv(vec!["quire-tool".into(), "it".into()]));
        r.env.push(("PATH".into(), format!("/nonexistent:{}", bin.display())));
        let ran = run_with(&r, &[]);
        assert_eq!(
            (ran.out.exit_code, ran.out.stdout.as_slice()),
            (0, b"found it\n".as_slice())
        );
    }

    #[test]
    fn a_file_without_an_interpreter_line_runs_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        executable(&dir.path().join("plain"), "echo plain \"$1\"\n", 0o755);
        let ran = run_with(
            &req(dir.path(), CommandLine::Argv(vec!["./plain".into(), "x".into()])),
            &[],
        );
        assert_eq!(
            (ran.out.exit_code, ran.out.stdout.as_slice()),
            (0, b"plain x\n".as_slice())
        );
    }

    #[test]
    fn a_file_that_is_not_executable_is_127_permission_denied() {
        let dir = tempfile::tempdir().unwrap();
        executable(&dir.path().join("data"), "echo no\n", 0o644);
        let ran = run_with(&req(dir.path(), CommandLine::Argv(vec!["./data".into()])), &[]);
        assert_eq!(ran.out.exit_code, 127);
        assert!(ran.log.contains("Permission denied"), "{}", ran.log);
    }

    #[test]
    fn children_get_no_blocked_signals_and_the_default_sigpipe() {
        let dir = tempfile::tempdir().unwrap();
        let argv = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
        let ran = run_with(
            &req(dir.path(), CommandLine::Argv(argv.map(String::from).to_vec())),
            &[],
        );
        let out = String::from_utf8(ran.out.stdout).unwrap();
        let mask = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{out}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn output_closed_before_the_exit_is_all_logged() {
        let dir = tempfile::tempdir().unwrap();
        let ran = run_with(
            &sh(dir.path(), "echo one; printf two; exec >&- 2>&-; sleep 0.2; exit 3"),
            &[],
        );
        assert_eq!(ran.out.exit_code, 3);
        assert_eq!(
            stream_log(&ran, OutputStream::Stdout),
            ["TS stdout F one", "TS stdout F two"]
        );
        assert_eq!(ran.out.stdout, b"one\ntwo");
    }

    #[test]
    fn own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let ran = run_with(&sh(dir.path(), "echo $$; cut -d' ' -f5 /proc/$$/stat"), &[]);
        let out = String::from_utf8(ran.out.stdout).unwrap();
        let ids: Vec<&str> = out.lines().collect();
        assert_eq!(ids[0], ids[1], "pid is the process group id");
    }

    #[test]
    fn timeout_terminates() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(dir.path(), "echo started; sleep 30");
        r.timeout = Some(Duration::from_millis(200));
        r.kill_grace = Duration::from_millis(200);
        let started = StdInstant::now();
        let ran = run_with(&r, &[]);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(
            (ran.out.exit_code, ran.out.timed_out, ran.out.cancelled),
            (124, true, false)
        );
        assert_eq!(ran.out.stdout, b"started\n");
    }

    #[test]
    fn timeout_kills_what_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(dir.path(), "trap '' TERM; sleep 30; echo survived");
        r.timeout = Some(Duration::from_millis(200));
        r.kill_grace = Duration::from_millis(200);
        let started = StdInstant::now();
        let ran = run_with(&r, &[]);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!((ran.out.exit_code, ran.out.timed_out), (124, true));
        assert_eq!(ran.out.stdout, b"");
    }

    #[test]
    fn waits_too_long_for_the_clock_never_end_and_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(dir.path(), "echo ran");
        r.timeout = Some(Duration::MAX);
        r.kill_grace = Duration::MAX;
        let ran = run_with(&r, &[]);
        assert_eq!((ran.out.exit_code, ran.out.timed_out), (0, false));
        assert_eq!(ran.out.stdout, b"ran\n");
        // Seconds that fit a Duration but not the clock (i64 seconds).
        r.timeout = Some(Duration::from_secs(i64::MAX as u64));
        let ran = run_with(&r, &[]);
        assert_eq!((ran.out.exit_code, ran.out.timed_out), (0, false));
        assert_eq!(deadline_after(Duration::MAX), None);
        assert!(deadline_after(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn missing_program_is_127() {
        let dir = tempfile::tempdir().unwrap();
        let r = req(
            dir.path(),
            CommandLine::Argv(vec!["quire-no-such-program".into(), "x".into()]),
        );
        let ran = run_with(&r, &[]);
        let msg = "quire-ci: cannot run \"quire-no-such-program\": No such file or directory (os error 2)";
        assert_eq!(ran.out.exit_code, 127);
        assert_eq!(ran.log, format!("TS stderr F {msg}\n"));
        assert_eq!(ran.seen, [(OutputStream::Stderr, msg.as_bytes().to_vec())]);
        assert_eq!(ran.out.stderr, format!("{msg}\n").as_bytes());

        let ran = run_with(&req(dir.path(), CommandLine::Argv(vec![])), &[]);
        assert_eq!(ran.out.exit_code, 127);
        assert!(ran.log.contains("cannot run \"\": empty command"), "{}", ran.log);
    }

    #[test]
    fn missing_cwd_is_127() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(dir.path(), "true");
        r.cwd = dir.path().join("gone");
        let ran = run_with(&r, &[]);
        assert_eq!(ran.out.exit_code, 127);
        let want = format!(
            "TS stderr F quire-ci: cannot run \"/bin/sh\": working directory {}: No such file or directory (os error 2)\n",
            r.cwd.display()
        );
        assert_eq!(ran.log, want);
    }

    #[test]
    fn a_log_left_by_an_earlier_run_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "echo new");
        std::fs::create_dir_all(r.log_path.parent().unwrap()).unwrap();
        std::fs::write(&r.log_path, "an earlier run's much longer log\n".repeat(100)).unwrap();
        let ran = run_with(&r, &[]);
        assert_eq!(ran.log, "TS stdout F new\n");
        // Silent: emptied.
        std::fs::write(&r.log_path, "old\n").unwrap();
        run_with(&sh(dir.path(), "true"), &[]);
        assert_eq!(std::fs::read(&r.log_path).unwrap(), b"");
    }

    #[test]
    fn a_log_made_at_first_output_is_made_only_for_commands_that_print() {
        let dir = tempfile::tempdir().unwrap();
        let (_tx, mut rx) = watch::channel(false);
        let mut n = 0;
        let mut at_first_output = |command: CommandLine| {
            n += 1;
            let mut r = req(dir.path(), command);
            r.log_path = dir.path().join(format!("jobs/j/sh-{n}.log"));
            r.log_made = LogMade::AtFirstOutput;
            let out = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx)).unwrap();
            (out.exit_code, std::fs::read_to_string(&r.log_path).ok())
        };
        let shell = |script: &str| CommandLine::Shell(script.into());
        assert_eq!(at_first_output(shell("exit 3")), (3, None));
        let (code, log) = at_first_output(shell("echo hi >&2"));
        assert_eq!(code, 0);
        assert!(log.as_deref().is_some_and(|l| l.ends_with(" stderr F hi\n")), "{log:?}");
        // A command that cannot start has its reason logged.
        let (code, log) = at_first_output(CommandLine::Argv(vec!["/nonexistent/tool".into()]));
        assert_eq!(code, EXIT_CANNOT_RUN);
        assert!(log.as_deref().is_some_and(|l| l.contains("cannot run")), "{log:?}");
    }

    #[test]
    fn unwritable_log_is_an_error_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let marker = dir.path().join("ran");
        let mut r = sh(dir.path(), "touch ran");
        r.log_path = dir.path().join("file/sh-1.log");
        let redactor = Redactor::default();
        let (_tx, mut rx) = watch::channel(false);
        let got = block_on(run(&r, &redactor, &mut |_, _| {}, &mut rx));
        let Err(ShError::Log { path, exit_code, .. }) = got else {
            panic!("expected a log error, got {got:?}");
        };
        assert_eq!(path, r.log_path);
        // Not started: no exit code of its own.
        assert_eq!(exit_code, None);
        assert!(!marker.exists());
    }

    #[test]
    fn a_log_removed_while_the_command_runs_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sh(dir.path(), "echo before; rm -r logs; echo after");
        r.log_path = dir.path().join("logs/sh-1.log");
        let (_tx, mut rx) = watch::channel(false);
        let got = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx));
        let Err(ShError::Log { path, source, .. }) = got else {
            panic!("expected a log error, got {got:?}");
        };
        assert_eq!(path, r.log_path);
        assert!(source.to_string().contains("removed or replaced"), "{source}");

        // Replaced by another file of the same name: the same.
        let mut r = sh(dir.path(), "rm logs/sh-1.log; echo new > logs/sh-1.log");
        r.log_path = dir.path().join("logs/sh-1.log");
        let got = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx));
        assert!(matches!(got, Err(ShError::Log { .. })), "{got:?}");
    }

    #[test]
    fn a_log_found_gone_after_the_command_ended_keeps_its_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "echo before; rm -r logs; echo after; exit 5");
        let (_tx, mut rx) = watch::channel(false);
        let got = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx));
        let Err(ShError::Log { exit_code, .. }) = got else {
            panic!("expected a log error, got {got:?}");
        };
        assert_eq!(exit_code, Some(5));
    }

    #[test]
    fn a_log_write_failing_while_the_command_runs_kills_it() {
        let dir = tempfile::tempdir().unwrap();
        // Every write to the log fails; the command prints its pid, then
        // waits for ever on a FIFO nobody writes to.
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        let r = sh(dir.path(), "echo $$; exec cat fifo");
        std::fs::create_dir_all(r.log_path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/full", &r.log_path).unwrap();
        let (_tx, mut rx) = watch::channel(false);
        let mut pid = None;
        let mut on_line = |_, t: &[u8]| pid = std::str::from_utf8(t).ok().and_then(|p| p.parse::<i32>().ok());
        let got = block_on(run(&r, &Redactor::default(), &mut on_line, &mut rx));
        let Err(ShError::Log { source, exit_code, .. }) = got else {
            panic!("expected a log error, got {got:?}");
        };
        assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{source}");
        // Killed by the runner (SIGKILL), and gone.
        assert_eq!(exit_code, Some(128 + libc::SIGKILL));
        let pid = pid.expect("the command printed its pid");
        assert!(!alive(pid), "command {pid} outlived its log");
    }

    #[test]
    fn display_redacted_masks_argv_words_before_quoting() {
        let redactor = Redactor::new([b"it's-s3cret".to_vec(), b"a b".to_vec()]);
        let argv = |w: &[&str]| CommandLine::Argv(w.iter().map(|s| s.to_string()).collect());
        // Quoted first, the secret would show as 'it'\''s-s3cret' and escape the mask.
        assert_eq!(
            argv(&["curl", "-H", "token=it's-s3cret", "x"]).display_redacted(&redactor),
            "curl -H 'token=***' x"
        );
        // A secret across two words is masked in the joined line.
        assert_eq!(argv(&["echo", "a", "b"]).display_redacted(&redactor), "echo ***");
        assert_eq!(
            CommandLine::Shell("echo it's-s3cret".into()).display_redacted(&redactor),
            "echo ***"
        );
    }

    #[test]
    fn cancel_terminates() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "echo started; sleep 30");
        let redactor = Redactor::default();
        let (tx, mut rx) = watch::channel(false);
        let mut seen = Vec::new();
        let mut on_line = |s, t: &[u8]| {
            // Cancel once the command is surely running.
            if t == b"started" {
                let _ = tx.send(true);
            }
            seen.push((s, t.to_vec()));
        };
        let started = StdInstant::now();
        let out = block_on(run(&r, &redactor, &mut on_line, &mut rx)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!((out.exit_code, out.cancelled, out.timed_out), (143, true, false));
        assert_eq!(out.stdout, b"started\n");
    }

    #[test]
    fn cancelled_before_start_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "touch ran");
        let (_tx, mut rx) = watch::channel(true);
        let out = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx)).unwrap();
        assert_eq!((out.exit_code, out.cancelled), (143, true));
        assert!(!dir.path().join("ran").exists());
        assert_eq!(std::fs::read(&r.log_path).unwrap(), b"");
    }

    #[test]
    fn dropped_cancel_sender_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "echo done");
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        let out = block_on(run(&r, &Redactor::default(), &mut |_, _| {}, &mut rx)).unwrap();
        assert_eq!((out.exit_code, out.cancelled), (0, false));
        assert_eq!(out.stdout, b"done\n");
    }

    #[test]
    fn capture_is_capped_but_log_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let r = sh(dir.path(), "printf '0123456789abcdef\\n'; printf 'short' >&2");
        let ran = run_capped(&r, &[], 10);
        assert_eq!(ran.out.stdout, b"0123456789");
        assert!(ran.out.stdout_truncated);
        assert_eq!(ran.out.stderr, b"short");
        assert!(!ran.out.stderr_truncated);
        assert_eq!(stream_log(&ran, OutputStream::Stdout), ["TS stdout F 0123456789abcdef"]);
    }

    #[test]
    fn redaction_across_reads_newlines_and_pieces() {
        let dir = tempfile::tempdir().unwrap();
        // The sleep splits the secret over two reads.
        let script = "printf 'sec'; sleep 0.1; printf 'ret!\\n'; \
                      printf 'a multi\\nline b\\n' >&2; \
                      head -c 16380 /dev/zero | tr '\\0' x; printf 'secret'; printf 'yyyy\\n'";
        let ran = run_with(&sh(dir.path(), script), &["secret", "multi\nline"]);
        assert_eq!(
            stream_log(&ran, OutputStream::Stdout),
            [
                "TS stdout F ***!".to_string(),
                format!("TS stdout P {}***y", "x".repeat(16380)),
                "TS stdout F yyy".to_string(),
            ]
        );
        assert_eq!(stream_log(&ran, OutputStream::Stderr), ["TS stderr F a *** b"]);
        assert!(ran.seen.contains(&(OutputStream::Stdout, b"***!".to_vec())));
        assert!(ran.seen.contains(&(OutputStream::Stderr, b"a *** b".to_vec())));
        // The caller gets the raw bytes.
        assert!(ran.out.stdout.starts_with(b"secret!\n"));
        assert_eq!(ran.out.stderr, b"a multi\nline b\n");
    }

    #[test]
    fn background_grandchild_is_killed_and_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let started = StdInstant::now();
        let ran = run_with(&sh(dir.path(), "sleep 60 & echo $!"), &[]);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(ran.out.exit_code, 0);
        let pid: i32 = String::from_utf8(ran.out.stdout).unwrap().trim().parse().unwrap();
        assert!(!alive(pid), "background sleep {pid} survived");
    }

    #[test]
    fn escaped_grandchild_holding_the_pipe_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        // sh ends as soon as the sleep has left its group (or the group's
        // kill could catch it first): a quick command, read without waiting
        // after the reap although the sleep holds its pipes.
        let script = "setsid sleep 60 & p=$!; echo $p; \
                      until read -r _ _ _ _ g _ < /proc/$p/stat && [ \"$g\" = $p ]; do :; done; echo done";
        let mut r = sh(dir.path(), script);
        r.kill_grace = Duration::from_millis(100);
        let started = StdInstant::now();
        let ran = run_with(&r, &[]);
        assert!(started.elapsed() < Duration::from_secs(20));
        let out = String::from_utf8(ran.out.stdout).unwrap();
        let pid: i32 = out.lines().next().unwrap().parse().unwrap();
        // It left our process group, so it is the test's to clean up.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        assert_eq!(ran.out.exit_code, 0);
        assert!(out.ends_with("done\n"));
    }

    /// [`rerun_alone`] for this module's `test`. The tests that count
    /// registrations need it: here, a child another test clones holds a
    /// copy of the pipes' write ends until its exec, so a quick command's
    /// pipes can still be open after its reap, and are watched while they
    /// drain.
    fn alone(test: &str) -> bool {
        rerun_alone(&format!("ci::process::tests::{test}"), |_| {})
    }

    /// Run `script`: the pipes it had registered, and whether it ran, start to
    /// end, within REGISTER_AFTER (measured around the whole run, so that
    /// the registration timer, started after the spawn, cannot have fired).
    fn registered_by(dir: &Path, script: &str) -> (usize, bool) {
        let before = WATCHED.with(|n| n.get());
        let started = StdInstant::now();
        let ran = run_with(&sh(dir, script), &[]);
        let quick = started.elapsed() < REGISTER_AFTER;
        assert_eq!(ran.out.exit_code, 0, "{script}");
        (WATCHED.with(|n| n.get()) - before, quick)
    }

    /// Run `script` until `count` of its runs took less than REGISTER_AFTER
    /// (about a millisecond each; a busy machine stretches some past it,
    /// which do not count), asserting that those had no pipe registered.
    fn quick_runs_register_nothing(dir: &Path, script: &str, count: usize) {
        let mut quick = 0;
        let deadline = StdInstant::now() + Duration::from_secs(60);
        while quick < count {
            assert!(
                StdInstant::now() < deadline,
                "only {quick} runs of {script:?} within {REGISTER_AFTER:?} in a minute"
            );
            let (registered, within) = registered_by(dir, script);
            if within {
                quick += 1;
                assert_eq!(registered, 0, "pipes registered for {script:?}, quick as it was");
            }
        }
    }

    #[test]
    fn a_quick_commands_pipes_are_read_without_registering_them() {
        if alone("a_quick_commands_pipes_are_read_without_registering_them") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        quick_runs_register_nothing(dir.path(), "echo out; echo err >&2", 10);
        let ran = run_with(&sh(dir.path(), "echo out; echo err >&2"), &[]);
        assert_eq!(
            (ran.out.stdout.as_slice(), ran.out.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );

        // One that runs longer has both registered: it waits, bounded, until
        // its output is read, which is done only once they are.
        let go = dir.path().join("go");
        let mut r = sh(dir.path(), "echo late; until [ -e go ]; do sleep 0.01; done");
        r.timeout = Some(Duration::from_secs(10));
        let before = WATCHED.with(|n| n.get());
        let (_tx, mut rx) = watch::channel(false);
        let mut on_line = |_, _: &[u8]| std::fs::write(&go, "").unwrap();
        let out = block_on(run(&r, &Redactor::default(), &mut on_line, &mut rx)).unwrap();
        assert_eq!((out.exit_code, out.timed_out), (0, false), "its output was never read");
        assert_eq!(out.stdout, b"late\n");
        assert_eq!(WATCHED.with(|n| n.get()) - before, 2);
    }

    #[test]
    fn after_a_loud_command_the_next_has_its_pipes_watched_at_once() {
        if alone("after_a_loud_command_the_next_has_its_pipes_watched_at_once") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // The loud one waits for its pipes to be watched; the quick one after
        // it is watched from the start, and the quick ones after that are not.
        assert_eq!(registered_by(dir.path(), "head -c 204800 /dev/zero").0, 2);
        assert_eq!(registered_by(dir.path(), "echo after a loud one").0, 2);
        quick_runs_register_nothing(dir.path(), "echo after a quiet one", 5);
    }

    #[test]
    fn a_burst_larger_than_a_pipe_from_a_quick_command_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Under a pipe's 64 KiB, all read after the reap; over it, the
        // command waits until its pipes are registered.
        for kib in [60, 200] {
            let bytes = kib * 1024;
            let script = format!("yes 0123456789abcde | head -c {bytes}; yes ABCDEFGHIJKLMNO | head -c {bytes} >&2");
            let mut r = sh(dir.path(), &script);
            // A pipe nobody reads would block the command until then.
            r.timeout = Some(Duration::from_secs(10));
            let ran = run_with(&r, &[]);
            assert_eq!((ran.out.exit_code, ran.out.timed_out), (0, false), "{kib} KiB");
            assert_eq!(ran.out.stdout, b"0123456789abcde\n".repeat(bytes / 16));
            assert_eq!(ran.out.stderr, b"ABCDEFGHIJKLMNO\n".repeat(bytes / 16));
            for (stream, line) in [
                (OutputStream::Stdout, "0123456789abcde"),
                (OutputStream::Stderr, "ABCDEFGHIJKLMNO"),
            ] {
                let logged: Vec<&[u8]> = ran
                    .lines
                    .iter()
                    .filter(|l| l.0 == stream)
                    .map(|l| l.1.as_slice())
                    .collect();
                assert_eq!(logged.len(), bytes / 16, "{kib} KiB of {stream:?}");
                assert!(logged.iter().all(|l| *l == line.as_bytes()));
            }
            assert_eq!(ran.seen, ran.lines);
        }
    }

    #[test]
    fn output_that_comes_after_the_registration_delay_is_streamed() {
        let dir = tempfile::tempdir().unwrap();
        // Seen while the command runs, it cancels it; seen only at the end,
        // after the timeout, too late.
        let mut r = sh(dir.path(), "sleep 0.1; echo late >&2; exec sleep 30");
        r.timeout = Some(Duration::from_secs(5));
        r.kill_grace = Duration::from_millis(100);
        let (tx, mut rx) = watch::channel(false);
        let started = StdInstant::now();
        let mut seen_after = None;
        let mut on_line = |s, t: &[u8]| {
            if (s, t) == (OutputStream::Stderr, &b"late"[..]) {
                seen_after = Some(started.elapsed());
                let _ = tx.send(true);
            }
        };
        let out = block_on(run(&r, &Redactor::default(), &mut on_line, &mut rx)).unwrap();
        assert_eq!(
            (out.cancelled, out.timed_out),
            (true, false),
            "late line seen after {seen_after:?}"
        );
        assert!(seen_after.is_some_and(|t| t < Duration::from_secs(4)), "{seen_after:?}");
        assert_eq!(out.stderr, b"late\n");
    }

    #[test]
    fn a_writer_outside_the_group_is_read_to_its_end_after_a_quick_exit() {
        let dir = tempfile::tempdir().unwrap();
        // sh exits as soon as what it started has left its group (a
        // builtin loop: a millisecond or so); that writes later and then
        // closes the pipe, well within the draining time.
        let script = "setsid sh -c 'sleep 0.2; echo late' & p=$!; \
                      until read -r _ _ _ _ g _ < /proc/$p/stat && [ \"$g\" = $p ]; do :; done; echo done";
        let mut r = sh(dir.path(), script);
        r.kill_grace = Duration::from_secs(5);
        let started = StdInstant::now();
        let ran = run_with(&r, &[]);
        let took = started.elapsed();
        assert_eq!(ran.out.exit_code, 0);
        assert_eq!(ran.out.stdout, b"done\nlate\n");
        // Read as it came, to the end of the pipe, not at the end of the draining time.
        assert!(took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn streams_interleave_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let ran = run_with(&sh(dir.path(), "seq 1 20000 & seq 1 20000 >&2; wait"), &[]);
        let want: Vec<Vec<u8>> = (1..=20000).map(|i: u32| i.to_string().into_bytes()).collect();
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let got: Vec<Vec<u8>> = ran
                .lines
                .iter()
                .filter(|l| l.0 == stream)
                .map(|l| l.1.clone())
                .collect();
            assert_eq!(got, want);
        }
        assert_eq!(ran.seen, ran.lines);
    }

    #[test]
    fn command_dies_when_the_spawning_thread_dies() {
        let dir = tempfile::tempdir().unwrap();
        // exec: the pid printed is the long-lived process itself.
        let r = sh(dir.path(), "echo $$; exec sleep 30");
        let spawner = std::thread::spawn(move || {
            let redactor = Redactor::default();
            let (_tx, mut rx) = watch::channel(false);
            let pid = std::cell::Cell::new(None);
            let mut on_line = |_, t: &[u8]| {
                if pid.get().is_none() {
                    pid.set(std::str::from_utf8(t).ok().and_then(|p| p.parse::<i32>().ok()));
                }
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut running = Box::pin(run(&r, &redactor, &mut on_line, &mut rx));
            // Drive the command only until it has printed its pid.
            rt.block_on(std::future::poll_fn(|cx| {
                let finished = running.as_mut().poll(cx).is_ready();
                if finished || pid.get().is_some() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }));
            // Skip the drop that would kill the group: only the parent-death
            // signal is left to end the command when this thread exits.
            std::mem::forget(running);
            pid.get()
        });
        let pid = spawner.join().unwrap().expect("the command printed its pid");
        // The signal is sent as the thread finishes exiting, just after join returns.
        let deadline = StdInstant::now() + Duration::from_secs(10);
        while alive(pid) && StdInstant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let survived = alive(pid);
        if survived {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        assert!(!survived, "command {pid} outlived the thread that spawned it");
    }
}
