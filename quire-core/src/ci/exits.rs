//! How the runner learns that a command has exited: SIGCHLD.
//!
//! The signal names no child, and several that come close together arrive
//! as one, so a SIGCHLD is only a reason for each waiting command to ask the
//! kernel about its own process (`waitpid(pid, WNOHANG)`).
//!
//! quire-ci blocks SIGCHLD in the whole process before it starts anything
//! ([`block_sigchld`]), and reads it from one signalfd, registered with the
//! reactor once per runtime: a command costs one `read`. (A pidfd per
//! command cost its creation, its registration with epoll, its removal and
//! its close, about 8 µs of the runner's CPU a command; docs/performance.md.)
//! A process that does not block it (the unit tests, another user of this
//! library, where threads may exist that would take the signal and drop it)
//! gets SIGCHLD through tokio's handler instead.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::spawn;

/// Set once [`block_sigchld`] has blocked SIGCHLD.
static BLOCKED: AtomicBool = AtomicBool::new(false);

/// Block SIGCHLD, so that commands' exits are read from a signalfd.
///
/// Call it before the process has any other thread: threads inherit the
/// mask of the thread that starts them, and a thread that does not block
/// SIGCHLD could take the signal, whose default is to drop it. Children
/// unblock every signal before their exec (`spawn`).
pub fn block_sigchld() -> io::Result<()> {
    let set = sigchld_set();
    // SAFETY: applies a filled-in set to this thread's mask.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if blocked != 0 {
        return Err(io::Error::from_raw_os_error(blocked));
    }
    BLOCKED.store(true, Ordering::Relaxed);
    Ok(())
}

/// The set holding SIGCHLD alone.
fn sigchld_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only fill it in.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Whether [`block_sigchld`] has blocked SIGCHLD.
pub(crate) fn sigchld_blocked() -> bool {
    BLOCKED.load(Ordering::Relaxed)
}

/// Watches for one command's exit. Made before the command starts, so that
/// no SIGCHLD of its can come unseen.
pub(crate) enum ExitWatch {
    Signalfd {
        fd: Rc<SignalFd>,
        /// The signals read from `fd` when this command last asked the kernel.
        seen: u64,
    },
    Handler(Signal),
}

impl ExitWatch {
    pub(crate) fn new() -> io::Result<Self> {
        if !sigchld_blocked() {
            return Ok(ExitWatch::Handler(signal(SignalKind::child())?));
        }
        let fd = SignalFd::for_this_runtime()?;
        let seen = fd.read.get();
        Ok(ExitWatch::Signalfd { fd, seen })
    }

    /// Whether a SIGCHLD has come (as far as the reactor has seen) that this
    /// command has not looked into, asked without a system call: maybe
    /// another command's. Always false through tokio's handler, which cannot tell.
    pub(crate) fn may_have_exited(&self) -> bool {
        match self {
            ExitWatch::Signalfd { fd, seen } => {
                let mut cx = Context::from_waker(Waker::noop());
                fd.read.get() != *seen || fd.fd.poll_read_ready(&mut cx).is_ready()
            }
            ExitWatch::Handler(_) => false,
        }
    }

    /// Wait for `pid` to exit, and reap it: its raw wait status. Cancel-safe.
    pub(crate) async fn reap(&mut self, pid: libc::pid_t) -> io::Result<c_int> {
        loop {
            match self {
                ExitWatch::Signalfd { fd, seen } => {
                    if fd.read.get() == *seen {
                        // Every SIGCHLD since this command last looked is still in the signalfd.
                        let mut ready = fd.fd.readable().await?;
                        // Another command may have read it while this one waited.
                        if fd.read.get() == *seen {
                            fd.take()?;
                            ready.clear_ready();
                        }
                    }
                    *seen = fd.read.get();
                }
                ExitWatch::Handler(signal) => {
                    if signal.recv().await.is_none() {
                        return Err(io::Error::other("the SIGCHLD handler has gone"));
                    }
                }
            }
            if let Some(status) = spawn::try_reap(pid)? {
                return Ok(status);
            }
        }
    }
}

/// The signalfd for SIGCHLD, with a count of the reads that took a signal.
pub(crate) struct SignalFd {
    fd: AsyncFd<OwnedFd>,
    read: Cell<u64>,
    /// The reactor the descriptor is registered with.
    runtime: tokio::runtime::Id,
}

