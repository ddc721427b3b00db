//! The watchdog: when the runner dies without running any code of its own
//! (SIGKILL, the OOM killer, a crash), it SIGKILLs the process group of every
//! command that was running, so no command's background process outlives
//! `quire-ci`.
//!
//! A command's direct child dies with the runner by itself (its parent-death
//! signal, `ci::spawn`), but that signal is not inherited across `fork`:
//! what `sh` or `make` started keeps running. Only a process that outlives the
//! runner can kill those, so `quire-ci run` forks one before anything else.
//!
//! - **Death**: the runner keeps the write end of a pipe, close-on-exec, so
//!   only the runner ever holds it (not the commands; the watchdog closes its
//!   copy first thing). The watchdog blocks reading the other end; nobody
//!   writes to it, so the read returns only at end of file, when the runner
//!   has exited, however it exited.
//! - **The groups**: a table in memory shared by the two (`MAP_SHARED`,
//!   mapped before the fork) lists the process group of every running
//!   command. The runner updates it with plain stores, a few per command, no
//!   system call, and nothing wakes the watchdog until the end.
//! - On a normal exit every command has ended and the table is empty: the
//!   watchdog finds nothing to kill and exits. It is never in the event
//!   stream, and it closes every descriptor but its pipe end (stdout and
//!   stderr included), so it holds no output of the runner's open.
//! - It runs in its own process group, so the terminal's SIGINT (Ctrl-C),
//!   SIGQUIT and SIGTSTP reach the runner and not it, and killing the
//!   runner's process group leaves it to clean up. It ignores those signals
//!   and SIGHUP and SIGTERM too (it goes when the runner goes): only SIGKILL
//!   ends it early. Its name is `quire-watchdog` (its command line is the
//!   runner's), so `pkill -9 quire-ci` or `killall -9 quire-ci` spares it.
//!
//! Why a forked process: one exec'd afresh (`/proc/self/exe`) costs about
//! 0.8 ms of CPU to start, as much as the rest of a small run's start-up;
//! forked while the runner is small (before its Lua VM and async runtime
//! exist), it delays start-up by 0.1 to 0.3 ms and shares most of its memory
//! (docs/performance.md). The child
//! runs only async-signal-safe system calls, with no allocation or lock, so
//! it is sound even in a process with threads. A child sharing the runner's
//! memory (`CLONE_VM`) would be cheaper still but dies with it: the OOM
//! killer, and a crash that dumps core, kill every process using that memory.
//!
//! The table is `[count, pgid...]` of `i32`. The runner stores a new group in
//! its slot before it raises the count, and on removal moves the last group
//! into the freed slot before it lowers the count: whenever the runner dies,
//! every running group is within the count (one may be listed twice, which is
//! harmless). A group's slot is reserved before the `clone`, and the child
//! writes its group there before its exec (`process::list_group_of`), so no
//! command can start anything unlisted; it is unlisted just after the
//! command has been reaped and its group killed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Groups the table can list. The runner runs at most 1024 commands at once
/// (`-j` is at most 1024, a job runs one command at a time); a group past
/// the last slot would not be listed.
const SLOTS: usize = 4095;
const WORDS: usize = SLOTS + 1;
const TABLE_BYTES: usize = WORDS * 4;

/// The watchdog's name, as `ps` and `top` show it.
const NAME: &std::ffi::CStr = c"quire-watchdog";

/// The runner's side: the table it updates and the pipe end whose close the watchdog waits for.
struct Runner {
    table: &'static [AtomicI32],
    /// Never written to and never closed: the process's exit closes it.
    _alive: OwnedFd,
}

static RUNNER: OnceLock<Runner> = OnceLock::new();

/// Fork the watchdog, once per process. Returns its pid.
///
/// Call it early, before the runner holds much memory (the fork copies its
/// page tables, and every page it writes afterwards is copied once) and
/// before the first command starts.
pub fn start() -> io::Result<libc::pid_t> {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::Relaxed) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "already started"));
    }
    let table = shared_table()?;
    let (alive_read, alive_write) = pipe()?;
    // SAFETY: the child runs only `watch`, which never returns and makes only
    // async-signal-safe system calls on memory that exists in both processes.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: we are the forked child.
        unsafe { watch(alive_read.as_raw_fd(), alive_write.as_raw_fd(), table) }
    }
    // The child does this too: whichever runs first, no signal for the
    // runner's group reaches it after the fork returns.
    // SAFETY: plain syscall on our own child; an error (it is gone) changes nothing.
    unsafe { libc::setpgid(pid, pid) };
    drop(alive_read);
    // Only the first call gets here: this cannot fail.
    let _ = RUNNER.set(Runner {
        table,
        _alive: alive_write,
    });
    Ok(pid)
}

/// The watchdog's slot for the `index`th group of the runner's list, for a
/// child to write its group into before its exec; None without a watchdog.
pub(crate) fn slot(index: usize) -> Option<&'static AtomicI32> {
    RUNNER.get().and_then(|runner| runner.table.get(1 + index))
}

/// Record that the `index`th group of the runner's list is now `pgid`.
pub(crate) fn set_slot(index: usize, pgid: libc::pid_t) {
    if let Some(runner) = RUNNER.get()
        && let Some(slot) = runner.table.get(1 + index)
    {
        slot.store(pgid, Ordering::Relaxed);
    }
}

