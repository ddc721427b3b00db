//! Run one command and print its wall time and peak RSS:
//!
//!     timeit [--stdout FILE] [--stderr FILE] -- PROGRAM ARGS...
//!
//! prints `<seconds> <peak RSS in KiB>` on stdout. stdin is /dev/null; the
//! command's stdout and stderr go to /dev/null unless redirected.
//!
//! Why not time from Python: a child spawned by Python inherits Python's peak
//! RSS (~14 MiB) as its own ru_maxrss (exec keeps the high-water mark of the
//! memory it replaces), which would hide the runner's real figure. This driver
//! is a few hundred KiB. Built by bench/run with plain rustc; not part of the
//! workspace.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

fn output(path: Option<String>) -> Stdio {
    match path {
        Some(path) => Stdio::from(File::create(&path).unwrap_or_else(|e| fail(&format!("{path}: {e}")))),
        None => Stdio::null(),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("timeit: {message}");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut stdout, mut stderr) = (None, None);
    loop {
        match args.next().as_deref() {
            Some("--stdout") => stdout = args.next(),
            Some("--stderr") => stderr = args.next(),
            Some("--") => break,
            _ => fail("usage: timeit [--stdout FILE] [--stderr FILE] -- PROGRAM ARGS..."),
        }
    }
    let argv: Vec<String> = args.collect();
    let Some((program, rest)) = argv.split_first() else {
        fail("no command given");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(output(stdout))
        .stderr(output(stderr))
        .spawn()
        .unwrap_or_else(|e| fail(&format!("{program}: {e}")));
    let pid = child.id() as libc_pid;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: Rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers are valid for the call.
    let got = unsafe { wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed().as_secs_f64();
    if got != pid {
        fail(&format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let status = ExitStatus::from_raw(status);
    if !status.success() {
        fail(&format!("{program} ended with {status}"));
    }
    println!("{elapsed:.6} {}", usage.ru_maxrss);
}

// The two libc items needed, declared here so plain rustc can build this file.
#[allow(non_camel_case_types)]
type libc_pid = i32;

#[repr(C)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}

/// struct rusage on 64-bit Linux.
#[repr(C)]
struct Rusage {
    ru_utime: Timeval,
    ru_stime: Timeval,
    ru_maxrss: i64,
    _rest: [i64; 13],
}

unsafe extern "C" {
    fn wait4(pid: libc_pid, status: *mut i32, options: i32, usage: *mut Rusage) -> libc_pid;
}
