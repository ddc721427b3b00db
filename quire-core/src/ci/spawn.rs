//! Starting a command the way `posix_spawn` does, with a parent-death signal.
//!
//! `std::process::Command` can start a child with `posix_spawn`, which uses
//! `clone(CLONE_VM | CLONE_VFORK)`: the child borrows the parent's memory
//! until it execs, so nothing is copied. But it needs `pre_exec` for
//! `PR_SET_PDEATHSIG`, and `pre_exec` makes it `fork`, which copies the page
//! tables of the whole runner (the Lua VM and all) and then takes a
//! copy-on-write fault on every page the runner touches afterwards: about
//! 0.3 ms of runner CPU per command (docs/performance.md). This module does
//! what glibc's posix_spawn does, plus the prctl, in about 60 lines of
//! async-signal-safe child code.
//!
//! The child is in a session of its own (so in its own process group, and
//! without a controlling terminal), has stdin on /dev/null and stdout
//! and stderr on pipes, runs in `cwd`, gets `PR_SET_PDEATHSIG = SIGKILL`, an
//! empty signal mask and SIGPIPE at its default, like a std child. Programs
//! without a `/` are looked up in PATH (the command's own `:env` PATH if it
//! sets one), and a file that is not an executable format is run by /bin/sh,
//! as execvp does.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CStr, CString, OsStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use super::exits;

/// A child that has exec'd (or is about to): reap it with `waitpid(pid)`.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: libc::pid_t,
    /// Read ends, close-on-exec. Blocking where pipes honour `RWF_NOWAIT`:
    /// read them with [`read_now`], or make them non-blocking first.
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The runner's copies of the write ends. Held until the child is reaped,
    /// the pipes can't report end-of-file before the exit does: otherwise each
    /// of the two closes and the exit would wake the runner separately.
    pub writers: [OwnedFd; 2],
}

/// What to exec: candidates tried in order, then the argv and environment.
pub(crate) struct Program {
    /// `/bin/sh` for a shell command; the program, or each PATH candidate, for an argv.
    /// (Borrowed where constant: a shell command allocates only its script.)
    candidates: Vec<Cow<'static, CStr>>,
    argv: Vec<Cow<'static, CStr>>,
    /// Variables to set on top of the runner's environment (None: inherit it as is).
    env: Option<Vec<CString>>,
    /// A program that is not an executable format is run by /bin/sh (execvp does this).
    script_fallback: bool,
}

const SHELL: &CStr = c"/bin/sh";

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    // The same error std gives for an argument with a NUL in it.
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data"))
}

impl Program {
    /// `/bin/sh -c script`.
    pub fn shell(script: &str, env: &[(String, String)]) -> io::Result<Program> {
        Ok(Program {
            candidates: vec![Cow::Borrowed(SHELL)],
            argv: vec![
                Cow::Borrowed(SHELL),
                Cow::Borrowed(c"-c"),
                Cow::Owned(cstring(script.as_bytes())?),
            ],
            env: environment(env)?,
            script_fallback: false,
        })
    }

    /// An argv run directly. `words` must not be empty.
    pub fn argv(words: &[String], env: &[(String, String)]) -> io::Result<Program> {
        let Some(program) = words.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        };
        let argv = words
            .iter()
            .map(|w| cstring(w.as_bytes()).map(Cow::Owned))
            .collect::<io::Result<Vec<_>>>()?;
        let candidates = if program.contains('/') {
            vec![Cow::Owned(cstring(program.as_bytes())?)]
        } else if program.is_empty() {
            Vec::new() // execvp("") fails with ENOENT
        } else {
            // The command's own PATH wins over the runner's, as with std.
            let path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| OsStr::new(v).to_os_string())
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_else(|| "/bin:/usr/bin".into());
            let mut candidates = Vec::new();
            for dir in path.as_bytes().split(|&b| b == b':') {
                // An empty PATH entry is the current directory.
                let dir = if dir.is_empty() { b".".as_slice() } else { dir };
                let mut full = Vec::with_capacity(dir.len() + 1 + program.len());
                full.extend_from_slice(dir);
                full.push(b'/');
                full.extend_from_slice(program.as_bytes());
                candidates.push(Cow::Owned(cstring(&full)?));
            }
            candidates
        };
        Ok(Program {
            candidates,
            argv,
            env: environment(env)?,
            script_fallback: true,
        })
    }
}

