//! Where the JSONL event stream goes (`--events`, design §3).

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use quire_core::ci::event::EventKind;
use quire_core::ci::process::OutputStream;
use quire_core::ci::runtime::{Observer, RuntimeEvent};

/// The run record's destination. Each event is one `write` of one whole line,
/// flushed at once, so a reader (or a crash) never sees half a line.
pub enum EventSink {
    Null,
    Stdout,
    File(File),
}

/// Why `--events` cannot be written to: a set-up error (exit 2), found
/// before anything runs.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OpenError {
    /// The io error is in the message, not a `source`: miette would print it a second time.
    #[error("cannot open the events file {path}: {error}")]
    #[diagnostic(code(quire::events), help("--events takes null, stdout, or a writable file path"))]
    File { path: String, error: io::Error },
    #[error("cannot write the events to stdout: it is closed")]
    #[diagnostic(
        code(quire::events),
        help("run quire-ci with its stdout open (on a file or a pipe), or give --events a file path")
    )]
    ClosedStdout,
}

impl EventSink {
    /// `null`, `stdout`, or a path (created or truncated now, before anything runs).
    pub fn open(spec: &str) -> Result<EventSink, OpenError> {
        match spec {
            "null" => Ok(EventSink::Null),
            "stdout" if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed) => Err(OpenError::ClosedStdout),
            "stdout" => Ok(EventSink::Stdout),
            path => File::create(path)
                .map(EventSink::File)
                .map_err(|error| OpenError::File {
                    path: path.to_string(),
                    error,
                }),
        }
    }

    /// Make the record durable: fsync the file. Part of writing
    /// `run_finished`, so that a failure is a failure of the run's end.
    fn finish(&mut self) -> io::Result<()> {
        match self {
            // Only a regular file can be made durable; a FIFO or a device (/dev/stderr) cannot be fsync'd.
            EventSink::File(file) if file.metadata()?.is_file() => file.sync_all(),
            EventSink::File(_) => Ok(()),
            EventSink::Stdout => io::stdout().flush(),
            EventSink::Null => Ok(()),
        }
    }
}

impl Observer for EventSink {
    fn observe(&mut self, event: &RuntimeEvent) -> io::Result<()> {
        let RuntimeEvent::Wire(event) = event else {
            return Ok(());
        };
        if matches!(self, EventSink::Null) {
            return Ok(());
        }
        let mut line = event.to_json_line();
        line.push('\n');
        match self {
            EventSink::File(file) => file.write_all(line.as_bytes())?,
            EventSink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
            EventSink::Null => {}
        }
        if matches!(event.kind, EventKind::RunFinished { .. }) {
            self.finish()?;
        }
        Ok(())
    }

    /// Output is in the logs, not in the event stream.
    fn output(&mut self, _: &str, _: OutputStream, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// Whether fd 1 was closed when quire-ci started. The standard library opens
/// /dev/null on a closed stdout before `main` runs (so that no file opened
/// later takes fd 1), and writes there vanish without an error: the stream
/// would be lost in silence. Only code run before that can tell.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

/// Run by the loader with the program's other constructors, before the
/// standard library's start-up code (quire-ci runs on Linux only).
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_STDOUT_AT_START: extern "C" fn() = note_stdout_at_start;

extern "C" fn note_stdout_at_start() {
    // SAFETY: F_GETFD only asks about the descriptor; it fails (EBADF) when it is not open.
    let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}