/// Record that the runner's list holds `count` groups (at most the slots there are).
pub(crate) fn set_count(count: usize) {
    if let Some(slot) = RUNNER.get().and_then(|runner| runner.table.first()) {
        let count = count.min(SLOTS) as i32;
        // Release: a slot stored before is seen with the count that covers it.
        slot.store(count, Ordering::Release);
    }
}

/// The watchdog, in the forked child: wait for the runner's end, kill what it
/// listed, exit. Only async-signal-safe system calls: no allocation, no lock,
/// no panic, nothing that could wait on a thread that does not exist here.
///
/// # Safety
/// Only in the child of the fork in [`start`].
unsafe fn watch(alive: RawFd, runner_end: RawFd, table: &[AtomicI32]) -> ! {
    // SAFETY: each call is a plain system call on our own descriptors and state.
    unsafe {
        // The runner's end first: while the watchdog holds a copy, the
        // runner's exit would not end the pipe.
        libc::close(runner_end);
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_NAME, NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        close_all_but(alive);
        if wait_for_end(alive) {
            for pgid in listed(table) {
                // `listed` yields only ids above 1: kill(-1) would mean every process.
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        libc::_exit(0)
    }
}

/// Block until the pipe's end of file: the runner has exited. False if the
/// pipe fails instead (it cannot), so that a runner still alive keeps its commands.
fn wait_for_end(alive: RawFd) -> bool {
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(alive, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return true;
        }
        // SAFETY: errno of this thread, just set by read.
        if n < 0 && unsafe { *libc::__errno_location() } != libc::EINTR {
            return false;
        }
    }
}

/// The groups the table lists: within the count, and above 1 (`kill(-1)`
/// would mean every process, `kill(0)` our own group). Allocates nothing.
fn listed(table: &[AtomicI32]) -> impl Iterator<Item = libc::pid_t> + '_ {
    let count = table
        .first()
        .map_or(0, |c| usize::try_from(c.load(Ordering::Acquire)).unwrap_or(0))
        .min(SLOTS);
    table
        .iter()
        .skip(1)
        .take(count)
        .map(|slot| slot.load(Ordering::Relaxed))
        .filter(|&pgid| pgid > 1)
}

/// Close every descriptor but `keep`: stdin, stdout and stderr (a reader of
/// the runner's output must see its end when the runner exits), the event
/// file, and anything the runner inherited without close-on-exec.
///
/// # Safety
/// Only in the watchdog, which uses no other descriptor.
unsafe fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: closing descriptors nothing in this process uses.
    unsafe {
        let low = keep == 0 || libc::syscall(libc::SYS_close_range, 0 as libc::c_uint, keep - 1, 0) == 0;
        let high = libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0) == 0;
        if !(low && high) {
            // Before Linux 5.9: the runner has few descriptors open this early.
            for fd in 0..1024 {
                if fd != keep as RawFd {
                    libc::close(fd);
                }
            }
        }
    }
}

/// The table, mapped shared (so the forked watchdog sees the runner's stores)
/// for the life of the process. Zeroed: no group listed.
fn shared_table() -> io::Result<&'static [AtomicI32]> {
    // SAFETY: a new anonymous mapping; never unmapped.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            TABLE_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: page-aligned, TABLE_BYTES long, zeroed, valid for the rest of
    // the process; AtomicI32 has the layout of i32, and all access is atomic.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicI32>(), WORDS) })
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(words: &[i32]) -> Vec<AtomicI32> {
        words.iter().map(|&w| AtomicI32::new(w)).collect()
    }

    #[test]
    fn the_watchdog_kills_the_groups_within_the_count() {
        assert_eq!(listed(&table(&[0, 500])).count(), 0);
        assert_eq!(listed(&table(&[2, 500, 600, 700])).collect::<Vec<_>>(), [500, 600]);
        // A count past the slots there are is cut to them.
        assert_eq!(listed(&table(&[9, 500, 600])).collect::<Vec<_>>(), [500, 600]);
        assert_eq!(listed(&table(&[-3, 500])).count(), 0);
        assert_eq!(listed(&table(&[])).count(), 0);
    }

    #[test]
    fn the_watchdog_never_kills_every_process_or_its_own_group() {
        // kill(-1) is every process we may signal; kill(-0) our own group.
        let slots = table(&[5, 1, 0, -5, 500, i32::MIN]);
        assert_eq!(listed(&slots).collect::<Vec<_>>(), [500]);
    }

    #[test]
    fn a_forked_child_sees_the_table_as_the_parent_changes_it() {
        let words = shared_table().unwrap();
        assert_eq!(words.len(), WORDS);
        assert_eq!(listed(words).count(), 0);
        let (go_read, go_write) = pipe().unwrap();
        // SAFETY: the child makes only async-signal-safe calls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain system calls on an inherited descriptor and a buffer we own.
            unsafe {
                libc::close(go_write.as_raw_fd());
                let mut byte = 0u8;
                libc::read(go_read.as_raw_fd(), (&raw mut byte).cast(), 1);
                let seen = listed(words).next() == Some(500);
                libc::_exit(if seen { 0 } else { 1 })
            }
        }
        drop(go_read);
        // Listed after the fork: the child sees it only if the memory is shared.
        words[1].store(500, Ordering::Relaxed);
        words[0].store(1, Ordering::Release);
        drop(go_write); // the child's read returns
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child did not see the group"
        );
    }
}