/// The runner's environment with `extra` set on top, or None when there is nothing to add.
fn environment(extra: &[(String, String)]) -> io::Result<Option<Vec<CString>>> {
    if extra.is_empty() {
        return Ok(None);
    }
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        if !extra.iter().any(|(k, _)| OsStr::new(k) == key) {
            let mut entry = key.into_encoded_bytes();
            entry.push(b'=');
            entry.extend_from_slice(value.as_encoded_bytes());
            vars.push(cstring(&entry)?);
        }
    }
    for (key, value) in extra {
        vars.push(cstring(format!("{key}={value}").as_bytes())?);
    }
    Ok(Some(vars))
}

/// Whether the runner has a controlling terminal, asked once: it gains none
/// later (what it opens, it opens with O_NOCTTY or not as a session leader).
fn runner_has_a_terminal() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        // SAFETY: an open and a close; O_NOCTTY: never become its controller.
        unsafe {
            let fd = libc::open(c"/dev/tty".as_ptr(), libc::O_RDONLY | libc::O_NOCTTY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
            fd >= 0
        }
    })
}

/// The runner's pid, asked once: its one fork, the watchdog, starts no command.
fn runner_pid() -> libc::pid_t {
    static PID: OnceLock<libc::pid_t> = OnceLock::new();
    // SAFETY: getpid has no preconditions.
    *PID.get_or_init(|| unsafe { libc::getpid() })
}

/// The signals a child must put back to their default before it execs, as
/// a mask (bit `sig - 1`): those the runner has a handler for (their code
/// would run on the runner's memory if a signal came before the exec), and
/// SIGPIPE when ignored (Rust ignores it; children get the default, as std's
/// do). Other ignored signals stay ignored, as with posix_spawn.
///
/// glibc's posix_spawn asks the kernel about all 64 signals in the child,
/// about 13 µs while the runner waits for the exec, on every command. The
/// runner's handlers are installed before its first command (std's at start,
/// the run's SIGINT/SIGTERM/SIGHUP watch before any job) and never removed,
/// so the mask is computed once, at the first spawn. SIGCHLD is in it unless
/// the runner blocks it and reads it from a signalfd (`exits`): otherwise the
/// runner learns of exits through a handler, which must not run in a child
/// either, whenever it was installed.
fn signals_to_reset() -> u64 {
    static MASK: OnceLock<u64> = OnceLock::new();
    *MASK.get_or_init(|| {
        let sigchld = if exits::sigchld_blocked() {
            0
        } else {
            1 << (libc::SIGCHLD - 1)
        };
        handled_signals() | sigchld
    })
}

/// The mask of signals with a handler, and SIGPIPE if it is ignored.
fn handled_signals() -> u64 {
    let mut mask = 0u64;
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction only fills in `action`.
        let action = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, ptr::null(), &mut action) != 0 {
                continue;
            }
            action
        };
        let handled = action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN;
        if handled || (sig == libc::SIGPIPE && action.sa_sigaction == libc::SIG_IGN) {
            mask |= 1 << (sig - 1);
        }
    }
    mask
}

/// /dev/null, opened once for every child's stdin.
fn dev_null() -> io::Result<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let file = std::fs::File::open("/dev/null")?; // close-on-exec, as std opens everything
    Ok(NULL.get_or_init(|| file.into()).as_raw_fd())
}

/// A pipe: (read end, write end), both close-on-exec. The write end blocks;
/// the read end too where pipes honour `RWF_NOWAIT` (it is then read by
/// [`read_now`], or made non-blocking when the runner watches it), and is
/// non-blocking from the start where they do not.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = blocking_pipe()?;
    if !pipes_honour_nowait() {
        set_nonblocking(read.as_fd())?;
    }
    Ok((read, write))
}

