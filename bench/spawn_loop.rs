//! The baseline for the sh-overhead benchmark: spawn `sh -c CMD` N times, one
//! after another, waiting for each, with nothing else around it.
//! Built by bench/run with plain rustc; not part of the workspace.

use std::process::{Command, Stdio};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let cmd = args.next().unwrap_or_else(|| "true".to_string());
    for _ in 0..count {
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::null())
            .status()
            .expect("spawn sh");
        assert!(status.success());
    }
}
