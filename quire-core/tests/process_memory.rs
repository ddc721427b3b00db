//! Output is streamed, never held whole: a command printing hundreds of MB
//! leaves the runner's peak memory small. Its own test binary, so no other
//! test's allocations count towards the peak.

use quire_core::ci::cri;
use quire_core::ci::process::{self, CommandLine, OutputStream, ShRequest};
use quire_core::secret::Redactor;

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

const MIB: u64 = 1024;

#[test]
fn hundreds_of_megabytes_stream_through_small_memory() {
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 120_000_000;
    // 100-byte lines on stdout, and one huge line with no newline on stderr
    // (it must go out as P pieces, not pile up).
    let line = "line of output with a secret-ish word in it: hunter2 and some padding.....";
    let script = format!("yes '{line}' | head -c {size} & head -c {size} /dev/zero | tr '\\0' x >&2; wait");
    let req = ShRequest::new(CommandLine::Shell(script), dir.path(), dir.path().join("sh-1.log"));
    let redactor = Redactor::new([b"hunter2".to_vec()]);
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    let mut lines = [0u64; 2];
    let mut on_line = |s: OutputStream, t: &[u8]| {
        assert!(!t.windows(7).any(|w| w == b"hunter2"));
        lines[s as usize] += 1;
    };

    let before = peak_rss_kib();
    let out = block_on(process::run_with_capture_limit(
        &req,
        1024 * 1024,
        &redactor,
        &mut on_line,
        &mut rx,
    ))
    .unwrap();
    let after = peak_rss_kib();

    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), 1024 * 1024);
    assert!(out.stdout_truncated && out.stderr_truncated);
    let piece = cri::MAX_PIECE as u64;
    assert_eq!(lines[1], size.div_ceil(piece));
    let per_line = line.len() as u64 + 1;
    assert_eq!(lines[0], size.div_ceil(per_line), "the last line is cut short");
    let log_len = std::fs::metadata(&req.log_path).unwrap().len();
    assert!(log_len > 2 * size, "the log holds everything: {log_len}");
    // Two 1 MiB captures plus buffers; far below the 400 MB that went through.
    let grown = after.saturating_sub(before);
    eprintln!("peak RSS {before} KiB before, {after} KiB after");
    assert!(grown < 16 * MIB, "peak RSS grew by {grown} KiB");
}