fn blocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Make a pipe's read end non-blocking (it has no other status flag to keep).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain fcntl on a descriptor the caller keeps open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a read of a pipe can be told not to wait (`preadv2` with
/// `RWF_NOWAIT`), so that read ends can stay blocking and skip an fcntl each.
/// Asked once, of a pipe made for the question: an empty pipe with a writer
/// answers EAGAIN; kernels without it answer EOPNOTSUPP (or EINVAL, ENOSYS).
fn pipes_honour_nowait() -> bool {
    static HONOUR: OnceLock<bool> = OnceLock::new();
    *HONOUR.get_or_init(|| {
        let Ok((read, _write)) = blocking_pipe() else {
            return false;
        };
        let mut byte = [0u8];
        let answer = read_nowait(read.as_fd(), &mut byte);
        answer.is_err_and(|e| e.raw_os_error() == Some(libc::EAGAIN))
    })
}

fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: one iovec over a buffer we own; offset -1 reads at the file's
    // position, as a pipe must be read.
    read_result(unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) })
}

/// A read's return value: the bytes read, or the error it set.
fn read_result(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Read what a pipe from [`spawn`] holds right now, without ever waiting:
/// WouldBlock when it is empty but something still holds a write end.
pub(crate) fn read_now(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    if pipes_honour_nowait() {
        return read_nowait(fd, buf);
    }
    // SAFETY: reading into a buffer we own; the read end is non-blocking (see `pipe`).
    read_result(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// Everything the child reads, prepared by the parent: the child may not allocate.
struct ChildArgs {
    candidates: Vec<*const c_char>,
    argv: Vec<*const c_char>,
    /// `/bin/sh`, the slot for the script's path, then argv[1..]; for the script fallback.
    script_argv: Vec<*const c_char>,
    script_fallback: bool,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    parent: libc::pid_t,
    /// Signals to put back to their default disposition (bit `sig - 1`).
    reset_signals: u64,
    /// A session of its own, not just a process group: on the runner's
    /// terminal, a process of a background group that touches it (`read <
    /// /dev/tty`, git asking for a password) is stopped by the kernel
    /// (SIGTTIN) and the run would hang; out of the session, opening
    /// /dev/tty fails at once. Only when the runner has a terminal: a new
    /// session is also a new scheduler autogroup, about 8 µs a command
    /// (docs/performance.md), and without a terminal there is none to touch.
    new_session: bool,
    /// Where the child writes its process group once it has one (null:
    /// nowhere): the watchdog's slot, so the group is listed before the
    /// command can start anything (see `process::list_group_of`).
    group_slot: *const AtomicI32,
    /// Set by the child when it gives up: the errno of the step that failed.
    error: c_int,
}

/// The child's stack, 64 KiB of 16-byte words: it only calls a few libc
/// functions. One per thread, since a thread is suspended while its child runs on it.
const STACK_WORDS: usize = 4096;

thread_local! {
    static STACK: RefCell<Option<Box<[u128]>>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// Start `program` in `cwd`. See the module docs.
pub(crate) fn spawn(program: &Program, cwd: &Path, group_slot: Option<&'static AtomicI32>) -> io::Result<Spawned> {
    reap_orphans();
    let cwd = cstring(cwd.as_os_str().as_bytes())?;
    let stdin = dev_null()?;
    let (stdout, stdout_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;

    let env_pointers = program.env.as_deref().map(null_terminated);
    let script_argv = if program.script_fallback {
        let mut script_argv = vec![SHELL.as_ptr(), ptr::null()];
        script_argv.extend(program.argv.iter().skip(1).map(|s| s.as_ptr()));
        script_argv.push(ptr::null());
        script_argv
    } else {
        Vec::new()
    };
    let mut args = ChildArgs {
        candidates: program.candidates.iter().map(|s| s.as_ptr()).collect(),
        argv: null_terminated(&program.argv),
        script_argv,
        script_fallback: program.script_fallback,
        // SAFETY: reading the pointer; the runner never changes its environment
        // (std::env::set_var is unsafe and unused), as std's posix_spawn path assumes too.
        envp: env_pointers.as_ref().map_or(unsafe { environ }, |p| p.as_ptr()),
        cwd: cwd.as_ptr(),
        stdin,
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
        parent: runner_pid(),
        reset_signals: signals_to_reset(),
        new_session: runner_has_a_terminal(),
        group_slot: group_slot.map_or(ptr::null(), ptr::from_ref),
        error: 0,
    };

    let pid = STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let stack = stack.get_or_insert_with(|| vec![0; STACK_WORDS].into_boxed_slice());
        // SAFETY: the stack is ours for the duration (the thread is suspended
        // while the child runs, CLONE_VFORK); args outlives the child's use of it.
        unsafe { clone_child(&mut args, stack) }
    })?;

    // SAFETY: the child is done with args (it exec'd or exited); volatile since it wrote behind the compiler's back.
    let error = unsafe { ptr::read_volatile(&args.error) };
    if error != 0 {
        let mut status = 0;
        // SAFETY: our own child, which has already called _exit.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(Spawned {
        pid,
        stdout,
        stderr,
        writers: [stdout_w, stderr_w],
    })
}

/// The strings' pointers and a null after them, as exec takes them.
fn null_terminated<S: std::ops::Deref<Target = CStr>>(strings: &[S]) -> Vec<*const c_char> {
    let mut pointers = Vec::with_capacity(strings.len() + 1);
    pointers.extend(strings.iter().map(|s| s.as_ptr()));
    pointers.push(ptr::null());
    pointers
}

/// clone with the signals blocked, so no handler of the runner's can run on the child.
///
/// # Safety
/// `args` must point into memory that stays valid until this returns; `stack` is the child's stack.
unsafe fn clone_child(args: &mut ChildArgs, stack: &mut [u128]) -> io::Result<libc::pid_t> {
    // SAFETY: sigset_t is plain data; the calls only fill in and apply masks.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let top = stack.as_mut_ptr().add(stack.len()).cast::<c_void>();
        let arg = ptr::from_mut(args).cast::<c_void>();
        let pid = libc::clone(child_main, top, libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, arg);
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        Ok(pid)
    }
}

/// The child, on the parent's memory until it execs: no allocation, no
/// panic, no lock, only async-signal-safe calls on data prepared beforehand.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    let args = arg.cast::<ChildArgs>();
    // SAFETY: the parent passed a valid ChildArgs and is suspended until we exec or exit.
    unsafe {
        let error = child_exec(&mut *args);
        ptr::write_volatile(&raw mut (*args).error, if error == 0 { libc::EINVAL } else { error });
        libc::_exit(127)
    }
}

