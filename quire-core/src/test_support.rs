//! What unit tests of several modules share.

use std::process::Command;

/// Set, to the test's path, in the process [`rerun_alone`] starts.
const RERUN: &str = "QUIRE_TEST_RERUN";

/// Run the test at `path` (`ci::exits::tests::name`) again, alone, in a
/// process of its own that `prepare` may set up further (a signal mask,
/// by `pre_exec`). Here it returns true, once that process passed the
/// test; there it returns false, and the test goes on.
///
/// For tests the harness's other threads could disturb: a child another
/// test clones holds copies of this process's descriptors until its exec,
/// and those threads do not block what quire-ci blocks.
pub fn rerun_alone(path: &str, prepare: impl FnOnce(&mut Command)) -> bool {
    if std::env::var_os(RERUN).is_some_and(|test| test == path) {
        return false;
    }
    let mut rerun = Command::new(std::env::current_exe().unwrap());
    rerun.args(["--exact", path, "--test-threads=1"]).env(RERUN, path);
    prepare(&mut rerun);
    let output = rerun.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Passed, and ran: a path that names no test passes too, running none.
    assert!(
        output.status.success() && stdout.contains(" 1 passed;"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    true
}
