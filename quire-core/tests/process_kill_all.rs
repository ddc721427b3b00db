//! kill_all_groups() reaches background jobs of running commands. Its own
//! test binary: it kills every command of the process it runs in.

use quire_core::ci::process::{self, CommandLine, ShRequest};
use quire_core::secret::Redactor;

/// Dead, dying (PF_EXITING) or a zombie.
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    const PF_EXITING: u64 = 0x4;
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let exiting = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_EXITING != 0);
    !(exiting || matches!(fields.first(), Some(&"Z") | Some(&"X")))
}

#[test]
fn kill_all_groups_kills_background_jobs_too() {
    let dir = tempfile::tempdir().unwrap();
    let req = ShRequest::new(
        CommandLine::Shell("sleep 30 & echo $!; wait".into()),
        dir.path(),
        dir.path().join("sh-1.log"),
    );
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    let mut background = None;
    let mut on_line = |_, text: &[u8]| {
        background = std::str::from_utf8(text).ok().and_then(|p| p.parse::<i32>().ok());
        // What a runner does right before exiting on a second signal.
        process::kill_all_groups();
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = runtime
        .block_on(process::run(&req, &Redactor::default(), &mut on_line, &mut rx))
        .unwrap();
    assert_eq!(out.exit_code, 128 + libc::SIGKILL);
    let pid = background.expect("the background pid was printed");
    // run() returned only once the pipes closed, so the sleep is gone or going.
    assert!(!alive(pid), "background sleep {pid} survived");
}
