//! TEMPORARY stand-in until the real process layer lands (wt-process).
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Redactor;

#[derive(Debug, Clone)]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}
impl CommandLine {
    pub fn display(&self) -> String {
        match self {
            CommandLine::Shell(s) => s.clone(),
            CommandLine::Argv(v) => v.join(" "),
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}
impl OutputStream {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}
pub struct ShRequest {
    pub command: CommandLine,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub log_path: PathBuf,
}
#[derive(Debug, Default)]
pub struct ShOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
    pub cancelled: bool,
}
#[derive(Debug, thiserror::Error)]
pub enum ShError {
    #[error("cannot write log {path}: {source}")]
    Log { path: PathBuf, source: std::io::Error },
}
pub async fn run(
    req: &ShRequest,
    _redactor: &Redactor,
    on_line: &mut dyn FnMut(OutputStream, &[u8]),
    _cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<ShOutput, ShError> {
    let mut cmd = match &req.command {
        CommandLine::Shell(s) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(s);
            c
        }
        CommandLine::Argv(v) => {
            let mut c = tokio::process::Command::new(&v[0]);
            c.args(&v[1..]);
            c
        }
    };
    cmd.current_dir(&req.cwd)
        .envs(req.env.iter().cloned())
        .stdin(std::process::Stdio::null());
    if let Some(parent) = req.log_path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ShError::Log {
            path: req.log_path.clone(),
            source,
        })?;
    }
    let out = match cmd.output().await {
        Ok(o) => o,
        Err(e) => {
            let line = format!("quire-ci: cannot run: {e}");
            on_line(OutputStream::Stderr, line.as_bytes());
            std::fs::write(
                &req.log_path,
                format!("2026-01-01T00:00:00.000000000Z stderr F {line}\n"),
            )
            .map_err(|source| ShError::Log {
                path: req.log_path.clone(),
                source,
            })?;
            return Ok(ShOutput {
                exit_code: 127,
                ..Default::default()
            });
        }
    };
    let mut log = String::new();
    for (stream, bytes) in [(OutputStream::Stdout, &out.stdout), (OutputStream::Stderr, &out.stderr)] {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            on_line(stream, line);
            log.push_str(&format!(
                "2026-01-01T00:00:00.000000000Z {} F {}\n",
                stream.as_str(),
                String::from_utf8_lossy(line)
            ));
        }
    }
    std::fs::write(&req.log_path, log).map_err(|source| ShError::Log {
        path: req.log_path.clone(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    Ok(ShOutput {
        exit_code: code,
        stdout: out.stdout,
        stderr: out.stderr,
        ..Default::default()
    })
}