/// Set the child up and exec; returns the errno if that failed.
///
/// # Safety
/// Only in the child made by [`clone_child`].
unsafe fn child_exec(args: &mut ChildArgs) -> c_int {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL);
    // SAFETY: each call is async-signal-safe and gets valid pointers.
    unsafe {
        // Handlers are the parent's code on the parent's memory: back to the
        // default. Only the signals the runner handles, known beforehand.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if args.reset_signals & (1 << (sig - 1)) != 0 {
                libc::sigaction(sig, &default, ptr::null_mut());
            }
        }
        // See `ChildArgs::new_session`.
        let grouped = if args.new_session {
            libc::setsid()
        } else {
            libc::setpgid(0, 0)
        };
        if grouped < 0 {
            return errno();
        }
        if let Some(slot) = args.group_slot.as_ref() {
            // Our pid is our group's id. getpid as a system call: no libc cache to trust here.
            slot.store(libc::syscall(libc::SYS_getpid) as libc::pid_t, Ordering::Relaxed);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return errno();
        }
        // The runner may have died before prctl took effect.
        if libc::getppid() != args.parent {
            return libc::ESRCH;
        }
        for (fd, target) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
            if libc::dup2(fd, target) < 0 {
                return errno();
            }
        }
        if libc::chdir(args.cwd) != 0 {
            return errno();
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());

        // execvp's search: EACCES is remembered, a missing file is skipped, anything else stops.
        let mut error = libc::ENOENT;
        let mut denied = false;
        for &path in &args.candidates {
            libc::execve(path, args.argv.as_ptr(), args.envp);
            error = errno();
            match error {
                libc::ENOEXEC if args.script_fallback => {
                    if let Some(slot) = args.script_argv.get_mut(1) {
                        *slot = path;
                    }
                    libc::execve(SHELL.as_ptr(), args.script_argv.as_ptr(), args.envp);
                    return errno();
                }
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return error,
            }
        }
        if denied { libc::EACCES } else { error }
    }
}

