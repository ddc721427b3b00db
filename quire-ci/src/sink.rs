//! Where the JSONL event stream goes (`--events`, design §3).

use std::fs::File;
use std::io::{self, Write};

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

impl EventSink {
    /// `null`, `stdout`, or a path (created or truncated now, before anything runs).
    pub fn open(spec: &str) -> io::Result<EventSink> {
        match spec {
            "null" => Ok(EventSink::Null),
            "stdout" => Ok(EventSink::Stdout),
            path => Ok(EventSink::File(File::create(path)?)),
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