thread_local! {
    static SIGNALFD: RefCell<Option<Rc<SignalFd>>> = const { RefCell::new(None) };
}

impl SignalFd {
    /// The one of this thread, made (again) when the runtime is not the one it was registered with.
    fn for_this_runtime() -> io::Result<Rc<SignalFd>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?.id();
        SIGNALFD.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(fd) = slot.as_ref().filter(|fd| fd.runtime == runtime) {
                return Ok(fd.clone());
            }
            let fd = Rc::new(SignalFd::open(runtime)?);
            *slot = Some(fd.clone());
            Ok(fd)
        })
    }

    fn open(runtime: tokio::runtime::Id) -> io::Result<SignalFd> {
        let set = sigchld_set();
        // SAFETY: signalfd returns a new descriptor or -1.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just returned it, owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an OwnedFd stays open and keeps its descriptor for as long as the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }.map_err(io::Error::from)?;
        Ok(SignalFd {
            fd,
            read: Cell::new(0),
            runtime,
        })
    }

    /// Read what is pending (SIGCHLD is not queued: one at most), counting it
    /// if there was something. Empty: another reader was first.
    fn take(&self) -> io::Result<()> {
        let mut info = [0u8; 4 * size_of::<libc::signalfd_siginfo>()];
        // SAFETY: reading into a buffer we own; the descriptor is non-blocking.
        let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
        if n > 0 {
            self.read.set(self.read.get() + 1);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
            _ => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::rerun_alone;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// [`rerun_alone`] for this module's `test`, in a process whose every
    /// thread blocks SIGCHLD from the start, as quire-ci's do: here the test
    /// harness's threads do not.
    fn rerun_blocked(test: &str) -> bool {
        rerun_alone(&format!("ci::exits::tests::{test}"), |rerun| {
            // SAFETY: only sigprocmask between fork and exec. The mask survives the exec.
            unsafe {
                let set = sigchld_set();
                rerun.pre_exec(move || {
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        })
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, f)
    }

    /// Block until `pid` has exited, leaving it to be reaped.
    fn until_exited(pid: libc::pid_t) {
        // SAFETY: siginfo_t is plain data; waitid only fills it in.
        let waited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        assert_eq!(waited, 0);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by ExitWatch::reap, which is what is tested
    fn a_command_sees_its_exit_when_another_took_the_signal() {
        if rerun_blocked("a_command_sees_its_exit_when_another_took_the_signal") {
            return;
        }
        block_sigchld().unwrap();
        block_on(async {
            let mut first = ExitWatch::new().unwrap();
            assert!(matches!(first, ExitWatch::Signalfd { .. }));
            let quick = Command::new("true").spawn().unwrap();
            let mut second = ExitWatch::new().unwrap();
            let mut slow = Command::new("sh")
                .args(["-c", "read line"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            until_exited(quick.id() as libc::pid_t);

            // The second command's wait reads the first one's SIGCHLD, and
            // finds its own process still running.
            let waiting = tokio::time::timeout(Duration::from_millis(100), second.reap(slow.id() as libc::pid_t));
            assert!(waiting.await.is_err());
            assert!(first.may_have_exited());

            // The signal is gone from the signalfd, yet the first command sees its exit.
            let status = tokio::time::timeout(Duration::from_secs(5), first.reap(quick.id() as libc::pid_t));
            let status = status.await.expect("the first command never saw its exit").unwrap();
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            assert!(!first.may_have_exited());

            drop(slow.stdin.take());
            let status = tokio::time::timeout(Duration::from_secs(5), second.reap(slow.id() as libc::pid_t));
            let status = status.await.expect("the second command never saw its exit").unwrap();
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1);
        });
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by ExitWatch::reap, which is what is tested
    fn without_blocking_the_handler_tells_of_exits() {
        block_on(async {
            let mut watch = ExitWatch::new().unwrap();
            assert!(matches!(watch, ExitWatch::Handler(_)));
            let child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
            let status = tokio::time::timeout(Duration::from_secs(5), watch.reap(child.id() as libc::pid_t));
            let status = status.await.expect("never saw the exit").unwrap();
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3);
        });
    }
}