/// Children whose owner went away before reaping them; reaped at the next spawn.
static ORPHANS: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// SIGKILL a child nobody will wait for, and reap it now or later.
pub(crate) fn abandon(pid: libc::pid_t) {
    // SAFETY: plain syscall on our own unreaped child (its pid can't be reused yet).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    if try_reap(pid).is_ok_and(|s| s.is_none()) {
        ORPHANS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    }
}

fn reap_orphans() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    if !orphans.is_empty() {
        orphans.retain(|&pid| try_reap(pid).is_ok_and(|s| s.is_none()));
    }
}

/// The raw wait status if the child has exited, None if it still runs.
pub(crate) fn try_reap(pid: libc::pid_t) -> io::Result<Option<c_int>> {
    let mut status = 0;
    // SAFETY: plain syscall; status is a valid out pointer.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        p if p == pid => Ok(Some(status)),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_writes_its_group_into_the_slot_before_its_exec() {
        static SLOT: AtomicI32 = AtomicI32::new(0);
        let program = Program::shell("exit 0", &[]).unwrap();
        let spawned = spawn(&program, Path::new("/"), Some(&SLOT)).unwrap();
        // Written by the child (the parent writes nothing here), and by the
        // time clone returns: the child has exec'd.
        assert_eq!(SLOT.load(Ordering::Relaxed), spawned.pid);
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(spawned.pid, &mut status, 0) };
    }

    #[test]
    fn a_pipe_is_read_without_waiting_whatever_holds_its_write_end() {
        let (read, write) = pipe().unwrap();
        let mut buf = [0u8; 16];
        // Empty, with a writer: WouldBlock, never a wait (a blocking read would hang here).
        let empty = read_now(read.as_fd(), &mut buf);
        assert_eq!(empty.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        // SAFETY: writing from a buffer we own to a descriptor we own.
        assert_eq!(unsafe { libc::write(write.as_raw_fd(), b"hi".as_ptr().cast(), 2) }, 2);
        assert_eq!(read_now(read.as_fd(), &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"hi");
        drop(write);
        // Another test's child may hold a copy of the write end between its
        // clone and its exec (the pipe is close-on-exec), so end of file can
        // come a moment after the drop: wait for the hang-up, then read it.
        let mut hangup = libc::pollfd {
            fd: read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own; the timeout only bounds a broken test.
        assert_eq!(unsafe { libc::poll(&mut hangup, 1, 10_000) }, 1, "hang-up within 10 s");
        assert_eq!(read_now(read.as_fd(), &mut buf).unwrap(), 0, "end of file");
    }

    extern "C" fn ignore_it(_: c_int) {}

    #[test]
    fn children_reset_handled_signals_and_sigpipe_but_keep_ignored_ones() {
        let bit = |sig: c_int| 1u64 << (sig - 1);
        // SAFETY: installing a handler that does nothing, and ignoring a
        // signal; nothing in these tests sends either.
        unsafe {
            libc::signal(libc::SIGUSR1, ignore_it as extern "C" fn(c_int) as libc::sighandler_t);
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
        }
        let mask = handled_signals();
        // SAFETY: back to the defaults.
        unsafe {
            libc::signal(libc::SIGUSR1, libc::SIG_DFL);
            libc::signal(libc::SIGUSR2, libc::SIG_DFL);
        }
        assert_ne!(mask & bit(libc::SIGUSR1), 0, "a handled signal is reset");
        assert_ne!(
            mask & bit(libc::SIGPIPE),
            0,
            "Rust ignores SIGPIPE; children get the default"
        );
        assert_eq!(mask & bit(libc::SIGUSR2), 0, "an ignored signal stays ignored");
        assert_eq!(mask & bit(libc::SIGHUP), 0, "a default one is left alone");
        assert_ne!(signals_to_reset() & bit(libc::SIGCHLD), 0);
    }
}
